"""Streams shared by live workers under leases, in the ``live_stream`` table.

serve records a request (:meth:`StreamRegistry.add`); each ``vigil worker --role live`` claims
streams up to its fair share (the active streams divided by the workers with a fresh heartbeat,
and never more than its ``live_max_streams``), then renews each lease every fifth of
``live_lease_seconds`` and writes the stream's status with it. A worker that dies stops renewing:
once the lease has passed, any worker claims the stream again, under a new ``generation``.

Every write a holder makes names the generation it holds, so a worker that lost a stream (it
hung past its lease, the database was away) cannot overwrite the new holder's status or end the
stream; and it stops its own session when its lease runs out by its own clock, before the
database could hand the stream to anyone else (see :mod:`vigil.live.leases`). Claims compare
and set, so two workers can never both take a stream, on SQLite as on PostgreSQL.

The lease clock is the database's on PostgreSQL (workers on several machines) and this machine's
on SQLite (one machine).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from vigil import audit
from vigil.live.control import State
from vigil.live.fusion import FusionConfig
from vigil.live.ingest import stream_url_policy
from vigil.live.monitor import UnknownStream
from vigil.live.session import ACTOR, StreamSpec
from vigil.live.settings import LiveSettings
from vigil.store import Database
from vigil.store.models import LiveStream, LiveWorker

WORKER_ACTOR = "system:live-worker"
#: Ended streams listed with the active ones.
_KEEP_ENDED = 100


class LeaseLost(RuntimeError):
    pass


@dataclass(frozen=True)
class Claim:
    """A stream a worker has just taken."""

    stream_id: str
    spec: StreamSpec
    generation: int
    #: Incidents the stream had under earlier holders (their numbers continue from these).
    incidents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def incident_base(self) -> int:
        return max((int(i.get("number", 0)) for i in self.incidents), default=0)


@dataclass(frozen=True)
class Held:
    """What a worker reports for a stream it holds at each renewal."""

    generation: int
    status: dict[str, Any]


def spec_json(spec: StreamSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "platform": spec.platform,
        "content_ref": spec.content_ref,
        "metadata": dict(spec.metadata),
        "reach": spec.reach,
        "realtime": spec.realtime,
    }


class StreamRegistry:
    def __init__(self, db: Database, lease_seconds: float) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)

    def now(self, session: Session) -> datetime:
        if session.get_bind().dialect.name == "postgresql":
            value: datetime = session.execute(select(func.now())).scalar_one()
            return value.astimezone(UTC)
        return datetime.now(UTC)

    # -- serve's side -------------------------------------------------------------------------

    def add(self, spec: StreamSpec, redacted_url: str, actor: str) -> LiveStream:
        with self.db.session() as session:
            row = LiveStream(
                id=secrets.token_hex(6),
                url=spec.url,
                redacted_url=redacted_url,
                spec=spec_json(spec),
                created_by=actor,
                generation=0,
                status={},
            )
            session.add(row)
            session.flush()
            audit.record(
                session,
                actor,
                "stream.watch",
                "stream",
                row.id,
                {"url": redacted_url, "platform": spec.platform, "content_ref": spec.content_ref},
            )
            return row

    def get(self, stream_id: str) -> tuple[LiveStream, datetime]:
        with self.db.session() as session:
            row = session.get(LiveStream, stream_id)
            if row is None:
                raise UnknownStream(stream_id)
            return row, self.now(session)

    def listed(self) -> tuple[list[LiveStream], datetime]:
        """The active streams and the most recently ended, oldest first."""
        with self.db.session() as session:
            active = session.scalars(select(LiveStream).where(LiveStream.ended_at.is_(None))).all()
            ended = session.scalars(
                select(LiveStream)
                .where(LiveStream.ended_at.is_not(None))
                .order_by(LiveStream.ended_at.desc())
                .limit(_KEEP_ENDED)
            ).all()
            rows = sorted([*active, *ended], key=lambda row: row.created_at)
            return rows, self.now(session)

    def request_stop(self, stream_id: str, actor: str) -> None:
        """Ask the holder to stop; a stream no worker holds ends at once."""
        with self.db.session() as session:
            row = session.get(LiveStream, stream_id)
            if row is None:
                raise UnknownStream(stream_id)
            now = self.now(session)
            if row.ended_at is None and row.stop_requested_at is None:
                row.stop_requested_at = now
                if not _held(row, now):
                    # Claims skip streams asked to stop, so nobody else would ever end it.
                    row.ended_at = now
            audit.record(session, actor, "stream.stop", "stream", stream_id, {"stream": stream_id})

    # -- a worker's side ----------------------------------------------------------------------

    def heartbeat(self, worker: str, capacity: int) -> None:
        with self.db.session() as session:
            now = self.now(session)
            row = session.get(LiveWorker, worker)
            if row is None:
                session.add(LiveWorker(id=worker, capacity=capacity, heartbeat_at=now))
            else:
                row.heartbeat_at = now

    def leave(self, worker: str, held: Mapping[str, int]) -> None:
        """A worker shutting down hands its streams back (others claim them at once) and
        stops counting towards the fair share."""
        with self.db.session() as session:
            for stream_id, generation in held.items():
                session.execute(
                    update(LiveStream)
                    .where(*_holder(stream_id, worker, generation))
                    .values(owner=None, lease_until=None)
                )
            worker_row = session.get(LiveWorker, worker)
            if worker_row is not None:
                session.delete(worker_row)

    def renew(self, worker: str, held: Mapping[str, Held]) -> dict[str, bool]:
        """Extend the leases ``worker`` still holds and store their status. For each stream:
        True to keep watching, False when the lease was lost or a stop was asked for."""
        if not held:
            return {}
        with self.db.session() as session:
            now = self.now(session)
            kept: dict[str, bool] = {}
            for stream_id, report in held.items():
                result = session.execute(
                    update(LiveStream)
                    .where(
                        *_holder(stream_id, worker, report.generation),
                        LiveStream.stop_requested_at.is_(None),
                    )
                    .values(lease_until=now + self.lease, status=report.status, status_at=now)
                )
                kept[stream_id] = _changed(result)
            return kept

    def end(self, worker: str, stream_id: str, generation: int, status: dict[str, Any]) -> bool:
        """Record that a held stream ended (it finished, failed, or was asked to stop)."""
        with self.db.session() as session:
            now = self.now(session)
            result = session.execute(
                update(LiveStream)
                .where(*_holder(stream_id, worker, generation))
                .values(status=status, status_at=now, ended_at=now, lease_until=None)
            )
            return _changed(result)

    def fence(self, stream_id: str, worker: str, generation: int) -> Callable[[Session], None]:
        """A check for the start of each transaction a holder's session writes in: it locks
        the stream's row (a claim waits until the write commits) and raises
        :class:`LeaseLost` when the lease is no longer the holder's, so the write rolls back."""

        def check(session: Session) -> None:
            row = session.scalars(
                select(LiveStream).where(LiveStream.id == stream_id).with_for_update()
            ).one_or_none()
            now = self.now(session)
            if (
                row is None
                or row.owner != worker
                or row.generation != generation
                or not _held(row, now)
            ):
                raise LeaseLost(f"stream {stream_id} is no longer held by {worker}")

        return check

    def claim(self, worker: str, capacity: int) -> list[Claim]:
        """Take free streams (new, or whose holder's lease ran out) up to ``worker``'s fair
        share, oldest first."""
        with self.db.session() as session:
            now = self.now(session)
            want = self._share(session, worker, capacity, now)
            if want <= 0:
                return []
            free = session.scalars(
                select(LiveStream)
                .where(
                    LiveStream.ended_at.is_(None),
                    LiveStream.stop_requested_at.is_(None),
                    or_(LiveStream.owner.is_(None), LiveStream.lease_until < now),
                )
                .order_by(LiveStream.created_at)
                .limit(want)
                .with_for_update(skip_locked=True)
            ).all()
            claims = []
            for row in free:
                previous = row.owner
                result = session.execute(
                    update(LiveStream)
                    .where(LiveStream.id == row.id, LiveStream.generation == row.generation)
                    .values(
                        owner=worker, generation=row.generation + 1, lease_until=now + self.lease
                    )
                    .execution_options(synchronize_session=False)
                )
                if not _changed(result):
                    continue  # another worker took it first
                claims.append(
                    Claim(
                        row.id,
                        StreamSpec(url=row.url, **row.spec),
                        row.generation + 1,
                        list(row.status.get("incidents", [])),
                    )
                )
                audit.record(
                    session,
                    WORKER_ACTOR,
                    "stream.claim",
                    "stream",
                    row.id,
                    {"worker": worker, "generation": row.generation + 1, "previous": previous},
                )
            return claims

    def _share(self, session: Session, worker: str, capacity: int, now: datetime) -> int:
        fresh = now - self.lease
        workers = session.scalar(
            select(func.count()).select_from(LiveWorker).where(LiveWorker.heartbeat_at > fresh)
        )
        active = session.scalar(
            select(func.count())
            .select_from(LiveStream)
            .where(LiveStream.ended_at.is_(None), LiveStream.stop_requested_at.is_(None))
        )
        mine = session.scalar(
            select(func.count())
            .select_from(LiveStream)
            .where(
                LiveStream.owner == worker,
                LiveStream.lease_until >= now,
                LiveStream.ended_at.is_(None),
            )
        )
        share = math.ceil((active or 0) / max(1, workers or 0))
        return min(capacity, share) - (mine or 0)


