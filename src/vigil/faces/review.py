"""Two-person review of face-search candidates, and the export that only confirmed ones reach.

A candidate is a possible match, never an identification. First a trained operator (role
``reviewer``) compares the probe face with the watchlist image and says whether it could be the
same person; a candidate the operator keeps then goes to an investigating officer (role
``investigator``, and a different person) who confirms or rejects it. Only confirmed candidates
can be exported, and every look at a face, every decision and every export is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil import audit
from vigil.accounts import Principal
from vigil.faces.vault import Vault
from vigil.faces.watchlists import require
from vigil.review import Conflict, NotAllowed, NotFound, ReviewError
from vigil.store.models import FaceCandidate, FaceSearch, WatchlistImage, utcnow

Verdict = Literal["match", "no_match"]
VERDICTS: tuple[Verdict, ...] = ("match", "no_match")
Step = Literal["operator", "investigator"]
#: How a candidate is described wherever it is shown or exported.
CAVEAT = (
    "Possible match for investigation only, not an identification: it must be corroborated "
    "by other evidence before any action is taken about a person."
)


def get_search(session: Session, principal: Principal, search_id: int) -> FaceSearch:
    require(principal, "face:read")
    record = session.get(FaceSearch, search_id)
    if record is None:
        raise NotFound(f"no face search {search_id}")
    return record


def get_candidate(session: Session, principal: Principal, candidate_id: int) -> FaceCandidate:
    require(principal, "face:read")
    candidate = session.get(FaceCandidate, candidate_id)
    if candidate is None:
        raise NotFound(f"no face candidate {candidate_id}")
    return candidate


def candidates_of(session: Session, principal: Principal, search_id: int) -> list[FaceCandidate]:
    get_search(session, principal, search_id)
    query = (
        select(FaceCandidate)
        .where(FaceCandidate.search_id == search_id)
        .order_by(FaceCandidate.probe, FaceCandidate.rank)
    )
    return list(session.scalars(query))


def review_queue(session: Session, principal: Principal) -> list[FaceCandidate]:
    """The candidates waiting for this caller's step, oldest search first."""
    statuses = []
    if principal.can("face:operate"):
        statuses.append("pending_operator")
    if principal.can("face:confirm"):
        statuses.append("pending_investigator")
    if not statuses:
        raise NotAllowed(f"{principal.actor} reviews no face candidates")
    query = (
        select(FaceCandidate)
        .where(FaceCandidate.status.in_(statuses))
        .order_by(FaceCandidate.search_id, FaceCandidate.probe, FaceCandidate.rank)
    )
    return list(session.scalars(query))


def _checked(verdict: str, note: str) -> Verdict:
    if verdict not in VERDICTS:
        raise ReviewError(f"verdict must be one of {', '.join(VERDICTS)}")
    if verdict == "match" and not note.strip():
        raise ReviewError("say what supports a match (features compared) in the note")
    return verdict


def _pending(
    session: Session, principal: Principal, candidate_id: int, step: Step, verdict: str, note: str
) -> tuple[FaceCandidate, Verdict]:
    """The candidate, waiting for ``step``, and the checked verdict of a person allowed it."""
    require(principal, "face:operate" if step == "operator" else "face:confirm")
    checked = _checked(verdict, note)
    candidate = get_candidate(session, principal, candidate_id)
    if candidate.status != f"pending_{step}":
        raise Conflict(f"candidate {candidate_id} is {candidate.status}")
    if principal.user_id is None:
        raise NotAllowed(f"a face candidate's {step} step is taken by a person, not a token")
    return candidate, checked


def operator_review(
    session: Session, principal: Principal, candidate_id: int, verdict: str, note: str
) -> FaceCandidate:
    """The first person's view: could the probe face be the watchlist person?"""
    candidate, checked = _pending(session, principal, candidate_id, "operator", verdict, note)
    candidate.operator_id = principal.user_id
    candidate.operator_name = principal.name
    candidate.operator_note = note
    candidate.operator_at = utcnow()
    candidate.status = "pending_investigator" if checked == "match" else "rejected"
    _record_decision(session, principal, candidate, "operator", checked)
    return candidate


