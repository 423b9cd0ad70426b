"""A real server for the API tests: uvicorn on a free localhost port in a background thread.

Imported by the other test_api_* modules; it holds no tests itself.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from vigil.accounts import ROLES, Accounts, AccountSettings, Role
from vigil.api.app import create_app
from vigil.api.settings import ApiSettings
from vigil.config import Settings
from vigil.hashing import KnownContent

# A bound on how long to wait for uvicorn to come up, not something a test measures.
_START_POLLS = 500


@contextmanager
def serving(
    app: FastAPI, host: str = "127.0.0.1", lifespan: Literal["on", "off"] = "on"
) -> Iterator[str]:
    """Serve ``app`` until the block exits; yields its base URL. Without the lifespan the app
    never starts loading its index, so it stays unready."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(_START_POLLS):
        if server.started:
            started.set()
            break
        started.wait(0.02)
    assert started.is_set(), "uvicorn did not start"
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


@dataclass
class Api:
    """A running API with one token per role."""

    base_url: str
    app: FastAPI
    known: KnownContent
    tokens: dict[Role, str] = field(default_factory=dict)

    def client(self, role: Role | None = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)


def role_tokens(accounts: Accounts) -> dict[Role, str]:
    """One account per role (``test-<role>``) with one token each."""
    tokens: dict[Role, str] = {}
    for role in ROLES:
        accounts.create_user("test:setup", f"test-{role}", [role])
        tokens[role] = accounts.create_token("test:setup", f"test-{role}", f"test-{role}")[1]
    return tokens


@contextmanager
def running_api(settings: Settings) -> Iterator[Api]:
    known = KnownContent(settings)
    app = create_app(settings, known)
    tokens = role_tokens(Accounts(known.db, AccountSettings.of(settings)))
    try:
        with serving(app) as base_url:
            yield Api(base_url, app, known, tokens)
    finally:
        known.close()


@pytest.fixture
def api_settings(settings: Settings) -> ApiSettings:
    return ApiSettings.of(settings)


@pytest.fixture
def api(api_settings: ApiSettings) -> Iterator[Api]:
    with running_api(api_settings) as running:
        yield running
