"""The last seconds of a stream as demuxed packets, and evidence clips cut from them without
re-encoding.

Packets are kept with their times on the stream clock, so a clip can span a reconnect: packets
of earlier connections join the clip when their codec parameters match the latest one's (same
codec, size, sample rate, extradata); otherwise the clip starts where the latest layout does.
The buffer always starts on a video keyframe (so the oldest kept second decodes) and holds at
least ``seconds``; a byte cap bounds it when keyframes are rare.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av

Kind = Literal["video", "audio"]
_TIME_BASE = Fraction(1, 90_000)
#: A keyframe this close after the requested start counts as at it (streams' first timestamps
#: differ by a few milliseconds; a whole keyframe interval earlier would be the alternative).
_KEYFRAME_SLACK = 0.1
_FORMATS = {".ts": "mpegts", ".mp4": "mp4", ".mkv": "matroska"}


class ClipUnavailable(ValueError):
    """No kept packets cover the requested times."""


class Layout:
    """One connection's streams, as templates a clip's output streams are copied from (the
    input container closes when the connection ends; these copies of its codec parameters
    outlive it)."""

    def __init__(self, video: av.VideoStream | None, audio: av.AudioStream | None) -> None:
        self._holder = av.open(io.BytesIO(), "w", format="mpegts")
        self.video = self._holder.add_stream_from_template(video) if video else None
        self.audio = self._holder.add_stream_from_template(audio) if audio else None
        self.signature = (_signature(video), _signature(audio))

    def template(self, kind: Kind) -> av.VideoStream | av.AudioStream | None:
        return self.video if kind == "video" else self.audio


def _signature(stream: av.VideoStream | av.AudioStream | None) -> tuple[object, ...]:
    if stream is None:
        return ()
    context = stream.codec_context
    if isinstance(stream, av.VideoStream):
        shape: tuple[object, ...] = (stream.width, stream.height)
    else:
        shape = (stream.sample_rate, stream.channels)
    return (context.name, *shape, bytes(context.extradata or b""))


@dataclass(frozen=True)
class Kept:
    kind: Kind
    data: bytes
    #: Stream-clock times: decode order (dts) and presentation (pts).
    dts: float
    pts: float
    duration: float
    keyframe: bool
    layout: Layout


class PacketRing:
    def __init__(self, seconds: float = 30.0, max_bytes: int = 256 * 2**20) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._packets: deque[Kept] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, kept: Kept) -> None:
        with self._lock:
            self._packets.append(kept)
            self._bytes += len(kept.data)
            self._trim(kept.dts)

    def span(self) -> tuple[float, float] | None:
        """Stream times of the oldest and newest kept packet."""
        with self._lock:
            if not self._packets:
                return None
            return self._packets[0].dts, self._packets[-1].dts

    def _trim(self, newest: float) -> None:
        horizon = newest - self.seconds
        # Drop up to the last video keyframe at or before the horizon, so that what stays
        # starts decodable and still covers ``seconds``.
        cut = 0
        for index, kept in enumerate(self._packets):
            if kept.dts > horizon:
                break
            if kept.layout.video is None:
                cut = index + 1  # audio only: any packet is a place to start
            elif kept.kind == "video" and kept.keyframe:
                cut = index
        for _ in range(cut):
            self._bytes -= len(self._packets.popleft().data)
        while self._bytes > self.max_bytes and len(self._packets) > 1:
            self._bytes -= len(self._packets.popleft().data)

    def snapshot(self) -> list[Kept]:
        with self._lock:
            return list(self._packets)

    def write_clip(self, path: Path, start: float, end: float) -> Path:
        """Remux the kept packets from the last video keyframe at or before ``start`` to
        ``end`` into ``path``: MPEG-TS for ``.ts``, Matroska for ``.mkv``, MP4 otherwise (the
        suffix becomes ``.mp4``). Returns the path written."""
        if end <= start:
            raise ClipUnavailable("the clip's end must come after its start")
        packets = _select(self.snapshot(), start, end)
        if path.suffix.lower() not in _FORMATS:
            path = path.with_suffix(".mp4")
        _mux(path, packets)
        return path


def _select(packets: list[Kept], start: float, end: float) -> list[Kept]:
    inside = [k for k in packets if k.dts <= end]
    if not inside:
        raise ClipUnavailable(f"no packets kept before t={end:.1f}")
    layout = inside[-1].layout
    compatible = [k for k in inside if k.layout.signature == layout.signature]
    keyframes = [k for k in compatible if k.kind == "video" and k.keyframe]
    if layout.video is not None and keyframes:
        before = [k for k in keyframes if k.pts <= start + _KEYFRAME_SLACK]
        first = before[-1] if before else keyframes[0]
        if first.pts > end:
            raise ClipUnavailable(f"no video keyframe kept between t={start:.1f} and {end:.1f}")
        origin = first.dts
        return [k for k in compatible if k.dts >= origin and (k.kind == "video" or k.pts >= origin)]
    chosen = [k for k in compatible if k.pts >= start]
    if not chosen:
        raise ClipUnavailable(f"no packets kept between t={start:.1f} and {end:.1f}")
    return chosen


def _mux(path: Path, packets: list[Kept]) -> None:
    origin = min(k.dts for k in packets)
    layout = packets[-1].layout
    with av.open(str(path), "w", format=_FORMATS.get(path.suffix.lower(), "mp4")) as out:
        streams = {}
        kinds: tuple[Kind, ...] = ("video", "audio")
        for kind in kinds:
            template = layout.template(kind)
            if template is not None:
                streams[kind] = out.add_stream_from_template(template)
        last_dts: dict[str, int] = {}
        for kept in packets:
            stream = streams.get(kept.kind)
            dts = round((kept.dts - origin) / _TIME_BASE)
            if stream is None or dts <= last_dts.get(kept.kind, -1):
                continue  # a timestamp that went back (a rebase) cannot be muxed
            last_dts[kept.kind] = dts
            packet = av.Packet(kept.data)
            packet.dts = dts
            packet.pts = max(dts, round((kept.pts - origin) / _TIME_BASE))
            packet.duration = round(kept.duration / _TIME_BASE)
            packet.time_base = _TIME_BASE
            packet.is_keyframe = kept.keyframe
            packet.stream = stream
            out.mux(packet)
