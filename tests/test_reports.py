"""Public reports over real HTTP, no sign-in: reference numbers, the per-client rate limit, the
size cap, the upload kept as evidence and matched, and the alert that lands in the queue."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select, update

from vigil.api.auth import Require
from vigil.config import Settings
from vigil.reports import ReportSettings, is_reference, new_reference
from vigil.store.evidence import locate
from vigil.store.models import AuditEvent, Bank, PublicReport

from media_factory import write_jpeg
from test_api_support import Api, running_api

pytest_plugins = ["test_api_support"]

REPORT = {"url": "https://video.example/watch?v=abc", "description": "attack video reposted"}


def _settings(settings: Settings, **overrides: object) -> ReportSettings:
    return ReportSettings(**{**settings.model_dump(), **overrides})


@pytest.fixture
def reporting(settings: Settings) -> Iterator[Api]:
    with running_api(_settings(settings, report_rate_limit=3, report_max_bytes=200_000)) as api:
        yield api


def _from(api: Api, address: str = "127.0.0.1") -> httpx.Client:
    """An anonymous client connecting from ``address`` (any 127/8 address is this machine)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=api.base_url, transport=transport, timeout=60)


def test_references_are_short_and_drawn_at_random() -> None:
    drawn = {new_reference() for _ in range(2000)}
    assert len(drawn) == 2000
    assert all(is_reference(reference) for reference in drawn)
    assert not is_reference("VGL-0000-000I")  # I is not in the alphabet: it reads as 1


def test_posting_a_report_is_the_only_unauthenticated_write(reporting: Api) -> None:
    writes = set()
    for route in iter_route_contexts(reporting.app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue
        guarded = any(isinstance(d.call, Require) for d in route.dependant.dependencies)
        writes |= {(m, route.path) for m in route.methods or () if m != "GET" and not guarded}
    assert writes == {("POST", "/v1/session"), ("POST", "/v1/reports")}


def test_a_report_needs_no_login_and_lands_in_the_queue(reporting: Api) -> None:
    with _from(reporting) as anonymous:
        response = anonymous.post("/v1/reports", data=REPORT)
        listed = anonymous.get("/v1/reports")
    assert response.status_code == 201, response.text
    reference = response.json()["reference"]
    assert is_reference(reference)
    assert response.json() == {"reference": reference}  # nothing internal goes back
    assert listed.status_code == 401

    with reporting.client("reviewer") as reviewer:
        [alert] = reviewer.get("/v1/alerts").json()
        detail = reviewer.get(f"/v1/alerts/{alert['id']}").json()
        [report] = reviewer.get("/v1/reports").json()
    assert (alert["source"], alert["status"], alert["content_ref"]) == ("report", "open", reference)
    assert (detail["url"], detail["text"]) == (REPORT["url"], REPORT["description"])
    assert report["reference"] == reference and report["alert_id"] == alert["id"]
    assert report["description"] == REPORT["description"] and not report["has_upload"]
    with reporting.client("analyst") as analyst:
        [redacted] = analyst.get("/v1/reports").json()
    assert redacted["description"] is None  # analysts lack evidence:view


def test_json_reports_and_what_is_refused(reporting: Api) -> None:
    with _from(reporting) as anonymous:
        as_json = anonymous.post("/v1/reports", json={"url": REPORT["url"]})
        empty = anonymous.post("/v1/reports", data={"url": " ", "description": ""})
        script = anonymous.post("/v1/reports", data={"url": "javascript:alert(1)"})
        plain = {"content-type": "text/plain"}
        text = anonymous.post("/v1/reports", content=b"hello", headers=plain)
    assert as_json.status_code == 201, as_json.text
    assert (empty.status_code, empty.json()["error"]) == (422, "invalid_report")
    assert (script.status_code, script.json()["error"]) == (422, "invalid_report")
    assert text.status_code == 415


def test_the_rate_limit_is_per_client_and_keeps_no_address(reporting: Api) -> None:
    with _from(reporting, "127.0.0.1") as first, _from(reporting, "127.0.0.2") as second:
        accepted = [first.post("/v1/reports", data=REPORT).status_code for _ in range(3)]
        refused = first.post("/v1/reports", data=REPORT)
        refused_upload = first.post(
            "/v1/reports", data=REPORT, files={"file": ("x.bin", b"\0" * 10_000_000)}
        )
        other = second.post("/v1/reports", data=REPORT)
    assert accepted == [201, 201, 201]
    assert (refused.status_code, refused.json()["error"]) == (429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 3601
    # Refused before the body is read: the oversize upload gets a 429, not a 413.
    assert refused_upload.status_code == 429
    assert other.status_code == 201

    with reporting.known.db.session() as session:
        hashes = session.scalars(select(PublicReport.client_hash)).all()
        details = [str(e.detail) + e.actor for e in session.scalars(select(AuditEvent))]
    assert len(hashes) == 4 and len(set(hashes)) == 2
    assert all(len(h) == 64 and "127.0.0" not in h for h in hashes)
    assert not any("127.0.0" in text for text in details)


def test_an_oversize_upload_is_refused_and_nothing_is_kept(reporting: Api) -> None:
    big = os.urandom(300_000)
    with _from(reporting) as anonymous:
        response = anonymous.post("/v1/reports", data=REPORT, files={"file": ("big.jpg", big)})

        # A client that does not say how big its body is gets cut off as it streams.
        def chunks() -> Iterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
            for _ in range(40):
                yield b"x" * 10_000
            yield b"\r\n--b--\r\n"

        streamed = anonymous.post(
            "/v1/reports",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
    assert (response.status_code, response.json()["error"]) == (413, "too_large")
    assert (streamed.status_code, streamed.json()["error"]) == (413, "too_large")
    with reporting.known.db.session() as session:
        assert session.scalars(select(PublicReport)).all() == []
    assert not (reporting.known.settings.home / "evidence").exists()


def test_an_upload_is_kept_as_evidence_and_matched_against_the_banks(
    reporting: Api, tmp_path: Path
) -> None:
    image = write_jpeg(tmp_path / "attack.jpg", seed=7)
    known = reporting.known
    known.banks.create("incident")
    list(known.add_content("incident", [image], labels=["attack"]))
    with known.db.session() as session:
        session.execute(update(Bank).where(Bank.name == "incident").values(severity=9))

    with _from(reporting) as anonymous:
        response = anonymous.post(
            "/v1/reports", data=REPORT, files={"file": ("a.jpg", image.read_bytes(), "image/jpeg")}
        )
        blank = anonymous.post(  # a browser sends an empty part for an empty file input
            "/v1/reports", data=REPORT, files={"file": ("", b"", "application/octet-stream")}
        )
    assert response.status_code == 201, response.text
    assert blank.status_code == 201, blank.text

    with reporting.client("reviewer") as reviewer:
        alerts = reviewer.get("/v1/alerts").json()
        matched = next(a for a in alerts if a["matches"])
        detail = reviewer.get(f"/v1/alerts/{matched['id']}").json()
    assert matched["source"] == "report" and matched["content_kind"] == "image"
    assert matched["severity"] == 9 and matched["likelihood"] == 1.0
    assert matched["matches"][0]["bank"] == "incident"
    assert alerts[0]["id"] == matched["id"]  # the match puts it first in the queue
    [item] = detail["evidence"]
    assert item["type"] == "upload" and item["media_type"] == "image/jpeg"
    stored = locate(known.settings.home, item["name"])
    assert stored is not None and stored.read_bytes() == image.read_bytes()
    assert item["name"].endswith(item["sha256"])
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert locate(known.settings.home, "../../etc/passwd") is None
