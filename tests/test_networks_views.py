"""The read side of accounts and networks on a real store (SQLite and PostgreSQL), filled the way
production fills it: posts scanned by the real scanner (shipped classifier, bank matching of an
attached image) with the real account ledger as its hook. Then: accounts by risk now (checked
against a brute-force ranking past several chunks of the walk), one account's history, links,
campaigns and shared media, a campaign's members and spread, its graph drawn safely, and the
evidence pack with its hash in the audit log.

The dataset (:func:`build_network`) is shared by test_api_accounts.py and test_web_accounts.py.
"""

from __future__ import annotations

import hashlib
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from test_review_support import person
from vigil import audit, review
from vigil.config import Settings
from vigil.hashing import KnownContent
from vigil.networks import AccountLedger, NetworkSettings
from vigil.networks.export import canonical, export_account
from vigil.networks.graph import campaign_graph, printable, render_graph_svg
from vigil.networks.views import (
    AccountFilter,
    account_list,
    account_view,
    campaign_list,
    campaign_view,
    check_ref,
)
from vigil.store import Database
from vigil.store.models import AuditEvent, AuthorAccount, utcnow
from vigil.text.attachments import AttachmentReader
from vigil.text.classify import TextClassifier
from vigil.text.posts import Post
from vigil.text.scanner import PostScanner
from vigil.text.settings import TextSettings

from media_factory import write_jpeg

PLATFORM = "testnet"
HALF_LIFE = 72.0
THREATS = (
    "We will bomb the synagogue during the service and kill every last one of them",
    "I am going to kill you and your whole family, you will die tonight",
    "I will shoot you all, every single one of you will die",
    "We are going to kill all of them, shoot them in the streets",
    "I will murder every one of them with my own hands",
    "Kill them all, burn them alive, slaughter every last one",
)
PROPAGANDA = "baqiya wa tatamadad! the islamic state will remain and expand, join the mujahideen"
BENIGN = (
    "Lovely morning at the farmers market, the strawberries are back",
    "Does anyone know when the library reopens after the holidays?",
    "Our team won 3-1 last night, what a match",
)
#: Escaped wherever it is shown; reachable by URL (no slash, nothing invisible).
HOSTILE_REF = "<img src=x onerror=alert(1)>"
BANK = "propaganda-images"


@dataclass
class Network:
    """What :func:`build_network` stored: keys and refs the tests look for."""

    db: Database
    campaign_id: str
    start: datetime
    shooter_alert: int | None


@pytest.fixture(scope="session")
def classifier() -> TextClassifier:
    """The shipped classifier, loaded once for every test that scans."""
    return TextClassifier.load(None)


def _post(n: int, author: str, text: str, at: datetime, **fields: Any) -> Post:
    return Post.model_validate(
        {
            "id": str(n),
            "platform": fields.pop("platform", PLATFORM),
            "author_ref": author,
            "text": text,
            "created_at": at.isoformat(),
            "reach": {"followers": 50 * n},
            **fields,
        }
    )


