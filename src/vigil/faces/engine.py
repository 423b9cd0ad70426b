"""The face engine: one detector, one embedder and the similarity threshold they are operated
at, configured from :class:`~vigil.faces.settings.FacesSettings`. Watchlists, search and video
use it to turn images into :class:`~vigil.faces.types.Face` s; it also decodes uploaded images
safely (:func:`decode_image`).

Templates are comparable only within one embedder (:attr:`FaceEngine.model`). The threshold
comes from ``VIGIL_FACES_THRESHOLD`` or else from the embedder's model card,
``cards/<embedder name>.json`` next to this module, which ``vigil faces eval`` measures and
writes::

    {"model": "dlib-resnet-v1",
     "operating_point": {"threshold": 0.93, "false_match_rate": 0.001,
                         "false_non_match_rate": 0.02}, ...}
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, Field, ValidationError

from vigil.faces.models import FaceModelError, check_rgb
from vigil.faces.quality import (
    EnrollmentLimits,
    EnrollmentRejected,
    assess_quality,
    choose_enrollment_face,
)
from vigil.faces.settings import FacesSettings
from vigil.faces.types import Detector, Embedder, Face, FaceBox

#: Where model cards live: ``<embedder name>.json``.
CARDS_DIR = Path(__file__).resolve().parent / "cards"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class UnreadableImage(ValueError):
    """Bytes that are not an image vigil can safely decode; the message says why."""


@dataclass(frozen=True)
class OperatingPoint:
    """The cosine similarity a candidate needs, and the error rates measured at it (None when
    the threshold was set by hand)."""

    threshold: float
    false_match_rate: float | None
    false_non_match_rate: float | None
    #: Where the threshold came from: the model card's file, or the setting.
    source: str


class _CardPoint(BaseModel):
    threshold: float = Field(ge=-1.0, le=1.0)
    false_match_rate: float = Field(ge=0.0, le=1.0)
    false_non_match_rate: float = Field(ge=0.0, le=1.0)


class _Card(BaseModel):
    model: str
    operating_point: _CardPoint


def card_path(embedder_name: str, cards: Path = CARDS_DIR) -> Path:
    if not _MODEL_NAME.match(embedder_name):
        raise ValueError(f"not a model name: {embedder_name!r}")
    return cards / f"{embedder_name}.json"


def read_operating_point(embedder_name: str, cards: Path = CARDS_DIR) -> OperatingPoint | None:
    """The operating point of the embedder's model card, or None when it has no card."""
    path = card_path(embedder_name, cards)
    if not path.is_file():
        return None
    try:
        card = _Card.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise FaceModelError(f"the model card {path} is malformed: {exc}") from exc
    if card.model != embedder_name:
        raise FaceModelError(f"the model card {path} describes {card.model}, not {embedder_name}")
    point = card.operating_point
    return OperatingPoint(
        point.threshold, point.false_match_rate, point.false_non_match_rate, f"model card {path}"
    )


def operating_point(
    settings: FacesSettings, embedder_name: str, cards: Path = CARDS_DIR
) -> OperatingPoint:
    """``VIGIL_FACES_THRESHOLD`` if set, else the model card's; neither is an error."""
    if settings.faces_threshold is not None:
        return OperatingPoint(settings.faces_threshold, None, None, "VIGIL_FACES_THRESHOLD")
    point = read_operating_point(embedder_name, cards)
    if point is None:
        raise FaceModelError(
            f"no similarity threshold for the face model {embedder_name}: run `vigil faces "
            f"eval` to measure one (it writes {card_path(embedder_name, cards)}) or set "
            "VIGIL_FACES_THRESHOLD"
        )
    return point


def _onnx_path(path: Path | None, variable: str) -> Path:
    if path is None:
        raise FaceModelError(f"an ONNX face model is configured but {variable} (its path) is not")
    return path


