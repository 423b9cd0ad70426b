"""``/v1/accounts`` and ``/v1/campaigns`` over real HTTP, and ``vigil accounts`` / ``vigil
campaigns`` in their own processes, on the network of test_networks_views (scanned by the real
scanner and ledger): filters and pages, 404s, hostile references refused with 422 naming the
character, the evidence pack (investigators and supervisors only, its hash in the audit log),
the campaign graph as SVG, and the audited reveal of a pseudonym.

Who may call each route is the denial matrix's business (test_api_auth.py reads each route's
permission); here, the interesting refusals.
"""

from __future__ import annotations

import base64
import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from test_cli import run
from test_networks_views import (
    HOSTILE_REF,
    PLATFORM,
    THREATS,
    Network,
    build_network,
)
from vigil.api.settings import ApiSettings
from vigil.config import Settings
from vigil.networks import NetworkSettings
from vigil.networks.export import canonical
from vigil.pseudonyms import PREFIX
from vigil.store import Database
from vigil.store.models import AuditEvent, AuthorAccount, utcnow
from vigil.text.classify import TextClassifier

from test_api_support import Api, running_api

pytest_plugins = ["test_api_support", "test_networks_views"]

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


class PseudonymousApiSettings(ApiSettings, NetworkSettings):
    """The API's settings with pseudonymisation on."""


@pytest.fixture
def served(
    settings: Settings, classifier: TextClassifier, tmp_path: Path
) -> Iterator[tuple[Api, Network]]:
    network = build_network(settings, classifier, tmp_path / "export")
    try:
        with running_api(ApiSettings.of(settings)) as api:
            yield api, network
    finally:
        network.db.dispose()


