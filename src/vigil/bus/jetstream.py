"""NATS JetStream as the bus: durable queues that survive worker and server restarts.

One stream (``VIGIL_BUS_STREAM``) holds every queue as the subject ``vigil.<queue>``, with
work-queue retention: a message is removed once acknowledged. Each queue has one durable pull
consumer shared by all its workers (a consumer group): JetStream hands each message to one of
them, and again, to any, when the ack wait passes without an ack. Publishers' message ids go in
``Nats-Msg-Id``, so a publisher that retries after a lost reply does not store a message twice.

nats-py is asynchronous and vigil's workers are not: the client runs on an event loop in a
background thread and each call waits for its result there.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from vigil.bus.base import Delivery, Message
from vigil.logs import get_logger

log = get_logger(__name__)
_T = TypeVar("_T")
#: How long a call waits on the client beyond its own timeout (a server that is restarting).
_GRACE = 30.0


class BusUnavailable(RuntimeError):
    pass


class JetStreamBus:
    def __init__(self, servers: str, *, stream: str = "VIGIL", ack_wait: float = 30.0) -> None:
        self.servers = servers
        self.stream = stream
        self.ack_wait = ack_wait
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bus", daemon=True)
        self._thread.start()
        self._subscriptions: dict[str, Any] = {}
        try:
            self._client, self._jetstream = self._call(self._connect(), timeout=10.0)
        except Exception as exc:
            self._stop_loop()
            raise BusUnavailable(f"cannot reach NATS at {servers}: {exc}") from exc

    def publish(self, queue: str, data: bytes, *, msg_id: str | None = None) -> None:
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        self._call(self._jetstream.publish(_subject(queue), data, headers=headers), timeout=10.0)

    def fetch(self, queue: str, batch: int, timeout: float) -> list[Delivery]:
        from nats.errors import TimeoutError as FetchTimeout

        if not self._client.is_connected:
            # A pull request made now would wait in the client's buffer and go out with every
            # other one on reconnect, each answered with a batch: one worker would take the
            # backlog. Nothing is asked for until the client is back.
            time.sleep(timeout)
            return []
        subscription = self._subscription(queue)
        try:
            messages = self._call(subscription.fetch(batch, timeout=timeout), timeout=timeout)
        except (TimeoutError, FetchTimeout):
            return []
        deliveries = [_Delivery(self, queue, m) for m in messages]
        for surplus in deliveries[batch:]:
            # The answer to a pull request sent before a disconnect can still arrive with this
            # one: handed back at once, for any worker.
            surplus.nak()
        return list(deliveries[:batch])

    def close(self) -> None:
        # close, not drain: every publish already waited for the server's ack, and draining
        # a pull subscription waits out its drain timeout (30 s).
        try:
            self._call(self._client.close(), timeout=5.0)
        except Exception:  # closing a bus whose server is gone must not raise
            log.warning("bus.close_failed", servers=self.servers)
        self._stop_loop()

    def _call(self, coroutine: Coroutine[Any, Any, _T], timeout: float) -> _T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout + _GRACE)
        except TimeoutError:
            future.cancel()
            raise

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _connect(self) -> tuple[Any, Any]:
        import nats
        from nats.js.api import RetentionPolicy, StreamConfig
        from nats.js.errors import NotFoundError

        client = await nats.connect(
            self.servers.split(","),
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
        )
        jetstream = client.jetstream()
        try:
            await jetstream.stream_info(self.stream)
        except NotFoundError:
            config = StreamConfig(
                name=self.stream, subjects=["vigil.>"], retention=RetentionPolicy.WORK_QUEUE
            )
            await jetstream.add_stream(config)
        return client, jetstream

    def _subscription(self, queue: str) -> Any:
        if queue not in self._subscriptions:
            self._subscriptions[queue] = self._call(self._subscribe(queue), timeout=10.0)
        return self._subscriptions[queue]

    async def _subscribe(self, queue: str) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig

        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait, max_deliver=-1
        )
        durable = queue.replace(".", "-")
        return await self._jetstream.pull_subscribe(
            _subject(queue), durable=durable, stream=self.stream, config=config
        )


def _subject(queue: str) -> str:
    return f"vigil.{queue}"


@dataclass(frozen=True)
class _Delivery:
    bus: JetStreamBus
    queue: str
    raw: Any

    @property
    def message(self) -> Message:
        headers = self.raw.headers or {}
        meta = self.raw.metadata
        return Message(
            self.queue,
            self.raw.data,
            headers.get("Nats-Msg-Id"),
            int(meta.num_delivered),
            int(meta.sequence.stream),
        )

    def ack(self) -> None:
        self.bus._call(self.raw.ack(), timeout=10.0)

    def nak(self, delay: float = 0.0) -> None:
        self.bus._call(self.raw.nak(delay=delay or None), timeout=10.0)

    def term(self) -> None:
        self.bus._call(self.raw.term(), timeout=10.0)
