"""The append-only, hash-chained audit log.

Each event's ``hash`` is SHA-256 over the previous event's hash and a canonical JSON of the
event's own fields, so changing, inserting or deleting a row breaks the chain at that row.
Anyone who can write the table can still forge a consistent *tail* (there is no secret key);
copying ``verify``'s last hash somewhere else (a ticket, a log shipper) pins the chain up to it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Literal

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from vigil.store import Database
from vigil.store.models import AuditEvent

GENESIS = "0" * 64
# An arbitrary constant: the advisory lock that serialises appends on PostgreSQL.
_APPEND_LOCK = 0x76696731
_BATCH = 1000

Problem = Literal["changed", "inserted", "deleted"]


def _canonical(event: AuditEvent) -> str:
    fields = {
        "id": event.id,
        "at": event.at.astimezone(UTC).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "detail": event.detail,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256((event.prev_hash + _canonical(event)).encode()).hexdigest()


def _lock_appends(session: Session) -> None:
    """Hold the append lock until the caller's transaction ends, so that two appends cannot both
    chain to the same predecessor."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    else:
        # SQLite has one writer at a time: a write that changes nothing still takes the lock
        # (and starts the transaction) before the last hash is read.
        session.execute(update(AuditEvent).where(AuditEvent.id == -1).values(actor=""))


def record(
    session: Session,
    actor: str,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event inside the caller's transaction: it commits or rolls back with the change
    it records. ``detail`` must never hold a secret (a password, a token)."""
    _lock_appends(session)
    last = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    event = AuditEvent(
        # Microseconds are what both backends keep: the hash must survive the round trip.
        at=datetime.now(UTC),
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail or {},
        prev_hash=last or GENESIS,
        # The id, which the hash covers, comes from the database: a unique placeholder first.
        hash="pending-" + secrets.token_hex(16),
    )
    session.add(event)
    session.flush()
    event.hash = event_hash(event)
    session.flush()
    return event


def evidence_viewed(
    session: Session, actor: str, object_type: str, object_id: str | int, **detail: Any
) -> AuditEvent:
    """Record that ``actor`` looked at sensitive evidence (media, a keyframe, a face match)."""
    return record(session, actor, "evidence.view", object_type, object_id, detail)


def searched(session: Session, actor: str, scope: str, **detail: Any) -> AuditEvent:
    """Record a search (of alerts, cases, faces...); put the criteria in ``detail``."""
    return record(session, actor, "search", scope, "", detail)


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    last_hash: str
    problem: Problem | None = None
    event_id: int | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None


def _events(session: Session) -> Iterator[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=_BATCH)
    yield from session.scalars(query)


def _id_of_hash(session: Session, digest: str) -> int | None:
    if digest == GENESIS:
        return 0
    return session.scalar(select(AuditEvent.id).where(AuditEvent.hash == digest))


def _next_after(session: Session, event_id: int) -> AuditEvent | None:
    query = select(AuditEvent).where(AuditEvent.id > event_id).order_by(AuditEvent.id).limit(1)
    return session.scalar(query)


def _chain_break(
    session: Session, previous: AuditEvent | None, event: AuditEvent, checked: int
) -> VerifyReport:
    """Why ``event`` does not chain to ``previous`` (whose own hash and link are fine)."""
    previous_hash = previous.hash if previous else GENESIS
    anchor = _id_of_hash(session, event.prev_hash)
    if anchor is not None and anchor < event.id:
        # It chains to an earlier row: whatever lies between that row and it was slipped in.
        first = _next_after(session, anchor)
        assert first is not None  # ``event`` itself lies after the anchor
        return VerifyReport(
            checked,
            previous_hash,
            "inserted",
            first.id,
            f"event #{first.id} was inserted: event #{event.id} chains to "
            f"{'the start' if anchor == 0 else f'event #{anchor}'}",
        )
    following = _next_after(session, event.id)
    if following is not None and following.prev_hash == previous_hash:
        return VerifyReport(
            checked,
            previous_hash,
            "inserted",
            event.id,
            f"event #{event.id} was inserted: event #{following.id} chains past it",
        )
    after = f"event #{previous.id}" if previous else "the start"
    return VerifyReport(
        checked,
        previous_hash,
        "deleted",
        event.id,
        f"events between {after} and event #{event.id} were deleted (or #{event.id}'s "
        "predecessor was replaced): its prev_hash matches no event",
    )


def verify(db: Database) -> VerifyReport:
    """Walk the chain in id order; report the first changed, inserted or deleted event."""
    previous: AuditEvent | None = None
    checked = 0
    with db.session() as session:
        for event in _events(session):
            if event_hash(event) != event.hash:
                return VerifyReport(
                    checked,
                    previous.hash if previous else GENESIS,
                    "changed",
                    event.id,
                    f"event #{event.id} was changed: its hash does not match its contents",
                )
            if event.prev_hash != (previous.hash if previous else GENESIS):
                return _chain_break(session, previous, event, checked)
            previous = event
            checked += 1
    return VerifyReport(checked, previous.hash if previous else GENESIS)


def as_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.astimezone(UTC).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def export_jsonl(db: Database, out: IO[str]) -> int:
    """Write every event, oldest first, one JSON object a line; returns how many."""
    count = 0
    with db.session() as session:
        for event in _events(session):
            out.write(json.dumps(as_json(event), ensure_ascii=False) + "\n")
            count += 1
    return count
