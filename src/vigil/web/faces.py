"""The console's face-search pages: watchlists (list, create, people, enrollment, approval), the
approvals waiting for a supervisor, searches (form, outcome per file, candidates, export) and
the two-person review (the caller's queue, a candidate's two faces side by side).

Unlike the other pages, these post their forms to the console itself (multipart, with the
session's CSRF token as a field, checked before anything is done): a search answers with a page
of its own, and uploads, verdicts and their refusals need no script. Every change still goes
through the service functions the API uses (:mod:`vigil.faces`), which check the caller's
permissions, keep the four-eyes rules and write the audit log, and errors are classified as the
API classifies them (:func:`vigil.api.routes.faces.faces_errors`), so the console can do nothing
the API would not let the same person do, and says why it refused in the same words.

Each form posts to the page it is on, under the page's own permission (``face:read``): the
finer permission of each change is the service's to check, as it does for the API.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from vigil import review as cases
from vigil.api.errors import ApiError
from vigil.api.routes.faces import (
    MAX_SEARCH_FILES,
    WatchlistOut,
    face_service,
    faces_errors,
    probe_media,
    search_request,
)
from vigil.api.uploads import Uploads, receive_uploads
from vigil.faces import review, watchlists
from vigil.faces.service import FaceService
from vigil.review import ReviewError
from vigil.store.models import (
    FaceCandidate,
    FaceSearch,
    Watchlist,
    WatchlistEntry,
    WatchlistImage,
    utcnow,
)
from vigil.web.auth import Page, Viewer
from vigil.web.pages import _user_names
from vigil.web.rendering import SECURITY_HEADERS, render

router = APIRouter(prefix="/faces")
FaceReader = Annotated[Viewer, Depends(Page("face:read"))]
Approver = Annotated[Viewer, Depends(Page("face:approve"))]
Exporter = Annotated[Viewer, Depends(Page("face:export"))]
Faces = Annotated[FaceService, Depends(face_service)]

#: Searches listed on the Searches page, newest first.
_RECENT_SEARCHES = 100
_FACES = ("probe", "watchlist")
_CSRF_FIELD = "csrf_token"


#: A face form: its fields, and the files of a search or an enrollment (none for the others).
_receive = receive_uploads(MAX_SEARCH_FILES, required=False)


async def receive_form(request: Request) -> AsyncIterator[Uploads]:
    """FastAPI dependency: a face form as the API reads a search's (multipart, each file capped
    by ``max_upload_bytes`` as it streams in, deleted once the response is done), its refusals
    as the console's error page."""
    async with AsyncExitStack() as stack:
        try:
            form = await stack.enter_async_context(asynccontextmanager(_receive)(request))
        except ApiError as exc:
            raise HTTPException(exc.status, _message(exc)) from None
        yield form


Form = Annotated[Uploads, Depends(receive_form)]


def _message(exc: ApiError) -> str:
    if exc.error == "enrollment_rejected" and isinstance(exc.detail, dict):
        return f"The photo was not enrolled ({exc.detail['reason']}): {exc.detail['message']}"
    return str(exc.detail)


@contextmanager
def _page_errors() -> Iterator[None]:
    """A page's face errors (no such search, no key...) as the console's error page."""
    try:
        with faces_errors():
            yield
    except ApiError as exc:
        raise HTTPException(exc.status, _message(exc)) from None


def _check_csrf(viewer: Viewer, form: Uploads) -> None:
    sent = form.text(_CSRF_FIELD)
    if not hmac.compare_digest(sent.encode(), viewer.csrf_token.encode()):
        raise HTTPException(403, "This form did not come from your session: reload the page.")


def _entered(form: Uploads) -> dict[str, str]:
    """What was typed into a refused form, to show it again."""
    return {name: values[-1] for name, values in form.fields.items() if name != _CSRF_FIELD}


def _redirect(path: str) -> Response:
    return RedirectResponse(f"/console/faces{path}", status_code=303, headers=SECURITY_HEADERS)


