"""dlib's face models, shipped with vigil's ``faces`` extra (``dlib`` and
``face_recognition_models``): the HOG frontal-face detector (``dlib-hog``) and the ResNet
face-recognition model (``dlib-resnet-v1``, 128-d templates, aligned by dlib's 5-point shape
predictor).

The ``.dat`` models load once per process, on first use, behind a lock; embedding runs one
call at a time (detection runs concurrently).

Landmarks. dlib's 5-point predictor gives both corners of each eye and the base of the nose
(below the tip), not the tip and no mouth corners, while :class:`~vigil.faces.types.FaceBox`
carries eye centres, nose tip and mouth corners (what an ArcFace aligner needs, when a dlib
detector feeds an ONNX embedder). The eye centres are the means of their corners; the other
three points are estimated from the eyes and the nose base. In the eyes' frame (origin between
the eyes, x along the eye line, y perpendicular to it towards the mouth, one unit = the
distance between the eyes), with the nose base at (bx, by):

    nose tip           = (1.49 bx,          1.13 by - 0.32)
    mouth left, right  = (0.15 bx -+ 0.45,  0.74 by + 0.53)

The coefficients are least-squares fits to dlib's 68-point model (points 30, 48 and 54) on 800
LFW faces; on 347 other LFW faces the estimate is off by 0.06 (nose tip) and 0.12 (mouth
corners) eye distances on average, 0.13 and 0.25 at the 95th percentile: mostly open or
smiling mouths, which the estimate cannot see. Eye centres are within 0.02 of the 68-point
eye-contour means. The dlib embedder does not use these estimates: it runs the 5-point
predictor itself on each face box, as the dlib model was trained.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from vigil.faces.models import FaceModelError, check_rgb, unit_rows
from vigil.faces.types import FaceBox

_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}
# dlib's network object keeps its layers' outputs between calls: one forward pass at a time.
_RECOGNISER_LOCK = threading.Lock()

# Rows: nose tip, left mouth corner, right mouth corner; columns: 1, bx, by (module docstring).
_ESTIMATE_X = np.array([[0.0, 1.49, 0.0], [-0.45, 0.15, 0.0], [0.45, 0.15, 0.0]])
_ESTIMATE_Y = np.array([[-0.32, 0.0, 1.13], [0.53, 0.0, 0.74], [0.53, 0.0, 0.74]])


def _modules() -> tuple[Any, Any]:
    try:
        import dlib
        import face_recognition_models
    except ImportError as exc:
        raise FaceModelError(
            f"the dlib face models need vigil's `faces` extra: pip install 'vigil[faces]' ({exc})"
        ) from exc
    return dlib, face_recognition_models


def _load_detector() -> Any:
    dlib, _ = _modules()
    return dlib.get_frontal_face_detector()


def _load_shape_predictor() -> Any:
    dlib, models = _modules()
    return dlib.shape_predictor(models.pose_predictor_five_point_model_location())


def _load_recogniser() -> Any:
    dlib, models = _modules()
    return dlib.face_recognition_model_v1(models.face_recognition_model_location())


def _model(loader: Callable[[], Any]) -> Any:
    with _LOCK:
        if loader.__name__ not in _LOADED:
            try:
                _LOADED[loader.__name__] = loader()
            except RuntimeError as exc:
                raise FaceModelError(f"a dlib face model failed to load: {exc}") from exc
        return _LOADED[loader.__name__]


def estimate_landmarks(
    left_eye: np.ndarray, right_eye: np.ndarray, nose_base: np.ndarray
) -> np.ndarray:
    """The five :class:`FaceBox` landmarks ``(5, 2)`` float32 from the eye centres and the
    nose base (the fit in the module docstring)."""
    centre = (left_eye + right_eye) / 2
    eye_line = right_eye - left_eye
    eye_distance = float(np.hypot(*eye_line))
    if eye_distance == 0:
        raise ValueError("the eye centres coincide: no face frame to place landmarks in")
    along = eye_line / eye_distance
    across = np.array([-along[1], along[0]])
    offset = nose_base - centre
    basis = np.array([1.0, offset @ along / eye_distance, offset @ across / eye_distance])
    xs, ys = _ESTIMATE_X @ basis, _ESTIMATE_Y @ basis
    estimated = centre + eye_distance * (np.outer(xs, along) + np.outer(ys, across))
    return np.vstack([left_eye, right_eye, estimated]).astype(np.float32)


def _landmarks(shape: Any) -> np.ndarray:
    # dlib's 5 points: 0-1 the corners of the eye with the larger x, 2-3 the other eye's, 4 the
    # nose base.
    points = np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float64)
    return estimate_landmarks(points[2:4].mean(axis=0), points[0:2].mean(axis=0), points[4])


def _clipped(rect: Any, height: int, width: int) -> tuple[int, int, int, int] | None:
    # dlib rectangles are inclusive and may reach past the image.
    left, top = max(0, rect.left()), max(0, rect.top())
    right, bottom = min(width, rect.right() + 1), min(height, rect.bottom() + 1)
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom


class DlibDetector:
    """dlib's HOG + linear SVM frontal-face detector. ``upsample`` doubles the image that many
    times first (finds smaller faces, ~4x the time per step). ``score`` is the SVM margin
    (0 at dlib's default threshold, ~0.5-3 for clear faces), not a probability."""

    name = "dlib-hog"

    def __init__(self, upsample: int = 1) -> None:
        if not 0 <= upsample <= 2:
            raise ValueError(f"upsample must be 0, 1 or 2, not {upsample}")
        _modules()
        self.upsample = upsample

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        image = check_rgb(rgb)
        height, width = image.shape[:2]
        rects, scores, _ = _model(_load_detector).run(image, self.upsample, 0.0)
        predictor = _model(_load_shape_predictor)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            box = _clipped(rect, height, width)
            if box is not None:
                landmarks = _landmarks(predictor(image, rect))
                faces.append(FaceBox(*box, score=float(score), landmarks=landmarks))
        return sorted(faces, key=lambda face: -face.score)


class DlibEmbedder:
    """dlib's ResNet face-recognition model: 128-d templates, unit length. Each face is aligned
    by the 5-point shape predictor run on its box (whatever detector found it)."""

    name = "dlib-resnet-v1"
    dimension = 128

    def __init__(self) -> None:
        self._dlib, _ = _modules()

    def embed(self, rgb: np.ndarray, faces: list[FaceBox]) -> np.ndarray:
        image = check_rgb(rgb)
        if not faces:
            return np.zeros((0, self.dimension), dtype=np.float32)
        predictor = _model(_load_shape_predictor)
        shapes = self._dlib.full_object_detections()
        for face in faces:
            if face.width <= 0 or face.height <= 0:
                raise ValueError(f"empty face box: {face}")
            rect = self._dlib.rectangle(face.left, face.top, face.right - 1, face.bottom - 1)
            shapes.append(predictor(image, rect))
        recogniser = _model(_load_recogniser)
        with _RECOGNISER_LOCK:
            descriptors = recogniser.compute_face_descriptor(image, shapes, num_jitters=0)
        return unit_rows(np.array(descriptors), self.name)
