"""Which language a post is written in: py3langid (langid.py's model, 97 languages, inside the
wheel, a fraction of a millisecond a post), with probabilities normalised over languages.

Mentions, hashtags, URLs, the ``@user``/``url`` placeholders of :mod:`vigil.text.normalize`,
retweet markers and digits are removed before judging: they are the same in every language
(and mostly English-looking), so a short German post full of ``@user`` would otherwise read as
English. What is left must hold a letter, or there is nothing to judge (``und``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from py3langid.langid import MODEL_FILE, LanguageIdentifier

UNDETERMINED = ("und", 0.0)
#: Varieties langid.py tells apart, folded into the ISO 639-1 language they belong to; codes
#: with no ISO 639-1 equivalent (``pcm``, ``kab``, ``vec`` ...) stay ISO 639-3, and ``zxx``
#: (no linguistic content) is ``und``.
_MACROLANGUAGE = {
    "arz": "ar",
    "ary": "ar",
    "yue": "zh",
    "wuu": "zh",
    "uzs": "uz",
    "sdh": "ku",
    "gug": "gn",
    "kik": "ki",
    "fuv": "ff",
}
#: The beginning of a post tells its language; the rest would only cost time.
MAX_CHARS = 4_000

_NOT_LANGUAGE = re.compile(
    r"(?:https?://|www\.)\S+|(?<!\w)[@#]\w+|\b(?:url|rt)\b|\d+", re.IGNORECASE
)
_LETTER = re.compile(r"[^\W\d_]")


@cache
def _identifier() -> Any:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> tuple[str, float]:
    """ISO 639-1 code and confidence in [0, 1]; ``("und", 0.0)`` when there is nothing to
    judge. Works on raw or normalized text alike."""
    judged = _NOT_LANGUAGE.sub(" ", text[:MAX_CHARS])
    if not _LETTER.search(judged):
        return UNDETERMINED
    language, confidence = _identifier().classify(judged)
    if language == "zxx":
        return UNDETERMINED
    return _MACROLANGUAGE.get(language, language), min(1.0, max(0.0, float(confidence)))
