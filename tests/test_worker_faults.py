"""Scale-out under faults (issue 7): posts on NATS JetStream, two ``vigil worker --role posts``
processes on one PostgreSQL database, one of them killed with SIGKILL while it works. Every post
is stored once and every alert raised once: the same alerts as one process scanning the same
posts without any fault."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import SHARED_DATA
from nats_server import NatsServer
from vigil.store import Database
from vigil.store.models import Alert, PostRecord
from vigil.text.scanner import PostScanner
from vigil.text.settings import TextSettings
from vigil.text.sources import decode_records

POSTS = 300
ACK_WAIT = 3.0


def records() -> list[bytes]:
    """Real, distinct posts (hateful and not) from ETHOS, as the vigil post format."""
    lines = (SHARED_DATA / "text" / "ethos.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines[:POSTS]]
    return [
        json.dumps(
            {"id": row["id"], "platform": "net", "author_ref": f"u{i % 9}", "text": row["text"]}
        ).encode()
        for i, row in enumerate(rows)
    ]


def alerted(db: Database) -> tuple[int, set[str]]:
    """Posts stored, and the keys of those with an alert."""
    with db.session() as session:
        stored = int(session.scalar(select(func.count()).select_from(PostRecord)) or 0)
        keys = set(session.scalars(select(PostRecord.key).where(PostRecord.alert_id.is_not(None))))
    return stored, keys


def alert_count(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Alert)) or 0)


def worker(home: Path, database_url: str, bus_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VIGIL_HOME": str(home),
        "VIGIL_DATABASE_URL": database_url,
        "VIGIL_BUS_URL": bus_url,
        "VIGIL_BUS_ACK_WAIT_SECONDS": str(ACK_WAIT),
        "VIGIL_BUS_BATCH": "10",
    }
    command = [sys.executable, "-m", "vigil", "worker", "--role", "posts"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail("timed out")


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    nats_server: NatsServer, postgres_url: str, tmp_path: Path
) -> None:
    payloads = records()
    reference_db = Database(f"sqlite:///{tmp_path / 'reference.db'}")
    reference = PostScanner(reference_db, TextSettings(home=tmp_path / "reference"))
    posts, bad = decode_records(enumerate(payloads), "vigil", None)
    assert not bad
    reference.scan(posts)
    want_stored, want_alerted = alerted(reference_db)
    want_alerts = alert_count(reference_db)
    assert want_stored == POSTS and len(want_alerted) > 20  # the data has alerts to lose

    db = Database(postgres_url)  # migrated once here; the workers find it current
    feed = tmp_path / "posts.jsonl"
    feed.write_bytes(b"\n".join(payloads) + b"\n")
    published = subprocess.run(
        [sys.executable, "-m", "vigil", "posts", "publish", str(feed)],
        env={
            **os.environ,
            "VIGIL_HOME": str(tmp_path / "publisher"),
            "VIGIL_BUS_URL": nats_server.url,
        },
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert json.loads(published.stdout) == {"published": POSTS}

    doomed = worker(tmp_path / "a", postgres_url, nats_server.url)
    survivor = worker(tmp_path / "b", postgres_url, nats_server.url)
    try:
        wait_for(lambda: alerted(db)[0] >= POSTS // 5, timeout=180)
        doomed.send_signal(signal.SIGKILL)  # no goodbye: its batch stays unacknowledged
        doomed.wait(timeout=10)
        wait_for(lambda: alerted(db)[0] >= POSTS, timeout=180)
        time.sleep(ACK_WAIT + 1)  # redeliveries of the killed worker's batch come and go
        survivor.send_signal(signal.SIGTERM)
        out, _ = survivor.communicate(timeout=60)
    finally:
        for process in (doomed, survivor):
            if process.poll() is None:
                process.kill()
        db.dispose()
        reference_db.dispose()
    assert survivor.returncode == 0
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["dead"] == 0 and summary["failed"] == 0

    db = Database(postgres_url)
    try:
        stored, got_alerted = alerted(db)
        alerts = alert_count(db)
    finally:
        db.dispose()
    assert stored == POSTS
    assert got_alerted == want_alerted  # no alert lost
    assert alerts == want_alerts  # none raised twice
