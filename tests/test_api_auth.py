"""Authentication and authorisation over real HTTP: the route-by-route denial matrix (tokens and
console sessions), login, logout, CSRF, lockout, disabled accounts, the bootstrap token."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from vigil.accounts import PERMISSIONS, ROLES, Accounts, AccountSettings, Permission
from vigil.api.app import create_app
from vigil.api.auth import CSRF_HEADER, SESSION_COOKIE, Require
from vigil.api.settings import ApiSettings
from vigil.cli.users import users_app
from vigil.config import get_settings
from vigil.hashing import KnownContent
from vigil.store import ApiToken
from vigil.store.models import AuditEvent

from test_api_support import Api, role_tokens, serving

pytest_plugins = ["test_api_support"]

PUBLIC_PATHS = {
    *("/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"),
    "/report",  # the public report form (tests/test_web.py)
}
# The login itself, and public reports (tests/test_reports.py tests them, rate limit and all).
PUBLIC_ROUTES = {("POST", "/v1/session"), ("POST", "/v1/reports")}
# The console's pages check the session themselves (tests/test_web.py has their matrix).
CONSOLE_MOUNTS = {"/console"}
PASSWORD = "correct horse battery staple"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _permission(route: RouteContext) -> Permission | None:
    """The permission a route requires (None: anyone signed in), read from its Require."""
    found = [
        dependency.call
        for dependency in route.dependant.dependencies
        if isinstance(dependency.call, Require)
    ]
    assert len(found) == 1, f"{route.path} should depend on exactly one Require, has {found}"
    return found[0].permission


def _protected_routes(app: FastAPI) -> Iterator[tuple[str, str, Permission | None]]:
    """(method, concrete path, permission) for every route but the public ones."""
    # iter_route_contexts flattens included routers, which app.routes keeps nested.
    for route in iter_route_contexts(app.routes):
        if route.path in CONSOLE_MOUNTS:
            continue
        assert route.path is not None and route.methods is not None
        if route.path in PUBLIC_PATHS:
            continue
        assert isinstance(route.original_route, APIRoute), route.path
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in sorted(route.methods):
            if (method, route.path) not in PUBLIC_ROUTES:
                yield method, path, _permission(route)


def _refused_roles(permission: Permission | None) -> list[str]:
    return [] if permission is None else [r for r in ROLES if r not in PERMISSIONS[permission]]


@pytest.fixture
def account_settings(api_settings: ApiSettings) -> AccountSettings:
    """Plain-http localhost: a Secure cookie would never be sent back, so it is not Secure."""
    return AccountSettings(
        **api_settings.model_dump(), session_cookie_secure=False, login_max_failures=3
    )


@pytest.fixture
def console(account_settings: AccountSettings) -> Iterator[Api]:
    """A running API with a token per role (``test-<role>``) and, for each role, an account
    that signs in with a password (``console-<role>``)."""
    known = KnownContent(ApiSettings.of(account_settings))
    accounts = Accounts(known.db, account_settings)
    tokens = role_tokens(accounts)
    for role in ROLES:
        accounts.create_user("test:setup", f"console-{role}", [role], PASSWORD)
    app = create_app(account_settings, known)
    try:
        with serving(app) as base_url:
            yield Api(base_url, app, known, tokens)
    finally:
        known.close()


@contextmanager
def _signed_in(base_url: str, username: str, **options: Any) -> Iterator[tuple[httpx.Client, str]]:
    """A client holding ``username``'s session cookie, and the session's CSRF token."""
    with httpx.Client(base_url=base_url, timeout=60, **options) as client:
        response = client.post("/v1/session", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        yield client, response.json()["csrf_token"]


def _events(api: Api, action: str) -> list[AuditEvent]:
    with api.known.db.session() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(session.scalars(query))


def test_every_route_but_the_probes_and_login_needs_a_credential(console: Api) -> None:
    routes = list(_protected_routes(console.app))
    assert len(routes) >= 20
    forged_token = {"Authorization": "Bearer vgl_not-a-real-token"}
    with (
        console.client(None) as anonymous,
        httpx.Client(base_url=console.base_url, headers=forged_token) as forged,
        httpx.Client(base_url=console.base_url, cookies={SESSION_COOKIE: "made-up"}) as cookie,
    ):
        for method, path, _ in routes:
            for client in (anonymous, forged, cookie):
                response = client.request(method, path)
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["error"] == "unauthorized"
                assert response.headers["www-authenticate"] == "Bearer"


def test_every_route_refuses_tokens_without_its_permission(console: Api) -> None:
    refused = 0
    for method, path, permission in _protected_routes(console.app):
        for role in _refused_roles(permission):
            with console.client(role) as client:  # type: ignore[arg-type]
                response = client.request(method, path)
            assert response.status_code == 403, (role, method, path, response.text)
            assert response.json()["error"] == "forbidden"
            refused += 1
    assert refused >= 20
    # Each refusal is on the record, naming the route, not the concrete path.
    denied = [e for e in _events(console, "token.use") if not e.detail["allowed"]]
    assert len(denied) == refused
    assert {e.object_id for e in denied} >= {"/v1/users", "/v1/audit", "/v1/banks/{name}"}


def test_every_route_refuses_sessions_without_its_permission(console: Api) -> None:
    with ExitStack() as stack:
        sessions = {
            role: stack.enter_context(_signed_in(console.base_url, f"console-{role}"))
            for role in ROLES
        }
        for method, path, permission in _protected_routes(console.app):
            for role in _refused_roles(permission):
                client, csrf = sessions[role]
                response = client.request(method, path, headers={CSRF_HEADER: csrf})
                assert response.status_code == 403, (role, method, path, response.text)
                assert response.json()["error"] == "forbidden"


def test_login_sets_a_strict_http_only_cookie_and_changes_need_the_csrf_token(
    console: Api,
) -> None:
    with _signed_in(console.base_url, "console-analyst") as (client, csrf):
        cookie = client.cookies.jar
        [set_cookie] = [c for c in cookie if c.name == SESSION_COOKIE]
        assert set_cookie.has_nonstandard_attr("HttpOnly")
        assert set_cookie.get_nonstandard_attr("SameSite") == "strict"
        # Only a hash of the cookie's secret is stored.
        assert set_cookie.value is not None
        with console.known.db.session() as session:
            from vigil.store.models import ConsoleSession

            stored = session.scalars(select(ConsoleSession.token_hash)).all()
        assert stored == [hashlib.sha256(set_cookie.value.encode()).hexdigest()]

        assert client.get("/v1/banks").status_code == 200  # reads need no CSRF token
        no_header = client.post("/v1/banks", json={"name": "via-console"})
        wrong = client.post("/v1/banks", json={"name": "via-console"}, headers={CSRF_HEADER: "x"})
        right = client.post("/v1/banks", json={"name": "via-console"}, headers={CSRF_HEADER: csrf})
        assert (no_header.status_code, no_header.json()["error"]) == (403, "csrf_failed")
        assert (wrong.status_code, wrong.json()["error"]) == (403, "csrf_failed")
        assert right.status_code == 201, right.text

        me = client.get("/v1/session").json()
        assert me == {"username": "console-analyst", "roles": ["analyst"], "csrf_token": csrf}
        assert client.delete("/v1/session").status_code == 403  # logging out is a change too
        assert client.delete("/v1/session", headers={CSRF_HEADER: csrf}).status_code == 204
        assert SESSION_COOKIE not in client.cookies
    # The old cookie is dead even if a copy of it was kept.
    replay_cookie = {SESSION_COOKIE: set_cookie.value}
    with httpx.Client(base_url=console.base_url, cookies=replay_cookie) as replay:
        assert replay.get("/v1/banks").status_code == 401

    [bank_change] = _events(console, "bank.create")
    assert (bank_change.actor, bank_change.object_id) == ("user:console-analyst", "via-console")
    assert [e.actor for e in _events(console, "login.success")] == ["user:console-analyst"]
    assert [e.actor for e in _events(console, "logout")] == ["user:console-analyst"]


def test_the_cookie_is_secure_unless_configured_off(api_settings: ApiSettings) -> None:
    known = KnownContent(api_settings)
    try:
        Accounts(known.db, AccountSettings.of(api_settings)).create_user(
            "test:setup", "alice", ["reviewer"], PASSWORD
        )
        with serving(create_app(api_settings, known)) as base_url:
            response = httpx.post(
                f"{base_url}/v1/session", json={"username": "alice", "password": PASSWORD}
            )
    finally:
        known.close()
    assert response.status_code == 200
    attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")]
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= set(attributes)


def test_failed_logins_lock_out_that_username_from_that_client(console: Api) -> None:
    def attempt(password: str, source: str = "127.0.0.1") -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=console.base_url, transport=transport) as client:
            body = {"username": "console-reviewer", "password": password}
            return client.post("/v1/session", json=body)

    wrong = [attempt("not the password at all") for _ in range(3)]
    assert [r.status_code for r in wrong] == [401, 401, 401]
    assert attempt("guess number four").status_code == 429
    locked = attempt(PASSWORD)
    assert locked.status_code == 429  # even the right password, until the window passes
    assert int(locked.headers["retry-after"]) > 0
    # Another client, and another username from this client, are not locked out.
    assert attempt(PASSWORD, source="127.0.0.2").status_code == 200
    with httpx.Client(base_url=console.base_url) as client:
        body = {"username": "console-analyst", "password": PASSWORD}
        assert client.post("/v1/session", json=body).status_code == 200
    unknown_user = attempt("whatever it is")
    assert unknown_user.status_code == 401

    failures = _events(console, "login.failure")
    assert [e.detail["reason"] for e in failures] == ["bad_credentials"] * 3 + [
        "locked_out"
    ] * 2 + ["bad_credentials"]
    assert {e.actor for e in failures} == {"client:127.0.0.1"}
    assert not any(PASSWORD in str(e.detail) for e in failures)


def test_a_disabled_user_loses_tokens_and_sessions_at_once(console: Api) -> None:
    with console.client("admin") as admin:
        created = admin.post("/v1/tokens", json={"name": "rev-bot", "user": "console-reviewer"})
        assert created.status_code == 201, created.text
        token = {"Authorization": f"Bearer {created.json()['token']}"}
        with (
            _signed_in(console.base_url, "console-reviewer") as (client, _),
            httpx.Client(base_url=console.base_url, headers=token) as by_token,
        ):
            assert client.get("/v1/banks").status_code == 200
            assert by_token.get("/v1/banks").status_code == 200
            disabled = admin.post("/v1/users/console-reviewer/disable")
            assert disabled.status_code == 200 and disabled.json()["disabled"] is True
            assert client.get("/v1/banks").status_code == 401
            assert by_token.get("/v1/banks").status_code == 401
        relogin = httpx.post(
            f"{console.base_url}/v1/session",
            json={"username": "console-reviewer", "password": PASSWORD},
        )
        assert relogin.status_code == 401
        assert admin.post("/v1/users/nobody/disable").status_code == 404
    [disable] = _events(console, "user.disable")
    assert (disable.actor, disable.object_id) == ("token:test-admin", "console-reviewer")


def test_a_scoped_token_has_only_its_role(console: Api) -> None:
    with console.client("admin") as admin:
        admin.post("/v1/users", json={"username": "dual", "roles": ["analyst", "supervisor"]})
        scoped = admin.post(
            "/v1/tokens", json={"name": "dual-s", "user": "dual", "role": "supervisor"}
        )
        full = admin.post("/v1/tokens", json={"name": "dual-all", "user": "dual"})
        foreign = admin.post("/v1/tokens", json={"name": "x", "user": "dual", "role": "admin"})
    assert (scoped.status_code, full.status_code, foreign.status_code) == (201, 201, 422)
    for created, can_write in ((scoped, False), (full, True)):
        headers = {"Authorization": f"Bearer {created.json()['token']}"}
        with httpx.Client(base_url=console.base_url, headers=headers) as client:
            assert client.get("/v1/audit").status_code == 200  # supervisor
            wrote = client.post("/v1/banks", json={"name": created.json()["name"]})
            assert wrote.status_code == (201 if can_write else 403)


@pytest.fixture
def cli_env(api_settings: ApiSettings) -> Iterator[dict[str, str]]:
    env = {"VIGIL_HOME": str(api_settings.home), "COLUMNS": "200"}
    if api_settings.database_url:
        env["VIGIL_DATABASE_URL"] = api_settings.database_url
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def test_cli_user_and_token_lifecycle_over_http(api: Api, cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    create = ["create", "ops", "--role", "analyst", "--role", "reviewer", "--password-stdin"]
    created = runner.invoke(users_app, create, input=PASSWORD + "\n", env=cli_env)
    assert created.exit_code == 0, created.output
    short = runner.invoke(
        users_app,
        ["create", "weak", "--role", "admin", "--password-stdin"],
        input="short\n",
        env=cli_env,
    )
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    issued = runner.invoke(users_app, ["token", "ops", "ops-bot"], env=cli_env)
    assert issued.exit_code == 0, issued.output
    secret = issued.stdout.strip().splitlines()[-1]
    assert secret.startswith("vgl_")

    with api.known.db.session() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.name == "ops-bot")).one()
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()

    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=api.base_url, headers=headers) as client:
        assert client.post("/v1/banks", json={"name": "from-cli"}).status_code == 201
        assert client.get("/v1/tokens").status_code == 403  # analysts cannot manage tokens
        listed = runner.invoke(users_app, ["list"], env=cli_env)
        tokens = runner.invoke(users_app, ["tokens"], env=cli_env)
        assert "ops" in listed.stdout and "analyst, reviewer" in listed.stdout
        assert "ops-bot" in tokens.stdout and secret not in tokens.stdout
        assert runner.invoke(users_app, ["disable", "ops"], env=cli_env).exit_code == 0
        assert client.get("/v1/banks").status_code == 401

    duplicate = runner.invoke(users_app, ["token", "ops", "ops-bot"], env=cli_env)
    unknown_role = runner.invoke(
        users_app, ["create", "x", "--role", "root", "--no-password"], env=cli_env
    )
    assert duplicate.exit_code == 2  # ops is disabled now, and the name is taken anyway
    assert unknown_role.exit_code == 2 and "unknown role 'root'" in unknown_role.output
    actions = [(e.actor.split(":")[0], e.action, e.object_id) for e in _all_events(api)]
    assert ("cli", "user.create", "ops") in actions
    assert ("cli", "token.create", "ops-bot") in actions
    assert ("token", "token.use", "/v1/banks") in actions
    assert ("cli", "user.disable", "ops") in actions
    assert not any(secret in str(e.detail) or PASSWORD in str(e.detail) for e in _all_events(api))


def _all_events(api: Api) -> list[AuditEvent]:
    with api.known.db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_bootstrap_admin_token(api_settings: ApiSettings) -> None:
    settings = api_settings.model_copy(update={"bootstrap_admin_token": SecretStr("s3cret-boot")})
    known = KnownContent(settings)
    try:
        with serving(create_app(settings, known)) as base_url:
            admin = httpx.Client(base_url=base_url, headers={"Authorization": "Bearer s3cret-boot"})
            with admin:
                user = admin.post("/v1/users", json={"username": "first", "roles": ["reviewer"]})
                assert user.status_code == 201, user.text
                assert (
                    admin.post(
                        "/v1/users", json={"username": "first", "roles": ["admin"]}
                    ).status_code
                    == 409
                )
                created = admin.post("/v1/tokens", json={"name": "first", "user": "first"})
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
