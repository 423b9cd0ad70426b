"""Live-stream attack detection: watch streams, fuse evidence over time, alert within seconds,
and fingerprint the footage into an incident bank at once.

Data flows ingest (:mod:`vigil.live.ingest`) → samples → evidence sources
(:mod:`vigil.live.evidence`) → sequential fusion (:mod:`vigil.live.fusion`) → alert, incident
bank and actions (:mod:`vigil.live.session`). Many streams share a process through
:class:`LiveMonitor`; many processes share the streams under leases (:mod:`vigil.live.leases`).
"""

from vigil.hashing import KnownContent
from vigil.live.control import LocalStreams, Streams
from vigil.live.fusion import CusumFusion, FusionConfig, Level
from vigil.live.monitor import LiveMonitor, TooManyStreams, UnknownStream
from vigil.live.registry import LeasedStreams
from vigil.live.session import LivePolicy, StreamSession, StreamSpec
from vigil.live.settings import LiveSettings
from vigil.live.urls import StreamUrlPolicy, StreamUrlRefused


def open_streams(known: KnownContent, settings: LiveSettings) -> Streams:
    """What serve drives: the streams it watches itself, or with ``live_workers`` those the
    live workers hold."""
    if settings.live_workers:
        return LeasedStreams(known.db, settings)
    return LocalStreams(LiveMonitor(known, settings))


__all__ = [
    "CusumFusion",
    "FusionConfig",
    "LeasedStreams",
    "Level",
    "LiveMonitor",
    "LivePolicy",
    "LiveSettings",
    "LocalStreams",
    "StreamSession",
    "StreamSpec",
    "StreamUrlPolicy",
    "StreamUrlRefused",
    "Streams",
    "TooManyStreams",
    "UnknownStream",
    "open_streams",
]
