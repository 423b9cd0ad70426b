"""Alerts, the priority formula and queue order, and cases, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import threading
from datetime import timedelta

import pytest

from test_review_support import WEIGHTS, at, audit_actions, make_alert, new_alert, person
from vigil.review import (
    AlertFilter,
    CaseChange,
    NotFound,
    PriorityWeights,
    add_alerts,
    alert_json,
    base_priority,
    case_alert_ids,
    create_alert,
    create_case,
    current_priority,
    delete_case,
    get_alert,
    list_alerts,
    queue_key,
    recompute_priorities,
    remove_alert,
    update_case,
    view_alert,
)
from vigil.store import Database
from vigil.store.models import utcnow


def test_priority_formula() -> None:
    weights = PriorityWeights(reach=0.5, half_life_hours=10)
    assert base_priority(weights, 10, 1.0, 0) == 1.0
    assert base_priority(weights, 5, 0.5, 0) == 0.25
    # log10(1 + 999) = 3: a thousand viewers multiply by 1 + 0.5 * 3.
    assert base_priority(weights, 10, 1.0, 999) == pytest.approx(2.5)
    occurred = at(2024, 5, 1)
    key = queue_key(weights, 8, 0.5, 99, occurred)
    fresh = current_priority(weights, key, occurred)
    assert fresh == pytest.approx(0.8 * 0.5 * 2.0)
    assert current_priority(weights, key, occurred + timedelta(hours=10)) == pytest.approx(
        fresh / 2
    )
    assert current_priority(weights, key, occurred + timedelta(hours=30)) == pytest.approx(
        fresh / 8
    )
    squared = PriorityWeights(severity=2.0, likelihood=0.0)
    assert base_priority(squared, 5, 0.1, 0) == pytest.approx(0.25)


def test_zero_priority_still_orders() -> None:
    key = queue_key(WEIGHTS, 0, 0.9, 0, at(2024, 1, 1))
    assert math.isfinite(key)
    assert key < queue_key(WEIGHTS, 1, 0.01, 0, at(2024, 1, 1))


def test_queue_order_is_priority_now(db: Database) -> None:
    """An old severe alert against a fresh mild one: the stored key orders them as their
    current priority does, whenever the queue is read."""
    make_alert(db, "old-severe", severity=10, likelihood=1.0, occurred_at=at(2024, 1, 1))
    make_alert(db, "new-mild", severity=3, likelihood=0.5, occurred_at=at(2024, 1, 3))
    make_alert(db, "new-severe-viral", severity=9, reach=100_000, occurred_at=at(2024, 1, 3))
    make_alert(db, "decided", severity=10, status="dismissed")
    with db.session() as session:
        queue = list_alerts(session, AlertFilter(statuses=["open"]))
        keys = [alert.dedupe_key for alert in queue]
        for now in (at(2024, 1, 3), at(2024, 2, 1), at(2030, 1, 1)):
            values = [current_priority(WEIGHTS, alert.priority, now) for alert in queue]
            assert values == sorted(values, reverse=True)
    # viral: 0.9 * 0.5 * (1 + 0.25 * 5) = 1.01; two days older at a 24 h half-life, the
    # severe one's 1.0 has decayed to 0.25, still above the mild 0.3 * 0.5 = 0.15.
    assert keys == ["new-severe-viral", "old-severe", "new-mild"]


def test_filters(db: Database) -> None:
    make_alert(db, "a", source="hashing", content_kind="image", platform="x", severity=9)
    make_alert(db, "b", source="text", platform="y", severity=4)
    make_alert(db, "c", source="live", content_kind="stream", platform="x", severity=6)
    with db.session() as session:

        def keys(where: AlertFilter) -> list[str]:
            return [alert.dedupe_key for alert in list_alerts(session, where)]

        assert keys(AlertFilter(platform="x")) == ["a", "c"]
        assert keys(AlertFilter(source="text")) == ["b"]
        assert keys(AlertFilter(content_kind="stream")) == ["c"]
        assert keys(AlertFilter(min_severity=5)) == ["a", "c"]
        assert keys(AlertFilter(limit=1, offset=1)) == ["c"]


def test_create_is_idempotent_on_the_dedupe_key(db: Database) -> None:
    with db.session() as session:
        first, created = create_alert(
            session, new_alert("k", severity=7), weights=WEIGHTS, actor="d"
        )
        again, created_again = create_alert(
            session, new_alert("k", severity=2), weights=WEIGHTS, actor="d"
        )
    assert (created, created_again) == (True, False)
    assert again.id == first.id and again.severity == 7
    assert audit_actions(db, "alert", first.id) == ["alert.create"]


def test_concurrent_deliveries_make_one_alert(db: Database) -> None:
    outcomes: list[tuple[int, bool]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        try:
            barrier.wait()
            with db.session() as session:
                alert, created = create_alert(session, new_alert("dup"), weights=WEIGHTS, actor="d")
                outcomes.append((alert.id, created))
        except BaseException as exc:  # reported below; a thread must not swallow it
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({alert_id for alert_id, _ in outcomes}) == 1
    assert sorted(created for _, created in outcomes) == [False] * 5 + [True]


def test_future_occurrence_is_clamped_to_now(db: Database) -> None:
    alert_id = make_alert(db, "future", occurred_at=at(2999, 1, 1))
    with db.session() as session:
        assert get_alert(session, alert_id).occurred_at.year < 2999


def test_evidence_is_redacted_unless_shown_and_showing_is_audited(db: Database) -> None:
    alert_id = make_alert(
        db,
        "ev",
        text="the manifesto",
        evidence=[{"type": "keyframe", "ref": "frames/1.jpg"}],
        matches=[{"bank": "b", "entry_id": 1, "content_ref": "bank/clip.mp4"}],
    )
    with db.session() as session:
        hidden = alert_json(
            view_alert(session, alert_id, actor="user:ana", evidence=False),
            WEIGHTS,
            utcnow(),
            evidence=False,
        )
        shown_alert = view_alert(session, alert_id, actor="user:rev", evidence=True)
        shown = alert_json(shown_alert, WEIGHTS, utcnow(), evidence=True)
    assert hidden["text"] == "" and hidden["evidence"] == [] and hidden["evidence_redacted"]
    assert hidden["matches"] == [{"bank": "b", "entry_id": 1}]
    assert shown["text"] == "the manifesto" and shown["evidence"][0]["ref"] == "frames/1.jpg"
    assert shown["matches"][0]["content_ref"] == "bank/clip.mp4"
    assert audit_actions(db, "alert", alert_id) == ["alert.create", "alert.view"]


def test_recompute_after_weights_change(db: Database) -> None:
    mild_viral = make_alert(db, "viral", severity=4, reach=10**6, occurred_at=at(2024, 1, 1))
    severe = make_alert(db, "severe", severity=8, reach=0, occurred_at=at(2024, 1, 1))
    with db.session() as session:
        # Reach weight 0.25: 0.4 * (1 + 0.25 * 6) = 1.0 beats 0.8.
        assert [a.id for a in list_alerts(session, AlertFilter())] == [mild_viral, severe]
        assert recompute_priorities(session, PriorityWeights(reach=0.0)) == 2
    with db.session() as session:
        assert [a.id for a in list_alerts(session, AlertFilter())] == [severe, mild_viral]


def test_cases(db: Database) -> None:
    analyst = person(db, "ana", "analyst")
    first, second, third = (make_alert(db, key) for key in ("c1", "c2", "c3"))
    with db.session() as session:
        case = create_case(session, analyst, "Christchurch re-uploads", kind="campaign")
        assert add_alerts(session, analyst, case.id, [first, second]) == [first, second]
        update_case(session, analyst, case.id, CaseChange(status="closed", description="done"))
    with db.session() as session, pytest.raises(NotFound, match="no alert"):
        add_alerts(session, analyst, case.id, [third, 999_999])
    with db.session() as session:
        assert case_alert_ids(session, case.id) == [first, second]  # nothing half-added
        remove_alert(session, analyst, case.id, first)
        with pytest.raises(NotFound):
            remove_alert(session, analyst, case.id, third)
    with db.session() as session:
        assert list_alerts(session, AlertFilter(case_id=case.id))[0].id == second
        delete_case(session, analyst, case.id)
    with db.session() as session:
        assert get_alert(session, second).case_id is None
    assert audit_actions(db, "case", case.id) == [
        "case.create",
        "case.add_alerts",
        "case.update",
        "case.remove_alert",
        "case.delete",
    ]
