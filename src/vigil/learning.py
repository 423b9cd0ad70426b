"""What every trainer shares (live heads, text classifiers, face thresholds): grouped held-out
splits, grouped folds, an operating threshold at a target false-positive rate, held-out metrics,
markdown tables for the model cards, reading a model's JSON metadata, and where trainers cache
what is slow to recompute (embeddings of the training data).

Splits are by group (same recording, near-duplicate photo, same person) so that nothing a model
saw in training reappears, slightly changed, in its held-out score; and they are seeded and
computed from sorted group names, so the same data and seed always give the same split.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def grouped_holdout(
    groups: Sequence[str],
    fraction: float,
    *,
    seed: int,
    strata: Sequence[str] | None = None,
) -> np.ndarray:
    """Boolean mask of the items held out: whole groups, about ``fraction`` of each stratum.

    Groups are shuffled (seeded) within each stratum and taken in that order while taking one
    keeps the stratum's held-out count nearer ``fraction`` of its items, so no group straddles the
    split and a stratum of few large groups still gets its share. A group must not span two
    strata.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("the held-out fraction must be between 0 and 1")
    labels = np.asarray(groups, dtype=object)
    strata_of = np.asarray(strata if strata is not None else [""] * len(labels), dtype=object)
    if len(strata_of) != len(labels):
        raise ValueError("groups and strata must have the same length")
    held_out = np.zeros(len(labels), dtype=bool)
    rng = np.random.default_rng(seed)
    for stratum in sorted(set(strata_of.tolist())):
        in_stratum = strata_of == stratum
        names = sorted(set(labels[in_stratum].tolist()))
        target = fraction * int(in_stratum.sum())
        taken = 0
        for index in rng.permutation(len(names)):
            members = in_stratum & (labels == names[index])
            size = int(members.sum())
            if taken + size / 2 <= target:
                held_out |= members
                taken += size
    return held_out


def grouped_folds(groups: Sequence[str], n_splits: int, *, seed: int) -> np.ndarray:
    """Fold number (0..n_splits-1) of each item, whole groups per fold, for out-of-fold scores.

    Groups are dealt, largest first (ties in seeded order), to the fold with the fewest items:
    folds come out balanced even when group sizes vary.
    """
    names, inverse, counts = np.unique(
        np.asarray(groups, dtype=str), return_inverse=True, return_counts=True
    )
    if len(names) < n_splits:
        raise ValueError(f"{len(names)} groups cannot fill {n_splits} folds")
    shuffled = np.random.default_rng(seed).permutation(len(names))
    order = shuffled[np.argsort(-counts[shuffled], kind="stable")]
    fold_of_group = np.empty(len(names), dtype=np.int64)
    sizes = np.zeros(n_splits, dtype=np.int64)
    for group in order:
        fold = int(np.argmin(sizes))
        fold_of_group[group] = fold
        sizes[fold] += counts[group]
    folds: np.ndarray = fold_of_group[inverse]
    return folds


def threshold_at_fpr(negative_scores: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold (decide positive when ``score >= threshold``) at which at most
    ``target_fpr`` of the given negatives are positive."""
    scores = np.sort(np.asarray(negative_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("a threshold needs negative scores")
    allowed = int(np.floor(target_fpr * scores.size))
    if allowed >= scores.size:
        return float(scores[-1])
    return float(np.nextafter(scores[allowed], np.inf))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half), or None without both classes."""
    truth = np.asarray(labels, dtype=bool)
    values = np.asarray(scores, dtype=np.float64)
    positives, negatives = values[truth], values[~truth]
    if positives.size == 0 or negatives.size == 0:
        return None
    order = np.sort(negatives)
    below = np.searchsorted(order, positives, side="left")
    not_above = np.searchsorted(order, positives, side="right")
    return float((below + not_above).sum() / (2.0 * positives.size * negatives.size))


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Counts, precision, recall, false-positive rate at ``threshold``, and the AUC."""
    truth = np.asarray(labels, dtype=bool)
    decided = np.asarray(scores, dtype=np.float64) >= threshold
    tp = int((decided & truth).sum())
    fp = int((decided & ~truth).sum())
    fn = int((~decided & truth).sum())
    tn = int((~decided & ~truth).sum())
    return {
        "positives": tp + fn,
        "negatives": fp + tn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "fpr": fp / (fp + tn) if fp + tn else None,
        "auc": roc_auc(truth, scores),
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; floats with 3 decimals, None as "n/a"."""

    def cell(value: object) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(cell(value) for value in row) + " |" for row in rows),
    ]
    return "\n".join(lines) + "\n"


def read_model_metadata(path: Path, model: str, command: str) -> dict[str, Any]:
    """The JSON metadata beside a model artifact (``path`` with ``.json``); a missing artifact
    names the ``command`` that trains one."""
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise FileNotFoundError(f"no {model} model at {path} (+ .json): train one with `{command}`")
    metadata: dict[str, Any] = json.loads(sidecar.read_text("utf-8"))
    return metadata


def cache_dir() -> Path:
    """Where trainers and evaluations keep embeddings between runs: ``$VIGIL_HOME/cache`` when
    set, else the user's cache folder (``~/.cache/vigil``)."""
    if home := os.environ.get("VIGIL_HOME"):
        return Path(home) / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vigil"
