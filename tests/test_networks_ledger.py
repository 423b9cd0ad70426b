"""The account ledger on a real store (SQLite and PostgreSQL): totals and labels, the risk's
decay and defaults, the account alert raised once with the posts that drove it (through the real
scanner, the shipped model and real posts), decisions, links, concurrent workers."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from test_review_support import WEIGHTS, make_alert, person
from vigil.config import Settings
from vigil.networks import AccountLedger, NetworkSettings, risk
from vigil.networks.ledger import dedupe_key
from vigil.review import approve, decide, get_alert
from vigil.store import Database
from vigil.store.models import AccountLink, Alert, AuthorAccount
from vigil.text import StoredPost
from vigil.text.posts import Post
from vigil.text.scanner import PostScanner
from vigil.text.settings import TextSettings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
#: Real posts (ETHOS, ../shared/data/text/ethos.jsonl) the shipped model flags as threats.
THREATS = (
    "ethos-10f816f19dc1024a",
    "ethos-6fa4d096016e8227",
    "ethos-76ce9acf6b598fa8",
    "ethos-4ad3f28c893c7588",
    "ethos-55dc221d735d817e",
    "ethos-a9ae37ba83c78d1c",
)
#: ... and as hate (not a threat).
HATE = "ethos-9fd8eca0f777a41b"
BENIGN = (
    "Lovely morning at the farmers market, the strawberries are back",
    "Does anyone know when the library reopens after the holidays?",
    "Our team won 3-1 last night, what a match",
)


class Clock:
    """The ledger's "now", moved by the test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ledger_settings(settings: Settings) -> NetworkSettings:
    return NetworkSettings.of(settings)


def stored(
    key: str,
    author: str,
    at: datetime = NOW,
    *,
    label: str | None = None,
    severity: int = 0,
    likelihood: float = 0.0,
    **fields: Any,
) -> StoredPost:
    values: dict[str, Any] = {
        "platform": "testnet",
        "flagged": (label,) if label else (),
        "banks": (),
        "campaign_id": None,
        "in_reply_to": "",
        "repost_of": "",
        "mentions": (),
        "alert_id": None,
        "reach": 10,
        **fields,
    }
    return StoredPost(
        key=f"testnet:{key}",
        author_ref=author,
        at=at,
        label=label,
        severity=severity,
        likelihood=likelihood,
        **values,
    )


def threat(key: str, author: str, at: datetime = NOW, likelihood: float = 0.5) -> StoredPost:
    return stored(key, author, at, label="threat_incitement", severity=8, likelihood=likelihood)


def feed(db: Database, ledger: AccountLedger, *posts: StoredPost) -> None:
    with db.session() as session:
        ledger.stored(session, posts)


def account(db: Database, ref: str, platform: str = "testnet") -> AuthorAccount:
    with db.session() as session:
        return session.scalars(
            select(AuthorAccount).where(
                AuthorAccount.platform == platform, AuthorAccount.author_ref == ref
            )
        ).one()


def account_alerts(db: Database) -> list[Alert]:
    with db.session() as session:
        return list(session.scalars(select(Alert).where(Alert.source == "accounts")))


def test_totals_labels_and_banks_add_up(db: Database, ledger_settings: NetworkSettings) -> None:
    ledger = AccountLedger(ledger_settings, WEIGHTS, clock=Clock())
    feed(
        db,
        ledger,
        stored("1", "alice", NOW - timedelta(hours=2), label="hate", severity=5, likelihood=0.9),
        threat("2", "alice", NOW - timedelta(hours=1)),
        stored("3", "alice", NOW - timedelta(hours=3), banks=("christchurch",)),
        stored("4", "bob"),
        stored("5", ""),
    )
    feed(
        db,
        ledger,
        stored("6", "alice", NOW, label="threat_to_life", severity=10, likelihood=0.7),
        stored("7", "alice", NOW, label="hate", severity=4, likelihood=0.6, banks=("isis",)),
    )
    alice = account(db, "alice")
    assert (alice.posts, alice.flagged) == (5, 4)
    assert alice.labels == {
        "hate": {"count": 2, "max_severity": 5},
        "threat_incitement": {"count": 1, "max_severity": 8},
        "threat_to_life": {"count": 1, "max_severity": 10},
    }
    assert alice.banks == ["christchurch", "isis"]
    assert (alice.first_seen, alice.last_seen) == (NOW - timedelta(hours=3), NOW)
    bob = account(db, "bob")
    assert (bob.posts, bob.flagged, bob.risk, bob.labels) == (1, 0, 0.0, {})
    with db.session() as session:
        refs = set(session.scalars(select(AuthorAccount.author_ref)))
    assert refs == {"alice", "bob"}, "a post without an author counts for no account"


