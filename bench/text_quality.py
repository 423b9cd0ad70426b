"""Text classifier quality on the held-out rows of ``../shared/data/text``, side by side with
two English baselines, ``hatesonar`` (Davidson-trained hate/offensive/neither) and
``alt-profanity-check`` (a profanity SVM), on the same rows.

The held-out rows are recomputed from the data and the seed in the model's metadata (and
checked against the hash of their ids it recorded), then scored by the shipped pipeline exactly
as the scanner calls it (``TextClassifier.predict`` on normalized text: gate, then the full
model where it runs), at the shipped operating thresholds: no tuning on these rows. The
embeddings come from the training cache when it has them (the same vectors the engine would
compute; pass ``--no-cache`` to embed afresh).

Each data set's own task is read off vigil's labels
(:func:`vigil.text.training.evaluate.native_prediction`); the baselines' classes are mapped the
same way (hatesonar's hate_speech → hate, offensive_language → offensive; profanity → offensive).
The baselines are English-only: they score the English held-out rows, on the raw text they were
built for. Per language, macro-F1 is the mean over vigil's labels (those with held-out positives
in that language) of the binary F1 at the operating threshold.

Reproduce::

    bench/install_anchors.sh                  # once: the baselines in bench/anchors/venv
    .venv/bin/python bench/text_quality.py    # writes bench/results/text_quality.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vigil.learning import markdown_table
from vigil.text.classify import DEFAULT_MODEL, LABELS, TextClassifier
from vigil.text.normalize import normalize
from vigil.text.training.cache import EmbeddingCache, default_cache_dir
from vigil.text.training.data import Example, load_examples, read_rows
from vigil.text.training.evaluate import LANGUAGES, breakdown, native_tasks, tuned_flags

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
RESULTS = HERE / "results" / "text_quality.md"
ANCHORS_PYTHON = HERE / "anchors" / "venv" / "bin" / "python"
ANCHORS_SCRIPT = HERE / "text_anchors.py"
BATCH = 2_000
TARGETS = {"hatexplain": 0.70, "olid": 0.80}
STORMFRONT_TARGET = 0.85
PUBLISHED = {
    "hatexplain": "BERT (Mathew et al. 2021): accuracy 0.698, macro-F1 0.687 (official test split)",
    "olid": "best OffensEval 2019 system: macro-F1 0.829 (official test set)",
}


def held_out(data: Path, metadata: dict[str, Any]) -> list[Example]:
    examples = load_examples(data, lambda text: normalize(text).text, seed=metadata["seed"])
    held = [e for e in examples if e.role == "held_out"]
    digest = hashlib.sha256("\n".join(sorted(e.id for e in held)).encode()).hexdigest()
    if digest != metadata["held_out_sha256"]:
        raise SystemExit("the held-out rows differ from the model's: retrain or pass its data")
    return held


def vigil_flags(classifier: TextClassifier, held: Sequence[Example]) -> tuple[list[set[str]], Any]:
    flags: list[set[str]] = []
    probabilities, full = [], 0
    began = time.perf_counter()
    for start in range(0, len(held), BATCH):
        scores = classifier.predict([e.text for e in held[start : start + BATCH]])
        flags += [set(s.flagged) for s in scores]
        probabilities += [[s.probabilities[name] for name in LABELS] for s in scores]
        full += sum(s.stage == "full" for s in scores)
    elapsed = time.perf_counter() - began
    return flags, {
        "probabilities": np.array(probabilities),
        "full_share": full / len(held),
        "seconds": elapsed,
    }


def anchor_flags(texts: Sequence[str]) -> dict[str, list[set[str]]] | None:
    """hatesonar's and alt-profanity-check's verdicts as vigil flags, or None when the
    anchors' environment is not installed."""
    if not ANCHORS_PYTHON.is_file():
        return None
    completed = subprocess.run(
        [str(ANCHORS_PYTHON), str(ANCHORS_SCRIPT)],
        input="".join(json.dumps(text) + "\n" for text in texts),
        capture_output=True,
        text=True,
        check=True,
        env={"LANG": "en_US.UTF-8", "LC_ALL": "en_US.UTF-8", "PATH": "/usr/bin:/bin"},
    )
    rows = [json.loads(line) for line in completed.stdout.splitlines()]
    sonar = {"hate_speech": {"hate"}, "offensive_language": {"offensive"}, "neither": set()}
    return {
        "hatesonar": [set(sonar[row["hatesonar"]]) for row in rows],
        "alt-profanity-check": [{"offensive"} if row["profanity"] else set() for row in rows],
    }


