"""Who is calling: a bearer API token or a console session cookie, checked route by route.

Every route but the probes and the login itself depends on exactly one :class:`Require`; the
tests read each route's permission back from it, so a new route is in the denial matrix at once.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from vigil.accounts import (
    Accounts,
    ConsoleSessions,
    Permission,
    Principal,
    TokenUse,
)
from vigil.api.errors import ApiError
from vigil.audit import record
from vigil.logs import get_logger

SESSION_COOKIE = "vigil_session"
CSRF_HEADER = "X-CSRF-Token"
# Methods a browser may send cross-site without changing anything (RFC 9110 "safe").
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

log = get_logger(__name__)

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer vgl_...`")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description=f"The console session (`POST /v1/session`); changes need `{CSRF_HEADER}` too.",
)


def accounts(request: Request) -> Accounts:
    found: Accounts = request.app.state.accounts
    return found


def console_sessions(request: Request) -> ConsoleSessions:
    found: ConsoleSessions = request.app.state.sessions
    return found


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def _route_template(request: Request) -> str:
    """``/v1/banks/{name}``, not the concrete path: the audit log groups uses by route and
    never copies a path (or query string) a client made up."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(unrouted)"


class Require:
    """A dependency that admits callers holding ``permission`` and returns them as a
    :class:`Principal`; ``None`` admits anyone signed in (who am I, log out).

    A class, not a closure, so the permission of each route can be read back from the app."""

    def __init__(self, permission: Permission | None) -> None:
        self.permission = permission

    def __call__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        cookie: str | None = Depends(_cookie),
    ) -> Principal:
        # A bearer token wins: a browser never adds one on its own, so it needs no CSRF check.
        if credentials is not None:
            principal = self._by_token(request, credentials.credentials)
        elif cookie is not None:
            principal = self._by_session(request, cookie)
        else:
            raise _unauthorized(
                "an `Authorization: Bearer <token>` header or a session is required"
            )
        if self.permission is not None and not principal.can(self.permission):
            log.info("auth.forbidden", actor=principal.actor, permission=self.permission)
            roles = ", ".join(sorted(principal.roles))
            raise ApiError(403, "forbidden", f"roles {roles} lack {self.permission!r}")
        request.state.principal = principal
        return principal

    def _by_token(self, request: Request, secret: str) -> Principal:
        use = TokenUse(request.method, _route_template(request), self.permission)
        principal = accounts(request).authenticate_token(secret, use)
        if principal is None:
            log.info("auth.rejected", reason="unknown or disabled token")
            raise _unauthorized("the token is unknown or disabled")
        return principal

    def _by_session(self, request: Request, cookie: str) -> Principal:
        active = console_sessions(request).authenticate(cookie)
        if active is None:
            raise _unauthorized("the session has ended; sign in again")
        if request.method not in _SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), active.csrf_token.encode()):
                log.info("auth.csrf_rejected", actor=active.principal.actor)
                raise ApiError(403, "csrf_failed", f"a change needs the `{CSRF_HEADER}` header")
        return active.principal


class Auditor:
    """Records an event for the caller a route's ``Require`` admitted, in its own transaction.
    For a change made in a transaction of the route's own, call :func:`vigil.audit.record`
    inside it instead, so that the two commit together."""

    def __init__(self, request: Request) -> None:
        self._request = request

    def __call__(
        self, action: str, object_type: str = "", object_id: str | int = "", **detail: Any
    ) -> None:
        principal: Principal = self._request.state.principal
        with accounts(self._request).db.session() as session:
            record(session, principal.actor, action, object_type, object_id, detail)


Audit = Annotated[Auditor, Depends(Auditor)]
