"""Console sign-in and sign-out. The session secret travels only in an HttpOnly, SameSite=Strict
cookie; the CSRF token comes back in the body for the console to send as ``X-CSRF-Token``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from vigil.accounts import ConsoleSessions, LoginFailed, LoginLocked, Principal
from vigil.api.auth import SESSION_COOKIE, Require, console_sessions
from vigil.api.errors import ApiError, ErrorBody
from vigil.api.models import LoginRequest, SessionOut

router = APIRouter(prefix="/v1/session", tags=["session"])
Sessions = Annotated[ConsoleSessions, Depends(console_sessions)]
SignedIn = Annotated[Principal, Depends(Require(None))]


def _client(request: Request) -> str:
    # The peer address; behind a proxy that is the proxy, so lockouts are then per username.
    return request.client.host if request.client else "unknown"


@router.post(
    "",
    responses={
        401: {"model": ErrorBody, "description": "Wrong username or password."},
        429: {"model": ErrorBody, "description": "Too many failures: locked out for a while."},
    },
)
async def log_in(
    body: LoginRequest, request: Request, response: Response, sessions: Sessions
) -> SessionOut:
    """Sign in to the console: sets the session cookie."""
    try:
        # scrypt is deliberately slow: keep it off the event loop.
        login = await run_in_threadpool(
            sessions.login, body.username, body.password.get_secret_value(), _client(request)
        )
    except LoginLocked as exc:
        retry = max(1, int((exc.until - datetime.now(UTC)).total_seconds()))
        raise ApiError(429, "locked_out", str(exc), headers={"Retry-After": str(retry)}) from None
    except LoginFailed as exc:
        raise ApiError(401, "login_failed", str(exc)) from None
    response.set_cookie(
        SESSION_COOKIE,
        login.secret,
        max_age=int(sessions.settings.session_max.total_seconds()),
        httponly=True,
        secure=sessions.settings.session_cookie_secure,
        samesite="strict",
    )
    principal = login.principal
    return SessionOut(
        username=principal.name, roles=sorted(principal.roles), csrf_token=login.csrf_token
    )


@router.get("")
def who_am_i(caller: SignedIn, request: Request, sessions: Sessions) -> SessionOut:
    """The caller, and the session's CSRF token (for a console page that was reloaded)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    active = sessions.authenticate(cookie) if cookie and caller.token is None else None
    return SessionOut(
        username=caller.name,
        roles=sorted(caller.roles),
        csrf_token=active.csrf_token if active else None,
    )


@router.delete("", status_code=204)
def log_out(_: SignedIn, request: Request, sessions: Sessions) -> Response:
    """End the console session and clear its cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        sessions.logout(cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response
