"""The review queue over HTTP: alerts, claims, decisions with four-eyes approval, cases, and
``POST /v1/scan`` (hash + match an upload, then alert or act as each matched bank says).

Listings never carry evidence. ``GET /v1/alerts/{id}`` shows the evidence (the content's text,
keyframes, clips, the matched bank entry) only to callers with ``evidence:view``, and records
each such view in the audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from vigil import review
from vigil.accounts import Principal
from vigil.actions import ActionError, ActionKind
from vigil.api.auth import Require
from vigil.api.common import api_settings, checked, known_content
from vigil.api.errors import ApiError, ErrorBody
from vigil.api.models import HashResponse, MatchReportOut, RowId
from vigil.api.uploads import Upload, receive_upload, upload_body
from vigil.hashing import HashResult, KnownContent, MatchReport
from vigil.review.cases import CaseKind, CaseStatus
from vigil.store.models import Decision, ReviewCase, utcnow

router = APIRouter(prefix="/v1", tags=["review"])
Known = Annotated[KnownContent, Depends(known_content)]
Reader = Annotated[Principal, Depends(Require("alert:read"))]
Creator = Annotated[Principal, Depends(Require("alert:create"))]
Decider = Annotated[Principal, Depends(Require("alert:decide"))]
Approver = Annotated[Principal, Depends(Require("decision:approve"))]
CaseWriter = Annotated[Principal, Depends(Require("case:write"))]

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Not allowed (e.g. approving one's own decision)."},
    404: {"model": ErrorBody, "description": "No such alert, decision or case."},
    409: {"model": ErrorBody, "description": "Claimed by someone else, or already decided."},
}


def _policy(request: Request) -> review.ReviewPolicy:
    return review.ReviewPolicy.of(api_settings(request))


Policy = Annotated[review.ReviewPolicy, Depends(_policy)]


@contextmanager
def _unit(known: KnownContent) -> Iterator[Session]:
    """One transaction; review errors become API errors once it has rolled back."""
    try:
        with known.db.session() as session:
            yield session
    except review.NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except review.Conflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except review.NotAllowed as exc:
        raise ApiError(403, "not_allowed", str(exc)) from None
    except (review.ReviewError, ActionError) as exc:
        raise ApiError(422, "invalid_review_request", str(exc)) from None


# --- models ------------------------------------------------------------------------------


class AlertIn(BaseModel):
    dedupe_key: str = Field(
        min_length=1,
        max_length=128,
        description="Derived by the detector from what it saw: a redelivery finds the same alert.",
    )
    source: review.Source
    content_kind: review.ContentKind
    content_ref: str = ""
    platform: str = Field(default="", max_length=64)
    author_ref: str = Field(default="", max_length=256)
    url: str = ""
    text: str = ""
    signals: list[Any] = Field(default_factory=list)
    matches: list[Any] = Field(default_factory=list)
    evidence: list[Any] = Field(
        default_factory=list, description="Keyframes, clips, matched bank entries (references)."
    )
    explanation: str = ""
    score: float = 0.0
    severity: int = Field(default=5, ge=0, le=10)
    likelihood: float = Field(default=0.5, ge=0.0, le=1.0)
    reach: int = Field(default=0, ge=0, description="Views, followers: the audience so far.")
    occurred_at: datetime | None = None


class AlertOut(BaseModel):
    id: int
    dedupe_key: str
    source: str
    status: str
    content_kind: str
    content_ref: str
    platform: str
    author_ref: str
    url: str
    text: str
    signals: list[Any]
    matches: list[Any]
    evidence: list[Any]
    evidence_redacted: bool = Field(
        description="True when text and evidence were left out (no `evidence:view`)."
    )
    explanation: str
    score: float
    severity: int
    likelihood: float
    reach: int
    velocity: float = Field(description="Posts per hour (a campaign); 0 for a single item.")
    priority: float = Field(description="Priority now; see the README's Review queue.")
    case_id: int | None
    claimed_by: int | None
    claim_expires_at: datetime | None
    occurred_at: datetime
    created_at: datetime
    updated_at: datetime


class DecisionIn(BaseModel):
    outcome: review.Outcome
    reason: str = Field(min_length=1)
    actions: list[ActionKind] | None = Field(
        default=None,
        description="Actions to take; default: takedown (stream_cut for a stream) on confirm, "
        "police_referral on refer, none otherwise.",
    )
    bank: str | None = Field(default=None, description="The bank an add_to_bank action fills.")


class DecisionOut(BaseModel):
    id: int
    alert_id: int
    user_id: int | None
    outcome: str
    reason: str
    approval_status: str
    approved_by: int | None
    approved_at: datetime | None
    created_at: datetime


class RejectionIn(BaseModel):
    reason: str = Field(min_length=1)


class CaseIn(BaseModel):
    title: str = Field(min_length=1, max_length=256)
    description: str = ""
    kind: CaseKind = "incident"


class CaseUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = None
    kind: CaseKind | None = None
    status: CaseStatus | None = None


class CaseAlertsIn(BaseModel):
    alert_ids: list[int] = Field(min_length=1)


class CaseOut(BaseModel):
    id: int
    title: str
    description: str
    kind: str
    status: str
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    alert_ids: list[int]


class ScanResponse(HashResponse):
    report: MatchReportOut
    alerts: list[dict[str, Any]] = Field(
        description="Per matched bank: the alert (made or found again), its status, and any "
        "automatic action taken."
    )


def _alert_out(alert: Any, policy: review.ReviewPolicy, *, evidence: bool = False) -> AlertOut:
    return AlertOut.model_validate(
        review.alert_json(alert, policy.weights, utcnow(), evidence=evidence)
    )


def _decision_out(decision: Decision) -> DecisionOut:
    return DecisionOut.model_validate(decision, from_attributes=True)


def _case_out(session: Session, case: ReviewCase) -> CaseOut:
    alert_ids = review.case_alert_ids(session, case.id)
    return CaseOut.model_validate({**case.__dict__, "alert_ids": alert_ids})


# --- alerts ------------------------------------------------------------------------------


@router.post("/alerts", status_code=201, responses={200: {"model": AlertOut}})
def create_alert(
    body: AlertIn, principal: Creator, known: Known, policy: Policy, response: Response
) -> AlertOut:
    """Raise an alert. Idempotent on ``dedupe_key``: 201 when made, 200 with the existing alert
    when the same detection was delivered before."""
    new = review.NewAlert(**body.model_dump())
    with _unit(known) as session:
        alert, created = review.create_alert(
            session, new, weights=policy.weights, actor=principal.actor
        )
        if not created:
            response.status_code = 200
        return _alert_out(alert, policy)


@router.get("/alerts")
def list_alerts(
    principal: Reader,
    known: Known,
    policy: Policy,
    status: Annotated[
        list[review.Status] | None,
        Query(description="Repeatable; default: the queue (open, escalated)."),
    ] = None,
    source: review.Source | None = None,
    content_kind: review.ContentKind | None = None,
    platform: str | None = None,
    case_id: RowId | None = None,
    min_severity: Annotated[int | None, Query(ge=0, le=10)] = None,
    available: Annotated[bool, Query(description="Only alerts the caller may claim now.")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AlertOut]:
    """Alerts, highest priority first. Evidence is never listed."""
    if available and principal.user_id is None:
        raise ApiError(422, "invalid_review_request", "available=true needs a person's token")
    where = review.AlertFilter(
        statuses=status or review.QUEUE_STATUSES,
        source=source,
        content_kind=content_kind,
        platform=platform,
        case_id=case_id,
        min_severity=min_severity,
        available_to=principal.user_id if available else None,
        limit=limit,
        offset=offset,
    )
    with _unit(known) as session:
        return [_alert_out(alert, policy) for alert in review.list_alerts(session, where)]


@router.post(
    "/alerts/next",
    response_model=AlertOut,
    responses={204: {"description": "The queue is empty."}},
)
def claim_next(principal: Decider, known: Known, policy: Policy) -> AlertOut | Response:
    """Claim the highest-priority alert nobody holds (with its evidence: the claimer is about
    to review it, and the view is audited)."""
    with _unit(known) as session:
        alert = review.claim_next(session, principal, policy.claim_ttl)
        if alert is None:
            return Response(status_code=204)
        shown = review.view_alert(session, alert.id, actor=principal.actor, evidence=True)
        return _alert_out(shown, policy, evidence=True)


@router.get("/alerts/{alert_id}", responses=_ERRORS)
def get_alert(alert_id: RowId, principal: Reader, known: Known, policy: Policy) -> AlertOut:
    """One alert; its evidence only with ``evidence:view`` (and then the view is audited)."""
    evidence = principal.can("evidence:view")
    with _unit(known) as session:
        alert = review.view_alert(session, alert_id, actor=principal.actor, evidence=evidence)
        return _alert_out(alert, policy, evidence=evidence)


@router.post("/alerts/{alert_id}/claim", responses=_ERRORS)
def claim_alert(alert_id: RowId, principal: Decider, known: Known, policy: Policy) -> AlertOut:
    """Claim (or extend one's claim on) an alert for ``VIGIL_REVIEW_CLAIM_MINUTES``."""
    with _unit(known) as session:
        return _alert_out(review.claim(session, principal, alert_id, policy.claim_ttl), policy)


@router.post("/alerts/{alert_id}/release", responses=_ERRORS)
def release_alert(alert_id: RowId, principal: Decider, known: Known, policy: Policy) -> AlertOut:
    with _unit(known) as session:
        return _alert_out(review.release(session, principal, alert_id), policy)


@router.post("/alerts/{alert_id}/decisions", status_code=201, responses=_ERRORS)
def decide(alert_id: RowId, body: DecisionIn, principal: Decider, known: Known) -> DecisionOut:
    """Decide an alert nobody else holds. A referral, or any decision on a face-search alert or
    an account, is ``pending`` until a second person approves it; its actions wait till then."""
    with _unit(known) as session:
        decision = review.decide(
            session, principal, alert_id, body.outcome, body.reason, body.actions, body.bank
        )
        return _decision_out(decision)


@router.get("/alerts/{alert_id}/decisions", responses=_ERRORS)
def alert_decisions(alert_id: RowId, principal: Reader, known: Known) -> list[DecisionOut]:
    with _unit(known) as session:
        review.get_alert(session, alert_id)
        query = select(Decision).where(Decision.alert_id == alert_id).order_by(Decision.id)
        return [_decision_out(d) for d in session.scalars(query)]


# --- four-eyes ---------------------------------------------------------------------------


@router.get("/decisions")
def list_decisions(
    principal: Reader,
    known: Known,
    approval_status: Literal["pending", "approved", "rejected", "not_required"] = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DecisionOut]:
    """Decisions by approval status; by default those waiting for a second person."""
    with _unit(known) as session:
        query = (
            select(Decision)
            .where(Decision.approval_status == approval_status)
            .order_by(Decision.id)
            .limit(limit)
        )
        return [_decision_out(d) for d in session.scalars(query)]


@router.post("/decisions/{decision_id}/approve", responses=_ERRORS)
def approve(decision_id: RowId, principal: Approver, known: Known) -> DecisionOut:
    """Approve someone else's pending decision: its actions are released."""
    with _unit(known) as session:
        return _decision_out(review.approve(session, principal, decision_id))


@router.post("/decisions/{decision_id}/reject", responses=_ERRORS)
def reject(decision_id: RowId, body: RejectionIn, principal: Approver, known: Known) -> DecisionOut:
    """Reject someone else's pending decision: its actions are cancelled, the alert requeued."""
    with _unit(known) as session:
        return _decision_out(review.reject(session, principal, decision_id, body.reason))


# --- cases -------------------------------------------------------------------------------


@router.post("/cases", status_code=201)
def create_case(body: CaseIn, principal: CaseWriter, known: Known) -> CaseOut:
    with _unit(known) as session:
        case = review.create_case(session, principal, body.title, body.description, body.kind)
        return _case_out(session, case)


@router.get("/cases")
def list_cases(principal: Reader, known: Known, status: CaseStatus | None = None) -> list[CaseOut]:
    with _unit(known) as session:
        return [_case_out(session, case) for case in review.list_cases(session, status)]


@router.get("/cases/{case_id}", responses=_ERRORS)
def get_case(case_id: RowId, principal: Reader, known: Known) -> CaseOut:
    with _unit(known) as session:
        return _case_out(session, review.get_case(session, case_id))


@router.patch("/cases/{case_id}", responses=_ERRORS)
def update_case(case_id: RowId, body: CaseUpdate, principal: CaseWriter, known: Known) -> CaseOut:
    change = review.CaseChange(**body.model_dump())
    with _unit(known) as session:
        return _case_out(session, review.update_case(session, principal, case_id, change))


@router.delete("/cases/{case_id}", status_code=204, responses=_ERRORS)
def delete_case(case_id: RowId, principal: CaseWriter, known: Known) -> Response:
    """Delete a case; its alerts stay, ungrouped."""
    with _unit(known) as session:
        review.delete_case(session, principal, case_id)
    return Response(status_code=204)


@router.post("/cases/{case_id}/alerts", responses=_ERRORS)
def add_case_alerts(
    case_id: RowId, body: CaseAlertsIn, principal: CaseWriter, known: Known
) -> CaseOut:
    with _unit(known) as session:
        review.add_alerts(session, principal, case_id, body.alert_ids)
        return _case_out(session, review.get_case(session, case_id))


@router.delete("/cases/{case_id}/alerts/{alert_id}", status_code=204, responses=_ERRORS)
def remove_case_alert(
    case_id: RowId, alert_id: RowId, principal: CaseWriter, known: Known
) -> Response:
    with _unit(known) as session:
        review.remove_alert(session, principal, case_id, alert_id)
    return Response(status_code=204)


# --- scan: hash, match, alert/act ----------------------------------------------------------


@router.post(
    "/scan",
    openapi_extra=upload_body(),
    responses={
        413: {"model": ErrorBody, "description": "The upload is over the size limit."},
        422: {"model": ErrorBody, "description": "The file is not hashable media."},
    },
)
async def scan(
    principal: Creator,  # first: a caller without the permission must not get to upload
    upload: Annotated[Upload, Depends(receive_upload)],
    known: Known,
    policy: Policy,
    content_ref: Annotated[str, Query(description="The platform's id for the post.")] = "",
    platform: Annotated[str, Query(max_length=64)] = "",
    author_ref: Annotated[str, Query(max_length=256)] = "",
    url: str = "",
    reach: Annotated[int, Query(ge=0)] = 0,
) -> ScanResponse:
    """Hash and match an upload as it is posted, then do what each matched bank says: raise an
    alert for review, take its automatic action (e.g. takedown), or both. Retrying the same
    upload (same content, platform and content_ref) finds the same alerts and acts once."""
    result, report = await run_in_threadpool(known.match, upload.path)
    checked(result, upload.path, upload.filename)
    sighting = review.Sighting(content_ref, platform, author_ref, url, reach)
    outcomes = await run_in_threadpool(
        _record_scan, known, result, report, policy, sighting, principal.actor
    )
    hashed = HashResponse.of(result, upload.filename)
    return ScanResponse(**hashed.model_dump(), report=MatchReportOut.of(report), alerts=outcomes)


def _record_scan(
    known: KnownContent,
    result: HashResult,
    report: MatchReport,
    policy: review.ReviewPolicy,
    sighting: review.Sighting,
    actor: str,
) -> list[dict[str, Any]]:
    with _unit(known) as session:
        outcomes = review.alerts_from_match(
            session, result, report, policy=policy, sighting=sighting, actor=actor
        )
        return [outcome.as_json() for outcome in outcomes]
