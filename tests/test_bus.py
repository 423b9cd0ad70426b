"""The work bus, in-process and on a real nats-server: the same delivery rules on both."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from nats_server import NatsServer
from vigil.bus import Bus, BusSettings, InProcessBus, Message, consume, dead_letters, open_bus

ACK_WAIT = 1.0


@pytest.fixture(params=["memory", "nats"])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        made: Bus = InProcessBus(ack_wait=ACK_WAIT)
    else:
        server: NatsServer = request.getfixturevalue("nats_server")
        made = open_bus(BusSettings(bus_url=server.url, bus_ack_wait_seconds=ACK_WAIT))
    yield made
    made.close()


def drain(bus: Bus, queue: str, timeout: float = 0.5) -> list[Message]:
    taken = bus.fetch(queue, 100, timeout)
    for delivery in taken:
        delivery.ack()
    return [d.message for d in taken]


def test_published_messages_arrive_once_in_order(bus: Bus) -> None:
    for i in range(5):
        bus.publish("posts", f"post {i}".encode())
    messages = drain(bus, "posts")
    assert [m.data for m in messages] == [f"post {i}".encode() for i in range(5)]
    assert all(m.deliveries == 1 and m.queue == "posts" for m in messages)
    assert drain(bus, "posts") == []


def test_an_unacknowledged_message_comes_back_after_the_ack_wait(bus: Bus) -> None:
    bus.publish("media", b"item")
    (first,) = bus.fetch("media", 10, 1.0)  # taken, never acknowledged: its worker died
    assert bus.fetch("media", 10, 0.3) == []  # not before the ack wait
    time.sleep(ACK_WAIT + 0.2)
    (again,) = bus.fetch("media", 10, 2.0)
    assert again.message.data == b"item" and again.message.deliveries == 2
    again.ack()
    first.ack()  # the dead worker's late ack changes nothing
    assert drain(bus, "media") == []


def test_a_nak_delivers_again_and_ids_are_deduplicated(bus: Bus) -> None:
    bus.publish("posts", b"a", msg_id="post-1")
    bus.publish("posts", b"a again", msg_id="post-1")  # a publisher's retry
    (taken,) = bus.fetch("posts", 10, 1.0)
    assert taken.message.id == "post-1"
    taken.nak()
    (again,) = bus.fetch("posts", 10, 2.0)
    assert again.message.data == b"a" and again.message.deliveries == 2
    again.ack()
    assert drain(bus, "posts") == []


def test_two_workers_share_a_queue_without_overlap(bus: Bus) -> None:
    for i in range(40):
        bus.publish("posts", str(i).encode())
    first = bus.fetch("posts", 15, 1.0)
    second = bus.fetch("posts", 100, 1.0)
    seen = [d.message.data for d in first + second]
    assert sorted(seen, key=int) == [str(i).encode() for i in range(40)]
    for delivery in first + second:
        delivery.ack()


def test_consume_handles_batches_and_dead_letters_what_keeps_failing(bus: Bus) -> None:
    for i in range(10):
        bus.publish("posts", b"poison" if i == 3 else str(i).encode())
    handled: list[bytes] = []

    def handler(messages: Sequence[Message]) -> None:
        if any(m.data == b"poison" for m in messages):
            raise ValueError("cannot handle this one")
        handled.extend(m.data for m in messages)

    stop = threading.Event()
    worker = threading.Thread(
        target=lambda: stats.append(consume(bus, "posts", handler, stop=stop, max_deliver=2))
    )
    stats: list[object] = []
    worker.start()
    deadline = time.monotonic() + 30
    dead: list[Message] = []
    while not dead and time.monotonic() < deadline:
        dead = drain(bus, dead_letters("posts"), timeout=0.5)
    stop.set()
    worker.join(timeout=10)
    assert sorted(handled) == sorted(str(i).encode() for i in range(10) if i != 3)
    assert [m.data for m in dead] == [b"poison"]
    assert drain(bus, "posts") == []


def test_messages_survive_a_nats_restart(nats_server: NatsServer) -> None:
    bus = open_bus(BusSettings(bus_url=nats_server.url, bus_ack_wait_seconds=ACK_WAIT))
    try:
        for i in range(3):
            bus.publish("posts", str(i).encode())
        nats_server.stop()
        nats_server.start()
        deadline = time.monotonic() + 30
        got: list[Message] = []
        while len(got) < 3 and time.monotonic() < deadline:
            try:
                got += drain(bus, "posts", timeout=1.0)
            except Exception:  # the client is still reconnecting
                time.sleep(0.5)
        assert [m.data for m in got] == [b"0", b"1", b"2"]
        bus.publish("posts", b"after")  # and publishing works again
        assert [m.data for m in drain(bus, "posts", timeout=2.0)] == [b"after"]
    finally:
        bus.close()