def _date(text: str, what: str) -> datetime:
    """A date field (``YYYY-MM-DD``), as midnight UTC of that day."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ReviewError(f"the {what} must be a date (YYYY-MM-DD)") from None
    return day.replace(tzinfo=UTC)


def _counts(session: Session) -> tuple[dict[int, int], dict[int, int]]:
    """People and images (holding a template) per watchlist id."""
    people = session.execute(
        select(WatchlistEntry.watchlist_id, func.count()).group_by(WatchlistEntry.watchlist_id)
    )
    images = session.execute(
        select(WatchlistEntry.watchlist_id, func.count(WatchlistImage.id))
        .join(WatchlistImage, WatchlistImage.entry_id == WatchlistEntry.id)
        .where(WatchlistImage.template.is_not(None))
        .group_by(WatchlistEntry.watchlist_id)
    )
    return {w: n for w, n in people}, {w: n for w, n in images}


def _watchlist_rows(session: Session, chosen: list[Watchlist]) -> list[dict[str, Any]]:
    people, images = _counts(session)
    owners = _user_names(session, {w.owner_id for w in chosen})
    return [
        {
            **WatchlistOut.of(w).model_dump(),
            "owner": owners.get(w.owner_id or 0, "—"),
            "people": people.get(w.id, 0),
            "images": images.get(w.id, 0),
        }
        for w in chosen
    ]


# --- watchlists --------------------------------------------------------------------------


def _watchlists_page(
    request: Request,
    viewer: Viewer,
    faces: FaceService,
    problem: ApiError | None = None,
    entered: dict[str, str] | None = None,
) -> Response:
    with _page_errors(), faces.db.session() as session:
        rows = _watchlist_rows(session, watchlists.list_watchlists(session))
        return render(
            request,
            "faces_watchlists.html",
            viewer,
            problem.status if problem else 200,
            watchlists=rows,
            problem=_message(problem) if problem else None,
            entered=entered or {},
        )


@router.get("/watchlists")
def watchlists_page(request: Request, viewer: FaceReader, faces: Faces) -> Response:
    return _watchlists_page(request, viewer, faces)


@router.post("/watchlists")
def create_watchlist(request: Request, viewer: FaceReader, form: Form, faces: Faces) -> Response:
    """The create form (``face:watchlist``): a draft, owned by its creator."""
    _check_csrf(viewer, form)
    try:
        with faces_errors(), faces.db.session() as session:
            terms = watchlists.WatchlistTerms(
                name=form.text("name"),
                purpose=form.text("purpose"),
                legal_basis=form.text("legal_basis"),
                review_at=_date(form.text("review_at"), "review date"),
                expires_at=_date(form.text("expires_at"), "expiry"),
            )
            model = faces.engine.model
            created = watchlists.create_watchlist(session, viewer.principal, terms, model)
            target = f"/watchlists/{created.id}"
    except ApiError as exc:
        return _watchlists_page(request, viewer, faces, exc, _entered(form))
    return _redirect(target)


def _people(session: Session, watchlist: Watchlist) -> list[tuple[WatchlistEntry, list[Any]]]:
    """Each person on the list with their enrolled images (never a template or crop)."""
    entries = list(
        session.scalars(
            select(WatchlistEntry)
            .where(WatchlistEntry.watchlist_id == watchlist.id)
            .order_by(WatchlistEntry.person_ref)
        )
    )
    columns = (
        WatchlistImage.id,
        WatchlistImage.entry_id,
        WatchlistImage.source,
        WatchlistImage.captured_at,
        WatchlistImage.quality,
        WatchlistImage.enrolled_by,
        WatchlistImage.enrolled_at,
        WatchlistImage.template.is_not(None).label("held"),
    )
    images = session.execute(
        select(*columns)
        .where(WatchlistImage.entry_id.in_([e.id for e in entries]))
        .order_by(WatchlistImage.id)
    ).all()
    return [(entry, [i for i in images if i.entry_id == entry.id]) for entry in entries]


def _watchlist_page(
    request: Request,
    viewer: Viewer,
    faces: FaceService,
    watchlist_id: int,
    problem: ApiError | None = None,
    entered: dict[str, str] | None = None,
) -> Response:
    with _page_errors(), faces.db.session() as session:
        watchlist = watchlists.get_watchlist(session, watchlist_id)
        [row] = _watchlist_rows(session, [watchlist])
        names = _user_names(session, {watchlist.approved_by})
        own = viewer.principal.actor == watchlist.created_by or (
            viewer.principal.user_id == watchlist.owner_id
        )
        return render(
            request,
            "faces_watchlist.html",
            viewer,
            problem.status if problem else 200,
            watchlist=row,
            people=_people(session, watchlist),
            approved_by=names.get(watchlist.approved_by or 0),
            own=own,
            problem=_message(problem) if problem else None,
            entered=entered or {},
        )


@router.get("/watchlists/{watchlist_id}")
def watchlist_page(
    request: Request, watchlist_id: int, viewer: FaceReader, faces: Faces
) -> Response:
    return _watchlist_page(request, viewer, faces, watchlist_id)


def _add_person(session: Session, viewer: Viewer, watchlist_id: int, form: Uploads) -> None:
    person_ref, display_name = form.text("person_ref"), form.text("display_name")
    watchlists.add_entry(session, viewer.principal, watchlist_id, person_ref, display_name)


def _enroll(
    session: Session, viewer: Viewer, watchlist_id: int, form: Uploads, faces: FaceService
) -> None:
    if not form.files:
        raise ReviewError("choose a photo to enrol")
    photo = form.files[0]
    source = form.text("source") or photo.filename
    captured = form.text("captured_at")
    origin = watchlists.ImageSource(source, _date(captured, "capture date") if captured else None)
    data = photo.path.read_bytes()
    faces.enroll(session, viewer.principal, watchlist_id, form.text("person_ref"), data, origin)


def _approve(session: Session, viewer: Viewer, watchlist_id: int, form: Uploads) -> None:
    review_at = form.text("review_at")
    new_date = _date(review_at, "new review date") if review_at else None
    watchlists.approve_watchlist(session, viewer.principal, watchlist_id, new_date)


@router.post("/watchlists/{watchlist_id}")
def change_watchlist(
    request: Request, watchlist_id: int, viewer: FaceReader, form: Form, faces: Faces
) -> Response:
    """The watchlist page's forms: add a person, enrol a photo (``face:watchlist``), approve
    (``face:approve``, not the creator's or owner's own)."""
    _check_csrf(viewer, form)
    action = form.text("action")
    try:
        with faces_errors(), faces.db.session() as session:
            if action == "add_person":
                _add_person(session, viewer, watchlist_id, form)
            elif action == "enroll":
                _enroll(session, viewer, watchlist_id, form, faces)
            elif action == "approve":
                _approve(session, viewer, watchlist_id, form)
            else:
                raise ReviewError(f"unknown action {action!r}")
    except ApiError as exc:
        return _watchlist_page(request, viewer, faces, watchlist_id, exc, _entered(form))
    return _redirect(f"/watchlists/{watchlist_id}")


@router.get("/approvals")
def approvals(request: Request, viewer: Approver, faces: Faces) -> Response:
    """Drafts with enrolled images, and approved lists past their review date: what a
    supervisor is asked to look at."""
    now = utcnow()
    with _page_errors(), faces.db.session() as session:
        waiting = [
            row
            for row in _watchlist_rows(session, watchlists.list_watchlists(session))
            if row["expires_at"] > now
            and row["images"]
            and (row["status"] == "draft" or row["review_at"] <= now)
        ]
        return render(request, "faces_approvals.html", viewer, watchlists=waiting)


# --- searches ----------------------------------------------------------------------------


def _searches_page(
    request: Request,
    viewer: Viewer,
    faces: FaceService,
    problem: ApiError | None = None,
    entered: dict[str, str] | None = None,
) -> Response:
    now = utcnow()
    with _page_errors(), faces.db.session() as session:
        searches = list(
            session.scalars(
                select(FaceSearch).order_by(FaceSearch.id.desc()).limit(_RECENT_SEARCHES)
            )
        )
        usable = [
            w
            for w in watchlists.list_watchlists(session)
            if w.status == "approved" and w.review_at > now
        ]
        return render(
            request,
            "faces_searches.html",
            viewer,
            problem.status if problem else 200,
            searches=searches,
            cases=cases.list_cases(session, "open") if viewer.can("face:search") else [],
            watchlists=usable,
            problem=_message(problem) if problem else None,
            entered=entered or {},
        )


@router.get("/searches")
def searches_page(request: Request, viewer: FaceReader, faces: Faces) -> Response:
    return _searches_page(request, viewer, faces)


@router.post("/searches")
def search(request: Request, viewer: FaceReader, form: Form, faces: Faces) -> Response:
    """The search form (``face:search``): runs the search, then shows it."""
    _check_csrf(viewer, form)
    try:
        with faces_errors():
            outcome = faces.search(viewer.principal, search_request(form), probe_media(form))
    except ApiError as exc:
        return _searches_page(request, viewer, faces, exc, _entered(form))
    return _redirect(f"/searches/{outcome.search_id}")


@router.get("/searches/{search_id}")
def search_page(request: Request, search_id: int, viewer: FaceReader, faces: Faces) -> Response:
    """A search's outcome per file and its candidates, grouped by the probe face."""
    with _page_errors(), faces.db.session() as session:
        record = review.get_search(session, viewer.principal, search_id)
        found = review.candidates_of(session, viewer.principal, search_id)
        probes: dict[str, list[FaceCandidate]] = {}
        for candidate in found:
            probes.setdefault(candidate.probe, []).append(candidate)
        return render(
            request,
            "faces_search.html",
            viewer,
            search=review.search_json(record),
            probes=probes,
            decided=all(not c.status.startswith("pending") for c in found),
            caveat=review.CAVEAT,
        )