def language_macro_f1(metrics: dict[str, Any]) -> float | None:
    scores = [m["f1"] for m in metrics.values() if m.get("f1") is not None]
    return float(np.mean(scores)) if scores else None


def report(
    held: Sequence[Example],
    flags: list[set[str]],
    run: dict[str, Any],
    anchors: dict[str, list[set[str]]] | None,
    classifier: TextClassifier,
) -> str:
    english = [i for i, e in enumerate(held) if e.lang == "en"]
    english_rows = [held[i] for i in english]
    ours = native_tasks(held, flags)
    rules = classifier.metadata["metrics"]["tuned"]["thresholds"]
    tuned = native_tasks(
        held, tuned_flags(held, run["probabilities"], classifier.thresholds, rules)
    )
    ours_en = native_tasks(english_rows, [flags[i] for i in english])
    theirs = {name: native_tasks(english_rows, f) for name, f in (anchors or {}).items()}
    names = list(theirs)
    per_set = markdown_table(
        [
            "data set (own task)",
            "held-out rows",
            "vigil macro-F1",
            "English rows",
            "vigil (English rows)",
            *names,
        ],
        [
            [
                dataset,
                v["rows"],
                v["macro_f1"],
                ours_en.get(dataset, {}).get("rows", 0),
                ours_en.get(dataset, {}).get("macro_f1"),
                *(theirs[n].get(dataset, {}).get("macro_f1") for n in names),
            ]
            for dataset, v in ours.items()
        ],
    )
    languages = breakdown(held, run["probabilities"], classifier.thresholds)["languages"]
    per_language = markdown_table(
        ["language", "held-out rows", "vigil macro-F1 (labels with positives)"],
        [
            [lang, sum(e.lang == lang for e in held), language_macro_f1(languages[lang])]
            for lang in LANGUAGES
            if lang in languages
        ],
    )
    columns = {"vigil": ours, "vigil, per-set thresholds from training folds": tuned} | theirs
    targets = markdown_table(
        ["target", "goal", *columns],
        [
            *(
                [f"{d} macro-F1", goal, *(c[d]["macro_f1"] for c in columns.values())]
                for d, goal in TARGETS.items()
            ),
            [
                "stormfront balanced accuracy",
                STORMFRONT_TARGET,
                *(c["stormfront"]["balanced_accuracy"] for c in columns.values()),
            ],
        ],
    )
    rule_text = "; ".join(
        f"{d}: " + ", ".join(f"{label} >= {t:.2f}" for label, t in rule.items())
        for d, rule in rules.items()
    )
    missing = (
        ""
        if anchors
        else ("\n**Baselines not run**: `bench/install_anchors.sh` has not been run here.\n")
    )
    published = "\n".join(f"- {d}: {text}" for d, text in PUBLISHED.items())
    return f"""# Text classifier quality (held-out rows)

Reproduce (from the repository root):

    bench/install_anchors.sh && .venv/bin/python bench/text_quality.py

Model: `{DEFAULT_MODEL.name}` as shipped ({classifier.metadata.get("command")}, code
`{classifier.metadata.get("code_commit")}`), through `TextClassifier.predict` at its operating
thresholds; {len(held):,} held-out rows never trained on (HateXplain's official `dev`, seeded
grouped splits of the others), {run["full_share"]:.1%} of them passed the gate to the full
model. Scoring took {run["seconds"]:.0f} s (embeddings from the training cache where present).
The baselines score the English rows only, from the raw text.
{missing}
## Targets

{targets}
"vigil" is the shipped model at its operating thresholds. The second column is the same model
and the same probabilities read with per-data-set thresholds that training chose on that data
set's out-of-fold training scores ({rule_text}); the held-out rows chose nothing.

Published baselines for orientation (other splits and protocols, not comparable row for row):

{published}

## Per data set (each data set's own task)

{per_set}
## Per language (vigil)

{per_language}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    classifier = TextClassifier.load(args.model)
    if not args.no_cache:
        classifier.embed = EmbeddingCache(args.cache).embed
    held = held_out(args.data, classifier.metadata)
    flags, run = vigil_flags(classifier, held)
    raw = {row["id"]: row["text"] for row in read_rows(args.data)}
    anchors = anchor_flags([raw[e.id] for e in held if e.lang == "en"])
    args.out.write_text(report(held, flags, run, anchors, classifier), encoding="utf-8")
    print(args.out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
