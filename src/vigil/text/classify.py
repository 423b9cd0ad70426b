"""Calibrated probabilities that a post is a threat or incitement, terrorist support, hate or
offensive: the text classifiers that post monitoring runs on every post.

Two stages, because the multilingual model is the expensive part (~100 texts/s on two cores)
and nearly every post is harmless:

* **first** - hashed word and character n-grams (:mod:`vigil.text.classifier.features`) with
  one linear head per label, Platt-calibrated: numpy only, thousands of posts a second. It runs
  on every post, and its weights explain every score word by word (:class:`Driver`).
* **full** - multilingual-e5-small embeddings (:mod:`vigil.text.classifier.embedding`) plus the
  first stage's logits, into one linear head per label, Platt-calibrated. It runs only where the
  first stage's probability for some label reaches that label's *gate*; the gates are set in
  training so that the first stage passes nearly all (the model card says how many) of the
  posts the full model flags, and few benign ones.

``offensive`` is decided by the first stage alone, on every post: its first-stage head is
nearly as good as the full one (the model card compares them), and it is the common label, so
gating on it would send most posts to the embedding for almost nothing (the card measures
that too). The gate is on the three severe labels.

A post that does not pass the gate keeps its first-stage probabilities (``stage="first"``),
which are all below their gates and so far below the operating thresholds. Probabilities are
P(label | text) at the training mixture's base rates (see the model card), not at a live
stream's. ``offensive`` covers ``hate`` and ``threat_incitement``.

The artifact is ``models/text.npz`` (arrays, no pickle) beside ``text.json`` (thresholds,
gates, settings, training metrics) and the model card ``text.md``; ``vigil train text``
rebuilds all three.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vigil.learning import read_model_metadata
from vigil.text.classifier import embedding, features

LABELS: tuple[str, ...] = ("threat_incitement", "terror_support", "hate", "offensive")
#: Labels whose probability always comes from the first stage (see the module doc).
FIRST_STAGE_LABELS: tuple[str, ...] = ("offensive",)
_FULL_COLUMNS = [k for k, name in enumerate(LABELS) if name not in FIRST_STAGE_LABELS]

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS_DIR / "text.npz"
TRAIN_COMMAND = "vigil train text"
#: A label gets drivers when flagged or at least this likely.
DRIVER_FLOOR = 0.2
MAX_DRIVERS = 5


@dataclass(frozen=True)
class Driver:
    """A word or word pair that pushed a label up: its share of the first stage's logit."""

    phrase: str
    weight: float


@dataclass(frozen=True)
class TextScore:
    probabilities: dict[str, float]
    flagged: tuple[str, ...]
    stage: Literal["first", "full"]
    drivers: dict[str, tuple[Driver, ...]]


def sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))
    return result


@dataclass(frozen=True)
class Head:
    """Linear logits per label (``weights``: inputs x labels) and their Platt calibration
    (``calibration``: labels x (slope, intercept) on the logit)."""

    weights: np.ndarray
    bias: np.ndarray
    calibration: np.ndarray

    def logits(self, x: Any) -> np.ndarray:
        result: np.ndarray = np.asarray(x @ self.weights, dtype=np.float64) + self.bias
        return result

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(logits * self.calibration[:, 0] + self.calibration[:, 1])

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}_weights": self.weights,
            f"{prefix}_bias": self.bias,
            f"{prefix}_calibration": self.calibration,
        }

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> Head:
        return cls(
            np.asarray(arrays[f"{prefix}_weights"], dtype=np.float32),
            np.asarray(arrays[f"{prefix}_bias"], dtype=np.float64),
            np.asarray(arrays[f"{prefix}_calibration"], dtype=np.float64),
        )


def combine(first: np.ndarray, full: np.ndarray) -> np.ndarray:
    """The full model's probabilities: the full stage's, except for FIRST_STAGE_LABELS."""
    combined = first.copy()
    combined[:, _FULL_COLUMNS] = full[:, _FULL_COLUMNS]
    return combined


def full_inputs(embeddings: np.ndarray, first_logits: np.ndarray) -> np.ndarray:
    """The full stage's inputs: the embedding, then the first stage's logits (scaled down:
    they span tens of units where embedding coordinates span tenths)."""
    return np.hstack([embeddings, first_logits / 10.0]).astype(np.float32)


