"""The work bus: named queues of messages that workers take in batches and acknowledge.

Delivery is at least once. A message taken and not acknowledged within the ack wait (its worker
died, or hung) is delivered again, to any worker of the queue; handlers must therefore be
idempotent, which vigil's are by key (a post, a media item, a stream is stored once). A message
that keeps failing is moved to the queue's dead letters after ``max_deliver`` tries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    queue: str
    data: bytes
    #: The publisher's id for the message, if it gave one: publishing the same id twice within
    #: the bus's duplicate window stores it once.
    id: str | None
    #: 1 on the first delivery, 2 on the first redelivery...
    deliveries: int
    #: The message's position in its queue, for reports ("message 1234 was malformed").
    sequence: int


class Delivery(Protocol):
    """A message a worker has taken: it must ack, nak or term it."""

    @property
    def message(self) -> Message: ...

    def ack(self) -> None:
        """Done: never deliver it again."""

    def nak(self, delay: float = 0.0) -> None:
        """Not done: deliver it again (to any worker), after ``delay`` seconds."""

    def term(self) -> None:
        """Never deliver it again, though it was not done (it went to the dead letters)."""


class Bus(Protocol):
    def publish(self, queue: str, data: bytes, *, msg_id: str | None = None) -> None:
        """Store ``data`` on ``queue``; returns once the bus has it (durably, for NATS)."""

    def fetch(self, queue: str, batch: int, timeout: float) -> list[Delivery]:
        """Up to ``batch`` messages of ``queue`` for this worker's group, waiting at most
        ``timeout`` seconds for the first; ``[]`` if none came."""

    def close(self) -> None: ...


def dead_letters(queue: str) -> str:
    """The queue a message of ``queue`` goes to when it keeps failing."""
    return f"dead.{queue}"
