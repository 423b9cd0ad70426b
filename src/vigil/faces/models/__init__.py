"""The face models behind :class:`vigil.faces.types.Detector` and
:class:`vigil.faces.types.Embedder`: dlib's HOG detector and ResNet embedder
(:mod:`vigil.faces.models.dlib`, the ``faces`` extra) and user-supplied ONNX models
(:mod:`vigil.faces.models.onnx`). Submodules are imported on demand so that choosing one kind
of model never needs the other's packages.
"""

from __future__ import annotations

import numpy as np


class FaceModelError(ValueError):
    """A face model cannot be loaded or used; the message says which model and what to fix."""


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """The image as a C-contiguous ``uint8`` (H, W, 3) array, or a ValueError saying why not."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"the image is empty: {rgb.shape}")
    return np.ascontiguousarray(rgb)


def unit_rows(vectors: np.ndarray, model: str) -> np.ndarray:
    """Each row scaled to unit length (float32), so that a dot product is a cosine similarity.
    A zero or non-finite row means the model failed on that face: that is an error, not a
    template that would match nothing (or everything)."""
    rows = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise FaceModelError(f"{model} produced a zero or non-finite template")
    unit: np.ndarray = (rows / norms).astype(np.float32)
    return unit
