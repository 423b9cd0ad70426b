"""What every per-signal-type index offers the :class:`~vigil.hashing.index.SignalIndexSet`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol


class IndexHit(NamedTuple):
    """One indexed signal (an ``EntrySignal.id``) close to a query value.

    ``distance`` is the PDQ Hamming distance (the best frame's for vPDQ; 0 for exact types).
    For vPDQ, ``query_share`` is the fraction of the query's frames matching any of the indexed
    video's frames and ``index_share`` the fraction of the indexed video's frames matched; the
    caller applies the per-bank share thresholds.
    """

    signal_id: int
    distance: float
    query_share: float | None = None
    index_share: float | None = None


class SignalTypeIndex(Protocol):
    """Append-only: deleted rows vanish when the set is rebuilt from the database."""

    def add(self, ids: Sequence[int], values: Sequence[str]) -> None: ...

    def query(self, values: Sequence[str], threshold: float) -> list[list[IndexHit]]: ...

    def save(self, directory: Path) -> None: ...
