"""Where posts come from: a file (once, or followed as it grows), stdin, a NATS JetStream
subject, a Kafka topic, or vigil's own posts queue on the bus. Each loop hands batches to one
:class:`~vigil.text.scanner.PostScanner`.

Nothing is lost and nothing is done twice in effect:

- A file's byte position is committed with the batch it ends (``ingest_checkpoint``), so a
  restart resumes exactly there; an incomplete last line (a writer mid-append) is left for the
  next read. A file that shrank was rotated or truncated: it is read again from the start (the
  posts already stored are skipped by key).
- A broker message is acknowledged (a Kafka offset committed) only after its batch committed; a
  redelivery finds its posts already stored.
- Malformed lines and messages are reported with where they were (line number and byte
  position, or stream sequence) and skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vigil.bus import Handler, Message
from vigil.text.adapters import Format, Parsed, parse_record, read_file, read_stream
from vigil.text.posts import BadLine, Post
from vigil.text.scanner import PostScanner, ScanResult

log = logging.getLogger(__name__)

#: Called after each committed batch with its result and the bad lines it skipped.
Progress = Callable[[ScanResult, list[BadLine]], None]


def file_source_key(path: Path) -> str:
    return f"file:{path.resolve()}"


def scan_file(
    scanner: PostScanner,
    path: Path,
    fmt: Format = "auto",
    *,
    platform: str | None = None,
    resume: bool = True,
    follow: bool = False,
    poll_seconds: float = 1.0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Scan ``path`` from its checkpoint (or the start); with ``follow``, keep reading what is
    appended until ``stop`` is set."""
    source = file_source_key(path)
    position = scanner.checkpoint(source) if resume else 0
    total = ScanResult()
    stop = stop or threading.Event()
    while True:
        if path.stat().st_size < position:
            log.warning("%s shrank below the checkpoint (%d): reading it again", path, position)
            position = 0
        items = read_file(
            path,
            fmt,
            start=position,
            platform=platform,
            max_document_bytes=scanner.settings.text_max_file_bytes,
        )
        for batch in _batches(items, scanner.settings.text_batch_size):
            result = scanner.scan(batch.posts, source=source, position=batch.end)
            position = batch.end
            _report(path.name, batch.bad, total, result, progress)
        if not follow or stop.wait(poll_seconds):
            return total


