"""Face search end to end through the service layer, on real LFW photos and both databases:
watchlist governance (draft, four-eyes approval, reopening, review date, expiry and purge), a
search that keeps nothing of faces that matched no one, and the two-person review."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select, update

from test_faces_video import Walker, film, lfw_face, write_video
from test_review_support import person
from vigil import review as cases
from vigil.accounts import Principal
from vigil.api.app import create_app
from vigil.config import Settings
from vigil.faces.review import (
    candidates_of,
    export_confirmed,
    investigator_review,
    operator_review,
    review_queue,
    view_faces,
)
from vigil.faces.search import ProbeMedia, SearchRequest, probe_media_dir
from vigil.faces.service import FaceService
from vigil.faces.settings import FacesSettings
from vigil.faces.vault import Vault, VaultError, new_key
from vigil.faces.watchlists import (
    ImageSource,
    WatchlistTerms,
    add_entry,
    approve_watchlist,
    create_watchlist,
    get_watchlist,
    searchable,
)
from vigil.review import Conflict, NotAllowed, ReviewError
from vigil.store import Database
from vigil.store.models import (
    AuditEvent,
    FaceCandidate,
    FaceSearch,
    Watchlist,
    WatchlistImage,
    utcnow,
)

T = TypeVar("T")
PURPOSE = "Identify suspects of the attack on 3 March from CCTV and phone footage"
BASIS = "Police and Criminal Evidence Act 1984, s. 64A; DPA 2018 Part 3 (law enforcement)"
JUSTIFICATION = "Footage from the scene shows the suspect's face; no other lead identifies him"
ENROLLED = {"dr": "Donald_Rumsfeld", "cp": "Colin_Powell"}


@pytest.fixture
def faces_settings(settings: Settings) -> FacesSettings:
    pytest.importorskip("dlib")
    return FacesSettings(**{**settings.model_dump(), "faces_key": new_key()})


@pytest.fixture
def service(db: Database, faces_settings: FacesSettings) -> FaceService:
    return FaceService(db, faces_settings)


@pytest.fixture
def people(db: Database) -> dict[str, Principal]:
    return {
        "ian": person(db, "ian", "investigator"),
        "ivy": person(db, "ivy", "investigator"),
        "sue": person(db, "sue", "supervisor"),
        "rita": person(db, "rita", "reviewer"),
        "ana": person(db, "ana", "analyst"),
    }


def lfw(shared_data: Path, name: str, number: int) -> Path:
    return shared_data / "faces" / "lfw" / "images" / name / f"{name}_{number:04d}.jpg"


def in_session(db: Database, work: Callable[..., T], *args: object) -> T:
    with db.session() as session:
        return work(session, *args)


def terms(name: str = "attack-suspects") -> WatchlistTerms:
    now = utcnow()
    return WatchlistTerms(name, PURPOSE, BASIS, now + timedelta(days=30), now + timedelta(days=90))


def build_watchlist(
    service: FaceService, people: dict[str, Principal], shared_data: Path, approve: bool = True
) -> None:
    ian, sue = people["ian"], people["sue"]
    with service.db.session() as session:
        create_watchlist(session, ian, terms(), service.engine.model)
        for ref, name in ENROLLED.items():
            add_entry(session, ian, "attack-suspects", ref, name.replace("_", " "))
            data = lfw(shared_data, name, 1).read_bytes()
            service.enroll(session, ian, "attack-suspects", ref, data, ImageSource("custody 1"))
    if approve:
        in_session(service.db, approve_watchlist, sue, "attack-suspects", None)


def new_case(db: Database, who: Principal) -> int:
    return in_session(db, lambda s: cases.create_case(s, who, "Attack on 3 March").id)


def request(case_id: int) -> SearchRequest:
    return SearchRequest(case_id, "CR/0301/26", JUSTIFICATION)


def test_a_watchlist_is_searched_only_once_someone_else_approved_it(
    service: FaceService, people: dict[str, Principal], shared_data: Path
) -> None:
    build_watchlist(service, people, shared_data, approve=False)
    model = service.engine.model
    with pytest.raises(Conflict, match="not approved"):
        in_session(service.db, searchable, ["attack-suspects"], model)
    with pytest.raises(NotAllowed):  # the creator is not the second person
        in_session(service.db, approve_watchlist, people["ian"], "attack-suspects", None)
    with pytest.raises(NotAllowed):  # nor is anyone without the supervisor role
        in_session(service.db, approve_watchlist, people["ivy"], "attack-suspects", None)
    in_session(service.db, approve_watchlist, people["sue"], "attack-suspects", None)
    assert [w.name for w in in_session(service.db, searchable, None, model)] == ["attack-suspects"]
    # Adding a person changes what is searched: back to draft until approved again.
    in_session(service.db, add_entry, people["ivy"], "attack-suspects", "x1", "Someone Else")
    assert in_session(service.db, get_watchlist, "attack-suspects").status == "draft"
    with pytest.raises(Conflict):
        in_session(service.db, searchable, None, model)


def test_terms_must_state_purpose_and_basis_and_dates(
    service: FaceService, people: dict[str, Principal]
) -> None:
    now = utcnow()
    bad = [
        WatchlistTerms("w", "to find people", BASIS, now + timedelta(1), now + timedelta(2)),
        WatchlistTerms("w", PURPOSE, "law", now + timedelta(1), now + timedelta(2)),
        WatchlistTerms("w", PURPOSE, BASIS, now + timedelta(1), now - timedelta(1)),
        WatchlistTerms("w", PURPOSE, BASIS, now + timedelta(5), now + timedelta(2)),
    ]
    for wrong in bad:
        with pytest.raises(ReviewError):
            in_session(service.db, create_watchlist, people["ian"], wrong, "m")
    with pytest.raises(NotAllowed):  # analysts search; they do not keep watchlists
        in_session(service.db, create_watchlist, people["ana"], terms(), "m")


def test_past_review_and_expiry(
    service: FaceService, people: dict[str, Principal], shared_data: Path
) -> None:
    build_watchlist(service, people, shared_data)
    model = service.engine.model
    past = utcnow() - timedelta(minutes=1)
    with service.db.session() as session:
        session.execute(update(Watchlist).values(review_at=past))
    with pytest.raises(Conflict, match="review date"):
        in_session(service.db, searchable, ["attack-suspects"], model)
    later = utcnow() + timedelta(days=7)
    in_session(service.db, approve_watchlist, people["sue"], "attack-suspects", later)
    assert in_session(service.db, searchable, ["attack-suspects"], model)
    with service.db.session() as session:
        session.execute(update(Watchlist).values(expires_at=past))
    assert service.housekeeping().expired_watchlists == ["attack-suspects"]
    with service.db.session() as session:
        images = list(session.scalars(select(WatchlistImage)))
        assert images and all(i.template is None and i.crop is None for i in images)
        with pytest.raises(Conflict, match="expired"):
            searchable(session, ["attack-suspects"], model)


def test_search_keeps_nothing_of_faces_that_matched_no_one(
    service: FaceService, people: dict[str, Principal], shared_data: Path, tmp_path: Path
) -> None:
    build_watchlist(service, people, shared_data)
    case_id = new_case(service.db, people["ana"])
    stranger = lfw(shared_data, "Gerhard_Schroeder", 1)
    outcome = service.search(people["ana"], request(case_id), [ProbeMedia("scene.jpg", stranger)])
    assert outcome.faces == 1 and outcome.candidates == []
    with service.db.session() as session:
        assert session.scalar(select(func.count()).select_from(FaceCandidate)) == 0
        record = session.scalars(select(FaceSearch)).one()
        assert record.summary["faces"] == 1 and record.summary["candidates"] == 0
        # The summary holds counts and file names only: no crop, template or face box.
        assert set(record.summary["media"][0]) == {
            "name",
            "kind",
            "faces",
            "faces_with_candidates",
            "frames_sampled",
            "seconds",
            "notes",
            "error",
        }
    # Probe media (the file as uploaded) is kept sealed for the retention period, then purged.
    kept = list((probe_media_dir(service.settings) / str(outcome.search_id)).iterdir())
    assert len(kept) == 1 and stranger.read_bytes() not in kept[0].read_bytes()
    with service.db.session() as session:
        session.execute(update(FaceSearch).values(probe_purge_at=utcnow() - timedelta(1)))
    assert service.housekeeping().purged_searches == 1
    assert not (probe_media_dir(service.settings) / str(outcome.search_id)).exists()


def test_two_people_review_a_candidate_before_export(
    service: FaceService, people: dict[str, Principal], shared_data: Path, tmp_path: Path
) -> None:
    build_watchlist(service, people, shared_data)
    case_id = new_case(service.db, people["ana"])
    group = tmp_path / "group.jpg"
    side_by_side(
        [lfw(shared_data, "Donald_Rumsfeld", 2), lfw(shared_data, "Gerhard_Schroeder", 1)], group
    )
    outcome = service.search(people["ana"], request(case_id), [ProbeMedia("group.jpg", group)])
    assert outcome.faces == 2
    found = in_session(service.db, candidates_of, people["rita"], outcome.search_id)
    assert found and {c.person_ref for c in found} == {"dr"}
    top = found[0]
    assert top.rank == 1 and top.score >= service.engine.operating_point.threshold
    # The crops a reviewer compares are sealed at rest and opened for them, audited.
    with service.db.session() as session:
        faces = view_faces(session, people["rita"], top.id, service.vault)
        assert faces.probe is not None and faces.watchlist is not None
        assert Image.open(io.BytesIO(faces.probe)).format == "JPEG"
        stored = session.get(FaceCandidate, top.id)
        assert stored is not None and stored.probe_crop != faces.probe
    with pytest.raises(Conflict, match="under review"):
        in_session(service.db, export_confirmed, people["ian"], outcome.search_id)
    with pytest.raises(NotAllowed):  # an investigator cannot take the operator's step
        in_session(service.db, operator_review, people["ian"], top.id, "match", "jaw, ears")
    with pytest.raises(ReviewError):  # a match needs its reasons
        in_session(service.db, operator_review, people["rita"], top.id, "match", " ")
    assert [c.id for c in in_session(service.db, review_queue, people["rita"])] == [
        c.id for c in found
    ]
    in_session(service.db, operator_review, people["rita"], top.id, "match", "ears, jaw line")
    for other in found[1:]:
        in_session(service.db, operator_review, people["rita"], other.id, "no_match", "")
    confirmed = in_session(
        service.db, investigator_review, people["ian"], top.id, "match", "ears, hairline"
    )
    assert confirmed.status == "confirmed"
    exported = in_session(service.db, export_confirmed, people["ian"], outcome.search_id)
    assert [c["id"] for c in exported["confirmed"]] == [top.id]
    assert "not an identification" in exported["caveat"]
    with service.db.session() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
    assert {"search", "face.review.operator", "face.review.investigator", "face.export"} <= (
        actions
    )
    assert "evidence.view" in actions


def test_a_search_needs_a_case_an_offence_and_a_reason(
    service: FaceService, people: dict[str, Principal], shared_data: Path
) -> None:
    build_watchlist(service, people, shared_data)
    case_id = new_case(service.db, people["ana"])
    probe = [ProbeMedia("p.jpg", lfw(shared_data, "Colin_Powell", 2))]
    for wrong in (
        SearchRequest(case_id, "", JUSTIFICATION),
        SearchRequest(case_id, "CR/1", "because"),
    ):
        with pytest.raises(ReviewError):
            service.search(people["ana"], wrong, probe)
    with pytest.raises(cases.NotFound):
        service.search(people["ana"], request(case_id + 100), probe)
    with pytest.raises(NotAllowed):  # reviewers review; they do not search
        service.search(people["rita"], request(case_id), probe)


def test_no_key_no_enrollment(db: Database, settings: Settings) -> None:
    with pytest.raises(VaultError, match="VIGIL_FACES_KEY"):
        Vault.of(FacesSettings(**settings.model_dump()))
    sealed = Vault.of(FacesSettings(faces_key=new_key())).seal(b"template")
    with pytest.raises(VaultError, match="another key"):
        Vault.of(FacesSettings(faces_key=new_key())).open(sealed)


def side_by_side(paths: list[Path], out: Path) -> None:
    images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    Image.fromarray(np.hstack(images)).save(out, "JPEG", quality=92)


def test_a_video_is_searched_by_tracked_faces_and_bad_files_are_reported(
    service: FaceService, people: dict[str, Principal], shared_data: Path, tmp_path: Path
) -> None:
    build_watchlist(service, people, shared_data)
    case_id = new_case(service.db, people["ana"])
    wanted = lfw_face(shared_data, "Colin_Powell", 2)
    stranger = lfw_face(shared_data, "Gerhard_Schroeder", 1)
    walkers = (Walker(wanted, start=(40, 100), step=(2, 0)), Walker(stranger, start=(440, 80)))
    clip = write_video(tmp_path / "clip.mp4", film(walkers, 2.0))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture, not a video")
    media = [ProbeMedia("clip.mp4", clip), ProbeMedia("notes.txt", notes)]
    outcome = service.search(people["ana"], request(case_id), media)
    video, text = outcome.media
    assert video.kind == "video" and video.frames_sampled >= 3 and video.faces == 2
    assert video.faces_with_candidates == 1 and text.error and text.faces == 0
    found = in_session(service.db, candidates_of, people["rita"], outcome.search_id)
    assert {c.person_ref for c in found} == {"cp"}
    assert all(c.frame_time is not None and 0 <= c.frame_time < 2.0 for c in found)


def test_serve_expires_watchlists_on_a_clock(
    service: FaceService, people: dict[str, Principal], shared_data: Path
) -> None:
    build_watchlist(service, people, shared_data)
    with service.db.session() as session:
        session.execute(update(Watchlist).values(expires_at=utcnow() - timedelta(seconds=1)))
    clocked = service.settings.model_copy(update={"faces_housekeeping_minutes": 0.005})
    with TestClient(create_app(clocked)):
        deadline = time.monotonic() + 20
        while in_session(service.db, get_watchlist, "attack-suspects").status != "expired":
            assert time.monotonic() < deadline, "the watchlist was not expired"
            time.sleep(0.1)
    with service.db.session() as session:
        assert all(i.template is None for i in session.scalars(select(WatchlistImage)))
