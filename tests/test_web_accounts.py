"""The console's Accounts and Campaigns pages over real HTTP, on the network of
test_networks_views: the list by risk and its filters (a form's empty fields are no filter), an
account's page (its alerts and decisions linking to the queue, its links and campaigns, the
evidence pack offered only to those who may export it), a campaign's page with its graph
inlined, and a hostile reference shown as text everywhere. Which roles may open each page is
test_web.py's matrix."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from test_networks_views import HOSTILE_REF, PLATFORM, THREATS, Network, build_network
from test_web_support import Console, running_console, web_settings
from vigil.config import Settings
from vigil.text.classify import TextClassifier

pytest_plugins = ["test_web_support", "test_networks_views"]

ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture
def served(
    settings: Settings, classifier: TextClassifier, tmp_path: Path
) -> Iterator[tuple[Console, Network]]:
    network = build_network(settings, classifier, tmp_path / "export")
    try:
        with running_console(web_settings(settings)) as console:
            yield console, network
    finally:
        network.db.dispose()


def _rows(html: str, table: str) -> list[str]:
    body = re.search(rf'<table[^>]*id="{table}".*?</table>', html, re.S)
    assert body is not None, f"no table {table}"
    return re.findall(r'<tr class="row">(.*?)</tr>', body.group(0), re.S)


def test_the_accounts_list_by_risk_and_its_filters(served: tuple[Console, Network]) -> None:
    console, _ = served
    with console.signed_in("reviewer") as client:
        page = client.get("/console/accounts")
        assert page.status_code == 200, page.text
        assert 'href="/console/accounts"' in page.text  # the navigation link
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        rows = _rows(page.text, "accounts")
        assert len(rows) == 9 and "shooter" in rows[0]
        # The hostile reference is text, isolated from the text around it.
        assert HOSTILE_REF not in page.text and f"<bdi>{ESCAPED}</bdi>" in page.text
        assert f'href="/console/accounts/{PLATFORM}/{quote(HOSTILE_REF, safe="")}"' in page.text

        # A submitted form's empty fields filter nothing.
        empty = client.get("/console/accounts?platform=&min_risk=&label=&since=")
        assert len(_rows(empty.text, "accounts")) == 9
        risky = client.get("/console/accounts", params={"min_risk": "25"})
        [row] = _rows(risky.text, "accounts")
        assert "shooter" in row and 'value="25"' in risky.text
        assert _rows(client.get("/console/accounts?platform=othernet").text, "accounts")
        none = client.get("/console/accounts", params={"label": "offensive", "platform": "x"})
        assert "No accounts match these filters" in none.text
        bad = client.get("/console/accounts", params={"label": "Not A Label"})
        assert bad.status_code == 422 and "label" in bad.text


def test_an_accounts_page(served: tuple[Console, Network]) -> None:
    console, network = served
    with console.signed_in("reviewer") as client:
        page = client.get(f"/console/accounts/{PLATFORM}/shooter")
        assert page.status_code == 200, page.text
        html = page.text
        # Its account alert, and the decision waiting for a second person.
        assert f'href="/console/alerts/{network.shooter_alert}"' in html
        assert "escalate by network-reviewer (pending)" in html
        assert all(text in html for text in THREATS)
        assert len(_rows(html, "posts")) == 6
        assert "Download the evidence pack" not in html  # reviewers do not export
        ring0 = client.get(f"/console/accounts/{PLATFORM}/ring0").text
        assert 'href="/console/accounts/othernet/ring0"' in ring0
        assert '<a href="/console/accounts/testnet/ring1"><bdi>ring1</bdi></a>' in ring0
        assert f'href="/console/campaigns/{quote(network.campaign_id, safe="")}"' in ring0
        ring2 = client.get(f"/console/accounts/{PLATFORM}/ring2").text
        assert re.search(r'id="shared-media".*memer', ring2, re.S)
        hostile = client.get(f"/console/accounts/{PLATFORM}/{quote(HOSTILE_REF, safe='')}")
        assert hostile.status_code == 200
        assert (
            HOSTILE_REF not in hostile.text and f"<h1>Account <bdi>{ESCAPED}</bdi>" in hostile.text
        )
        assert client.get(f"/console/accounts/{PLATFORM}/nobody").status_code == 404
        refused = client.get(f"/console/accounts/{PLATFORM}/{quote('a' + chr(0x202E) + 'b')}")
        assert refused.status_code == 422 and "U+202E" in refused.text
    with console.signed_in("investigator") as client:
        html = client.get(f"/console/accounts/{PLATFORM}/shooter").text
        found = re.search(r'<a href="([^"]+)" download="account-evidence.json">', html)
        assert found is not None
        # The link is the API's export, which a session may GET without a CSRF token.
        client.headers.pop("X-CSRF-Token")
        pack = client.get(found.group(1))
        assert pack.status_code == 200 and pack.json()["pack"]["posts_total"] == 6


def test_a_campaigns_page_with_its_graph(served: tuple[Console, Network]) -> None:
    console, network = served
    href = f"/console/campaigns/{quote(network.campaign_id, safe='')}"
    with console.signed_in("analyst") as client:
        listed = client.get("/console/campaigns")
        assert listed.status_code == 200 and f'href="{href}"' in listed.text
        page = client.get(href)
        assert page.status_code == 200, page.text
        html = page.text
    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg is not None
    assert 'role="img" aria-labelledby="campaign-graph-title campaign-graph-desc"' in svg.group(0)
    assert '<desc id="campaign-graph-desc">5 accounts drawn' in svg.group(0)
    # One script on the page: the console's own, from its own origin.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/console/static/console.js" defer>']
    assert HOSTILE_REF not in html and ESCAPED in html
    members = _rows(html, "members")
    assert len(members) == 5 and "ring0" in members[0] and "posted first" in members[0]
    assert '<a href="/console/accounts/testnet/ring0"><bdi>ring0</bdi></a>' in html
    spread = re.search(r'<table id="spread">.*?</table>', html, re.S)
    assert spread is not None and len(re.findall(r"<tr><td>", spread.group(0))) == 2
    with console.signed_in("analyst") as client:
        assert client.get("/console/campaigns/testnet:404").status_code == 404
