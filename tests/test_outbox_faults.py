"""The webhook outbox keeps its promise across a PostgreSQL crash (issue 7): actions queued
before the database goes away are delivered once it is back, each exactly once in effect, by
``vigil actions deliver`` running as its own process, to a real receiver on localhost.

The hard case is forced rather than hoped for: the receiver holds the first delivery unanswered
until the database is down, so the worker hears "200 OK" when it can no longer record it. The
action must then go out again once the database is back (vigil cannot know it arrived), and the
receiver, which drops a repeated idempotency key, acts on it once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from postgres_server import PostgresServer
from test_actions_support import SECRET, Clock, Outbox, outbox_settings
from vigil.actions.receiver import WebhookReceiver
from vigil.config import Settings
from vigil.store import Database
from vigil.store.models import Action, ActionAttempt

#: A claim's lease: an action whose worker never recorded an outcome is claimed again after it.
LEASE_SECONDS = 6.0


class HoldingReceiver(WebhookReceiver):
    """The reference receiver, except that the first delivery is held (taken, not yet answered)
    until the test releases it."""

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.held_key: str | None = None
        self._lock = threading.Lock()

    def accept(self, headers: Any, body: bytes) -> int:
        with self._lock:
            hold = self.held_key is None
            if hold:
                self.held_key = headers["X-Vigil-Idempotency-Key"]
        if hold:
            self.arrived.set()
            self.release.wait(60)
        return super().accept(headers, body)


def deliverer(home: Path, database_url: str) -> subprocess.Popen[bytes]:
    """``vigil actions deliver`` with one thread, so that exactly one send is on the wire when
    the database goes away."""
    env = {
        **os.environ,
        "VIGIL_HOME": str(home),
        "VIGIL_DATABASE_URL": database_url,
        "VIGIL_URL_FETCH_ALLOW": '["127.0.0.0/8"]',
        "VIGIL_ACTIONS_POLL_SECONDS": "0.2",
        "VIGIL_ACTIONS_CONNECT_TIMEOUT": "1",
        "VIGIL_ACTIONS_REQUEST_TIMEOUT": "4",
        "VIGIL_ACTIONS_LEASE_SECONDS": str(LEASE_SECONDS),
        "VIGIL_ACTIONS_BACKOFF_BASE_SECONDS": "0.5",
        "VIGIL_ACTIONS_BACKOFF_MAX_SECONDS": "2",
    }
    command = [sys.executable, "-m", "vigil", "actions", "deliver", "--threads", "1"]
    with (home / "deliver.log").open("wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def settled(db: Database) -> bool:
    with db.session() as session:
        statuses = set(session.scalars(select(Action.status)))
    return statuses == {"delivered"}


def test_actions_queued_when_the_database_crashes_are_delivered_exactly_once(
    private_postgres: PostgresServer, tmp_path: Path
) -> None:
    url = private_postgres.url
    receiver = HoldingReceiver(SECRET)
    receiver.start()
    db = Database(url)
    outbox = Outbox(
        db, outbox_settings(Settings(home=tmp_path, database_url=url)), Clock(), receiver
    )
    outbox.webhook()
    before = [i for _ in range(5) for i in outbox.enqueue("takedown")]
    worker = deliverer(tmp_path, url)
    try:
        assert receiver.arrived.wait(60), (tmp_path / "deliver.log").read_text()
        private_postgres.stop("immediate")  # a crash: no goodbye to any session
        receiver.release.set()  # the worker hears 200 and cannot write it down
        time.sleep(2)
        private_postgres.start()  # crash recovery from the WAL
        after = outbox.enqueue("takedown")  # and new work once it is back
        deadline = time.monotonic() + 60
        while not settled(db) and time.monotonic() < deadline:
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    finally:
        receiver.release.set()
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        receiver.stop()
    log = (tmp_path / "deliver.log").read_text(errors="replace")
    assert worker.returncode == 0, log[-3000:]
    with db.session() as session:
        rows = {a.id: a for a in session.scalars(select(Action))}
        attempts = list(session.scalars(select(ActionAttempt)))
    db.dispose()

    assert sorted(rows) == sorted(before + after)
    assert {a.status for a in rows.values()} == {"delivered"}, log[-3000:]
    # Exactly once in effect: the receiver acted once on each action and on nothing else...
    deliveries = receiver.deliveries
    assert set(deliveries) == {a.idempotency_key for a in rows.values()}
    assert sorted(d.body["action_id"] for d in deliveries.values()) == sorted(rows)
    assert receiver.bad_signatures == 0
    # ...though the held one arrived twice: its first "200" was lost with the database, so it
    # was claimed again when its lease ran out, sent again, and dropped as a repeat.
    held_key = receiver.held_key
    assert held_key is not None
    (held,) = [a for a in rows.values() if a.idempotency_key == held_key]
    assert deliveries[held_key].seen == 2
    assert receiver.duplicates == 1
    assert held.attempts == 2
    assert [t.status_code for t in attempts if t.action_id == held.id] == [200]
    assert "outbox.batch_failed" in log  # the worker did meet the database down
