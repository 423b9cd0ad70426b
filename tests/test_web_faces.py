"""The face-search pages in headless Chromium, on real LFW photos and dlib: a supervisor drafts
a watchlist, enrols a photo (a photo without a face is refused with its reason) and cannot
approve their own list; another supervisor approves it from the keyboard; an investigator
searches a second photo of the enrolled person and a stranger's, and sees one candidate and a
plain "no candidate"; the operator (a reviewer) and then the investigator compare the two faces
side by side and give their verdicts; only then can the investigator export. Plus the forms'
CSRF check and a refusal in the service's words, over plain HTTP.

SQLite only (the pages run the same service functions whatever the database; the service and
API tests run them on PostgreSQL too), and the threshold is the API tests' (see
test_api_faces.py), so the test does not move when the model card is re-measured. Without
chromium the browser test is skipped locally and fails in CI, like test_web_e2e.py.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect
from sqlalchemy import func, select

from test_api_faces import JUSTIFICATION, LEGAL_BASIS, NOTE, PURPOSE, THRESHOLD, lfw
from test_web_e2e import _ready, _sign_in
from test_web_support import PASSWORD, Console, WebSettings, running_console, web_settings
from vigil.config import Settings
from vigil.faces.review import CAVEAT
from vigil.faces.settings import FacesSettings
from vigil.faces.vault import new_key
from vigil.store.models import AuditEvent, FaceCandidate, Watchlist, utcnow

from media_factory import write_jpeg

pytest_plugins = ["test_web_support", "browser_support"]

#: dlib loads its models and reads each photo inside a request: generous, not measured.
_TIMEOUT_MS = 60_000
WATCHLIST = "march-attack-suspects"


class FaceConsoleSettings(FacesSettings, WebSettings):
    """The console's settings with face search's, in one object create_app uses as is."""


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    pytest.importorskip("dlib")
    base = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'vigil.db'}")
    values = {**web_settings(base).model_dump(), "faces_key": new_key()}
    with running_console(FaceConsoleSettings(**values, faces_threshold=THRESHOLD)) as running:
        # A second supervisor: a watchlist is approved by someone other than its creator.
        running.accounts.create_user("test:setup", "console-supervisor-2", ["supervisor"], PASSWORD)
        yield running


def _photo(shared_data: Path, name: str, number: int) -> FilePayload:
    """An LFW photo as a file for an upload field."""
    data = lfw(shared_data, name, number)
    return FilePayload(name=f"{name}_{number}.jpg", mimeType="image/jpeg", buffer=data)


def _switch_user(page: Page, path: str, username: str) -> None:
    page.locator("#logout").click()
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.goto(path)
    _sign_in(page, username)
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def _open_only_candidate(page: Page) -> None:
    """From the face review queue, open the one candidate waiting, and check both faces load."""
    rows = page.locator("#face-queue tr.row")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name=re.compile(r"Candidate #\d+")).click()
    expect(page.locator("#caveat")).to_have_text(CAVEAT)
    for face in ("#probe-face img", "#watchlist-face img"):
        expect(page.locator(face)).to_have_js_property("complete", True)
        assert page.locator(face).evaluate("img => img.naturalWidth") > 0


def _give_verdict(page: Page, choice: str) -> None:
    """Tick ``choice``, type the note and send the form, all from the keyboard."""
    form = page.locator("#verdict")
    form.get_by_label(choice, exact=True).focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # out of the radio group
    expect(form.get_by_label("Note")).to_be_focused()
    page.keyboard.type(NOTE)
    page.keyboard.press("Tab")
    expect(form.get_by_role("button", name="Record verdict")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/faces/review\?decided=\d+$"))
    expect(page.locator("#face-queue")).to_have_count(0)


def test_a_watchlist_is_approved_searched_and_a_candidate_reviewed_by_two_people(
    console: Console, browser: Browser, shared_data: Path, tmp_path: Path
) -> None:
    screenshots = Path(os.environ.get("VIGIL_SCREENSHOTS", tmp_path / "screenshots"))
    screenshots.mkdir(parents=True, exist_ok=True)
    with console.signed_in("investigator") as client:
        case = client.post("/v1/cases", json={"title": "Attack on 3 March"})
        assert case.status_code == 201, case.text
    today = utcnow().date()
    context = browser.new_context(
        base_url=console.base_url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # A supervisor drafts the watchlist and enrols a photo; a photo without a face is refused.
    page.goto("/console/faces/watchlists")
    _sign_in(page, "console-supervisor")
    form = page.locator("#new-watchlist")
    form.get_by_label("Name").fill(WATCHLIST)
    form.get_by_label("Purpose").fill(PURPOSE)
    form.get_by_label("Legal basis").fill(LEGAL_BASIS)
    form.get_by_label("Review date").fill((today + timedelta(days=30)).isoformat())
    form.get_by_label("Expiry").fill((today + timedelta(days=180)).isoformat())
    form.get_by_role("button", name="Create watchlist").click()
    expect(page).to_have_url(re.compile(r"/console/faces/watchlists/\d+$"))
    watchlist_page = page.url.removeprefix(console.base_url)
    expect(page.locator("#watchlist-status")).to_have_text("draft")
    person = page.locator("#add-person")
    person.get_by_label("Reference").fill("P-0001")
    person.get_by_label("Display name").fill("Colin Powell")
    person.get_by_role("button", name="Add person").click()
    expect(page.locator("#people tr.row")).to_contain_text("Colin Powell")

    landscape = write_jpeg(tmp_path / "landscape.jpg", seed=4)
    page.locator("#enroll").get_by_label("Photo").set_input_files(str(landscape))
    page.locator("#enroll").get_by_role("button", name="Enrol photo").click()
    expect(page.locator("#refused")).to_contain_text("not enrolled (no_face)")
    page.locator("#enroll").get_by_label("Photo").set_input_files(
        _photo(shared_data, "Colin_Powell", 1)
    )
    page.locator("#enroll").get_by_label("Source").fill("custody record 2024/0193")
    page.locator("#enroll").get_by_role("button", name="Enrol photo").click()
    expect(page.locator("#refused")).to_have_count(0)
    expect(page.locator("#people tr.row")).to_contain_text("custody record 2024/0193: quality")

    # Its creator cannot approve it: the service's refusal is shown and it stays a draft.
    page.locator("#approve").get_by_role("button", name="Approve watchlist").click()
    expect(page.locator("#refused")).to_contain_text("someone other than its creator and owner")
    expect(page.locator("#watchlist-status")).to_have_text("draft")
    page.screenshot(path=screenshots / "faces-watchlist.png", full_page=True)

    # Another supervisor finds it among the approvals and approves it, from the keyboard.
    _switch_user(page, "/console/faces/approvals", "console-supervisor-2")
    expect(page.locator("#approvals tr.row")).to_contain_text(WATCHLIST)
    _ready(page)
    page.keyboard.press("j")
    page.keyboard.press("o")
    expect(page).to_have_url(f"{console.base_url}{watchlist_page}")
    page.locator("#approve").get_by_role("button", name="Approve watchlist").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#watchlist-status")).to_have_text("approved")

    # An investigator searches a second photo of the person and a stranger's.
    _switch_user(page, "/console/faces/searches", "console-investigator")
    search = page.locator("#new-search")
    search.get_by_label("Offence reference").fill("OP-MARCH-3")
    search.get_by_label("Justification").fill(JUSTIFICATION)
    search.get_by_label(WATCHLIST).check()
    search.get_by_label("Images or videos").set_input_files(
        [_photo(shared_data, "Colin_Powell", 2), _photo(shared_data, "Donald_Rumsfeld", 1)]
    )
    search.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/console/faces/searches/\d+$"))
    media = page.locator("#media tbody tr")
    expect(media.filter(has_text="Colin_Powell_2.jpg").locator("td")).to_have_text(
        ["Colin_Powell_2.jpg", "image", "—", "1", "1", re.compile("with candidates")]
    )
    expect(media.filter(has_text="Donald_Rumsfeld_1.jpg").locator("td.outcome")).to_have_text(
        "No candidate: no face resembles anyone on the watchlists."
    )
    [candidate] = page.locator("table.candidates tbody tr").all()
    expect(candidate).to_contain_text("Colin Powell")
    expect(candidate.locator("td").first).to_have_text("1")
    expect(candidate.locator(".candidate-status")).to_have_text("pending operator")
    score = float(candidate.locator("td").nth(1).inner_text())
    assert THRESHOLD <= score <= 1.0
    expect(page.locator("#export")).to_have_count(0)  # a candidate is still under review
    search_page = page.url.removeprefix(console.base_url)
    page.screenshot(path=screenshots / "faces-search.png", full_page=True)

    # The operator compares the faces and keeps the candidate; the faces are never cached.
    _switch_user(page, "/console/faces/review", "console-reviewer")
    _open_only_candidate(page)
    page.screenshot(path=screenshots / "faces-candidate.png", full_page=True)
    face = page.request.get(page.locator("#probe-face img").get_attribute("src") or "")
    assert (face.status, face.headers["content-type"]) == (200, "image/jpeg")
    assert face.headers["cache-control"] == "no-store"
    _give_verdict(page, "Possibly the same person")

    # The investigator, a second person, confirms it and can then export the search.
    _switch_user(page, "/console/faces/review", "console-investigator")
    _open_only_candidate(page)
    _give_verdict(page, "Confirm")
    page.goto(search_page)
    expect(page.locator(".candidate-status")).to_have_text("confirmed")
    with page.expect_download() as download:
        page.locator("#export").click()
    exported = json.loads(Path(download.value.path()).read_text())
    context.close()
    assert errors == []

    [confirmed] = exported["confirmed"]
    assert (confirmed["person_ref"], confirmed["operator"], confirmed["investigator"]) == (
        "P-0001",
        "console-reviewer",
        "console-investigator",
    )
    assert exported["caveat"] == CAVEAT
    with console.known.db.session() as session:
        looks = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "evidence.view", AuditEvent.object_type == "face_candidate")
        )
        statuses = list(session.scalars(select(FaceCandidate.status)))
    # Each face shown (two per reviewer) and the direct fetch are each an audited look.
    assert looks == 5 and statuses == ["confirmed"]


def test_face_forms_need_the_session_token_and_say_why_a_change_is_refused(
    console: Console,
) -> None:
    form = {
        "name": WATCHLIST,
        "purpose": PURPOSE,
        "legal_basis": LEGAL_BASIS,
        "review_at": (utcnow() + timedelta(days=30)).date().isoformat(),
        "expires_at": (utcnow() + timedelta(days=180)).date().isoformat(),
    }
    multipart = {name: (None, value) for name, value in form.items()}
    with console.signed_in("supervisor") as client:
        forged = client.post("/console/faces/watchlists", files=multipart)
    with console.signed_in("analyst") as client:
        token = client.headers["x-csrf-token"]
        refused = client.post(
            "/console/faces/watchlists", files={**multipart, "csrf_token": (None, token)}
        )
    assert forged.status_code == 403 and "did not come from your session" in forged.text
    # An analyst reads watchlists but does not keep them: the service's refusal, on the page.
    assert refused.status_code == 403, refused.text
    assert "user:console-analyst may not face:watchlist" in refused.text
    assert 'id="new-watchlist"' not in refused.text
    with console.known.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Watchlist)) == 0
    with httpx.Client(base_url=console.base_url) as anonymous:
        sent = anonymous.post("/console/faces/watchlists", files=multipart)
    assert (sent.status_code, sent.headers["location"]) == (
        303,
        "/console/login?next=/console/faces/watchlists",
    )
