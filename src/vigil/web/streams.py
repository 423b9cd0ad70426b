"""The Streams page: what the live monitor watches, each stream's level and a sparkline of its
CUSUM statistic. Rows are what ``GET /v1/streams`` returns (:class:`vigil.live.Streams`);
starting and stopping go through ``POST/DELETE /v1/streams`` from console.js, so the URL policy,
the stream limit, the CSRF check and the audit events are the API's own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from vigil.live import FusionConfig, Streams, UnknownStream
from vigil.web.auth import Page, Viewer
from vigil.web.rendering import render

router = APIRouter()
StreamReader = Annotated[Viewer, Depends(Page("stream:read"))]

#: Windows (seconds of stream time) the sparkline spans.
SPARK_WINDOWS = 120
SPARK_WIDTH = 180
SPARK_HEIGHT = 40
#: How often the page asks for fresh rows, seconds.
REFRESH_SECONDS = 3


@dataclass(frozen=True)
class Threshold:
    level: str
    y: float


@dataclass(frozen=True)
class Sparkline:
    """Coordinates for an inline SVG: the statistic's polyline, newest at the right edge, and
    the level thresholds that fit under the scale (so a reader sees how close it came)."""

    points: str
    thresholds: list[Threshold]
    peak: float
    windows: int


def sparkline(values: list[float], config: FusionConfig) -> Sparkline:
    values = values[-SPARK_WINDOWS:]
    peak = max(values, default=0.0)
    # The alert line always shows: a flat line at 0 means little without it.
    top = max(peak, config.alert) * 1.1
    # Look-alike evidence can hold the statistic below 0: keep that inside the box too.
    low = min([0.0, *values])
    step = SPARK_WIDTH / (SPARK_WINDOWS - 1)
    start = SPARK_WIDTH - step * (len(values) - 1)

    def y(value: float) -> float:
        return round(SPARK_HEIGHT * (top - value) / (top - low), 1)

    points = " ".join(f"{round(start + i * step, 1)},{y(v)}" for i, v in enumerate(values))
    levels = (("watch", config.watch), ("alert", config.alert), ("critical", config.critical))
    thresholds = [Threshold(level, y(value)) for level, value in levels if value <= top]
    return Sparkline(points, thresholds, peak, len(values))


def row(status: dict[str, Any], config: FusionConfig) -> dict[str, Any]:
    """A stream's status as the API shows it, with the sparkline of its recent statistic."""
    cusum = [float(window["cusum"]) for window in status.get("trace") or []]
    return {**status, "spark": sparkline(cusum, config)}


def monitor(request: Request) -> Streams:
    live: Streams = request.app.state.live
    return live


def rows(live: Streams) -> list[dict[str, Any]]:
    # Running streams first, the newest first within each group: what needs eyes now on top.
    statuses = sorted(
        reversed(live.statuses(trace_seconds=SPARK_WINDOWS)),
        key=lambda status: not status["running"],
    )
    config = live.fusion
    return [row(status, config) for status in statuses]


def alert_stream(live: Streams, alert: dict[str, Any]) -> dict[str, Any] | None:
    """The status of the stream a live alert came from, while it is still known (serve
    watching streams itself forgets them on a restart or past its limit on ended streams)."""
    if alert.get("content_kind") != "stream":
        return None
    for signal in alert.get("signals") or []:
        stream_id = signal.get("stream") if isinstance(signal, dict) else None
        if isinstance(stream_id, str):
            try:
                return live.status(stream_id)
            except UnknownStream:
                continue
    return None


def _table(request: Request) -> dict[str, Any]:
    return {
        "streams": rows(monitor(request)),
        "spark_windows": SPARK_WINDOWS,
        "spark_width": SPARK_WIDTH,
        "spark_height": SPARK_HEIGHT,
    }


@router.get("/streams")
def streams(request: Request, viewer: StreamReader) -> Response:
    context = _table(request)
    return render(request, "streams.html", viewer, refresh_seconds=REFRESH_SECONDS, **context)


@router.get("/streams/table")
def streams_table(request: Request, viewer: StreamReader) -> Response:
    """The page's table alone: what console.js swaps in on each refresh."""
    return render(request, "stream_table.html", viewer, **_table(request))
