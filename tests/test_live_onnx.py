"""User-supplied ONNX classifiers: real models built with the ``onnx`` helper API, run by ONNX
Runtime, checked against their spec at load, configured from JSON or TOML."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from onnx_models import onnx_module, save_model
from test_live_cues_support import photo
from vigil.live.evidence.onnx import (
    OnnxClassifierSpec,
    OnnxEvidenceFactory,
    OnnxModelError,
    load_onnx_specs,
    onnx_factories,
    parse_onnx_specs,
)
from vigil.live.samples import AudioWindow, VideoSample

SIZE = 32


def redness_model(path: Path, layout: str = "NCHW", size: int | str = SIZE) -> Path:
    """Two logits from the mean colour: class 1 rises with red over green and blue. A string
    ``size`` leaves the height and width open (named dimensions)."""
    onnx = onnx_module()
    helper, tensor = onnx.helper, onnx.TensorProto
    shape = [1, 3, size, size] if layout == "NCHW" else [1, size, size, 3]
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    weights = np.array([[0.0, 16.0], [0.0, -8.0], [0.0, -8.0]], np.float32)
    return save_model(
        path,
        [
            helper.make_node("ReduceMean", ["image"], ["colour"], axes=axes, keepdims=0),
            helper.make_node("MatMul", ["colour", "w"], ["product"]),
            helper.make_node("Add", ["product", "b"], ["logits"]),
        ],
        [helper.make_tensor_value_info("image", tensor.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", tensor.FLOAT, [1, 2])],
        [
            onnx.numpy_helper.from_array(weights, "w"),
            onnx.numpy_helper.from_array(np.zeros(2, np.float32), "b"),
        ],
    )


def loudness_model(path: Path) -> Path:
    """One logit from the mean power of 1 s of audio: loud windows are positive."""
    onnx = onnx_module()
    helper, tensor = onnx.helper, onnx.TensorProto
    return save_model(
        path,
        [
            helper.make_node("Mul", ["audio", "audio"], ["power"]),
            helper.make_node("ReduceMean", ["power"], ["mean"], axes=[1], keepdims=1),
            helper.make_node("Mul", ["mean", "gain"], ["scaled"]),
            helper.make_node("Add", ["scaled", "bias"], ["logit"]),
        ],
        [helper.make_tensor_value_info("audio", tensor.FLOAT, [1, 16000])],
        [helper.make_tensor_value_info("logit", tensor.FLOAT, [1, 1])],
        [
            onnx.numpy_helper.from_array(np.array(100.0, np.float32), "gain"),
            onnx.numpy_helper.from_array(np.array(-3.0, np.float32), "bias"),
        ],
    )


def _spec(path: Path, **fields: Any) -> OnnxClassifierSpec:
    base: dict[str, Any] = {
        "name": "red",
        "path": path,
        "positive": [1],
        "mean": [0, 0, 0],
        "std": [1, 1, 1],
        "llr_min": -1.0,
        "llr_max": 2.0,
    }
    return OnnxClassifierSpec.model_validate(base | fields)


def _frame(rgb: tuple[int, int, int], t: float = 0.0) -> VideoSample:
    pixels = np.empty((90, 160, 3), np.uint8)
    pixels[:] = rgb
    return VideoSample("s", t, pixels, time.monotonic())


RED, BLUE = (220, 30, 30), (30, 30, 220)


def test_a_real_model_scores_frames_and_maps_logit_to_a_clipped_llr(tmp_path: Path) -> None:
    factory = OnnxEvidenceFactory(_spec(redness_model(tmp_path / "red.onnx")))
    source = factory("s")
    assert factory.name == source.name == "onnx:red"
    red, blue = source.observe(_frame(RED)), source.observe(_frame(BLUE))
    assert red is not None and blue is not None
    assert red.score > 0.99 and red.llr == 2.0
    assert blue.score < 0.01 and blue.llr == -1.0
    assert red.source == "onnx:red" and red.detail["top_class"] == 1


def test_scale_offset_and_colour_order_follow_the_spec(tmp_path: Path) -> None:
    model = redness_model(tmp_path / "red.onnx")
    grey = _frame((128, 128, 128))
    # Grey: both logits 0, p = 0.5, logit(p) = 0, so the ratio is the offset.
    neutral = OnnxEvidenceFactory(_spec(model, llr_offset=0.3))("s").observe(grey)
    assert neutral is not None and neutral.score == pytest.approx(0.5, abs=1e-3)
    assert neutral.llr == pytest.approx(0.3, abs=0.01)
    swapped = OnnxEvidenceFactory(_spec(model, color="BGR"))("s").observe(_frame(RED))
    assert swapped is not None and swapped.score < 0.01


def test_an_nhwc_model_and_a_real_photo(tmp_path: Path, shared_data: Path) -> None:
    model = redness_model(tmp_path / "nhwc.onnx", layout="NHWC")
    source = OnnxEvidenceFactory(_spec(model, layout="NHWC"))("s")
    picture = photo(shared_data / "images" / "kodak24", 3)  # red caps
    sample = VideoSample("s", 0.0, np.ascontiguousarray(picture), time.monotonic())
    evidence = source.observe(sample)
    assert evidence is not None
    r, g, b = picture.reshape(-1, 3).mean(axis=0) / 255
    expected = 16 * r - 8 * g - 8 * b  # resizing to 32x32 keeps the mean colour
    assert np.log(evidence.score / (1 - evidence.score)) == pytest.approx(expected, abs=0.1)


def test_an_open_input_size_needs_one_in_the_spec(tmp_path: Path) -> None:
    model = redness_model(tmp_path / "open.onnx", size="side")
    with pytest.raises(OnnxModelError, match="open size"):
        OnnxEvidenceFactory(_spec(model))
    evidence = OnnxEvidenceFactory(_spec(model, input_size=(48, 24)))("s").observe(_frame(RED))
    assert evidence is not None and evidence.score > 0.99


def test_every_nth_frame_per_stream(tmp_path: Path) -> None:
    factory = OnnxEvidenceFactory(_spec(redness_model(tmp_path / "red.onnx"), every_n=3))
    first, second = factory("a"), factory("b")
    said = [first.observe(_frame(RED, t)) is not None for t in range(7)]
    assert said == [True, False, False, True, False, False, True]
    assert second.observe(_frame(RED)) is not None


def test_an_audio_model(tmp_path: Path) -> None:
    spec = _spec(
        loudness_model(tmp_path / "loud.onnx"),
        name="loud",
        modality="audio",
        positive=[0],
        activation="sigmoid",
    )
    source = OnnxEvidenceFactory(spec)("s")
    assert source.modality == "audio"
    rng = np.random.default_rng(0)
    loud = AudioWindow("s", 0.0, (0.5 * rng.standard_normal(16000)).astype(np.float32), 0.0)
    quiet = AudioWindow("s", 1.0, np.zeros(8000, np.float32), 0.0)  # short: zero-padded
    said_loud, said_quiet = source.observe(loud), source.observe(quiet)  # type: ignore[arg-type]
    assert said_loud is not None and said_quiet is not None
    assert said_loud.score > 0.99 and said_quiet.score == pytest.approx(1 / (1 + np.exp(3)))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"layout": "NHWC"}, "channels"),
        ({"input_size": (64, 64)}, "width 32"),
        ({"positive": [5]}, "positive class index 5"),
        ({"output": "scores"}, "no output 'scores'"),
        ({"output": 3}, "output index 3"),
        ({"input_name": "pixels"}, "no input 'pixels'"),
        ({"modality": "audio"}, "rank-4"),
    ],
)
def test_a_model_that_does_not_fit_its_spec_is_refused_clearly(
    tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    model = redness_model(tmp_path / "red.onnx")
    with pytest.raises(OnnxModelError, match=message):
        OnnxEvidenceFactory(_spec(model, **fields))


def test_missing_and_non_onnx_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OnnxModelError, match="file not found"):
        OnnxEvidenceFactory(_spec(tmp_path / "absent.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf")
    with pytest.raises(OnnxModelError, match="not a loadable ONNX model"):
        OnnxEvidenceFactory(_spec(junk))


def test_specs_from_inline_json_a_json_file_and_a_toml_file(tmp_path: Path) -> None:
    redness_model(tmp_path / "red.onnx")
    entry = {"name": "red", "path": "red.onnx", "positive": [1], "every_n": 2}
    (tmp_path / "models.json").write_text(json.dumps([entry]))
    (tmp_path / "models.toml").write_text(
        '[[models]]\nname = "red"\npath = "red.onnx"\npositive = [1]\nlayout = "NCHW"\n'
    )
    from_json = load_onnx_specs(tmp_path / "models.json")
    from_toml = load_onnx_specs(str(tmp_path / "models.toml"))
    inline = load_onnx_specs(json.dumps({"models": [entry | {"path": str(tmp_path / "red.onnx")}]}))
    for specs in (from_json, from_toml, inline):
        assert [s.path for s in specs] == [tmp_path / "red.onnx"]
    assert from_json[0].every_n == 2
    factories = onnx_factories(from_toml)
    assert [f.name for f in factories] == ["onnx:red"]
    assert load_onnx_specs("  ") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{", "not valid JSON"),
        ('{"name": "x"}', "list of models"),
        ('[{"name": "x", "path": "m.onnx"}]', "#1"),
        ('[{"name": "x", "path": "m.onnx", "positive": [0], "colour": "RGB"}]', "colour"),
        ('[{"name": "bad name", "path": "m.onnx", "positive": [0]}]', "name"),
        (
            '[{"name": "x", "path": "m.onnx", "positive": [0], "llr_min": 2, "llr_max": 1}]',
            "llr_min",
        ),
        (
            '[{"name": "x", "path": "a", "positive": [0]},'
            ' {"name": "x", "path": "b", "positive": [0]}]',
            "unique",
        ),
    ],
)
def test_bad_configuration_is_refused_with_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(OnnxModelError, match=message):
        parse_onnx_specs(text)


def test_a_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OnnxModelError, match="not found"):
        load_onnx_specs(tmp_path / "nowhere.json")
