"""PDQ matching: vigil's index against python-threatexchange's, side by side, in one run.

    .venv/bin/python bench/match_pdq.py [--large 10000000] [--out bench/results/match_pdq.md]

Part 1 (1M hashes): the same queries through both indexes; result sets at d <= 31 must be
identical (asserted); query rate, build time and resident memory of each. The anchor is
``PdqSignal.get_index_cls()`` of python-threatexchange 1.2.17, i.e. ``PDQIndex`` (faiss
``IndexBinaryMultiHash(256, 16)`` behind an ``IndexBinaryIDMap2``).
Part 2 (``--large`` hashes): vigil only: single-query p50/p99, batched rate, snapshot save and
load time, and how long an added hash takes to become matchable.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threatexchange.signal_type.pdq.signal import PdqSignal as TxPdqSignal

from vigil.hashing.index.pdq import PdqIndex

THRESHOLD = 31
MAX_PLANTED_DISTANCE = 40


def rss_mb() -> float:
    """Resident set size from /proc (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_bank(n: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random codes; 80 % of the queries are copies of bank codes with 0-40 bits flipped
    (so about 3/4 of them should match at d <= 31), the rest random."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    planted = int(queries * 0.8)
    bits = np.unpackbits(codes[rng.integers(0, n, planted)], axis=1)
    for row, distance in zip(bits, rng.integers(0, MAX_PLANTED_DISTANCE + 1, planted), strict=True):
        row[rng.choice(256, size=distance, replace=False)] ^= 1
    noise = rng.integers(0, 256, size=(queries - planted, 32), dtype=np.uint8)
    return codes, np.vstack([np.packbits(bits, axis=1), noise])


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def latencies(index: PdqIndex, queries: np.ndarray) -> np.ndarray:
    out = np.empty(len(queries))
    for i in range(len(queries)):
        start = time.perf_counter()
        index.search(queries[i : i + 1], THRESHOLD)
        out[i] = time.perf_counter() - start
    return out


def adds_until_matchable(index: PdqIndex, first_id: int, rounds: int) -> np.ndarray:
    """An added hash is matchable as soon as add() returns: time add + the query finding it."""
    new = np.random.default_rng(3).integers(0, 256, size=(rounds, 32), dtype=np.uint8)
    out = np.empty(rounds)
    for i in range(rounds):
        start = time.perf_counter()
        index.add(new[i : i + 1], np.array([first_id + i], dtype=np.int64))
        ((found, _),) = index.search(new[i : i + 1], THRESHOLD)
        out[i] = time.perf_counter() - start
        assert first_id + i in found.tolist()
    return out


def result_sets(results: list[tuple[np.ndarray, np.ndarray]]) -> list[set[int]]:
    return [set(ids.tolist()) for ids, _ in results]


def compare_with_anchor(n: int, queries: int, anchor_queries: int) -> list[tuple[str, str, str]]:
    codes, qcodes = make_bank(n, queries, seed=1)
    ids = np.arange(n, dtype=np.int64)
    gc.collect()
    base = rss_mb()
    build_s, built = timed(lambda: PdqIndex.build(codes, ids))
    index: PdqIndex = built  # type: ignore[assignment]
    vigil_mb = rss_mb() - base
    latencies(index, qcodes[:50])  # warm up
    single = latencies(index, qcodes)
    batch_s, vigil_results = timed(lambda: index.search(qcodes, THRESHOLD))

    hexes = [row.tobytes().hex() for row in codes]
    query_hex = [row.tobytes().hex() for row in qcodes[:anchor_queries]]
    gc.collect()
    base = rss_mb()
    tx_build_s, built = timed(
        lambda: TxPdqSignal.get_index_cls()(zip(hexes, range(n), strict=True))
    )
    anchor: object = built
    tx_mb = rss_mb() - base
    tx_s, tx_results = timed(lambda: [anchor.query(h) for h in query_hex])  # type: ignore[attr-defined]

    mine = result_sets(vigil_results)[:anchor_queries]  # type: ignore[arg-type]
    theirs = [{m.metadata for m in matches} for matches in tx_results]  # type: ignore[attr-defined]
    assert mine == theirs, "vigil and python-threatexchange disagree at d <= 31"
    matched = sum(1 for s in mine if s)

    tx_rate = anchor_queries / tx_s
    single_rate = 1 / single.mean()
    batch_rate = queries / batch_s
    name = TxPdqSignal.get_index_cls().__name__
    return [
        ("hashes indexed", f"{n:,}", f"{n:,}"),
        ("index class", "vigil PdqIndex (MIH, numba kernel)", f"threatexchange {name}"),
        ("build time", f"{build_s:.1f} s", f"{tx_build_s:.1f} s"),
        (
            "resident memory of the index (RSS growth)",
            f"{vigil_mb:.0f} MB (arrays {index.nbytes / 1e6:.0f} MB)",
            f"{tx_mb:.0f} MB",
        ),
        ("single-query rate", f"{single_rate:,.0f} q/s", f"{tx_rate:,.0f} q/s"),
        ("single-query p50 / p99", ms_pair(single), "-"),
        (f"batched rate ({queries} queries per call)", f"{batch_rate:,.0f} q/s", "-"),
        (
            "speed-up, single / batched",
            f"{single_rate / tx_rate:.1f}x / {batch_rate / tx_rate:.1f}x",
            "1x",
        ),
        (
            "identical result sets at d<=31",
            f"yes ({anchor_queries} queries, {matched} with matches)",
            "yes",
        ),
    ]


def ms_pair(seconds: np.ndarray) -> str:
    p50, p99 = np.percentile(seconds, [50, 99]) * 1e3
    return f"{p50:.3f} / {p99:.3f} ms"


def large_scale(n: int, queries: int) -> list[tuple[str, str, str]]:
    codes, qcodes = make_bank(n, queries, seed=2)
    ids = np.arange(n, dtype=np.int64)
    gc.collect()
    base = rss_mb()
    build_s, built = timed(lambda: PdqIndex.build(codes, ids))
    index: PdqIndex = built  # type: ignore[assignment]
    memory = rss_mb() - base
    nbytes = index.nbytes
    latencies(index, qcodes[:50])
    single = latencies(index, qcodes)
    batch_s, _ = timed(lambda: index.search(qcodes, THRESHOLD))

    add_to_match = adds_until_matchable(index, n, rounds=20)
    compact_s, _ = timed(index.compact)
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        save_s, _ = timed(lambda: index.save(Path(tmp) / "snap"))
        load_s, loaded = timed(lambda: PdqIndex.load(Path(tmp) / "snap"))
        assert len(loaded) == n + 20  # type: ignore[arg-type]
        size = sum(f.stat().st_size for f in (Path(tmp) / "snap").iterdir()) / 1e6
    return [
        ("hashes indexed", f"{n:,}", ""),
        ("build time", f"{build_s:.1f} s", ""),
        (
            "resident memory of the index (RSS growth)",
            f"{memory:.0f} MB (arrays {nbytes / 1e6:.0f} MB)",
            "",
        ),
        ("single-query p50 / p99", ms_pair(single), f"{queries} queries"),
        (f"batched rate ({queries} queries per call)", f"{queries / batch_s:,.0f} q/s", ""),
        ("add -> matchable (add + the query that finds it)", ms_pair(add_to_match), "20 adds"),
        (
            "compact (merge delta into a new base)",
            f"{compact_s:.1f} s",
            "background; queries go on",
        ),
        ("snapshot save", f"{save_s:.1f} s", f"{size:,.0f} MB on disk"),
        ("snapshot load", f"{load_s:.1f} s", "no re-hashing, no re-sorting"),
    ]


def table(title: str, header: tuple[str, str, str], rows: list[tuple[str, str, str]]) -> str:
    lines = [f"### {title}", "", "| {} | {} | {} |".format(*header), "|---|---|---|"]
    lines += ["| {} | {} | {} |".format(*row) for row in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--anchor-queries", type=int, default=500)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    report = [
        "# PDQ matching benchmark",
        "",
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        "",
        table(
            f"vigil vs python-threatexchange at {args.hashes:,} hashes, d <= {THRESHOLD}",
            ("", "vigil", "python-threatexchange"),
            compare_with_anchor(args.hashes, args.queries, args.anchor_queries),
        ),
    ]
    if args.large:
        report.append(
            table(
                f"vigil at {args.large:,} hashes",
                ("", "value", "note"),
                large_scale(args.large, args.queries),
            )
        )
    report.append(f"Total run time {time.perf_counter() - started:.0f} s.\n")
    text = "\n".join(report)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
