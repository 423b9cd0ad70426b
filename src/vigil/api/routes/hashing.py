"""Hash and match uploaded content or signals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from vigil.api.auth import Require
from vigil.api.common import checked, hash_upload, known_content, parse_signals
from vigil.api.errors import ErrorBody
from vigil.api.models import HashResponse, MatchReportOut, MatchResponse, SignalIn
from vigil.api.uploads import Upload, receive_upload, upload_body
from vigil.hashing import KnownContent

router = APIRouter(prefix="/v1", tags=["hashing"])
Known = Annotated[KnownContent, Depends(known_content)]
Received = Annotated[Upload, Depends(receive_upload)]
BankFilter = Annotated[
    list[str] | None,
    Query(description="Match only these banks (negative banks always apply). Repeatable."),
]
_MEDIA_ERRORS: dict[int | str, dict[str, object]] = {
    413: {"model": ErrorBody, "description": "The upload is over the size limit."},
    422: {"model": ErrorBody, "description": "The file is not hashable media."},
}


@router.post(
    "/hash",
    dependencies=[Depends(Require("hash"))],
    openapi_extra=upload_body(),
    responses=_MEDIA_ERRORS,
)
async def hash_media(upload: Received, known: Known) -> HashResponse:
    """Hash an uploaded image or video into its signals (PDQ, MD5, SHA-256 ...)."""
    result = await hash_upload(known, upload.path, upload.filename)
    return HashResponse.of(result, upload.filename)


@router.post(
    "/match",
    dependencies=[Depends(Require("match"))],
    openapi_extra=upload_body(),
    responses=_MEDIA_ERRORS,
)
async def match_media(upload: Received, known: Known, banks: BankFilter = None) -> MatchResponse:
    """Hash an uploaded image or video and match it against the banks."""
    result, report = await run_in_threadpool(known.match, upload.path, banks)
    checked(result, upload.path, upload.filename)
    hashed = HashResponse.of(result, upload.filename)
    return MatchResponse(**hashed.model_dump(), report=MatchReportOut.of(report))


@router.post("/match/signals", dependencies=[Depends(Require("match"))])
def match_signals(
    signals: list[SignalIn], known: Known, banks: BankFilter = None
) -> MatchReportOut:
    """Match signals computed elsewhere (e.g. on the client, so the media never leaves it)."""
    return MatchReportOut.of(known.match_signals(parse_signals(signals), banks))
