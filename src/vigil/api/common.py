"""Dependencies and helpers shared by the route modules."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from vigil.api.errors import ApiError
from vigil.api.models import SignalIn
from vigil.api.settings import ApiSettings
from vigil.hashing import HashResult, KnownContent, Signal, get_signal_type


def known_content(request: Request) -> KnownContent:
    known: KnownContent = request.app.state.known
    return known


def api_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def checked(result: HashResult, path: Path, filename: str) -> HashResult:
    """``result`` if it hashed; else a 422 naming the client's file, not our temp path."""
    if result.error is None:
        return result
    message = str(result.error.args[0]).replace(str(path), filename)
    raise ApiError(422, result.error.reason, message)


async def hash_upload(
    known: KnownContent, path: Path, filename: str, *, for_bank: bool = False
) -> HashResult:
    # Decoding and hashing are CPU work: keep them off the event loop.
    result = await run_in_threadpool(partial(known.hash, path, for_bank=for_bank))
    return checked(result, path, filename)


def parse_signals(signals: Sequence[SignalIn]) -> list[Signal]:
    """Canonical signals, or a 422 naming the first bad one."""
    parsed: list[Signal] = []
    for number, signal in enumerate(signals):
        try:
            kind = get_signal_type(signal.signal_type)
            parsed.append(Signal(kind.name, kind.validate(signal.signal), signal.quality))
        except ValueError as exc:
            raise ApiError(422, "invalid_signal", f"signal {number}: {exc}") from None
    return parsed
