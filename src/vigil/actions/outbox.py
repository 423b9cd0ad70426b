"""The outbox: actions are rows committed in the caller's transaction (with the decision that
caused them), so an action exists if and only if its decision does. Delivery happens later, in
:mod:`vigil.actions.delivery`.

Routing: an action for another system gets one row per enabled webhook subscribed to its kind,
each with its own idempotency key. With no such webhook the row goes dead at once ("no
receiver"), visible in the console, and ``retry`` routes it again once a webhook exists.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from vigil import audit
from vigil.actions.evidence import evidence_package
from vigil.actions.kinds import KINDS, LOCAL_KINDS, ActionStatus
from vigil.store.models import Action, ActionAttempt, Alert, Bank, Decision, Webhook, utcnow

#: Set after a commit that made actions due, so a worker in this process starts at once instead
#: of at its next poll. Workers in other processes find the rows by polling.
work_available = threading.Event()

NO_RECEIVER = "no enabled webhook takes {kind!r} actions"
#: Where an action may be cancelled from: not once delivered, dead letters included.
_CANCELLABLE: tuple[ActionStatus, ...] = ("awaiting_approval", "pending", "in_flight", "dead")


class ActionError(ValueError):
    """An action that cannot be queued or changed as asked."""


class ActionNotFound(ActionError):
    pass


def _wake_after_commit(session: Session) -> None:
    event.listen(session, "after_commit", lambda _session: work_available.set(), once=True)


def _subscribers(session: Session, kind: str) -> list[Webhook]:
    # Filtered here, not in SQL: JSON containment differs by backend and webhooks are few.
    enabled = session.scalars(select(Webhook).where(Webhook.enabled).order_by(Webhook.id))
    return [webhook for webhook in enabled if kind in webhook.kinds]


def _copy(action: Action, webhook_id: int) -> Action:
    return Action(
        kind=action.kind,
        idempotency_key=str(uuid.uuid4()),
        alert_id=action.alert_id,
        decision_id=action.decision_id,
        webhook_id=webhook_id,
        payload=action.payload,
        status=action.status,
        automatic=action.automatic,
        attempts=0,
        next_attempt_at=action.next_attempt_at,
        last_error="",
    )


def _route(session: Session, action: Action) -> list[Action]:
    """Give an unrouted webhook action its receivers: the first takes this row, each further
    one a copy. A local action, or one with no receiver, stays as it is."""
    if action.kind in LOCAL_KINDS or action.webhook_id is not None:
        return [action]
    webhooks = _subscribers(session, action.kind)
    if not webhooks:
        if action.status == "pending":
            action.status = "dead"
            action.last_error = NO_RECEIVER.format(kind=action.kind)
        return [action]
    action.webhook_id = webhooks[0].id
    action.last_error = ""
    copies = [_copy(action, webhook.id) for webhook in webhooks[1:]]
    session.add_all(copies)
    return [action, *copies]


def _checked_payload(
    session: Session, kind: str, alert_id: int | None, payload: dict[str, Any]
) -> dict[str, Any]:
    if kind not in KINDS:
        raise ActionError(f"unknown action kind {kind!r} (kinds: {', '.join(KINDS)})")
    if kind == "add_to_bank":
        bank = payload.get("bank")
        known = isinstance(bank, str) and session.scalar(select(Bank.id).where(Bank.name == bank))
        if not known:
            raise ActionError(f"add_to_bank: no bank named {bank!r} (payload['bank'])")
        if alert_id is None:
            raise ActionError("add_to_bank needs the alert whose signals it banks")
    return dict(payload)


def _with_evidence(session: Session, action: Action) -> None:
    """A police referral carries the evidence package as of the moment it is cleared to leave,
    so the approver is in it; retries then send the same package."""
    if action.kind != "police_referral":
        return
    alert = session.get(Alert, action.alert_id) if action.alert_id is not None else None
    decision = session.get(Decision, action.decision_id) if action.decision_id is not None else None
    if alert is None or decision is None:
        raise ActionError("a police referral needs its alert and decision")
    action.payload = {
        **action.payload,
        "evidence_package": evidence_package(session, alert, decision),
    }


def enqueue(
    session: Session,
    kind: str,
    *,
    alert_id: int | None,
    decision_id: int | None,
    payload: dict[str, Any],
    automatic: bool = False,
    awaiting_approval: bool = False,
) -> list[Action]:
    """Queue ``kind`` in the caller's transaction; returns its rows (one per receiver). Nothing
    leaves vigil until the caller commits, nor while ``awaiting_approval`` (see
    :func:`release`)."""
    action = Action(
        kind=kind,
        idempotency_key=str(uuid.uuid4()),
        alert_id=alert_id,
        decision_id=decision_id,
        webhook_id=None,
        payload=_checked_payload(session, kind, alert_id, payload),
        status="awaiting_approval" if awaiting_approval else "pending",
        automatic=automatic,
        attempts=0,
        next_attempt_at=utcnow(),
        last_error="",
    )
    if not awaiting_approval:
        _with_evidence(session, action)
    session.add(action)
    actions = _route(session, action)
    session.flush()
    _wake_after_commit(session)
    return actions


def release(session: Session, decision_id: int) -> list[Action]:
    """A second person approved the decision: its held actions become due."""
    held = session.scalars(
        select(Action)
        .where(Action.decision_id == decision_id, Action.status == "awaiting_approval")
        .order_by(Action.id)
    ).all()
    released: list[Action] = []
    now = utcnow()
    for action in held:
        action.status = "pending"
        action.next_attempt_at = now
        _with_evidence(session, action)
        released.extend(_route(session, action))
    session.flush()
    _wake_after_commit(session)
    return released


def cancel(session: Session, decision_id: int) -> int:
    """Stop the decision's actions that have not been delivered (a decision overturned or an
    approval refused). An attempt already on the wire still finishes and is recorded, but its
    action stays cancelled. Returns how many were cancelled."""
    actions = session.scalars(
        select(Action).where(Action.decision_id == decision_id, Action.status.in_(_CANCELLABLE))
    ).all()
    for action in actions:
        action.status = "cancelled"
    session.flush()
    return len(actions)


def retry(session: Session, action_id: int, *, actor: str) -> list[Action]:
    """Revive a dead letter: due now, with a fresh attempt budget (its past attempts stay on
    record). Returns its rows: more than one when a receiver-less action finds several."""
    action = get(session, action_id)
    if action.status != "dead":
        raise ActionError(f"action {action_id} is {action.status}; only dead actions are retried")
    action.status = "pending"
    action.attempts = 0
    action.next_attempt_at = utcnow()
    action.last_error = ""
    actions = _route(session, action)
    session.flush()
    detail = {"kind": action.kind, "rows": [row.id for row in actions]}
    audit.record(session, actor, "action.retry", "action", action_id, detail)
    _wake_after_commit(session)
    return actions


def get(session: Session, action_id: int) -> Action:
    action = session.get(Action, action_id)
    if action is None:
        raise ActionNotFound(f"no action with id {action_id}")
    return action


def list_actions(
    session: Session,
    *,
    statuses: Sequence[str] = (),
    kind: str | None = None,
    alert_id: int | None = None,
    decision_id: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[Action]:
    """Newest first; page with ``before_id`` (the last id of the previous page)."""
    query = select(Action).order_by(Action.id.desc()).limit(limit)
    if statuses:
        query = query.where(Action.status.in_(statuses))
    if kind is not None:
        query = query.where(Action.kind == kind)
    if alert_id is not None:
        query = query.where(Action.alert_id == alert_id)
    if decision_id is not None:
        query = query.where(Action.decision_id == decision_id)
    if before_id is not None:
        query = query.where(Action.id < before_id)
    return list(session.scalars(query))


def attempts(session: Session, action_id: int) -> list[ActionAttempt]:
    return list(
        session.scalars(
            select(ActionAttempt)
            .where(ActionAttempt.action_id == action_id)
            .order_by(ActionAttempt.id)
        )
    )
