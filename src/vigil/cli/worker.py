"""``vigil worker``: a process that takes work from the bus; run more of them to scale out."""

from __future__ import annotations

import json
import signal
import threading
from enum import StrEnum

import typer

from vigil.bus import BusSettings, Handler, consume, open_shared_bus
from vigil.cli.posts import _check_format, _service, _settings, _Tally
from vigil.hashing import KnownContent
from vigil.threads import limit_threads


class Role(StrEnum):
    """A role is the bus queue its workers take from."""

    posts = "posts"
    media = "media"


def worker_command(
    role: Role = typer.Option(
        ...,
        "--role",
        help="The queue to work on: posts (JSON records) or media (uploads to match); live and "
        "faces workers are not built yet.",
    ),
    fmt: str = typer.Option("vigil", "--format", help="posts: vigil, x or telegram records."),
    platform: str | None = typer.Option(None, help="posts: platform where the format has none."),
) -> None:
    """Take batches from the bus (VIGIL_BUS_URL) until SIGTERM or Ctrl-C. Every message is
    handled at least once and handling is idempotent, so any number of workers can share a
    queue and one can be killed at any moment."""
    settings = _settings()
    bus_settings = BusSettings.of(settings)
    try:
        bus = open_shared_bus(bus_settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="VIGIL_BUS_URL") from exc
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    tally = _Tally()
    known: KnownContent
    handler: Handler
    if role is Role.posts:
        from vigil.text.sources import posts_handler

        service = _service(settings)
        known = service.known
        handler = posts_handler(service.scanner(), _check_format(fmt), platform, tally)
        batch = bus_settings.bus_batch
    else:
        from vigil.review.media_queue import media_handler

        known = KnownContent(settings)
        handler = media_handler(known, settings)
        # One upload at a time: a failed batch is handled again item by item, which would
        # hash and match the finished uploads of the batch a second time.
        batch = 1
    limit_threads(bus_settings.worker_threads)
    try:
        stats = consume(
            bus,
            role.value,
            handler,
            stop=stop,
            batch=batch,
            max_deliver=bus_settings.bus_max_deliver,
        )
    finally:
        bus.close()
        known.close()
    summary = tally.summary() if role is Role.posts else {"handled": stats.handled}
    typer.echo(json.dumps({**summary, "failed": stats.failed, "dead": stats.dead}))
