"""Authentication and authorisation, route by route; tokens made with the CLI, used over HTTP."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from vigil.api.app import create_app
from vigil.api.auth import PERMISSIONS, ROLES, Permission, Require
from vigil.api.settings import ApiSettings
from vigil.cli.tokens import tokens_app
from vigil.config import get_settings
from vigil.hashing import KnownContent
from vigil.store import ApiToken

from test_api_support import Api, serving

pytest_plugins = ["test_api_support"]

PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _permission(route: RouteContext) -> Permission:
    """The permission a route requires, read from its dependency tree."""
    found = [
        dependency.call.permission
        for dependency in route.dependant.dependencies
        if isinstance(dependency.call, Require)
    ]
    assert len(found) == 1, f"{route.path} should require exactly one permission, has {found}"
    return found[0]


def _protected_routes(api: Api) -> Iterator[tuple[str, str, Permission]]:
    """(method, concrete path, permission) for every route but the public ones."""
    # iter_route_contexts flattens included routers, which app.routes keeps nested.
    for route in iter_route_contexts(api.app.routes):
        assert route.path is not None and route.methods is not None
        if route.path in PUBLIC:
            continue
        assert isinstance(route.original_route, APIRoute), route.path
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in sorted(route.methods):
            yield method, path, _permission(route)


def test_every_route_but_the_probes_needs_a_token(api: Api) -> None:
    routes = list(_protected_routes(api))
    assert len(routes) >= 15
    with (
        api.client(None) as anonymous,
        httpx.Client(
            base_url=api.base_url, headers={"Authorization": "Bearer vgl_not-a-real-token"}
        ) as forged,
    ):
        for method, path, _ in routes:
            for client in (anonymous, forged):
                response = client.request(method, path)
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["error"] == "unauthorized"
                assert response.headers["www-authenticate"] == "Bearer"


def test_every_route_refuses_roles_without_its_permission(api: Api) -> None:
    refused = 0
    for method, path, permission in _protected_routes(api):
        for role in ROLES:
            if role in PERMISSIONS[permission]:
                continue
            with api.client(role) as client:
                response = client.request(method, path)
            assert response.status_code == 403, (role, method, path, response.text)
            assert response.json()["error"] == "forbidden"
            refused += 1
    # bank:write and token:admin routes exist and some roles lack them.
    assert refused >= 10


def test_probes_need_no_token_and_readyz_waits_for_the_index(api_settings: ApiSettings) -> None:
    known = KnownContent(api_settings)
    try:
        unready_app = create_app(api_settings, known)
        with serving(unready_app, lifespan="off") as url, httpx.Client(base_url=url) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            unready = client.get("/readyz")
            assert client.get("/openapi.json").status_code == 200
        with serving(create_app(api_settings, known)) as url, httpx.Client(base_url=url) as client:
            ready = _poll_until_ready(client)
    finally:
        known.close()
    assert unready.status_code == 503
    assert unready.json() == {"ready": False, "database": True, "index": False}
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "database": True, "index": True}


def _poll_until_ready(client: httpx.Client) -> httpx.Response:
    """The index loads in the background after start-up; wait (boundedly) for it."""
    pause = threading.Event()
    for _ in range(500):
        response = client.get("/readyz")
        if response.status_code == 200:
            break
        pause.wait(0.02)
    return response


@pytest.fixture
def cli_env(api_settings: ApiSettings) -> Iterator[dict[str, str]]:
    env = {"VIGIL_HOME": str(api_settings.home)}
    if api_settings.database_url:
        env["VIGIL_DATABASE_URL"] = api_settings.database_url
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def test_cli_token_lifecycle_over_http(api: Api, cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    created = runner.invoke(tokens_app, ["create", "ops-bot", "--role", "analyst"], env=cli_env)
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("vgl_")

    with api.known.db.session() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.name == "ops-bot")).one()
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert row.last_used_at is None

    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=api.base_url, headers=headers) as client:
        assert client.post("/v1/banks", json={"name": "from-cli"}).status_code == 201
        assert client.get("/v1/tokens").status_code == 403  # analysts cannot manage tokens
        listed = runner.invoke(tokens_app, ["list"], env=cli_env)
        assert "ops-bot" in listed.stdout
        assert secret not in listed.stdout
        assert runner.invoke(tokens_app, ["disable", "ops-bot"], env=cli_env).exit_code == 0
        assert client.get("/v1/banks").status_code == 401

    with api.known.db.session() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.name == "ops-bot")).one()
        assert row.disabled
        assert row.last_used_at is not None

    duplicate = runner.invoke(tokens_app, ["create", "ops-bot", "--role", "admin"], env=cli_env)
    unknown_role = runner.invoke(tokens_app, ["create", "x", "--role", "root"], env=cli_env)
    assert duplicate.exit_code == 2
    assert unknown_role.exit_code == 2


def test_bootstrap_admin_token(api_settings: ApiSettings, tmp_path: Path) -> None:
    bootstrap = SecretStr("s3cret-bootstrap")
    settings = api_settings.model_copy(update={"bootstrap_admin_token": bootstrap})
    known = KnownContent(settings)
    try:
        with serving(create_app(settings, known)) as base_url:
            admin = httpx.Client(
                base_url=base_url, headers={"Authorization": "Bearer s3cret-bootstrap"}
            )
            with admin:
                created = admin.post("/v1/tokens", json={"name": "first", "role": "reviewer"})
                assert created.status_code == 201, created.text
                secret = created.json()["token"]
                assert admin.post("/v1/tokens/first/disable").json()["disabled"] is True
                assert admin.post("/v1/tokens/ghost/disable").status_code == 404
            with httpx.Client(
                base_url=base_url, headers={"Authorization": f"Bearer {secret}"}
            ) as c:
                assert c.get("/v1/banks").status_code == 401
    finally:
        known.close()
