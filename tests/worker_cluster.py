"""Helpers for the scale-out fault tests: real posts, a fault-free reference scan to compare
with, ``vigil posts publish`` and ``vigil worker --role posts`` as subprocesses, and what the
workers left in the database and on the bus."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from conftest import SHARED_DATA
from vigil.networks import AccountLedger
from vigil.store import Database
from vigil.store.models import Alert, PostRecord
from vigil.text.scanner import PostScanner
from vigil.text.settings import TextSettings
from vigil.text.sources import decode_records

#: Short, so that what a dead or cut-off worker held comes back within the test.
ACK_WAIT = 3.0


def records(count: int) -> list[bytes]:
    """Real, distinct posts (hateful and not) from ETHOS, as the vigil post format."""
    lines = (SHARED_DATA / "text" / "ethos.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines[:count]]
    return [
        json.dumps(
            {"id": row["id"], "platform": "net", "author_ref": f"u{i % 9}", "text": row["text"]}
        ).encode()
        for i, row in enumerate(rows)
    ]


@dataclass(frozen=True)
class Outcome:
    #: Posts stored.
    stored: int
    #: The keys of the posts with an alert.
    alerted: frozenset[str]
    #: Alert rows.
    alerts: int


def outcome(db: Database) -> Outcome:
    with db.session() as session:
        stored = int(session.scalar(select(func.count()).select_from(PostRecord)) or 0)
        keys = session.scalars(select(PostRecord.key).where(PostRecord.alert_id.is_not(None)))
        alerted = frozenset(keys)
        alerts = int(session.scalar(select(func.count()).select_from(Alert)) or 0)
    return Outcome(stored, alerted, alerts)


def stored(db: Database) -> int:
    """Posts stored so far; 0 while the database does not answer."""
    try:
        with db.session() as session:
            return int(session.scalar(select(func.count()).select_from(PostRecord)) or 0)
    except OperationalError:
        return 0


def final_outcome(database_url: str) -> Outcome:
    db = Database(database_url)
    try:
        return outcome(db)
    finally:
        db.dispose()


def reference(payloads: list[bytes], folder: Path) -> Outcome:
    """The same posts scanned by one process on SQLite, without any fault (account alerts too:
    whether an account crosses its threshold does not depend on the order of its posts)."""
    db = Database(f"sqlite:///{folder / 'reference.db'}")
    try:
        posts, bad = decode_records(enumerate(payloads), "vigil", None)
        assert not bad
        settings = TextSettings(home=folder / "reference")
        # The workers keep account totals and raise account alerts as they scan: so does this.
        PostScanner(db, settings, hooks=[AccountLedger.of(settings)]).scan(posts)
        want = outcome(db)
    finally:
        db.dispose()
    assert want.stored == len(payloads)
    assert len(want.alerted) > len(payloads) // 15  # the data has alerts to lose
    return want


def publish(payloads: list[bytes], bus_url: str, folder: Path) -> None:
    feed = folder / "posts.jsonl"
    feed.write_bytes(b"\n".join(payloads) + b"\n")
    published = subprocess.run(
        [sys.executable, "-m", "vigil", "posts", "publish", str(feed)],
        env={**os.environ, "VIGIL_HOME": str(folder / "publisher"), "VIGIL_BUS_URL": bus_url},
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert json.loads(published.stdout) == {"published": len(payloads)}


class Worker:
    """``vigil worker --role posts`` in a subprocess; its log goes to ``home/worker.log``."""

    def __init__(self, home: Path, database_url: str, bus_url: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "worker.log"
        env = {
            **os.environ,
            "VIGIL_HOME": str(home),
            "VIGIL_DATABASE_URL": database_url,
            "VIGIL_BUS_URL": bus_url,
            "VIGIL_BUS_ACK_WAIT_SECONDS": str(ACK_WAIT),
            "VIGIL_BUS_BATCH": "10",
        }
        command = [sys.executable, "-m", "vigil", "worker", "--role", "posts"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log)

    def kill(self) -> None:
        """SIGKILL: no goodbye, its batch stays unacknowledged."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> dict[str, Any]:
        """SIGTERM, and the summary it prints as it leaves."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, self.log_tail()
        summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return summary

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def ensure_dead(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def stream_messages(bus_url: str, stream: str = "VIGIL") -> int:
    """Messages still in the bus's stream: with work-queue retention an acknowledged message is
    removed, so 0 means every post was acknowledged and nothing went to the dead letters."""
    import nats

    async def count() -> int:
        client = await nats.connect(bus_url)
        try:
            info = await client.jetstream().stream_info(stream)
            return int(info.state.messages)
        finally:
            await client.close()

    return asyncio.run(count())
