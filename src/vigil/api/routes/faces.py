"""Retrospective face search over HTTP: governed watchlists, searches of incident media, the
two-person review of candidates and the export of confirmed ones (``/v1/faces``).

Every route is role-checked by its ``Require`` and the service functions check the same
permissions again (a watchlist's creator cannot approve it, the operator of a candidate cannot
confirm it: those rules live in :mod:`vigil.faces`). Templates never leave the server; face
crops do only through ``/candidates/{id}/faces/...``, each look audited and never cached.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.accounts import Principal
from vigil.api.auth import Require
from vigil.api.errors import ApiError, ErrorBody
from vigil.api.models import RowId
from vigil.api.uploads import Upload, Uploads, receive_upload, receive_uploads, upload_body
from vigil.bus import Bus
from vigil.faces import queue as faces_queue
from vigil.faces import review as face_review
from vigil.faces import watchlists
from vigil.faces.models import FaceModelError
from vigil.faces.quality import EnrollmentRejected
from vigil.faces.search import ProbeMedia, SearchRequest
from vigil.faces.service import FaceService
from vigil.faces.vault import VaultError
from vigil.review import Conflict, NotAllowed, NotFound, ReviewError
from vigil.store.models import Watchlist, WatchlistEntry, WatchlistImage, utcnow

router = APIRouter(prefix="/v1/faces", tags=["faces"])
Reader = Annotated[Principal, Depends(Require("face:read"))]
Keeper = Annotated[Principal, Depends(Require("face:watchlist"))]
Approver = Annotated[Principal, Depends(Require("face:approve"))]
Searcher = Annotated[Principal, Depends(Require("face:search"))]
Operator = Annotated[Principal, Depends(Require("face:operate"))]
Confirmer = Annotated[Principal, Depends(Require("face:confirm"))]
Exporter = Annotated[Principal, Depends(Require("face:export"))]
WatchlistName = Annotated[str, Path(min_length=1, max_length=128)]
PersonRef = Annotated[str, Path(min_length=1, max_length=128)]

#: Files one search may upload; each is capped by ``VIGIL_MAX_UPLOAD_BYTES``, and so the whole
#: request by this many times that.
MAX_SEARCH_FILES = 10
_JPEG = "image/jpeg"

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Not allowed (e.g. approving one's own watchlist)."},
    404: {"model": ErrorBody, "description": "No such watchlist, person, search or candidate."},
    409: {"model": ErrorBody, "description": "Not in a state that allows it (e.g. a draft)."},
    503: {"model": ErrorBody, "description": "No faces key (VIGIL_FACES_KEY) or face model."},
}
_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    413: {"model": ErrorBody, "description": "An upload is over the size limit."},
    415: {"model": ErrorBody, "description": "The body is not multipart/form-data."},
}


def face_service(request: Request) -> FaceService:
    service: FaceService = request.app.state.faces
    return service


Faces = Annotated[FaceService, Depends(face_service)]


@contextmanager
def faces_errors() -> Iterator[None]:
    """The errors of :mod:`vigil.faces` as API errors. Enter it before the session, so that a
    failed unit of work has rolled back by the time its error is answered."""
    try:
        yield
    except EnrollmentRejected as exc:
        detail = {"reason": exc.reason, "message": str(exc)}
        raise ApiError(422, "enrollment_rejected", detail) from None
    except VaultError as exc:
        raise ApiError(503, "faces_key_unavailable", str(exc)) from None
    except FaceModelError as exc:
        raise ApiError(503, "face_model_unavailable", str(exc)) from None
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except Conflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except NotAllowed as exc:
        raise ApiError(403, "not_allowed", str(exc)) from None
    except ReviewError as exc:
        raise ApiError(422, "invalid_face_request", str(exc)) from None


@contextmanager
def _unit(service: FaceService) -> Iterator[Session]:
    with faces_errors(), service.db.session() as session:
        yield session


# --- models ------------------------------------------------------------------------------


class WatchlistIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    purpose: str = Field(description="Why the list exists (at least 20 characters).")
    legal_basis: str = Field(description="The law or authority it rests on (20+ characters).")
    review_at: AwareDatetime = Field(description="When a supervisor must look at it again.")
    expires_at: AwareDatetime = Field(description="When it expires and its templates are purged.")


class ApprovalIn(BaseModel):
    review_at: AwareDatetime | None = Field(
        default=None, description="A new review date; needed once the old one has passed."
    )


class EntryIn(BaseModel):
    person_ref: str = Field(min_length=1, max_length=128)
    display_name: str = Field(min_length=1, max_length=256)


class EntryOut(BaseModel):
    id: int
    person_ref: str
    display_name: str
    images: int = Field(description="Enrolled images that hold a template (none once purged).")
    created_by: str
    created_at: AwareDatetime

    @classmethod
    def of(cls, entry: WatchlistEntry, images: int) -> EntryOut:
        return cls(
            id=entry.id,
            person_ref=entry.person_ref,
            display_name=entry.display_name,
            images=images,
            created_by=entry.created_by,
            created_at=entry.created_at,
        )


class WatchlistOut(BaseModel):
    id: int
    name: str
    purpose: str
    legal_basis: str
    status: Literal["draft", "approved", "expired"]
    searchable: bool = Field(description="Approved, before its review date and its expiry.")
    model: str = Field(description="The embedder its templates come from.")
    owner_id: int | None
    review_at: AwareDatetime
    expires_at: AwareDatetime
    created_by: str
    created_at: AwareDatetime
    approved_by: int | None
    approved_at: AwareDatetime | None
    purged_at: AwareDatetime | None

    @classmethod
    def of(cls, watchlist: Watchlist) -> WatchlistOut:
        now = utcnow()
        in_date = now < watchlist.review_at and now < watchlist.expires_at
        body = {c.name: getattr(watchlist, c.name) for c in Watchlist.__table__.columns}
        return cls.model_validate(
            {**body, "searchable": watchlist.status == "approved" and in_date}
        )


class WatchlistDetail(WatchlistOut):
    entries: list[EntryOut]

    @classmethod
    def read(cls, session: Session, watchlist: Watchlist) -> WatchlistDetail:
        """The watchlist and its people with their image counts: never a template or crop."""
        images = func.count(WatchlistImage.id)
        rows = session.execute(
            select(WatchlistEntry, images)
            .outerjoin(
                WatchlistImage,
                (WatchlistImage.entry_id == WatchlistEntry.id)
                & WatchlistImage.template.is_not(None),
            )
            .where(WatchlistEntry.watchlist_id == watchlist.id)
            .group_by(WatchlistEntry.id)
            .order_by(WatchlistEntry.person_ref)
        )
        entries = [EntryOut.of(entry, count) for entry, count in rows]
        return cls.model_validate({**WatchlistOut.of(watchlist).model_dump(), "entries": entries})


class EnrolledOut(BaseModel):
    id: int
    person_ref: str
    source: str
    captured_at: AwareDatetime | None
    sha256: str
    quality: float = Field(description="0..1, higher is better (see docs/faces.md).")


class CandidateOut(BaseModel):
    """A possible match, never an identification (``caveat``)."""

    id: int
    search_id: int
    probe: str = Field(description="<media name>#<face number>.")
    frame_time: float | None = Field(description="Seconds into a video; null for an image.")
    rank: int
    score: float = Field(description="Cosine similarity of the two templates.")
    watchlist: str
    person_ref: str
    display_name: str
    status: Literal["pending_operator", "pending_investigator", "confirmed", "rejected"]
    operator: str | None
    operator_note: str
    investigator: str | None
    investigator_note: str
    caveat: str


class SearchOut(BaseModel):
    id: int
    case_id: int
    offence_ref: str
    justification: str
    watchlists: list[str]
    model: str
    threshold: float
    requested_by: str
    created_at: AwareDatetime
    state: Literal["queued", "running", "done", "failed"] = Field(
        description="A queued search (VIGIL_FACES_QUEUE) waits for a worker; candidates appear "
        "once it is done."
    )
    error: str | None = Field(description="Why a failed search failed.")
    summary: dict[str, Any]
    probe_media_kept_until: AwareDatetime | None


class SearchDetail(BaseModel):
    search: SearchOut
    candidates: list[CandidateOut]


class MediaOut(BaseModel):
    name: str
    kind: str = Field(description="image or video; empty when the file could not be read.")
    faces: int
    faces_with_candidates: int
    frames_sampled: int
    seconds: float = Field(description="Seconds of video decoded; 0 for an image.")
    notes: list[str] = Field(description="What a damaged video let through.")
    error: str | None


class SearchResult(BaseModel):
    search_id: int
    faces: int = Field(description="Faces seen in all the media.")
    media: list[MediaOut]
    candidates: list[CandidateOut] = Field(
        description="Only faces with a candidate leave a trace; the others are not kept."
    )


class SearchQueued(BaseModel):
    search_id: int
    state: Literal["queued"] = Field(description="Follow it at GET /v1/faces/searches/{search_id}.")


class VerdictIn(BaseModel):
    verdict: face_review.Verdict
    note: str = Field(default="", description="What supports a match: needed for `match`.")


class ExportOut(BaseModel):
    search: SearchOut
    caveat: str
    confirmed: list[CandidateOut]


def _detail(session: Session, principal: Principal, search_id: int) -> SearchDetail:
    record = face_review.get_search(session, principal, search_id)
    candidates = face_review.candidates_of(session, principal, search_id)
    return SearchDetail(
        search=SearchOut.model_validate(face_review.search_json(record)),
        candidates=[CandidateOut.model_validate(face_review.candidate_json(c)) for c in candidates],
    )


# --- watchlists ----------------------------------------------------------------------------


@router.post("/watchlists", status_code=201, responses=_ERRORS)
def create_watchlist(body: WatchlistIn, principal: Keeper, faces: Faces) -> WatchlistDetail:
    """Create a draft watchlist; it is searchable once a supervisor other than its creator
    approves it."""
    terms = watchlists.WatchlistTerms(
        body.name, body.purpose, body.legal_basis, body.review_at, body.expires_at
    )
    with faces_errors():
        model = faces.engine.model
    with _unit(faces) as session:
        watchlist = watchlists.create_watchlist(session, principal, terms, model)
        return WatchlistDetail.read(session, watchlist)


@router.get("/watchlists")
def list_watchlists(principal: Reader, faces: Faces) -> list[WatchlistOut]:
    with _unit(faces) as session:
        return [WatchlistOut.of(w) for w in watchlists.list_watchlists(session)]


@router.get("/watchlists/{name}", responses=_ERRORS)
def get_watchlist(name: WatchlistName, principal: Reader, faces: Faces) -> WatchlistDetail:
    """A watchlist with its people and how many images each has enrolled."""
    with _unit(faces) as session:
        return WatchlistDetail.read(session, watchlists.get_watchlist(session, name))


@router.post("/watchlists/{name}/approve", responses=_ERRORS)
def approve_watchlist(
    name: WatchlistName,
    principal: Approver,
    faces: Faces,
    body: Annotated[ApprovalIn | None, Body()] = None,
) -> WatchlistOut:
    """A supervisor's approval (not the creator's or owner's); past its review date it needs a
    new ``review_at``."""
    review_at = body.review_at if body is not None else None
    with _unit(faces) as session:
        return WatchlistOut.of(watchlists.approve_watchlist(session, principal, name, review_at))


@router.post("/watchlists/{name}/entries", status_code=201, responses=_ERRORS)
def add_entry(name: WatchlistName, body: EntryIn, principal: Keeper, faces: Faces) -> EntryOut:
    """Add a person (an approved watchlist goes back to draft)."""
    with _unit(faces) as session:
        entry = watchlists.add_entry(session, principal, name, body.person_ref, body.display_name)
        return EntryOut.of(entry, images=0)


@router.delete("/watchlists/{name}/entries/{person_ref}", status_code=204, responses=_ERRORS)
def remove_entry(
    name: WatchlistName, person_ref: PersonRef, principal: Keeper, faces: Faces
) -> Response:
    """Take a person off (their images and templates go too; the list goes back to draft)."""
    with _unit(faces) as session:
        watchlists.remove_entry(session, principal, name, person_ref)
    return Response(status_code=204)


_CAPTURED_AT = TypeAdapter(AwareDatetime | None)


@router.post(
    "/watchlists/{name}/entries/{person_ref}/images",
    status_code=201,
    openapi_extra=upload_body(
        source={"type": "string", "description": "Where the photo comes from (custody ref)."},
        captured_at={"type": "string", "format": "date-time"},
    ),
    responses={
        **_UPLOAD_ERRORS,
        422: {
            "model": ErrorBody,
            "description": "`enrollment_rejected` with `detail.reason` (no_face, several_faces, "
            "too_small, too_dark, too_blurred, unreadable), or an invalid field.",
        },
    },
)
def enroll_image(
    name: WatchlistName,
    person_ref: PersonRef,
    principal: Keeper,  # first: a caller without the permission must not get to upload
    upload: Annotated[Upload, Depends(receive_upload)],
    faces: Faces,
) -> EnrolledOut:
    """Enroll one photo of a person: one face, large, sharp and bright enough; otherwise 422
    with the reason."""
    source = upload.text("source") or upload.filename
    try:
        captured_at = _CAPTURED_AT.validate_python(upload.one("captured_at") or None)
    except ValidationError:
        message = "captured_at must be an ISO 8601 time with a zone"
        raise ApiError(422, "invalid_request", message) from None
    data = upload.path.read_bytes()
    origin = watchlists.ImageSource(source, captured_at)
    with _unit(faces) as session:
        image = faces.enroll(session, principal, name, person_ref, data, origin)
        return EnrolledOut(
            id=image.id,
            person_ref=person_ref,
            source=image.source,
            captured_at=image.captured_at,
            sha256=image.sha256,
            quality=image.quality,
        )


# --- searches ------------------------------------------------------------------------------


receive_search = receive_uploads(MAX_SEARCH_FILES)


def probe_media(upload: Uploads) -> list[ProbeMedia]:
    return [ProbeMedia(item.filename, item.path) for item in upload.files]


def _search_body() -> dict[str, Any]:
    text = {"type": "string"}
    properties = {
        "case_id": {"type": "integer", "minimum": 1},
        "offence_ref": text,
        "justification": {**text, "description": "Why the search is necessary (20+ chars)."},
        "watchlists": {
            "type": "array",
            "items": text,
            "description": "Repeatable or comma-separated; none: every searchable watchlist.",
        },
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "maxItems": MAX_SEARCH_FILES,
            "description": "Images and videos of the incident.",
        },
    }
    schema = {
        "type": "object",
        "required": ["case_id", "offence_ref", "justification", "files"],
        "properties": properties,
    }
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


def search_request(upload: Uploads) -> SearchRequest:
    """A search form's fields (the API's and the console's) as a request."""
    case_id = upload.text("case_id")
    if not case_id.isdigit():
        raise ApiError(422, "invalid_request", "case_id must be the number of the search's case")
    return SearchRequest(
        case_id=int(case_id),
        offence_ref=upload.text("offence_ref"),
        justification=upload.text("justification"),
        watchlists=tuple(upload.many("watchlists")),
    )


