"""The HTTP API: ``create_app(settings)`` for ``vigil serve``, tests and embedding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from vigil import __version__, web
from vigil.accounts import Accounts, AccountSettings, ConsoleSessions
from vigil.actions import OutboxWorker
from vigil.api.common import known_content
from vigil.api.errors import ErrorBody, install_error_handlers
from vigil.api.metrics import install as install_metrics
from vigil.api.models import Health, Readiness
from vigil.api.routes import (
    accounts,
    actions,
    audit,
    banks,
    faces,
    hashing,
    hma,
    networks,
    posts,
    reports,
    review,
    session,
    streams,
)
from vigil.api.settings import ApiSettings
from vigil.bus import BusSettings, open_shared_bus
from vigil.config import Settings
from vigil.faces.service import FaceService
from vigil.faces.settings import FacesSettings
from vigil.hashing import KnownContent
from vigil.live import LiveSettings, open_streams
from vigil.logs import get_logger
from vigil.networks import AccountLedger
from vigil.reports import PublicReports, ReportSettings
from vigil.text.service import PostService
from vigil.text.settings import TextSettings

log = get_logger(__name__)
_WARM_UP_RETRY_SECONDS = 5.0


async def _warm_up(app: FastAPI, known: KnownContent) -> None:
    """Load the index in the background; /readyz says 503 until it is in memory, so a load
    balancer keeps traffic away from a replica that would answer its first queries slowly."""
    while True:
        try:
            await run_in_threadpool(known.matcher.refresh, force=True)
        except Exception as exc:  # the database may come up after us: keep trying
            log.warning("index.warm_up_failed", error=str(exc))
            await asyncio.sleep(_WARM_UP_RETRY_SECONDS)
        else:
            app.state.index_loaded = True
            log.info("index.ready")
            return


async def _faces_housekeeping(faces: FaceService) -> None:
    """Expiry and retention on a clock: a watchlist past its expiry loses its templates even
    when nobody searches or runs `vigil faces purge`."""
    every = faces.settings.faces_housekeeping_minutes * 60
    while True:
        try:
            done = await run_in_threadpool(faces.housekeeping)
        except Exception as exc:  # the database may be down for a while: try again later
            log.warning("faces.housekeeping_failed", error=str(exc))
        else:
            if done.expired_watchlists or done.purged_searches:
                log.info(
                    "faces.housekeeping",
                    expired=done.expired_watchlists,
                    purged_searches=done.purged_searches,
                )
        await asyncio.sleep(every)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    known: KnownContent = app.state.known
    settings: ApiSettings = app.state.settings
    faces: FaceService = app.state.faces
    tasks = [asyncio.create_task(_warm_up(app, known))]
    if faces.settings.faces_housekeeping_minutes > 0:
        tasks.append(asyncio.create_task(_faces_housekeeping(faces)))
    # Banks through `known`, so an add_to_bank action is matchable at once in this process.
    outbox = OutboxWorker(known.db, settings, known.banks) if settings.actions_worker else None
    if outbox is not None:
        outbox.start()
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        # Streams first: an open incident's last footage is fingerprinted before we go.
        await run_in_threadpool(app.state.live.close)
        if outbox is not None:
            # Waits for sends on the wire; the rest of each batch is handed back at once.
            await run_in_threadpool(outbox.close)
        if app.state.bus is not None:
            await run_in_threadpool(app.state.bus.close)
        if app.state.owns_known:
            known.close()


def _database_reachable(known: KnownContent) -> bool:
    try:
        with known.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready", and the probe must answer
        log.warning("readyz.database_unreachable", error=str(exc))
        return False
    return True


async def healthz() -> Health:
    """Liveness: the process is up and serving."""
    return Health()


async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database answers and the match index is loaded. 503 until both."""
    database = await run_in_threadpool(_database_reachable, known_content(request))
    index = bool(request.app.state.index_loaded)
    body = Readiness(ready=database and index, database=database, index=index)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


def create_app(settings: Settings, known: KnownContent | None = None) -> FastAPI:
    """The API over ``known`` (created from ``settings`` when not given, and then closed with
    the app)."""
    api_settings = ApiSettings.of(settings)
    app = FastAPI(
        title="vigil",
        version=__version__,
        description="Find terrorist and violent-extremist content early: hash matching, live "
        "streams, review and action.",
        lifespan=_lifespan,
    )
    app.state.settings = api_settings
    app.state.owns_known = known is None
    app.state.known = known or KnownContent(api_settings)
    app.state.index_loaded = False
    secret = api_settings.bootstrap_admin_token
    account_settings = AccountSettings.of(settings)
    db = app.state.known.db
    bootstrap = secret.get_secret_value() if secret else None
    app.state.accounts = Accounts(db, account_settings, bootstrap)
    app.state.sessions = ConsoleSessions(db, account_settings)
    app.state.reports = PublicReports(app.state.known, ReportSettings.of(settings))
    app.state.live = open_streams(app.state.known, LiveSettings.of(settings))
    text_settings = TextSettings.of(settings)
    faces_settings = FacesSettings.of(settings)
    queued = text_settings.text_queue or faces_settings.faces_queue
    app.state.bus = open_shared_bus(BusSettings.of(settings)) if queued else None
    hooks = [AccountLedger.of(settings)]
    app.state.posts = PostService(
        db, text_settings, app.state.known, bus=app.state.bus, hooks=hooks
    )
    app.state.faces = FaceService(db, faces_settings)
    install_error_handlers(app)
    install_metrics(app, db)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["probes"])
    app.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        tags=["probes"],
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready yet."}},
    )
    # Every error, a request that fails validation included, has vigil's shape (ErrorBody), not
    # FastAPI's default HTTPValidationError; and every route can answer these: document them so.
    common: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorBody, "description": "The request cannot be read."},
        401: {"model": ErrorBody, "description": "No valid token or session."},
        403: {"model": ErrorBody, "description": "The caller's roles lack the permission."},
        404: {"model": ErrorBody, "description": "No such object."},
        422: {"model": ErrorBody, "description": "The request is not valid."},
    }
    routers = (
        hashing,
        banks,
        hma,
        accounts,
        session,
        audit,
        actions,
        review,
        reports,
        streams,
        posts,
        networks,
        faces,
    )
    for module in routers:
        app.include_router(module.router, responses=common)
    web.install(app)  # last: the console shares the state set above
    return app
