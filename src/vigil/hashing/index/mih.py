"""Exact multi-index hashing (MIH) over 256-bit PDQ codes, in numpy.

The code is cut into byte-aligned substrings, one lookup table each. By the generalised pigeonhole
principle, two codes within Hamming distance ``r`` of each other have, in some table ``j``, a
substring distance of at most ``t_j`` whenever ``sum(t_j) >= r - len(tables) + 1``. Probing every
key within ``t_j`` bit flips of the query's substring in every table therefore finds *every* code
within ``r``; each candidate is then verified on the full 256 bits, so the search is exact.

A table is a CSR bucket list: ``perm`` holds row numbers sorted by substring key and
``offsets[key]:offsets[key + 1]`` is that key's slice of it. Lookups are direct array indexing, so
a batch of queries is a handful of vectorised numpy calls with no per-candidate Python.

Which layout is used depends on the size (see :func:`layout_for`): candidates per query are about
``probes * n / 2**bits``, so large indexes use wider (24-bit) substrings to keep buckets small.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from pathlib import Path

import numpy as np

CODE_BYTES = 32
#: The radius every layout is built for: Meta's recommended PDQ match threshold.
MIH_RADIUS = 31


@dataclass(frozen=True)
class Table:
    """One substring table: ``length`` bytes from ``start``, probed within ``flips`` bit flips."""

    start: int
    length: int
    flips: int

    @property
    def bits(self) -> int:
        return self.length * 8


#: 16 tables of 16 bits, 1 flip each (sum 16 >= 31 - 16 + 1). Small offsets arrays.
LAYOUT_16 = tuple(Table(2 * i, 2, 1) for i in range(16))
#: 10 tables of 24 bits with 2 flips plus one of 16 bits with 1 flip (sum 21 >= 31 - 11 + 1):
#: ~9x fewer candidates than LAYOUT_16 at 10M codes (one run, before later tuning of both: 7.1
#: vs 4.7 ms a query), for 64 MB of offsets per 24-bit table.
LAYOUT_24 = (*(Table(3 * i, 3, 2) for i in range(10)), Table(30, 2, 1))

#: Queries searched together: enough to amortise numpy's per-call cost, few enough that the
#: candidate arrays stay in cache.
QUERY_BLOCK = 32

#: Rows turned into keys per matrix product while building.
_KEY_BLOCK = 1 << 18

#: From this many codes on, LAYOUT_24's fixed ~640 MB of offsets pays for itself (at 1M both
#: layouts measured the same speed).
LARGE_INDEX = 2_000_000


def layout_for(n: int) -> tuple[Table, ...]:
    return LAYOUT_24 if n >= LARGE_INDEX else LAYOUT_16


def _check_layout(layout: tuple[Table, ...]) -> None:
    covered = sorted(b for t in layout for b in range(t.start, t.start + t.length))
    if covered != list(range(CODE_BYTES)):
        raise ValueError("MIH tables must cover each byte of the code exactly once")
    if sum(t.flips for t in layout) < MIH_RADIUS - len(layout) + 1:
        raise ValueError(f"MIH layout is not exact at distance {MIH_RADIUS}")


def _key_weights(layout: tuple[Table, ...]) -> np.ndarray:
    """A (32, tables) matrix that turns codes into every table's key in one product."""
    weights = np.zeros((CODE_BYTES, len(layout)), dtype=np.int64)
    for j, table in enumerate(layout):
        for k in range(table.length):
            weights[table.start + k, j] = 1 << (8 * (table.length - 1 - k))
    return weights


