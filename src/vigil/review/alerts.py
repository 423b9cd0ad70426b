"""Alerts: one model for every detector (hash match, live stream, text, faces, public report).

Every function takes the caller's SQLAlchemy session and writes inside its transaction, so an
alert, its audit line and any action it causes commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import CursorResult, Select, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vigil import audit
from vigil.review.errors import NotFound
from vigil.review.priority import PriorityWeights, current_priority, queue_key
from vigil.store.models import Alert, utcnow

Source = Literal["hashing", "live", "text", "faces", "report", "accounts"]
ContentKind = Literal["image", "video", "stream", "text", "account"]
#: open and escalated alerts are in the queue; awaiting_approval waits for a second person;
#: auto_actioned records a bank's automatic action that nobody was asked to review.
Status = Literal[
    "open", "escalated", "awaiting_approval", "confirmed", "dismissed", "referred", "auto_actioned"
]
QUEUE_STATUSES: tuple[Status, ...] = ("open", "escalated")


@dataclass(frozen=True)
class NewAlert:
    dedupe_key: str
    source: Source
    content_kind: ContentKind
    content_ref: str = ""
    platform: str = ""
    author_ref: str = ""
    url: str = ""
    text: str = ""
    signals: list[Any] = field(default_factory=list)
    matches: list[Any] = field(default_factory=list)
    evidence: list[Any] = field(default_factory=list)
    explanation: str = ""
    score: float = 0.0
    severity: int = 5
    likelihood: float = 0.5
    reach: int = 0
    #: How fast the content spreads (posts per hour of a campaign); 0 for a single item.
    velocity: float = 0.0
    #: When the content was posted or seen; defaults to now. Recency decays from here.
    occurred_at: datetime | None = None
    status: Status = "open"


def create_alert(
    session: Session, new: NewAlert, *, weights: PriorityWeights, actor: str
) -> tuple[Alert, bool]:
    """The alert for ``new.dedupe_key``, made now (True) or found from an earlier delivery
    (False). Safe against concurrent deliveries of the same key."""
    now = utcnow()
    # A clock running ahead at the detector must not put its alerts above everything else.
    occurred_at = min(new.occurred_at or now, now)
    values = {
        **{name: getattr(new, name) for name in NewAlert.__dataclass_fields__},
        "occurred_at": occurred_at,
        "priority": queue_key(
            weights, new.severity, new.likelihood, new.reach, occurred_at, new.velocity
        ),
        "created_at": now,
        "updated_at": now,
    }
    alert_id = session.scalar(_insert_unless_known(session, values))
    if alert_id is None:
        return _by_dedupe_key(session, new.dedupe_key), False
    alert = session.get_one(Alert, alert_id)
    audit.record(
        session,
        actor,
        "alert.create",
        "alert",
        alert.id,
        {"source": new.source, "dedupe_key": new.dedupe_key, "status": new.status},
    )
    return alert, True


def _insert_unless_known(session: Session, values: dict[str, Any]) -> Any:
    # ON CONFLICT DO NOTHING rather than catching the unique violation: a savepoint around the
    # insert is unreliable on pysqlite, and the caller's transaction must stay usable.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(Alert)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Alert.dedupe_key])
        .returning(Alert.id)
    )


def _by_dedupe_key(session: Session, key: str) -> Alert:
    return session.scalars(select(Alert).where(Alert.dedupe_key == key)).one()


@dataclass(frozen=True)
class DetectionUpdate:
    """More of an ongoing detection (a live stream that got worse, a clip cut after the alert, a
    campaign that grew): severity, likelihood and reach only rise, velocity is the latest
    measure, evidence is appended."""

    severity: int | None = None
    likelihood: float | None = None
    score: float | None = None
    reach: int | None = None
    velocity: float | None = None
    explanation: str | None = None
    evidence: list[Any] = field(default_factory=list)
    #: Put an open alert back in front as escalated.
    escalate: bool = False


def update_detection(
    session: Session,
    alert_id: int,
    update: DetectionUpdate,
    *,
    weights: PriorityWeights,
    actor: str,
) -> Alert:
    """Apply ``update`` to a detector's own alert, re-key its priority, and audit it."""
    alert = get_alert(session, alert_id, for_update=True)
    if update.severity is not None:
        alert.severity = max(alert.severity, update.severity)
    if update.likelihood is not None:
        alert.likelihood = max(alert.likelihood, update.likelihood)
    if update.score is not None:
        alert.score = max(alert.score, update.score)
    if update.reach is not None:
        alert.reach = max(alert.reach, update.reach)
    if update.velocity is not None:
        alert.velocity = update.velocity
    if update.explanation is not None:
        alert.explanation = update.explanation
    if update.evidence:
        alert.evidence = [*alert.evidence, *update.evidence]
    if update.escalate and alert.status == "open":
        alert.status = "escalated"
    alert.priority = _queue_key(weights, alert)
    audit.record(
        session,
        actor,
        "alert.update",
        "alert",
        alert.id,
        {
            "severity": alert.severity,
            "status": alert.status,
            "evidence_added": len(update.evidence),
        },
    )
    return alert


