"""What ``/v1/streams`` and the console's Streams page drive: :class:`Streams`.

Two kinds: :class:`LocalStreams`, serve watching streams itself (the embedded default), and
:class:`vigil.live.registry.LeasedStreams`, serve recording requests that ``vigil worker --role
live`` processes take under leases (``VIGIL_LIVE_WORKERS``). Both answer with the same status
dicts: :meth:`vigil.live.session.StreamSession.status` plus where the stream stands (``state``:
waiting for a worker, running, stopping, ended), which worker holds it, and on request the
recent per-second trace.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from vigil.live.fusion import FusionConfig
from vigil.live.monitor import LiveMonitor, UnknownStream
from vigil.live.session import ACTOR, StreamSession, StreamSpec

State = Literal["waiting", "running", "stopping", "ended"]


class Streams(Protocol):
    @property
    def fusion(self) -> FusionConfig:
        """The thresholds the streams' statistics are read against."""
        ...

    def watch(self, spec: StreamSpec, *, actor: str = ACTOR) -> dict[str, Any]:
        """Start watching (raises :class:`~vigil.live.urls.StreamUrlRefused` for a URL the
        policy refuses and :class:`~vigil.live.monitor.TooManyStreams` when full)."""
        ...

    def statuses(self, *, trace_seconds: float = 0.0) -> list[dict[str, Any]]:
        """Every stream known, oldest first."""
        ...

    def status(self, stream_id: str, *, trace_seconds: float = 0.0) -> dict[str, Any]:
        """One stream (raises :class:`~vigil.live.monitor.UnknownStream`)."""
        ...

    def stop(self, stream_id: str, *, actor: str = ACTOR) -> dict[str, Any]:
        """Stop watching; an open incident's remaining footage is fingerprinted first."""
        ...

    def close(self) -> None: ...


class LocalStreams:
    """Streams watched in this process by a :class:`LiveMonitor`."""

    def __init__(self, monitor: LiveMonitor) -> None:
        self.monitor = monitor

    @property
    def fusion(self) -> FusionConfig:
        return self.monitor.settings.fusion()

    def watch(self, spec: StreamSpec, *, actor: str = ACTOR) -> dict[str, Any]:
        return local_status(self.monitor.watch(spec, actor=actor))

    def statuses(self, *, trace_seconds: float = 0.0) -> list[dict[str, Any]]:
        return [local_status(s, trace_seconds) for s in self.monitor.sessions()]

    def status(self, stream_id: str, *, trace_seconds: float = 0.0) -> dict[str, Any]:
        return local_status(self.monitor.get(stream_id), trace_seconds)

    def stop(self, stream_id: str, *, actor: str = ACTOR) -> dict[str, Any]:
        return local_status(self.monitor.stop(stream_id, actor=actor))

    def close(self) -> None:
        self.monitor.close()


def local_status(session: StreamSession, trace_seconds: float = 0.0) -> dict[str, Any]:
    status = session.status()
    state: State = "running" if status["running"] else "ended"
    extra: dict[str, Any] = {"state": state, "worker": None}
    if trace_seconds > 0:
        extra["trace"] = session.trace(trace_seconds)
    return {**status, **extra}


__all__ = ["LocalStreams", "State", "Streams", "UnknownStream", "local_status"]