class TextClassifier:
    """The shipped (or a trained) two-stage classifier. ``predict`` is thread-safe: the model
    is read-only and the embedding engine is locked."""

    def __init__(
        self,
        first: Head,
        full: Head,
        thresholds: dict[str, float],
        gates: dict[str, float],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.first = first
        self.full = full
        self.thresholds = thresholds
        self.gates = gates
        self.metadata = metadata or {}
        #: The full stage's embedder; evaluations may put a cache in front of it (same vectors).
        self.embed: Callable[[Sequence[str]], np.ndarray] = embedding.embed
        self._threshold_row = np.array([thresholds[name] for name in LABELS])
        #: No gate (never passes) for the first-stage labels.
        self._gate_row = np.array([gates.get(name, np.inf) for name in LABELS])

    @classmethod
    def load(cls, path: Path | None = None) -> TextClassifier:
        """The artifact at ``path`` (``text.npz`` + ``text.json``; default: the shipped one).
        A missing artifact is a FileNotFoundError naming ``vigil train text``."""
        model_path = path or DEFAULT_MODEL
        metadata = read_model_metadata(model_path, "text classifier", TRAIN_COMMAND)
        if tuple(metadata.get("labels", ())) != LABELS:
            raise ValueError(f"{model_path}: trained for labels {metadata.get('labels')}")
        with np.load(model_path, allow_pickle=False) as arrays:
            first = Head.from_arrays(arrays, "first")
            full = Head.from_arrays(arrays, "full")
        if first.weights.shape != (features.N_FEATURES, len(LABELS)):
            raise ValueError(f"{model_path}: first-stage weights of shape {first.weights.shape}")
        return cls(first, full, metadata["thresholds"], metadata["gates"], metadata)

    def save(self, path: Path) -> None:
        """Write ``path`` (arrays; the n-gram weights as float16) and its ``.json``."""
        first = Head(self.first.weights.astype(np.float16), self.first.bias, self.first.calibration)
        arrays = {**first.arrays("first"), **self.full.arrays("full")}
        np.savez_compressed(path, allow_pickle=False, **arrays)
        metadata = {
            **self.metadata,
            "labels": list(LABELS),
            "thresholds": self.thresholds,
            "gates": self.gates,
        }
        path.with_suffix(".json").write_text(json.dumps(metadata, indent=1), encoding="utf-8")

    # ----------------------------------------------------------------------------------------

    def first_logits(self, canonical_texts: Sequence[str]) -> np.ndarray:
        logits: np.ndarray = (
            features.linear_logits(canonical_texts, self.first.weights) + self.first.bias
        )
        return logits

    def full_probabilities(
        self, canonical_texts: Sequence[str], first_logits: np.ndarray
    ) -> np.ndarray:
        inputs = full_inputs(self.embed(canonical_texts), first_logits)
        return self.full.calibrated(self.full.logits(inputs))

    def passes_gate(self, first_probabilities: np.ndarray) -> np.ndarray:
        passed: np.ndarray = np.any(first_probabilities >= self._gate_row, axis=1)
        return passed

    def predict(
        self, texts: Sequence[str], languages: Sequence[str | None] | None = None
    ) -> list[TextScore]:
        """Scores of ``texts``, which must already be normalized
        (``vigil.text.normalize.normalize(text).text``, as in training). ``languages`` is
        accepted for the caller's convenience and checked for length; the model is
        multilingual and does not need it."""
        if languages is not None and len(languages) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(languages)} languages")
        canonical = [features.canonical(text) for text in texts]
        first_logits = self.first_logits(canonical)
        probabilities = self.first.calibrated(first_logits)
        passed = np.flatnonzero(self.passes_gate(probabilities))
        if passed.size:
            full_stage = self.full_probabilities(
                [canonical[i] for i in passed], first_logits[passed]
            )
            probabilities[passed] = combine(probabilities[passed], full_stage)
        full = np.zeros(len(texts), dtype=bool)
        full[passed] = True
        return [
            self._score(text, row, bool(ran))
            for text, row, ran in zip(canonical, probabilities, full, strict=True)
        ]

    def _score(self, canonical_text: str, row: np.ndarray, full: bool) -> TextScore:
        flagged = tuple(
            name for name, p, t in zip(LABELS, row, self._threshold_row, strict=True) if p >= t
        )
        explained = [
            k for k, name in enumerate(LABELS) if name in flagged or row[k] >= DRIVER_FLOOR
        ]
        return TextScore(
            probabilities={name: float(p) for name, p in zip(LABELS, row, strict=True)},
            flagged=flagged,
            stage="full" if full else "first",
            drivers={LABELS[k]: self._drivers(canonical_text, k) for k in explained},
        )

    def _drivers(self, canonical_text: str, label: int) -> tuple[Driver, ...]:
        shares = features.phrase_contributions(canonical_text, self.first.weights[:, label])
        ranked = sorted(
            ((phrase, weight) for phrase, weight in shares.items() if weight > 0),
            key=lambda item: -item[1],
        )
        return tuple(Driver(phrase, round(weight, 4)) for phrase, weight in ranked[:MAX_DRIVERS])
