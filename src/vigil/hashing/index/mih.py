"""Exact multi-index hashing (MIH) over 256-bit PDQ codes: numpy buckets, a numba query kernel.

The code is cut into byte-aligned substrings, one lookup table each. By the generalised pigeonhole
principle, two codes within Hamming distance ``r`` of each other have, in some table ``j``, a
substring distance of at most ``t_j`` whenever ``sum(t_j) >= r - len(tables) + 1``. Probing every
key within ``t_j`` bit flips of the query's substring in every table therefore finds *every* code
within ``r``; each candidate is then verified on the full 256 bits, so the search is exact.

A table is a CSR bucket list: ``perm`` holds row numbers sorted by substring key and
``offsets[key]:offsets[key + 1]`` is that key's slice of it.

A search is one compiled call (:func:`_search`): per query, probe every table, gather the
candidates, verify them on 256 bits and keep each close code once. The time is random memory
reads (at 10M codes ~3k bucket bounds, ~1.8k scattered rows of ``perm`` and codes): the kernel
reads them in passes, each prefetching what the next reads, so the reads overlap instead of
waiting on each other. It beat the vectorised numpy version of the same steps (one call per step,
temporary arrays for every candidate) ~1.8x at 10M codes and ~1.5x at 1M (single queries, p50).

Which layout is used depends on the size (see :func:`layout_for`): candidates per query are about
``probes * n / 2**bits``, so large indexes use wider (24-bit) substrings to keep buckets small.

Indexes with 16-bit tables only (under :data:`LARGE_INDEX` codes) also keep a *sketch*: two of
each code's four 64-bit words, copied into every table's bucket order. A query then runs along
each probed bucket's sketches (~270 short sequential runs at 1M codes) instead of reading ~4k
scattered codes, and reads a full code only where the two words are already within the radius,
which a partial distance can only underestimate, so the search stays exact. At 1M codes this
took single queries from ~100 to ~22 us (p50, same run), for 16 bytes x 16 tables per code.
Wider tables hold under one code per bucket at the sizes they are used for: nothing to run along.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

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

#: Rows turned into keys per matrix product while building.
_KEY_BLOCK = 1 << 18

#: From this many codes on, LAYOUT_24's fixed ~640 MB of offsets pays for itself (at 1M both
#: layouts measured the same speed).
LARGE_INDEX = 2_000_000


def layout_for(n: int) -> tuple[Table, ...]:
    return LAYOUT_24 if n >= LARGE_INDEX else LAYOUT_16


def sketched(layout: tuple[Table, ...]) -> bool:
    """Whether an index over ``layout`` keeps sketches (see the module docstring)."""
    return all(t.bits == 16 for t in layout)


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

    One matrix product per block of rows (``weights`` from :func:`_key_weights`): bounded
    temporary memory when building over millions of codes.
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


_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def _compiled(fn: _Fn) -> _Fn:
    """``fn`` compiled by numba, GIL released (server threads query in parallel), and cached on
    disk so a new process loads the machine code instead of compiling it again (~2 s)."""
    try:
        return cast(_Fn, njit(cache=True, nogil=True)(fn))
    except RuntimeError:
        # numba raises this when no cache directory is writable (a read-only install and home):
        # compile in memory instead, once per process.
        return cast(_Fn, njit(nogil=True)(fn))


def _prefetch_typing(typingctx: Any, array: Any, index: Any) -> tuple[Any, Callable[..., Any]]:
    """Ask the CPU to fetch ``array[index]`` (a row, for 2-d arrays) into cache, without waiting
    for it: numba has no prefetch, so this emits LLVM's."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        arytype = signature.args[0]
        ary = context.make_array(arytype)(context, builder, args[0])
        row = [args[1], *(context.get_constant(types.intp, 0) for _ in range(arytype.ndim - 1))]
        ptr = cgutils.get_item_pointer(context, builder, arytype, ary, row)  # type: ignore[no-untyped-call]
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        # read, keep in all cache levels, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, types.intp), codegen


_prefetch = cast(Callable[[np.ndarray, Any], None], intrinsic(_prefetch_typing))