def work_bus(request: Request) -> Bus | None:
    bus: Bus | None = request.app.state.bus
    return bus


@router.post(
    "/searches",
    status_code=201,
    openapi_extra=_search_body(),
    # Each answer its own schema: 201 a result, 202 a queued search (not either for both).
    response_model=None,
    responses={
        **_UPLOAD_ERRORS,
        201: {"model": SearchResult, "description": "The search, run inside the request."},
        202: {
            "model": SearchQueued,
            "description": "VIGIL_FACES_QUEUE: checked, stored and queued for a worker.",
        },
        503: {
            "model": ErrorBody,
            "description": "No faces key or face model; with VIGIL_FACES_QUEUE, no work bus "
            "(the search, if stored, is failed).",
        },
    },
)
def search(
    principal: Searcher,  # first: a caller without the permission must not get to upload
    upload: Annotated[Uploads, Depends(receive_search)],
    faces: Faces,
    bus: Annotated[Bus | None, Depends(work_bus)],
    response: Response,
) -> SearchResult | SearchQueued:
    """Search images and videos of an incident against approved watchlists, for a case and an
    offence, with a justification. Faces that match no one are not kept. With
    VIGIL_FACES_QUEUE the request is checked the same way, and a file that is not a readable
    image or video is refused, but the search is queued for `vigil worker --role faces`: 202."""
    request = search_request(upload)
    if faces.settings.faces_queue:
        if bus is None:
            raise ApiError(503, "bus_unavailable", "VIGIL_FACES_QUEUE needs VIGIL_BUS_URL")
        with faces_errors():
            try:
                search_id = faces_queue.enqueue(faces, bus, principal, request, probe_media(upload))
            except faces_queue.NotQueued as exc:
                raise ApiError(503, "bus_unavailable", str(exc)) from None
        response.status_code = 202
        return SearchQueued(search_id=search_id, state="queued")
    with faces_errors():
        outcome = faces.search(principal, request, probe_media(upload))
    with _unit(faces) as session:
        candidates = face_review.candidates_of(session, principal, outcome.search_id)
        return SearchResult(
            search_id=outcome.search_id,
            faces=outcome.faces,
            media=[MediaOut.model_validate(asdict(item)) for item in outcome.media],
            candidates=[
                CandidateOut.model_validate(face_review.candidate_json(c)) for c in candidates
            ],
        )


