"""User-supplied ONNX face models, run by ONNX Runtime on the CPU.

vigil ships no ONNX face weights: a deployment that has licensed a stronger model than dlib's
converts it to ONNX and points ``VIGIL_FACES_EMBEDDER_ONNX`` / ``VIGIL_FACES_DETECTOR_ONNX`` at
it. Each model is checked against its contract when it is loaded, and every problem raises
:class:`~vigil.faces.models.FaceModelError` naming the file and what to fix.

Embedder contract (ArcFace-style, e.g. an InsightFace recognition model):

- one input, ``float32``, shape ``(N, 3, 112, 112)``: the batch axis may be named (dynamic) or
  fixed at 1; the face aligned to the ArcFace 112x112 template by its five landmarks
  (:func:`vigil.faces.align.align_arcface`), RGB, each value ``(pixel - 127.5) / 127.5``;
- its first output, shape ``(N, D)``: the template, any length ``D`` (read from the output's
  shape, or from one run on a blank face when the shape is dynamic). vigil scales each row to
  unit length.
- faces must carry landmarks: pair it with a detector that gives them (dlib's and any ONNX
  detector with a ``landmarks`` output do).

Detector contract:

- one input, ``float32``, fixed shape ``(1, 3, H, W)``: the image, RGB, values in 0..1, scaled
  to fit ``W`` x ``H`` with its aspect ratio kept, placed at the top-left corner, the rest
  zero (letterboxed);
- outputs named ``boxes`` ``(N, 4)``: ``x1, y1, x2, y2`` in input pixels; ``scores`` ``(N,)``:
  the confidence, 0..1; optionally ``landmarks`` ``(N, 10)``: ``x, y`` of the left eye, right
  eye, nose tip, left and right mouth corner (left = smaller x) in input pixels. Other outputs
  are ignored.
- vigil drops boxes scoring under ``score_threshold`` (default 0.5), suppresses boxes that
  overlap a higher-scoring one by more than ``overlap_threshold`` intersection over union
  (default 0.4), and maps the rest back to image pixels, clipped to the image.

A model's name (``onnx-<file stem>-<first 12 hex digits of the file's SHA-256>``) changes with
its weights, so templates from different weights are never compared, and names its model card
(``vigil faces eval``).
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vigil.faces.align import ARCFACE_SIZE, align_arcface
from vigil.faces.models import FaceModelError, check_rgb, unit_rows
from vigil.faces.types import FaceBox

_FLOAT = "tensor(float)"
#: The detector's outputs and their shapes ("N": the number of boxes).
_DETECTOR_OUTPUTS: dict[str, tuple[str | int, ...]] = {
    "boxes": ("N", 4),
    "scores": ("N",),
    "landmarks": ("N", 10),
}


def model_name(path: Path) -> str:
    """``onnx-<stem>-<sha256[:12]>`` of the model file."""
    digest = hashlib.sha256()
    with path.open("rb") as model:
        for chunk in iter(lambda: model.read(1 << 20), b""):
            digest.update(chunk)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:48]
    return f"onnx-{stem}-{digest.hexdigest()[:12]}"


def _open(path: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise FaceModelError(
            f"ONNX face models need onnxruntime: pip install 'vigil[faces]' ({exc})"
        ) from exc
    if not path.is_file():
        raise FaceModelError(f"ONNX face model not found: {path}")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise FaceModelError(f"{path} is not a loadable ONNX model: {exc}") from exc


def _fits(dimension: Any, wanted: int | str) -> bool:
    """A model's dimension fits when it is the wanted size or left open (named or unknown)."""
    return dimension == wanted or dimension is None or isinstance(dimension, str)


def _only_float_input(session: Any, path: Path) -> Any:
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != _FLOAT or len(inputs[0].shape) != 4:
        found = [(item.name, item.type, item.shape) for item in inputs]
        raise FaceModelError(
            f"{path}: a face model takes one float32 input of shape (N, 3, H, W), found {found}"
        )
    return inputs[0]