@router.get("/searches/{search_id}/export")
def export(search_id: int, viewer: Exporter, faces: Faces) -> Response:
    """The search and its confirmed candidates as a JSON file for the case (audited)."""
    with _page_errors(), faces.db.session() as session:
        exported = review.export_confirmed(session, viewer.principal, search_id)
    disposition = f'attachment; filename="face-search-{search_id}.json"'
    return Response(
        json.dumps(exported, indent=2, ensure_ascii=False).encode(),
        media_type="application/json",
        headers={**SECURITY_HEADERS, "Content-Disposition": disposition},
    )


# --- two-person review -------------------------------------------------------------------


@router.get("/review")
def review_page(request: Request, viewer: FaceReader, faces: Faces) -> Response:
    """The candidates waiting for the caller's step (an operator's or an investigator's)."""
    reviews = viewer.can("face:operate") or viewer.can("face:confirm")
    with _page_errors(), faces.db.session() as session:
        queue = review.review_queue(session, viewer.principal) if reviews else []
        return render(
            request,
            "faces_review.html",
            viewer,
            queue=queue,
            reviews=reviews,
            decided=request.query_params.get("decided"),
        )


def _step(viewer: Viewer, candidate: FaceCandidate) -> str | None:
    """The verdict the viewer can give on ``candidate`` now, if any."""
    if candidate.status == "pending_operator" and viewer.can("face:operate"):
        return "operator"
    if (
        candidate.status == "pending_investigator"
        and viewer.can("face:confirm")
        and viewer.principal.user_id != candidate.operator_id
    ):
        return "investigator"
    return None