def test_risk_decays_by_half_life_and_old_posts_add_little(
    db: Database, ledger_settings: NetworkSettings
) -> None:
    clock = Clock()
    ledger = AccountLedger(ledger_settings, WEIGHTS, clock=clock)
    weights = risk.RiskWeights.of(ledger_settings)
    feed(db, ledger, threat("1", "alice", likelihood=1.0))
    first = account(db, "alice").risk
    assert first == pytest.approx(risk.post_term(8, 1.0, weights)) == pytest.approx(6.4)
    clock.now = NOW + timedelta(hours=72)
    feed(db, ledger, stored("2", "alice", clock.now))
    later = account(db, "alice")
    assert later.risk == pytest.approx(first / 2)
    assert later.risk_at == clock.now
    assert later.peak_risk == pytest.approx(first)
    assert risk.decayed(later.risk, later.risk_at, clock.now + timedelta(hours=72), 72) == (
        pytest.approx(first / 4)
    )

    # A post from a month ago (an archive scanned today) is decayed from its own time.
    feed(db, ledger, threat("3", "archived", NOW - timedelta(days=30), likelihood=1.0))
    archived = account(db, "archived").risk
    assert archived == pytest.approx(6.4 * 2 ** (-(30 * 24 + 72) / 72))
    # ... and a post dated in the future counts as now, no more.
    feed(db, ledger, threat("4", "ahead", clock.now + timedelta(days=3), likelihood=1.0))
    assert account(db, "ahead").risk == pytest.approx(6.4)


def test_defaults_one_hateful_post_a_day_never_alerts_five_threats_in_an_hour_do(
    db: Database, ledger_settings: NetworkSettings
) -> None:
    clock = Clock()
    ledger = AccountLedger(ledger_settings, WEIGHTS, clock=clock)
    for day in range(60):
        clock.now = NOW + timedelta(days=day)
        feed(
            db,
            ledger,
            stored(f"h{day}", "daily", clock.now, label="hate", severity=5, likelihood=1.0),
        )
    daily = account(db, "daily")
    assert daily.peak_risk < ledger_settings.accounts_risk_threshold
    assert daily.peak_risk == pytest.approx(2.5 / (1 - 2 ** (-24 / 72)), rel=0.01)

    # Flagged incitement at p 0.5, within an hour: four stay below, five cross.
    for author, n in (("four", 4), ("five", 5)):
        feed(
            db,
            ledger,
            *(
                threat(f"{author}{i}", author, clock.now - timedelta(minutes=10 * i))
                for i in range(n)
            ),
        )
    assert account(db, "four").risk < ledger_settings.accounts_risk_threshold
    assert account(db, "five").risk == pytest.approx(5 * 6.4 * 0.5 + 6.4 * math.log(5), rel=0.01)
    assert [a.author_ref for a in account_alerts(db)] == ["five"]


def test_burst_positions_count_the_hour_up_to_each_post() -> None:
    t = NOW
    earlier = [t - timedelta(minutes=90), t - timedelta(minutes=50), t - timedelta(minutes=5)]
    new = [t, t + timedelta(minutes=20), t + timedelta(minutes=61)]
    assert risk.burst_positions(earlier, new) == [3, 3, 2]
    assert risk.burst_term(8, 1, risk.RiskWeights()) == 0.0


def test_confirmed_decisions_raise_risk(db: Database, ledger_settings: NetworkSettings) -> None:
    for n, status in enumerate(("confirmed", "referred", "dismissed", "open")):
        make_alert(db, f"earlier-{n}", platform="testnet", author_ref="known", status=status)
    ledger = AccountLedger(ledger_settings, WEIGHTS, clock=Clock())
    feed(db, ledger, threat("1", "known", likelihood=1.0), threat("2", "new", likelihood=1.0))
    # Two decisions count (dismissed and open ones do not): 1 + 0.5 * 2.
    assert account(db, "known").risk == pytest.approx(2 * account(db, "new").risk)


