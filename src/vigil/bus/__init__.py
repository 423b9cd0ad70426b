"""The work bus between ingest and workers: in-process by default, NATS JetStream to scale out.

``open_bus(settings)`` picks the implementation from ``VIGIL_BUS_URL``; :func:`consume` is the
loop every worker runs (take a batch, handle it, acknowledge it, dead-letter what keeps failing).
"""

from __future__ import annotations

from vigil.bus.base import Bus, Delivery, Message, dead_letters
from vigil.bus.consume import ConsumeStats, Handler, consume
from vigil.bus.memory import InProcessBus
from vigil.bus.settings import BusSettings

__all__ = [
    "Bus",
    "BusSettings",
    "ConsumeStats",
    "Delivery",
    "Handler",
    "InProcessBus",
    "Message",
    "consume",
    "dead_letters",
    "open_bus",
    "open_shared_bus",
]


def open_bus(settings: BusSettings) -> Bus:
    url = settings.bus_url
    if url.startswith("memory:"):
        return InProcessBus(ack_wait=settings.bus_ack_wait_seconds)
    if url.startswith(("nats://", "tls://")):
        from vigil.bus.jetstream import JetStreamBus

        return JetStreamBus(url, stream=settings.bus_stream, ack_wait=settings.bus_ack_wait_seconds)
    raise ValueError(f"VIGIL_BUS_URL must be memory:// or nats://..., not {url!r}")


def open_shared_bus(settings: BusSettings) -> Bus:
    """:func:`open_bus` for processes that hand work to each other (``vigil worker``, ``vigil
    posts publish``): the in-process bus would leave the work in the process that put it."""
    if settings.bus_url.startswith("memory:"):
        raise ValueError("this needs a bus other processes share: VIGIL_BUS_URL=nats://host:4222")
    return open_bus(settings)
