"""Tiny ONNX face models for tests, built with ``onnx.helper`` (nothing is downloaded): they
follow the contracts in :mod:`vigil.faces.models.onnx` and compute something checkable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from onnx_models import onnx_module, save_model

#: The detector's box: the bounding box of input pixels whose mean channel exceeds this.
BRIGHT = 0.5
#: The five landmarks the detector places in its box, as fractions of its width and height.
LANDMARK_FRACTIONS = np.array(
    [[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], dtype=np.float32
)


def build_embedder(
    path: Path, dim: int = 64, batch: int | str = "batch", open_dimension: bool = False
) -> Path:
    """(N, 3, 112, 112) -> (N, dim): 8x8 average pooling, then a fixed random projection. The
    same aligned face always gives the same template; different faces give different ones.
    ``batch=1`` fixes the batch axis; ``open_dimension`` leaves the template length unnamed in
    the output's declared shape."""
    onnx = onnx_module()
    helper, numpy_helper, tensor = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    projection = np.random.default_rng(6).standard_normal((3 * 14 * 14, dim)).astype(np.float32)
    return save_model(
        path,
        [
            helper.make_node(
                "AveragePool", ["input"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]
            ),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "projection"], ["embedding"]),
        ],
        [helper.make_tensor_value_info("input", tensor.FLOAT, [batch, 3, 112, 112])],
        [
            helper.make_tensor_value_info(
                "embedding", tensor.FLOAT, [batch, "dim" if open_dimension else dim]
            )
        ],
        [numpy_helper.from_array(projection, "projection")],
    )


def build_detector(path: Path, width: int = 160, height: int = 120, landmarks: bool = True) -> Path:
    """A (1, 3, height, width) detector that finds "the face" as the bounding box of the bright
    pixels (mean channel > :data:`BRIGHT`). It returns three boxes: that box with score =
    the brightest pixel, the same box shifted by 2 px with 0.9 x that score (overlap
    suppression must drop it), and a fixed 4x4 box at the origin scoring 0.3 (the score
    threshold must drop it). ``landmarks`` places five points at :data:`LANDMARK_FRACTIONS` of
    each box."""
    onnx = onnx_module()
    helper, numpy_helper, tensor = onnx.helper, onnx.numpy_helper, onnx.TensorProto

    def constant(name: str, value: np.ndarray) -> Any:
        return numpy_helper.from_array(value, name)

    # boxes (N, 4) @ this = landmarks (N, 10): x = (1 - fx) x1 + fx x2, likewise y.
    fx, fy = LANDMARK_FRACTIONS[:, 0], LANDMARK_FRACTIONS[:, 1]
    box_to_landmarks = np.zeros((4, 10), dtype=np.float32)
    box_to_landmarks[0, 0::2], box_to_landmarks[2, 0::2] = 1 - fx, fx
    box_to_landmarks[1, 1::2], box_to_landmarks[3, 1::2] = 1 - fy, fy

    def edges(profile: str, axis_name: str) -> list[Any]:
        first, last = f"{axis_name}_first", f"{axis_name}_last"
        return [
            helper.make_node("ArgMax", [profile], [first], axis=1, keepdims=0),
            helper.make_node("ArgMax", [profile], [last], axis=1, keepdims=0, select_last_index=1),
            helper.make_node("Cast", [first], [f"{first}_f"], to=tensor.FLOAT),
            helper.make_node("Cast", [last], [f"{last}_l"], to=tensor.FLOAT),
            helper.make_node("Add", [f"{last}_l", "one"], [f"{last}_f"]),
        ]

    nodes = [
        helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=0),
        helper.make_node("Greater", ["grey", "bright"], ["mask_bool"]),
        helper.make_node("Cast", ["mask_bool"], ["mask"], to=tensor.FLOAT),
        helper.make_node("ReduceMax", ["mask"], ["columns"], axes=[1], keepdims=0),
        helper.make_node("ReduceMax", ["mask"], ["rows"], axes=[2], keepdims=0),
        *edges("columns", "x"),
        *edges("rows", "y"),
        helper.make_node(
            "Concat", ["x_first_f", "y_first_f", "x_last_f", "y_last_f"], ["box"], axis=0
        ),
        helper.make_node("Unsqueeze", ["box", "zero_axis"], ["box_row"]),
        helper.make_node("Add", ["box_row", "shift"], ["shifted"]),
        helper.make_node("Concat", ["box_row", "shifted", "decoy"], ["boxes"], axis=0),
        helper.make_node("ReduceMax", ["grey"], ["peak"], keepdims=0),
        helper.make_node("Mul", ["peak", "score_share"], ["shared"]),
        helper.make_node("Add", ["shared", "score_floor"], ["scores"]),
    ]
    weights = [
        constant("bright", np.array(BRIGHT, dtype=np.float32)),
        constant("one", np.array([1.0], dtype=np.float32)),
        constant("zero_axis", np.array([0], dtype=np.int64)),
        constant("shift", np.full((1, 4), 2.0, dtype=np.float32)),
        constant("decoy", np.array([[0.0, 0.0, 4.0, 4.0]], dtype=np.float32)),
        constant("score_share", np.array([1.0, 0.9, 0.0], dtype=np.float32)),
        constant("score_floor", np.array([0.0, 0.0, 0.3], dtype=np.float32)),
    ]
    outputs = [
        helper.make_tensor_value_info("boxes", tensor.FLOAT, [3, 4]),
        helper.make_tensor_value_info("scores", tensor.FLOAT, [3]),
    ]
    if landmarks:
        nodes.append(helper.make_node("MatMul", ["boxes", "box_to_landmarks"], ["landmarks"]))
        weights.append(constant("box_to_landmarks", box_to_landmarks))
        outputs.append(helper.make_tensor_value_info("landmarks", tensor.FLOAT, [3, 10]))
    return save_model(
        path,
        nodes,
        [helper.make_tensor_value_info("image", tensor.FLOAT, [1, 3, height, width])],
        outputs,
        weights,
    )
