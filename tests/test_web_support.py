"""A running vigil for the console tests: the API and console on a uvicorn thread, one
password account per role (``console-<role>``), cookies that work over plain-http localhost.
It holds no tests itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from vigil.accounts import ROLES, Accounts, AccountSettings, Role
from vigil.api.app import create_app
from vigil.api.auth import CSRF_HEADER
from vigil.api.settings import ApiSettings
from vigil.config import Settings
from vigil.hashing import KnownContent
from vigil.reports import ReportSettings

from test_api_support import serving

PASSWORD = "correct horse battery staple"


class WebSettings(ReportSettings, AccountSettings, ApiSettings):
    """Every setting the app reads, in one object create_app uses as is."""


@dataclass
class Console:
    base_url: str
    app: FastAPI
    known: KnownContent
    accounts: Accounts

    @contextmanager
    def signed_in(self, role: Role) -> Iterator[httpx.Client]:
        """A client holding ``console-<role>``'s session cookie, sending its CSRF token."""
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            response = client.post(
                "/v1/session", json={"username": f"console-{role}", "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            client.headers[CSRF_HEADER] = response.json()["csrf_token"]
            yield client


def web_settings(settings: Settings, **overrides: object) -> WebSettings:
    # Plain http on localhost: a Secure cookie would never be sent back.
    values = {**settings.model_dump(), "session_cookie_secure": False, **overrides}
    return WebSettings(**values)


@contextmanager
def running_console(settings: WebSettings) -> Iterator[Console]:
    known = KnownContent(settings)
    accounts = Accounts(known.db, settings)
    for role in ROLES:
        accounts.create_user("test:setup", f"console-{role}", [role], PASSWORD)
    app = create_app(settings, known)
    try:
        with serving(app) as base_url:
            yield Console(base_url, app, known, accounts)
    finally:
        known.close()


@pytest.fixture
def console(settings: Settings) -> Iterator[Console]:
    with running_console(web_settings(settings, actions_poll_seconds=0.05)) as running:
        yield running
