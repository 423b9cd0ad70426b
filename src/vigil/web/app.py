"""The console as an app of its own, mounted under the API: its pages answer with HTML (and a
redirect to the login page), not with the API's JSON errors."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from vigil.web import accounts, faces, pages, streams
from vigil.web.auth import Forbidden, LoginRequired
from vigil.web.rendering import SECURITY_HEADERS, render

CONSOLE_PREFIX = "/console"
REPORT_PATH = "/report"
#: The parts of the API's state the console reads.
_SHARED_STATE = ("settings", "known", "accounts", "sessions", "reports", "live", "faces")


async def _login_required(request: Request, _: Exception) -> Response:
    target = CONSOLE_PREFIX + request.url.path.removeprefix(CONSOLE_PREFIX)
    if request.url.query:
        target += "?" + request.url.query
    location = f"{CONSOLE_PREFIX}/login?next={quote(target, safe='/')}"
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return render(request, "error.html", None, 403, title="Not allowed", permission=exc.permission)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return render(request, "error.html", None, exc.status_code, title=str(exc.detail))


def create_console(api: FastAPI) -> FastAPI:
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for name in _SHARED_STATE:
        setattr(console.state, name, getattr(api.state, name))
    console.add_exception_handler(LoginRequired, _login_required)
    console.add_exception_handler(Forbidden, _forbidden)
    console.add_exception_handler(HTTPException, _http_error)
    console.mount("/static", StaticFiles(packages=[("vigil.web", "static")]), name="static")
    console.include_router(pages.router)
    console.include_router(streams.router)
    console.include_router(faces.router)
    console.include_router(accounts.router)
    return console


def install(api: FastAPI) -> None:
    """Mount the console on ``api`` (after the API's own routes, which it shares state with)."""
    api.add_route(REPORT_PATH, pages.report_page, include_in_schema=False)
    api.mount(CONSOLE_PREFIX, create_console(api), name="console")
