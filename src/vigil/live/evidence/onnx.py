"""Any ONNX classifier as an evidence source, by configuration.

A platform that has its own model (a better weapon detector, a violence classifier, a
look-alike classifier for its own games) describes it in an :class:`OnnxClassifierSpec` and
vigil runs it on every ``every_n``-th frame (or audio window) of each stream with ONNX Runtime
on the CPU (one thread per call: many streams share the machine). The model's positive
probability p is the sum of the softmax (or, with ``activation="sigmoid"``, the noisy-OR of
the sigmoids) over the ``positive`` class indices of the chosen output, and its ratio is

    LLR = clip(llr_scale * logit(p) + llr_offset, llr_min, llr_max)

so a calibrated model trained at prior pi uses ``llr_scale=1, llr_offset=-logit(pi)``, and a
model that recognises look-alikes gets a negative scale or a range below 0. Choose the clip
range by the same rule as vigil's own sources: one source alone must not reach the fusion's
drift (2.5 per second).

Specs come as a JSON list (inline or in a ``.json`` file) or a TOML file with ``[[models]]``
tables (:func:`load_onnx_specs`); relative model paths resolve against the file's folder. The
model is checked when it is loaded: the file exists and is ONNX, the input's rank, channel
count and size agree with the spec, the chosen output exists and has the positive classes, and
one run on a blank input gives that shape. Every problem raises :class:`OnnxModelError` with
the model's name and what to fix.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vigil.live.evidence.base import Evidence, clip, logit
from vigil.live.samples import AudioWindow, VideoSample


class OnnxModelError(ValueError):
    """A model or its configuration cannot be used; the message says which and why."""


class OnnxClassifierSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Short name; the evidence source is called ``onnx:<name>``.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    path: Path
    modality: Literal["video", "audio"] = "video"
    #: The model input to feed; default: its first input.
    input_name: str | None = None
    #: Video: (width, height) the frame is resized to; default: the model's fixed size.
    input_size: tuple[int, int] | None = None
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    color: Literal["RGB", "BGR"] = "RGB"
    #: Video pixels become ``(value * scale - mean) / std`` per channel (in ``color`` order).
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    #: Audio: samples (16 kHz mono) the model takes; the 1 s window is cut or zero-padded.
    audio_samples: int = Field(default=16_000, ge=1)
    #: The output to read, by name or index.
    output: str | int = 0
    #: Class indices whose probabilities add up to p.
    positive: tuple[int, ...] = Field(min_length=1)
    #: How the output becomes probabilities ("none": it already is).
    activation: Literal["softmax", "sigmoid", "none"] = "softmax"
    llr_scale: float = 1.0
    llr_offset: float = 0.0
    llr_min: float = Field(default=-1.0, ge=-10.0, le=10.0)
    llr_max: float = Field(default=1.0, ge=-10.0, le=10.0)
    #: Run on every n-th sample of a stream.
    every_n: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> OnnxClassifierSpec:
        if self.llr_min > self.llr_max:
            raise ValueError("llr_min must not exceed llr_max")
        if any(index < 0 for index in self.positive):
            raise ValueError("positive class indices must be >= 0")
        if any(s == 0 for s in self.std):
            raise ValueError("std must not contain 0")
        if self.input_size is not None and min(self.input_size) < 1:
            raise ValueError("input_size must be positive (width, height)")
        return self

    @property
    def source_name(self) -> str:
        return f"onnx:{self.name}"


def parse_onnx_specs(text: str, base_dir: Path | None = None) -> list[OnnxClassifierSpec]:
    """Specs from JSON: a list of objects (or ``{"models": [...]}``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OnnxModelError(f"ONNX model list is not valid JSON: {exc}") from exc
    return _specs_from(data, base_dir)


def load_onnx_specs(value: str | Path) -> list[OnnxClassifierSpec]:
    """Specs from a setting such as ``VIGIL_LIVE_ONNX_MODELS``: inline JSON, or the path of a
    ``.json`` or ``.toml`` file (TOML: ``[[models]]`` tables)."""
    text = str(value).strip()
    if not text:
        return []
    if text[0] in "[{":
        return parse_onnx_specs(text)
    path = Path(text).expanduser()
    if not path.is_file():
        raise OnnxModelError(f"ONNX model list not found: {path}")
    content = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        try:
            data: Any = tomllib.loads(content)
        except tomllib.TOMLDecodeError as exc:
            raise OnnxModelError(f"{path} is not valid TOML: {exc}") from exc
        return _specs_from(data, path.parent)
    return parse_onnx_specs(content, path.parent)


def _specs_from(data: Any, base_dir: Path | None) -> list[OnnxClassifierSpec]:
    if isinstance(data, dict):
        data = data.get("models")
    if not isinstance(data, list):
        raise OnnxModelError("the ONNX model list must be a list of models (or {models: [...]})")
    specs = []
    for position, entry in enumerate(data):
        try:
            spec = OnnxClassifierSpec.model_validate(entry)
        except ValidationError as exc:
            raise OnnxModelError(f"ONNX model #{position + 1}: {exc}") from exc
        if base_dir is not None and not spec.path.is_absolute():
            spec = spec.model_copy(update={"path": base_dir / spec.path})
        specs.append(spec)
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise OnnxModelError(f"ONNX model names must be unique: {', '.join(duplicates)}")
    return specs


def _fixed(dim: Any) -> int | None:
    """A dimension's size, or None when the model leaves it open (a name or -1)."""
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxClassifier:
    """A loaded, checked model; shared by every stream (ONNX Runtime sessions are thread-safe)."""

    def __init__(self, spec: OnnxClassifierSpec) -> None:
        self.spec = spec
        self._session = _open_session(spec)
        inputs = {i.name: i for i in self._session.get_inputs()}
        name = spec.input_name or self._session.get_inputs()[0].name
        if name not in inputs:
            self._fail(f"has no input '{name}' (inputs: {', '.join(inputs)})")
        self._input = name
        if inputs[name].type != "tensor(float)":
            self._fail(f"input '{name}' is {inputs[name].type}; vigil feeds tensor(float)")
        shape = list(inputs[name].shape)
        if spec.modality == "video":
            self._shape = self._video_shape(shape)
        else:
            self._shape = self._audio_shape(shape)
        self._output = self._output_index()
        self._check_run()

    def _fail(self, problem: str) -> NoReturn:
        raise OnnxModelError(f"ONNX model '{self.spec.name}' ({self.spec.path}) {problem}")

    def _video_shape(self, shape: list[Any]) -> tuple[int, ...]:
        if len(shape) != 4:
            self._fail(f"takes a rank-{len(shape)} input {shape}; a video model takes 4 dims")
        nchw = self.spec.layout == "NCHW"
        if nchw:
            channels, height, width = shape[1:]
        else:
            height, width, channels = shape[1:]
        if _fixed(shape[0]) not in (None, 1):
            self._fail(f"has a fixed batch of {shape[0]}; vigil sends one frame at a time")
        if _fixed(channels) not in (None, 3):
            self._fail(f"input {shape} has {channels} channels where {self.spec.layout} needs 3")
        size = self.spec.input_size or (_fixed(width), _fixed(height))
        if size[0] is None or size[1] is None:
            self._fail(f"input {shape} has an open size: set input_size (width, height)")
        for wanted, dim, axis in ((size[0], width, "width"), (size[1], height, "height")):
            if _fixed(dim) not in (None, wanted):
                self._fail(f"input {shape} has {axis} {dim}, the spec says {wanted}")
        w, h = int(size[0] or 0), int(size[1] or 0)
        return (1, 3, h, w) if nchw else (1, h, w, 3)

    def _audio_shape(self, shape: list[Any]) -> tuple[int, ...]:
        if len(shape) not in (2, 3):
            self._fail(f"takes a rank-{len(shape)} input {shape}; audio takes [1, n] or [1, 1, n]")
        if _fixed(shape[-1]) not in (None, self.spec.audio_samples):
            self._fail(
                f"input {shape} takes {shape[-1]} samples, the spec says audio_samples="
                f"{self.spec.audio_samples}"
            )
        return (1, self.spec.audio_samples) if len(shape) == 2 else (1, 1, self.spec.audio_samples)

    def _output_index(self) -> int:
        outputs = [o.name for o in self._session.get_outputs()]
        wanted = self.spec.output
        if isinstance(wanted, int):
            if not 0 <= wanted < len(outputs):
                self._fail(f"has {len(outputs)} output(s); output index {wanted} does not exist")
            return wanted
        if wanted not in outputs:
            self._fail(f"has no output '{wanted}' (outputs: {', '.join(outputs)})")
        return outputs.index(wanted)

    def _check_run(self) -> None:
        try:
            scores = self._scores(np.zeros(self._shape, np.float32))
        except OnnxModelError:
            raise
        except Exception as exc:
            self._fail(f"failed on a blank {self._shape} input: {exc}")
        if max(self.spec.positive) >= scores.size:
            self._fail(
                f"gives {scores.size} class score(s); positive class index "
                f"{max(self.spec.positive)} does not exist"
            )

    def _scores(self, tensor: np.ndarray) -> np.ndarray:
        result = self._session.run(None, {self._input: tensor})[self._output]
        scores = np.asarray(result, dtype=np.float64)
        if scores.ndim > 2 or (scores.ndim == 2 and scores.shape[0] != 1):
            self._fail(f"output shape {scores.shape} is not [classes] or [1, classes]")
        return scores.reshape(-1)

    def probability(self, scores: np.ndarray) -> float:
        positive = list(self.spec.positive)
        if self.spec.activation == "softmax":
            exp = np.exp(scores - scores.max())
            return float(exp[positive].sum() / exp.sum())
        if self.spec.activation == "sigmoid":
            p = 1.0 / (1.0 + np.exp(-scores[positive]))
            return float(1.0 - np.prod(1.0 - p))
        return float(np.clip(scores[positive].sum(), 0.0, 1.0))

    def video_tensor(self, rgb: np.ndarray) -> np.ndarray:
        spec = self.spec
        height, width = (
            (self._shape[2], self._shape[3])
            if spec.layout == "NCHW"
            else (self._shape[1], self._shape[2])
        )
        shrinking = width * height < rgb.shape[0] * rgb.shape[1]
        image = cv2.resize(
            np.ascontiguousarray(rgb),
            (width, height),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
        if spec.color == "BGR":
            image = image[:, :, ::-1]
        mean = np.asarray(spec.mean, dtype=np.float32)
        std = np.asarray(spec.std, dtype=np.float32)
        pixels = (image.astype(np.float32) * np.float32(spec.scale) - mean) / std
        if spec.layout == "NCHW":
            pixels = pixels.transpose(2, 0, 1)
        return np.ascontiguousarray(pixels[np.newaxis], dtype=np.float32)

    def audio_tensor(self, samples: np.ndarray) -> np.ndarray:
        wanted = self.spec.audio_samples
        clipped = np.asarray(samples, dtype=np.float32)[:wanted]
        padded = np.pad(clipped, (0, wanted - clipped.size))
        return padded.reshape(self._shape)

    def evidence(self, tensor: np.ndarray, t: float) -> Evidence:
        scores = self._scores(tensor)
        p = self.probability(scores)
        spec = self.spec
        llr = clip(spec.llr_scale * logit(p) + spec.llr_offset, spec.llr_min, spec.llr_max)
        top = int(np.argmax(scores))
        return Evidence(spec.source_name, t, p, llr, {"p": round(p, 4), "top_class": top})


def _open_session(spec: OnnxClassifierSpec) -> Any:
    import onnxruntime as ort

    if not spec.path.is_file():
        raise OnnxModelError(f"ONNX model '{spec.name}': file not found: {spec.path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(
            str(spec.path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise OnnxModelError(
            f"ONNX model '{spec.name}': {spec.path} is not a loadable ONNX model: {exc}"
        ) from exc


class OnnxVideoSource:
    def __init__(self, classifier: OnnxClassifier) -> None:
        self.name = classifier.spec.source_name
        self.modality: Literal["video"] = "video"
        self._classifier = classifier
        self._count = 0

    def observe(self, sample: VideoSample) -> Evidence | None:
        self._count += 1
        if (self._count - 1) % self._classifier.spec.every_n:
            return None
        return self._classifier.evidence(self._classifier.video_tensor(sample.rgb), sample.t)


class OnnxAudioSource:
    def __init__(self, classifier: OnnxClassifier) -> None:
        self.name = classifier.spec.source_name
        self.modality: Literal["audio"] = "audio"
        self._classifier = classifier
        self._count = 0

    def observe(self, window: AudioWindow) -> Evidence | None:
        self._count += 1
        if (self._count - 1) % self._classifier.spec.every_n:
            return None
        return self._classifier.evidence(self._classifier.audio_tensor(window.samples), window.t)


class OnnxEvidenceFactory:
    """Loads and checks the model once (raising :class:`OnnxModelError`); each stream gets a
    source that shares it."""

    def __init__(self, spec: OnnxClassifierSpec) -> None:
        self.classifier = OnnxClassifier(spec)
        self.name = spec.source_name

    def __call__(self, stream_id: str) -> OnnxVideoSource | OnnxAudioSource:
        if self.classifier.spec.modality == "audio":
            return OnnxAudioSource(self.classifier)
        return OnnxVideoSource(self.classifier)


def onnx_factories(specs: Sequence[OnnxClassifierSpec]) -> list[OnnxEvidenceFactory]:
    """Load every configured model (fails on the first unusable one, naming it)."""
    return [OnnxEvidenceFactory(spec) for spec in specs]
