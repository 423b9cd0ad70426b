"""The shapes every part of face search shares: a face found in an image, a detector, an
embedder. Models plug in behind :class:`Detector` and :class:`Embedder`; the rest of
:mod:`vigil.faces` (quality, tracking, index, watchlists, search) sees only these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A face in an image: its box in pixels (``right``/``bottom`` exclusive), the detector's
    confidence, and five landmarks when the detector (or an aligner) gives them: ``(5, 2)``
    float32 pixel positions in the order left eye, right eye, nose tip, left mouth corner, right
    mouth corner (the subject's left/right as seen in the image: "left" has the smaller x)."""

    left: int
    top: int
    right: int
    bottom: int
    score: float
    # Arrays do not compare with ==: two boxes are equal by their place and score.
    landmarks: np.ndarray | None = field(default=None, compare=False)

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


@dataclass(frozen=True)
class Face:
    """A detected face with its template (unit-length float32 embedding) and its quality."""

    box: FaceBox
    embedding: np.ndarray
    #: 0..1, higher is better: see :mod:`vigil.faces.quality`.
    quality: float


class Detector(Protocol):
    """Finds faces in an RGB ``uint8`` image (H, W, 3)."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[FaceBox]: ...


class Embedder(Protocol):
    """Turns faces of an image into templates: ``(len(faces), dimension)`` float32, each row
    unit length, so that the cosine similarity of two templates is their dot product."""

    name: str
    dimension: int

    def embed(self, rgb: np.ndarray, faces: list[FaceBox]) -> np.ndarray: ...
