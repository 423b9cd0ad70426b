"""Live ingest: watch a stream by URL and turn it into samples on the stream clock.

Public API::

    from vigil.live.ingest import ReaderConfig, StreamReader
    from vigil.live.urls import StreamUrlPolicy

    reader = StreamReader("rtmp://relay.example/live/x", "cam-1",
                          policy=StreamUrlPolicy(), config=ReaderConfig(fps=2))
    for sample in reader.samples():      # VideoSample / AudioWindow, until the stream ends
        ...
    reader.status()                      # state, reason, counters; URL redacted
    reader.write_clip(Path("clip.ts"), start_t, end_t)
    reader.stop()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil.live.ingest.queue import Sample, SampleQueue
from vigil.live.ingest.reader import (
    Backoff,
    DecodeMode,
    ReaderConfig,
    ReaderStats,
    State,
    StreamReader,
    decode_mode,
)
from vigil.live.ingest.ring import ClipUnavailable
from vigil.live.urls import StreamUrlPolicy, StreamUrlRefused

if TYPE_CHECKING:
    from vigil.live.session import StreamSpec
    from vigil.live.settings import LiveSettings

__all__ = [
    "Backoff",
    "ClipUnavailable",
    "DecodeMode",
    "ReaderConfig",
    "ReaderStats",
    "Sample",
    "SampleQueue",
    "State",
    "StreamReader",
    "StreamUrlPolicy",
    "StreamUrlRefused",
    "decode_mode",
    "open_feed",
    "stream_url_policy",
]


def stream_url_policy(settings: LiveSettings) -> StreamUrlPolicy:
    """The stream URL policy the live settings describe."""
    return StreamUrlPolicy(
        allow_networks=tuple(settings.live_url_allow),
        deny_hosts=tuple(settings.live_url_deny_hosts),
        allow_files=settings.live_allow_files,
    )


def open_feed(spec: StreamSpec, settings: LiveSettings) -> tuple[StreamReader, str]:
    """A reader for ``spec.url`` under the live settings' URL policy, and its redacted URL.
    Raises :class:`StreamUrlRefused` for a URL the policy refuses; the reader starts when its
    samples are first asked for."""
    policy = stream_url_policy(settings)
    config = ReaderConfig(
        fps=settings.live_fps,
        max_side=settings.live_max_side,
        decode=decode_mode(settings.live_decode),
        realtime=spec.realtime,
        buffer_seconds=settings.live_buffer_seconds,
        reconnect=Backoff(max_seconds=settings.live_reconnect_max_seconds),
    )
    reader = StreamReader(spec.url, spec.name, policy=policy, config=config)
    return reader, reader.redacted_url
