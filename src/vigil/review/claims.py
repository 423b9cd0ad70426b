"""Claims: a reviewer takes an alert, and nobody else gets it until they decide, release it, or
the claim lapses (``VIGIL_REVIEW_CLAIM_MINUTES``; a claimed alert left open in a browser tab
must not be lost to the queue).

A claim is one conditional UPDATE: on PostgreSQL concurrent claimers queue on the row lock and
re-check the condition after the winner commits, on SQLite writers are serialised; either way
exactly one of them sees its row updated.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from vigil import audit
from vigil.accounts import Principal
from vigil.review.alerts import (
    QUEUE_STATUSES,
    AlertFilter,
    alert_query,
    claimable_by,
    get_alert,
    updated_rows,
)
from vigil.review.errors import Conflict, NotAllowed
from vigil.store.models import Alert, utcnow

#: claim_next tries this many candidates per round before looking again: enough that a crowd
#: of reviewers asking at once rarely needs a second round.
_CANDIDATES = 8


def person(principal: Principal) -> int:
    """The user behind ``principal``: claims and decisions are made by people, and four-eyes
    compares people, so a token that acts for nobody cannot make them."""
    if principal.user_id is None:
        raise NotAllowed(
            f"{principal.name!r} is not a person's token: claims and decisions need a user account"
        )
    return principal.user_id


def claim(session: Session, principal: Principal, alert_id: int, ttl: timedelta) -> Alert:
    """Claim ``alert_id`` (or extend one's own claim)."""
    user_id = person(principal)
    if not _try_claim(session, user_id, alert_id, ttl):
        raise unavailable(session, alert_id, user_id)
    alert = get_alert(session, alert_id)
    audit.record(session, principal.actor, "alert.claim", "alert", alert_id)
    return alert


def claim_next(
    session: Session, principal: Principal, ttl: timedelta, where: AlertFilter | None = None
) -> Alert | None:
    """Claim the highest-priority alert that nobody holds; None when the queue is empty."""
    user_id = person(principal)
    base = where or AlertFilter()
    narrowed = replace(
        base,
        statuses=base.statuses or QUEUE_STATUSES,
        available_to=user_id,
        limit=_CANDIDATES,
        offset=0,
    )
    while True:
        candidates = list(session.scalars(alert_query(narrowed).with_only_columns(Alert.id)))
        if not candidates:
            return None
        for alert_id in candidates:
            # Someone else may take a candidate between the look and the claim: try the next.
            if _try_claim(session, user_id, alert_id, ttl):
                audit.record(session, principal.actor, "alert.claim", "alert", alert_id)
                return get_alert(session, alert_id)


def release(session: Session, principal: Principal, alert_id: int) -> Alert:
    user_id = person(principal)
    result = session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.claimed_by == user_id)
        .values(claimed_by=None, claim_expires_at=None)
    )
    if updated_rows(result) != 1:
        raise Conflict(f"alert {get_alert(session, alert_id).id} is not claimed by you")
    audit.record(session, principal.actor, "alert.release", "alert", alert_id)
    return get_alert(session, alert_id)


def _try_claim(session: Session, user_id: int, alert_id: int, ttl: timedelta) -> bool:
    now = utcnow()
    result = session.execute(
        update(Alert)
        .where(
            Alert.id == alert_id,
            Alert.status.in_(QUEUE_STATUSES),
            claimable_by(user_id, now),
        )
        .values(claimed_by=user_id, claim_expires_at=now + ttl)
    )
    return updated_rows(result) == 1


def unavailable(session: Session, alert_id: int, user_id: int) -> Conflict:
    """Why ``user_id`` cannot take ``alert_id`` (NotFound propagates)."""
    alert = get_alert(session, alert_id)
    session.refresh(alert)
    if alert.status not in QUEUE_STATUSES:
        return Conflict(f"alert {alert_id} is {alert.status}, not in the queue")
    return Conflict(
        f"alert {alert_id} is claimed by user {alert.claimed_by} until "
        f"{alert.claim_expires_at:%Y-%m-%d %H:%M:%S} UTC"
    )
