"""The Accounts and Campaigns pages in headless Chromium, on the network of test_networks_views
(posts scanned by the real scanner with the real account ledger, served by test_web_accounts'
``served``), to which the shooter then adds one repost of the ring's propaganda, so that the
account at the highest risk is also in the campaign.

An investigator opens Accounts from the navigation, sees the shooter first (the highest risk
now), filters by a label, opens the account (its labels and highest severity), follows its
account alert to the alert page (the reviewer's escalation waiting for a second person, whom the
investigator may be) and comes back, opens the campaign it posted in (the graph: its nodes, the
first poster ringed and starred, its accessible name), and downloads the evidence pack, whose
SHA-256 is the pack's and the one the audit log recorded. A reviewer, who may not export, is not
offered the pack; the hostile reference is text on every page it is shown on.

Without chromium the tests are skipped locally and fail in CI, like test_web_e2e.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect
from sqlalchemy import select

from test_networks_views import HOSTILE_REF, PLATFORM, PROPAGANDA, Network, _post
from test_web_e2e import _ready, _sign_in
from test_web_support import Console
from vigil import review
from vigil.config import Settings
from vigil.networks import AccountLedger, NetworkSettings
from vigil.networks.export import canonical
from vigil.store.models import AuditEvent, PostRecord
from vigil.text.classify import TextClassifier
from vigil.text.scanner import PostScanner
from vigil.text.settings import TextSettings

pytest_plugins = ["test_web_support", "browser_support", "test_web_accounts"]

_TIMEOUT_MS = 20_000
#: The shooter's repost: a near-duplicate of the ring's posts, 45 minutes after the last.
_REPOST = "RT " + PROPAGANDA + " they all deserve it"


class _Watched:
    """A browser context's page, with what went wrong in it: uncaught script errors and any
    dialog (an injected ``alert(1)`` would open one)."""

    def __init__(self, browser: Browser, console: Console) -> None:
        self.context: BrowserContext = browser.new_context(
            base_url=console.base_url, viewport={"width": 1280, "height": 900}
        )
        self.context.set_default_timeout(_TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def close(self) -> None:
        self.context.close()
        assert self.errors == [] and self.dialogs == []


def _shooter_joins_the_campaign(
    console: Console, settings: Settings, classifier: TextClassifier, network: Network
) -> None:
    """Scan the shooter's repost through a new scanner (which restores the campaigns from the
    store, as a restarted one does) with the ledger as its hook."""
    ledger = AccountLedger(NetworkSettings.of(settings), review.PriorityWeights.of(settings))
    scanner = PostScanner(
        console.known.db, TextSettings.of(settings), classifier=classifier, hooks=[ledger]
    )
    scanner.scan([_post(30, "shooter", _REPOST, network.start + timedelta(minutes=135))])
    with console.known.db.session() as session:
        record = session.scalars(select(PostRecord).where(PostRecord.key == f"{PLATFORM}:30")).one()
        assert record.campaign_id == network.campaign_id


def _risks(page: Page) -> list[float]:
    """The Risk now column of the accounts table, top to bottom."""
    return [
        float(text) for text in page.locator("#accounts tr.row td:nth-child(3)").all_inner_texts()
    ]


def test_an_investigator_follows_an_account_to_its_alert_campaign_and_evidence_pack(
    served: tuple[Console, Network],
    settings: Settings,
    classifier: TextClassifier,
    browser: Browser,
) -> None:
    console, network = served
    _shooter_joins_the_campaign(console, settings, classifier, network)
    watched = _Watched(browser, console)
    page = watched.page

    page.goto("/console/queue")
    _sign_in(page, "console-investigator")
    _ready(page)
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Accounts").click()
    expect(page).to_have_url(f"{console.base_url}/console/accounts")
    rows = page.locator("#accounts tr.row")
    expect(rows).to_have_count(9)
    expect(rows.first).to_contain_text("shooter")
    risks = _risks(page)
    assert risks == sorted(risks, reverse=True) and risks[0] >= 25, risks

    # Filtered by a label: the form's other fields are sent empty, and filter nothing.
    page.get_by_label("Flagged as").fill("threat_to_life")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/console/accounts\?.*label=threat_to_life"))
    expect(rows).to_have_count(1)
    expect(page.get_by_label("Flagged as")).to_have_value("threat_to_life")
    rows.first.get_by_role("link", name="shooter").click()

    expect(page).to_have_url(f"{console.base_url}/console/accounts/{PLATFORM}/shooter")
    expect(page.locator("h1")).to_have_text(f"Account shooter {PLATFORM}")
    expect(page.locator("dl.facts")).to_contain_text("highest severity 10")
    labels = page.locator("h2:text-is('Flagged posts by label') + table")
    expect(labels.locator("tr", has_text="threat_to_life")).to_contain_text("10")
    alert = page.locator("dt:text-is('Account alert') + dd")
    expect(alert).to_contain_text("decisions on an account need a second person")
    alert.get_by_role("link", name=f"#{network.shooter_alert}").click()

    # The account alert: the reviewer's escalation waits for a second person.
    expect(page).to_have_url(f"{console.base_url}/console/alerts/{network.shooter_alert}")
    expect(page.locator("h1")).to_contain_text(f"Alert #{network.shooter_alert}")
    expect(page.locator("dt:text-is('Kind') + dd")).to_have_text("account")
    expect(page.locator("p.explanation")).to_contain_text("risk")
    decision = page.locator("section[aria-labelledby=decisions-title] tr.row")
    expect(decision).to_have_count(1)
    expect(decision).to_contain_text("escalate")
    expect(decision).to_contain_text("network-reviewer")
    expect(decision).to_contain_text("pending")
    expect(decision.get_by_role("button", name="Approve")).to_be_visible()
    page.go_back()

    expect(page).to_have_url(f"{console.base_url}/console/accounts/{PLATFORM}/shooter")
    campaigns = page.locator("table#campaigns")
    expect(campaigns.locator("tbody tr")).to_have_count(1)
    campaigns.get_by_role("link", name=network.campaign_id).click()

    # The campaign: the picture of its network, named for assistive technology.
    expect(page.locator("h1")).to_have_text(f"Campaign {network.campaign_id}")
    graph = page.locator("figure.graph svg[role=img]")
    # Labelled by its title and its description, which says in words what is drawn.
    expect(graph).to_have_accessible_name(
        re.compile(
            rf"^Campaign {network.campaign_id} 6 accounts drawn; .*"
            rf"first posted by {PLATFORM}:ring0\.$"
        )
    )
    nodes = graph.locator(":scope > g > g")
    expect(nodes.filter(has=page.locator("circle"))).to_have_count(6)  # the accounts
    expect(nodes.filter(has=page.locator("polygon"))).to_have_count(1)  # the campaign hub
    first = nodes.filter(has_text="★")
    expect(first).to_have_count(1)
    expect(first.locator("text")).to_have_text(f"★ {PLATFORM}:ring0")
    expect(first.locator("circle[fill=none]")).to_have_count(1)  # the ring
    expect(nodes.filter(has_text="shooter").locator("title")).to_contain_text("risk")
    members = page.locator("#members tr.row")
    expect(members).to_have_count(6)
    expect(members.first).to_contain_text("ring0")
    expect(members.first.locator(".badge")).to_have_text("posted first")
    # The hostile reference: text in the table and in the picture, no element of its own.
    expect(members.get_by_role("link", name=HOSTILE_REF)).to_have_count(1)
    expect(nodes.filter(has_text=f"{PLATFORM}:<img src=x")).to_have_count(1)
    expect(page.locator("main img")).to_have_count(0)
    page.go_back()

    # The evidence pack: the API's export, downloaded with the session.
    expect(page).to_have_url(f"{console.base_url}/console/accounts/{PLATFORM}/shooter")
    with page.expect_download() as started:
        page.get_by_role("link", name="Download the evidence pack").click()
    download = started.value
    assert download.suggested_filename == "account-evidence.json"
    body = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    pack = body["pack"]
    assert (pack["account"]["platform"], pack["account"]["author_ref"]) == (PLATFORM, "shooter")
    assert pack["generated_by"] == "user:console-investigator"
    assert pack["posts_total"] == 7 and any(p["text"] == _REPOST for p in pack["posts"])
    assert body["sha256"] == hashlib.sha256(canonical(pack)).hexdigest()
    with console.known.db.session() as session:
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "account.export")
        ).all()
        assert event.actor == "user:console-investigator"
        assert event.detail["sha256"] == body["sha256"]
        assert event.detail["author_ref"] == "shooter"
    watched.close()


def test_a_reviewer_is_not_offered_the_pack_and_hostile_references_stay_text(
    served: tuple[Console, Network], browser: Browser
) -> None:
    console, network = served
    watched = _Watched(browser, console)
    page = watched.page

    page.goto("/console/accounts")
    _sign_in(page, "console-reviewer")
    expect(page).to_have_url(f"{console.base_url}/console/accounts")
    _ready(page)
    hostile = page.locator("#accounts tr.row").get_by_role("link", name=HOSTILE_REF)
    expect(hostile).to_have_count(1)
    expect(page.locator("main img")).to_have_count(0)
    hostile.click()
    expect(page.locator("h1")).to_have_text(f"Account {HOSTILE_REF} {PLATFORM}")
    expect(page.locator("h1 bdi")).to_have_text(HOSTILE_REF)
    expect(page.locator("main img")).to_have_count(0)
    expect(page).to_have_title(f"Account {HOSTILE_REF} · vigil")
    expect(page.get_by_role("link", name="Download the evidence pack")).to_have_count(0)

    page.goto(f"/console/accounts/{PLATFORM}/shooter")
    expect(page.locator("dt:text-is('Account alert') + dd")).to_contain_text(
        f"#{network.shooter_alert}"
    )
    expect(page.locator("#posts tr.row")).to_have_count(6)
    expect(page.get_by_role("link", name="Download the evidence pack")).to_have_count(0)
    watched.close()
