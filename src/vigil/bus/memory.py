"""The in-process bus: the embedded default (one process, no broker), with the same delivery
rules as NATS: a batch per fetch, redelivery after the ack wait, publisher ids deduplicated."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, replace

from vigil.bus.base import Delivery, Message

#: How long a publisher's message id is remembered (JetStream's default duplicate window).
DUPLICATE_WINDOW = 120.0


@dataclass
class _Queue:
    ready: deque[tuple[float, Message]]
    taken: dict[int, tuple[float, Message]]


class InProcessBus:
    def __init__(self, ack_wait: float = 30.0) -> None:
        self.ack_wait = ack_wait
        self._queues: dict[str, _Queue] = {}
        self._ids: dict[str, float] = {}
        self._sequence = itertools.count(1)
        self._changed = threading.Condition()

    def publish(self, queue: str, data: bytes, *, msg_id: str | None = None) -> None:
        with self._changed:
            now = time.monotonic()
            self._ids = {k: t for k, t in self._ids.items() if now - t < DUPLICATE_WINDOW}
            if msg_id is not None:
                if msg_id in self._ids:
                    return
                self._ids[msg_id] = now
            message = Message(queue, data, msg_id, 0, next(self._sequence))
            self._queue(queue).ready.append((now, message))
            self._changed.notify_all()

    def fetch(self, queue: str, batch: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                taken = self._take(self._queue(queue), batch, now)
                if taken or now >= deadline:
                    return [_Delivery(self, m) for m in taken]
                self._changed.wait(min(0.1, deadline - now))

    def close(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def pending(self, queue: str) -> int:
        """Messages of ``queue`` not yet acknowledged (waiting or taken)."""
        with self._changed:
            q = self._queue(queue)
            return len(q.ready) + len(q.taken)

    def _queue(self, name: str) -> _Queue:
        return self._queues.setdefault(name, _Queue(deque(), {}))

    def _take(self, queue: _Queue, batch: int, now: float) -> list[Message]:
        for sequence, (expires, message) in list(queue.taken.items()):
            if expires <= now:  # its worker never answered
                del queue.taken[sequence]
                queue.ready.appendleft((now, message))
        taken: list[Message] = []
        later: list[tuple[float, Message]] = []
        while queue.ready and len(taken) < batch:
            due, message = queue.ready.popleft()
            if due > now:
                later.append((due, message))
                continue
            message = replace(message, deliveries=message.deliveries + 1)
            queue.taken[message.sequence] = (now + self.ack_wait, message)
            taken.append(message)
        queue.ready.extendleft(reversed(later))
        return taken

    def _settle(self, message: Message, again_after: float | None) -> None:
        with self._changed:
            queue = self._queue(message.queue)
            if queue.taken.pop(message.sequence, None) is None:
                return  # already redelivered after its ack wait: the new delivery decides
            if again_after is not None:
                queue.ready.append((time.monotonic() + again_after, message))
                self._changed.notify_all()


@dataclass(frozen=True)
class _Delivery:
    bus: InProcessBus
    message: Message

    def ack(self) -> None:
        self.bus._settle(self.message, None)

    def nak(self, delay: float = 0.0) -> None:
        self.bus._settle(self.message, delay)

    def term(self) -> None:
        self.bus._settle(self.message, None)
