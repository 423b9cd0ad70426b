"""Who is looking at a page: the console session cookie, checked page by page. A page without a
live session sends the browser to the login page; one without the permission says so."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from vigil.accounts import ConsoleSessions, Permission, Principal
from vigil.api.auth import SESSION_COOKIE


class LoginRequired(Exception):
    """No live session: the handler redirects to the login page."""


class Forbidden(Exception):
    def __init__(self, permission: Permission) -> None:
        super().__init__(permission)
        self.permission = permission


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    csrf_token: str

    def can(self, permission: Permission) -> bool:
        return self.principal.can(permission)


class Page:
    """A dependency admitting signed-in people holding ``permission`` (None: anyone signed in).
    A class, so tests can read each page's permission back, as they do for the API's Require."""

    def __init__(self, permission: Permission | None) -> None:
        self.permission = permission

    def __call__(self, request: Request) -> Viewer:
        sessions: ConsoleSessions = request.app.state.sessions
        cookie = request.cookies.get(SESSION_COOKIE)
        active = sessions.authenticate(cookie) if cookie else None
        if active is None:
            raise LoginRequired
        if self.permission is not None and not active.principal.can(self.permission):
            raise Forbidden(self.permission)
        return Viewer(active.principal, active.csrf_token)
