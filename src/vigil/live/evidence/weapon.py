"""Weapon in view: a head trained by vigil on the features of the offline ImageNet backbone
(EfficientNet-Lite0, the same one the hashing second stage uses), with the backbone's own weapon
classes (revolver, rifle, assault rifle, holster) as a prior feature.

Each analysed frame is looked at twice, in one batched forward pass: the whole frame, and its
lower centre (:data:`LOWER_CENTRE`), where a weapon held by the camera's wearer appears in
first-person footage. The evidence's score is the larger of the two calibrated probabilities;
its ratio is ``logit(score) - logit(base rate)`` (the head was trained with balanced class
weights, so the base rate is 1/2 and the ratio is the head's own log-odds), plus
:data:`LOWER_CENTRE_BONUS` when the lower centre alone clears the operating threshold (a weapon
held in front of the camera is the first-person cue, a weapon elsewhere in the picture is not),
clipped to [:data:`LLR_MIN`, :data:`LLR_MAX`]. The upper clip keeps one cue alone below what the
fusion's drift absorbs; the lower one keeps a long stretch of weapon-free frames from burying a
gunshot that follows.

The head is a logistic regression whose coefficients ship as ``models/weapon.npz`` with its
metadata in ``models/weapon.json`` (no pickle; inference is numpy after the backbone); see
``models/weapon.md`` for what it was trained on and how well it does. The head is loaded once per
process and shared by every stream's source: it is never changed after loading, and the
backbone's forward pass is reentrant, so sources may run in threads.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from vigil.hashing import backbone_outputs
from vigil.learning import read_model_metadata
from vigil.live.evidence.base import Evidence, clip, logit
from vigil.live.samples import VideoSample
from vigil.live.training import MODELS_DIR

NAME = "weapon"
DEFAULT_MODEL = MODELS_DIR / "weapon.npz"
FEATURES = 1280

#: EfficientNet-Lite0's ImageNet-1k classes that show weapons or their gear. The package ships no
#: class list; the indices are the standard ImageNet-1k ones, checked on the pistol photos (the
#: weapon classes are the commonest top-1 classes there, revolver first). Cannon (471) was left
#: out: artillery, and never a top class on the pistol photos.
PRIOR_CLASSES: dict[int, str] = {
    763: "revolver",
    764: "rifle",
    413: "assault rifle",
    597: "holster",
}

#: (left, top, right, bottom) of the lower-centre region, as fractions of the frame.
LOWER_CENTRE = (0.25, 0.5, 0.75, 1.0)
LLR_MIN = -1.0
LLR_MAX = 2.5
#: Added (before the clip) when the lower centre alone clears the operating threshold.
LOWER_CENTRE_BONUS = 0.5
#: Frames smaller than this on either side cannot give a lower-centre region worth scoring.
MIN_SIDE = 16


def prior_probability(imagenet: np.ndarray) -> np.ndarray:
    """Total ImageNet probability of the weapon classes, per row of an N x 1000 softmax."""
    total: np.ndarray = imagenet[:, list(PRIOR_CLASSES)].sum(axis=1)
    return total


def design_matrix(features: np.ndarray, imagenet: np.ndarray) -> np.ndarray:
    """The head's inputs: the pooled features and the log-odds of the weapon classes' total."""
    prior = np.clip(prior_probability(imagenet).astype(np.float64), 1e-6, 1 - 1e-6)
    design: np.ndarray = np.hstack(
        [features.astype(np.float64), np.log(prior / (1 - prior))[:, None]]
    )
    return design


def lower_centre_box(height: int, width: int) -> tuple[int, int, int, int]:
    """Pixel box (left, top, right, bottom) of the lower-centre region of a frame."""
    left, top, right, bottom = LOWER_CENTRE
    return (
        round(left * width),
        round(top * height),
        round(right * width),
        round(bottom * height),
    )


class WeaponHead:
    """Logistic regression on :func:`design_matrix`, scikit-learn style (``fit`` needs
    scikit-learn; ``predict_proba`` is numpy only).

    ``threshold`` is the operating point on a frame's score, ``base_rate`` the positive share the
    probabilities assume (1/2: classes are weighted to balance in ``fit``).
    """

    def __init__(self, c: float = 1.0) -> None:
        self.c = c
        self.coef_ = np.zeros(FEATURES + 1)
        self.intercept_ = 0.0
        self.threshold = 0.5
        self.base_rate = 0.5

    def fit(self, x: np.ndarray, y: np.ndarray) -> Self:
        """Fit on standardised inputs with balanced class weights, then fold the scaling into
        the coefficients so that inference is one dot product."""
        from sklearn.linear_model import LogisticRegression

        self._check_inputs(x)
        mean = x.mean(axis=0)
        scale = np.where(x.std(axis=0) > 1e-12, x.std(axis=0), 1.0)
        model = LogisticRegression(C=self.c, class_weight="balanced", max_iter=5000)
        model.fit((x - mean) / scale, np.asarray(y, dtype=np.int64))
        weights = model.coef_[0] / scale
        self.coef_ = weights
        self.intercept_ = float(model.intercept_[0] - weights @ mean)
        self.base_rate = 0.5
        return self

    def recalibrate(self, slope: float, offset: float) -> None:
        """Apply Platt scaling (``sigmoid(slope * decision + offset)``) to the coefficients."""
        self.coef_ = self.coef_ * slope
        self.intercept_ = self.intercept_ * slope + offset

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        self._check_inputs(x)
        decision: np.ndarray = x @ self.coef_ + self.intercept_
        return decision

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """N x 2: P(no weapon), P(weapon)."""
        positive = 1.0 / (1.0 + np.exp(-self.decision_function(x)))
        return np.column_stack([1.0 - positive, positive])

    def save(self, path: Path, metadata: dict[str, Any]) -> None:
        """Coefficients to ``path`` (npz), everything else to its ``.json`` sibling."""
        np.savez(path, coef=self.coef_, intercept=np.float64(self.intercept_))
        document = {
            **metadata,
            "classes": ["no_weapon", "weapon"],
            "c": self.c,
            "threshold": self.threshold,
            "base_rate": self.base_rate,
            "prior_classes": {str(index): label for index, label in PRIOR_CLASSES.items()},
            "lower_centre": list(LOWER_CENTRE),
            "inputs": f"{FEATURES} L2-normalised pooled EfficientNet-Lite0 features, then "
            "logit(total probability of prior_classes)",
        }
        path.with_suffix(".json").write_text(json.dumps(document, indent=1) + "\n", "utf-8")

    @classmethod
    def load(cls, path: Path) -> WeaponHead:
        metadata = read_metadata(path)
        with np.load(path, allow_pickle=False) as arrays:
            coef = np.asarray(arrays["coef"], dtype=np.float64)
            intercept = float(arrays["intercept"])
        if coef.shape != (FEATURES + 1,):
            raise ValueError(f"{path}: expected {FEATURES + 1} coefficients, got {coef.shape}")
        stored = {int(index): label for index, label in metadata["prior_classes"].items()}
        if stored != PRIOR_CLASSES:
            raise ValueError(f"{path} was trained with other prior classes: {stored}")
        head = cls(float(metadata["c"]))
        coef.flags.writeable = False
        head.coef_ = coef
        head.intercept_ = intercept
        head.threshold = float(metadata["threshold"])
        head.base_rate = float(metadata["base_rate"])
        return head

    @staticmethod
    def _check_inputs(x: np.ndarray) -> None:
        if x.ndim != 2 or x.shape[1] != FEATURES + 1:
            raise ValueError(f"the head takes N x {FEATURES + 1} inputs (see design_matrix)")


def read_metadata(model_path: Path | None = None) -> dict[str, Any]:
    """The JSON metadata beside a weapon model (the shipped one by default)."""
    return read_model_metadata(model_path or DEFAULT_MODEL, "weapon", "vigil train weapon")


def held_out_files(model_path: Path | None = None) -> dict[str, list[str]]:
    """Files the head never saw in training, by data set (``pistols``, ``lfw``, ``kodak24``), as
    paths relative to the developer data folder: the only ones synthetic evaluation streams may
    use."""
    held: dict[str, list[str]] = read_metadata(model_path)["held_out"]
    return held


_LOAD_LOCK = threading.Lock()


def load_head(model_path: Path | None = None) -> WeaponHead:
    """The head at ``model_path`` (the shipped one by default), loaded once per process."""
    with _LOAD_LOCK:
        return _cached_head((model_path or DEFAULT_MODEL).resolve())


@lru_cache(maxsize=4)
def _cached_head(path: Path) -> WeaponHead:
    return WeaponHead.load(path)


def weapon_llr(p_whole: float, p_lower: float, head: WeaponHead) -> float:
    """The frame's log-likelihood ratio (see the module docstring)."""
    ratio = logit(max(p_whole, p_lower)) - logit(head.base_rate)
    if p_lower >= head.threshold:
        ratio += LOWER_CENTRE_BONUS
    return clip(ratio, LLR_MIN, LLR_MAX)