def test_links_from_replies_reposts_and_mentions(
    db: Database, ledger_settings: NetworkSettings
) -> None:
    clock = Clock()
    ledger = AccountLedger(ledger_settings, WEIGHTS, clock=clock)
    scanner = PostScanner(db, TextSettings.of(ledger_settings), hooks=[ledger])

    def post(n: int, author: str, minutes: int, **fields: Any) -> Post:
        return Post(
            id=str(n),
            platform="testnet",
            author_ref=author,
            text=BENIGN[n % len(BENIGN)],
            created_at=NOW + timedelta(minutes=minutes),
            **fields,
        )

    scanner.scan(
        [
            post(1, "bob", 0),
            post(2, "alice", 1, in_reply_to="1"),  # parent in the same batch
            post(3, "bob", 2, in_reply_to="1"),  # his own thread: no link
            post(4, "carol", 3, in_reply_to="404"),  # parent never stored: no link
            post(5, "", 4, in_reply_to="1"),  # no author: no link
        ]
    )
    scanner.scan(
        [
            post(6, "carol", 10, repost_of="1"),
            post(7, "alice", 11, in_reply_to="3", mentions=("carol", "dave", "carol")),
            post(8, "dave", 12, mentions=("dave",)),  # mentions himself
        ]
    )
    with db.session() as session:
        links = {
            (link.source_ref, link.target_ref, link.kind): (link.count, link.first_at, link.last_at)
            for link in session.scalars(select(AccountLink))
        }
    assert links == {
        ("alice", "bob", "reply"): (2, NOW + timedelta(minutes=1), NOW + timedelta(minutes=11)),
        ("carol", "bob", "repost"): (1, NOW + timedelta(minutes=10), NOW + timedelta(minutes=10)),
        ("alice", "carol", "mention"): (
            1,
            NOW + timedelta(minutes=11),
            NOW + timedelta(minutes=11),
        ),
        ("alice", "dave", "mention"): (1, NOW + timedelta(minutes=11), NOW + timedelta(minutes=11)),
    }


@pytest.fixture
def ethos(shared_data: Path) -> dict[str, str]:
    with (shared_data / "text" / "ethos.jsonl").open(encoding="utf-8") as rows:
        return {row["id"]: row["text"] for row in map(json.loads, rows)}


@pytest.fixture
def scanner(settings: Settings) -> Iterator[tuple[PostScanner, AccountLedger]]:
    ledger = AccountLedger(NetworkSettings.of(settings), WEIGHTS)
    db = Database(settings.resolved_database_url)
    yield PostScanner(db, TextSettings.of(settings), hooks=[ledger]), ledger
    db.dispose()


def test_a_burst_of_threats_raises_one_account_alert_with_its_posts_once(
    scanner: tuple[PostScanner, AccountLedger], ethos: dict[str, str]
) -> None:
    """Real posts through the real scanner and model: six threats within an hour among benign
    posts and another account's hateful one; delivered in two batches, then again."""
    posts_scanner, _ = scanner
    now = datetime.now(UTC)

    def post(n: int, author: str, text: str, minutes_ago: int) -> Post:
        return Post(
            id=str(n),
            platform="testnet",
            author_ref=author,
            text=text,
            created_at=now - timedelta(minutes=minutes_ago),
        )

    posts = [
        *(post(n, "angry", ethos[key], 60 - 10 * n) for n, key in enumerate(THREATS)),
        *(post(10 + n, "angry", text, 30) for n, text in enumerate(BENIGN)),
        post(20, "other", ethos[HATE], 20),
        *(post(30 + n, "calm", text, 15) for n, text in enumerate(BENIGN)),
    ]
    first = posts_scanner.scan(posts[:3])
    second = posts_scanner.scan(posts[3:])
    assert sum(first.flagged.values()) + sum(second.flagged.values()) == 7, (
        "the model flags the six threats and the hateful post"
    )
    alerts = account_alerts(posts_scanner.db)
    assert [a.author_ref for a in alerts] == ["angry"]
    alert = alerts[0]
    assert alert.content_kind == "account"
    assert alert.content_ref == "testnet:angry"
    assert alert.dedupe_key == dedupe_key("testnet", "angry") == "account:testnet:angry"
    assert alert.explanation.startswith(f"risk {alert.score:.1f} ≥ 25: 6 flagged posts in 72 h (")
    assert "6 within an hour" in alert.explanation, "the second batch continued the first's burst"
    driving = {item["post"] for item in alert.evidence}
    assert driving == {f"testnet:{n}" for n in range(len(THREATS))}
    assert all(item["severity"] >= 8 for item in alert.evidence)
    assert alert.severity == 10
    angry = account(posts_scanner.db, "angry")
    assert angry.alert_id == alert.id
    assert (angry.posts, angry.flagged) == (9, 6)
    assert angry.risk == pytest.approx(alert.score)
    assert account(posts_scanner.db, "other").alert_id is None
    assert account(posts_scanner.db, "calm").risk == 0.0

    again = posts_scanner.scan(posts)
    assert (again.scanned, again.duplicates) == (0, len(posts))
    assert [a.id for a in account_alerts(posts_scanner.db)] == [alert.id]
    with posts_scanner.db.session() as session:
        unchanged = session.get_one(Alert, alert.id)
        assert unchanged.evidence == alert.evidence
    after = account(posts_scanner.db, "angry")
    assert (after.posts, after.flagged, after.risk) == (9, 6, angry.risk)


