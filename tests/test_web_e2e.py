"""The console end to end in headless Chromium (Debian's, driven by Playwright): a member of the
public reports a known attack image on /report; a reviewer signs in, claims the top of the
queue with the keyboard, reveals the veiled evidence, confirms it, and the takedown arrives,
signed, at a webhook receiver on localhost. A supervisor then finds the decision in the audit
log.

Screenshots go to a temporary folder, or to ``$VIGIL_SCREENSHOTS`` (docs/screenshots holds the
ones kept in the repository). Without chromium the test is skipped locally and fails in CI.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from test_web_support import PASSWORD, Console, running_console, web_settings
from vigil.actions.receiver import Delivery, WebhookReceiver
from vigil.config import Settings
from vigil.store.models import Bank

from media_factory import write_jpeg, write_video

pytest_plugins = ["test_web_support", "browser_support"]

SECRET = "whsec_e2e-secret-that-is-long-enough"
REASON = "Perpetrator footage of the attack, matches the incident bank"
# Bounds on waiting for the app's delivery worker, not something the test measures.
_POLLS = 500
_TIMEOUT_MS = 20_000


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VIGIL_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver(SECRET).start()
    yield running
    running.stop()


@pytest.fixture
def console(settings: Settings) -> Iterator[Console]:
    allow = [ip_network("127.0.0.0/8")]  # the receiver is on this machine
    overrides = {"actions_poll_seconds": 0.05, "url_fetch_allow": allow}
    with running_console(web_settings(settings, **overrides)) as running:
        yield running


def _incident_bank(console: Console, image: Path) -> None:
    """A bank of known attack imagery whose matches go to review at high severity."""
    known = console.known
    known.banks.create("incident", description="perpetrator footage")
    list(known.add_content("incident", [image], labels=["attack"]))
    with known.db.session() as session:
        bank = session.query(Bank).filter_by(name="incident").one()
        bank.severity, bank.alert_on_match = 9, True


def _deliveries(receiver: WebhookReceiver, action: str) -> list[Delivery]:
    """What the receiver recorded of ``action``, once there is something."""
    pause = threading.Event()
    for _ in range(_POLLS):
        deliveries = [d for d in receiver.deliveries.values() if d.action == action]
        if deliveries:
            return deliveries
        pause.wait(0.02)
    raise AssertionError(f"no {action} reached the receiver")


def _sign_in(page: Page, username: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).not_to_have_url(re.compile(r"/console/login"))


def _ready(page: Page) -> None:
    """Wait until the page's script listens: a key pressed before that would be lost."""
    expect(page.locator("html")).to_have_attribute("data-console", "ready")


def _tab_stops(page: Page, count: int) -> list[str]:
    """What Tab lands on, ``count`` times from the top of the page."""
    page.locator("body").focus()
    stops = []
    for _ in range(count):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("document.activeElement.outerHTML.slice(0, 80)"))
    return stops


