"""Held-out measurements of the text classifier: per label, data set and language; each data
set's own task (macro-F1); calibration; the gate; counter-speech.

Every figure here is computed on rows the model never trained on, with the thresholds and
gates fixed in training. The data-set tasks (HateXplain 3-class, OLID task A, ...) are read off
vigil's labels by :func:`native_prediction`, with vigil's operating thresholds: the general
model as it ships, not a model tuned per data set.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vigil.learning import binary_metrics, roc_auc
from vigil.text.classify import LABELS
from vigil.text.training.data import UNKNOWN, Example

CALIBRATION_BINS = 10
LANGUAGES = ("en", "de", "fr", "ar", "es")
#: The classes each data set's task predicts, and how vigil's flags map onto them.
NATIVE_CLASSES = {
    "hatexplain": ("hatespeech", "offensive", "normal"),
    "davidson": ("hate", "offensive", "neither"),
    "olid": ("OFF", "NOT"),
    "stormfront": ("hate", "noHate"),
    "ethos": ("hate", "noHate"),
    "mlma": ("toxic", "normal"),
    "germeval2026": ("True", "False"),
    "hateval2019_trial": ("1", "0"),
}


#: Data sets whose own task (the issue's targets) also gets its own decision thresholds, tuned on
#: out-of-fold training scores: the same model, read with other thresholds.
TUNED_TASKS = {"hatexplain": ("hate", "offensive"), "olid": ("offensive",), "stormfront": ("hate",)}
TUNING_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


def flags_at(probabilities: np.ndarray, thresholds: dict[str, float]) -> list[set[str]]:
    row = np.array([thresholds[name] for name in LABELS])
    return [{LABELS[k] for k in np.flatnonzero(p >= row)} for p in probabilities]


def tune_task_thresholds(
    examples: Sequence[Example], probabilities: np.ndarray, thresholds: dict[str, float]
) -> dict[str, dict[str, float]]:
    """Per data set of :data:`TUNED_TASKS`, the thresholds (on a 0.05 grid) of its labels with
    the best score of its own task on these rows (training rows, out-of-fold probabilities):
    macro-F1, or for Stormfront the balanced accuracy."""
    tuned: dict[str, dict[str, float]] = {}
    for dataset, labels in TUNED_TASKS.items():
        rows = [i for i, e in enumerate(examples) if e.dataset == dataset and e.native]
        if not rows:
            continue
        chosen = [examples[i] for i in rows]
        best: tuple[float, dict[str, float]] = (-1.0, {})
        for combo in itertools.product(TUNING_GRID.tolist(), repeat=len(labels)):
            rule = {**thresholds, **dict(zip(labels, combo, strict=True))}
            score = _task_score(dataset, chosen, flags_at(probabilities[rows], rule))
            if score > best[0]:
                best = (score, dict(zip(labels, combo, strict=True)))
        tuned[dataset] = best[1]
    return tuned


def _task_score(dataset: str, examples: Sequence[Example], flags: Sequence[set[str]]) -> float:
    truth = [str(e.native) for e in examples]
    predicted = [str(native_prediction(dataset, f)) for f in flags]
    if dataset == "stormfront":
        recalls = [
            np.mean([p == t for t, p in zip(truth, predicted, strict=True) if t == name])
            for name in NATIVE_CLASSES[dataset]
        ]
        return float(np.mean(recalls))
    return macro_f1(truth, predicted, NATIVE_CLASSES[dataset])


def tuned_flags(
    examples: Sequence[Example],
    probabilities: np.ndarray,
    thresholds: dict[str, float],
    tuned: dict[str, dict[str, float]],
) -> list[set[str]]:
    """Flags with each row's data set's tuned thresholds (the shipped ones elsewhere)."""
    return [
        flags_at(p[None, :], {**thresholds, **tuned.get(e.dataset, {})})[0]
        for e, p in zip(examples, probabilities, strict=True)
    ]


def native_prediction(dataset: str, flagged: set[str]) -> str | None:
    """A data set's class for a text that vigil flags with ``flagged``."""
    hateful = "hate" in flagged
    offensive = bool(flagged & {"offensive", "hate", "threat_incitement"})
    if dataset in ("hatexplain", "davidson"):
        hate, offence, neither = NATIVE_CLASSES[dataset]
        return hate if hateful else offence if offensive else neither
    if dataset == "olid":
        return "OFF" if offensive else "NOT"
    if dataset in ("stormfront", "ethos"):
        return "hate" if hateful else "noHate"
    if dataset == "mlma":
        return "toxic" if offensive else "normal"
    if dataset == "germeval2026":
        return str("threat_incitement" in flagged)
    if dataset == "hateval2019_trial":
        return str(int(hateful))
    return None