@router.get("/searches/{search_id}", responses=_ERRORS)
def get_search(search_id: RowId, principal: Reader, faces: Faces) -> SearchDetail:
    with _unit(faces) as session:
        return _detail(session, principal, search_id)


@router.get("/searches/{search_id}/export", responses=_ERRORS)
def export_search(search_id: RowId, principal: Exporter, faces: Faces) -> ExportOut:
    """The search and its confirmed candidates for the case file; 409 while any candidate is
    still under review."""
    with _unit(faces) as session:
        return ExportOut.model_validate(face_review.export_confirmed(session, principal, search_id))


# --- review ----------------------------------------------------------------------------------


@router.get("/review", responses=_ERRORS)
def review_queue(principal: Reader, faces: Faces) -> list[CandidateOut]:
    """The candidates waiting for the caller's step: an operator's (reviewer) or an
    investigator's; 403 for other roles."""
    with _unit(faces) as session:
        queue = face_review.review_queue(session, principal)
        return [CandidateOut.model_validate(face_review.candidate_json(c)) for c in queue]


@router.get(
    "/candidates/{candidate_id}/faces/{which}",
    response_class=Response,
    responses={**_ERRORS, 200: {"content": {_JPEG: {}}, "description": "The face, JPEG."}},
)
def candidate_face(
    candidate_id: RowId,
    which: Literal["probe", "watchlist"],
    principal: Reader,
    faces: Faces,
) -> Response:
    """The probe face or the watchlist face of a candidate, for a reviewer to compare. Each
    look is audited; the answer is never cached."""
    with _unit(faces) as session:
        shown = face_review.view_faces(session, principal, candidate_id, faces.vault)
    data = shown.probe if which == "probe" else shown.watchlist
    if data is None:
        raise ApiError(404, "purged", f"the {which} face of candidate {candidate_id} is purged")
    return Response(data, media_type=_JPEG, headers={"Cache-Control": "no-store"})


@router.post("/candidates/{candidate_id}/operator", responses=_ERRORS)
def operator_review(
    candidate_id: RowId, body: VerdictIn, principal: Operator, faces: Faces
) -> CandidateOut:
    """The first person's verdict: could the probe face be the watchlist person?"""
    with _unit(faces) as session:
        candidate = face_review.operator_review(
            session, principal, candidate_id, body.verdict, body.note
        )
        return CandidateOut.model_validate(face_review.candidate_json(candidate))


@router.post("/candidates/{candidate_id}/investigator", responses=_ERRORS)
def investigator_review(
    candidate_id: RowId, body: VerdictIn, principal: Confirmer, faces: Faces
) -> CandidateOut:
    """The second person's decision, by an investigator other than the operator."""
    with _unit(faces) as session:
        candidate = face_review.investigator_review(
            session, principal, candidate_id, body.verdict, body.note
        )
        return CandidateOut.model_validate(face_review.candidate_json(candidate))
