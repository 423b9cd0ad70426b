"""Ingest adapters: vigil's own JSONL, the X API v2 and Telegram Desktop exports → posts.

Public API::

    from vigil.text.adapters import read_file, read_stream, parse_record
    for parsed in read_file(Path("tweets.ndjson"), "auto", start=checkpoint):
        parsed.item          # a Post, or a BadLine (line number and reason)
        parsed.position      # where to resume after it
    posts = parse_record(record, "x")   # one JSON object → posts; ValueError with the reason
"""

from vigil.text.adapters.reading import (
    MAX_DOCUMENT_BYTES,
    MAX_LINE_BYTES,
    AdapterError,
    Parsed,
    read_file,
    read_stream,
)
from vigil.text.adapters.records import FORMATS, Format, parse_record

__all__ = [
    "FORMATS",
    "MAX_DOCUMENT_BYTES",
    "MAX_LINE_BYTES",
    "AdapterError",
    "Format",
    "Parsed",
    "parse_record",
    "read_file",
    "read_stream",
]
