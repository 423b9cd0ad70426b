"""Claims (with concurrent reviewers), decisions, and four-eyes approval."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from sqlalchemy import select

from test_review_support import actions_of, audit_actions, make_alert, person, receiver
from vigil.accounts import Principal
from vigil.actions import KINDS
from vigil.review import (
    Conflict,
    NotAllowed,
    ReviewError,
    approve,
    claim,
    claim_next,
    decide,
    get_alert,
    reject,
    release,
)
from vigil.store import Database
from vigil.store.models import Decision

TTL = timedelta(minutes=15)
LAPSED = timedelta(seconds=-1)
T = TypeVar("T")


@pytest.fixture(autouse=True)
def webhooks(db: Database) -> None:
    """Receivers for every kind, so an action that is due shows as pending, not dead."""
    receiver(db, KINDS)


@pytest.fixture
def people(db: Database) -> dict[str, Principal]:
    return {
        "rita": person(db, "rita", "reviewer"),
        "rob": person(db, "rob", "reviewer"),
        "ines": person(db, "ines", "investigator"),
        "sue": person(db, "sue", "supervisor"),
    }


def in_session(db: Database, work: Callable[..., T], *args: object) -> T:
    with db.session() as session:
        return work(session, *args)


def test_a_claimed_alert_is_nobody_elses_until_released_or_lapsed(
    db: Database, people: dict[str, Principal]
) -> None:
    rita, rob = people["rita"], people["rob"]
    alert_id = make_alert(db, "a")
    assert in_session(db, claim, rita, alert_id, TTL).claimed_by == rita.user_id
    with pytest.raises(Conflict, match="claimed by"):
        in_session(db, claim, rob, alert_id, TTL)
    with pytest.raises(Conflict, match="claimed by"):
        in_session(db, decide, rob, alert_id, "dismiss", "not extremist")
    assert in_session(db, claim_next, rob, TTL) is None  # the only alert is taken
    with pytest.raises(Conflict, match="not claimed by you"):
        in_session(db, release, rob, alert_id)
    in_session(db, release, rita, alert_id)
    assert in_session(db, claim, rob, alert_id, LAPSED).claimed_by == rob.user_id
    # Rob's claim lapsed: Rita may take it back and decide.
    decision = in_session(db, decide, rita, alert_id, "dismiss", "satire")
    assert decision.approval_status == "not_required"
    with db.session() as session:
        alert = get_alert(session, alert_id)
        assert (alert.status, alert.claimed_by) == ("dismissed", None)
    with pytest.raises(Conflict, match="dismissed"):
        in_session(db, claim, rob, alert_id, TTL)
    assert audit_actions(db, "alert", alert_id) == [
        "alert.create",
        "alert.claim",
        "alert.release",
        "alert.claim",
    ]
    assert audit_actions(db, "decision", decision.id) == ["decision.create"]


def test_claim_next_takes_the_highest_priority(db: Database, people: dict[str, Principal]) -> None:
    low = make_alert(db, "low", severity=2)
    high = make_alert(db, "high", severity=9)
    assert in_session(db, claim_next, people["rita"], TTL).id == high
    assert in_session(db, claim_next, people["rob"], TTL).id == low
    # Asking again extends one's own claim rather than taking a second alert.
    assert in_session(db, claim_next, people["rita"], TTL).id == high


def _race(count: int, work: Callable[[int], object]) -> tuple[list[object], list[BaseException]]:
    """Run ``work(i)`` in ``count`` threads released together; their results and errors."""
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(number: int) -> None:
        barrier.wait()
        try:
            results.append(work(number))
        except BaseException as exc:  # collected: the test decides which are expected
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.fixture
def crowd(db: Database) -> list[Principal]:
    return [person(db, f"reviewer{n}", "reviewer") for n in range(8)]


def test_concurrent_claims_have_one_winner(db: Database, crowd: list[Principal]) -> None:
    alert_id = make_alert(db, "contested")
    results, errors = _race(8, lambda n: in_session(db, claim, crowd[n], alert_id, TTL))
    assert len(results) == 1 and len(errors) == 7
    assert all(isinstance(error, Conflict) for error in errors), errors
    with db.session() as session:
        winner = get_alert(session, alert_id).claimed_by
    assert winner in {p.user_id for p in crowd}


def test_concurrent_claim_next_hands_out_distinct_alerts(
    db: Database, crowd: list[Principal]
) -> None:
    alert_ids = {make_alert(db, f"q{n}", severity=n) for n in range(5)}
    results, errors = _race(8, lambda n: in_session(db, claim_next, crowd[n], TTL))
    assert errors == []
    claimed = [alert.id for alert in results if alert is not None]  # type: ignore[attr-defined]
    assert sorted(claimed) == sorted(alert_ids)
    assert results.count(None) == 3


def test_concurrent_decisions_have_one_winner(db: Database, crowd: list[Principal]) -> None:
    alert_id = make_alert(db, "decide-once")
    results, errors = _race(
        8, lambda n: in_session(db, decide, crowd[n], alert_id, "confirm", f"reviewer {n}")
    )
    assert len(results) == 1 and all(isinstance(e, Conflict) for e in errors), errors
    with db.session() as session:
        assert len(session.scalars(select(Decision)).all()) == 1
    assert actions_of(db, alert_id) == [("takedown", "pending", False)]


def test_decisions_need_a_reason_a_person_and_fitting_actions(
    db: Database, people: dict[str, Principal]
) -> None:
    alert_id = make_alert(db, "x")
    with pytest.raises(ReviewError, match="reason"):
        in_session(db, decide, people["rita"], alert_id, "confirm", "  ")
    service = Principal(None, "bootstrap-admin", frozenset({"supervisor"}))
    with pytest.raises(NotAllowed, match="user account"):
        in_session(db, decide, service, alert_id, "confirm", "yes")
    with pytest.raises(ReviewError, match="cannot carry takedown"):
        in_session(db, decide, people["rita"], alert_id, "dismiss", "no", ["takedown"])
    with pytest.raises(ReviewError, match="cannot carry police_referral"):
        in_session(db, decide, people["rita"], alert_id, "confirm", "yes", ["police_referral"])
    assert actions_of(db, alert_id) == []
    in_session(db, decide, people["rita"], alert_id, "escalate", "needs an investigator")
    with db.session() as session:
        assert get_alert(session, alert_id).status == "escalated"  # still in the queue
    in_session(db, decide, people["ines"], alert_id, "confirm", "IS propaganda")
    assert actions_of(db, alert_id) == [("takedown", "pending", False)]


def test_a_stream_is_cut_not_taken_down(db: Database, people: dict[str, Principal]) -> None:
    alert_id = make_alert(db, "live", source="live", content_kind="stream")
    in_session(db, decide, people["rita"], alert_id, "confirm", "attack in progress")
    assert actions_of(db, alert_id) == [("stream_cut", "pending", False)]


def test_a_referral_waits_for_a_second_person(db: Database, people: dict[str, Principal]) -> None:
    rita, ines, sue = people["rita"], people["ines"], people["sue"]
    alert_id = make_alert(db, "threat", text="I will attack the march on Saturday")
    decision = in_session(
        db, decide, ines, alert_id, "refer", "credible threat", ["police_referral", "takedown"]
    )
    assert decision.approval_status == "pending"
    with db.session() as session:
        assert get_alert(session, alert_id).status == "awaiting_approval"
    held = [
        ("police_referral", "awaiting_approval", False),
        ("takedown", "awaiting_approval", False),
    ]
    assert actions_of(db, alert_id) == held

    with pytest.raises(NotAllowed, match="someone other than"):
        in_session(db, approve, ines, decision.id)
    assert actions_of(db, alert_id) == held  # nothing left vigil
    approved = in_session(db, approve, sue, decision.id)
    assert (approved.approval_status, approved.approved_by) == ("approved", sue.user_id)
    assert actions_of(db, alert_id) == [
        ("police_referral", "pending", False),
        ("takedown", "pending", False),
    ]
    with db.session() as session:
        assert get_alert(session, alert_id).status == "referred"
    with pytest.raises(Conflict, match="approved, not pending"):
        in_session(db, reject, rita, decision.id, "too late")
    assert audit_actions(db, "decision", decision.id) == ["decision.create", "decision.approve"]


def test_a_rejected_decision_is_cancelled_and_requeued(
    db: Database, people: dict[str, Principal]
) -> None:
    alert_id = make_alert(db, "face", source="faces", content_kind="image")
    decision = in_session(db, decide, people["rita"], alert_id, "confirm", "same person")
    assert decision.approval_status == "pending"  # a face match is about a person
    with pytest.raises(ReviewError, match="reason"):
        in_session(db, reject, people["sue"], decision.id, "")
    rejected = in_session(db, reject, people["sue"], decision.id, "the faces differ")
    assert rejected.approval_status == "rejected"
    assert actions_of(db, alert_id) == [("takedown", "cancelled", False)]
    with db.session() as session:
        assert get_alert(session, alert_id).status == "open"
    # Back in the queue: someone decides again.
    again = in_session(db, decide, people["rob"], alert_id, "dismiss", "not the suspect")
    assert again.approval_status == "pending"
    in_session(db, approve, people["ines"], again.id)
    with db.session() as session:
        assert get_alert(session, alert_id).status == "dismissed"


def test_decisions_on_accounts_need_approval(db: Database, people: dict[str, Principal]) -> None:
    alert_id = make_alert(db, "acct", source="text", content_kind="account")
    decision = in_session(db, decide, people["rita"], alert_id, "confirm", "recruiter", ["block"])
    assert decision.approval_status == "pending"
    assert actions_of(db, alert_id) == [("block", "awaiting_approval", False)]
