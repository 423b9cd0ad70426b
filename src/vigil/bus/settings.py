"""Bus settings (``VIGIL_BUS_*``)."""

from __future__ import annotations

from pydantic import Field

from vigil.config import Settings


class BusSettings(Settings):
    bus_url: str = Field(
        default="memory://",
        description="The work bus: memory:// (in-process, the embedded default) or "
        "nats://host:port[,nats://host2:port] (NATS JetStream).",
    )
    bus_stream: str = Field(
        default="VIGIL", description="The JetStream stream that holds vigil's queues."
    )
    bus_ack_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A message taken and not acknowledged within this long is delivered again "
        "(its worker died or hung).",
    )
    bus_max_deliver: int = Field(
        default=5, ge=1, description="Deliveries before a failing message goes to dead letters."
    )
    bus_batch: int = Field(default=64, ge=1, description="Messages a worker takes at once.")
    worker_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Threads per inference in a `vigil worker`: scale with more workers, not "
        "more threads (two workers on two cores with two threads each ran slower together "
        "than one alone, bench/RESULTS.md).",
    )