@_compiled
def _popcount(x: np.uint64) -> np.int64:
    # The classic bit-parallel count: LLVM turns it into one popcnt instruction.
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@_compiled
def _slots(
    query: np.ndarray,
    tables: np.ndarray,
    masks: np.ndarray,
    mask_bounds: np.ndarray,
    offsets: np.ndarray,
    slots: np.ndarray,
) -> None:
    """Pass 1: every probe's index into ``offsets``; prefetches those bucket bounds."""
    for j in range(tables.shape[0]):
        start, length, base = tables[j, 0], tables[j, 1], tables[j, 3]
        key = np.int64(0)
        for b in range(length):
            key = (key << 8) | np.int64(query[start + b])
        for m in range(mask_bounds[j], mask_bounds[j + 1]):
            slots[m] = base + (key ^ masks[m])
            _prefetch(offsets, slots[m])


@_compiled
def _bounds(
    slots: np.ndarray,
    offsets: np.ndarray,
    bucketed: np.ndarray,
    rows_per_line: int,
    lines: int,
    lo: np.ndarray,
    hi: np.ndarray,
) -> np.int64:
    """Pass 2: each probe's bucket as ``lo:hi`` in bucket order; prefetches up to ``lines``
    cache lines of each non-empty bucket's rows of ``bucketed`` (``perm`` or the sketch)."""
    total = np.int64(0)
    for m in range(slots.shape[0]):
        a, z = np.int64(offsets[slots[m]]), np.int64(offsets[slots[m] + 1])
        lo[m], hi[m] = a, z
        total += z - a
        # Over half the 24-bit buckets are empty at 10M codes: prefetching there would fetch a
        # line of some other bucket.
        for line in range(lines):
            row = a + line * rows_per_line
            if row >= z:
                break
            _prefetch(bucketed, row)
    return total


@_compiled
def _gather(
    perm: np.ndarray,
    words: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    m0: int,
    m1: int,
    cand: np.ndarray,
    c: int,
) -> int:
    """Pass 3a: probes ``m0:m1``' candidate rows appended to ``cand``; prefetches their codes."""
    for m in range(m0, m1):
        for p in range(lo[m], hi[m]):
            row = np.int64(perm[p])
            cand[c] = row
            c += 1
            _prefetch(words, row)
    return c


@_compiled
def _found_earlier(xor: np.ndarray, byte_masks: np.ndarray, tables: np.ndarray, j: int) -> bool:
    """Whether a table before ``j`` also probed this code (its substring is within that table's
    flips): each close code is then kept by the first table that finds it, with no set."""
    for i in range(j):
        d = np.int64(0)
        for w in range(4):
            d += _popcount(xor[w] & byte_masks[i, w])
        if d <= tables[i, 2]:
            return True
    return False


@_compiled
def _verify(
    qword: np.ndarray,
    words: np.ndarray,
    cand: np.ndarray,
    radius: int,
    byte_masks: np.ndarray,
    tables: np.ndarray,
    j: int,
    xor: np.ndarray,
    rows: np.ndarray,
    dists: np.ndarray,
    h: int,
) -> int:
    """Pass 3b: table ``j``'s candidates within ``radius``, appended to ``rows``/``dists``."""
    for row in cand:
        d = np.int64(0)
        for w in range(4):
            xor[w] = words[row, w] ^ qword[w]
            d += _popcount(xor[w])
        if d <= radius and not _found_earlier(xor, byte_masks, tables, j):
            rows[h], dists[h] = row, d
            h += 1
    return h


@_compiled
def _gather_sketched(
    qword: np.ndarray,
    sketch: np.ndarray,
    sketch_words: np.ndarray,
    perm: np.ndarray,
    words: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    j: int,
    radius: int,
    m0: int,
    m1: int,
    cand: np.ndarray,
    c: int,
) -> int:
    """Pass 3a with sketches: along table ``j``'s probed buckets (``m0:m1``), the rows whose two
    sketched words are within ``radius`` appended to ``cand``; prefetches their codes."""
    a, b = qword[sketch_words[j, 0]], qword[sketch_words[j, 1]]
    for m in range(m0, m1):
        for p in range(lo[m], hi[m]):
            if _popcount(sketch[p, 0] ^ a) + _popcount(sketch[p, 1] ^ b) <= radius:
                row = np.int64(perm[p])
                cand[c] = row
                c += 1
                _prefetch(words, row)
    return c


