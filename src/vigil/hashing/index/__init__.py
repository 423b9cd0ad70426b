"""In-memory indexes over the banks' signals, kept in step with the database.

The database is the record; indexes are caches. A snapshot in ``index_dir`` holds every signal
row up to a watermark (``EntrySignal.id``); :meth:`SignalIndexSet.refresh` adds rows above it to
in-memory deltas, searchable at once. :meth:`SignalIndexSet.compact` rebuilds everything from the
database (dropping deleted rows), writes a new snapshot and swaps it in; it runs in a background
thread by itself once ``compact_after`` rows have arrived, and queries never wait for it.

Rows deleted since the last compaction may still come back as hits: the caller resolves hits
against the database and drops missing rows.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select

from vigil.hashing.index.base import IndexHit, SignalTypeIndex
from vigil.hashing.index.exact import ExactIndex
from vigil.hashing.index.pdq import PdqIndex, PdqSignalIndex
from vigil.hashing.index.vpdq import VpdqIndex
from vigil.hashing.signals import get_signal_type
from vigil.store.db import Database
from vigil.store.models import EntrySignal

log = logging.getLogger(__name__)

_SNAPSHOT_PREFIX = "snapshot-"
_META = "meta.json"
#: Rows read from the database per round trip.
_PAGE = 50_000


def _kind(signal_type: str) -> str | None:
    """Which index holds a signal type: its canonical name, or None if it has no index."""
    try:
        kind = get_signal_type(signal_type)
    except ValueError:
        return None
    if kind.exact:
        return kind.name
    return kind.name if kind.name in ("pdq", "vpdq") else None


def _new_index(name: str) -> SignalTypeIndex:
    if name == "pdq":
        return PdqSignalIndex()
    if name == "vpdq":
        return VpdqIndex()
    return ExactIndex()


def _load_index(name: str, directory: Path) -> SignalTypeIndex:
    if name == "pdq":
        return PdqSignalIndex.load(directory)
    if name == "vpdq":
        return VpdqIndex.load(directory)
    return ExactIndex.load(directory)


class SignalIndexSet:
    def __init__(self, db: Database, index_dir: Path, *, compact_after: int = 50_000) -> None:
        self._db = db
        self._dir = index_dir
        self._compact_after = compact_after
        self._indexes: dict[str, SignalTypeIndex] = {}
        self._watermark = 0
        self._since_compact = 0
        self._refresh_lock = threading.Lock()
        self._compact_lock = threading.Lock()
        self._compactor: threading.Thread | None = None
        self._load_newest_snapshot()
        self.refresh()

    @property
    def watermark(self) -> int:
        """The highest ``EntrySignal.id`` indexed so far."""
        return self._watermark

    def refresh(self) -> int:
        """Index rows added to the database since the last call; return how many."""
        with self._refresh_lock:
            added = self._refresh_locked()
            if self._since_compact >= self._compact_after:
                self._compact_in_background()
        return added

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
            top = self._newest_id()
            indexes = self._add_rows(self._read_rows(0, top), {})
            self._write_snapshot(indexes, top)
            with self._refresh_lock:
                # Rows above ``top`` already sit in the old deltas; read them again into the new.
                self._indexes, self._watermark, self._since_compact = indexes, top, 0
                self._refresh_locked()

    def close(self) -> None:
        compactor = self._compactor
        if compactor is not None:
            compactor.join()

    def _newest_id(self) -> int:
        with self._db.session() as session:
            return session.scalar(select(func.max(EntrySignal.id))) or 0

    def _refresh_locked(self) -> int:
        newest = self._newest_id()
        if newest <= self._watermark:
            return 0
        rows = self._read_rows(self._watermark, newest)
        # Copy-on-write of the dict: a query holding the old one still sees complete indexes.
        self._indexes = self._add_rows(rows, dict(self._indexes))
        self._watermark = newest
        added = sum(len(ids) for ids, _ in rows.values())
        self._since_compact += added
        return added

    def _read_rows(self, low: int, high: int) -> dict[str, tuple[list[int], list[str]]]:
        """(ids, values) per index of the rows with ``low < id <= high``, read a page at a time
        so that a full rebuild never holds every row's result object at once."""
        by_kind: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
        while low < high:
            query = (
                select(EntrySignal.id, EntrySignal.signal_type, EntrySignal.value)
                .where(EntrySignal.id > low, EntrySignal.id <= high)
                .order_by(EntrySignal.id)
                .limit(_PAGE)
            )
            with self._db.session() as session:
                rows = session.execute(query).all()
            if not rows:
                break
            for signal_id, signal_type, value in rows:
                name = _kind(signal_type)
                if name is not None:
                    by_kind[name][0].append(signal_id)
                    by_kind[name][1].append(value)
            low = rows[-1][0]
        return by_kind

    @staticmethod
    def _add_rows(
        rows: dict[str, tuple[list[int], list[str]]], indexes: dict[str, SignalTypeIndex]
    ) -> dict[str, SignalTypeIndex]:
        for name, (ids, values) in rows.items():
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

    def _write_snapshot(self, indexes: dict[str, SignalTypeIndex], watermark: int) -> None:
        """Write into a temporary directory and rename it: a crash leaves no half snapshot."""
        self._dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self._dir))
        for name, index in indexes.items():
            (staging / name).mkdir()
            index.save(staging / name)
        meta = {"watermark": watermark, "types": sorted(indexes)}
        (staging / _META).write_text(json.dumps(meta))
        final = self._dir / f"{_SNAPSHOT_PREFIX}{watermark:015d}"
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
        self._watermark = int(meta["watermark"])
        log.info("loaded index snapshot %s (watermark %d)", newest.name, self._watermark)


__all__ = ["ExactIndex", "IndexHit", "PdqIndex", "SignalIndexSet", "VpdqIndex"]
