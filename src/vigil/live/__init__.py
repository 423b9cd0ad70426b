"""Live-stream attack detection: watch streams, fuse evidence over time, alert within seconds,
and fingerprint the footage into an incident bank at once.

Data flows ingest (:mod:`vigil.live.ingest`) → samples → evidence sources
(:mod:`vigil.live.evidence`) → sequential fusion (:mod:`vigil.live.fusion`) → alert, incident
bank and actions (:mod:`vigil.live.session`).
"""

from vigil.live.fusion import CusumFusion, FusionConfig, Level
from vigil.live.monitor import LiveMonitor, TooManyStreams, UnknownStream
from vigil.live.session import LivePolicy, StreamSession, StreamSpec
from vigil.live.settings import LiveSettings
from vigil.live.urls import StreamUrlPolicy, StreamUrlRefused

__all__ = [
    "CusumFusion",
    "FusionConfig",
    "Level",
    "LiveMonitor",
    "LivePolicy",
    "LiveSettings",
    "StreamSession",
    "StreamSpec",
    "StreamUrlPolicy",
    "StreamUrlRefused",
    "TooManyStreams",
    "UnknownStream",
]
