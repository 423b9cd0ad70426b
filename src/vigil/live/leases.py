"""A live worker's loop: claim streams, watch them, renew their leases, let go when told.

Every tick (a fifth of ``live_lease_seconds``) the worker, in this order:

1. beats its heart (so the others count it when they work out their fair share);
2. renews the lease of each stream it watches, writing its status; a lease it no longer holds
   (taken by another worker after this one hung) or a stream asked to stop is stopped at once;
3. records the streams that ended (finished, failed, stopped);
4. claims free streams up to its fair share.

If the database does not answer, the worker keeps watching until its leases run out *by its own
clock*, counted from the start of the last renewal that succeeded: that is never later than the
database's own expiry, so the stream is stopped here before anyone else can take it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from vigil.live.monitor import LiveMonitor
from vigil.live.registry import Claim, Held, StreamRegistry
from vigil.live.session import StreamSession
from vigil.live.urls import StreamUrlRefused
from vigil.logs import get_logger

log = get_logger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(2).hex()}"


@dataclass
class Watched:
    session: StreamSession
    generation: int
    #: Incidents under earlier holders, kept in the status this worker reports.
    earlier: list[dict[str, Any]]
    #: time.monotonic() after which the lease may have passed.
    deadline: float


class LeaseHolder:
    def __init__(
        self, monitor: LiveMonitor, registry: StreamRegistry, *, name: str | None = None
    ) -> None:
        self.monitor = monitor
        self.registry = registry
        self.name = name or worker_name()
        self.capacity = monitor.settings.live_max_streams
        self.lease = monitor.settings.live_lease_seconds
        self.tick_seconds = self.lease / 5
        self.watched: dict[str, Watched] = {}
        #: Guards ``watched``: the fence thread drops streams while a tick is in the database.
        self._lock = threading.Lock()
        #: Streams taken so far, over the worker's life.
        self.claimed = 0

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set, then stop every stream and hand the leases back. The
        fence runs on its own thread, so a tick stuck in a database call (a server going
        away can hold a connection attempt for seconds) never keeps a stream past its lease."""
        self.monitor.prepare()
        log.info("live.worker_started", worker=self.name, capacity=self.capacity)
        fencing = threading.Thread(
            target=self._fence_until, args=(stop,), name="live-fence", daemon=True
        )
        fencing.start()
        while not stop.is_set():
            self.tick()
            stop.wait(self.tick_seconds)
        fencing.join()
        self.leave()

    def tick(self) -> None:
        started = time.monotonic()
        try:
            self.registry.heartbeat(self.name, self.capacity)
            self._renew(started)
            self._record_ended()
            self._claim(started)
        except Exception as exc:  # the database away: keep watching while the leases last
            log.warning("live.lease_tick_failed", worker=self.name, error=str(exc))
        finally:
            self._fence()

    def leave(self) -> None:
        """Hand every stream back for another worker to take at once (a restart or a scale
        down must not end anyone's stream); open incidents are fingerprinted first."""
        try:
            self._record_ended()
        except Exception as exc:
            log.warning("live.end_failed", worker=self.name, error=str(exc))
        watched = self._watched()
        for item in watched.values():
            item.session.stop()
        for item in watched.values():
            item.session.join(timeout=30)
        try:
            self.registry.leave(self.name, {k: w.generation for k, w in watched.items()})
        except Exception as exc:  # the leases run out by themselves
            log.warning("live.leave_failed", worker=self.name, error=str(exc))
        with self._lock:
            self.watched.clear()

    def _watched(self) -> dict[str, Watched]:
        with self._lock:
            return dict(self.watched)

    def _still(self, stream_id: str, watched: Watched) -> bool:
        """Whether ``watched`` is still this worker's entry for the stream (the fence may
        have dropped it while the database answered)."""
        return self.watched.get(stream_id) is watched

    def _renew(self, started: float) -> None:
        watched = self._watched()
        kept = self.registry.renew(
            self.name, {key: Held(w.generation, self._report(w)) for key, w in watched.items()}
        )
        for stream_id, holds in kept.items():
            item = watched[stream_id]
            with self._lock:
                if not self._still(stream_id, item):
                    continue
                if holds:
                    item.deadline = started + self.lease - self.tick_seconds
                    continue
            if item.session.running:
                # Lost, or asked to stop: the session fingerprints an open incident as it ends,
                # and the next tick records the end (or finds the lease gone and drops it).
                log.info("live.stream_released", worker=self.name, stream=stream_id)
                item.session.stop()

    def _record_ended(self) -> None:
        for stream_id, item in self._watched().items():
            if not item.session.running:
                item.session.join(timeout=30)
                self.registry.end(self.name, stream_id, item.generation, self._report(item))
                with self._lock:
                    if self._still(stream_id, item):
                        del self.watched[stream_id]

    def _claim(self, started: float) -> None:
        if len(self._watched()) >= self.capacity:
            return
        for claim in self.registry.claim(self.name, self.capacity):
            self._start(claim, started)

    def _start(self, claim: Claim, started: float) -> None:
        try:
            session = self.monitor.start(
                claim.spec,
                session_id=claim.stream_id,
                incident_base=claim.incident_base,
                fence=self.registry.fence(claim.stream_id, self.name, claim.generation),
            )
        except (StreamUrlRefused, RuntimeError) as exc:
            # Refused by this worker's policy, or no room: the stream ends with the reason.
            log.warning("live.claim_refused", stream=claim.stream_id, error=str(exc))
            status = {"error": f"{type(exc).__name__}: {exc}", "incidents": claim.incidents}
            self.registry.end(self.name, claim.stream_id, claim.generation, status)
            return
        log.info("live.stream_claimed", worker=self.name, stream=claim.stream_id)
        self.claimed += 1
        deadline = started + self.lease - self.tick_seconds
        with self._lock:
            self.watched[claim.stream_id] = Watched(
                session, claim.generation, claim.incidents, deadline
            )

    def _fence_until(self, stop: threading.Event) -> None:
        while not stop.wait(self.tick_seconds / 4):
            self._fence()

    def _fence(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = {k: w for k, w in self.watched.items() if now > w.deadline}
            for stream_id in expired:
                del self.watched[stream_id]
        for stream_id, item in expired.items():
            log.warning("live.lease_expired", worker=self.name, stream=stream_id)
            item.session.abandon()

    def _report(self, watched: Watched) -> dict[str, Any]:
        status = watched.session.status()
        status["incidents"] = watched.earlier + status["incidents"]
        status["trace"] = watched.session.trace(120.0)
        return status
