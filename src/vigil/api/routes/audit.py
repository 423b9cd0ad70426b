"""The audit log, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from vigil.accounts import Accounts, Principal
from vigil.api.auth import Require, accounts
from vigil.api.models import AuditEventOut, AuditPage
from vigil.audit import as_json
from vigil.store.models import AuditEvent

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("")
def list_events(
    _: Annotated[Principal, Depends(Require("audit:read"))],
    store: Annotated[Accounts, Depends(accounts)],
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Only events older than this id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    with store.db.session() as session:
        events = [AuditEventOut(**as_json(event)) for event in session.scalars(query)]
    next_before = events[-1].id if len(events) == limit else None
    return AuditPage(events=events, next_before=next_before)
