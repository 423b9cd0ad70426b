"""Decisions on alerts, and four-eyes approval of those that concern a person.

A decision is ``confirm``, ``dismiss``, ``escalate`` or ``refer`` (to the police), always with a
reason. Its actions (takedown, referral ...) are written to the outbox in the same transaction.
A referral, and any decision on a face-search alert or an account, needs a second person's
approval: its actions wait as ``awaiting_approval`` until a different user with
``decision:approve`` approves (they are released) or rejects (they are cancelled, and the alert
goes back to the queue).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import update
from sqlalchemy.orm import Session

from vigil import actions, audit
from vigil.accounts import Principal
from vigil.actions.kinds import KINDS, ActionKind
from vigil.review.alerts import (
    QUEUE_STATUSES,
    Status,
    claimable_by,
    content_payload,
    get_alert,
    updated_rows,
)
from vigil.review.claims import person, unavailable
from vigil.review.errors import Conflict, NotAllowed, NotFound, ReviewError
from vigil.store.models import Alert, Decision, utcnow

Outcome = Literal["confirm", "dismiss", "escalate", "refer"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

_STATUS_AFTER: dict[str, Status] = {
    "confirm": "confirmed",
    "dismiss": "dismissed",
    "escalate": "escalated",
    "refer": "referred",
}
#: Actions each outcome may carry. Dismissing or escalating acts on nothing.
_ALLOWED: dict[Outcome, frozenset[str]] = {
    "confirm": frozenset(KINDS) - {"police_referral"},
    "refer": frozenset(KINDS),
    "dismiss": frozenset(),
    "escalate": frozenset(),
}


def needs_second_person(alert: Alert, outcome: Outcome) -> bool:
    """Four-eyes: decisions that concern a person (a referral names a suspect; a face match or
    an account is a person)."""
    return outcome == "refer" or alert.source == "faces" or alert.content_kind == "account"


def default_actions(alert: Alert, outcome: Outcome) -> tuple[ActionKind, ...]:
    if outcome == "refer":
        return ("police_referral",)
    if outcome == "confirm":
        return ("stream_cut",) if alert.content_kind == "stream" else ("takedown",)
    return ()


def _checked_actions(
    alert: Alert, outcome: Outcome, requested: Sequence[ActionKind] | None
) -> list[ActionKind]:
    kinds = list(dict.fromkeys(default_actions(alert, outcome) if requested is None else requested))
    refused = [kind for kind in kinds if kind not in _ALLOWED[outcome]]
    if refused:
        raise ReviewError(f"a {outcome} decision cannot carry {', '.join(refused)}")
    if outcome == "refer" and "police_referral" not in kinds:
        kinds.insert(0, "police_referral")  # a referral that refers nothing is not one
    return kinds


def decide(
    session: Session,
    principal: Principal,
    alert_id: int,
    outcome: Outcome,
    reason: str,
    requested_actions: Sequence[ActionKind] | None = None,
    bank: str | None = None,
) -> Decision:
    """Decide an alert in the queue that the caller holds or that nobody holds. ``bank`` names
    the bank for an ``add_to_bank`` action."""
    user_id = person(principal)
    if not reason.strip():
        raise ReviewError("a decision needs a reason")
    alert = get_alert(session, alert_id)
    kinds = _checked_actions(alert, outcome, requested_actions)
    pending = needs_second_person(alert, outcome)
    _take(session, alert_id, user_id, "awaiting_approval" if pending else _STATUS_AFTER[outcome])
    decision = Decision(
        alert_id=alert_id,
        user_id=user_id,
        outcome=outcome,
        reason=reason.strip(),
        approval_status="pending" if pending else "not_required",
    )
    session.add(decision)
    session.flush()
    for kind in kinds:
        actions.enqueue(
            session,
            kind,
            alert_id=alert_id,
            decision_id=decision.id,
            payload=_payload(alert, decision, bank),
            awaiting_approval=pending,
        )
    audit.record(
        session,
        principal.actor,
        "decision.create",
        "decision",
        decision.id,
        {
            "alert_id": alert_id,
            "outcome": outcome,
            "approval": decision.approval_status,
            "actions": list(kinds),
        },
    )
    return decision


def _take(session: Session, alert_id: int, user_id: int, status: Status) -> None:
    """Move the alert out of the queue, atomically with the check that nobody else holds it:
    two reviewers deciding at once cannot both succeed."""
    result = session.execute(
        update(Alert)
        .where(
            Alert.id == alert_id,
            Alert.status.in_(QUEUE_STATUSES),
            claimable_by(user_id, utcnow()),
        )
        .values(status=status, claimed_by=None, claim_expires_at=None)
    )
    if updated_rows(result) != 1:
        raise unavailable(session, alert_id, user_id)


def _payload(alert: Alert, decision: Decision, bank: str | None) -> dict[str, Any]:
    """Where the content is and what was decided. A referral's evidence package is added by
    vigil.actions when it is cleared to leave."""
    payload = {**content_payload(alert), "decision_id": decision.id, "outcome": decision.outcome}
    if bank is not None:
        payload["bank"] = bank  # where add_to_bank puts the confirmed content
    return payload


def approve(session: Session, principal: Principal, decision_id: int) -> Decision:
    """A second person approves: the decision's actions are released to the outbox."""
    decision = _settle(session, principal, decision_id, "approved")
    actions.release(session, decision_id)
    _set_status(session, decision.alert_id, _STATUS_AFTER[decision.outcome])
    audit.record(
        session,
        principal.actor,
        "decision.approve",
        "decision",
        decision_id,
        {"alert_id": decision.alert_id, "decided_by": decision.user_id},
    )
    return decision


def reject(session: Session, principal: Principal, decision_id: int, reason: str) -> Decision:
    """A second person rejects: the actions are cancelled and the alert is queued again."""
    if not reason.strip():
        raise ReviewError("a rejection needs a reason")
    decision = _settle(session, principal, decision_id, "rejected")
    actions.cancel(session, decision_id)
    _set_status(session, decision.alert_id, "open")
    audit.record(
        session,
        principal.actor,
        "decision.reject",
        "decision",
        decision_id,
        {"alert_id": decision.alert_id, "decided_by": decision.user_id, "reason": reason},
    )
    return decision


def _settle(
    session: Session,
    principal: Principal,
    decision_id: int,
    status: Literal["approved", "rejected"],
) -> Decision:
    """Record the second person's verdict on a pending decision, once, and never by the person
    who made it. ``approved_by``/``approved_at`` hold whoever settled it, either way."""
    user_id = person(principal)
    now: datetime = utcnow()
    result = session.execute(
        update(Decision)
        .where(
            Decision.id == decision_id,
            Decision.approval_status == "pending",
            Decision.user_id != user_id,
        )
        .values(approval_status=status, approved_by=user_id, approved_at=now)
    )
    decision = session.get(Decision, decision_id)
    if decision is None:
        raise NotFound(f"no decision {decision_id}")
    if updated_rows(result) == 1:
        session.refresh(decision)
        return decision
    if decision.approval_status != "pending":
        raise Conflict(f"decision {decision_id} is {decision.approval_status}, not pending")
    raise NotAllowed("four-eyes: a decision must be approved by someone other than its maker")


def _set_status(session: Session, alert_id: int, status: Status) -> None:
    get_alert(session, alert_id).status = status