#: Sketch rows (16 bytes) per 64-byte cache line, and the most lines of a bucket prefetched: a
#: 16-bit bucket holds ~15 codes at 1M (4-5 lines); fetching up to 8 lines took single queries
#: from 29 to 22 us (p50) against 4 lines, 38 us with 2.
_SKETCH_ROWS_PER_LINE, _SKETCH_LINES = 4, 8
#: ``perm`` rows (uint32) per cache line; one line of each bucket is prefetched.
_PERM_ROWS_PER_LINE = 16


@_compiled
def _search(
    queries: np.ndarray,
    qwords: np.ndarray,
    words: np.ndarray,
    perm: np.ndarray,
    offsets: np.ndarray,
    sketch: np.ndarray,
    tables: np.ndarray,
    masks: np.ndarray,
    mask_bounds: np.ndarray,
    byte_masks: np.ndarray,
    sketch_words: np.ndarray,
    radius: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query row, code row, distance) of every code within ``radius``, by query then row.
    ``sketch`` has no rows when the index keeps none."""
    n_tables = tables.shape[0]
    slots = np.empty(len(masks), np.int64)
    lo = np.empty(len(masks), np.int64)
    hi = np.empty(len(masks), np.int64)
    cand_at = np.empty(n_tables + 1, np.int64)
    xor = np.empty(4, np.uint64)
    # Scratch for one query's candidates and hits (hits <= candidates), grown when too small.
    cand, rows, dists = np.empty(1024, np.int64), np.empty(1024, np.int64), np.empty(1024, np.int32)
    out_q, out_row = np.empty(len(queries), np.int64), np.empty(len(queries), np.int64)
    out_dist = np.empty(len(queries), np.int32)
    k = 0
    for qi in range(len(queries)):
        _slots(queries[qi], tables, masks, mask_bounds, offsets, slots)
        if len(sketch):
            total = _bounds(slots, offsets, sketch, _SKETCH_ROWS_PER_LINE, _SKETCH_LINES, lo, hi)
        else:
            total = _bounds(slots, offsets, perm, _PERM_ROWS_PER_LINE, 1, lo, hi)
        if total > len(cand):
            cand, rows = np.empty(2 * total, np.int64), np.empty(2 * total, np.int64)
            dists = np.empty(2 * total, np.int32)
        c = 0
        for j in range(n_tables):
            cand_at[j] = c
            m0, m1 = mask_bounds[j], mask_bounds[j + 1]
            if len(sketch):
                c = _gather_sketched(
                    qwords[qi], sketch, sketch_words, perm, words, lo, hi, j, radius, m0, m1,
                    cand, c,
                )  # fmt: skip
            else:
                c = _gather(perm, words, lo, hi, m0, m1, cand, c)
        cand_at[n_tables] = c
        h = 0
        for j in range(n_tables):
            candidates = cand[cand_at[j] : cand_at[j + 1]]
            h = _verify(
                qwords[qi], words, candidates, radius, byte_masks, tables, j, xor, rows, dists, h
            )
        if h > 1:
            order = np.argsort(rows[:h])
            rows[:h], dists[:h] = rows[:h][order], dists[:h][order]
        if k + h > len(out_q):
            grown_q, grown_row = np.empty(2 * (k + h), np.int64), np.empty(2 * (k + h), np.int64)
            grown_dist = np.empty(2 * (k + h), np.int32)
            grown_q[:k], grown_row[:k], grown_dist[:k] = out_q[:k], out_row[:k], out_dist[:k]
            out_q, out_row, out_dist = grown_q, grown_row, grown_dist
        out_q[k : k + h] = qi
        out_row[k : k + h], out_dist[k : k + h] = rows[:h], dists[:h]
        k += h
    return out_q[:k], out_row[:k], out_dist[:k]


@dataclass(frozen=True)
class _Probes:
    """A layout as arrays for :func:`_search`: per table (start byte, length, flips, where its
    buckets start in ``offsets``), every table's flip masks with each table's slice of them,
    each table's bits in the code's four 64-bit words, and the two words its sketch copies."""

    tables: np.ndarray
    masks: np.ndarray
    mask_bounds: np.ndarray
    byte_masks: np.ndarray
    sketch_words: np.ndarray

    @classmethod
    def of(cls, layout: tuple[Table, ...]) -> _Probes:
        masks = [_flip_masks(t.bits, t.flips) for t in layout]
        mask_bounds = np.zeros(len(layout) + 1, np.int64)
        np.cumsum([len(m) for m in masks], out=mask_bounds[1:])
        bases = np.zeros(len(layout), np.int64)
        np.cumsum([(1 << t.bits) + 1 for t in layout[:-1]], out=bases[1:])
        tables = np.array(
            [(t.start, t.length, t.flips, base) for t, base in zip(layout, bases, strict=True)],
            dtype=np.int64,
        )
        byte_masks = np.zeros((len(layout), CODE_BYTES), np.uint8)
        for j, t in enumerate(layout):
            byte_masks[j, t.start : t.start + t.length] = 0xFF
        # The two words after the one holding the table's key: the key's own bits are already
        # within the table's flips, so other words say more about the rest of the distance.
        first = np.array([(t.start // 8 + 1) % 4 for t in layout], np.int64)
        sketch_words = np.stack([first, (first + 1) % 4], axis=1)
        arrays = (tables, np.concatenate(masks), mask_bounds, as_words(byte_masks), sketch_words)
        return cls(*map(_frozen, arrays))


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only view. numba compiles once per combination of array mutability: with every
    array read-only, the call that warms the kernel at build/load is the only compile."""
    view = array.view()
    view.flags.writeable = False
    return view


