"""Reading posts from a file or a stream, resumable, losing nothing and never blowing up.

Line formats (vigil JSONL, X pages and stream lines, one JSON object a line) are read line by
line with byte positions: ``Parsed.position`` is the offset just after the item's line, so a
restart from it neither re-reads nor skips a post. A line that is not a post becomes a
:class:`BadLine` (its number counted from where reading started, and its byte offset in the
reason) and reading goes on. A last line with no newline that is not yet valid JSON is a writer
mid-append: a file is left there, unread, for the next pass; a stream has ended, so it is a bad
line. A line over :data:`MAX_LINE_BYTES` is a bad line, skipped without being held in memory.

A Telegram export is one JSON document, and so is a pretty-printed X response page or an array
of records: these are read whole, up to a size cap, and positions count messages (Telegram) or
posts.

``auto`` looks at the first non-blank line: a lone ``{`` or ``[`` (pretty-printed JSON, as
Telegram Desktop and ``jq`` write), an array, or a whole Telegram export on one line means a
document; anything else is read as lines, each record's format told by its fields.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from vigil.text.adapters.records import Format, record_items
from vigil.text.adapters.telegram import is_telegram_export, telegram_messages
from vigil.text.posts import BadLine, Post

MAX_LINE_BYTES = 1024 * 1024
MAX_DOCUMENT_BYTES = 512 * 1024 * 1024
_CHUNK = 64 * 1024


class AdapterError(ValueError):
    """A whole document that cannot be read (too large, not JSON, not a known format)."""


@dataclass(frozen=True)
class Parsed:
    item: Post | BadLine
    #: Where to resume after this item: the byte offset after its line for line formats; the
    #: number of messages consumed for a Telegram export.
    position: int


class _LineReader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...

    def read(self, size: int = -1, /) -> bytes: ...


def read_file(
    path: Path,
    fmt: Format = "auto",
    *,
    start: int = 0,
    platform: str | None = None,
    max_document_bytes: int = MAX_DOCUMENT_BYTES,
) -> Iterator[Parsed]:
    """Posts and bad lines of ``path`` from ``start`` (a position an earlier read returned)."""
    with path.open("rb") as handle:
        if fmt == "telegram" or _is_document(_first_line(handle)):
            size = os.fstat(handle.fileno()).st_size
            if size > max_document_bytes:
                raise AdapterError(
                    f"{path}: a {size}-byte JSON document is over the "
                    f"{max_document_bytes}-byte limit"
                )
            handle.seek(0)
            yield from _document(handle.read(), fmt, start, platform, str(path))
            return
        handle.seek(start)
        yield from _lines(handle, fmt, start, platform, growing=True)


def read_stream(
    stream: BinaryIO,
    fmt: Format = "auto",
    *,
    platform: str | None = None,
    max_document_bytes: int = MAX_DOCUMENT_BYTES,
) -> Iterator[Parsed]:
    """Posts and bad lines from a stream (stdin); positions count the bytes read."""
    first = _first_line(stream)
    replay = _Replay(first, stream)
    if fmt == "telegram" or _is_document(first):
        document = replay.read(max_document_bytes + 1)
        if len(document) > max_document_bytes:
            raise AdapterError(f"a JSON document over the {max_document_bytes}-byte limit")
        yield from _document(document, fmt, 0, platform, "the stream")
        return
    yield from _lines(replay, fmt, 0, platform, growing=False)


def _first_line(reader: _LineReader) -> bytes:
    """The bytes up to and including the first non-blank line (at most a line's cap of it)."""
    seen = b""
    while line := reader.readline(MAX_LINE_BYTES + 1):
        seen += line
        if line.strip() or len(seen) > MAX_LINE_BYTES:
            break
    return seen


def _is_document(first: bytes) -> bool:
    line = first.strip().removeprefix(b"\xef\xbb\xbf").strip()
    if line in (b"{", b"["):
        return True
    value, problem = _json(line)
    return problem is None and (
        isinstance(value, list) or (isinstance(value, dict) and is_telegram_export(value))
    )


class _Replay:
    """A stream with the bytes already read from it put back in front."""

    def __init__(self, replayed: bytes, stream: BinaryIO) -> None:
        self._pending = replayed
        self._stream = stream

    def readline(self, size: int = -1, /) -> bytes:
        if not self._pending:
            return self._stream.readline(size)
        cut = self._pending.find(b"\n") + 1 or len(self._pending)
        if size >= 0:
            cut = min(cut, size)
        line, self._pending = self._pending[:cut], self._pending[cut:]
        if not line.endswith(b"\n") and not self._pending and (size < 0 or len(line) < size):
            line += self._stream.readline(size - len(line) if size >= 0 else -1)
        return line

    def read(self, size: int = -1, /) -> bytes:
        head, self._pending = self._pending, b""
        if size < 0:
            return head + self._stream.read()
        return head + self._stream.read(max(0, size - len(head)))


def _lines(
    reader: _LineReader, fmt: Format, start: int, platform: str | None, *, growing: bool
) -> Iterator[Parsed]:
    position, number = start, 0
    while line := reader.readline(MAX_LINE_BYTES + 1):
        number += 1
        line_start = position
        complete = line.endswith(b"\n")
        if len(line) > MAX_LINE_BYTES:
            skipped, complete = _skip_rest(reader)
            if not complete and growing:
                return  # still being written: judge it once it ends
            position += len(line) + skipped
            reason = f"longer than {MAX_LINE_BYTES} bytes"
            yield Parsed(BadLine(line=number, reason=f"byte {line_start}: {reason}"), position)
            continue
        record = _record(line)
        if not complete and growing and isinstance(record, str):
            return  # a writer mid-append: leave it for the next read
        position += len(line)
        if isinstance(record, str):
            if line.strip():
                reason = f"byte {line_start}: {record}"
                yield Parsed(BadLine(line=number, reason=reason), position)
            continue
        for item in record_items(record, fmt, platform):
            if isinstance(item, ValueError):
                reason = f"byte {line_start}: {item}"
                yield Parsed(BadLine(line=number, reason=reason), position)
            else:
                yield Parsed(item, position)


def _skip_rest(reader: _LineReader) -> tuple[int, bool]:
    """Read past the rest of an overlong line: (bytes skipped, whether its newline came)."""
    skipped = 0
    while chunk := reader.readline(_CHUNK):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            return skipped, True
    return skipped, False


def _record(line: bytes) -> dict[str, Any] | str:
    """The JSON object on a line, or why there is none."""
    value, problem = _json(line)
    if problem is not None:
        return problem
    return value if isinstance(value, dict) else "not a JSON object"


def _json(data: bytes) -> tuple[Any, str | None]:
    """(the JSON value, None), or (None, why it is not JSON)."""
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")  # Windows tools write a BOM
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 (byte {error.start})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, f"not JSON: {error.msg} (line {error.lineno}, column {error.colno})"
    except RecursionError:
        return None, "not JSON: nested too deeply"


def _document(
    content: bytes, fmt: Format, start: int, platform: str | None, where: str
) -> Iterator[Parsed]:
    """A whole-file document: items numbered from 1 (a Telegram export's messages, service
    messages included; otherwise the posts of each record in turn)."""
    value, problem = _json(content)
    if problem is not None:
        raise AdapterError(f"{where}: {problem}")
    items = _document_items(value, fmt, platform, where)
    for index in range(start, len(items)):
        item, number = items[index], index + 1
        if isinstance(item, ValueError):
            yield Parsed(BadLine(line=number, reason=f"item {number}: {item}"), number)
        elif item is not None:
            yield Parsed(item, number)


def _document_items(
    value: object, fmt: Format, platform: str | None, where: str
) -> list[Post | ValueError | None]:
    if fmt == "telegram" or (isinstance(value, dict) and is_telegram_export(value)):
        if not isinstance(value, dict) or not is_telegram_export(value):
            raise AdapterError(f"{where}: not a Telegram Desktop export")
        return list(telegram_messages(value, platform))
    records = value if isinstance(value, list) else [value]
    return [item for record in records for item in record_items(record, fmt, platform)]
