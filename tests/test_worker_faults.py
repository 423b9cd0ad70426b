"""Scale-out under faults (issue 7): posts on NATS JetStream, two ``vigil worker --role posts``
processes on one PostgreSQL database, and while they work one of them is killed with SIGKILL,
or the NATS server is restarted, or the PostgreSQL server is. Every time, every post is stored
once and every alert raised once: the same alerts as one process scanning the same posts
without any fault."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nats_server import NatsServer
from postgres_server import PostgresServer
from vigil.bus.jetstream import JetStreamBus
from vigil.store import Database
from worker_cluster import (
    Outcome,
    Worker,
    final_outcome,
    publish,
    records,
    reference,
    stored,
    stream_messages,
    wait_for,
)

POSTS = 200
#: How long a server stays down.
DOWN_SECONDS = 3.0


@pytest.fixture(scope="module")
def posts(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], Outcome]:
    """The posts, and what one process makes of them without any fault (scanned once for all
    the tests here: it costs as much as the workers' whole run)."""
    payloads = records(POSTS)
    return payloads, reference(payloads, tmp_path_factory.mktemp("reference"))


def same_as_reference(got: Outcome, want: Outcome) -> None:
    assert got.stored == want.stored  # every post stored, once (the key is unique)
    assert got.alerted == want.alerted  # no alert lost, none raised for the wrong post
    assert got.alerts == want.alerts  # none raised twice


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    posts: tuple[list[bytes], Outcome], nats_server: NatsServer, postgres_url: str, tmp_path: Path
) -> None:
    payloads, want = posts
    db = Database(postgres_url)  # migrated once here; the workers find it current
    publish(payloads, nats_server.url, tmp_path)
    doomed = Worker(tmp_path / "a", postgres_url, nats_server.url)
    survivor = Worker(tmp_path / "b", postgres_url, nats_server.url)
    try:
        wait_for(lambda: stored(db) >= POSTS // 5, 180, "the workers to store posts")
        doomed.kill()
        wait_for(lambda: stream_messages(nats_server.url) == 0, 180, "every post acknowledged")
        summary = survivor.stop()
    finally:
        for worker in (doomed, survivor):
            worker.ensure_dead()
        db.dispose()
    assert summary["dead"] == 0 and summary["failed"] == 0
    same_as_reference(final_outcome(postgres_url), want)


def test_workers_ride_out_a_nats_restart(
    posts: tuple[list[bytes], Outcome], nats_server: NatsServer, postgres_url: str, tmp_path: Path
) -> None:
    payloads, want = posts
    db = Database(postgres_url)
    publish(payloads, nats_server.url, tmp_path)
    workers = [Worker(tmp_path / name, postgres_url, nats_server.url) for name in "ab"]
    try:
        wait_for(lambda: stored(db) >= POSTS // 5, 180, "the workers to store posts")
        nats_server.stop()  # SIGTERM; the workers' fetches and acks meet a closed port
        time.sleep(DOWN_SECONDS)
        before_restart = stored(db)
        nats_server.start()  # same port, same store
        wait_for(lambda: stream_messages(nats_server.url) == 0, 180, "every post acknowledged")
        summaries = [worker.stop() for worker in workers]
    finally:
        for worker in workers:
            worker.ensure_dead()
        db.dispose()
    assert before_restart < POSTS  # the restart came mid-stream
    assert all(s["dead"] == 0 and s["failed"] == 0 for s in summaries), summaries
    # Each post was scanned and committed by one worker; a redelivered one was found stored.
    assert sum(s["scanned"] for s in summaries) == POSTS
    same_as_reference(final_outcome(postgres_url), want)


def test_a_fetch_after_a_nats_restart_takes_no_more_than_its_batch(
    nats_server: NatsServer,
) -> None:
    """Pull requests made while NATS is down would be buffered by the client and all sent on
    reconnect, and the next fetch would return every message they brought: one worker taking
    the backlog. The bus asks for nothing while disconnected and hands back any surplus."""
    bus = JetStreamBus(nats_server.url, ack_wait=30.0)
    try:
        for i in range(100):
            bus.publish("posts", str(i).encode())
        assert len(bus.fetch("posts", 10, 1.0)) == 10
        nats_server.stop()
        for _ in range(5):  # the consume loop goes on asking while the server is down
            assert bus.fetch("posts", 10, 1.0) == []
        nats_server.start()
        wait_for(lambda: bool(bus._client.is_connected), 30, "the client to reconnect")
        time.sleep(1.0)
        taken = bus.fetch("posts", 10, 1.0)
    finally:
        bus.close()
    assert 0 < len(taken) <= 10


def test_workers_ride_out_a_postgresql_restart(
    posts: tuple[list[bytes], Outcome],
    nats_server: NatsServer,
    private_postgres: PostgresServer,
    tmp_path: Path,
) -> None:
    url = private_postgres.url
    payloads, want = posts
    db = Database(url)
    publish(payloads, nats_server.url, tmp_path)
    workers = [Worker(tmp_path / name, url, nats_server.url) for name in "ab"]
    try:
        wait_for(lambda: stored(db) >= POSTS // 5, 180, "the workers to store posts")
        at_stop = stored(db)
        private_postgres.stop("fast")  # open transactions are rolled back, sessions cut
        while_down = stored(db)
        time.sleep(DOWN_SECONDS)  # the workers go on taking batches, which fail
        private_postgres.start()
        wait_for(lambda: stream_messages(nats_server.url) == 0, 180, "every post acknowledged")
        summaries = [worker.stop() for worker in workers]
    finally:
        for worker in workers:
            worker.ensure_dead()
        db.dispose()
    assert at_stop < POSTS  # the restart came mid-stream
    assert while_down == 0  # (no answer) the database really was down
    assert all(s["dead"] == 0 for s in summaries), summaries  # no post given up on
    # The outage did reach the workers: a batch's transaction was cut or could not start.
    assert any("bus.batch_failed" in worker.log.read_text() for worker in workers)
    same_as_reference(final_outcome(url), want)