def investigator_review(
    session: Session, principal: Principal, candidate_id: int, verdict: str, note: str
) -> FaceCandidate:
    """The second person's decision, by an investigator other than the operator."""
    candidate, checked = _pending(session, principal, candidate_id, "investigator", verdict, note)
    if principal.user_id == candidate.operator_id:
        raise NotAllowed("the investigator must be someone other than the operator")
    candidate.investigator_id = principal.user_id
    candidate.investigator_name = principal.name
    candidate.investigator_note = note
    candidate.investigator_at = utcnow()
    candidate.status = "confirmed" if checked == "match" else "rejected"
    _record_decision(session, principal, candidate, "investigator", checked)
    return candidate


def _record_decision(
    session: Session, principal: Principal, candidate: FaceCandidate, step: Step, verdict: str
) -> None:
    audit.record(
        session,
        principal.actor,
        f"face.review.{step}",
        "face_candidate",
        candidate.id,
        {"search_id": candidate.search_id, "verdict": verdict, "status": candidate.status},
    )


@dataclass(frozen=True)
class CandidateFaces:
    """The two faces a reviewer compares, as JPEG bytes (``None`` once purged)."""

    probe: bytes | None
    watchlist: bytes | None


def view_faces(
    session: Session, principal: Principal, candidate_id: int, vault: Vault
) -> CandidateFaces:
    """Decrypt the probe crop and the watchlist crop of a candidate; the look is audited."""
    candidate = get_candidate(session, principal, candidate_id)
    image = session.get(WatchlistImage, candidate.image_id) if candidate.image_id else None
    audit.evidence_viewed(
        session, principal.actor, "face_candidate", candidate.id, search_id=candidate.search_id
    )
    return CandidateFaces(
        probe=vault.open(candidate.probe_crop) if candidate.probe_crop else None,
        watchlist=vault.open(image.crop) if image is not None and image.crop else None,
    )


def export_confirmed(session: Session, principal: Principal, search_id: int) -> dict[str, Any]:
    """The search and its confirmed candidates, for the case file. Refused while any candidate
    is still under review: an export must not leave out what is undecided."""
    require(principal, "face:export")
    record = get_search(session, principal, search_id)
    if record.state != "done":
        raise Conflict(f"search {search_id} is {record.state}: it has no candidates to export")
    candidates = candidates_of(session, principal, search_id)
    pending = [c.id for c in candidates if c.status.startswith("pending")]
    if pending:
        raise Conflict(f"candidates {pending} are still under review")
    confirmed = [c for c in candidates if c.status == "confirmed"]
    audit.record(
        session,
        principal.actor,
        "face.export",
        "face_search",
        search_id,
        {"confirmed": [c.id for c in confirmed]},
    )
    return {
        "search": search_json(record),
        "caveat": CAVEAT,
        "confirmed": [candidate_json(c) for c in confirmed],
    }


def search_json(record: FaceSearch) -> dict[str, Any]:
    return {
        "id": record.id,
        "case_id": record.case_id,
        "offence_ref": record.offence_ref,
        "justification": record.justification,
        "watchlists": record.watchlists,
        "model": record.model,
        "threshold": record.threshold,
        "requested_by": record.requested_by,
        "created_at": record.created_at.isoformat(),
        "state": record.state,
        "error": record.error,
        "summary": record.summary,
        "probe_media_kept_until": (
            record.probe_purge_at.isoformat()
            if record.probe_purge_at and not record.probe_purged_at
            else None
        ),
    }


def candidate_json(candidate: FaceCandidate) -> dict[str, Any]:
    return {
        "id": candidate.id,
        "search_id": candidate.search_id,
        "probe": candidate.probe,
        "frame_time": candidate.frame_time,
        "rank": candidate.rank,
        "score": round(candidate.score, 4),
        "watchlist": candidate.watchlist,
        "person_ref": candidate.person_ref,
        "display_name": candidate.display_name,
        "status": candidate.status,
        "operator": candidate.operator_name,
        "operator_note": candidate.operator_note,
        "investigator": candidate.investigator_name,
        "investigator_note": candidate.investigator_note,
        "caveat": CAVEAT,
    }
