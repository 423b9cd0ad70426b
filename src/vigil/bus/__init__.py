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
]


def open_bus(settings: BusSettings) -> Bus:
    url = settings.bus_url
    if url.startswith("memory:"):
        return InProcessBus(ack_wait=settings.bus_ack_wait_seconds)
    if url.startswith(("nats://", "tls://")):
        from vigil.bus.jetstream import JetStreamBus

        return JetStreamBus(url, stream=settings.bus_stream, ack_wait=settings.bus_ack_wait_seconds)
    raise ValueError(f"VIGIL_BUS_URL must be memory:// or nats://..., not {url!r}")