def _path(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


def _events(network: Network, action: str) -> list[AuditEvent]:
    with network.db.session() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(session.scalars(query))


def test_accounts_by_risk_with_filters_and_pages(served: tuple[Api, Network]) -> None:
    api, _ = served
    with api.client("reviewer") as client:
        everyone = client.get("/v1/accounts", params={"limit": 100})
        assert everyone.status_code == 200, everyone.text
        body = everyone.json()
        refs = [a["author_ref"] for a in body["accounts"]]
        assert body["total"] == 9 and refs[0] == "shooter"
        shooter = body["accounts"][0]
        assert shooter["risk"] >= 25 and shooter["alert_id"] is not None
        assert shooter["labels"]["threat_to_life"]["count"] == 6

        def listed(**params: object) -> list[str]:
            response = client.get("/v1/accounts", params=params)
            assert response.status_code == 200, response.text
            return [a["author_ref"] for a in response.json()["accounts"]]

        assert listed(min_risk=25) == ["shooter"]
        assert listed(label="threat_to_life") == ["shooter"]
        assert listed(platform="othernet") == ["ring0"]
        assert listed(limit=3, offset=3) == refs[3:6]
        for params, where in (
            ({"label": "Threat-To-Life"}, "label"),
            ({"min_risk": -1}, "min_risk"),
            ({"min_risk": "nan"}, "min_risk"),
            ({"limit": 0}, "limit"),
            ({"offset": 10**12}, "offset"),
        ):
            refused = client.get("/v1/accounts", params=params)
            assert refused.status_code == 422, (params, refused.text)
            assert refused.json()["error"] == "invalid_request"
            assert refused.json()["detail"][0]["loc"] == ["query", where]


def test_one_account_and_hostile_references(served: tuple[Api, Network]) -> None:
    api, network = served
    with api.client("analyst") as client:
        ring0 = client.get(f"/v1/accounts/{PLATFORM}/ring0")
        assert ring0.status_code == 200, ring0.text
        view = ring0.json()
        assert view["also_on"] == ["othernet"]
        assert {(k["author_ref"], k["kind"]) for k in view["links_in"]} == {
            ("ring1", "reply"),
            ("ring2", "repost"),
        }
        assert view["campaigns"][0]["campaign_id"] == network.campaign_id
        shooter = client.get(f"/v1/accounts/{PLATFORM}/shooter", params={"posts_limit": 2})
        assert [p["text"] for p in shooter.json()["posts"]] == [THREATS[5], THREATS[4]]
        # Alerts listed without their evidence: that is GET /v1/alerts/{id}'s, audited there.
        assert all("evidence" not in a and "text" not in a for a in shooter.json()["alerts"])
        hostile = client.get(f"/v1/accounts/{_path(PLATFORM, HOSTILE_REF)}")
        assert hostile.status_code == 200 and hostile.json()["account"]["author_ref"] == HOSTILE_REF

        missing = client.get(f"/v1/accounts/{PLATFORM}/nobody")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        for ref, says in (
            ("gnp\u202eexe", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
            ("nul\x00", "U+0000"),
            ("bidi\u2067isolate", "U+2067"),
            ("x" * 257, "at most 256 characters"),
        ):
            for suffix in ("", "/export"):
                refused = client.get(f"/v1/accounts/{_path(PLATFORM, ref)}{suffix}")
                expected = 403 if suffix else 422  # the export's permission is checked first
                assert refused.status_code == expected, (ref, suffix, refused.text)
            body = client.get(f"/v1/accounts/{_path(PLATFORM, ref)}").json()
            assert body["error"] == "invalid_request"
            assert body["detail"][0]["loc"] == ["path", "author_ref"]
            assert says in body["detail"][0]["msg"]
        bad_platform = client.get(f"/v1/accounts/{_path('x' * 65, 'ring0')}")
        assert bad_platform.status_code == 422
        assert bad_platform.json()["detail"][0]["loc"] == ["path", "platform"]


def test_the_evidence_pack_is_for_referrers_and_audited(served: tuple[Api, Network]) -> None:
    api, network = served
    path = f"/v1/accounts/{PLATFORM}/shooter/export"
    for role in ("admin", "analyst", "reviewer"):
        with api.client(role) as client:  # type: ignore[arg-type]
            assert client.get(path).status_code == 403, role
    with api.client("investigator") as client:
        response = client.get(path, params={"max_posts": 3})
        missing = client.get(f"/v1/accounts/{PLATFORM}/nobody/export")
    assert response.status_code == 200, response.text
    assert missing.status_code == 404
    body = response.json()
    assert body["sha256"] == hashlib.sha256(canonical(body["pack"])).hexdigest()
    pack = body["pack"]
    assert pack["posts_total"] == 6 and len(pack["posts"]) == 3
    assert {p["text"] for p in pack["posts"]} <= set(THREATS)
    assert network.shooter_alert in {a["id"] for a in pack["alerts"]}
    [event] = _events(network, "account.export")
    assert event.actor == "token:test-investigator"
    assert event.detail["sha256"] == body["sha256"] and event.detail["author_ref"] == "shooter"


def test_campaigns_and_their_graph(served: tuple[Api, Network]) -> None:
    api, network = served
    with api.client("reviewer") as client:
        listed = client.get("/v1/campaigns").json()
        one = client.get(f"/v1/campaigns/{_path(network.campaign_id)}")
        svg = client.get(f"/v1/campaigns/{_path(network.campaign_id)}/graph.svg")
        small = client.get(
            f"/v1/campaigns/{_path(network.campaign_id)}/graph.svg", params={"max_nodes": 2}
        )
        missing = client.get("/v1/campaigns/testnet:404")
        missing_svg = client.get("/v1/campaigns/testnet:404/graph.svg")
        hostile = client.get(f"/v1/campaigns/{_path('testnet:1' + chr(0x202E))}")
    assert listed["total"] == 1 and listed["campaigns"][0]["id"] == network.campaign_id
    assert one.status_code == 200
    members = one.json()["members"]
    assert [m["author_ref"] for m in members][:2] == ["ring0", "ring1"] and members[0]["first"]
    assert [b["accounts"] for b in one.json()["spread"]] == [3, 5]
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["content-security-policy"] == "default-src 'none'"
    root = ET.fromstring(svg.text)
    assert root.get("role") == "img"
    assert "3 more accounts not drawn" in small.text
    assert missing.status_code == missing_svg.status_code == 404
    assert missing_svg.json()["error"] == "not_found"
    assert hostile.status_code == 422 and "U+202E" in hostile.json()["detail"][0]["msg"]


@pytest.fixture
def pseudonymous(
    settings: Settings, classifier: TextClassifier, tmp_path: Path
) -> Iterator[tuple[Api, Network]]:
    on = PseudonymousApiSettings(
        **{**settings.model_dump(), "accounts_pseudonymise": True, "pseudonym_key": KEY}
    )
    network = build_network(on, classifier, tmp_path / "export")
    try:
        with running_api(on) as api:
            yield api, network
    finally:
        network.db.dispose()


def test_a_pseudonym_is_revealed_to_the_admin_alone_and_audited(
    pseudonymous: tuple[Api, Network],
) -> None:
    api, network = pseudonymous
    now = utcnow()
    with network.db.session() as session:
        # Stored before pseudonymisation was on, and a pseudonym whose mapping is missing.
        for ref in ("legacy", PREFIX + "a" * 20):
            session.add(
                AuthorAccount(
                    platform=PLATFORM, author_ref=ref, first_seen=now, last_seen=now, risk_at=now
                )
            )
    with api.client("admin") as client:
        top = client.get("/v1/accounts").json()["accounts"][0]["author_ref"]
        assert top.startswith(PREFIX)
        path = f"/v1/accounts/{PLATFORM}/{top}/reveal"
        revealed = client.post(path)
        assert revealed.status_code == 200, revealed.text
        assert revealed.json() == {"platform": PLATFORM, "pseudonym": top, "author_ref": "shooter"}
        plain = client.post(f"/v1/accounts/{PLATFORM}/legacy/reveal")
        assert plain.status_code == 409 and plain.json()["error"] == "not_pseudonymised"
        lost = client.post(f"/v1/accounts/{PLATFORM}/{PREFIX}{'a' * 20}/reveal")
        assert lost.status_code == 409 and lost.json()["error"] == "reveal_failed"
        assert client.post(f"/v1/accounts/{PLATFORM}/p_nobody/reveal").status_code == 404
    for role in ("investigator", "supervisor"):
        with api.client(role) as client:  # type: ignore[arg-type]
            assert client.post(path).status_code == 403
    events = _events(network, "account.reveal")
    assert [(e.actor, e.detail["revealed"]) for e in events] == [
        ("token:test-admin", True),
        ("token:test-admin", False),
        ("token:test-admin", False),
    ]
    assert events[0].detail["pseudonym"] == top
    # The log says that a reveal happened, never what it revealed.
    assert "shooter" not in json.dumps([e.detail for e in events])


def test_the_cli_lists_shows_exports_and_draws(network_settings: Settings, tmp_path: Path) -> None:
    listed = run(network_settings, "accounts", "list", "--json")
    accounts = [json.loads(line) for line in listed.stdout.splitlines()]
    assert accounts[0]["author_ref"] == "shooter" and len(accounts) == 9
    table = run(network_settings, "accounts", "list", "--min-risk", "25")
    assert "shooter" in table.stdout and "1 of 1 accounts" in table.stdout
    shown = json.loads(run(network_settings, "accounts", "show", PLATFORM, "ring0").stdout)
    assert shown["also_on"] == ["othernet"]
    missing = run(network_settings, "accounts", "show", PLATFORM, "nobody", check=False)
    assert missing.returncode == 1 and "no account 'nobody'" in missing.stderr
    hostile = run(network_settings, "accounts", "show", PLATFORM, "a\u202eb", check=False)
    assert hostile.returncode == 2 and "U+202E" in hostile.stderr

    pack_file = tmp_path / "pack.json"
    exported = run(
        network_settings, "accounts", "export", PLATFORM, "shooter", "-o", str(pack_file)
    )
    digest = exported.stderr.strip().split()[-1]
    assert hashlib.sha256(pack_file.read_bytes().rstrip(b"\n")).hexdigest() == digest
    assert json.loads(pack_file.read_text())["posts_total"] == 6
    db = Database(network_settings.resolved_database_url)
    try:
        with db.session() as session:
            [event] = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "account.export")
            )
        assert event.actor.startswith("cli:") and event.detail["sha256"] == digest
    finally:
        db.dispose()

    campaigns = run(network_settings, "campaigns", "list", "--json").stdout.splitlines()
    [campaign] = [json.loads(line) for line in campaigns]
    svg = tmp_path / "graph.svg"
    shown_campaign = run(network_settings, "campaigns", "show", campaign["id"], "--svg", str(svg))
    assert json.loads(shown_campaign.stdout)["members"][0]["first"]
    assert ET.parse(svg).getroot().get("role") == "img"


@pytest.fixture
def network_settings(
    settings: Settings, classifier: TextClassifier, tmp_path: Path
) -> Iterator[Settings]:
    network = build_network(settings, classifier, tmp_path / "export")
    network.db.dispose()
    yield settings
