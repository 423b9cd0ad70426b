"""Training the heads vigil ships (``vigil train ...``): reproducible from ``../shared/data``,
each writing a small artifact and its model card into ``vigil/live/models``."""

import json
from pathlib import Path
from typing import Any

#: Where the shipped artifacts and model cards live (package data).
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def read_model_metadata(path: Path, model: str, command: str) -> dict[str, Any]:
    """The JSON metadata beside a model artifact (``path`` with ``.json``); a missing artifact
    names the ``command`` that trains one."""
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise FileNotFoundError(f"no {model} model at {path} (+ .json): train one with `{command}`")
    metadata: dict[str, Any] = json.loads(sidecar.read_text("utf-8"))
    return metadata
