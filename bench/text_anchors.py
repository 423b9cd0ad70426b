"""Runs inside the anchors' own environment (``bench/install_anchors.sh``), never in vigil's:
reads JSON strings, one per line, on stdin and writes one JSON object per line,
``{"hatesonar": "hate_speech" | "offensive_language" | "neither", "profanity": 0 | 1}``.
Called by ``bench/text_quality.py``.
"""

from __future__ import annotations

import json
import sys

from hatesonar import Sonar
from profanity_check import predict


def main() -> None:
    texts = [json.loads(line) for line in sys.stdin if line.strip()]
    sonar = Sonar()
    profane = predict(texts) if texts else []
    for text, profanity in zip(texts, profane, strict=True):
        verdict = sonar.ping(text=text)["top_class"]
        print(json.dumps({"hatesonar": verdict, "profanity": int(profanity)}))


if __name__ == "__main__":
    main()