def scan_stream(
    scanner: PostScanner,
    stream: BinaryIO,
    fmt: Format = "auto",
    *,
    platform: str | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Scan posts piped in (stdin): no checkpoint, a pipe cannot be re-read."""
    total = ScanResult()
    items = read_stream(
        stream, fmt, platform=platform, max_document_bytes=scanner.settings.text_max_file_bytes
    )
    for batch in _batches(items, scanner.settings.text_batch_size):
        _report("stdin", batch.bad, total, scanner.scan(batch.posts), progress)
    return total


@dataclass
class _Batch:
    posts: list[Post] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    #: The source position after the batch's last item.
    end: int = 0


def _batches(items: Iterable[Parsed], size: int) -> Iterator[_Batch]:
    batch = _Batch()
    for parsed in items:
        if isinstance(parsed.item, BadLine):
            batch.bad.append(parsed.item)
        else:
            batch.posts.append(parsed.item)
        batch.end = parsed.position
        if len(batch.posts) >= size:
            yield batch
            batch = _Batch()
    if batch.posts or batch.bad:
        yield batch


def _report(
    where: str,
    bad: list[BadLine],
    total: ScanResult,
    result: ScanResult,
    progress: Progress | None,
) -> None:
    for line in bad:
        log.warning("%s line %d skipped: %s", where, line.line, line.reason)
    total.add(result)
    if progress is not None:
        progress(result, bad)


async def scan_subject(
    scanner: PostScanner,
    servers: str,
    subject: str,
    *,
    stream: str,
    durable: str,
    fmt: Format = "vigil",
    platform: str | None = None,
    stop: asyncio.Event | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Consume ``subject`` from the JetStream ``stream`` (created if missing) with the durable
    pull consumer ``durable``: each message is one JSON record (a post, an X response page...).
    Messages are acknowledged after their batch committed."""
    import nats
    from nats.errors import TimeoutError as FetchTimeout

    stop = stop or asyncio.Event()
    total = ScanResult()
    client = await nats.connect(servers, max_reconnect_attempts=-1)
    try:
        jetstream = client.jetstream()
        await _ensure_stream(jetstream, stream, subject)
        subscription = await jetstream.pull_subscribe(subject, durable=durable, stream=stream)
        while not stop.is_set():
            try:
                messages = await subscription.fetch(scanner.settings.text_batch_size, timeout=1)
            except FetchTimeout:
                continue
            posts, bad = _decode(messages, fmt, platform)
            result = await asyncio.to_thread(scanner.scan, posts)
            for message in messages:
                await message.ack()
            _report(subject, bad, total, result, progress)
    finally:
        await client.drain()
    return total


def scan_kafka(
    scanner: PostScanner,
    bootstrap: str,
    topic: str,
    *,
    group: str,
    fmt: Format = "vigil",
    platform: str | None = None,
    stop: threading.Event,
    progress: Progress | None = None,
    options: dict[str, str | int] | None = None,
) -> ScanResult:
    """Consume ``topic`` in the consumer group ``group`` until ``stop`` is set: one JSON record
    per message; offsets are committed after the batch they end is stored, so a consumer that
    dies re-reads at most one batch, whose posts are then found stored (by key). Malformed
    messages are reported by offset and skipped. ``options`` go to the Kafka client as they
    are (security settings, timeouts)."""
    from confluent_kafka import Consumer, KafkaError

    total = ScanResult()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **(options or {}),
        }
    )
    try:
        consumer.subscribe([topic])
        while not stop.is_set():
            messages = consumer.consume(scanner.settings.text_batch_size, timeout=1.0)
            records = []
            for message in messages:
                error = message.error()
                if error is None:
                    records.append((int(message.offset() or 0), bytes(message.value() or b"")))
                elif error.code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka %s: %s", topic, error)
            if not records:
                continue
            posts, bad = decode_records(records, fmt, platform)
            result = scanner.scan(posts)
            consumer.commit(asynchronous=False)
            _report(f"topic {topic} offset", bad, total, result, progress)
    finally:
        consumer.close()
    return total


async def _ensure_stream(jetstream: Any, stream: str, subject: str) -> None:
    from nats.js.errors import NotFoundError

    try:
        await jetstream.stream_info(stream)
    except NotFoundError:
        await jetstream.add_stream(name=stream, subjects=[subject])


def _decode(
    messages: list[Any], fmt: Format, platform: str | None
) -> tuple[list[Post], list[BadLine]]:
    numbered = [(int(m.metadata.sequence.stream), bytes(m.data)) for m in messages]
    return decode_records(numbered, fmt, platform)


def decode_records(
    records: Iterable[tuple[int, bytes]], fmt: Format, platform: str | None
) -> tuple[list[Post], list[BadLine]]:
    """Posts from (sequence, one JSON record) pairs; a malformed record is named by sequence."""
    posts: list[Post] = []
    bad: list[BadLine] = []
    for sequence, data in records:
        try:
            record = json.loads(data)
            if not isinstance(record, dict):
                raise ValueError("a message must hold one JSON object")
            posts += parse_record(record, fmt, platform=platform)
        except (ValueError, UnicodeDecodeError) as error:
            bad.append(BadLine(line=sequence, reason=str(error)))
    return posts, bad


def posts_handler(
    scanner: PostScanner,
    fmt: Format = "vigil",
    platform: str | None = None,
    progress: Progress | None = None,
) -> Handler:
    """The ``posts`` queue's handler for :func:`vigil.bus.consume`: one JSON record per
    message, stored and scanned in one transaction per batch. A redelivered batch finds its
    posts already stored (by key), so a worker that died mid-batch costs time, not duplicates;
    malformed records are reported by sequence and skipped."""
    total = ScanResult()

    def handle(messages: Sequence[Message]) -> None:
        posts, bad = decode_records(((m.sequence, m.data) for m in messages), fmt, platform)
        result = scanner.scan(posts)
        _report(f"queue {messages[0].queue}", bad, total, result, progress)

    return handle
