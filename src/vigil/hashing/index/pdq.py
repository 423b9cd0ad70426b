"""Exact PDQ search: a persisted base segment, an in-memory delta, and a deleted-id set.

Why this design (measured on the shared 2-core build machine; see ``bench/match_pdq.py`` and
``bench/results/match_pdq.md``), single queries at d <= 31:

* faiss ``IndexBinaryFlat``: ~2 ms/query at 1M (a full scan, so ~10x that at 10M).
* faiss ``IndexBinaryMultiHash(256, 16, 16)`` with ``nflip=1`` (exact by pigeonhole; what
  python-threatexchange uses): ~2.3 ms/query at 1M, 7.5 s to build; at 10M its 16-bit buckets
  hold ~150 codes each, ~40k random reads per query.
* our numpy MIH with the same 16x16-bit layout: ~0.2-0.5 ms at 1M, but 7 ms at 10M
  (41k candidates); with 10x24-bit + 1x16-bit tables (:data:`~vigil.hashing.index.mih.LAYOUT_24`,
  ~3k probes and ~4.5k candidates per query at 10M) and codes stored in the 16-bit table's key
  order: p50 0.6-0.9 ms at 10M, numpy's per-call cost plus ~7k random memory reads a query.
* the same MIH searched by one numba kernel (:func:`~vigil.hashing.index.mih._search`), which
  overlaps those reads by prefetching: 1.5-1.8x the numpy version's single-query speed at 1M
  and 10M in interleaved runs (~0.15 ms and ~0.28 ms p50 when the machine was quiet), ~2x its
  batched rate. Chosen: it is the fastest exact option at every size measured, and its snapshot
  is plain ``.npy`` files.
* below 2M codes the kernel runs along sketches (two words of each code in every table's bucket
  order, built at load from the buckets, not saved) instead of reading scattered candidates:
  ~0.1 ms to ~0.022 ms p50 at 1M, 32-36x python-threatexchange's single-query rate, for 256 MB.

The codes are a numpy array, not faiss storage: numpy gives large arrays transparent huge pages,
and random gathers from it ran 4.5x faster than from a faiss-allocated buffer at 10M codes.
Above distance 31 the pigeonhole layouts would need far more probes, so the base falls back to a
faiss flat scan over a copy of the codes made on first use. Snapshots are ``np.save`` files of
codes, ids and buckets: loading reads them back, no re-hashing and no re-sorting.

Adds go to the delta and are searchable as soon as :meth:`PdqIndex.add` returns; the delta is a
brute-force numpy scan, kept small by :meth:`PdqIndex.compact`, which merges it into a new base
outside the lock and swaps the state in one assignment, so queries never wait for it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import faiss
import numpy as np

from vigil.hashing.index.base import IndexHit
from vigil.hashing.index.mih import CODE_BYTES, MIH_RADIUS, MultiIndexHash, as_words, hamming_rows

#: (query row, id, distance) triples; one array each.
Matches = tuple[np.ndarray, np.ndarray, np.ndarray]

#: Query-code pairs the delta scan holds in memory at once (x 32 bytes, twice).
_DELTA_PAIRS = 1 << 20

_NO_MATCHES: Matches = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))


def hex_to_codes(values: list[str]) -> np.ndarray:
    """PDQ hex strings as an (n, 32) uint8 array (the byte order faiss and the hex share)."""
    if not values:
        return np.empty((0, CODE_BYTES), dtype=np.uint8)
    # Joined, one malformed value would shift every code after it.
    if any(len(v) != 2 * CODE_BYTES for v in values):
        raise ValueError("a PDQ hash must be 64 hex characters")
    return np.frombuffer(bytes.fromhex("".join(values)), dtype=np.uint8).reshape(-1, CODE_BYTES)


@dataclass(frozen=True)
class _Base:
    """An immutable segment: codes, MIH buckets over them, and ids."""

    mih: MultiIndexHash
    ids: np.ndarray

    @classmethod
    def build(cls, codes: np.ndarray, ids: np.ndarray) -> _Base:
        # numpy owns the codes: its large arrays get transparent huge pages, and random reads
        # from them ran 4.5x faster than from faiss-allocated storage at 10M codes.
        order = MultiIndexHash.storage_order(codes)
        codes = np.ascontiguousarray(codes[order], dtype=np.uint8)
        return cls(MultiIndexHash.build(codes), np.asarray(ids, dtype=np.int64)[order])

    @property
    def codes(self) -> np.ndarray:
        return self.mih.codes

    @cached_property
    def flat(self) -> faiss.IndexBinaryFlat:
        """A faiss copy of the codes for thresholds above MIH_RADIUS, made on first use."""
        flat = faiss.IndexBinaryFlat(CODE_BYTES * 8)
        flat.add(self.codes)
        return flat

    def search(self, queries: np.ndarray, threshold: int) -> Matches:
        if not len(self.ids):
            return _NO_MATCHES
        if threshold <= MIH_RADIUS:
            q, rows, dist = self.mih.search(queries, threshold)
            return q, self.ids[rows], dist
        # faiss's radius is exclusive.
        lims, dist, rows = self.flat.range_search(queries, threshold + 1)
        q = np.repeat(np.arange(len(queries)), np.diff(lims).astype(np.int64))
        return q, self.ids[rows], dist.astype(np.int32)

    def save(self, directory: Path) -> None:
        np.save(directory / "codes.npy", self.codes)
        np.save(directory / "ids.npy", self.ids)
        self.mih.save(directory)

    @classmethod
    def load(cls, directory: Path) -> _Base:
        mih = MultiIndexHash.load(directory, np.load(directory / "codes.npy"))
        return cls(mih, np.load(directory / "ids.npy"))


@dataclass(frozen=True)
class _Delta:
    codes: np.ndarray = field(default_factory=lambda: np.empty((0, CODE_BYTES), np.uint8))
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def search(self, queries: np.ndarray, threshold: int) -> Matches:
        """Only called on a non-empty delta."""
        n = len(self.ids)
        words, qwords = as_words(self.codes), as_words(queries)
        # Brute force over (query, code) pairs, a bounded number at a time: the delta stays small
        # (compaction), so this is cheap, but a big query batch must not blow up memory.
        step = max(1, _DELTA_PAIRS // n)
        parts = []
        for lo in range(0, len(queries), step):
            chunk = qwords[lo : lo + step]
            dist = hamming_rows(np.tile(words, (len(chunk), 1)), np.repeat(chunk, n, axis=0))
            (hit,) = np.nonzero(dist <= threshold)
            parts.append((hit // n + lo, self.ids[hit % n], dist[hit]))
        q, ids, dist = (np.concatenate(column) for column in zip(*parts, strict=True))
        return q, ids, dist


@dataclass(frozen=True)
class _State:
    base: _Base
    delta: _Delta
    deleted: frozenset[int]


class PdqIndex:
    """Exact Hamming-distance search over PDQ codes with int64 ids. Thread-safe."""

    def __init__(self, base: _Base | None = None) -> None:
        empty = _Base.build(np.empty((0, CODE_BYTES), np.uint8), np.empty(0, np.int64))
        self._state = _State(base or empty, _Delta(), frozenset())
        self._lock = threading.Lock()
        self._compact_lock = threading.Lock()

    @classmethod
    def build(cls, codes: np.ndarray, ids: np.ndarray) -> PdqIndex:
        return cls(_Base.build(codes, ids))

    def __len__(self) -> int:
        state = self._state
        return len(state.base.ids) + len(state.delta.ids) - len(state.deleted)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (codes, ids, buckets, sketches, delta)."""
        state = self._state
        arrays = (state.base.ids, state.delta.codes, state.delta.ids)
        return state.base.mih.nbytes + sum(a.nbytes for a in arrays)

    @property
    def delta_size(self) -> int:
        return len(self._state.delta.ids)

    def add(self, codes: np.ndarray, ids: np.ndarray) -> None:
        """Make ``codes`` searchable now, under ``ids`` (which must be new)."""
        with self._lock:
            state = self._state
            delta = _Delta(
                np.concatenate([state.delta.codes, codes]),
                np.concatenate([state.delta.ids, np.asarray(ids, dtype=np.int64)]),
            )
            self._state = _State(state.base, delta, state.deleted)

    def remove(self, ids: list[int]) -> None:
        """Hide ``ids`` from results now; compaction drops their codes."""
        with self._lock:
            state = self._state
            self._state = _State(state.base, state.delta, state.deleted | frozenset(ids))

    def search(self, queries: np.ndarray, threshold: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each of the (q, 32) uint8 ``queries``: (ids, distances) within ``threshold``."""
        state = self._state  # one read: a concurrent swap cannot mix two states
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        q, ids, dist = state.base.search(queries, threshold)
        if len(state.delta.ids):  # mostly empty: skip the concatenation a single query would pay
            delta = state.delta.search(queries, threshold)
            q, ids, dist = (np.concatenate(c) for c in zip((q, ids, dist), delta, strict=True))
        if state.deleted:
            live = ~np.isin(ids, np.fromiter(state.deleted, np.int64, len(state.deleted)))
            q, ids, dist = q[live], ids[live], dist[live]
        if len(queries) == 1:
            return [(ids, dist)]
        order = np.argsort(q, kind="stable")
        bounds = np.searchsorted(q[order], np.arange(len(queries) + 1))
        ids, dist = ids[order], dist[order]
        return [(ids[a:b], dist[a:b]) for a, b in itertools.pairwise(bounds)]

    def compact(self) -> None:
        """Merge the delta into a new base and drop deleted codes; queries continue meanwhile."""
        with self._compact_lock:
            start = self._state
            codes = np.concatenate([start.base.codes, start.delta.codes])
            ids = np.concatenate([start.base.ids, start.delta.ids])
            if start.deleted:
                keep = ~np.isin(ids, np.fromiter(start.deleted, np.int64, len(start.deleted)))
                codes, ids = codes[keep], ids[keep]
            base = _Base.build(codes, ids)
            with self._lock:
                now = self._state
                # Rows added and ids removed while we were building stay pending.
                done = len(start.delta.ids)
                delta = _Delta(now.delta.codes[done:], now.delta.ids[done:])
                self._state = _State(base, delta, now.deleted - start.deleted)

    def save(self, directory: Path) -> None:
        """Write a snapshot of everything added so far (compacting first) into ``directory``."""
        if self.delta_size or self._state.deleted:
            self.compact()
        directory.mkdir(parents=True, exist_ok=True)
        self._state.base.save(directory)

    @classmethod
    def load(cls, directory: Path) -> PdqIndex:
        return cls(_Base.load(directory))


class PdqSignalIndex:
    """PDQ hex values in, :class:`IndexHit` lists out: the :class:`PdqIndex` a set holds."""

    def __init__(self, index: PdqIndex | None = None) -> None:
        self.index = index or PdqIndex()

    def add(self, ids: Sequence[int], values: Sequence[str]) -> None:
        self.index.add(hex_to_codes(list(values)), np.asarray(ids, dtype=np.int64))

    def query(self, values: Sequence[str], threshold: float) -> list[list[IndexHit]]:
        results = self.index.search(hex_to_codes(list(values)), int(threshold))
        return [
            [IndexHit(i, float(d)) for i, d in zip(ids.tolist(), dist.tolist(), strict=True)]
            for ids, dist in results
        ]

    def save(self, directory: Path) -> None:
        self.index.save(directory)

    @classmethod
    def load(cls, directory: Path) -> PdqSignalIndex:
        return cls(PdqIndex.load(directory))