def network_posts(start: datetime) -> list[list[Post]]:
    """The batches, in order: a ring of four accounts pushing near-duplicate propaganda (ring0
    first) and replying to, reposting and mentioning each other; an account posting six
    threats in half an hour; two accounts whose images match a bank; benign accounts, one of
    them with the same reference as ring0 on another platform; a hostile reference."""

    def at(minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    image = {"attachments": [{"path": "photos/banked.jpg"}]}
    ring = [
        _post(1, "ring0", PROPAGANDA, at(0)),
        _post(2, "ring1", PROPAGANDA + " #dawlah", at(10), in_reply_to="1"),
        _post(3, "ring2", "RT " + PROPAGANDA, at(20), repost_of="1", **image),
        _post(4, "ring3", PROPAGANDA + " 🔥🔥 @ring1", at(70), mentions=["ring1"]),
        _post(5, "ring1", PROPAGANDA.replace("join", "JOIN"), at(80)),
        _post(6, HOSTILE_REF, PROPAGANDA + " !!", at(90)),
    ]
    threats = [_post(10 + i, "shooter", text, at(100 + 5 * i)) for i, text in enumerate(THREATS)]
    others = [
        _post(20, "memer", "look at this", at(130), **image),
        _post(21, "baker", BENIGN[0], at(140)),
        _post(22, "baker", BENIGN[1], at(24 * 60 + 5)),
        _post(23, "ring0", BENIGN[2], at(150), platform="othernet"),
        _post(
            24,
            "baker",
            "Thanks everyone, the sourdough came out perfectly",
            at(160),
            in_reply_to="21",
        ),
    ]
    return [ring[:3], ring[3:], threats, others]


def build_network(settings: Settings, classifier: TextClassifier, export_dir: Path) -> Network:
    """Scan :func:`network_posts` into ``settings``' store through the scanner and the ledger;
    the shooter's account alert is then decided (escalated) by a reviewer."""
    (export_dir / "photos").mkdir(parents=True, exist_ok=True)
    image = export_dir / "photos" / "banked.jpg"
    write_jpeg(image, seed=77)
    known = KnownContent(settings)
    try:
        known.banks.create(BANK)
        _, entry = known.add_file(BANK, image, labels=["propaganda"])
        assert entry is not None
        text_settings = TextSettings.of(settings)
        ledger = AccountLedger(NetworkSettings.of(settings), review.PriorityWeights.of(settings))
        scanner = PostScanner(
            known.db,
            text_settings,
            classifier=classifier,
            attachments=AttachmentReader(known=known, base_dir=export_dir),
            hooks=[ledger],
        )
        # On the hour, so that the campaign's hourly buckets are known in advance.
        start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
        for batch in network_posts(start):
            scanner.scan(batch)
        pseudonyms = scanner.pseudonymiser
        shooter_ref = pseudonyms.compute(PLATFORM, "shooter") if pseudonyms else "shooter"
        with known.db.session() as session:
            shooter = session.scalars(
                select(AuthorAccount).where(AuthorAccount.author_ref == shooter_ref)
            ).one()
            alert_id = shooter.alert_id
        if alert_id is not None:
            _escalate(known.db, alert_id)
    finally:
        known.close()
    return Network(Database(settings.resolved_database_url), f"{PLATFORM}:1", start, alert_id)


def _escalate(db: Database, alert_id: int) -> None:
    principal = person(db, "network-reviewer", "reviewer")
    with db.session() as session:
        review.decide(session, principal, alert_id, "escalate", "six threats in half an hour")


@pytest.fixture
def network(settings: Settings, classifier: TextClassifier, tmp_path: Path) -> Iterator[Network]:
    built = build_network(settings, classifier, tmp_path / "export")
    yield built
    built.db.dispose()


# --- references -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("", "1 to 256 characters"),
        ("x" * 257, "1 to 256 characters"),
        ("abc\x00", "U+0000 (a control character) at 3"),
        ("gnp\u202eexe", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("a\u2066b", "U+2066"),
        ("line\u2028break", "U+2028"),
        ("bom\ufeff", "U+FEFF"),
        ("\ufdd0", "U+FDD0"),
        ("tab\there", "U+0009"),
    ],
)
def test_references_with_hidden_or_control_characters_are_refused(ref: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        check_ref(ref)


def test_references_of_every_script_pass() -> None:
    for ref in (
        "ring0",
        "用户_1",
        "مستخدم",
        "Ünïcødé name",
        "👨‍👩‍👧 family",
        HOSTILE_REF,
        "p_" + "a" * 20,
    ):
        assert check_ref(ref) == ref


# --- accounts ---------------------------------------------------------------------------------


def test_the_ledger_filled_what_the_views_read(network: Network) -> None:
    with network.db.session() as session:
        page = account_list(session, AccountFilter(limit=100), half_life_hours=HALF_LIFE)
    refs = [(a.platform, a.author_ref) for a in page.accounts]
    assert page.total == len(refs) == 9
    # The shooter first: six threats in half an hour; the accounts never flagged last.
    assert refs[0] == (PLATFORM, "shooter")
    shooter = page.accounts[0]
    assert shooter.posts == shooter.flagged == 6 and shooter.alert_id == network.shooter_alert
    assert shooter.risk >= 25 and shooter.max_severity == 10
    assert sum(stats.count for stats in shooter.labels.values()) == 6
    unflagged = [a.author_ref for a in page.accounts if a.risk == 0]
    assert set(unflagged) >= {"baker"} and refs[-len(unflagged) :] == [
        (a.platform, a.author_ref) for a in page.accounts if a.risk == 0
    ]
    risks = [a.risk for a in page.accounts]
    assert risks == sorted(risks, reverse=True)


def test_filters_and_pages(network: Network) -> None:
    with network.db.session() as session:

        def listed(**where: Any) -> list[str]:
            page = account_list(session, AccountFilter(**where), half_life_hours=HALF_LIFE)
            return [a.author_ref for a in page.accounts]

        everyone = listed(limit=100)
        assert listed(platform="othernet") == ["ring0"]
        assert "ring0" in listed(platform=PLATFORM)
        assert listed(min_risk=25) == ["shooter"]
        assert set(listed(label="threat_to_life")) == {"shooter"}
        assert "baker" not in listed(label="threat_to_life")
        assert listed(label="no_such_label") == []
        late = network.start + timedelta(hours=23)
        assert listed(since=late) == ["baker"]
        pages = [listed(limit=2, offset=offset) for offset in range(0, 10, 2)]
        assert [ref for page in pages for ref in page] == everyone
        counted = account_list(
            session, AccountFilter(min_risk=25, limit=1), half_life_hours=HALF_LIFE
        )
        assert counted.total == 1


def test_the_listing_ranks_by_risk_now_exactly(db: Database) -> None:
    """1,300 accounts (past two chunks of the walk), most at 0, the others with risks stored
    up to 60 days ago: every page, with and without a minimum, is the brute-force ranking's."""
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    rng = random.Random(5)
    rows = []
    for n in range(1300):
        at_risk = rng.random() < 0.6
        risk_at = now - timedelta(hours=rng.choice([0, 1, 24, 72, 200, 24 * 60]))
        rows.append(
            AuthorAccount(
                platform=rng.choice(["a", "b"]),
                author_ref=f"acct{n}",
                first_seen=risk_at - timedelta(days=1),
                last_seen=risk_at - timedelta(minutes=rng.randrange(0, 3) * 7),
                posts=1,
                flagged=int(at_risk),
                labels={"hate": {"count": 1, "max_severity": 5}} if at_risk else {},
                banks=[],
                risk=round(rng.uniform(0.5, 90), 1) if at_risk else 0.0,
                risk_at=risk_at,
                peak_risk=0.0,
            )
        )
    with db.session() as session:
        session.add_all(rows)
    factor = {
        row.author_ref: 2 ** (-(now - row.risk_at).total_seconds() / 3600 / HALF_LIFE)
        for row in rows
    }
    with db.session() as session:
        stored = list(session.scalars(select(AuthorAccount)))
        brute = sorted(
            stored,
            key=lambda a: (a.risk * factor[a.author_ref], a.last_seen, a.id),
            reverse=True,
        )
        for where, expected in (
            ({}, brute),
            ({"platform": "a"}, [a for a in brute if a.platform == "a"]),
            ({"min_risk": 20.0}, [a for a in brute if a.risk * factor[a.author_ref] >= 20]),
        ):
            for offset, limit in ((0, 10), (95, 30), (700, 100), (len(expected) - 5, 50)):
                page = account_list(
                    session,
                    AccountFilter(offset=offset, limit=limit, **where),
                    half_life_hours=HALF_LIFE,
                    now=now,
                )
                assert page.total == len(expected)
                assert [a.author_ref for a in page.accounts] == [
                    a.author_ref for a in expected[offset : offset + limit]
                ], (where, offset, limit)


def test_one_accounts_history_links_campaigns_and_alerts(network: Network) -> None:
    with network.db.session() as session:
        ring0 = account_view(session, PLATFORM, "ring0", half_life_hours=HALF_LIFE)
        ring1 = account_view(session, PLATFORM, "ring1", half_life_hours=HALF_LIFE)
        ring2 = account_view(session, PLATFORM, "ring2", half_life_hours=HALF_LIFE)
        shooter = account_view(session, PLATFORM, "shooter", half_life_hours=HALF_LIFE)
        nobody = account_view(session, PLATFORM, "nobody", half_life_hours=HALF_LIFE)
        paged = account_view(
            session, PLATFORM, "shooter", half_life_hours=HALF_LIFE, posts_limit=2, posts_offset=1
        )
    assert nobody is None
    assert ring0 is not None and ring1 is not None and ring2 is not None and shooter is not None
    # The same reference on another platform is another account, named, not merged.
    assert ring0.also_on == ["othernet"] and ring0.account.posts == 1
    # Links in and out, from replies, reposts and mentions.
    assert {(k.author_ref, k.kind) for k in ring0.links_in} == {
        ("ring1", "reply"),
        ("ring2", "repost"),
    }
    assert {(k.author_ref, k.kind) for k in ring1.links_out} == {("ring0", "reply")}
    assert {(k.author_ref, k.kind) for k in ring1.links_in} == {("ring3", "mention")}
    # Campaigns: ring0 started the one ring1 joined twice.
    [started] = ring0.campaigns
    assert started.campaign_id == network.campaign_id and started.first and started.posts == 1
    [joined] = ring1.campaigns
    assert joined == type(joined)(network.campaign_id, 2, False, 6, 5)
    # Shared media: ring2's and memer's images matched the same bank.
    assert ring2.account.banks == [BANK]
    assert [(p.author_ref, p.banks) for p in ring2.shared_media] == [("memer", [BANK])]
    # Posts per day and the newest posts first.
    assert sum(day.posts for day in shooter.days) == 6
    assert sum(day.flagged for day in shooter.days) == 6
    assert [p.key for p in shooter.posts] == [f"{PLATFORM}:{15 - i}" for i in range(6)]
    assert paged is not None
    assert [p.key for p in paged.posts] == [f"{PLATFORM}:14", f"{PLATFORM}:13"]
    # Its account alert and the decision on it; the alerts of its posts.
    kinds = {a.content_kind for a in shooter.alerts}
    assert "account" in kinds and shooter.alerts_total == len(shooter.alerts)
    [account_alert] = [a for a in shooter.alerts if a.content_kind == "account"]
    assert account_alert.id == network.shooter_alert
    [decision] = account_alert.decisions
    assert (decision.outcome, decision.decided_by, decision.approval_status) == (
        "escalate",
        "network-reviewer",
        "pending",  # four eyes: a decision about an account waits for a second person
    )


# --- campaigns --------------------------------------------------------------------------------


def test_a_campaign_its_first_poster_members_and_spread(network: Network) -> None:
    with network.db.session() as session:
        page = campaign_list(session)
        view = campaign_view(session, network.campaign_id, half_life_hours=HALF_LIFE)
        missing = campaign_view(session, "testnet:404", half_life_hours=HALF_LIFE)
        later = campaign_list(session, since=network.start + timedelta(days=2))
    assert missing is None and later.total == 0 and later.campaigns == []
    assert page.total == 1
    [listed] = page.campaigns
    assert view is not None and listed == view.campaign
    assert (listed.posts, listed.accounts) == (6, 5)
    assert listed.first_at == network.start and listed.max_severity > 0
    assert listed.alert_id is not None  # the campaign became one queue item
    assert view.first_post is not None and view.first_post.key == network.campaign_id
    assert [m.author_ref for m in view.members] == ["ring0", "ring1", "ring2", "ring3", HOSTILE_REF]
    assert [m.first for m in view.members] == [True, False, False, False, False]
    assert view.members[1].posts == 2
    # Ninety minutes: hourly buckets, the accounts adding up.
    assert view.bucket == "hour"
    assert [(b.posts, b.new_accounts, b.accounts) for b in view.spread] == [(3, 3, 3), (3, 2, 5)]


def test_the_campaign_graph_is_drawn_safely_and_accessibly(network: Network) -> None:
    with network.db.session() as session:
        graph = campaign_graph(session, network.campaign_id, half_life_hours=HALF_LIFE)
        small = campaign_graph(session, network.campaign_id, half_life_hours=HALF_LIFE, max_nodes=2)
        missing = campaign_graph(session, "testnet:404", half_life_hours=HALF_LIFE)
    assert missing is None and graph is not None and small is not None
    accounts = [n for n in graph.nodes if n.kind == "account"]
    assert len(accounts) == 5 and graph.left_out == 0
    assert [n.label for n in accounts if n.first] == [f"{PLATFORM}:ring0"]
    kinds = {
        (e.source.rsplit(":", 1)[-1], e.target.rsplit(":", 1)[-1], e.kind) for e in graph.edges
    }
    assert {
        ("ring1", "ring0", "reply"),
        ("ring2", "ring0", "repost"),
        ("ring3", "ring1", "mention"),
    } <= kinds
    assert ("ring2", BANK, "media") in kinds
    # Bounded: two accounts drawn, the first poster among them, the rest counted.
    drawn = [n for n in small.nodes if n.kind == "account"]
    assert len(drawn) == 2 and any(n.first for n in drawn) and small.left_out == 3

    svg = render_graph_svg(graph)
    assert svg == render_graph_svg(graph)  # a seeded layout: the same picture every time
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img" and root.get("aria-labelledby") == "graph-title graph-desc"
    assert root.find(f"{ns}title").text == f"Campaign {network.campaign_id}"
    desc = root.find(f"{ns}desc").text
    assert "5 accounts drawn" in desc and "1 reply, 1 repost, 1 mention" in desc
    assert "first posted by testnet:ring0" in desc
    texts = [t.text or "" for t in root.iter(f"{ns}text")]
    assert any(t.startswith("★ testnet:ring0") for t in texts)
    # The hostile reference is text, never markup; no script, no external reference anywhere.
    assert "<img" not in svg and "&lt;img src=x onerror=alert(1)&gt;" in svg
    assert not [
        e
        for e in root.iter()
        if e.tag in (f"{ns}script", f"{ns}foreignObject", f"{ns}a", f"{ns}style", f"{ns}image")
    ]
    assert "href" not in svg and "javascript:" not in svg
    small_svg = render_graph_svg(small, id_prefix="small")
    assert "3 more accounts not drawn" in small_svg and 'id="small-title"' in small_svg
    with pytest.raises(ValueError, match="id_prefix"):
        render_graph_svg(graph, id_prefix='x" onload="alert(1)')


def test_labels_show_hidden_characters_instead_of_obeying_them() -> None:
    assert printable("gnp\u202eexe.js") == "gnp\\u202eexe.js"
    assert printable("a\x00b\u200bc") == "a\\u0000b\\u200bc"
    assert printable("x" * 30, 10) == "x" * 9 + "…"


# --- evidence pack ----------------------------------------------------------------------------


def test_the_evidence_pack_carries_everything_and_its_hash_is_audited(network: Network) -> None:
    with network.db.session() as session:
        pack = export_account(session, "user:ines", PLATFORM, "shooter", half_life_hours=HALF_LIFE)
        nothing = export_account(
            session, "user:ines", PLATFORM, "nobody", half_life_hours=HALF_LIFE
        )
    assert nothing is None and pack is not None
    assert pack.sha256 == hashlib.sha256(canonical(pack.pack)).hexdigest()
    body = pack.pack
    assert body["account"]["author_ref"] == "shooter" and body["generated_by"] == "user:ines"
    assert body["posts_total"] == 6
    assert sorted(p["text"] for p in body["posts"]) == sorted(THREATS)
    alert_ids = {a["id"] for a in body["alerts"]}
    assert network.shooter_alert in alert_ids
    [account_alert] = [a for a in body["alerts"] if a["content_kind"] == "account"]
    assert account_alert["evidence"] and account_alert["explanation"]
    assert [d["outcome"] for d in body["decisions"]] == ["escalate"]
    trail = {(e["action"], e["object_type"]) for e in body["audit"]}
    assert ("decision.create", "decision") in trail
    assert all(len(e["hash"]) == 64 for e in body["audit"])
    with network.db.session() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "account.export"))
        assert event.actor == "user:ines" and event.detail["sha256"] == pack.sha256
        assert event.detail["posts"] == 6 and set(event.detail["alerts"]) == alert_ids
    assert audit.verify(network.db).ok
    # Bounded: the flagged posts first.
    with network.db.session() as session:
        two = export_account(
            session, "user:ines", PLATFORM, "shooter", half_life_hours=HALF_LIFE, max_posts=2
        )
    assert two is not None and len(two.pack["posts"]) == 2 and two.pack["posts_total"] == 6
    # The first export is in the second's trail.
    assert "account.export" in {e["action"] for e in two.pack["audit"]}
