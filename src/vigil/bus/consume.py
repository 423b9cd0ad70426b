"""The loop every worker runs over one queue."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vigil.bus.base import Bus, Delivery, Message, dead_letters
from vigil.logs import get_logger

log = get_logger(__name__)

#: Seconds between tries to reach a broker that is down.
_RETRY_SECONDS = 1.0

#: Handles a batch; raises if any of it failed. Must be idempotent: a batch whose worker died
#: before acknowledging is delivered again, whole or in part.
Handler = Callable[[Sequence[Message]], None]


@dataclass
class ConsumeStats:
    handled: int = 0
    failed: int = 0
    dead: int = 0


def consume(
    bus: Bus,
    queue: str,
    handler: Handler,
    *,
    stop: threading.Event,
    batch: int = 64,
    max_deliver: int = 5,
    timeout: float = 1.0,
) -> ConsumeStats:
    """Take batches of ``queue`` until ``stop`` is set: handle, then acknowledge.

    A batch that fails is handled again one message at a time, so one bad message does not
    hold back the others; a message that fails is delivered again after a growing delay, and
    after ``max_deliver`` deliveries it goes to the queue's dead letters instead.
    """
    stats = ConsumeStats()
    while not stop.is_set():
        try:
            deliveries = bus.fetch(queue, batch, timeout)
            live = [d for d in deliveries if not _dead_lettered(bus, d, max_deliver, stats)]
        except Exception:
            # The broker is restarting or unreachable: the client reconnects; what this worker
            # had taken and not acknowledged is delivered again after the ack wait.
            log.warning("bus.unavailable", queue=queue, exc_info=True)
            stop.wait(_RETRY_SECONDS)
            continue
        if not live:
            continue
        try:
            handler([d.message for d in live])
        except Exception:
            log.warning("bus.batch_failed", queue=queue, size=len(live), exc_info=True)
            for delivery in live:
                _one(handler, delivery, stats)
            continue
        for delivery in live:
            _settle(delivery.ack)
        stats.handled += len(live)
    return stats


def _settle(answer: Callable[[], None]) -> None:
    """Ack or nak; if the broker is gone the message is simply delivered again (handlers are
    idempotent), so the worker goes on."""
    try:
        answer()
    except Exception:
        log.warning("bus.settle_failed", exc_info=True)


def _one(handler: Handler, delivery: Delivery, stats: ConsumeStats) -> None:
    try:
        handler([delivery.message])
    except Exception:
        log.warning(
            "bus.message_failed",
            queue=delivery.message.queue,
            sequence=delivery.message.sequence,
            deliveries=delivery.message.deliveries,
            exc_info=True,
        )
        _settle(lambda: delivery.nak(delay=min(30.0, 0.5 * 2**delivery.message.deliveries)))
        stats.failed += 1
        return
    _settle(delivery.ack)
    stats.handled += 1


def _dead_lettered(bus: Bus, delivery: Delivery, max_deliver: int, stats: ConsumeStats) -> bool:
    message = delivery.message
    if message.deliveries <= max_deliver:
        return False
    # Published before the term: a worker dying in between leaves a duplicate dead letter (with
    # the same id, which the bus drops), never a lost one.
    bus.publish(dead_letters(message.queue), message.data, msg_id=f"dead:{message.sequence}")
    delivery.term()
    stats.dead += 1
    log.error("bus.dead_letter", queue=message.queue, sequence=message.sequence)
    return True