def build_detector(settings: FacesSettings) -> Detector:
    if settings.faces_detector == "onnx":
        from vigil.faces.models.onnx import OnnxDetector

        return OnnxDetector(_onnx_path(settings.faces_detector_onnx, "VIGIL_FACES_DETECTOR_ONNX"))
    from vigil.faces.models.dlib import DlibDetector

    return DlibDetector(settings.faces_detector_upsample)


def build_embedder(settings: FacesSettings) -> Embedder:
    if settings.faces_embedder == "onnx":
        from vigil.faces.models.onnx import OnnxEmbedder

        return OnnxEmbedder(_onnx_path(settings.faces_embedder_onnx, "VIGIL_FACES_EMBEDDER_ONNX"))
    from vigil.faces.models.dlib import DlibEmbedder

    return DlibEmbedder()


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """An uploaded image as RGB ``uint8`` (H, W, 3), upright by its EXIF orientation (the
    first frame of an animation). The size is checked from the header, before any pixel is
    decoded, so a decompression bomb costs nothing."""
    if not data:
        raise UnreadableImage("the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise UnreadableImage(
                    f"the image is {width}x{height} pixels, over the limit of {max_pixels}"
                )
            image.load()
            upright = ImageOps.exif_transpose(image)
            return np.asarray(upright.convert("RGB"))
    except UnreadableImage:
        raise
    except Image.DecompressionBombError as exc:
        raise UnreadableImage(f"the image is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise UnreadableImage("the file is not an image in a format vigil reads") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnreadableImage(f"the image is damaged or truncated: {exc}") from exc


def read_enrollment_photo(data: bytes, max_pixels: int) -> np.ndarray:
    """:func:`decode_image` for enrollment: a photo that cannot be decoded is rejected as
    ``unreadable``, like one without a usable face."""
    try:
        return decode_image(data, max_pixels)
    except UnreadableImage as exc:
        raise EnrollmentRejected("unreadable", f"The photo cannot be read: {exc}") from exc


class FaceEngine:
    """Finds faces and makes their templates with one detector and one embedder."""

    def __init__(
        self,
        detector: Detector,
        embedder: Embedder,
        operating_point: OperatingPoint,
        limits: EnrollmentLimits,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.operating_point = operating_point
        self.limits = limits

    @classmethod
    def from_settings(cls, settings: FacesSettings, cards: Path = CARDS_DIR) -> FaceEngine:
        """dlib's models unless ONNX ones are configured; the threshold from the setting or
        the embedder's model card (an error when neither gives one)."""
        embedder = build_embedder(settings)
        point = operating_point(settings, embedder.name, cards)
        limits = EnrollmentLimits.from_settings(settings)
        return cls(build_detector(settings), embedder, point, limits)

    @property
    def model(self) -> str:
        """The embedder's name: templates compare only with templates of the same model."""
        return self.embedder.name

    def _templates(self, rgb: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        templates = self.embedder.embed(rgb, boxes)
        if templates.shape != (len(boxes), self.embedder.dimension):
            raise FaceModelError(
                f"{self.model} returned templates of shape {templates.shape} for {len(boxes)} "
                f"faces, expected ({len(boxes)}, {self.embedder.dimension})"
            )
        return templates

    def faces(self, rgb: np.ndarray) -> list[Face]:
        """Every face the detector finds, with its template and quality score."""
        image = check_rgb(rgb)
        boxes = self.detector.detect(image)
        if not boxes:
            return []
        templates = self._templates(image, boxes)
        return [
            Face(box, templates[i], assess_quality(image, box).score) for i, box in enumerate(boxes)
        ]

    def enrollment_face(self, rgb: np.ndarray) -> Face:
        """The one face of an enrollment photo, or
        :class:`~vigil.faces.quality.EnrollmentRejected` saying why the photo cannot enrol."""
        image = check_rgb(rgb)
        boxes = self.detector.detect(image)
        reports = [assess_quality(image, box) for box in boxes]
        chosen = choose_enrollment_face(boxes, reports, self.limits)
        template = self._templates(image, [boxes[chosen]])[0]
        return Face(boxes[chosen], template, reports[chosen].score)
