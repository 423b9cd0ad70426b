"""``vigil worker``: a process that takes work from the bus (posts, media, faces) or holds live
streams under leases (live); run more of them to scale out."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import typer

from vigil.bus import BusSettings, Handler, consume, open_shared_bus
from vigil.config import Settings, get_settings
from vigil.threads import limit_threads


class Role(StrEnum):
    """posts, media and faces are the bus queues their workers take from; live workers share
    the streams serve records (``VIGIL_LIVE_WORKERS``)."""

    posts = "posts"
    media = "media"
    faces = "faces"
    live = "live"


@dataclass
class QueueWork:
    handler: Handler
    batch: int
    close: Callable[[], None]
    summary: Callable[[], dict[str, Any]]


def worker_command(
    role: Role = typer.Option(
        ...,
        "--role",
        help="posts (JSON records), media (uploads to match), faces (queued face searches) or "
        "live (streams held under leases).",
    ),
    fmt: str = typer.Option("vigil", "--format", help="posts: vigil, x or telegram records."),
    platform: str | None = typer.Option(None, help="posts: platform where the format has none."),
) -> None:
    """Work until SIGTERM or Ctrl-C. Every bus message is handled at least once and handling
    is idempotent, and a live worker's streams go to the others when it stops or dies, so any
    number of workers can share a role and one can be killed at any moment."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    settings = get_settings()
    if role is Role.live:
        summary = _hold_streams(settings, stop)
    else:
        summary = _take_from_bus(role, settings, stop, fmt, platform)
    typer.echo(json.dumps(summary))


def _take_from_bus(
    role: Role, settings: Settings, stop: threading.Event, fmt: str, platform: str | None
) -> dict[str, Any]:
    bus_settings = BusSettings.of(settings)
    try:
        bus = open_shared_bus(bus_settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="VIGIL_BUS_URL") from exc
    work = _queue_work(role, settings, bus_settings, fmt, platform)
    limit_threads(bus_settings.worker_threads)
    try:
        stats = consume(
            bus,
            role.value,
            work.handler,
            stop=stop,
            batch=work.batch,
            max_deliver=bus_settings.bus_max_deliver,
        )
    finally:
        bus.close()
        work.close()
    return {**work.summary(), "handled": stats.handled, "failed": stats.failed, "dead": stats.dead}


def _queue_work(
    role: Role, settings: Settings, bus_settings: BusSettings, fmt: str, platform: str | None
) -> QueueWork:
    from vigil.hashing import KnownContent

    if role is Role.posts:
        from vigil.cli.posts import _check_format, _service, _Tally
        from vigil.text.settings import TextSettings
        from vigil.text.sources import posts_handler

        service = _service(TextSettings.of(settings))
        tally = _Tally()
        handler = posts_handler(service.scanner(), _check_format(fmt), platform, tally)
        return QueueWork(handler, bus_settings.bus_batch, service.known.close, tally.summary)
    if role is Role.media:
        from vigil.review.media_queue import media_handler

        known = KnownContent(settings)
        # One upload at a time: a failed batch is handled again item by item, which would
        # hash and match the finished uploads of the batch a second time.
        return QueueWork(media_handler(known, settings), 1, known.close, dict)
    from vigil.faces.queue import faces_handler
    from vigil.faces.service import FaceService
    from vigil.faces.settings import FacesSettings
    from vigil.store import Database

    db = Database(settings.resolved_database_url)
    # One search at a time: a search is long, and a batch that failed would run them all again.
    return QueueWork(
        faces_handler(FaceService(db, FacesSettings.of(settings))), 1, db.dispose, dict
    )


def _hold_streams(settings: Settings, stop: threading.Event) -> dict[str, Any]:
    from vigil.hashing import KnownContent
    from vigil.live import LiveMonitor, LiveSettings
    from vigil.live.leases import LeaseHolder
    from vigil.live.registry import StreamRegistry

    live_settings = LiveSettings.of(settings)
    known = KnownContent(live_settings)
    monitor = LiveMonitor(known, live_settings)
    holder = LeaseHolder(monitor, StreamRegistry(known.db, live_settings.live_lease_seconds))
    try:
        holder.run(stop)
    finally:
        known.close()
    return {"worker": holder.name, "claimed": holder.claimed}
