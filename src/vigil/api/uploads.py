"""Multipart uploads, capped while they stream in and always deleted afterwards.

FastAPI's own ``UploadFile`` parameters read the whole body before a handler runs, so an upload
route declares none: it depends on :func:`receive_upload`, which counts bytes as they arrive (the
Content-Length header is the client's claim, not a limit) and stops at the cap with a 413.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from vigil.api.errors import ApiError
from vigil.config import Settings

# Room for the multipart boundaries, part headers and the small form fields next to the file.
_FRAMING_ALLOWANCE = 64 * 1024
_MAX_FIELDS = 64
_COPY_CHUNK = 1 << 20


class _FormFields:
    """The form fields next to the file parts."""

    fields: dict[str, list[str]]

    def one(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def text(self, name: str) -> str:
        """A field's last value, stripped; empty when it was not sent."""
        return (self.one(name) or "").strip()

    def many(self, name: str) -> list[str]:
        """A repeatable field; each value may also be comma-separated (``labels=a,b``)."""
        values = self.fields.get(name, [])
        return [item.strip() for value in values for item in value.split(",") if item.strip()]


@dataclass
class Upload(_FormFields):
    """One uploaded file on disk (``path``, under its client-side ``filename``) and the form's
    other fields."""

    path: Path
    filename: str
    fields: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Uploads(_FormFields):
    """Several uploaded files on disk, in the order sent, and the form's other fields."""

    files: list[Upload]
    fields: dict[str, list[str]] = field(default_factory=dict)


class _TooLarge(Exception):
    pass


def too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"uploads are limited to {limit} bytes")


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise _TooLarge
        yield chunk


async def read_capped(request: Request, limit: int) -> bytes:
    """The whole request body, or 413 as soon as it passes ``limit`` bytes (a chunked body has
    no Content-Length to check beforehand)."""
    chunks = []
    try:
        async for chunk in _capped(request.stream(), limit):
            chunks.append(chunk)
    except _TooLarge:
        raise ApiError(413, "too_large", f"request bodies are limited to {limit} bytes") from None
    return b"".join(chunks)


def save_part(upload: UploadFile, limit: int, prefix: str = "vigil-upload-") -> Path:
    """Copy a parsed part to a named file (hashers and decoders want a path); 413 past ``limit``."""
    suffix = Path(upload.filename or "").suffix[:16]
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(upload.file, out, _COPY_CHUNK)
            size = out.tell()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size > limit:
        path.unlink()
        raise too_large(limit)
    return path


async def _parse(
    request: Request, limit: int, max_files: int, required: bool
) -> tuple[list[UploadFile], dict[str, list[str]], Any]:
    """The file parts (each to be copied under ``limit``), the fields, and the parsed form
    (close it when done). The stream is capped at ``max_files`` files' worth."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send the file as multipart/form-data")
    cap = limit * max_files
    parser = MultiPartParser(
        request.headers,
        _capped(request.stream(), cap + _FRAMING_ALLOWANCE),
        max_files=max_files,
        max_fields=_MAX_FIELDS,
    )
    try:
        form = await parser.parse()
    except _TooLarge:
        raise too_large(cap) from None
    except MultiPartException as exc:
        raise ApiError(400, "invalid_multipart", exc.message) from None
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, []).append(value)
    if required and not files:
        await form.close()
        raise ApiError(400, "missing_file", "the form has no file part")
    return files, fields, form


async def receive_upload(request: Request) -> AsyncIterator[Upload]:
    """FastAPI dependency: the request's one file, deleted once the response is done."""
    async for uploads in _received(request, 1, required=True):
        yield uploads.files[0]


def receive_uploads(
    max_files: int, *, required: bool = True
) -> Callable[[Request], AsyncIterator[Uploads]]:
    """A FastAPI dependency: up to ``max_files`` files (at least one when ``required``), each
    at most ``max_upload_bytes``, deleted once the response is done."""

    async def receive(request: Request) -> AsyncIterator[Uploads]:
        async for uploads in _received(request, max_files, required):
            yield uploads

    return receive


async def _received(request: Request, max_files: int, required: bool) -> AsyncIterator[Uploads]:
    settings: Settings = request.app.state.settings
    limit = settings.max_upload_bytes
    parts, fields, form = await _parse(request, limit, max_files, required)
    uploads = Uploads([], fields)
    try:
        for part in parts:
            path = await run_in_threadpool(save_part, part, limit)
            uploads.files.append(Upload(path, part.filename or path.name, fields))
        yield uploads
    finally:
        await form.close()
        for upload in uploads.files:
            upload.path.unlink(missing_ok=True)


def upload_body(**fields: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of an upload route: a ``file`` part plus the given form fields
    (the route parses the body itself, so FastAPI cannot describe it)."""
    properties: dict[str, Any] = {"file": {"type": "string", "format": "binary"}, **fields}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["file"], "properties": properties}
                }
            },
        }
    }
