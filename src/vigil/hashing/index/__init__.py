"""In-memory indexes over the banks' signals, kept in step with the database.

The database is the record; indexes are caches. :meth:`SignalIndexSet.refresh` adds new signal
rows to in-memory deltas, searchable at once. :meth:`SignalIndexSet.compact` rebuilds everything
from the database (dropping deleted rows), writes a snapshot into ``index_dir`` and swaps it in;
it runs in a background thread by itself once about ``compact_after`` rows have arrived (each
process picks its own point within +-20 %, so matchers do not rebuild all at once), and queries
never wait for it.

New rows are found by ``EntrySignal.id``, but ids do not become visible in order: on PostgreSQL a
transaction takes its ids at INSERT and shows its rows at COMMIT, so a refresh can see id 250
while ids 100-199 are still uncommitted. So the set keeps a high-water mark (the highest id seen)
and the *gaps* below it: ranges of ids never seen, which a later commit may still fill. Every
refresh reads the gaps and whatever lies above the high-water mark; with no gaps and nothing new
that is one query returning nothing. A gap can also be ids that never appear (a rolled-back
insert, a row deleted before any refresh saw it), so once it has been open for ``gap_grace``
seconds, counted from when a higher id was first seen, it is given up: it stops costing reads
and stops holding back the low-water mark, below which every id is indexed or given up. A row
committed later than that waits for the next compaction.

Rows deleted since the last compaction may still come back as hits: the caller resolves hits
against the database and drops missing rows.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

from sqlalchemy import ColumnElement, func, or_, select

from vigil.hashing.index.base import IndexHit, SignalTypeIndex
from vigil.hashing.index.exact import ExactIndex
from vigil.hashing.index.pdq import PdqIndex, PdqSignalIndex
from vigil.hashing.index.vector import VectorIndex
from vigil.hashing.index.vpdq import VpdqIndex
from vigil.hashing.signals import get_signal_type
from vigil.store.db import Database
from vigil.store.models import EntrySignal

log = logging.getLogger(__name__)

_SNAPSHOT_PREFIX = "snapshot-"
_META = "meta.json"
#: Rows read from the database per round trip.
_PAGE = 50_000
#: A range of ``EntrySignal.id`` values, both ends included.
Gap = tuple[int, int]
#: Gaps listed in a refresh's WHERE clause at most; past this, it reads from the lowest gap up.
_MAX_GAP_RANGES = 100


class _IndexClass(Protocol):
    def __call__(self) -> SignalTypeIndex: ...

    def load(self, directory: Path) -> SignalTypeIndex: ...


#: The index of each similarity-matched signal type; exact types share the lookup-table index.
_INDEX_CLASSES: dict[str, _IndexClass] = {
    "pdq": PdqSignalIndex,
    "vpdq": VpdqIndex,
    "effnet_lite0": VectorIndex,
}


def _kind(signal_type: str) -> str | None:
    """Which index holds a signal type: its canonical name, or None if it has no index."""
    try:
        kind = get_signal_type(signal_type)
    except ValueError:
        return None
    return kind.name if kind.exact or kind.name in _INDEX_CLASSES else None


def _index_class(name: str) -> _IndexClass:
    return _INDEX_CLASSES.get(name, ExactIndex)


def _new_index(name: str) -> SignalTypeIndex:
    return _index_class(name)()


def _load_index(name: str, directory: Path) -> SignalTypeIndex:
    return _index_class(name).load(directory)


def _minus(gaps: Sequence[Gap], ids: Sequence[int]) -> list[Gap]:
    """What is left of the sorted, disjoint ``gaps`` once the sorted ``ids`` are taken out."""
    left: list[Gap] = []
    i = 0
    for lo, hi in gaps:
        i = bisect.bisect_left(ids, lo, i)
        start = lo
        while i < len(ids) and ids[i] <= hi:
            if ids[i] > start:
                left.append((start, ids[i] - 1))
            start = ids[i] + 1
            i += 1
        if start <= hi:
            left.append((start, hi))
    return left


def _unseen(gaps: Sequence[Gap], high_water: int, signal_id: int) -> bool:
    """Whether ``signal_id`` lies above ``high_water`` or in one of the sorted ``gaps``."""
    if signal_id > high_water:
        return True
    # The last gap starting at or below the id.
    i = bisect.bisect_right(gaps, signal_id, key=lambda gap: gap[0]) - 1
    return i >= 0 and gaps[i][1] >= signal_id


@dataclass
class _Rows:
    """Rows read from the database: (ids, values) per index, and every id read in order,
    including those of signal types without an index."""

    by_kind: dict[str, tuple[list[int], list[str]]] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)

    @property
    def indexed(self) -> int:
        return sum(len(ids) for ids, _ in self.by_kind.values())


class SignalIndexSet:
    def __init__(
        self,
        db: Database,
        index_dir: Path,
        *,
        compact_after: int = 50_000,
        gap_grace: float = 60.0,
    ) -> None:
        self._db = db
        self._dir = index_dir
        # Matchers that started together and see the same rows would all rebuild from the
        # database at the same moment (the anchor's thundering herd); each takes its own point
        # within +-20 % instead.
        self._compact_after = max(1, round(compact_after * random.uniform(0.8, 1.2)))
        self._gap_grace = gap_grace
        self._indexes: dict[str, SignalTypeIndex] = {}
        self._high_water = 0
        # Sorted, disjoint, below the high-water mark; replaced, never changed in place.
        self._gaps: list[Gap] = []
        # (id, monotonic time) pairs, ascending: when the highest id seen first reached the id.
        # A gap has been open since the first entry above it.
        self._high_water_log: list[tuple[int, float]] = []
        self._since_compact = 0
        self._refresh_lock = threading.Lock()
        self._compact_lock = threading.Lock()
        self._compactor: threading.Thread | None = None
        self._load_newest_snapshot()
        self.refresh()

    @property
    def high_water(self) -> int:
        """The highest ``EntrySignal.id`` seen so far."""
        return self._high_water

    @property
    def low_water(self) -> int:
        """Every ``EntrySignal.id`` up to this is indexed, or given up as never coming."""
        gaps = self._gaps
        return gaps[0][0] - 1 if gaps else self._high_water

    @property
    def gaps(self) -> list[Gap]:
        """The ranges of ids below the high-water mark not seen yet, which refreshes read."""
        return list(self._gaps)

    def refresh(self) -> int:
        """Index rows committed to the database since the last call; return how many."""
        with self._refresh_lock:
            added = self._refresh_locked()
            if self._since_compact >= self._compact_after:
                self._compact_in_background()
        return added

    def holds(self, signal_type: str) -> bool:
        """Whether any signal of this type has been indexed (deleted rows may still count)."""
        name = _kind(signal_type)
        return name is not None and name in self._indexes

    def query(
        self, signal_type: str, values: Sequence[str], threshold: float
    ) -> list[list[IndexHit]]:
        """Per query value, the indexed signals of ``signal_type`` within ``threshold``."""
        name = _kind(signal_type)
        if name is None:
            raise ValueError(f"signal type {signal_type!r} has no index")
        index = self._indexes.get(name)
        if index is None or not values:
            return [[] for _ in values]
        return index.query(values, threshold)

    def compact(self) -> None:
        """Rebuild every index from the database, snapshot it, and swap it in."""
        with self._compact_lock:
            with self._refresh_lock:
                floor = self.low_water
            top = max(self._newest_id(), floor)
            rows = self._read_rows(EntrySignal.id <= top, lambda _: True)
            indexes = self._add_rows(rows, {})
            # Every id up to ``floor`` was indexed or given up before this read began, so one
            # missing from it was deleted or never comes; one missing above it is a gap still.
            gaps = _minus([(floor + 1, top)], rows.ids)
            self._write_snapshot(indexes, top, gaps)
            with self._refresh_lock:
                self._indexes, self._high_water, self._gaps = indexes, top, gaps
                self._since_compact = 0
                self._log_high_water(top)
                # Rows above ``top`` already sit in the old deltas; read them again into the new.
                self._refresh_locked()

    def close(self) -> None:
        compactor = self._compactor
        if compactor is not None:
            compactor.join()

    def _newest_id(self) -> int:
        with self._db.session() as session:
            return session.scalar(select(func.max(EntrySignal.id))) or 0

    def _refresh_locked(self) -> int:
        gaps, high_water = self._gaps, self._high_water
        rows = self._read_rows(self._unseen_clause(), partial(_unseen, gaps, high_water))
        if rows.ids:
            # Copy-on-write of the dict: a query holding the old one still sees complete indexes.
            self._indexes = self._add_rows(rows, dict(self._indexes))
            top = max(rows.ids[-1], high_water)
            self._gaps = _minus([*gaps, (high_water + 1, top)], rows.ids)
            self._high_water = top
            self._log_high_water(top)
        self._give_up_old_gaps()
        self._since_compact += rows.indexed
        return rows.indexed

    def _unseen_clause(self) -> ColumnElement[bool]:
        """Rows above the high-water mark or in a gap; when the gaps are too many to list,
        everything from the lowest gap up (:func:`_unseen` then drops the rows seen before)."""
        if len(self._gaps) > _MAX_GAP_RANGES:
            return EntrySignal.id >= self._gaps[0][0]
        return or_(
            EntrySignal.id > self._high_water,
            *(EntrySignal.id.between(lo, hi) for lo, hi in self._gaps),
        )

    def _log_high_water(self, top: int) -> None:
        history = self._high_water_log
        if not history or top > history[-1][0]:
            history.append((top, time.monotonic()))

    def _give_up_old_gaps(self) -> None:
        now = time.monotonic()
        history = self._high_water_log
        expired = 0
        for _, hi in self._gaps:
            opened = history[bisect.bisect_right(history, hi, key=lambda entry: entry[0])][1]
            # A higher gap opened no earlier, so the gaps given up are a prefix.
            if now - opened < self._gap_grace:
                break
            expired += 1
        if expired:
            given_up = self._gaps[:expired]
            log.debug("gave up signal ids %d-%d as never coming", given_up[0][0], given_up[-1][1])
            self._gaps = self._gaps[expired:]
        # Entries at or below the low-water mark can date no gap.
        keep = bisect.bisect_right(history, self.low_water, key=lambda entry: entry[0])
        del history[:keep]

    def _read_rows(self, where: ColumnElement[bool], wanted: Callable[[int], bool]) -> _Rows:
        """The ``wanted`` rows matching ``where``, read a page at a time so that a full rebuild
        never holds every row's result object at once."""
        found = _Rows()
        after = 0
        while True:
            query = (
                select(EntrySignal.id, EntrySignal.signal_type, EntrySignal.value)
                .where(where, EntrySignal.id > after)
                .order_by(EntrySignal.id)
                .limit(_PAGE)
            )
            with self._db.session() as session:
                page = session.execute(query).all()
            for signal_id, signal_type, value in page:
                if not wanted(signal_id):
                    continue
                found.ids.append(signal_id)
                name = _kind(signal_type)
                if name is not None:
                    ids, values = found.by_kind.setdefault(name, ([], []))
                    ids.append(signal_id)
                    values.append(value)
            if len(page) < _PAGE:
                return found
            after = page[-1][0]

    @staticmethod
    def _add_rows(rows: _Rows, indexes: dict[str, SignalTypeIndex]) -> dict[str, SignalTypeIndex]:
        for name, (ids, values) in rows.by_kind.items():
            if name not in indexes:
                indexes[name] = _new_index(name)
            indexes[name].add(ids, values)
        return indexes

    def _compact_in_background(self) -> None:
        if self._compactor is not None and self._compactor.is_alive():
            return
        self._compactor = threading.Thread(target=self._compact_logged, daemon=True)
        self._compactor.start()

    def _compact_logged(self) -> None:
        try:
            self.compact()
        except Exception:
            log.exception("index compaction failed; the previous snapshot stays in use")

    def _write_snapshot(
        self, indexes: dict[str, SignalTypeIndex], high_water: int, gaps: list[Gap]
    ) -> None:
        """Write into a temporary directory and rename it: a crash leaves no half snapshot."""
        self._dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self._dir))
        for name, index in indexes.items():
            (staging / name).mkdir()
            index.save(staging / name)
        # The snapshot holds every row up to ``high_water`` but those in ``gaps`` (and those
        # given up or deleted), so a restart reads exactly the gaps and the rows above.
        meta = {"high_water": high_water, "gaps": gaps, "types": sorted(indexes)}
        (staging / _META).write_text(json.dumps(meta))
        final = self._dir / f"{_SNAPSHOT_PREFIX}{high_water:015d}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        for old in self._snapshots()[:-1]:
            shutil.rmtree(old, ignore_errors=True)

    def _snapshots(self) -> list[Path]:
        if not self._dir.is_dir():
            return []
        found = self._dir.glob(f"{_SNAPSHOT_PREFIX}*")
        return sorted(p for p in found if (p / _META).is_file())

    def _load_newest_snapshot(self) -> None:
        snapshots = self._snapshots()
        if not snapshots:
            return
        newest = snapshots[-1]
        meta = json.loads((newest / _META).read_text())
        self._indexes = {name: _load_index(name, newest / name) for name in meta["types"]}
        self._high_water = int(meta["high_water"])
        self._gaps = [(int(lo), int(hi)) for lo, hi in meta["gaps"]]
        # How long the gaps were open before is unknown: give them a full grace period again.
        self._log_high_water(self._high_water)
        log.info("loaded index snapshot %s (high water %d)", newest.name, self._high_water)


__all__ = ["ExactIndex", "IndexHit", "PdqIndex", "SignalIndexSet", "VpdqIndex"]
