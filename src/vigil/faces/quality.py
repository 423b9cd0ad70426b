"""How usable a face is, and whether a photo may enrol someone on a watchlist.

:func:`assess_quality` measures a detected face: its size (the box's shorter side in image
pixels), its sharpness (variance of the Laplacian of the grey face crop resized to 112x112, so
faces of different sizes compare) and its brightness (mean grey level of the crop, 0..255).
Their ``score`` in 0..1 is the geometric mean of three factors, each 1 for a good face:

- size: ``min(1, size / 112)`` (112 px is what an ArcFace embedder sees; dlib uses 150 px
  chips, but gains little from faces above ~100 px);
- sharpness: ``sharpness / (sharpness + SHARPNESS_HALF)``, a half at :data:`SHARPNESS_HALF`;
- exposure: ``min(1, brightness / 80, (255 - brightness) / 80)``: dark or blown-out crops
  lose it, mid-grey faces keep it.

A geometric mean, so one bad factor pulls the score down however good the others are.

Enrollment is stricter than search (a watchlist entry is compared against every probe, so a
bad one does harm every time): :func:`choose_enrollment_face` picks THE face of an enrollment
photo or raises :class:`EnrollmentRejected` with a reason a user can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from vigil.faces.settings import FacesSettings
from vigil.faces.types import FaceBox

#: Side of the square the face crop is resized to before measuring sharpness and brightness.
CROP_SIZE = 112
#: The sharpness at which the sharpness factor of the score is one half: the enrollment limit
#: measured on LFW (faces blurred by a Gaussian of sigma ~1.5 px fall below it).
SHARPNESS_HALF = 25.0
#: A second face counts as another person in an enrollment photo when its size is at least
#: this share of the largest face's (smaller faces are background).
SECOND_FACE_SHARE = 0.5

RejectionReason = Literal[
    "unreadable", "no_face", "several_faces", "too_small", "too_blurred", "too_dark"
]


@dataclass(frozen=True)
class QualityReport:
    #: The face box's shorter side, in image pixels.
    size: int
    #: Variance of the Laplacian of the grey crop at 112x112.
    sharpness: float
    #: Mean grey level of the crop, 0..255.
    brightness: float
    #: 0..1, higher is better (module docstring).
    score: float


class EnrollmentRejected(ValueError):
    """An enrollment photo that must not enrol anyone; ``reason`` says why, in a word a client
    can act on, and the message says it to a person."""

    def __init__(self, reason: RejectionReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectionReason = reason


@dataclass(frozen=True)
class EnrollmentLimits:
    """What an enrollment face needs (the ``faces_min_*`` settings)."""

    min_face_pixels: int
    min_sharpness: float
    min_brightness: float

    @classmethod
    def from_settings(cls, settings: FacesSettings) -> EnrollmentLimits:
        return cls(
            min_face_pixels=settings.faces_min_face_pixels,
            min_sharpness=settings.faces_min_sharpness,
            min_brightness=settings.faces_min_brightness,
        )


def _grey_crop(rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    height, width = rgb.shape[:2]
    left, top = max(0, box.left), max(0, box.top)
    right, bottom = min(width, box.right), min(height, box.bottom)
    if right <= left or bottom <= top:
        raise ValueError(f"the face box lies outside the {width}x{height} image: {box}")
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[top:bottom, left:right]), cv2.COLOR_RGB2GRAY)
    shrinking = min(grey.shape) > CROP_SIZE
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(grey, (CROP_SIZE, CROP_SIZE), interpolation=interpolation)


def quality_score(size: int, sharpness: float, brightness: float) -> float:
    """The 0..1 score of a face (module docstring)."""
    size_factor = min(1.0, size / CROP_SIZE)
    sharpness_factor = sharpness / (sharpness + SHARPNESS_HALF)
    exposure_factor = max(0.0, min(1.0, brightness / 80.0, (255.0 - brightness) / 80.0))
    return float((size_factor * sharpness_factor * exposure_factor) ** (1 / 3))


def assess_quality(rgb: np.ndarray, box: FaceBox) -> QualityReport:
    crop = _grey_crop(rgb, box)
    size = min(box.width, box.height)
    sharpness = float(cv2.Laplacian(crop, cv2.CV_64F).var())
    brightness = float(crop.mean())
    return QualityReport(size, sharpness, brightness, quality_score(size, sharpness, brightness))


def choose_enrollment_face(
    faces: Sequence[FaceBox], reports: Sequence[QualityReport], limits: EnrollmentLimits
) -> int:
    """The index of the one face an enrollment photo shows (the largest), or
    :class:`EnrollmentRejected`: no face; another face at least half its size (two people:
    which one is meant?); or the face is too small, too dark or too blurred. Darkness is
    checked before blur because a dark crop also has little contrast, and "too dark" is the
    one a photographer can fix."""
    if len(faces) != len(reports):
        raise ValueError(f"{len(faces)} faces but {len(reports)} quality reports")
    if not faces:
        raise EnrollmentRejected("no_face", "No face was found in the photo.")
    order = sorted(range(len(faces)), key=lambda i: -reports[i].size)
    chosen, report = order[0], reports[order[0]]
    others = [i for i in order[1:] if reports[i].size >= SECOND_FACE_SHARE * report.size]
    if others:
        raise EnrollmentRejected(
            "several_faces",
            f"The photo shows {len(others) + 1} faces of similar size; enrol from a photo of "
            "the one person only (or crop it).",
        )
    if report.size < limits.min_face_pixels:
        raise EnrollmentRejected(
            "too_small",
            f"The face is {report.size} px across; enrollment needs at least "
            f"{limits.min_face_pixels} px (use a larger or closer photo).",
        )
    if report.brightness < limits.min_brightness:
        raise EnrollmentRejected(
            "too_dark",
            f"The face is too dark (mean grey {report.brightness:.0f}, at least "
            f"{limits.min_brightness:.0f} needed).",
        )
    if report.sharpness < limits.min_sharpness:
        raise EnrollmentRejected(
            "too_blurred",
            f"The face is too blurred (sharpness {report.sharpness:.0f}, at least "
            f"{limits.min_sharpness:.0f} needed).",
        )
    return chosen