def updated_rows(result: object) -> int:
    """Rows a conditional UPDATE changed: how claims and decisions know they won."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def get_alert(session: Session, alert_id: int, *, for_update: bool = False) -> Alert:
    query = select(Alert).where(Alert.id == alert_id)
    alert = session.scalar(query.with_for_update() if for_update else query)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    return alert


@dataclass(frozen=True)
class AlertFilter:
    statuses: Sequence[str] = ()
    source: str | None = None
    content_kind: str | None = None
    platform: str | None = None
    case_id: int | None = None
    min_severity: int | None = None
    #: Only alerts this user may claim now: unclaimed, claim lapsed, or claimed by them.
    available_to: int | None = None
    limit: int = 50
    offset: int = 0


def claimable_by(user_id: int, now: datetime) -> Any:
    """The SQL condition under which ``user_id`` may take an alert (claim or decide it)."""
    return or_(
        Alert.claimed_by.is_(None), Alert.claimed_by == user_id, Alert.claim_expires_at <= now
    )


def alert_query(where: AlertFilter) -> Select[Alert]:
    """Alerts matching ``where``, highest priority first (see vigil.review.priority)."""
    query = select(Alert)
    if where.statuses:
        query = query.where(Alert.status.in_(list(where.statuses)))
    for column, value in (
        (Alert.source, where.source),
        (Alert.content_kind, where.content_kind),
        (Alert.platform, where.platform),
        (Alert.case_id, where.case_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.min_severity is not None:
        query = query.where(Alert.severity >= where.min_severity)
    if where.available_to is not None:
        query = query.where(claimable_by(where.available_to, utcnow()))
    # Ties (same key) go oldest alert first.
    return query.order_by(Alert.priority.desc(), Alert.id).limit(where.limit).offset(where.offset)


def list_alerts(session: Session, where: AlertFilter) -> list[Alert]:
    return list(session.scalars(alert_query(where)))


def view_alert(session: Session, alert_id: int, *, actor: str, evidence: bool) -> Alert:
    """One alert for a person to look at; a view that shows evidence is audited."""
    alert = get_alert(session, alert_id)
    if evidence:
        audit.record(session, actor, "alert.view", "alert", alert.id, {"evidence": True})
    return alert


def alert_json(
    alert: Alert, weights: PriorityWeights, now: datetime, *, evidence: bool
) -> dict[str, Any]:
    """An alert as the API and CLI show it; evidence only when ``evidence`` (the caller checked
    the permission and audited the view)."""
    claimed = alert.claimed_by is not None and (
        alert.claim_expires_at is None or alert.claim_expires_at > now
    )
    body: dict[str, Any] = {
        column.name: getattr(alert, column.name) for column in Alert.__table__.columns
    }
    body.update(
        # An alert is never younger than zero: a reader's clock behind the writer's is not news.
        priority=current_priority(weights, alert.priority, max(now, alert.occurred_at)),
        claimed_by=alert.claimed_by if claimed else None,
        claim_expires_at=alert.claim_expires_at if claimed else None,
        evidence_redacted=not evidence,
    )
    if not evidence:
        body.update(text="", evidence=[], matches=[_without_media(m) for m in alert.matches])
    return body


def _without_media(match: Any) -> Any:
    # A bank entry's content_ref points at known terrorist media: evidence, like the alert's own.
    if isinstance(match, dict):
        return {key: value for key, value in match.items() if key != "content_ref"}
    return match


def content_payload(alert: Alert) -> dict[str, Any]:
    """What an action's receiver needs to find the content: the part of every payload that
    comes from the alert."""
    return {
        "alert_id": alert.id,
        "content_kind": alert.content_kind,
        "content_ref": alert.content_ref,
        "platform": alert.platform,
        "author_ref": alert.author_ref,
        "url": alert.url,
        "severity": alert.severity,
    }


def recompute_priorities(session: Session, weights: PriorityWeights) -> int:
    """Rewrite every alert's key after the weights or the half-life changed (a decided alert
    may come back to the queue when its decision is rejected)."""
    alerts = list(session.scalars(select(Alert)))
    for alert in alerts:
        alert.priority = _queue_key(weights, alert)
    return len(alerts)


def _queue_key(weights: PriorityWeights, alert: Alert) -> float:
    return queue_key(
        weights, alert.severity, alert.likelihood, alert.reach, alert.occurred_at, alert.velocity
    )
