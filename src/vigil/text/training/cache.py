"""Embeddings of training texts, cached outside the repository: embedding the ~100k rows takes
about a quarter of an hour of both cores, and every training run after the first needs none.

The cache is a folder of chunk files (``keys``: 16-byte SHA-256 prefixes of the embedded text;
``vectors``: float32), one written per batch, so an interrupted run keeps what it did. It is
keyed by the text alone, so a change to normalization re-embeds just the texts it changed. The
folder name carries the model, so another model never reads these vectors.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vigil.text.classifier import embedding

log = logging.getLogger(__name__)

BATCH = 512
MODEL_TAG = "e5-small-q4-passage"


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


class EmbeddingCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder / "text-embeddings" / MODEL_TAG
        self._vectors: dict[bytes, np.ndarray] = {}
        for chunk in sorted(self.folder.glob("chunk-*.npz")):
            with np.load(chunk, allow_pickle=False) as arrays:
                keys, vectors = arrays["keys"], arrays["vectors"]
            self._vectors.update(zip((bytes(k) for k in keys), vectors, strict=True))

    def __len__(self) -> int:
        return len(self._vectors)

    def embed(
        self,
        texts: Sequence[str],
        embedder: Callable[[Sequence[str]], np.ndarray] = embedding.embed,
    ) -> np.ndarray:
        """Embeddings of ``texts`` (N x 384), computing and storing the ones not cached."""
        keys = [text_key(text) for text in texts]
        missing = sorted(
            {
                key: text for key, text in zip(keys, texts, strict=True) if key not in self._vectors
            }.items()
        )
        for start in range(0, len(missing), BATCH):
            batch = missing[start : start + BATCH]
            self._store([key for key, _ in batch], embedder([text for _, text in batch]))
            log.info("embedded %d of %d new texts", start + len(batch), len(missing))
        return np.stack([self._vectors[key] for key in keys]) if keys else np.zeros((0, 384))

    def _store(self, keys: list[bytes], vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(b"".join(keys)).hexdigest()[:16]
        temporary = self.folder / f"partial-{name}.npz"
        np.savez(
            temporary,
            keys=np.frombuffer(b"".join(keys), dtype="S16"),
            vectors=vectors.astype(np.float32),
        )
        temporary.replace(self.folder / f"chunk-{name}.npz")
        self._vectors.update(zip(keys, vectors.astype(np.float32), strict=True))
