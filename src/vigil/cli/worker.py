"""``vigil worker``: a process that takes work from the bus; run more of them to scale out."""

from __future__ import annotations

import json
import signal
import threading
from enum import StrEnum

import typer

from vigil.bus import BusSettings, consume, open_shared_bus
from vigil.cli.posts import _check_format, _service, _settings, _Tally


class Role(StrEnum):
    """A role is the bus queue its workers take from."""

    posts = "posts"


def worker_command(
    role: Role = typer.Option(
        ..., "--role", help="The queue to work on: posts (media, live and faces are not built yet)."
    ),
    fmt: str = typer.Option("vigil", "--format", help="vigil, x or telegram (one record each)."),
    platform: str | None = typer.Option(None, help="Platform name where the format has none."),
) -> None:
    """Take batches from the bus (VIGIL_BUS_URL) until SIGTERM or Ctrl-C. Every message is
    handled at least once and handling is idempotent, so any number of workers can share a
    queue and one can be killed at any moment."""
    from vigil.text.sources import posts_handler

    format_ = _check_format(fmt)
    settings = _settings()
    bus_settings = BusSettings.of(settings)
    try:
        bus = open_shared_bus(bus_settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="VIGIL_BUS_URL") from exc
    service = _service(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    tally = _Tally()
    try:
        stats = consume(
            bus,
            role.value,
            posts_handler(service.scanner(), format_, platform, tally),
            stop=stop,
            batch=bus_settings.bus_batch,
            max_deliver=bus_settings.bus_max_deliver,
        )
    finally:
        bus.close()
        service.known.close()
    typer.echo(json.dumps({**tally.summary(), "failed": stats.failed, "dead": stats.dead}))