def assess_frame(head: WeaponHead, rgb: np.ndarray, t: float) -> Evidence:
    """Score a frame and its lower centre in one forward pass."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"a frame must be H x W x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ValueError(f"a frame must be at least {MIN_SIDE} px on each side")
    left, top, right, bottom = lower_centre_box(*rgb.shape[:2])
    features, imagenet = backbone_outputs([rgb, rgb[top:bottom, left:right]])
    p_whole, p_lower = (
        float(p) for p in head.predict_proba(design_matrix(features, imagenet))[:, 1]
    )
    prior_scores = imagenet[:, list(PRIOR_CLASSES)].max(axis=0)
    top_class = list(PRIOR_CLASSES)[int(np.argmax(prior_scores))]
    score = max(p_whole, p_lower)
    return Evidence(
        NAME,
        t,
        score,
        weapon_llr(p_whole, p_lower, head),
        {
            "p_whole": p_whole,
            "p_lower_centre": p_lower,
            "weapon": score >= head.threshold,
            "lower_centre": p_lower >= head.threshold,
            "imagenet_label": PRIOR_CLASSES[top_class],
            "imagenet_p": float(prior_scores.max()),
            "threshold": head.threshold,
        },
    )


@dataclass
class WeaponEvidence:
    """One stream's weapon-in-view source: every ``every_n_frames``-th frame is analysed."""

    head: WeaponHead
    every_n_frames: int = 1
    name: str = NAME
    modality: Literal["video"] = "video"
    _seen: int = 0

    def __post_init__(self) -> None:
        if self.every_n_frames < 1:
            raise ValueError("every_n_frames must be at least 1")

    def observe(self, sample: VideoSample) -> Evidence | None:
        self._seen += 1
        if (self._seen - 1) % self.every_n_frames:
            return None
        return assess_frame(self.head, sample.rgb, sample.t)


@dataclass
class WeaponFactory:
    head: WeaponHead
    every_n_frames: int = 1
    name: str = NAME

    def __call__(self, stream_id: str) -> WeaponEvidence:
        return WeaponEvidence(self.head, self.every_n_frames)


def weapon_factory(model_path: Path | None = None, every_n_frames: int = 1) -> WeaponFactory:
    """Weapon-in-view sources for streams; the head is loaded (and checked) now, once."""
    if every_n_frames < 1:
        raise ValueError("every_n_frames must be at least 1")
    return WeaponFactory(load_head(model_path), every_n_frames)
