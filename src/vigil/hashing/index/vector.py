"""Exact cosine search over L2-normalised embeddings (the image-embedding second stage)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from vigil.hashing.index.base import IndexHit
from vigil.hashing.signals.embedding import DIMENSIONS, decode_vector

_INDEX_FILE = "vectors.faiss"
_IDS_FILE = "ids.npy"


class VectorIndex:
    """A flat inner-product index: exact, and at 5 KB a vector fine up to a few hundred thousand
    banked images. Distances are 1 - cosine, so a threshold means the same as in the signal type.
    """

    def __init__(self) -> None:
        self._index: faiss.Index = faiss.IndexFlatIP(DIMENSIONS)
        self._ids = np.empty(0, dtype=np.int64)
        # faiss does not promise that search is safe while another thread adds.
        self._lock = threading.Lock()

    def add(self, ids: Sequence[int], values: Sequence[str]) -> None:
        vectors = np.stack([decode_vector(v) for v in values]).astype(np.float32)
        with self._lock:
            self._index.add(vectors)
            self._ids = np.concatenate([self._ids, np.asarray(ids, dtype=np.int64)])

    def query(self, values: Sequence[str], threshold: float) -> list[list[IndexHit]]:
        if not values:
            return []
        queries = np.stack([decode_vector(v) for v in values]).astype(np.float32)
        with self._lock:
            limits, similarities, rows = self._index.range_search(queries, 1.0 - threshold)
            ids = self._ids
        return [
            [
                IndexHit(int(ids[row]), max(0.0, 1.0 - float(similarity)))
                for row, similarity in zip(
                    rows[limits[q] : limits[q + 1]],
                    similarities[limits[q] : limits[q + 1]],
                    strict=True,
                )
            ]
            for q in range(len(values))
        ]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            faiss.write_index(self._index, str(directory / _INDEX_FILE))
            np.save(directory / _IDS_FILE, self._ids)

    @classmethod
    def load(cls, directory: Path) -> VectorIndex:
        index = cls()
        index._index = faiss.read_index(str(directory / _INDEX_FILE))
        index._ids = np.load(directory / _IDS_FILE)
        return index