def test_report_review_decide_and_the_takedown_arrives(
    console: Console,
    browser: Browser,
    receiver: WebhookReceiver,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    image = write_jpeg(tmp_path / "attack.jpg", seed=11)
    _incident_bank(console, image)
    with console.signed_in("admin") as admin:
        hook = {"name": "platform", "url": receiver.url, "kinds": ["takedown"], "secret": SECRET}
        assert admin.post("/v1/webhooks", json=hook).status_code == 201

    viewport = {"width": 1100, "height": 760}
    context = browser.new_context(base_url=console.base_url, viewport=viewport)
    context.set_default_timeout(_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # A member of the public reports the image; no sign-in.
    page.goto("/report")
    page.get_by_label("Where is it?").fill("https://video.example/watch?v=attack")
    page.get_by_label("What did you see?").fill("The attack video again, reposted an hour ago")
    page.get_by_label("A screenshot or the file").set_input_files(str(image))
    page.get_by_role("button", name="Send report").click()
    expect(page.locator("#report-status")).to_contain_text("reference is VGL-")
    page.screenshot(path=screenshots / "report.png")

    # The reviewer: the queue needs a session, so the console asks for one first.
    page.goto("/console/queue")
    expect(page).to_have_url(f"{console.base_url}/console/login?next=/console/queue")
    page.screenshot(path=screenshots / "login.png")
    _sign_in(page, "console-reviewer")
    expect(page).to_have_url(f"{console.base_url}/console/queue")
    rows = page.locator("#queue tr.row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("report")
    page.screenshot(path=screenshots / "queue.png")
    _ready(page)

    # j selects the top item, c claims it and opens it.
    page.keyboard.press("j")
    expect(rows.first).to_have_class("row selected")
    page.keyboard.press("c")
    expect(page).to_have_url(f"{console.base_url}/console/alerts/1")
    _ready(page)
    figure = page.locator("figure.evidence")
    expect(figure).to_have_class("evidence veiled")
    blurred = figure.locator("img").evaluate("img => getComputedStyle(img).filter")
    assert "blur" in blurred and "grayscale" in blurred
    expect(page.locator("img")).to_have_js_property("complete", True)
    figure.scroll_into_view_if_needed()
    page.screenshot(path=screenshots / "alert-veiled.png")

    stops = _tab_stops(page, 40)
    for control in ('id="reveal"', 'name="outcome"', 'name="reason"', "Record decision"):
        assert any(control in stop for stop in stops), (control, stops)

    # r reveals; d goes to the decision form; everything from there on is typed. Tabbing may
    # have left the focus in a text field (where r is a letter, not a key), and focusing the
    # body does not take it away from there: blur it.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("r")
    expect(figure).to_have_class("evidence")
    expect(page.locator("#reveal")).to_have_attribute("aria-pressed", "true")
    figure.scroll_into_view_if_needed()
    page.screenshot(path=screenshots / "alert-revealed.png")
    page.keyboard.press("d")
    expect(page.locator("#decide select[name=outcome]")).to_be_focused()
    page.select_option("#decide select[name=outcome]", "confirm")
    page.keyboard.press("Tab")
    page.keyboard.type(REASON)
    page.locator("#decide button[type=submit]").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{console.base_url}/console/queue")
    expect(page.locator("p.empty")).to_contain_text("The queue is empty")

    # The takedown reaches the receiver, which only records correctly signed deliveries.
    [delivery] = _deliveries(receiver, "takedown")
    assert receiver.bad_signatures == 0
    assert delivery.body["payload"]["alert_id"] == 1
    assert delivery.body["payload"]["url"] == "https://video.example/watch?v=attack"

    # A supervisor sees the decision and its delivery.
    page.locator("#logout").click()
    expect(page).to_have_url(f"{console.base_url}/console/login")
    page.goto("/console/alerts/1")
    _sign_in(page, "console-supervisor")
    expect(page.locator("table").filter(has_text="Outcome")).to_contain_text(REASON)
    expect(page.locator("td.action-status")).to_have_text("delivered")
    page.goto("/console/audit?action=decision.create")
    expect(page.locator("tr.row")).to_have_count(1)
    expect(page.locator("tr.row")).to_contain_text("user:console-reviewer")
    page.screenshot(path=screenshots / "audit.png")
    context.close()
    assert errors == []


def test_a_referral_waits_for_a_second_person_and_banks_are_kept_from_the_console(
    console: Console,
    browser: Browser,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    video = write_video(tmp_path / "clip.mp4", seed=5)
    with console.signed_in("admin") as admin:
        hook = {"name": "police", "url": receiver.url, "kinds": ["police_referral"]}
        assert admin.post("/v1/webhooks", json={**hook, "secret": SECRET}).status_code == 201
    with httpx.Client(base_url=console.base_url, timeout=60) as anonymous:
        files = {"file": ("clip.mp4", video.read_bytes(), "video/mp4")}
        sent = anonymous.post("/v1/reports", data={"description": "a threat"}, files=files)
        assert sent.status_code == 201, sent.text

    context = browser.new_context(base_url=console.base_url)
    context.set_default_timeout(_TIMEOUT_MS)
    page = context.new_page()
    page.goto("/console/login")
    _sign_in(page, "console-reviewer")
    expect(page).to_have_url(f"{console.base_url}/console/queue")
    _ready(page)
    page.keyboard.press("n")  # claim next
    expect(page).to_have_url(f"{console.base_url}/console/alerts/1")
    _ready(page)

    # The video stays veiled, silent and still until the reviewer chooses otherwise.
    player = page.locator("figure.evidence video")
    expect(player).to_have_attribute("preload", "none")
    expect(player).to_have_js_property("muted", True)
    expect(player).to_have_js_property("autoplay", False)
    expect(page.locator("figure.evidence")).to_have_class("evidence veiled")
    player.click()  # the first click reveals, it does not play
    expect(page.locator("figure.evidence")).to_have_class("evidence")
    expect(player).to_have_js_property("paused", True)

    page.select_option("#decide select[name=outcome]", "refer")
    page.get_by_label("Reason").fill("Credible threat against a named venue")
    page.get_by_role("button", name="Record decision").click()
    expect(page).to_have_url(f"{console.base_url}/console/queue")
    page.locator("#logout").click()

    # The supervisor approves it from the queue's "waiting" list; only then is it sent.
    _sign_in(page, "console-supervisor")
    page.get_by_role("link", name="Alert #1").click()
    expect(page.locator("td.action-status")).to_have_text("awaiting_approval")
    assert receiver.deliveries == {}
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("table").filter(has_text="Outcome")).to_contain_text("approved")
    referral = next(iter(_deliveries(receiver, "police_referral")))
    assert referral.body["payload"]["alert_id"] == 1 and receiver.bad_signatures == 0
    page.locator("#logout").click()

    # An analyst makes a bank and fills it from the banks page.
    _sign_in(page, "console-analyst")
    page.goto("/console/banks")
    page.get_by_label("Name", exact=True).fill("threats")
    page.get_by_label("Negative").check()
    page.get_by_role("button", name="Create bank").click()
    expect(page.locator("tr.row")).to_contain_text("negative")
    page.locator("form", has_text="Add content").get_by_label("File").set_input_files(str(video))
    page.get_by_role("button", name="Hash and add").click()
    expect(page.locator("tr.row td").nth(4)).to_have_text("1")
    context.close()
    [bank] = console.known.banks.list_banks()
    assert (bank.name, bank.negative, bank.entries) == ("threats", True, 1)
