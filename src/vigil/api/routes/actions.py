"""Webhooks (``webhook:admin``) and the actions sent through them (``action:read``), with dead
letters and their retry. A webhook's secret is returned once, by the request that creates it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from vigil import actions
from vigil.accounts import Principal
from vigil.actions import webhooks
from vigil.actions.kinds import ActionKind, ActionStatus
from vigil.actions.outbox import attempts, get
from vigil.actions.webhooks import MIN_SECRET_LENGTH, WebhookError, WebhookExists, WebhookNotFound
from vigil.api.auth import Require
from vigil.api.common import api_settings, known_content
from vigil.api.errors import ApiError
from vigil.api.models import RowId
from vigil.api.settings import ApiSettings
from vigil.store import Database
from vigil.store.models import Action, ActionAttempt

router = APIRouter(tags=["actions"])
WebhookAdmin = Annotated[Principal, Depends(Require("webhook:admin"))]
ActionReader = Annotated[Principal, Depends(Require("action:read"))]


class WebhookIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    url: str = Field(min_length=1, max_length=2048)
    kinds: list[str] = Field(min_length=1)
    secret: str | None = Field(
        default=None,
        min_length=MIN_SECRET_LENGTH,
        max_length=128,
        description="The signing secret; generated when left out. Never shown again.",
    )


class WebhookChange(BaseModel):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    kinds: list[str] | None = None
    enabled: bool | None = None


class WebhookOut(BaseModel):
    id: int
    name: str
    url: str
    kinds: list[str]
    enabled: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown this once: store it with the receiver now.")


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    error: str
    duration_ms: float


class ActionOut(BaseModel):
    id: int
    kind: str
    status: str
    idempotency_key: str
    alert_id: int | None
    decision_id: int | None
    webhook_id: int | None
    automatic: bool
    attempts: int
    next_attempt_at: datetime
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class ActionDetail(ActionOut):
    #: Left out for callers without ``evidence:view``: a referral's payload is evidence.
    payload: dict[str, Any] | None
    history: list[AttemptOut]


class ActionPage(BaseModel):
    actions: list[ActionOut]
    next_before: int | None = Field(description="Pass as `before` for the next page.")


def _db(request: Request) -> Database:
    return known_content(request).db


Db = Annotated[Database, Depends(_db)]
Settings = Annotated[ApiSettings, Depends(api_settings)]


def _webhook_error(exc: WebhookError) -> ApiError:
    if isinstance(exc, WebhookNotFound):
        return ApiError(404, "webhook_not_found", str(exc))
    if isinstance(exc, WebhookExists):
        return ApiError(409, "webhook_exists", str(exc))
    return ApiError(422, "invalid_webhook", str(exc))


@router.get("/v1/webhooks")
def list_webhooks(_: WebhookAdmin, db: Db) -> list[WebhookOut]:
    with db.session() as session:
        return [WebhookOut(**asdict(info)) for info in webhooks.list_webhooks(session)]


@router.post("/v1/webhooks", status_code=201)
def create_webhook(
    body: WebhookIn, principal: WebhookAdmin, db: Db, settings: Settings
) -> WebhookCreated:
    try:
        with db.session() as session:
            info, secret = webhooks.create(
                session,
                principal.actor,
                name=body.name,
                url=body.url,
                kinds=body.kinds,
                allow=settings.url_fetch_allow,
                secret=body.secret,
            )
    except WebhookError as exc:
        raise _webhook_error(exc) from None
    return WebhookCreated(**asdict(info), secret=secret)


@router.get("/v1/webhooks/{webhook_id}")
def get_webhook(webhook_id: RowId, _: WebhookAdmin, db: Db) -> WebhookOut:
    try:
        with db.session() as session:
            return WebhookOut(**asdict(webhooks.get(session, webhook_id)))
    except WebhookError as exc:
        raise _webhook_error(exc) from None


@router.patch("/v1/webhooks/{webhook_id}")
def change_webhook(
    webhook_id: RowId, body: WebhookChange, principal: WebhookAdmin, db: Db, settings: Settings
) -> WebhookOut:
    try:
        with db.session() as session:
            info = webhooks.update(
                session,
                principal.actor,
                webhook_id,
                allow=settings.url_fetch_allow,
                url=body.url,
                kinds=body.kinds,
                enabled=body.enabled,
            )
    except WebhookError as exc:
        raise _webhook_error(exc) from None
    return WebhookOut(**asdict(info))


@router.delete("/v1/webhooks/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: RowId, principal: WebhookAdmin, db: Db) -> Response:
    try:
        with db.session() as session:
            webhooks.delete(session, principal.actor, webhook_id)
    except WebhookError as exc:
        raise _webhook_error(exc) from None
    return Response(status_code=204)


def _out(action: Action) -> ActionOut:
    return ActionOut.model_validate(action, from_attributes=True)


@router.get("/v1/actions")
def list_actions(
    _: ActionReader,
    db: Db,
    status: Annotated[
        list[ActionStatus] | None, Query(description="One or more; `dead` lists dead letters.")
    ] = None,
    kind: ActionKind | None = None,
    alert_id: RowId | None = None,
    decision_id: RowId | None = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Only ids below this.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ActionPage:
    with db.session() as session:
        rows = actions.list_actions(
            session,
            statuses=status or (),
            kind=kind,
            alert_id=alert_id,
            decision_id=decision_id,
            before_id=before,
            limit=limit,
        )
        page = [_out(row) for row in rows]
    return ActionPage(actions=page, next_before=page[-1].id if len(page) == limit else None)


def _attempt(attempt: ActionAttempt) -> AttemptOut:
    return AttemptOut.model_validate(attempt, from_attributes=True)


@router.get("/v1/actions/{action_id}")
def get_action(action_id: RowId, principal: ActionReader, db: Db) -> ActionDetail:
    with db.session() as session:
        try:
            action = get(session, action_id)
        except actions.ActionNotFound as exc:
            raise ApiError(404, "action_not_found", str(exc)) from None
        return ActionDetail(
            **_out(action).model_dump(),
            payload=action.payload if principal.can("evidence:view") else None,
            history=[_attempt(a) for a in attempts(session, action_id)],
        )


@router.post("/v1/actions/{action_id}/retry")
def retry_action(action_id: RowId, principal: WebhookAdmin, db: Db) -> list[ActionOut]:
    """Send a dead letter again, with a fresh attempt budget."""
    try:
        with db.session() as session:
            rows = actions.retry(session, action_id, actor=principal.actor)
            return [_out(row) for row in rows]
    except actions.ActionNotFound as exc:
        raise ApiError(404, "action_not_found", str(exc)) from None
    except actions.ActionError as exc:
        raise ApiError(409, "action_not_dead", str(exc)) from None
