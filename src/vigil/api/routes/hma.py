"""Hasher-Matcher-Actioner 2.x compatible endpoints, so HMA clients can point at vigil.

Shapes follow OpenMediaMatch's ``/h/hash`` (signal type -> hash) and ``/m/lookup`` (bank names,
or signal type -> bank names when the content is given rather than a hash). Signal types come back
under vigil's names; HMA's (``video_md5`` ...) are accepted as aliases on the way in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from vigil.api.auth import Require
from vigil.api.common import api_settings, hash_upload, known_content, parse_signals
from vigil.api.errors import ApiError, ErrorBody
from vigil.api.fetch import fetched
from vigil.api.models import SignalIn
from vigil.api.settings import ApiSettings
from vigil.api.uploads import Upload, receive_upload, upload_body
from vigil.hashing import KnownContent, Signal

router = APIRouter(tags=["hma"])
Known = Annotated[KnownContent, Depends(known_content)]
Config = Annotated[ApiSettings, Depends(api_settings)]
Received = Annotated[Upload, Depends(receive_upload)]
Url = Annotated[str, Query(description="http(s) URL of an image or video to fetch and hash.")]
_URL_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "The URL is refused (scheme, address, redirects)."},
    502: {"model": ErrorBody, "description": "The URL could not be fetched."},
}


def _by_type(signals: list[Signal]) -> dict[str, str]:
    # Query-side hashing gives one signal per type, so the mapping loses nothing.
    return {signal.signal_type: signal.value for signal in signals}


async def _hash_path(known: KnownContent, path: Path, name: str) -> list[Signal]:
    return (await hash_upload(known, path, name)).signals


async def _hash_url(known: KnownContent, url: str, settings: ApiSettings) -> list[Signal]:
    async with fetched(url, settings) as path:
        return await _hash_path(known, path, url)


def _banks_matching(known: KnownContent, signal: Signal) -> list[str]:
    report = known.match_signals([signal])
    return sorted({match.bank for match in report.matches})


async def _lookup_each(known: KnownContent, signals: list[Signal]) -> dict[str, list[str]]:
    return {
        signal.signal_type: await run_in_threadpool(_banks_matching, known, signal)
        for signal in signals
    }


@router.get("/h/hash", dependencies=[Depends(Require("hash"))], responses=_URL_ERRORS)
async def hma_hash_url(url: Url, known: Known, settings: Config) -> dict[str, str]:
    """Fetch the media at ``url`` and hash it."""
    return _by_type(await _hash_url(known, url, settings))


@router.post("/h/hash", dependencies=[Depends(Require("hash"))], openapi_extra=upload_body())
async def hma_hash_upload(upload: Received, known: Known) -> dict[str, str]:
    """Hash an uploaded file (any one file field; HMA names it ``photo`` or ``video``)."""
    return _by_type(await _hash_path(known, upload.path, upload.filename))


@router.get("/m/lookup", dependencies=[Depends(Require("match"))], responses=_URL_ERRORS)
async def hma_lookup(
    known: Known,
    settings: Config,
    signal: str | None = None,
    signal_type: str | None = None,
    url: Annotated[str | None, Query(description="Fetch, hash and look up instead.")] = None,
) -> list[str] | dict[str, list[str]]:
    """Banks whose content matches ``signal``; or, given ``url``, the banks per signal type."""
    if url:
        return await _lookup_each(known, await _hash_url(known, url, settings))
    if signal is None or signal_type is None:
        raise ApiError(422, "invalid_request", "give signal and signal_type, or url")
    (parsed,) = parse_signals([SignalIn(signal_type=signal_type, signal=signal)])
    return await run_in_threadpool(_banks_matching, known, parsed)


@router.post("/m/lookup", dependencies=[Depends(Require("match"))], openapi_extra=upload_body())
async def hma_lookup_upload(upload: Received, known: Known) -> dict[str, list[str]]:
    """Hash an uploaded file and return the matching banks per signal type."""
    return await _lookup_each(known, await _hash_path(known, upload.path, upload.filename))