def macro_f1(truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> float:
    scores = []
    for name in classes:
        tp = sum(t == name and p == name for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != name and p == name for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == name and p != name for t, p in zip(truth, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def calibration(truth: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Brier score (and the base-rate forecast's) and the expected calibration error over
    :data:`CALIBRATION_BINS` equal-width bins."""
    bins = np.clip((p * CALIBRATION_BINS).astype(int), 0, CALIBRATION_BINS - 1)
    ece = sum(
        abs(float(p[bins == k].mean()) - float(truth[bins == k].mean())) * (bins == k).mean()
        for k in range(CALIBRATION_BINS)
        if np.any(bins == k)
    )
    return {
        "brier": float(np.mean((p - truth) ** 2)),
        "brier_base_rate": float(np.mean((truth.mean() - truth) ** 2)),
        "ece": float(ece),
    }


def label_metrics(
    examples: Sequence[Example], probabilities: np.ndarray, thresholds: dict[str, float]
) -> dict[str, Any]:
    """Per label: threshold metrics, F1, AUC and calibration on the rows that know it."""
    targets = np.array([e.targets for e in examples]).reshape(len(examples), len(LABELS))
    result: dict[str, Any] = {}
    for k, name in enumerate(LABELS):
        known = targets[:, k] != UNKNOWN
        truth, p = targets[known, k] == 1, probabilities[known, k]
        if not known.any():
            continue
        at = binary_metrics(truth, p, thresholds[name])
        precision, recall = at["precision"] or 0.0, at["recall"] or 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if not truth.any():
            f1 = None  # no positives: F1 says nothing (the FPR does)
        result[name] = {**at, "f1": f1, "auc": roc_auc(truth, p), **calibration(truth, p)}
    return result


def breakdown(
    examples: Sequence[Example], probabilities: np.ndarray, thresholds: dict[str, float]
) -> dict[str, Any]:
    """:func:`label_metrics` overall, per data set and per language."""
    datasets = sorted({e.dataset for e in examples})
    languages = [lang for lang in LANGUAGES if any(e.lang == lang for e in examples)]

    def subset(keep: list[bool]) -> dict[str, Any]:
        rows = np.flatnonzero(keep)
        return label_metrics([examples[int(i)] for i in rows], probabilities[rows], thresholds)

    return {
        "all": label_metrics(examples, probabilities, thresholds),
        "datasets": {d: subset([e.dataset == d for e in examples]) for d in datasets},
        "languages": {lang: subset([e.lang == lang for e in examples]) for lang in languages},
    }


def native_tasks(
    examples: Sequence[Example], flags: Sequence[set[str]]
) -> dict[str, dict[str, Any]]:
    """Each data set's own task on its held-out rows: macro-F1 and accuracy, and for
    Stormfront the accuracy on a balanced sample (every hate row, as many noHate rows)."""
    result: dict[str, dict[str, Any]] = {}
    for dataset, classes in NATIVE_CLASSES.items():
        rows = [i for i, e in enumerate(examples) if e.dataset == dataset and e.native]
        if not rows:
            continue
        truth = [str(examples[i].native) for i in rows]
        predicted = [str(native_prediction(dataset, flags[i])) for i in rows]
        result[dataset] = {
            "rows": len(rows),
            "macro_f1": macro_f1(truth, predicted, classes),
            "accuracy": float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])),
        }
    if "stormfront" in result:
        result["stormfront"]["balanced_accuracy"] = balanced_accuracy(examples, flags)
    return result


def balanced_accuracy(examples: Sequence[Example], flags: Sequence[set[str]]) -> float:
    """Stormfront hate accuracy on every held-out hate row and as many noHate rows (seeded)."""
    hate = [i for i, e in enumerate(examples) if e.dataset == "stormfront" and e.native == "hate"]
    other = [
        i for i, e in enumerate(examples) if e.dataset == "stormfront" and e.native == "noHate"
    ]
    sample = np.random.default_rng(0).permutation(other)[: len(hate)]
    rows = [*hate, *sample.tolist()]
    correct = [("hate" in flags[i]) == (examples[i].native == "hate") for i in rows]
    return float(np.mean(correct))


def gate_metrics(
    examples: Sequence[Example],
    passed: np.ndarray,
    full_flags: Sequence[set[str]],
    gated: Sequence[str],
) -> dict[str, Any]:
    """Recall retention (of the rows the full model flags for a ``gated`` label, the share the
    gate passes; overall and per label) and the pass rate on benign rows: inoffensive and not
    pro-ISIS ("strict"), or with no known positive label ("no known harm")."""
    flagged_any = np.array([bool(f & set(gated)) for f in full_flags])
    offensive, terror = LABELS.index("offensive"), LABELS.index("terror_support")
    benign = np.array([e.targets[offensive] == 0 and e.targets[terror] == 0 for e in examples])
    harmless = np.array([1 not in e.targets for e in examples])
    datasets = np.array([e.dataset for e in examples])
    per_label = {}
    for name in gated:
        rows = np.array([name in f for f in full_flags])
        per_label[name] = {"flagged": int(rows.sum()), "retained": _share(passed[rows])}
    return {
        "rows": len(examples),
        "pass_rate": float(passed.mean()),
        "benign_rows": int(benign.sum()),
        "benign_pass_rate": _share(passed[benign]),
        "harmless_rows": int(harmless.sum()),
        "harmless_pass_rate": _share(passed[harmless]),
        "harmless_pass_rate_per_set": {
            d: _share(passed[harmless & (datasets == d)]) for d in sorted(set(datasets.tolist()))
        },
        "full_flagged": int(flagged_any.sum()),
        "retention": _share(passed[flagged_any]),
        "per_label": per_label,
    }


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def read_counter_speech(path: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = [
        json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()
    ]
    return rows


def counter_speech(rows: Sequence[dict[str, str]], flags: Sequence[set[str]]) -> dict[str, Any]:
    """Share of counter-speech rows flagged per label, overall and per kind (news,
    condemnation, ...)."""
    kinds = sorted({row["kind"] for row in rows})

    def shares(keep: list[bool]) -> dict[str, float]:
        chosen = [f for f, k in zip(flags, keep, strict=True) if k]
        return {name: float(np.mean([name in f for f in chosen])) for name in LABELS}

    return {
        "rows": len(rows),
        "flagged": shares([True] * len(rows)),
        "kinds": {kind: shares([row["kind"] == kind for row in rows]) for kind in kinds},
        "examples": [
            {"text": row["text"], "flagged": sorted(f)}
            for row, f in zip(rows, flags, strict=True)
            if f & {"threat_incitement", "terror_support"}
        ],
    }