def test_an_open_account_alert_grows_with_new_flagged_posts(
    db: Database, ledger_settings: NetworkSettings
) -> None:
    clock = Clock()
    ledger = AccountLedger(ledger_settings, WEIGHTS, clock=clock)
    feed(db, ledger, *(threat(f"t{n}", "angry", likelihood=0.9) for n in range(5)))
    (alert,) = account_alerts(db)
    clock.now = NOW + timedelta(hours=2)
    feed(db, ledger, threat("t9", "angry", clock.now, likelihood=0.9), stored("b", "angry"))
    (grown,) = account_alerts(db)
    assert grown.id == alert.id
    assert [item["post"] for item in grown.evidence][-1:] == ["testnet:t9"]
    assert grown.score > alert.score


def test_a_dismissed_account_is_not_raised_again_below_the_margin(
    db: Database, ledger_settings: NetworkSettings
) -> None:
    clock = Clock()
    ledger = AccountLedger(ledger_settings, WEIGHTS, clock=clock)
    feed(db, ledger, *(threat(f"a{n}", "loud", likelihood=0.9) for n in range(5)))
    (alert,) = account_alerts(db)
    decided_at = alert.score
    reviewer, supervisor = person(db, "rita", "reviewer"), person(db, "sue", "supervisor")
    with db.session() as session:
        decision = decide(session, reviewer, alert.id, "dismiss", "a drill rap video's lyrics")
    with db.session() as session:
        assert get_alert(session, alert.id).status == "awaiting_approval", "four eyes"
        approve(session, supervisor, decision.id)

    # Three hours on, more of the same: the risk is up, but not 1.5 x the dismissed level.
    clock.now = NOW + timedelta(hours=3)
    feed(db, ledger, *(threat(f"b{n}", "loud", clock.now, likelihood=0.9) for n in range(2)))
    assert decided_at < account(db, "loud").risk < 1.5 * decided_at
    assert [a.id for a in account_alerts(db)] == [alert.id]
    with db.session() as session:
        assert session.get_one(Alert, alert.id).evidence == alert.evidence, "decided: untouched"

    feed(db, ledger, *(threat(f"c{n}", "loud", clock.now, likelihood=0.9) for n in range(8)))
    loud = account(db, "loud")
    assert loud.risk >= 1.5 * decided_at
    alerts = account_alerts(db)
    assert len(alerts) == 2
    again = next(a for a in alerts if a.id != alert.id)
    assert again.dedupe_key == f"account:testnet:loud:after:{alert.id}"
    assert again.explanation.startswith(f"again after alert {alert.id} was dismissed at risk")
    assert loud.alert_id == again.id


def test_two_ledgers_insert_the_same_new_account_at_once(postgres_url: str) -> None:
    """Two workers' batches name the same new account: the second waits for the first's insert
    and adds to its row, neither fails nor loses the other's post."""
    first_db, second_db = Database(postgres_url), Database(postgres_url)
    ledger = AccountLedger(NetworkSettings(database_url=postgres_url), WEIGHTS, clock=Clock())
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with first_db.session() as session:
                ledger.stored(session, [threat("1", "newcomer", likelihood=1.0)])
                inside.set()
                release.wait(10)
        except BaseException as error:  # reported by the test below
            errors.append(error)

    worker = threading.Thread(target=first)
    worker.start()
    assert inside.wait(10)
    done = threading.Event()

    def second() -> None:
        try:
            feed(second_db, ledger, threat("2", "newcomer", likelihood=1.0), stored("3", "x"))
        except BaseException as error:
            errors.append(error)
        done.set()

    racer = threading.Thread(target=second)
    racer.start()
    assert not done.wait(1.0), "the second insert waits for the first transaction"
    release.set()
    worker.join(10)
    racer.join(10)
    assert errors == []
    newcomer = account(first_db, "newcomer")
    assert (newcomer.posts, newcomer.flagged) == (2, 2)
    assert newcomer.risk == pytest.approx(2 * 6.4)
    first_db.dispose()
    second_db.dispose()
