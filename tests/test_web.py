"""The console's pages over real HTTP: every page needs a live session with its permission
(read from each page's ``Page`` dependency, as the API's matrix reads ``Require``), the
response headers, evidence files, and the public report form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount

from test_web_support import Console
from vigil.accounts import PERMISSIONS, ROLES, Permission
from vigil.api.auth import SESSION_COOKIE
from vigil.web import CONSOLE_PREFIX
from vigil.web.auth import Page

from media_factory import write_jpeg

pytest_plugins = ["test_web_support"]

PUBLIC_PAGES = {"/", "/login"}


def _console_app(app: FastAPI) -> FastAPI:
    [mount] = [r for r in app.routes if isinstance(r, Mount) and r.path == CONSOLE_PREFIX]
    assert isinstance(mount.app, FastAPI)
    return mount.app


def _pages(app: FastAPI) -> Iterator[tuple[str, Permission | None]]:
    """(concrete path, permission) of every console page but the public ones."""
    for route in iter_route_contexts(_console_app(app).routes):
        if not isinstance(route.original_route, APIRoute) or route.path in PUBLIC_PAGES:
            continue
        assert route.path is not None
        [page] = [d.call for d in route.dependant.dependencies if isinstance(d.call, Page)]
        yield CONSOLE_PREFIX + re.sub(r"\{[^}]+\}", "1", route.path), page.permission


def test_every_page_but_login_needs_a_session(console: Console) -> None:
    pages = list(_pages(console.app))
    assert len(pages) >= 9
    with (
        httpx.Client(base_url=console.base_url) as anonymous,
        httpx.Client(base_url=console.base_url, cookies={SESSION_COOKIE: "made-up"}) as forged,
    ):
        for path, _ in pages:
            for client in (anonymous, forged):
                response = client.get(path + "?x=1")
                assert response.status_code == 303, (path, response.text)
                assert response.headers["location"] == f"/console/login?next={path}%3Fx%3D1"


def test_every_page_refuses_roles_without_its_permission(console: Console) -> None:
    refused = 0
    for role in ROLES:
        with console.signed_in(role) as client:
            for path, permission in _pages(console.app):
                response = client.get(path)
                if permission is None or role in PERMISSIONS[permission]:
                    # Let in; alert 1 and its evidence do not exist.
                    assert response.status_code in (200, 404), (role, path, response.text)
                else:
                    assert response.status_code == 403, (role, path)
                    assert permission in response.text
                    refused += 1
    assert refused >= 7


def test_pages_carry_security_headers_and_the_csrf_token(console: Console) -> None:
    with console.signed_in("reviewer") as client:
        page = client.get("/console/queue")
        static = client.get("/console/static/console.js")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    csrf = client.headers["x-csrf-token"]
    assert f'<meta name="csrf-token" content="{csrf}">' in page.text
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    assert static.status_code == 200 and "X-CSRF-Token" in static.text


def test_login_only_sends_people_on_to_console_pages(console: Console) -> None:
    with httpx.Client(base_url=console.base_url) as anonymous:
        kept = anonymous.get("/console/login", params={"next": "/console/banks"})
        elsewhere = anonymous.get("/console/login", params={"next": "https://evil.example/"})
        schemeless = anonymous.get("/console/login", params={"next": "//evil.example/"})
    assert 'data-next="/console/banks"' in kept.text
    assert 'data-next="/console/queue"' in elsewhere.text
    assert 'data-next="/console/queue"' in schemeless.text
    with console.signed_in("analyst") as client:
        again = client.get("/console/login", params={"next": "/console/cases"})
    assert (again.status_code, again.headers["location"]) == (303, "/console/cases")


def test_the_report_form_is_public_and_evidence_needs_evidence_view(
    console: Console, tmp_path: Path
) -> None:
    image = write_jpeg(tmp_path / "reported.jpg", seed=3)
    with httpx.Client(base_url=console.base_url) as anonymous:
        form = anonymous.get("/report")
        sent = anonymous.post(
            "/v1/reports",
            data={"url": "https://example.org/p/1"},
            files={"file": ("r.jpg", image.read_bytes(), "image/jpeg")},
        )
    assert form.status_code == 200 and 'id="report"' in form.text
    assert "default-src 'none'" in form.headers["content-security-policy"]
    assert sent.status_code == 201

    with console.signed_in("reviewer") as reviewer:
        [alert] = reviewer.get("/v1/alerts").json()
        detail = reviewer.get(f"/console/alerts/{alert['id']}")
        evidence = reviewer.get(f"/console/evidence/{alert['id']}/0")
        missing = reviewer.get(f"/console/evidence/{alert['id']}/1")
    assert 'class="evidence veiled"' in detail.text
    assert (evidence.status_code, evidence.headers["content-type"]) == (200, "image/jpeg")
    assert evidence.content == image.read_bytes()
    assert "sandbox" in evidence.headers["content-security-policy"]
    assert missing.status_code == 404

    with console.signed_in("analyst") as analyst:  # alert:read, no evidence:view
        redacted = analyst.get(f"/console/alerts/{alert['id']}")
        refused = analyst.get(f"/console/evidence/{alert['id']}/0")
    assert redacted.status_code == 200
    assert "/console/evidence/" not in redacted.text and "withheld" in redacted.text
    assert refused.status_code == 403


@pytest.mark.parametrize("page", ["/console/queue", "/console/banks", "/console/audit"])
def test_pages_render_for_an_admin_and_a_supervisor(console: Console, page: str) -> None:
    role = "admin" if page == "/console/banks" else "supervisor"
    with console.signed_in(role) as client:  # type: ignore[arg-type]
        response = client.get(page)
    assert response.status_code == 200, response.text
    assert "<h1>" in response.text
