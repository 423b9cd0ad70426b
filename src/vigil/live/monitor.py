"""Many streams watched at once in one process: start, status, stop.

Each stream has a reader thread (decoding releases the GIL), an analysis thread and a responder
thread; the heavy models behind the evidence sources are loaded once and shared. ``vigil watch``
and ``/v1/streams`` both drive a :class:`LiveMonitor`.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from vigil import audit
from vigil.hashing import KnownContent
from vigil.live.evidence.base import EvidenceFactory
from vigil.live.incident import IncidentBank
from vigil.live.process import spend_cores_on_streams
from vigil.live.session import ACTOR, Feed, Services, StreamSession, StreamSpec
from vigil.live.settings import LiveSettings
from vigil.live.sources import SourceRegistry, warm_up
from vigil.review import ReviewPolicy

FeedFactory = Callable[[StreamSpec, LiveSettings], tuple[Feed, str]]
SourcesFactory = Callable[[StreamSpec], Sequence[EvidenceFactory]]
#: The URL of the spec the sources are warmed up with (none is opened).
_WARM_UP_URL = "warm-up"
#: Ended streams kept for their status page.
_KEEP_ENDED = 100


class TooManyStreams(RuntimeError):
    pass


class UnknownStream(KeyError):
    pass


class LiveMonitor:
    def __init__(
        self,
        known: KnownContent,
        settings: LiveSettings,
        *,
        feeds: FeedFactory | None = None,
        sources: SourcesFactory | None = None,
    ) -> None:
        from vigil.live.ingest import open_feed

        self.known = known
        self.settings = settings
        self._feeds = feeds or open_feed
        self._sources = sources
        self.services = Services(
            known.db,
            settings.home,
            IncidentBank(known, settings.live_incident_bank),
            ReviewPolicy.of(settings).weights,
        )
        self._sessions: OrderedDict[str, StreamSession] = OrderedDict()
        self._lock = threading.Lock()

    def watch(self, spec: StreamSpec, *, actor: str = ACTOR) -> StreamSession:
        """Start watching ``spec.url``, audited as ``actor``'s request. Refuses a URL the
        policy does not allow (the feed factory raises) and more streams than
        ``live_max_streams``."""
        session = self.start(spec)
        with self.known.db.session() as db:
            audit.record(
                db,
                actor,
                "stream.watch",
                "stream",
                session.id,
                {
                    "url": session.redacted_url,
                    "platform": spec.platform,
                    "content_ref": spec.content_ref,
                },
            )
        return session

    def start(
        self,
        spec: StreamSpec,
        *,
        session_id: str | None = None,
        incident_base: int = 0,
        fence: Callable[[Session], None] | None = None,
    ) -> StreamSession:
        """Start a session for ``spec`` (under ``session_id`` when the stream already has one:
        a live worker taking over a stream keeps its id and its incidents' numbers, and fences
        the session's writes with its lease)."""
        with self._lock:
            if self._running() >= self.settings.live_max_streams:
                raise TooManyStreams(
                    f"already watching {self.settings.live_max_streams} streams (live_max_streams)"
                )
            sources = self._prepared()
            feed, redacted = self._feeds(spec, self.settings)
            session_id = session_id or secrets.token_hex(6)
            session = StreamSession(
                session_id,
                spec,
                feed,
                sources(spec),
                self.services,
                policy=self.settings.policy(),
                fusion=self.settings.fusion(),
                redacted_url=redacted,
                incident_base=incident_base,
                fence=fence,
            )
            self._sessions[session_id] = session
            self._forget_ended()
        session.start()
        return session

    def prepare(self) -> None:
        """Load the models and run each once now rather than on the first stream (a live
        worker does this before it claims anything, so that no claim waits for loading)."""
        with self._lock:
            self._prepared()

    def _prepared(self) -> SourcesFactory:
        if self._sources is None:
            # Built on the first watch, not with the app: the models load only when needed.
            registry = SourceRegistry(self.settings, self.known)
            spend_cores_on_streams(self.settings)
            warm_up(registry(StreamSpec(url=_WARM_UP_URL)))
            self._sources = registry
        return self._sources

    def _running(self) -> int:
        return sum(s.running for s in self._sessions.values())

    def get(self, session_id: str) -> StreamSession:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise UnknownStream(session_id)
        return session

    def sessions(self) -> list[StreamSession]:
        with self._lock:
            return list(self._sessions.values())

    def stop(self, session_id: str, *, actor: str = ACTOR, timeout: float = 10.0) -> StreamSession:
        session = self.get(session_id)
        session.stop()
        session.join(timeout)
        with self.known.db.session() as db:
            audit.record(db, actor, "stream.stop", "stream", session_id, {"stream": session_id})
        return session

    def close(self, timeout: float = 10.0) -> None:
        for session in self.sessions():
            session.stop()
        for session in self.sessions():
            session.join(timeout)

    def _forget_ended(self) -> None:
        ended = [key for key, s in self._sessions.items() if not s.running and s.finished]
        for key in ended[: max(0, len(ended) - _KEEP_ENDED)]:
            del self._sessions[key]
