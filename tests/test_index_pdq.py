"""The PDQ index is exact: it returns what a brute-force scan returns, at every threshold."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from vigil.hashing.index.mih import LAYOUT_16, LAYOUT_24, MultiIndexHash, _search
from vigil.hashing.index.pdq import PdqIndex, hex_to_codes


def flip_bits(code: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(code)
    bits[rng.choice(256, size=count, replace=False)] ^= 1
    return np.packbits(bits)


def bank_and_queries(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random codes; queries are copies of some at distances 0-40, plus random ones."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    planted = [flip_bits(codes[rng.integers(n)], d, rng) for d in range(41) for _ in range(3)]
    # A query near several codes at once: two codes planted next to one query.
    codes[1] = flip_bits(codes[0], 12, rng)
    codes[2] = flip_bits(codes[0], 30, rng)
    noise = rng.integers(0, 256, size=(20, 32), dtype=np.uint8)
    return codes, np.vstack([*planted, codes[0], noise])


def brute_force(
    codes: np.ndarray, ids: np.ndarray, query: np.ndarray, threshold: int
) -> set[tuple[int, int]]:
    dist = np.unpackbits(codes ^ query, axis=1).sum(axis=1)
    return {(int(i), int(d)) for i, d in zip(ids, dist, strict=True) if d <= threshold}


def as_sets(results: list[tuple[np.ndarray, np.ndarray]]) -> list[set[tuple[int, int]]]:
    return [set(zip(ids.tolist(), dist.tolist(), strict=True)) for ids, dist in results]


@pytest.mark.parametrize("threshold", [0, 8, 31, 40])
def test_search_equals_brute_force(threshold: int) -> None:
    codes, queries = bank_and_queries(20_000)
    ids = np.arange(len(codes), dtype=np.int64) * 3 + 100  # ids are not row numbers
    got = as_sets(PdqIndex.build(codes, ids).search(queries, threshold))
    want = [brute_force(codes, ids, q, threshold) for q in queries]
    assert got == want
    assert sum(map(len, want)) >= 3 * (min(threshold, 40) + 1)  # every planted copy counts


def test_wide_layout_is_exact() -> None:
    """The 24-bit layout large indexes use, checked on a small bank against the 16-bit one,
    which runs along sketches instead of reading candidates' codes."""
    codes, queries = bank_and_queries(5_000, seed=1)
    narrow, wide = MultiIndexHash.build(codes, LAYOUT_16), MultiIndexHash.build(codes, LAYOUT_24)
    assert len(narrow.sketch) == len(LAYOUT_16) * len(codes) and not len(wide.sketch)
    for a, b in zip(narrow.search(queries, 31), wide.search(queries, 31), strict=True):
        np.testing.assert_array_equal(a, b)


def test_added_codes_are_searchable_at_once_and_survive_compaction() -> None:
    codes, queries = bank_and_queries(10_000, seed=2)
    ids = np.arange(len(codes), dtype=np.int64)
    index = PdqIndex.build(codes[:6_000], ids[:6_000])
    index.add(codes[6_000:8_000], ids[6_000:8_000])
    index.add(codes[8_000:], ids[8_000:])
    assert index.delta_size == 4_000
    want = [brute_force(codes, ids, q, 31) for q in queries]
    assert as_sets(index.search(queries, 31)) == want
    index.compact()
    assert index.delta_size == 0 and len(index) == len(codes)
    assert as_sets(index.search(queries, 31)) == want


def test_removed_ids_disappear() -> None:
    codes, queries = bank_and_queries(3_000, seed=3)
    ids = np.arange(len(codes), dtype=np.int64)
    index = PdqIndex.build(codes, ids)
    index.remove([0, 1])
    results = as_sets(index.search(queries, 31))
    assert all(i not in (0, 1) for hits in results for i, _ in hits)
    index.compact()
    assert len(index) == len(codes) - 2
    assert as_sets(index.search(queries, 31)) == results


def test_snapshot_round_trip(tmp_path: Path) -> None:
    codes, queries = bank_and_queries(5_000, seed=4)
    ids = np.arange(len(codes), dtype=np.int64) + 10**12
    index = PdqIndex.build(codes[:4_000], ids[:4_000])
    index.add(codes[4_000:], ids[4_000:])  # save() folds the delta in
    index.save(tmp_path / "snap")
    loaded = PdqIndex.load(tmp_path / "snap")
    assert len(loaded) == len(codes)
    for threshold in (31, 40):
        assert as_sets(loaded.search(queries, threshold)) == as_sets(
            index.search(queries, threshold)
        )


def test_compaction_while_querying_and_adding() -> None:
    """Queries running during a compaction always see every code added before they began."""
    codes, queries = bank_and_queries(20_000, seed=5)
    ids = np.arange(len(codes), dtype=np.int64)
    index = PdqIndex.build(codes[:10_000], ids[:10_000])
    index.add(codes[10_000:15_000], ids[10_000:15_000])
    compactor = threading.Thread(target=index.compact)
    compactor.start()
    index.add(codes[15_000:], ids[15_000:])  # lands in the delta during or after the build
    want = [brute_force(codes, ids, q, 31) for q in queries]
    while compactor.is_alive():
        assert as_sets(index.search(queries, 31)) == want
    compactor.join()
    assert as_sets(index.search(queries, 31)) == want
    assert len(index) == len(codes)


def test_the_kernel_is_compiled_before_the_first_query() -> None:
    """Building an index compiles the search kernel; read-only queries (as parsed from hex) and
    writable ones then run that same machine code, so no query waits for a compile."""
    codes, queries = bank_and_queries(1_000, seed=6)
    index = PdqIndex.build(codes, np.arange(len(codes), dtype=np.int64))
    compiled = list(_search.signatures)
    index.search(hex_to_codes([row.tobytes().hex() for row in queries]), 31)
    index.search(queries.copy(), 31)
    assert _search.signatures == compiled and len(compiled) == 1


def test_search_works_without_a_numba_cache_directory() -> None:
    """Where numba finds no cache directory it can write (read-only install and home) it
    raises at import; the index must compile in memory instead. Allowing only numba's IPython
    cache locator, which never applies to a module file, gives that same condition."""
    script = (
        "import numpy as np\n"
        "from vigil.hashing.index.mih import MultiIndexHash\n"
        "codes = np.random.default_rng(0).integers(0, 256, (100, 32), dtype=np.uint8)\n"
        "print(MultiIndexHash.build(codes).search(codes[:3], 31)[1].tolist())\n"
    )
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"}
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[0, 1, 2]"
