"""The media queue (issue 7): uploads named by shared path or URL, matched by workers; what
matches raises its bank's alert once, however often the item is delivered."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from nats_server import NatsServer
from vigil.bus import InProcessBus, consume
from vigil.config import Settings
from vigil.hashing import KnownContent
from vigil.review.media_queue import QUEUE, media_handler
from vigil.store.models import Alert, Bank

from media_factory import write_jpeg


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


@pytest.fixture
def known(settings: Settings, shared: Path) -> Iterator[KnownContent]:
    fields = {"media_queue_dir": shared, "url_fetch_allow": ["127.0.0.0/8"]}
    queued = Settings(**{**settings.model_dump(), **fields})
    content = KnownContent(queued)
    content.banks.create("attack-footage")
    banked = write_jpeg(shared / "banked.jpg", 3)
    list(content.add_content("attack-footage", [banked], labels=["attack"]))
    with content.db.session() as session:
        session.execute(update(Bank).values(alert_on_match=True, severity=9))
    yield content
    content.close()


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def alerts(known: KnownContent) -> list[tuple[str, str]]:
    with known.db.session() as session:
        rows = session.execute(select(Alert.platform, Alert.content_ref))
        return sorted((platform, ref) for platform, ref in rows)


def run_until_drained(bus: InProcessBus, known: KnownContent) -> None:
    stop = threading.Event()
    worker = threading.Thread(
        target=consume,
        args=(bus, QUEUE, media_handler(known, known.settings)),
        kwargs={"stop": stop, "batch": 1},
    )
    worker.start()
    deadline = time.monotonic() + 60
    while bus.pending(QUEUE) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    worker.join(timeout=10)
    assert bus.pending(QUEUE) == 0


def test_items_by_path_and_url_match_and_alert_once(
    known: KnownContent, shared: Path, web_root: tuple[Path, str]
) -> None:
    root, base_url = web_root
    shutil.copy(shared / "banked.jpg", shared / "copy.jpg")
    shutil.copy(shared / "banked.jpg", root / "copy.jpg")
    write_jpeg(shared / "unrelated.jpg", 11)
    (shared / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    items: list[dict[str, object]] = [
        {"path": "copy.jpg", "platform": "net", "content_ref": "post-1"},
        {"url": f"{base_url}/copy.jpg", "platform": "net", "content_ref": "post-2"},
        {"path": "unrelated.jpg", "platform": "net", "content_ref": "post-3"},
        {"path": "broken.jpg", "platform": "net", "content_ref": "post-4"},
        {"path": "../outside.jpg", "platform": "net", "content_ref": "post-5"},
        {"url": "http://10.1.2.3/x.jpg", "platform": "net", "content_ref": "post-6"},
        {"path": "copy.jpg", "url": f"{base_url}/copy.jpg"},
    ]
    bus = InProcessBus(ack_wait=30)
    for item in items:
        bus.publish(QUEUE, json.dumps(item).encode())
    bus.publish(QUEUE, b"{not json")
    run_until_drained(bus, known)
    assert alerts(known) == [("net", "post-1"), ("net", "post-2")]

    # A redelivery (the worker died before its ack) finds the alert it made.
    bus.publish(QUEUE, json.dumps(items[0]).encode())
    run_until_drained(bus, known)
    assert alerts(known) == [("net", "post-1"), ("net", "post-2")]


def test_a_media_worker_process_on_nats(
    known: KnownContent, shared: Path, nats_server: NatsServer, tmp_path: Path
) -> None:
    from vigil.bus import BusSettings, open_bus

    shutil.copy(shared / "banked.jpg", shared / "seen.jpg")
    bus = open_bus(BusSettings(bus_url=nats_server.url))
    bus.publish(QUEUE, json.dumps({"path": "seen.jpg", "content_ref": "p9"}).encode())
    bus.close()
    env = {
        **os.environ,
        "VIGIL_HOME": str(tmp_path / "worker"),
        "VIGIL_DATABASE_URL": known.settings.resolved_database_url,
        "VIGIL_BUS_URL": nats_server.url,
        "VIGIL_MEDIA_QUEUE_DIR": str(shared),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "vigil", "worker", "--role", "media"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not alerts(known) and time.monotonic() < deadline:
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert alerts(known) == [("", "p9")]
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary == {"handled": 1, "failed": 0, "dead": 0}
    with known.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 1
