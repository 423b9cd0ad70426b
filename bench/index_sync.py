"""How long a hash added by one process takes to be matchable in another (issue 7).

Every matcher keeps its indexes in step with the database by id (``SignalIndexSet.refresh``:
a snapshot, then the rows above its high-water mark), at most once per
``VIGIL_INDEX_REFRESH_SECONDS``. A follower process queries for hashes a leader adds to a bank
one at a time on a shared PostgreSQL database; the lag is from the leader's commit to the
follower's first match (both on this machine's monotonic clock).

    .venv/bin/python bench/index_sync.py --adds 40 --refresh 1.0 0.2 \
        --out bench/results/index_sync.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scale_posts import database
from vigil.config import Settings
from vigil.hashing import KnownContent
from vigil.hashing.banks import NewEntry
from vigil.hashing.signals.base import Signal


def hashes(count: int) -> list[str]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(count)]


def follow(url: str, home: str, count: int) -> None:
    """The follower: report when each hash first matches."""
    known = KnownContent(Settings(home=Path(home), database_url=url))
    pending = dict(enumerate(hashes(count)))
    print("ready", flush=True)
    while pending:
        for i, value in list(pending.items()):
            if known.match_signals([Signal("pdq", value, quality=100)]).matches:
                print(f"found {i} {time.monotonic()}", flush=True)
                del pending[i]
        time.sleep(0.005)
    known.close()


def measure(adds: int, refresh: float, tmp: Path) -> np.ndarray:
    with database() as url:
        leader = KnownContent(Settings(home=tmp / f"leader{refresh}", database_url=url))
        leader.banks.create("sync")
        env = {**os.environ, "VIGIL_INDEX_REFRESH_SECONDS": str(refresh)}
        command = [sys.executable, __file__, "--follow", url, str(tmp / f"f{refresh}"), str(adds)]
        follower = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        assert follower.stdout is not None
        assert follower.stdout.readline().strip() == "ready"
        committed = []
        for value in hashes(adds):
            leader.banks.add_entries("sync", [NewEntry([Signal("pdq", value, quality=100)])])
            committed.append(time.monotonic())
            time.sleep(0.13)  # adds spread over the refresh period
        found = {}
        for line in follower.stdout:
            _, i, at = line.split()
            found[int(i)] = float(at)
        follower.wait(timeout=30)
        leader.close()
    return np.array([found[i] - committed[i] for i in range(adds)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=40)
    parser.add_argument("--refresh", type=float, nargs="+", default=[1.0, 0.2])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--follow", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.follow:
        url, home, count = args.follow
        follow(url, home, int(count))
        return
    lines = [
        "# Index sync across processes",
        "",
        f"`.venv/bin/python bench/index_sync.py --adds {args.adds} --refresh "
        f"{' '.join(map(str, args.refresh))}" + (f" --out {args.out}`" if args.out else "`"),
        "",
        "A leader process adds PDQ hashes to a bank one at a time; a follower process (its own "
        "indexes) queries for them every 5 ms. Lag: leader's commit to the follower's first "
        "match, PostgreSQL on localhost.",
        "",
        "| VIGIL_INDEX_REFRESH_SECONDS | adds | lag p50 | lag p95 | lag max |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as name:
        for refresh in args.refresh:
            lag = measure(args.adds, refresh, Path(name))
            lines.append(
                f"| {refresh:g} | {args.adds} | {np.percentile(lag, 50):.2f} s "
                f"| {np.percentile(lag, 95):.2f} s | {lag.max():.2f} s |"
            )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
