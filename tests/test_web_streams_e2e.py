"""The Streams page in headless Chromium: an analyst signs in, is told plainly why a private
address is refused, starts watching a file played as if live (a re-stream of banked attack
footage) through the form, watches its row rise to alert without reloading, looks at the
alert it raised (which shows the stream's live status), and stops the stream.

Without chromium the test is skipped locally and fails in CI, like test_web_e2e.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from test_web_e2e import _ready, _sign_in
from test_web_streams import bank_frames, build_tripod, stream_settings
from test_web_support import Console, running_console
from vigil.config import Settings

pytest_plugins = ["test_web_support", "browser_support"]

_TIMEOUT_MS = 20_000
#: From the start to the alert: the banked seconds come 3 s into the stream, plus refreshes.
_ALERT_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    return build_tripod(tmp_path_factory.mktemp("streams"), shared_data)


@pytest.fixture
def console(settings: Settings) -> Iterator[Console]:
    with running_console(stream_settings(settings)) as running:
        yield running


def test_an_analyst_starts_a_stream_sees_it_reach_alert_and_stops_it(
    console: Console, browser: Browser, stream: Path, tmp_path: Path
) -> None:
    bank_frames(console, stream, tmp_path)
    screenshots = Path(os.environ.get("VIGIL_SCREENSHOTS", tmp_path / "screenshots"))
    screenshots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        base_url=console.base_url, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto("/console/streams")
    _sign_in(page, "console-analyst")
    expect(page).to_have_url(f"{console.base_url}/console/streams")
    _ready(page)
    expect(page.locator("p.empty")).to_contain_text("No streams are being watched")

    # A private address: the API's refusal, said on the page.
    form = page.locator("#watch")
    form.get_by_label("URL").fill("rtmp://10.0.0.1/live/x")
    form.get_by_role("button", name="Start watching").click()
    expect(page.locator("#problem")).to_contain_text("This stream URL is refused: ")

    form.get_by_label("Name").fill("cam-e2e")
    form.get_by_label("URL").fill(str(stream))
    form.get_by_label("Platform").fill("test")
    form.get_by_label("Category (optional)").fill("IRL")
    form.get_by_role("button", name="Start watching").click()
    row = page.locator("#streams tr.row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("cam-e2e")
    [session] = console.app.state.live.monitor.sessions()
    assert session.spec.metadata == {"category": "IRL"} and session.spec.platform == "test"
    _ready(page)

    # The page refreshes its table itself and says when a stream's level changes.
    level = row.locator(".level")
    expect(level).to_have_text(re.compile(r"^(alert|critical)$"), timeout=_ALERT_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("cam-e2e is now at")
    expect(row.get_by_role("link", name=re.compile(r"alert #\d+"))).to_have_count(1)
    expect(row.locator("svg.spark polyline.trace")).to_have_count(1)
    page.screenshot(path=screenshots / "streams.png", full_page=True)

    # The alert shows the stream's live status and leads back to its row.
    row.get_by_role("link", name=re.compile(r"alert #\d+")).click()
    status = page.locator("#stream-status")
    expect(status).to_contain_text("live")
    expect(status.locator(".level")).to_have_text(re.compile(r"^(alert|critical)$"))
    page.screenshot(path=screenshots / "stream-alert.png", full_page=True)
    status.get_by_role("link", name="cam-e2e").click()
    expect(page).to_have_url(re.compile(r"/console/streams#stream-[0-9a-f]{12}$"))

    row.get_by_role("button", name="Stop watching cam-e2e").click()
    expect(row).to_contain_text("(no longer watched)")
    expect(row.get_by_role("button")).to_have_count(0)
    assert not session.running
    context.close()
    assert errors == []