def _candidate_page(
    request: Request,
    viewer: Viewer,
    faces: FaceService,
    candidate_id: int,
    problem: ApiError | None = None,
    entered: dict[str, str] | None = None,
) -> Response:
    with _page_errors(), faces.db.session() as session:
        candidate = review.get_candidate(session, viewer.principal, candidate_id)
        image = session.get(WatchlistImage, candidate.image_id) if candidate.image_id else None
        return render(
            request,
            "faces_candidate.html",
            viewer,
            problem.status if problem else 200,
            candidate=candidate,
            search=review.get_search(session, viewer.principal, candidate.search_id),
            shown={
                "probe": candidate.probe_crop is not None,
                "watchlist": image is not None and image.crop is not None,
            },
            step=_step(viewer, candidate),
            caveat=review.CAVEAT,
            problem=_message(problem) if problem else None,
            entered=entered or {},
        )


@router.get("/candidates/{candidate_id}")
def candidate_page(
    request: Request, candidate_id: int, viewer: FaceReader, faces: Faces
) -> Response:
    return _candidate_page(request, viewer, faces, candidate_id)


@router.post("/candidates/{candidate_id}")
def verdict(
    request: Request, candidate_id: int, viewer: FaceReader, form: Form, faces: Faces
) -> Response:
    """The verdict form: the operator's (``face:operate``), then the investigator's
    (``face:confirm``, someone other than the operator)."""
    _check_csrf(viewer, form)
    steps = {"operator": review.operator_review, "investigator": review.investigator_review}
    decide = steps.get(form.text("step"))
    try:
        with faces_errors(), faces.db.session() as session:
            if decide is None:
                raise ReviewError("say whose verdict this is: the operator's or the investigator's")
            decide(session, viewer.principal, candidate_id, form.text("verdict"), form.text("note"))
    except ApiError as exc:
        return _candidate_page(request, viewer, faces, candidate_id, exc, _entered(form))
    return _redirect(f"/review?decided={candidate_id}")


@router.get("/candidates/{candidate_id}/faces/{which}")
def candidate_face(candidate_id: int, which: str, viewer: FaceReader, faces: Faces) -> Response:
    """The probe or the watchlist face of a candidate, decrypted for this look only: audited
    (:func:`vigil.faces.review.view_faces`) and never cached."""
    if which not in _FACES:
        raise HTTPException(404, f"a candidate has a probe and a watchlist face, not {which!r}")
    with _page_errors(), faces.db.session() as session:
        # A candidate that does not exist is a 404 even where no faces key is configured.
        review.get_candidate(session, viewer.principal, candidate_id)
        shown = review.view_faces(session, viewer.principal, candidate_id, faces.vault)
    data = shown.probe if which == "probe" else shown.watchlist
    if data is None:
        raise HTTPException(404, f"The {which} face of candidate {candidate_id} has been purged")
    return Response(data, media_type="image/jpeg", headers=SECURITY_HEADERS)
