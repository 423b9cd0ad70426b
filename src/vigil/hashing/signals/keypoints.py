"""Local features of an image, to verify the embedding's candidates geometrically.

A pooled ImageNet embedding says "similar scene", not "copy of this image": among LFW faces 1 %
of unrelated pairs sit within 1-cos 0.20. So the embedding only retrieves candidates, and a match
needs the upload and the banked image to share many local features that one similarity transform
(shift, scale, rotation) maps onto each other, spread over a fair part of the banked image: what
a crop, a pad or a small rotation of the same picture has, and another picture of the same kind
of scene has not.

A second shot of the same scene can pass those two tests: press photos taken seconds apart share
a podium, a backdrop and most of a face. What it cannot do is fit *exactly*: the person moved,
the camera moved, so the shared features sit a pixel or two off any one transform, where a copy's
sit within ORB's own sub-pixel noise. So a match also needs the inliers' median reprojection
error (the *residual*) to be small. Thresholds (inliers, coverage, residual) are settings
(:mod:`vigil.config`), chosen in bench/robustness.py.
Features are OpenCV ORB keypoints on the unletterboxed greyscale image scaled to a 512-pixel
longer side (so pixel tolerances mean the same for every image). The value is base64 of a small
header (format, size, count), the keypoints' positions as float16 and their 32-byte descriptors:
about 24 KB for 500 keypoints. Not indexed: it is read for the few candidates the embedding
returned.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from vigil.config import Settings
from vigil.hashing.media import Media, MediaKind
from vigil.hashing.preprocess import unletterbox
from vigil.hashing.signals.base import Signal, SignalType

#: Longer side of the image the keypoints are found on, in pixels.
WORKING_SIZE = 512
#: Keypoints kept per image (the strongest): bench/robustness.py measured 250, 500 and 1000.
MAX_KEYPOINTS = 500
DESCRIPTOR_BYTES = 32
#: Lowe's ratio test: a feature's best match must be clearly better than its second best.
RATIO = 0.8
#: RANSAC tolerance in working-size pixels.
REPROJECTION_ERROR = 4.0
#: A copy is shown at between a quarter and four times the size of the banked image.
SCALE_RANGE = (0.25, 4.0)

_FORMAT = 1
_HEADER = struct.Struct("<BHHH")  # format, width, height, keypoint count


@dataclass(frozen=True)
class Keypoints:
    """Keypoints of one image: ``points`` (n, 2) float32 pixel positions in an image of
    ``width`` x ``height`` (the working size), ``descriptors`` (n, 32) uint8."""

    width: int
    height: int
    points: np.ndarray
    descriptors: np.ndarray


@dataclass(frozen=True)
class FitRule:
    """What a verification must reach to make a match (see the module doc)."""

    min_inliers: int
    min_coverage: float
    #: Median reprojection error of the inliers, in working-size pixels.
    max_residual: float

    @classmethod
    def of(cls, settings: Settings) -> FitRule:
        return cls(
            settings.verify_min_inliers,
            settings.verify_min_coverage,
            settings.verify_max_residual,
        )


@dataclass(frozen=True)
class Verification:
    """How well one similarity transform maps the upload's features onto a banked image's."""

    inliers: int
    #: Share of the banked image's area inside the bounding box of the inliers.
    coverage: float
    #: Median distance, in working-size pixels, between where the transform puts an inlier and
    #: where the banked image has it.
    residual: float

    def passes(self, rule: FitRule) -> bool:
        return (
            self.inliers >= rule.min_inliers
            and self.coverage >= rule.min_coverage
            and self.residual <= rule.max_residual
        )


NO_FIT = Verification(0, 0.0, float("inf"))


def working_grey(rgb: np.ndarray) -> np.ndarray:
    """The greyscale image keypoints are found on, scaled to ``WORKING_SIZE``."""
    import cv2  # OpenCV comes with the embed extra, like the stage that needs it

    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    scale = WORKING_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized: np.ndarray = cv2.resize(grey, size, interpolation=interpolation)
    return resized


def detect(rgb: np.ndarray, max_keypoints: int = MAX_KEYPOINTS) -> Keypoints:
    """ORB keypoints of an RGB ``uint8`` image (already unletterboxed), strongest first."""
    import cv2

    grey = working_grey(rgb)
    found, descriptors = cv2.ORB.create(nfeatures=max_keypoints).detectAndCompute(grey, None)
    height, width = grey.shape
    if descriptors is None:  # a flat image has no corners
        return Keypoints(width, height, np.empty((0, 2), np.float32), np.empty((0, 32), np.uint8))
    order = np.argsort([-k.response for k in found], kind="stable")[:max_keypoints]
    points = np.array([found[i].pt for i in order], dtype=np.float32).reshape(-1, 2)
    return Keypoints(width, height, points, descriptors[order])


def encode(keypoints: Keypoints) -> str:
    count = len(keypoints.points)
    header = _HEADER.pack(_FORMAT, keypoints.width, keypoints.height, count)
    body = keypoints.points.astype("<f2").tobytes() + keypoints.descriptors.tobytes()
    return base64.b64encode(header + body).decode("ascii")


def decode(value: str) -> Keypoints:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        raise ValueError("keypoints must be base64") from None
    if len(raw) < _HEADER.size:
        raise ValueError("keypoints too short")
    version, width, height, count = _HEADER.unpack_from(raw)
    if version != _FORMAT:
        raise ValueError(f"unknown keypoints format {version}")
    points_end = _HEADER.size + 4 * count
    if len(raw) != points_end + DESCRIPTOR_BYTES * count or not (width and height):
        raise ValueError(f"keypoints value does not hold {count} keypoints")
    points = np.frombuffer(raw, "<f2", 2 * count, _HEADER.size).astype(np.float32)
    descriptors = np.frombuffer(raw, np.uint8, offset=points_end).reshape(count, DESCRIPTOR_BYTES)
    return Keypoints(width, height, points.reshape(count, 2), descriptors)


def _ratio_matches(query: Keypoints, bank: Keypoints) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the query/bank feature pairs that pass the ratio test."""
    import cv2

    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(query.descriptors, bank.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    source = query.points[[m.queryIdx for m in good]]
    target = bank.points[[m.trainIdx for m in good]]
    return source, target


def verify(query: Keypoints, bank: Keypoints, min_inliers: int = 3) -> Verification:
    """Fit one similarity transform from the upload's features to the banked image's.

    Pairs with fewer ratio-test matches than ``min_inliers`` are not fitted: RANSAC over mostly
    outliers runs its full 2000 iterations, and most candidates are such pairs.
    """
    import cv2

    if len(query.points) < 2 or len(bank.points) < 2:
        return NO_FIT
    source, target = _ratio_matches(query, bank)
    if len(source) < max(3, min_inliers):
        return NO_FIT
    transform, mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_ERROR
    )
    if transform is None:
        return NO_FIT
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        return NO_FIT
    kept = mask.ravel().astype(bool)
    if not kept.any():
        return NO_FIT
    inliers = target[kept]
    extent = inliers.max(axis=0) - inliers.min(axis=0)
    coverage = float(extent[0] * extent[1]) / (bank.width * bank.height)
    mapped = source[kept] @ transform[:, :2].T + transform[:, 2]
    residual = float(np.median(np.hypot(*(mapped - inliers).T)))
    return Verification(len(inliers), coverage, residual)


def keypoints_signal(rgb: np.ndarray) -> Signal:
    return Signal(KeypointsSignal.name, encode(detect(unletterbox(rgb))), None, "original")


class KeypointsSignal(SignalType):
    """Stored for bank entries when the embedding second stage is on; never indexed, never
    hashed by default (see :class:`vigil.hashing.KnownContent`)."""

    name = "orb_keypoints"
    media_kinds: ClassVar[frozenset[MediaKind]] = frozenset({"image"})

    def hash_media(self, media: Media) -> list[Signal]:
        return [keypoints_signal(media.image_rgb())]

    def validate(self, value: str) -> str:
        return encode(decode(value))

    def distance(self, a: str, b: str) -> float:
        """1 / (1 + RANSAC inliers from ``a`` to ``b``): 0 would be infinitely many shared
        features. Whether that is a match also needs the coverage and the residual: see
        :func:`verify`."""
        return 1.0 / (1 + verify(decode(a), decode(b)).inliers)