class MultiIndexHash:
    """An immutable MIH over ``codes`` (n x 32 uint8); results are row numbers into ``codes``."""

    def __init__(
        self, codes: np.ndarray, perm: np.ndarray, offsets: np.ndarray, layout: tuple[Table, ...]
    ) -> None:
        _check_layout(layout)
        self.codes = _frozen(codes)
        self.words = as_words(self.codes)
        self.perm = _frozen(perm)
        self.offsets = _frozen(offsets)
        self.layout = layout
        self._probes = _Probes.of(layout)
        self.sketch = _frozen(self._sketch() if sketched(layout) else np.empty((0, 2), np.uint64))
        # Compile (or load from numba's cache) now, not in the first query a caller times.
        self.search(np.empty((0, CODE_BYTES), np.uint8), 0)

    def _sketch(self) -> np.ndarray:
        """Each table's codes, in its bucket order, as the two words it compares first."""
        n = len(self.codes)
        sketch = np.empty((len(self.perm), 2), np.uint64)
        for j, (first, second) in enumerate(self._probes.sketch_words):
            rows = self.perm[j * n : (j + 1) * n]
            sketch[j * n : (j + 1) * n, 0] = self.words[rows, first]
            sketch[j * n : (j + 1) * n, 1] = self.words[rows, second]
        return sketch

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays: codes, buckets and sketches."""
        return sum(a.nbytes for a in (self.codes, self.perm, self.offsets, self.sketch))

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

    def search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (query row, code row, distance) with distance <= ``radius`` (<= MIH_RADIUS),
        ordered by query, then code row."""
        if radius > MIH_RADIUS:
            raise ValueError(f"MIH is exact only up to distance {MIH_RADIUS}")
        queries = _frozen(np.ascontiguousarray(queries, dtype=np.uint8))
        p = self._probes
        return _search(
            queries,
            as_words(queries),
            self.words,
            self.perm,
            self.offsets,
            self.sketch,
            p.tables,
            p.masks,
            p.mask_bounds,
            p.byte_masks,
            p.sketch_words,
            radius,
        )

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
