"""Bank management: create, change, fill, import and export."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from vigil.api.auth import Audit, Require
from vigil.api.common import checked, known_content, parse_signals
from vigil.api.errors import ErrorBody
from vigil.api.models import (
    BankCreate,
    BankOut,
    BankSignalIn,
    BankUpdate,
    ContentAdded,
    EntriesAdded,
    ImportReport,
    RowErrorOut,
)
from vigil.api.uploads import Upload, receive_upload, upload_body
from vigil.hashing import BankInfo, KnownContent, NewEntry
from vigil.hashing.banks import BankedSignal
from vigil.hashing.formats import HashListFormat, format_for_path, read_hash_list, write_hash_list

router = APIRouter(
    prefix="/v1/banks",
    tags=["banks"],
    responses={404: {"model": ErrorBody, "description": "No such bank."}},
)
Known = Annotated[KnownContent, Depends(known_content)]
Received = Annotated[Upload, Depends(receive_upload)]
READ = [Depends(Require("bank:read"))]
WRITE = [Depends(Require("bank:write"))]

_EXPORT_BATCH = 1000
_MEDIA_TYPES: dict[HashListFormat, str] = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "jsonl": "application/x-ndjson",
    "pytx": "text/plain",
}
_EXTENSIONS: dict[HashListFormat, str] = {
    "csv": "csv",
    "tsv": "tsv",
    "jsonl": "jsonl",
    "pytx": "txt",
}


def _out(info: BankInfo) -> BankOut:
    return BankOut.model_validate(info.as_json())


@router.get("", dependencies=READ)
def list_banks(known: Known) -> list[BankOut]:
    return [_out(info) for info in known.banks.list_banks()]


@router.post(
    "",
    status_code=201,
    dependencies=WRITE,
    responses={409: {"model": ErrorBody, "description": "A bank with that name exists."}},
)
def create_bank(body: BankCreate, known: Known, audit: Audit) -> BankOut:
    created = _out(known.banks.create(**body.model_dump()))
    audit("bank.create", "bank", body.name, **body.model_dump(exclude={"name"}))
    return created


@router.get("/{name}", dependencies=READ)
def get_bank(name: str, known: Known) -> BankOut:
    return _out(known.banks.get(name))


@router.patch("/{name}", dependencies=WRITE)
def update_bank(name: str, body: BankUpdate, known: Known, audit: Audit) -> BankOut:
    updated = _out(known.banks.update(name, **body.model_dump()))
    audit("bank.update", "bank", name, **body.model_dump(exclude_unset=True))
    return updated


@router.delete("/{name}", status_code=204, dependencies=WRITE)
def delete_bank(name: str, known: Known, audit: Audit) -> Response:
    known.banks.delete(name)
    audit("bank.delete", "bank", name)
    return Response(status_code=204)


@router.post(
    "/{name}/content",
    status_code=201,
    dependencies=WRITE,
    openapi_extra=upload_body(
        labels={"type": "string", "description": "Comma-separated; the field may repeat."},
        source={"type": "string"},
        content_ref={"type": "string", "description": "Defaults to the upload's filename."},
    ),
)
async def add_content(name: str, upload: Received, known: Known, audit: Audit) -> ContentAdded:
    """Hash an uploaded file (with the bank-side variants) and add it to the bank."""
    await run_in_threadpool(known.banks.get, name)  # 404 before any hashing
    result, entry_id = await run_in_threadpool(
        partial(
            known.add_file,
            name,
            upload.path,
            labels=upload.many("labels"),
            source=upload.one("source") or "",
            content_ref=upload.one("content_ref") or upload.filename,
        )
    )
    checked(result, upload.path, upload.filename)
    assert entry_id is not None  # checked() raised for a file that failed
    await run_in_threadpool(audit, "bank.content_add", "bank", name, entry_ids=[entry_id])
    return ContentAdded.of(entry_id, result)


@router.post("/{name}/signals", status_code=201, dependencies=WRITE)
def add_signals(name: str, body: list[BankSignalIn], known: Known, audit: Audit) -> EntriesAdded:
    """Add signals computed elsewhere; each becomes one entry with its labels."""
    known.banks.get(name)  # an empty list must 404 too, and writes nothing to find out
    signals = parse_signals(body)
    entries = [
        NewEntry([signal], item.labels, item.source, item.content_ref)
        for signal, item in zip(signals, body, strict=True)
    ]
    added = EntriesAdded(entry_ids=known.banks.add_entries(name, entries))
    audit("bank.content_add", "bank", name, entry_ids=added.entry_ids)
    return added


@router.post(
    "/{name}/import",
    dependencies=WRITE,
    openapi_extra=upload_body(),
)
async def import_hash_list(
    name: str,
    upload: Received,
    known: Known,
    audit: Audit,
    format: Annotated[
        HashListFormat | None, Query(description="Default: from the file name's extension.")
    ] = None,
    default_signal_type: Annotated[
        str | None, Query(description="For pytx files whose lines carry no signal type.")
    ] = None,
) -> ImportReport:
    """Import a hash list (CSV/TSV ``signal_type,signal,labels...``, JSONL, or pytx text).
    Good rows are imported; bad ones come back with their line numbers."""
    await run_in_threadpool(known.banks.get, name)
    fmt = format or format_for_path(Path(upload.filename))
    parsed = await run_in_threadpool(
        read_hash_list, upload.path, fmt, default_signal_type=default_signal_type
    )
    ids = await run_in_threadpool(known.banks.add_entries, name, parsed.entries)
    errors = [RowErrorOut(line=e.line, message=e.message) for e in parsed.errors]
    detail = {"file": upload.filename, "format": fmt, "imported": len(ids), "errors": len(errors)}
    await run_in_threadpool(audit, "bank.import", "bank", name, **detail)
    return ImportReport(imported=len(ids), errors=errors)


def _chunks(rows: Iterable[BankedSignal], fmt: HashListFormat) -> Iterator[str]:
    """The export in batches, so a bank of millions streams in constant memory."""
    iterator = iter(rows)
    while batch := list(islice(iterator, _EXPORT_BATCH)):
        buffer = io.StringIO()
        write_hash_list(batch, buffer, fmt)
        yield buffer.getvalue()


@router.get(
    "/{name}/export",
    dependencies=READ,
    response_class=StreamingResponse,
    responses={200: {"content": {t: {} for t in _MEDIA_TYPES.values()}}},
)
def export_hash_list(name: str, known: Known, format: HashListFormat = "csv") -> StreamingResponse:
    """Every signal of the bank as a hash list, streamed."""
    known.banks.get(name)  # iter_signals fails lazily, after the 200 would have been sent
    return StreamingResponse(
        _chunks(known.banks.iter_signals(name), format),
        media_type=_MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}.{_EXTENSIONS[format]}"'},
    )
