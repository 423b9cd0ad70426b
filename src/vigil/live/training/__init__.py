"""Training the heads vigil ships (``vigil train ...``): reproducible from ``../shared/data``,
each writing a small artifact and its model card into ``vigil/live/models``."""

from pathlib import Path

#: Where the shipped artifacts and model cards live (package data).
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
