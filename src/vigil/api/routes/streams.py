"""Live streams: start watching (``POST``), live status and scores (``GET``), stop (``DELETE``).

Starting a stream makes vigil pull a URL from its own network, so the URL goes through the
stream URL policy (public addresses only unless allow-listed; files only when allowed) and the
start and stop are audited with the URL's credentials redacted. With ``VIGIL_LIVE_WORKERS`` the
streams are watched by live workers: a new stream waits until one claims it (a renewal interval
at most), its status is what the holder last reported, and a stop takes effect at the holder's
next renewal (``state`` says ``stopping`` until then).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from vigil.accounts import Principal
from vigil.api.auth import Require
from vigil.api.errors import ApiError
from vigil.live import Streams, StreamSpec, StreamUrlRefused, TooManyStreams, UnknownStream

router = APIRouter(prefix="/v1/streams", tags=["live"])

StreamId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="The stream's id.")]


class StreamIn(BaseModel):
    url: str = Field(
        min_length=1,
        max_length=2048,
        description="rtmp(s)://, rtsp://, srt://, udp://@:PORT, http(s)://....m3u8",
    )
    name: str = Field(default="", max_length=256)
    platform: str = Field(default="", max_length=64)
    content_ref: str = Field(
        default="", max_length=512, description="The platform's id of the stream (a cut names it)."
    )
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=1024)]] = (
        Field(default_factory=dict, max_length=32, description="category, title, tags...")
    )
    reach: int = Field(default=0, ge=0, le=10**12, description="Viewers, when known.")


class EvidenceNow(BaseModel):
    t: float
    score: float
    llr: float


class IncidentOut(BaseModel):
    number: int
    onset: float
    level: str
    alert_id: int | None
    fingerprints: int


class WindowOut(BaseModel):
    t: float
    llr: dict[str, float]
    total: float
    cusum: float
    level: str
    incident: int


class StreamOut(BaseModel):
    id: str
    name: str
    url: str = Field(description="With any credentials redacted.")
    platform: str
    content_ref: str
    running: bool
    state: str = Field(description="waiting (for a live worker), running, stopping or ended.")
    worker: str | None = Field(description="The live worker holding the stream, if any.")
    ingest: dict[str, Any]
    t: float = Field(description="Stream time reached, seconds.")
    lag_seconds: float = Field(description="How far analysis trails the decoder.")
    samples: int
    level: str = Field(description="normal, watch, alert or critical.")
    cusum: float
    evidence: dict[str, EvidenceNow] = Field(description="Each source's latest evidence.")
    source_errors: dict[str, int]
    incidents: list[IncidentOut]
    error: str | None
    trace: list[WindowOut] | None = Field(
        default=None, description="Per-second ratios and CUSUM (one stream's GET only)."
    )


class StreamList(BaseModel):
    streams: list[StreamOut]


def monitor(request: Request) -> Streams:
    live: Streams = request.app.state.live
    return live


Monitor = Annotated[Streams, Depends(monitor)]


def _found(live: Streams, stream_id: str, trace_seconds: float = 0.0) -> dict[str, Any]:
    try:
        return live.status(stream_id, trace_seconds=trace_seconds)
    except UnknownStream:
        raise ApiError(404, "not_found", f"no stream {stream_id}") from None


@router.post("", status_code=201)
async def watch(
    body: StreamIn,
    principal: Annotated[Principal, Depends(Require("stream:watch"))],
    live: Monitor,
) -> StreamOut:
    """Start watching a stream; detection begins as soon as it connects."""
    spec = StreamSpec(
        url=body.url,
        name=body.name,
        platform=body.platform,
        content_ref=body.content_ref,
        metadata=dict(body.metadata),
        reach=body.reach,
    )
    try:
        # Resolving the host (the URL policy) blocks: keep it off the event loop.
        status = await run_in_threadpool(live.watch, spec, actor=principal.actor)
    except StreamUrlRefused as exc:
        raise ApiError(400, "url_refused", str(exc)) from None
    except TooManyStreams as exc:
        raise ApiError(429, "too_many_streams", str(exc)) from None
    return StreamOut(**status)


@router.get("")
def list_streams(
    _: Annotated[Principal, Depends(Require("stream:read"))],
    live: Monitor,
    running: Annotated[bool | None, Query(description="Only running (or ended) streams.")] = None,
) -> StreamList:
    statuses = live.statuses()
    if running is not None:
        statuses = [status for status in statuses if status["running"] == running]
    return StreamList(streams=[StreamOut(**status) for status in statuses])


@router.get("/{stream_id}")
def stream_status(
    stream_id: StreamId,
    _: Annotated[Principal, Depends(Require("stream:read"))],
    live: Monitor,
    seconds: Annotated[float, Query(ge=0, le=3600, description="Trace length.")] = 120.0,
) -> StreamOut:
    """Live status, each source's latest score, incidents and the recent per-second trace."""
    return StreamOut(**_found(live, stream_id, seconds))


@router.delete("/{stream_id}")
async def stop_stream(
    stream_id: StreamId,
    principal: Annotated[Principal, Depends(Require("stream:watch"))],
    live: Monitor,
) -> StreamOut:
    """Stop watching; an open incident's remaining footage is fingerprinted first."""
    await run_in_threadpool(_found, live, stream_id)
    status = await run_in_threadpool(live.stop, stream_id, actor=principal.actor)
    return StreamOut(**status)
