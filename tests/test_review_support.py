"""People and alerts for the review tests: real rows in the test database.

Imported by the other test_review* modules; it holds no tests itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from vigil.accounts import Principal, Role
from vigil.review import NewAlert, PriorityWeights, create_alert
from vigil.store import Database
from vigil.store.models import Action, AuditEvent, UserAccount, Webhook

WEIGHTS = PriorityWeights()


def person(db: Database, username: str, *roles: Role) -> Principal:
    with db.session() as session:
        user = UserAccount(username=username, roles=list(roles), disabled=False)
        session.add(user)
        session.flush()
        return Principal(user.id, username, frozenset(roles))


def new_alert(key: str, **fields: Any) -> NewAlert:
    return NewAlert(dedupe_key=key, **{"source": "text", "content_kind": "text", **fields})


def make_alert(db: Database, key: str, **fields: Any) -> int:
    with db.session() as session:
        alert, _ = create_alert(session, new_alert(key, **fields), weights=WEIGHTS, actor="t")
        return alert.id


def at(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def audit_actions(db: Database, object_type: str, object_id: int) -> list[str]:
    """The audit log's actions on one object, in order."""
    with db.session() as session:
        query = (
            select(AuditEvent.action)
            .where(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id))
            .order_by(AuditEvent.id)
        )
        return list(session.scalars(query))


def actions_of(db: Database, alert_id: int) -> list[tuple[str, str, bool]]:
    """(kind, status, automatic) of an alert's outbox rows."""
    with db.session() as session:
        rows = session.scalars(
            select(Action).where(Action.alert_id == alert_id).order_by(Action.id)
        )
        return [(a.kind, a.status, a.automatic) for a in rows]


def receiver(db: Database, kinds: Sequence[str]) -> None:
    """A webhook subscribed to ``kinds``, so released actions become due rather than dead."""
    with db.session() as session:
        number = session.scalar(select(func.count()).select_from(Webhook)) or 0
        session.add(
            Webhook(
                name=f"receiver-{number}",
                url="https://takedown.example/hook",
                secret="s" * 32,
                kinds=list(kinds),
                enabled=True,
            )
        )
