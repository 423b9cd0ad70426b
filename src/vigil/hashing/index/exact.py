"""Lookup-table index for signals that match only when identical (MD5, SHA-256)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vigil.hashing.index.base import IndexHit

_FILE = "exact.npz"


class ExactIndex:
    """value -> signal ids. A dict: at GIFCT's ~2M digests it costs a few hundred MB at most and
    answers in microseconds, with no database round trip on the match path."""

    def __init__(self) -> None:
        self._ids: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def add(self, ids: Sequence[int], values: Sequence[str]) -> None:
        with self._lock:
            for signal_id, value in zip(ids, values, strict=True):
                key = value.lower()
                # Replace the tuple rather than mutate it: readers hold no lock.
                self._ids[key] = (*self._ids.get(key, ()), signal_id)

    def query(self, values: Sequence[str], threshold: float = 0.0) -> list[list[IndexHit]]:
        return [[IndexHit(i, 0.0) for i in self._ids.get(v.lower(), ())] for v in values]

    def save(self, directory: Path) -> None:
        with self._lock:
            pairs = [(v, i) for v, ids in self._ids.items() for i in ids]
        values = np.array([v for v, _ in pairs], dtype=str)
        np.savez(directory / _FILE, values=values, ids=np.array([i for _, i in pairs], np.int64))

    @classmethod
    def load(cls, directory: Path) -> ExactIndex:
        index = cls()
        with np.load(directory / _FILE) as data:
            index.add(data["ids"].tolist(), data["values"].tolist())
        return index