def _holder(stream_id: str, worker: str, generation: int) -> tuple[Any, ...]:
    return (
        LiveStream.id == stream_id,
        LiveStream.owner == worker,
        LiveStream.generation == generation,
        LiveStream.ended_at.is_(None),
    )


def _changed(result: Any) -> bool:
    return bool(result.rowcount)


def _held(row: LiveStream, now: datetime) -> bool:
    return row.owner is not None and row.lease_until is not None and row.lease_until >= now


def state_of(row: LiveStream, now: datetime) -> State:
    if row.ended_at is not None:
        return "ended"
    if row.stop_requested_at is not None:
        return "stopping"
    return "running" if _held(row, now) else "waiting"


def row_status(row: LiveStream, now: datetime, trace_seconds: float = 0.0) -> dict[str, Any]:
    """A stream's status as its holder last reported it, in the shape of
    :func:`vigil.live.control.local_status`."""
    reported = dict(row.status)
    trace = reported.pop("trace", None) or []
    state = state_of(row, now)
    status: dict[str, Any] = {
        "running": False,
        "ingest": {},
        "t": 0.0,
        "lag_seconds": 0.0,
        "samples": 0,
        "level": "normal",
        "cusum": 0.0,
        "evidence": {},
        "source_errors": {},
        "incidents": [],
        "error": None,
        **reported,
        "id": row.id,
        "name": row.spec.get("name", ""),
        "url": row.redacted_url,
        "platform": row.spec.get("platform", ""),
        "content_ref": row.spec.get("content_ref", ""),
        "state": state,
        "worker": row.owner if state in ("running", "stopping") else None,
    }
    status["running"] = state in ("running", "stopping") and bool(reported.get("running"))
    if trace_seconds > 0:
        since = (trace[-1]["t"] - trace_seconds) if trace else 0.0
        status["trace"] = [window for window in trace if window["t"] >= since]
    return status


