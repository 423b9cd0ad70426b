"""Public reports: ``POST /v1/reports`` needs no sign-in (the only unauthenticated write besides
the login); listing them needs ``alert:read``, and their descriptions ``evidence:view``.

The body is ``multipart/form-data`` (``url``, ``description``, an optional ``file``), or the
same text fields urlencoded or as JSON. The rate limit is checked before the body is read, and
the body is counted as it streams in, so neither a flood nor a huge upload costs more than a
refusal.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from vigil.accounts import Principal
from vigil.api.auth import Require
from vigil.api.errors import ApiError, ErrorBody
from vigil.api.uploads import save_part, too_large
from vigil.reports import NewReport, PublicReports, RateLimited, ReportError
from vigil.store.models import PublicReport

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Reader = Annotated[Principal, Depends(Require("alert:read"))]

# Room for the multipart boundaries and the text fields next to the file.
_FRAMING_ALLOWANCE = 64 * 1024
_MAX_FIELDS = 8


class ReportIn(BaseModel):
    url: str = ""
    description: str = ""


class ReportCreated(BaseModel):
    reference: str = Field(description="Quote it if you contact the moderators about this report.")


class ReportOut(BaseModel):
    id: int
    reference: str
    url: str
    description: str | None = Field(description="Left out without `evidence:view`.")
    has_upload: bool
    alert_id: int | None
    created_at: datetime


def public_reports(request: Request) -> PublicReports:
    found: PublicReports = request.app.state.reports
    return found


Reports = Annotated[PublicReports, Depends(public_reports)]


def _client(request: Request) -> str:
    # The peer address; behind a proxy that is the proxy, so deploy one that limits by client.
    return request.client.host if request.client else "unknown"


class _TooLarge(Exception):
    pass


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise _TooLarge
        yield chunk


async def _read_json(request: Request, limit: int) -> NewReport:
    body = b"".join([chunk async for chunk in _capped(request.stream(), limit)])
    try:
        parsed = ReportIn.model_validate(json.loads(body))
    except ValueError as exc:
        raise ApiError(422, "invalid_report", f"the body is not a report: {exc}") from None
    return NewReport(parsed.url, parsed.description)


async def _read_form(request: Request, limit: int) -> NewReport:
    parser = MultiPartParser(
        request.headers,
        _capped(request.stream(), limit + _FRAMING_ALLOWANCE),
        max_files=1,
        max_fields=_MAX_FIELDS,
    )
    form = await parser.parse()
    try:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        path = (
            await run_in_threadpool(save_part, files[0], limit, "vigil-report-") if files else None
        )
    finally:
        await form.close()
    # An empty file part is what a browser sends for a form whose file input was left empty.
    if path is not None and path.stat().st_size == 0:
        path.unlink()
        path = None
    return NewReport(fields.get("url", ""), fields.get("description", ""), path)


async def _read_fields(request: Request, limit: int) -> NewReport:
    form = await FormParser(request.headers, _capped(request.stream(), limit)).parse()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    return NewReport(fields.get("url", ""), fields.get("description", ""))


async def _read_report(request: Request, limit: int) -> NewReport:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _FRAMING_ALLOWANCE:
        raise too_large(limit)  # said so up front: refuse before reading a byte
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            return await _read_form(request, limit)
        if content_type.startswith("application/json"):
            return await _read_json(request, limit)
        if content_type.startswith("application/x-www-form-urlencoded"):
            return await _read_fields(request, limit)
    except _TooLarge:
        raise too_large(limit) from None
    except MultiPartException as exc:
        raise ApiError(400, "invalid_multipart", exc.message) from None
    raise ApiError(415, "unsupported_media_type", "send a form (multipart or urlencoded) or JSON")


def _rate_limited(exc: RateLimited) -> ApiError:
    return ApiError(429, "rate_limited", str(exc), headers={"Retry-After": str(exc.retry_after)})


@router.post(
    "",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "url": {"type": "string"},
                            "description": {"type": "string"},
                            "file": {"type": "string", "format": "binary"},
                        },
                    }
                },
                "application/json": {"schema": ReportIn.model_json_schema()},
            },
        }
    },
    responses={
        413: {"model": ErrorBody, "description": "The upload is over the report size limit."},
        422: {"model": ErrorBody, "description": "Nothing to report, or a bad URL."},
        429: {"model": ErrorBody, "description": "Too many reports from this client for now."},
    },
)
async def create_report(request: Request, reports: Reports) -> ReportCreated:
    """Report content, no sign-in needed: a URL, a description, or a file (or all three)."""
    client = _client(request)
    try:
        await run_in_threadpool(reports.check_rate, client)
    except RateLimited as exc:
        raise _rate_limited(exc) from None
    report = await _read_report(request, reports.settings.report_max_bytes)
    try:
        receipt = await run_in_threadpool(reports.submit, report, client)
    except RateLimited as exc:
        raise _rate_limited(exc) from None
    except ReportError as exc:
        raise ApiError(422, "invalid_report", str(exc)) from None
    finally:
        if report.upload is not None:
            report.upload.unlink(missing_ok=True)
    return ReportCreated(reference=receipt.reference)


@router.get("")
def list_reports(
    principal: Reader,
    reports: Reports,
    before: Annotated[int | None, Query(ge=1, description="Only ids below this.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ReportOut]:
    """Public reports, newest first. The reporter's address was never stored."""
    evidence = principal.can("evidence:view")
    return [_out(row, evidence) for row in reports.list_reports(limit, before)]


def _out(row: PublicReport, evidence: bool) -> ReportOut:
    return ReportOut(
        id=row.id,
        reference=row.reference,
        url=row.url,
        description=row.description if evidence else None,
        has_upload=bool(row.media_path),
        alert_id=row.alert_id,
        created_at=row.created_at,
    )
