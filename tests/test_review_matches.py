"""A hash match becomes an alert, or a bank's automatic action, with real media and banks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from test_review_support import actions_of, audit_actions, receiver
from vigil.actions import KINDS
from vigil.config import Settings
from vigil.hashing import KnownContent, Match
from vigil.review import (
    ReviewPolicy,
    Sighting,
    alerts_from_match,
    get_alert,
    match_likelihood,
)
from vigil.review.matches import SECOND_STAGE_LIKELIHOOD
from vigil.store.models import Bank

from media_factory import write_jpeg


@pytest.fixture
def known(settings: Settings) -> Iterator[KnownContent]:
    content = KnownContent(settings)
    yield content
    content.close()


def _bank(known: KnownContent, name: str, tmp_path: Path, seed: int, **policy: object) -> None:
    known.banks.create(name, negative=bool(policy.pop("negative", False)))
    list(known.add_content(name, [write_jpeg(tmp_path / f"{name}.jpg", seed)], labels=["attack"]))
    with known.db.session() as session:
        session.execute(update(Bank).where(Bank.name == name).values(**policy))


def _scan(known: KnownContent, path: Path, sighting: Sighting) -> list[dict[str, object]]:
    result, report = known.match(path)
    with known.db.session() as session:
        outcomes = alerts_from_match(
            session, result, report, policy=ReviewPolicy.of(known.settings), sighting=sighting
        )
        return [outcome.as_json() for outcome in outcomes]


def test_alert_and_automatic_action(known: KnownContent, tmp_path: Path) -> None:
    receiver(known.db, KINDS)
    _bank(known, "watch", tmp_path, 1, severity=6, alert_on_match=True, auto_action=None)
    _bank(known, "cip", tmp_path, 2, severity=10, alert_on_match=False, auto_action="takedown")
    _bank(known, "quiet", tmp_path, 3, alert_on_match=False, auto_action=None)
    upload = write_jpeg(tmp_path / "upload.jpg", 1, quality=40)  # a recompressed copy
    sighting = Sighting(content_ref="post/1", platform="exampletube", author_ref="u/9", reach=50)

    (watched,) = _scan(known, upload, sighting)
    assert watched["bank"] == "watch" and watched["created"] and watched["status"] == "open"
    assert watched["action_ids"] == []
    with known.db.session() as session:
        alert = get_alert(session, int(watched["alert_id"]))  # type: ignore[call-overload]
        assert (alert.source, alert.content_kind, alert.severity) == ("hashing", "image", 6)
        assert (alert.platform, alert.author_ref, alert.reach) == ("exampletube", "u/9", 50)
        assert 0.5 <= alert.likelihood < 1.0  # near, not identical
        assert "bank 'watch'" in alert.explanation and "attack" in alert.explanation
        assert alert.evidence[0]["type"] == "bank_entry"
        assert {s["signal_type"] for s in alert.signals} >= {"pdq", "sha256"}

    blocked = write_jpeg(tmp_path / "blocked.jpg", 2)  # the very file: identical hashes
    (acted,) = _scan(known, blocked, sighting)
    assert (acted["bank"], acted["status"], acted["automatic_action"]) == (
        "cip",
        "auto_actioned",
        "takedown",
    )
    alert_id = int(acted["alert_id"])  # type: ignore[call-overload]
    assert actions_of(known.db, alert_id) == [("takedown", "pending", True)]
    assert audit_actions(known.db, "alert", alert_id) == ["alert.create", "action.automatic"]
    with known.db.session() as session:
        assert get_alert(session, alert_id).likelihood == 1.0

    # The same request again finds its alert and does not act twice; the same file posted
    # somewhere else is a new sighting, with its own takedown.
    (retried,) = _scan(known, blocked, sighting)
    assert (retried["alert_id"], retried["created"], retried["action_ids"]) == (alert_id, False, [])
    (elsewhere,) = _scan(known, blocked, Sighting(content_ref="post/2", platform="exampletube"))
    assert elsewhere["created"] and elsewhere["alert_id"] != alert_id
    assert actions_of(known.db, alert_id) == [("takedown", "pending", True)]

    assert _scan(known, write_jpeg(tmp_path / "quiet.jpg", 3), sighting) == []


def test_a_benign_match_raises_nothing(known: KnownContent, tmp_path: Path) -> None:
    _bank(known, "watch", tmp_path, 4, auto_action="takedown")
    _bank(known, "news", tmp_path, 4, negative=True)
    assert _scan(known, write_jpeg(tmp_path / "clip.jpg", 4), Sighting()) == []


def _match(signal_type: str, distance: float, query_share: float | None = None) -> Match:
    return Match("b", 1, signal_type, distance, [], "", "", False, query_share=query_share)


def test_likelihood_from_distance() -> None:
    policy = ReviewPolicy(pdq_threshold=30, vpdq_query_share=0.8)
    bank = Bank(name="b", pdq_threshold=None, vpdq_query_share=None)
    strict = Bank(name="s", pdq_threshold=10, vpdq_query_share=None)
    assert match_likelihood(_match("sha256", 0), bank, policy) == 1.0
    assert match_likelihood(_match("pdq", 0), bank, policy) == 1.0
    assert match_likelihood(_match("pdq", 15), bank, policy) == pytest.approx(0.75)
    assert match_likelihood(_match("pdq", 10), strict, policy) == pytest.approx(0.5)
    assert match_likelihood(_match("vpdq", 0, query_share=0.9), bank, policy) == pytest.approx(0.75)
    assert match_likelihood(_match("md5", 0), bank, policy) == 1.0
    assert match_likelihood(_match("effnet_lite0", 0.3), bank, policy) == SECOND_STAGE_LIKELIHOOD
