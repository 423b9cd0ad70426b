"""The console's pages. Each reads through the service functions the API uses, inside one
transaction, and needs a live session with the page's permission (see :class:`Page`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, RedirectResponse, Response

from vigil import actions, review
from vigil.accounts import ConsoleSessions
from vigil.actions.kinds import KINDS
from vigil.api.auth import SESSION_COOKIE
from vigil.audit import as_json
from vigil.hashing import KnownContent
from vigil.reports import PublicReports
from vigil.store.evidence import INLINE_TYPES, locate
from vigil.store.models import AuditEvent, Decision, UserAccount, utcnow
from vigil.web.auth import Page, Viewer
from vigil.web.rendering import SECURITY_HEADERS, render
from vigil.web.streams import alert_stream, monitor

router = APIRouter()
Reader = Annotated[Viewer, Depends(Page("alert:read"))]
EvidenceViewer = Annotated[Viewer, Depends(Page("evidence:view"))]
BankReader = Annotated[Viewer, Depends(Page("bank:read"))]
AuditReader = Annotated[Viewer, Depends(Page("audit:read"))]
ActionReader = Annotated[Viewer, Depends(Page("action:read"))]
SignedIn = Annotated[Viewer, Depends(Page(None))]

_QUEUE_LENGTH = 100
_PAGE = 100


def _known(request: Request) -> KnownContent:
    known: KnownContent = request.app.state.known
    return known


def _policy(request: Request) -> review.ReviewPolicy:
    return review.ReviewPolicy.of(request.app.state.settings)


def _safe_next(target: str | None) -> str:
    # Only a console page: a login link must not send people anywhere else (open redirect).
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return "/console/queue"


@router.get("/")
def home() -> Response:
    return RedirectResponse("/console/queue", status_code=303, headers=SECURITY_HEADERS)


@router.get("/login")
def login(request: Request, next: str | None = None) -> Response:
    sessions: ConsoleSessions = request.app.state.sessions
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and sessions.authenticate(cookie) is not None:
        return RedirectResponse(_safe_next(next), status_code=303, headers=SECURITY_HEADERS)
    return render(request, "login.html", None, next=_safe_next(next))


@router.get("/help")
def keyboard_help(request: Request, viewer: SignedIn) -> Response:
    return render(request, "help.html", viewer)


def _user_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = session.execute(
        select(UserAccount.id, UserAccount.username).where(UserAccount.id.in_(wanted))
    )
    return {row.id: row.username for row in rows}


@router.get("/queue")
def queue(request: Request, viewer: Reader) -> Response:
    """The open and escalated alerts, highest priority first, and decisions waiting for a
    second person."""
    policy, now = _policy(request), utcnow()
    where = review.AlertFilter(statuses=review.QUEUE_STATUSES, limit=_QUEUE_LENGTH)
    with _known(request).db.session() as session:
        alerts = [
            review.alert_json(alert, policy.weights, now, evidence=False)
            for alert in review.list_alerts(session, where)
        ]
        pending = list(
            session.scalars(
                select(Decision).where(Decision.approval_status == "pending").order_by(Decision.id)
            )
        )
        people = {a["claimed_by"] for a in alerts} | {d.user_id for d in pending}
        names = _user_names(session, people)
        return render(request, "queue.html", viewer, alerts=alerts, pending=pending, names=names)


def _evidence_items(alert: dict[str, Any]) -> list[dict[str, Any]]:
    items = []
    for index, item in enumerate(alert["evidence"]):
        if not isinstance(item, dict):
            continue
        shown = dict(item, index=index)
        if item.get("type") == "upload":
            media_type = str(item.get("media_type", ""))
            shown["inline"] = media_type in INLINE_TYPES
            shown["video"] = media_type.startswith("video/")
        items.append(shown)
    return items


@router.get("/alerts/{alert_id}")
def alert_detail(request: Request, alert_id: int, viewer: Reader) -> Response:
    """One alert with its evidence (veiled until revealed), decisions, actions and controls."""
    policy = _policy(request)
    evidence = viewer.can("evidence:view")
    known = _known(request)
    with known.db.session() as session:
        try:
            found = review.view_alert(
                session, alert_id, actor=viewer.principal.actor, evidence=evidence
            )
        except review.NotFound:
            raise HTTPException(404, f"No alert {alert_id}") from None
        alert = review.alert_json(found, policy.weights, utcnow(), evidence=evidence)
        decisions = list(
            session.scalars(
                select(Decision).where(Decision.alert_id == alert_id).order_by(Decision.id)
            )
        )
        alert_actions = (
            actions.list_actions(session, alert_id=alert_id) if viewer.can("action:read") else []
        )
        cases = review.list_cases(session, "open") if viewer.can("case:write") else []
        names = _user_names(
            session,
            {alert["claimed_by"]}
            | {d.user_id for d in decisions}
            | {d.approved_by for d in decisions},
        )
        return render(
            request,
            "alert.html",
            viewer,
            alert=alert,
            items=_evidence_items(alert),
            decisions=decisions,
            actions=alert_actions,
            cases=cases,
            banks=[b.name for b in known.banks.list_banks() if not b.negative],
            names=names,
            outcomes=review.OUTCOMES,
            action_kinds=KINDS,
            mine=alert["claimed_by"] == viewer.principal.user_id,
            stream=alert_stream(monitor(request), alert) if viewer.can("stream:read") else None,
        )


@router.get("/evidence/{alert_id}/{index}")
def evidence_file(request: Request, alert_id: int, index: int, viewer: EvidenceViewer) -> Response:
    """An uploaded evidence file; only media types a browser shows safely are sent inline."""
    with _known(request).db.session() as session:
        try:
            alert = review.get_alert(session, alert_id)
        except review.NotFound:
            raise HTTPException(404, f"No alert {alert_id}") from None
        items = alert.evidence
    item = items[index] if 0 <= index < len(items) else None
    if not isinstance(item, dict) or item.get("type") != "upload":
        raise HTTPException(404, "No such evidence file")
    path = locate(request.app.state.settings.home, str(item.get("name", "")))
    if path is None:
        raise HTTPException(404, "The evidence file is missing from the store")
    media_type = str(item.get("media_type", ""))
    inline = media_type in INLINE_TYPES
    return FileResponse(
        path,
        media_type=media_type if inline else "application/octet-stream",
        filename=None if inline else f"evidence-{alert_id}-{index}",
        headers={**SECURITY_HEADERS, "Content-Security-Policy": "default-src 'none'; sandbox"},
    )


@router.get("/cases")
def cases(request: Request, viewer: Reader) -> Response:
    with _known(request).db.session() as session:
        rows = [
            (case, review.case_alert_ids(session, case.id)) for case in review.list_cases(session)
        ]
        return render(request, "cases.html", viewer, cases=rows)


@router.get("/banks")
def banks(request: Request, viewer: BankReader) -> Response:
    return render(request, "banks.html", viewer, banks=_known(request).banks.list_banks())


@router.get("/audit")
def audit_log(
    request: Request,
    viewer: AuditReader,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The audit log, newest first, filtered like ``GET /v1/audit``."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(_PAGE)
    if action:
        query = query.where(AuditEvent.action == action)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    with _known(request).db.session() as session:
        events = [as_json(event) for event in session.scalars(query)]
    older = events[-1]["id"] if len(events) == _PAGE else None
    return render(
        request, "audit.html", viewer, events=events, action=action, actor=actor, older=older
    )


@router.get("/dead-letters")
def dead_letters(request: Request, viewer: ActionReader) -> Response:
    with _known(request).db.session() as session:
        rows = actions.list_actions(session, statuses=("dead",), limit=_PAGE)
        return render(request, "dead_letters.html", viewer, actions=rows)


@router.get("/reports")
def reports(request: Request, viewer: Reader) -> Response:
    public: PublicReports = request.app.state.reports
    return render(request, "reports.html", viewer, reports=public.list_reports(_PAGE))


async def report_page(request: Request) -> Response:
    """The public report form (``/report``): no sign-in."""
    public: PublicReports = request.app.state.reports
    return render(
        request,
        "report.html",
        None,
        max_bytes=public.settings.report_max_bytes,
        max_description=public.settings.report_max_description_chars,
    )
