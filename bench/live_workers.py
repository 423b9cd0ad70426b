"""Live streams shared by ``vigil worker --role live`` processes (issue 7), and how long a
killed worker's streams take to come back.

    .venv/bin/python bench/live_workers.py [--workers 1 2] [--streams 10] [--seconds 45] \
        [--failover] [--out bench/results/live_workers.md]

The streams and players are ``bench/live_streams.py``'s (720p30 synthetic streams over UDP at
real time, one in four an attack). serve's side is :class:`vigil.live.LeasedStreams` on a
throw-away PostgreSQL database; the workers claim the streams under leases before the players
start. Every figure comes from what the workers report through the database (status at each
renewal, alerts in the review queue), as serve would show it; CPU is the workers' processes'.

``--failover``: two workers share four streams; one is killed with SIGKILL and the time until
each of its streams is analysed again by the other is measured (default lease, 10 s).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from live_streams import MIX, _p, _streams
from scale_posts import database
from vigil.live import LeasedStreams, LiveSettings, StreamSpec
from vigil.live.groundtruth import Manifest
from vigil.live.playout import Playout, play
from vigil.net import free_local_port
from vigil.store import Database
from vigil.store.models import Alert, LiveWorker


class Workers:
    def __init__(self, count: int, home: Path, url: str, capacity: int) -> None:
        env = {
            **os.environ,
            "VIGIL_HOME": str(home),
            "VIGIL_DATABASE_URL": url,
            "VIGIL_LIVE_URL_ALLOW": json.dumps(["127.0.0.0/8"]),
            "VIGIL_LIVE_MAX_STREAMS": str(capacity),
        }
        command = [sys.executable, "-m", "vigil", "worker", "--role", "live"]
        self.logs = [home / f"worker-{i}.log" for i in range(count)]
        self.processes = []
        for log in self.logs:
            with log.open("wb") as sink:
                self.processes.append(
                    subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)
                )

    def cpu(self) -> float:
        total = 0.0
        for process in self.processes:
            try:
                stat = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class Run:
    workers: int
    streams: int
    seconds: float
    cpu_seconds: float
    reached: list[float] = field(default_factory=list)
    dropped: int = 0
    samples: int = 0
    lags: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    attacks: int = 0
    false_alarms: int = 0
    per_worker: list[int] = field(default_factory=list)

    @property
    def kept_up(self) -> bool:
        dropped = self.dropped / max(1, self.samples + self.dropped)
        return min(self.reached) >= 0.95 and dropped <= 0.01 and _p(self.lags, 95) <= 2.0


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def _beating(db: Database, count: int) -> bool:
    with db.session() as session:
        return (session.scalar(select(func.count()).select_from(LiveWorker)) or 0) >= count


def _register(streams: LeasedStreams, manifests: list[Manifest]) -> tuple[list[str], list[int]]:
    ports = [free_local_port(socket.SOCK_DGRAM) for _ in manifests]
    ids = [
        streams.watch(StreamSpec(f"udp://@:{port}", name=Path(m.video).stem), actor="bench")["id"]
        for port, m in zip(ports, manifests, strict=True)
    ]
    return ids, ports


def _all_running(streams: LeasedStreams, ids: list[str]) -> bool:
    return all(streams.status(i)["state"] == "running" for i in ids)


def _play(manifests: list[Manifest], ports: list[int]) -> tuple[list[Playout], list[float]]:
    players = [
        play(Path(m.video), f"udp://127.0.0.1:{port}", delay_s=0.5)
        for port, m in zip(ports, manifests, strict=True)
    ]
    starts = []
    for player in players:
        started = player.wait_started(timeout=30)
        # Wall-clock start: the workers' reports and alerts carry database (wall) times.
        starts.append(time.time() - (time.monotonic() - (started or time.monotonic())))
    return players, starts


def measure(workers: int, count: int, seconds: float, duration: float) -> Run:
    manifests = _streams(count, duration)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp, database() as url:
        home = Path(tmp)
        settings = LiveSettings(home=home, database_url=url, live_workers=True)
        db = Database(url)
        streams = LeasedStreams(db, settings)
        pool = Workers(workers, home, url, capacity=count)
        try:
            # Every worker beating before the first claim, or the first takes every stream.
            _wait(lambda: _beating(db, workers), 120, "the workers to start")
            ids, ports = _register(streams, manifests)
            _wait(lambda: _all_running(streams, ids), 120, "the workers to claim every stream")
            time.sleep(2.0)  # readers listening, models loaded
            players, starts = _play(manifests, ports)
            cpu_before, wall_before = pool.cpu(), time.monotonic()
            run = Run(workers, count, 0.0, 0.0)
            while time.monotonic() - wall_before < seconds:
                time.sleep(1.0)
                run.lags += [s["lag_seconds"] for s in map(streams.status, ids) if s["samples"]]
            run.cpu_seconds = pool.cpu() - cpu_before
            run.seconds = time.monotonic() - wall_before
            time.sleep(settings.live_lease_seconds / 5 + 3.0)  # a last report; alerts written
            _score(run, streams, db, ids, manifests, starts)
            for player in players:
                player.stop()
        finally:
            pool.stop()
            db.dispose()
    return run


def _score(
    run: Run,
    streams: LeasedStreams,
    db: Database,
    ids: list[str],
    manifests: list[Manifest],
    starts: list[float],
) -> None:
    holders: dict[str, int] = {}
    for stream_id, start in zip(ids, starts, strict=True):
        row, _ = streams.registry.get(stream_id)
        status = streams.status(stream_id)
        assert row.status_at is not None
        run.reached.append(status["t"] / max(1e-9, row.status_at.timestamp() - start))
        run.dropped += int(status["ingest"].get("samples_dropped", 0))
        run.samples += int(status["samples"])
        holders[str(status["worker"])] = holders.get(str(status["worker"]), 0) + 1
    run.per_worker = sorted(holders.values(), reverse=True)
    with db.session() as session:
        alerts = session.scalars(select(Alert).where(Alert.source == "live")).all()
    for stream_id, manifest, start in zip(ids, manifests, starts, strict=True):
        onset = manifest.onset_s
        if manifest.positive and onset is not None and onset < run.seconds - 5:
            run.attacks += 1
        for alert in alerts:
            if not alert.dedupe_key.startswith(f"live:{stream_id}:"):
                continue
            if onset is None or alert.created_at.timestamp() < start + onset:
                run.false_alarms += 1
            else:
                run.latencies.append(alert.created_at.timestamp() - (start + onset))


@dataclass
class Failover:
    lease: float
    streams: int
    moved: list[float]


def failover(duration: float) -> Failover:
    """Two workers, four streams; SIGKILL the holder of the first, time each of its streams
    until the other worker reports it analysed past the moment of the kill."""
    manifests = _streams(4, duration)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp, database() as url:
        home = Path(tmp)
        settings = LiveSettings(home=home, database_url=url, live_workers=True)
        db = Database(url)
        streams = LeasedStreams(db, settings)
        pool = Workers(2, home, url, capacity=4)
        try:
            _wait(lambda: _beating(db, 2), 120, "the workers to start")
            ids, ports = _register(streams, manifests)
            _wait(lambda: _all_running(streams, ids), 120, "the workers to claim every stream")
            time.sleep(2.0)
            players, _ = _play(manifests, ports)
            time.sleep(10.0)
            victim = streams.status(ids[0])["worker"]
            moving = [i for i in ids if streams.status(i)["worker"] == victim]
            index = int(victim.split(":")[1]) if victim else -1
            process = next(p for p in pool.processes if p.pid == index)
            process.send_signal(signal.SIGKILL)
            killed, killed_wall = time.monotonic(), time.time()
            moved: dict[str, float] = {}

            def back() -> bool:
                for stream_id in set(moving) - set(moved):
                    row, _ = streams.registry.get(stream_id)
                    # A report written after the kill is the new holder's.
                    fresh = row.status_at is not None and row.status_at.timestamp() > killed_wall
                    if fresh and row.owner != victim and row.status.get("samples", 0) > 0:
                        moved[stream_id] = time.monotonic() - killed
                return len(moved) == len(moving)

            _wait(back, 120, "the streams to come back")
            for player in players:
                player.stop()
        finally:
            pool.stop()
            db.dispose()
    return Failover(settings.live_lease_seconds, len(moving), sorted(moved.values()))


def _table(runs: list[Run]) -> str:
    lines = [
        "| live workers | streams | streams per worker | workers' CPU, % of 2 cores "
        "| stream time / wall (min) | samples dropped | analysis lag p50 / p95 (s) | kept up "
        "| attacks alerted | onset → alert in queue p50 / p95 (s) | false alarms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.workers} | {run.streams} | {' + '.join(map(str, run.per_worker))} "
            f"| {100 * run.cpu_seconds / run.seconds / 2:.0f} % | {min(run.reached):.2f} "
            f"| {run.dropped} of {run.samples + run.dropped} "
            f"| {_p(run.lags, 50):.2f} / {_p(run.lags, 95):.2f} "
            f"| {'yes' if run.kept_up else 'no'} | {len(run.latencies)} of {run.attacks} "
            f"| {_p(run.latencies, 50):.1f} / {_p(run.latencies, 95):.1f} | {run.false_alarms} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--duration", type=float, default=60.0, help="Length of built streams.")
    parser.add_argument("--failover", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runs = []
    for workers in args.workers:
        run = measure(workers, args.streams, args.seconds, args.duration)
        runs.append(run)
        print(_table([run]).splitlines()[-1], file=sys.stderr, flush=True)
    load = Path("/proc/loadavg").read_text().split()[0]
    command = (
        f"`.venv/bin/python bench/live_workers.py --workers {' '.join(map(str, args.workers))} "
        f"--streams {args.streams} --seconds {args.seconds:g}"
        f"{' --failover' if args.failover else ''}`"
    )
    lines = [
        "# Live streams across live workers (`bench/live_workers.py`)",
        "",
        f"{command} — 2 CPUs, PostgreSQL on localhost, load average after the runs {load}. "
        f"Synthetic 720p30 streams cycling {', '.join(MIX)}.",
        "",
        _table(runs),
        "",
        "Kept up: every stream's time reached ≥ 95 % of wall time, ≤ 1 % samples dropped and "
        "analysis lag p95 ≤ 2 s (as reported by the workers at each renewal).",
    ]
    if args.failover:
        moved = failover(args.duration)
        lines += [
            "",
            f"Failover: SIGKILL of a worker holding {moved.streams} of 4 streams "
            f"(lease {moved.lease:g} s): analysed again by the other worker after "
            f"{', '.join(f'{s:.1f}' for s in moved.moved)} s.",
        ]
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
