"""Posts/s through the bus with 1 and 2 ``vigil worker --role posts`` processes (issue 7).

The posts of ``bench/posts_throughput.py`` (real rows of ``../shared/data/text``, 5 % harmful,
1 % campaign copies) are written to a file, put on a private nats-server's ``vigil.posts`` queue
with ``vigil posts publish``, and taken by N worker processes that store and scan them in a
fresh PostgreSQL database. The rate is taken in steady state: from the moment 10 % of the posts
are stored (every worker has loaded its models) to the last one. The same posts scanned by one
process without the bus (``scan_file``, the same database kind) is the baseline.

    .venv/bin/python bench/scale_posts.py --posts 4000 --workers 1 2 \
        --out bench/results/scale_posts.md
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from posts_throughput import stream
from vigil.net import free_local_port
from vigil.store import Database
from vigil.store.models import PostRecord
from vigil.text.scanner import PostScanner
from vigil.text.settings import TextSettings
from vigil.text.sources import scan_file

ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@localhost:5432/postgres"
)
NATS = "/usr/sbin/nats-server"


@dataclass
class Run:
    workers: int
    posts: int
    publish_s: float
    workload: Workload

    @property
    def rate(self) -> float:
        return 0.9 * self.posts / self.workload.steady_s


@contextmanager
def database() -> Iterator[str]:
    name = f"vigil_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def nats_server(store: Path) -> Iterator[str]:
    port = free_local_port()
    command = [NATS, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def stored(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(PostRecord)) or 0)


def proc_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MB) of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text()
    peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    return cpu, peak / 1024


def measure(workers: int, feed: Path, posts: int, tmp: Path) -> Run:
    with database() as url, nats_server(tmp / f"js{workers}") as bus_url:
        db = Database(url)
        env = {
            **os.environ,
            "VIGIL_HOME": str(tmp / f"home{workers}"),
            "VIGIL_DATABASE_URL": url,
            "VIGIL_BUS_URL": bus_url,
        }
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "vigil", "posts", "publish", str(feed)],
            env=env,
            check=True,
            capture_output=True,
        )
        publish_s = time.perf_counter() - started
        workload = run_workers(env, "posts", workers, lambda: stored(db), posts)
        db.dispose()
    return Run(workers, posts, publish_s, workload)


@dataclass
class Workload:
    steady_s: float
    cpu_s: float
    peak_rss_mb: list[float]


def run_workers(
    env: dict[str, str], role: str, workers: int, done: Callable[[], int], total: int
) -> Workload:
    """Run ``workers`` ``vigil worker --role ROLE`` processes until ``done()`` reaches
    ``total``; the steady-state time runs from 10 % of ``total`` to the end."""
    command = [sys.executable, "-m", "vigil", "worker", "--role", role]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        tenth = None
        while (count := done()) < total:
            if tenth is None and count >= total // 10:
                tenth = time.perf_counter()
            time.sleep(0.1)
        finished = time.perf_counter()
        stats = [proc_stat(p.pid) for p in procs]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    assert tenth is not None
    return Workload(finished - tenth, sum(c for c, _ in stats), [r for _, r in stats])


def baseline(feed: Path, posts: int, tmp: Path) -> float:
    """Posts/s of one process scanning the file directly into PostgreSQL, steady state."""
    with database() as url:
        settings = TextSettings(home=tmp / "baseline", database_url=url)
        db = Database(url)
        scanner = PostScanner(db, settings)
        scanner.classifier.predict(["warm-up"])
        started = time.perf_counter()
        result = scan_file(scanner, feed)
        seconds = time.perf_counter() - started
        db.dispose()
    assert result.scanned == posts
    return posts / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        feed = tmp / "posts.jsonl"
        with feed.open("w", encoding="utf-8") as out:
            for post in stream(args.posts, 0.05, 0.01, 0):
                out.write(json.dumps(post, ensure_ascii=False) + "\n")
        base = baseline(feed, args.posts, tmp)
        runs = [measure(n, feed, args.posts, tmp) for n in args.workers]
    lines = [
        "# Posts through the bus: workers vs one process",
        "",
        f"`.venv/bin/python bench/scale_posts.py --posts {args.posts} --workers "
        f"{' '.join(map(str, args.workers))}" + (f" --out {args.out}`" if args.out else "`"),
        "",
        f"{os.cpu_count()} CPUs; PostgreSQL on localhost; a private nats-server (JetStream, file "
        "store); posts as in bench/posts_throughput.py (5 % harmful, 1 % campaign copies).",
        "",
        "| | posts/s (steady state) | vs one process | publish (posts/s) | worker CPU s "
        "| peak RSS per worker |",
        "|---|---|---|---|---|---|",
        f"| one process, no bus (`scan_file`) | {base:,.0f} | 1.00x | - | - | - |",
    ]
    for run in runs:
        lines.append(
            f"| {run.workers} worker{'s' if run.workers > 1 else ''} | {run.rate:,.0f} "
            f"| {run.rate / base:.2f}x | {run.posts / run.publish_s:,.0f} "
            f"| {run.workload.cpu_s:.0f} "
            f"| {', '.join(f'{rss:,.0f} MB' for rss in run.workload.peak_rss_mb)} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
