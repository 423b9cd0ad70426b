"""Face alignment for ArcFace-style embedders: a similarity transform (rotation, uniform scale,
shift) that takes the five landmarks of a :class:`~vigil.faces.types.FaceBox` onto the
standard ArcFace 112x112 template (the InsightFace reference points), fitted robustly (least
median of squares, so one misplaced point, such as an estimated mouth corner, does not drag the
others), then one warp of the image.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Left eye, right eye, nose tip, left and right mouth corner in a 112x112 aligned face.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
ARCFACE_SIZE = 112


def align_arcface(rgb: np.ndarray, landmarks: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """The face warped to ``size`` x ``size`` (the template scaled by ``size / 112``); parts of
    the square outside the image are black."""
    points = np.asarray(landmarks, dtype=np.float32)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"expected five finite (x, y) landmarks, got shape {points.shape}")
    if size < 16:
        raise ValueError(f"an aligned face needs at least 16 pixels a side, not {size}")
    template = ARCFACE_TEMPLATE * (size / ARCFACE_SIZE)
    transform, _ = cv2.estimateAffinePartial2D(points, template, method=cv2.LMEDS)
    if transform is None:
        raise ValueError("the landmarks do not determine a similarity transform (degenerate)")
    return cv2.warpAffine(rgb, transform, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
