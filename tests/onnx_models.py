"""Writing the small ONNX models that tests load as user-supplied models (live classifiers,
face detectors and embedders): the ``onnx`` package builds them, so nothing is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import in_ci


def onnx_module() -> Any:
    """The ``onnx`` package: skip without it locally, fail in CI."""
    try:
        import onnx
    except ImportError:
        if in_ci():
            pytest.fail("the onnx package (dev extra) is required in CI")
        pytest.skip("the onnx package is not installed")
    return onnx


def save_model(
    path: Path, nodes: list[Any], inputs: list[Any], outputs: list[Any], weights: list[Any]
) -> Path:
    """A checked opset-13 model of one graph at ``path``."""
    onnx = onnx_module()
    graph = onnx.helper.make_graph(nodes, path.stem, inputs, outputs, initializer=weights)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