class OnnxEmbedder:
    """An ArcFace-style ONNX embedder (module docstring: the contract)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._session = _open(self.path)
        self.name = model_name(self.path)
        model_input = _only_float_input(self._session, self.path)
        batch, channels, height, width = model_input.shape
        square = _fits(height, ARCFACE_SIZE) and _fits(width, ARCFACE_SIZE)
        if channels != 3 or not square or not _fits(batch, 1):
            raise FaceModelError(
                f"{self.path}: an embedder takes (N, 3, 112, 112) aligned faces, "
                f"not {model_input.shape}"
            )
        self._input = model_input.name
        self._one_at_a_time = batch == 1
        self._output = self._session.get_outputs()[0].name
        self.dimension = self._dimension()

    def _dimension(self) -> int:
        shape = self._session.get_outputs()[0].shape
        if len(shape) != 2:
            raise FaceModelError(f"{self.path}: the template output must be (N, D), not {shape}")
        if isinstance(shape[1], int):
            return shape[1]
        blank = np.zeros((1, 3, ARCFACE_SIZE, ARCFACE_SIZE), dtype=np.float32)
        return int(self._run(blank).shape[1])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        try:
            output = self._session.run([self._output], {self._input: batch})[0]
        except Exception as exc:
            raise FaceModelError(f"{self.path} failed on an aligned face: {exc}") from exc
        if output.ndim != 2 or output.shape[0] != len(batch):
            raise FaceModelError(
                f"{self.path}: expected ({len(batch)}, D) templates, got {output.shape}"
            )
        return np.asarray(output)

    def _landmarks(self, face: FaceBox, index: int) -> np.ndarray:
        if face.landmarks is None:
            raise ValueError(
                f"{self.name} aligns faces by their five landmarks and face {index} has none: "
                "use a detector that gives landmarks"
            )
        return face.landmarks

    def embed(self, rgb: np.ndarray, faces: list[FaceBox]) -> np.ndarray:
        image = check_rgb(rgb)
        if not faces:
            return np.zeros((0, self.dimension), dtype=np.float32)
        aligned = np.stack(
            [align_arcface(image, self._landmarks(face, i)) for i, face in enumerate(faces)]
        )
        pixels = (aligned.astype(np.float32) - 127.5) / 127.5
        batch = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
        if self._one_at_a_time:
            templates = np.concatenate([self._run(batch[i : i + 1]) for i in range(len(batch))])
        else:
            templates = self._run(batch)
        if templates.shape[1] != self.dimension:
            raise FaceModelError(
                f"{self.path}: templates of {templates.shape[1]} values, expected {self.dimension}"
            )
        return unit_rows(templates, self.name)


class OnnxDetector:
    """An ONNX face detector (module docstring: the contract)."""

    def __init__(
        self, path: Path, score_threshold: float = 0.5, overlap_threshold: float = 0.4
    ) -> None:
        self.path = Path(path)
        self._session = _open(self.path)
        self.name = model_name(self.path)
        self.score_threshold = score_threshold
        self.overlap_threshold = overlap_threshold
        model_input = _only_float_input(self._session, self.path)
        batch, channels, height, width = model_input.shape
        if batch != 1 or channels != 3 or not isinstance(height, int) or not isinstance(width, int):
            raise FaceModelError(
                f"{self.path}: a detector takes a fixed (1, 3, H, W) input, not {model_input.shape}"
            )
        self._input, self._height, self._width = model_input.name, height, width
        self._outputs = self._check_outputs()

    def _check_outputs(self) -> list[str]:
        shapes = {output.name: output.shape for output in self._session.get_outputs()}
        if "boxes" not in shapes or "scores" not in shapes:
            raise FaceModelError(
                f"{self.path}: a detector needs outputs named 'boxes' (N, 4) and 'scores' (N,), "
                f"found {sorted(shapes)}"
            )
        present = [name for name in _DETECTOR_OUTPUTS if name in shapes]
        for name in present:
            shape, wanted = shapes[name], _DETECTOR_OUTPUTS[name]
            fits = all(_fits(have, want) for have, want in zip(shape[1:], wanted[1:], strict=False))
            if len(shape) != len(wanted) or not fits:
                raise FaceModelError(
                    f"{self.path}: output '{name}' has shape {shape}, expected {wanted}"
                )
        return present

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """The input tensor and the x and y scales from image to input pixels."""
        height, width = image.shape[:2]
        scale = min(self._width / width, self._height / height)
        new_width = max(1, min(self._width, round(width * scale)))
        new_height = max(1, min(self._height, round(height * scale)))
        shrinking = scale < 1
        resized = cv2.resize(
            image,
            (new_width, new_height),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
        canvas = np.zeros((self._height, self._width, 3), dtype=np.float32)
        canvas[:new_height, :new_width] = resized.astype(np.float32) / 255.0
        tensor = np.ascontiguousarray(canvas.transpose(2, 0, 1)[np.newaxis])
        return tensor, new_width / width, new_height / height

    def _run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        try:
            values = self._session.run(self._outputs, {self._input: tensor})
        except Exception as exc:
            raise FaceModelError(f"{self.path} failed on an image: {exc}") from exc
        outputs = {
            name: np.asarray(value, dtype=np.float32)
            for name, value in zip(self._outputs, values, strict=True)
        }
        count = len(outputs["scores"])
        for name, value in outputs.items():
            expected = tuple(count if side == "N" else side for side in _DETECTOR_OUTPUTS[name])
            if value.shape != expected:
                raise FaceModelError(
                    f"{self.path}: output '{name}' is {value.shape}, expected {expected}"
                )
        return outputs

    def _kept(self, boxes: np.ndarray, scores: np.ndarray) -> list[int]:
        """Indices of the boxes that score enough and are not suppressed, best first."""
        rects = [(float(x1), float(y1), float(x2 - x1), float(y2 - y1)) for x1, y1, x2, y2 in boxes]
        kept = cv2.dnn.NMSBoxes(
            rects, scores.tolist(), self.score_threshold, self.overlap_threshold
        )
        return sorted(np.asarray(kept, dtype=int).ravel().tolist(), key=lambda i: -scores[i])

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        image = check_rgb(rgb)
        height, width = image.shape[:2]
        tensor, scale_x, scale_y = self._letterbox(image)
        outputs = self._run(tensor)
        scale = np.array([scale_x, scale_y], dtype=np.float32)
        boxes = outputs["boxes"].reshape(-1, 2, 2) / scale
        landmarks = (
            outputs["landmarks"].reshape(-1, 5, 2) / scale if "landmarks" in outputs else None
        )
        faces = []
        for index in self._kept(outputs["boxes"], outputs["scores"]):
            (x1, y1), (x2, y2) = boxes[index]
            left, top = max(0, math.floor(x1)), max(0, math.floor(y1))
            right, bottom = min(width, math.ceil(x2)), min(height, math.ceil(y2))
            if right > left and bottom > top:
                points = None if landmarks is None else landmarks[index]
                faces.append(
                    FaceBox(left, top, right, bottom, float(outputs["scores"][index]), points)
                )
        return faces