class LeasedStreams:
    """serve's side with ``VIGIL_LIVE_WORKERS``: requests recorded for the live workers,
    statuses as they report them (a renewal interval behind at most)."""

    def __init__(self, db: Database, settings: LiveSettings) -> None:
        self.settings = settings
        self.registry = StreamRegistry(db, settings.live_lease_seconds)

    @property
    def fusion(self) -> FusionConfig:
        return self.settings.fusion()

    def watch(self, spec: StreamSpec, *, actor: str = ACTOR) -> dict[str, Any]:
        # Checked here so a refused URL fails the request; the worker checks again before it
        # connects (DNS may have moved).
        target = stream_url_policy(self.settings).check(spec.url)
        row = self.registry.add(spec, target.redacted, actor)
        return row_status(row, row.created_at)

    def statuses(self, *, trace_seconds: float = 0.0) -> list[dict[str, Any]]:
        rows, now = self.registry.listed()
        return [row_status(row, now, trace_seconds) for row in rows]

    def status(self, stream_id: str, *, trace_seconds: float = 0.0) -> dict[str, Any]:
        row, now = self.registry.get(stream_id)
        return row_status(row, now, trace_seconds)

    def stop(self, stream_id: str, *, actor: str = ACTOR) -> dict[str, Any]:
        self.registry.request_stop(stream_id, actor)
        return self.status(stream_id)

    def close(self) -> None:
        """Nothing runs here: the workers hold the streams."""
