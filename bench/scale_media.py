"""Uploads/s through the media queue with 1 and 2 ``vigil worker --role media`` processes.

JPEG re-encodes of the Kodak24 photos at several sizes (as in bench/hash_throughput.py) sit in
a shared folder; a bank holds every photo, and each queue item is one of them seen on a
platform, so every item is hashed, matched and raises its alert (the full path). Rate in steady
state: from 10 % of the alerts written to the last. One process calling ``KnownContent.match``
and writing the alert in a loop, without the bus, is the baseline.

    .venv/bin/python bench/scale_media.py --items 600 --workers 1 2 \
        --out bench/results/scale_media.md
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select, update

from scale_posts import Workload, database, nats_server, run_workers
from vigil.bus import BusSettings, open_bus
from vigil.config import Settings
from vigil.hashing import KnownContent
from vigil.review.matches import Sighting, alerts_from_match
from vigil.review.policy import ReviewPolicy
from vigil.store import Database
from vigil.store.models import Alert, Bank

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "kodak24"
SIDES = (768, 1536)


def photos(folder: Path) -> list[str]:
    names = []
    for source in sorted(KODAK.glob("*.png")):
        image = Image.open(source).convert("RGB")
        for side in SIDES:
            scaled = image.copy()
            scaled.thumbnail((side, side))
            name = f"{source.stem}-{side}.jpg"
            scaled.save(folder / name, quality=85)
            names.append(name)
    return names


def alerts(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Alert)) or 0)


def banked(url: str, home: Path, folder: Path, names: list[str]) -> Settings:
    settings = Settings(home=home, database_url=url, media_queue_dir=folder)
    known = KnownContent(settings)
    known.banks.create("attack")
    list(known.add_content("attack", [folder / n for n in names], labels=["attack"]))
    with known.db.session() as session:
        session.execute(update(Bank).values(alert_on_match=True))
    known.close()
    return settings


def baseline(items: int, names: list[str], folder: Path, tmp: Path) -> float:
    with database() as url:
        settings = banked(url, tmp / "base", folder, names)
        known = KnownContent(settings)
        policy = ReviewPolicy.of(settings)
        known.match(folder / names[0])  # warm
        started = time.perf_counter()
        for i in range(items):
            result, report = known.match(folder / names[i % len(names)])
            with known.db.session() as session:
                alerts_from_match(
                    session, result, report, policy=policy, sighting=Sighting(f"item-{i}")
                )
        seconds = time.perf_counter() - started
        known.close()
    return items / seconds


def measure(workers: int, items: int, names: list[str], folder: Path, tmp: Path) -> Workload:
    with database() as url, nats_server(tmp / f"js{workers}") as bus_url:
        banked(url, tmp / f"bank{workers}", folder, names)
        bus = open_bus(BusSettings(bus_url=bus_url))
        for i in range(items):
            item = {"path": names[i % len(names)], "platform": "bench", "content_ref": f"item-{i}"}
            bus.publish("media", json.dumps(item).encode())
        bus.close()
        env = {
            **os.environ,
            "VIGIL_HOME": str(tmp / f"home{workers}"),
            "VIGIL_DATABASE_URL": url,
            "VIGIL_BUS_URL": bus_url,
            "VIGIL_MEDIA_QUEUE_DIR": str(folder),
        }
        db = Database(url)
        workload = run_workers(env, "media", workers, lambda: alerts(db), items)
        db.dispose()
    return workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        folder = tmp / "uploads"
        folder.mkdir()
        names = photos(folder)
        base = baseline(args.items, names, folder, tmp)
        runs = [(n, measure(n, args.items, names, folder, tmp)) for n in args.workers]
    lines = [
        "# Uploads through the media queue: workers vs one process",
        "",
        f"`.venv/bin/python bench/scale_media.py --items {args.items} --workers "
        f"{' '.join(map(str, args.workers))}" + (f" --out {args.out}`" if args.out else "`"),
        "",
        f"{os.cpu_count()} CPUs; PostgreSQL on localhost; a private nats-server. "
        f"{len(names)} JPEGs (Kodak24 at {' and '.join(map(str, SIDES))} px), all banked; every "
        "item is hashed (PDQ, MD5, SHA-256, embedding when installed), matched and alerted.",
        "",
        "| | uploads/s (steady state) | vs one process | worker CPU s | peak RSS per worker |",
        "|---|---|---|---|---|",
        f"| one process, no bus | {base:,.1f} | 1.00x | - | - |",
    ]
    for workers, load in runs:
        rate = 0.9 * args.items / load.steady_s
        lines.append(
            f"| {workers} worker{'s' if workers > 1 else ''} | {rate:,.1f} | {rate / base:.2f}x "
            f"| {load.cpu_s:.0f} | {', '.join(f'{r:,.0f} MB' for r in load.peak_rss_mb)} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
