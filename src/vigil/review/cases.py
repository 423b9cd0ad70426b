"""Cases: alerts about one incident or campaign, worked together. Every change is audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil import audit
from vigil.accounts import Principal
from vigil.review.alerts import updated_rows
from vigil.review.errors import NotFound
from vigil.store.models import Alert, ReviewCase

CaseKind = Literal["incident", "campaign"]
CaseStatus = Literal["open", "closed"]


@dataclass(frozen=True)
class CaseChange:
    """Fields to change; None leaves a field as it is."""

    title: str | None = None
    description: str | None = None
    kind: CaseKind | None = None
    status: CaseStatus | None = None

    def fields(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if value is not None}


def create_case(
    session: Session,
    principal: Principal,
    title: str,
    description: str = "",
    kind: CaseKind = "incident",
) -> ReviewCase:
    case = ReviewCase(
        title=title,
        description=description,
        kind=kind,
        status="open",
        created_by=principal.user_id,
    )
    session.add(case)
    session.flush()
    audit.record(session, principal.actor, "case.create", "case", case.id, {"title": title})
    return case


def get_case(session: Session, case_id: int) -> ReviewCase:
    case = session.get(ReviewCase, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def list_cases(session: Session, status: CaseStatus | None = None) -> list[ReviewCase]:
    query = select(ReviewCase).order_by(ReviewCase.id.desc())
    if status is not None:
        query = query.where(ReviewCase.status == status)
    return list(session.scalars(query))


def case_alert_ids(session: Session, case_id: int) -> list[int]:
    return list(
        session.scalars(select(Alert.id).where(Alert.case_id == case_id).order_by(Alert.id))
    )


def update_case(
    session: Session, principal: Principal, case_id: int, change: CaseChange
) -> ReviewCase:
    case = get_case(session, case_id)
    fields = change.fields()
    for name, value in fields.items():
        setattr(case, name, value)
    session.flush()
    audit.record(session, principal.actor, "case.update", "case", case_id, fields)
    return case


def delete_case(session: Session, principal: Principal, case_id: int) -> None:
    """Delete a case; its alerts stay, ungrouped."""
    case = get_case(session, case_id)
    alert_ids = case_alert_ids(session, case_id)
    # Done here rather than left to ON DELETE SET NULL so the ORM's loaded alerts agree.
    session.execute(update(Alert).where(Alert.case_id == case_id).values(case_id=None))
    session.delete(case)
    audit.record(session, principal.actor, "case.delete", "case", case_id, {"alert_ids": alert_ids})


def add_alerts(
    session: Session, principal: Principal, case_id: int, alert_ids: Sequence[int]
) -> list[int]:
    """Group ``alert_ids`` under the case (moving them from any other); returns all its alerts."""
    get_case(session, case_id)
    wanted = set(alert_ids)
    found = set(session.scalars(select(Alert.id).where(Alert.id.in_(wanted))))
    if missing := sorted(wanted - found):
        raise NotFound(f"no alert(s) {', '.join(map(str, missing))}")
    session.execute(update(Alert).where(Alert.id.in_(wanted)).values(case_id=case_id))
    audit.record(
        session, principal.actor, "case.add_alerts", "case", case_id, {"alert_ids": sorted(wanted)}
    )
    return case_alert_ids(session, case_id)


def remove_alert(session: Session, principal: Principal, case_id: int, alert_id: int) -> None:
    result = session.execute(
        update(Alert).where(Alert.id == alert_id, Alert.case_id == case_id).values(case_id=None)
    )
    if updated_rows(result) != 1:
        raise NotFound(f"alert {alert_id} is not in case {case_id}")
    audit.record(
        session, principal.actor, "case.remove_alert", "case", case_id, {"alert_id": alert_id}
    )
