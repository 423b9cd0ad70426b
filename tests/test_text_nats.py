"""Posts from a NATS JetStream subject: a real nats-server (Debian's, started on a free port),
messages acknowledged once stored, bad messages reported by sequence, redeliveries harmless."""

from __future__ import annotations

import asyncio
import json
import time

from sqlalchemy import func, select

from vigil.config import Settings
from vigil.store import Database
from vigil.store.models import PostRecord
from vigil.text.posts import BadLine
from vigil.text.scanner import PostScanner, ScanResult
from vigil.text.settings import TextSettings
from vigil.text.sources import scan_subject


def stored(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(PostRecord)) or 0)


async def publish(url: str, payloads: list[bytes]) -> None:
    import nats

    for _ in range(100):  # the server takes a moment to listen
        try:
            client = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0)
            break
        except Exception:
            await asyncio.sleep(0.1)
    jetstream = client.jetstream()
    await jetstream.add_stream(name="POSTS", subjects=["posts.in"])
    for payload in payloads:
        await jetstream.publish("posts.in", payload)
    await client.drain()


async def consume(
    scanner: PostScanner, url: str, expected: int
) -> tuple[ScanResult, list[BadLine]]:
    stop = asyncio.Event()
    bad: list[BadLine] = []

    def progress(_: ScanResult, skipped: list[BadLine]) -> None:
        bad.extend(skipped)

    task = asyncio.create_task(
        scan_subject(
            scanner, url, "posts.in", stream="POSTS", durable="vigil", stop=stop, progress=progress
        )
    )
    deadline = time.monotonic() + 60
    while stored(scanner.db) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # let the batch's acks go out
    stop.set()
    return await task, bad


def test_posts_from_a_subject_are_stored_once_and_bad_messages_reported(
    settings: Settings, nats_url: str
) -> None:
    text_settings = TextSettings(**settings.model_dump())
    db = Database(text_settings.resolved_database_url)
    scanner = PostScanner(db, text_settings)
    good = {"id": "1", "platform": "testnet", "text": "see you all at the match tonight"}
    payloads = [
        json.dumps(good).encode(),
        b"{broken",
        json.dumps({"id": "2", "platform": "testnet", "text": "bonjour à tous"}).encode(),
        json.dumps(good).encode(),  # the publisher retried
    ]
    try:
        asyncio.run(publish(nats_url, payloads))
        result, bad = asyncio.run(consume(scanner, nats_url, expected=2))
        assert result.scanned == 2
        assert result.duplicates == 1
        assert [line.line for line in bad] == [2], "the bad message is named by its sequence"
        # Everything was acknowledged: a new consumer run on the same durable gets nothing.
        again, _ = asyncio.run(consume(scanner, nats_url, expected=2))
        assert (again.scanned, again.duplicates) == (0, 0)
    finally:
        db.dispose()
