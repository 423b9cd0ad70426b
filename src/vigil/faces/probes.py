"""Probes: the faces of an uploaded image or video that a search looks up in the watchlists.

A probe carries the face the search uses (box, template, quality), a small RGB crop of it for
the human reviewer, who must see what was searched before acting on any candidate, and where it
came from in a video (``frame_time``; ``None`` for an image). Video probes, one per tracked
person, are built in :mod:`vigil.faces.video`; both kinds share :class:`Probe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from vigil.faces.types import Face, FaceBox

#: Crops are for a reviewer's eyes, not for matching: small enough to keep many per search.
CROP_MAX_SIDE = 160
#: Context around the box (per side, as a share of the box size): hair and ears help a
#: reviewer judge a candidate, and detectors' boxes cut the face tight.
CROP_MARGIN = 0.3


class FaceFinder(Protocol):
    """What probes need from a face engine: every face of an RGB ``uint8`` image, with its
    template and quality (:class:`vigil.faces.engine.FaceEngine` is one)."""

    def faces(self, rgb: np.ndarray) -> list[Face]: ...


@dataclass(frozen=True)
class Probe:
    """A face to search for: ``face.embedding`` is the template the search compares."""

    face: Face
    #: RGB ``uint8``, the face with some context, longest side at most :data:`CROP_MAX_SIDE`.
    crop: np.ndarray
    #: Seconds from the start of the video where ``face`` was seen; ``None`` for an image.
    frame_time: float | None


def face_crop(rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """The face of ``box`` with :data:`CROP_MARGIN` context, clipped to the image and shrunk to
    :data:`CROP_MAX_SIDE`; a copy, so the frame it came from can be freed."""
    height, width = rgb.shape[:2]
    margin_x, margin_y = round(box.width * CROP_MARGIN), round(box.height * CROP_MARGIN)
    left, right = max(0, box.left - margin_x), min(width, box.right + margin_x)
    top, bottom = max(0, box.top - margin_y), min(height, box.bottom + margin_y)
    if right <= left or bottom <= top:
        raise ValueError(f"the face box {box} lies outside the {width}x{height} image")
    crop = rgb[top:bottom, left:right]
    scale = CROP_MAX_SIDE / max(crop.shape[:2])
    if scale >= 1.0:
        return crop.copy()
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


def probes_from_image(rgb: np.ndarray, engine: FaceFinder) -> list[Probe]:
    """One probe per face the engine finds in an RGB ``uint8`` image, best quality first."""
    faces = sorted(engine.faces(rgb), key=lambda face: face.quality, reverse=True)
    return [Probe(face=face, crop=face_crop(rgb, face.box), frame_time=None) for face in faces]