def _keys(codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row's substring in each table as an integer key (big-endian, like the hex).

    One matrix product per block of rows (``weights`` from :func:`_key_weights`): a single call
    for a query batch, and bounded temporary memory when building over millions of codes.
    """
    keys = np.empty((len(codes), weights.shape[1]), dtype=np.int64)
    for lo in range(0, len(codes), _KEY_BLOCK):
        keys[lo : lo + _KEY_BLOCK] = codes[lo : lo + _KEY_BLOCK].astype(np.int64) @ weights
    return keys


def _flip_masks(bits: int, flips: int) -> np.ndarray:
    masks = [0]
    for f in range(1, flips + 1):
        masks.extend(sum(1 << b for b in combo) for combo in combinations(range(bits), f))
    return np.array(masks, dtype=np.int64)


def hamming_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distance between two (k, 4) uint64 arrays (``a`` is overwritten)."""
    np.bitwise_xor(a, b, out=a)
    x = np.bitwise_count(a)
    dist: np.ndarray = x[:, 0].astype(np.int32) + x[:, 1] + x[:, 2] + x[:, 3]
    return dist


def as_words(codes: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 codes as (n, 4) uint64 words, without a copy: 4 popcounts per distance."""
    words: np.ndarray = np.ascontiguousarray(codes).view(np.uint64)
    return words


class MultiIndexHash:
    """An immutable MIH over ``codes`` (n x 32 uint8); results are row numbers into ``codes``."""

    def __init__(
        self, codes: np.ndarray, perm: np.ndarray, offsets: np.ndarray, layout: tuple[Table, ...]
    ) -> None:
        _check_layout(layout)
        self.codes = codes
        self.words = as_words(codes)
        self.perm = perm
        self.offsets = offsets
        self.layout = layout
        self._weights = _key_weights(layout)

    @staticmethod
    def storage_order(codes: np.ndarray) -> np.ndarray:
        """A row order to store ``codes`` in before :meth:`build`: sorted by the key of the table
        with the largest buckets (the 16-bit one), whose candidates then sit next to each other
        in memory; at 10M codes that table yields over half the candidates of a query."""
        layout = layout_for(len(codes))
        widest = min(range(len(layout)), key=lambda j: layout[j].bits)
        keys = _keys(codes, _key_weights(layout[widest : widest + 1]))[:, 0]
        order: np.ndarray = np.argsort(keys, kind="stable")
        return order

    @classmethod
    def build(cls, codes: np.ndarray, layout: tuple[Table, ...] | None = None) -> MultiIndexHash:
        layout = layout or layout_for(len(codes))
        n = len(codes)
        # Row numbers and bucket bounds both fit uint32 up to ~390M codes; half of int64's memory.
        if n * len(layout) >= 2**32:
            raise ValueError(f"{n} codes are too many for one MIH")
        perms, offsets = [], []
        all_keys = _keys(codes, _key_weights(layout))
        for j, table in enumerate(layout):
            keys = all_keys[:, j]
            perms.append(np.argsort(keys, kind="stable").astype(np.uint32))
            counts = np.bincount(keys, minlength=1 << table.bits)
            bounds = np.zeros(len(counts) + 1, dtype=np.int64)
            np.cumsum(counts, out=bounds[1:])
            offsets.append((bounds + j * n).astype(np.uint32))
        return cls(codes, np.concatenate(perms), np.concatenate(offsets), layout)

    @cached_property
    def _probes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per probe: its table, its flip mask, and where its table starts in ``offsets``."""
        tables, masks, bases = [], [], []
        base = 0
        for j, table in enumerate(self.layout):
            m = _flip_masks(table.bits, table.flips)
            tables.append(np.full(len(m), j))
            masks.append(m)
            bases.append(np.full(len(m), base, dtype=np.int64))
            base += (1 << table.bits) + 1
        return np.concatenate(tables), np.concatenate(masks), np.concatenate(bases)

    def search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (query row, code row, distance) with distance <= ``radius`` (<= MIH_RADIUS)."""
        if radius > MIH_RADIUS:
            raise ValueError(f"MIH is exact only up to distance {MIH_RADIUS}")
        if len(queries) <= QUERY_BLOCK:
            return self._search_block(queries, radius)
        # Blocks keep the candidate arrays cache-sized: one huge gather is slower per query.
        parts = [
            self._search_block(queries[lo : lo + QUERY_BLOCK], radius)
            for lo in range(0, len(queries), QUERY_BLOCK)
        ]
        offsets = np.arange(0, len(queries), QUERY_BLOCK)
        q = np.concatenate([p[0] + lo for p, lo in zip(parts, offsets, strict=True)])
        return q, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])

    def _search_block(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        table_of, masks, bases = self._probes
        n = len(self.codes)
        slots = ((_keys(queries, self._weights)[:, table_of] ^ masks) + bases).ravel()
        starts = np.take(self.offsets, slots).astype(np.int64)
        counts = np.take(self.offsets, slots + 1) - starts
        # Expand the (start, count) runs into one flat array of positions in ``perm``.
        ends = np.cumsum(counts)
        pos = np.arange(ends[-1] if n else 0) + np.repeat(starts - ends + counts, counts)
        cand = np.take(self.perm, pos)
        qrow = np.repeat(np.arange(len(slots)) // len(masks), counts)
        dist = hamming_rows(
            np.take(self.words, cand, axis=0), np.take(as_words(queries), qrow, axis=0)
        )
        keep = dist <= radius
        # A close code shows up in several tables; keep one (query, code) pair of each.
        pair, first = np.unique(qrow[keep] * n + cand[keep], return_index=True)
        return pair // n, pair % n, dist[keep][first]

    def save(self, directory: Path) -> None:
        np.save(directory / "mih_perm.npy", self.perm)
        np.save(directory / "mih_offsets.npy", self.offsets)
        np.save(
            directory / "mih_layout.npy",
            np.array([(t.start, t.length, t.flips) for t in self.layout]),
        )

    @classmethod
    def load(cls, directory: Path, codes: np.ndarray) -> MultiIndexHash:
        layout = tuple(Table(*map(int, row)) for row in np.load(directory / "mih_layout.npy"))
        perm = np.load(directory / "mih_perm.npy")
        offsets = np.load(directory / "mih_offsets.npy")
        return cls(codes, perm, offsets, layout)
