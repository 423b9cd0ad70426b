"""``/v1/faces`` over real HTTP with real LFW photos and dlib: governed watchlists, a search,
the two-person review and the export; what is kept of faces that match no one; refusals.

The threshold is set (``faces_threshold``) rather than read from the model card, so the tests
do not move when the card is re-measured: 0.92 lies between the cosine similarities dlib gives
these photos of one person (0.94 and more) and of two people (0.87 and less).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from fastapi.routing import APIRoute
from PIL import Image
from sqlalchemy import select, update

from vigil.accounts import PERMISSIONS, Accounts, AccountSettings
from vigil.api.auth import Require
from vigil.api.routes.faces import router as faces_router
from vigil.config import Settings
from vigil.faces.search import probe_media_dir
from vigil.faces.settings import FacesSettings
from vigil.faces.vault import Vault, new_key
from vigil.store.models import (
    AuditEvent,
    FaceCandidate,
    FaceSearch,
    Watchlist,
    WatchlistEntry,
    WatchlistImage,
    utcnow,
)

from test_api_support import Api, running_api

pytest_plugins = ["test_api_support"]

THRESHOLD = 0.92
PURPOSE = "Find the suspects of the 12 May bombing in recorded footage"
LEGAL_BASIS = "Police and Criminal Evidence Act 1984, s.64A and the force's FR policy"
JUSTIFICATION = "CCTV of the attack shows three faces; identifying suspects is necessary"
NOTE = "Same ear shape, hairline and nose bridge; no conflicting features"
JPEG_MAGIC = b"\xff\xd8"


def lfw(shared_data: Path, name: str, number: int) -> bytes:
    return (
        shared_data / "faces" / "lfw" / "images" / name / f"{name}_{number:04d}.jpg"
    ).read_bytes()


def jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def rgb_of(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def faces_settings(settings: Settings, **changes: Any) -> FacesSettings:
    values = {"faces_key": new_key(), "faces_threshold": THRESHOLD, **changes}
    return FacesSettings(**{**settings.model_dump(), **values})


@pytest.fixture
def face_settings(settings: Settings) -> FacesSettings:
    return faces_settings(settings)


@pytest.fixture
def api(face_settings: FacesSettings) -> Iterator[Api]:
    with running_api(face_settings) as running:
        yield running


def add_person(api: Api, username: str, roles: list[str]) -> str:
    """Another account (a second supervisor, an officer with two roles) and its token."""
    accounts = Accounts(api.known.db, AccountSettings.of(api.app.state.settings))
    accounts.create_user("test:setup", username, roles)
    return accounts.create_token("test:setup", username, username)[1]


def client_for(api: Api, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=api.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120
    )


def later(days: float) -> str:
    return (utcnow() + timedelta(days=days)).isoformat()


def create_watchlist(client: httpx.Client, name: str, people: dict[str, str]) -> None:
    body = {
        "name": name,
        "purpose": PURPOSE,
        "legal_basis": LEGAL_BASIS,
        "review_at": later(30),
        "expires_at": later(180),
    }
    response = client.post("/v1/faces/watchlists", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "draft"
    for person_ref, display_name in people.items():
        entry = {"person_ref": person_ref, "display_name": display_name}
        added = client.post(f"/v1/faces/watchlists/{name}/entries", json=entry)
        assert added.status_code == 201, added.text


def enroll(
    client: httpx.Client, watchlist: str, person_ref: str, data: bytes, source: str = "custody"
) -> httpx.Response:
    return client.post(
        f"/v1/faces/watchlists/{watchlist}/entries/{person_ref}/images",
        files={"file": ("photo.jpg", data, "image/jpeg")},
        data={"source": source, "captured_at": "2024-03-01T10:00:00+00:00"},
    )


def search(
    client: httpx.Client, case_id: int, media: dict[str, bytes], watchlists: str = ""
) -> httpx.Response:
    fields = {
        "case_id": str(case_id),
        "offence_ref": "OP-BRIDGE/17",
        "justification": JUSTIFICATION,
    }
    if watchlists:
        fields["watchlists"] = watchlists
    files = [("files", (name, data, "image/jpeg")) for name, data in media.items()]
    return client.post("/v1/faces/searches", data=fields, files=files)


def open_case(api: Api) -> int:
    with api.client("investigator") as client:
        response = client.post("/v1/cases", json={"title": "Bridge bombing"})
    assert response.status_code == 201, response.text
    case_id: int = response.json()["id"]
    return case_id


def enrolled_watchlist(api: Api, shared_data: Path, name: str = "bridge") -> None:
    """An approved watchlist: Rumsfeld (three photos) as P-1, Powell (one) as P-2."""
    with api.client("investigator") as keeper:
        create_watchlist(keeper, name, {"P-1": "Donald Rumsfeld", "P-2": "Colin Powell"})
        for number in (1, 2, 3):
            assert enroll(
                keeper, name, "P-1", lfw(shared_data, "Donald_Rumsfeld", number)
            ).is_success
        assert enroll(keeper, name, "P-2", lfw(shared_data, "Colin_Powell", 1)).is_success
    with api.client("supervisor") as supervisor:
        approved = supervisor.post(f"/v1/faces/watchlists/{name}/approve")
    assert approved.status_code == 200, approved.text


def rows(api: Api, model: type[Any]) -> list[Any]:
    with api.known.db.session() as session:
        found = list(session.scalars(select(model).order_by(model.id)))
        session.expunge_all()
        return found


def test_watchlist_search_two_person_review_and_export(api: Api, shared_data: Path) -> None:
    case_id = open_case(api)
    with api.client("investigator") as keeper:
        create_watchlist(keeper, "bridge", {"P-1": "Donald Rumsfeld", "P-2": "Colin Powell"})
        enrolled = [
            enroll(keeper, "bridge", "P-1", lfw(shared_data, "Donald_Rumsfeld", n))
            for n in (1, 2, 3)
        ]
        enrolled.append(enroll(keeper, "bridge", "P-2", lfw(shared_data, "Colin_Powell", 1)))
    for response in enrolled:
        assert response.status_code == 201, response.text
        assert 0.0 < response.json()["quality"] <= 1.0
    crowd = {
        "cctv-1.jpg": lfw(shared_data, "Donald_Rumsfeld", 4),
        "cctv-2.jpg": lfw(shared_data, "Colin_Powell", 2),
        "cctv-3.jpg": lfw(shared_data, "Serena_Williams", 1),
    }
    with api.client("analyst") as analyst:
        draft = search(analyst, case_id, crowd, "bridge")
        assert (draft.status_code, draft.json()["error"]) == (409, "conflict")
        assert "draft" in draft.json()["detail"]
    with api.client("supervisor") as supervisor:
        approved = supervisor.post("/v1/faces/watchlists/bridge/approve")
        assert approved.status_code == 200, approved.text
        assert (approved.json()["status"], approved.json()["searchable"]) == ("approved", True)
        shown = supervisor.get("/v1/faces/watchlists/bridge")
    assert {(e["person_ref"], e["images"]) for e in shown.json()["entries"]} == {
        ("P-1", 3),
        ("P-2", 1),
    }
    assert "template" not in shown.text and "crop" not in shown.text

    with api.client("analyst") as analyst:
        searched = search(analyst, case_id, crowd, "bridge")
    assert searched.status_code == 201, searched.text
    result = searched.json()
    media = {m["name"]: m for m in result["media"]}
    assert {name: (m["kind"], m["faces"]) for name, m in media.items()} == {
        name: ("image", 1) for name in crowd
    }
    assert [media[name]["faces_with_candidates"] for name in crowd] == [1, 1, 0]
    assert all(m["error"] is None and m["notes"] == [] for m in result["media"])
    by_probe: dict[str, list[dict[str, Any]]] = {}
    for candidate in result["candidates"]:
        by_probe.setdefault(candidate["probe"], []).append(candidate)
        assert candidate["score"] >= THRESHOLD and candidate["status"] == "pending_operator"
        assert "not an identification" in candidate["caveat"]
    assert set(by_probe) == {"cctv-1.jpg#1", "cctv-2.jpg#1"}
    assert {c["person_ref"] for c in by_probe["cctv-1.jpg#1"]} == {"P-1"}
    assert [c["rank"] for c in by_probe["cctv-1.jpg#1"]] == [1, 2, 3]
    assert {c["person_ref"] for c in by_probe["cctv-2.jpg#1"]} == {"P-2"}
    search_id = result["search_id"]
    _nothing_kept_of_the_unmatched_face(api, search_id, crowd)

    rumsfeld = by_probe["cctv-1.jpg#1"][0]["id"]
    powell = by_probe["cctv-2.jpg#1"][0]["id"]
    others = [c["id"] for c in by_probe["cctv-1.jpg#1"][1:]]
    with api.client("reviewer") as operator:
        detail = operator.get(f"/v1/faces/searches/{search_id}").json()
        assert detail["search"]["justification"] == JUSTIFICATION
        assert len(detail["candidates"]) == len(result["candidates"])
        for which in ("probe", "watchlist"):
            face = operator.get(f"/v1/faces/candidates/{rumsfeld}/faces/{which}")
            assert face.status_code == 200 and face.content.startswith(JPEG_MAGIC)
            assert face.headers["cache-control"] == "no-store"
            assert rgb_of(face.content).ndim == 3
        assert {c["id"] for c in operator.get("/v1/faces/review").json()} == {
            c["id"] for c in result["candidates"]
        }
        unsupported = operator.post(
            f"/v1/faces/candidates/{rumsfeld}/operator", json={"verdict": "match"}
        )
        assert unsupported.status_code == 422, "a match needs a note saying what supports it"
        for candidate_id in (rumsfeld, powell):
            kept = operator.post(
                f"/v1/faces/candidates/{candidate_id}/operator",
                json={"verdict": "match", "note": NOTE},
            )
            assert kept.json()["status"] == "pending_investigator", kept.text
        for candidate_id in others:
            dropped = operator.post(
                f"/v1/faces/candidates/{candidate_id}/operator", json={"verdict": "no_match"}
            )
            assert dropped.json()["status"] == "rejected", dropped.text
        again = operator.post(
            f"/v1/faces/candidates/{rumsfeld}/operator", json={"verdict": "no_match"}
        )
        assert again.status_code == 409
    with api.client("investigator") as investigator:
        assert [c["id"] for c in investigator.get("/v1/faces/review").json()] == [rumsfeld, powell]
        pending = investigator.get(f"/v1/faces/searches/{search_id}/export")
        assert (pending.status_code, pending.json()["error"]) == (409, "conflict")
        confirmed = investigator.post(
            f"/v1/faces/candidates/{rumsfeld}/investigator", json={"verdict": "match", "note": NOTE}
        )
        assert confirmed.json()["status"] == "confirmed", confirmed.text
        assert confirmed.json()["operator"] == "test-reviewer"
        assert confirmed.json()["investigator"] == "test-investigator"
        rejected = investigator.post(
            f"/v1/faces/candidates/{powell}/investigator", json={"verdict": "no_match"}
        )
        assert rejected.json()["status"] == "rejected"
        exported = investigator.get(f"/v1/faces/searches/{search_id}/export")
    assert exported.status_code == 200, exported.text
    assert [c["id"] for c in exported.json()["confirmed"]] == [rumsfeld]
    assert exported.json()["confirmed"][0]["person_ref"] == "P-1"
    assert "not an identification" in exported.json()["caveat"]

    actions = [e.action for e in rows(api, AuditEvent)]
    assert actions.count("evidence.view") == 2
    for action in (
        "watchlist.approve",
        "face.search.done",
        "face.review.investigator",
        "face.export",
    ):
        assert action in actions


def _nothing_kept_of_the_unmatched_face(api: Api, search_id: int, media: dict[str, bytes]) -> None:
    """Only faces with a candidate leave a row or a crop; the probe media is kept whole and
    sealed (for its retention), nothing cut from it."""
    candidates = rows(api, FaceCandidate)
    assert {c.probe for c in candidates} == {"cctv-1.jpg#1", "cctv-2.jpg#1"}
    assert len(rows(api, WatchlistImage)) == 4
    assert len(rows(api, WatchlistEntry)) == 2
    [record] = rows(api, FaceSearch)
    assert record.summary["faces"] == 3 and record.summary["faces_with_candidates"] == 2
    assert "cctv-3.jpg#" not in str(record.summary)
    settings: FacesSettings = api.app.state.faces.settings
    vault = Vault.of(settings)
    kept = sorted((probe_media_dir(settings) / str(search_id)).iterdir())
    assert [path.name for path in kept] == ["1.sealed", "2.sealed", "3.sealed"]
    assert [vault.open(path.read_bytes()) for path in kept] == list(media.values())
    assert list(probe_media_dir(settings).iterdir()) == [probe_media_dir(settings) / str(search_id)]


def test_only_an_approved_in_date_watchlist_is_searched(api: Api, shared_data: Path) -> None:
    case_id = open_case(api)
    enrolled_watchlist(api, shared_data)
    probe = {"probe.jpg": lfw(shared_data, "Donald_Rumsfeld", 4)}
    past = utcnow() - timedelta(days=1)
    with api.known.db.session() as session:
        session.execute(update(Watchlist).values(review_at=past))
    with api.client("analyst") as analyst:
        overdue = search(analyst, case_id, probe)
        assert overdue.status_code == 409 and "no approved watchlist" in overdue.json()["detail"]
        overdue = search(analyst, case_id, probe, "bridge")
        assert overdue.status_code == 409 and "review date" in overdue.json()["detail"]
    with api.client("supervisor") as supervisor:
        assert supervisor.get("/v1/faces/watchlists/bridge").json()["searchable"] is False
        no_date = supervisor.post("/v1/faces/watchlists/bridge/approve")
        assert no_date.status_code == 422 and "new review date" in no_date.json()["detail"]
        renewed = supervisor.post(
            "/v1/faces/watchlists/bridge/approve", json={"review_at": later(7)}
        )
        assert renewed.json()["searchable"] is True, renewed.text
    with api.client("analyst") as analyst:
        assert search(analyst, case_id, probe, "bridge").status_code == 201

    with api.known.db.session() as session:
        session.execute(update(Watchlist).values(review_at=past, expires_at=past))
    with api.client("analyst") as analyst:
        expired = search(analyst, case_id, probe, "bridge")
    assert expired.status_code == 409 and "expired" in expired.json()["detail"]
    # The search attempt expired the watchlist and purged its templates for good, in a
    # transaction of its own that the refusal did not roll back: nothing is left to expire.
    assert api.app.state.faces.housekeeping().expired_watchlists == []
    with api.client("supervisor") as supervisor:
        shown = supervisor.get("/v1/faces/watchlists/bridge").json()
        assert shown["status"] == "expired" and shown["purged_at"] is not None
        assert [e["images"] for e in shown["entries"]] == [0, 0]
        assert supervisor.post("/v1/faces/watchlists/bridge/approve").status_code == 409
    assert all(i.template is None and i.crop is None for i in rows(api, WatchlistImage))


def test_the_creator_cannot_approve_and_the_operator_cannot_confirm(
    api: Api, shared_data: Path
) -> None:
    with api.client("supervisor") as creator:
        create_watchlist(creator, "own", {"P-1": "Donald Rumsfeld"})
        assert enroll(creator, "own", "P-1", lfw(shared_data, "Donald_Rumsfeld", 1)).is_success
        own = creator.post("/v1/faces/watchlists/own/approve")
    assert (own.status_code, own.json()["error"]) == (403, "not_allowed")
    with client_for(api, add_person(api, "second-supervisor", ["supervisor"])) as second:
        assert second.post("/v1/faces/watchlists/own/approve").status_code == 200

    case_id = open_case(api)
    with api.client("investigator") as investigator:
        found = search(investigator, case_id, {"p.jpg": lfw(shared_data, "Donald_Rumsfeld", 2)})
    assert found.status_code == 201, found.text
    [candidate] = found.json()["candidates"]
    both = add_person(api, "operator-and-officer", ["reviewer", "investigator"])
    with client_for(api, both) as officer:
        url = f"/v1/faces/candidates/{candidate['id']}"
        assert officer.post(f"{url}/operator", json={"verdict": "match", "note": NOTE}).is_success
        second_look = officer.post(f"{url}/investigator", json={"verdict": "match", "note": NOTE})
    assert (second_look.status_code, second_look.json()["error"]) == (403, "not_allowed")
    assert "other than the operator" in second_look.json()["detail"]


def test_enrollment_rejects_unfit_photos_with_a_reason(api: Api, shared_data: Path) -> None:
    rumsfeld = lfw(shared_data, "Donald_Rumsfeld", 1)
    two_people = np.concatenate(
        [rgb_of(rumsfeld), rgb_of(lfw(shared_data, "Colin_Powell", 1))], axis=1
    )
    unfit = {
        "no_face": jpeg(np.full((250, 250, 3), 128, dtype=np.uint8)),
        "several_faces": jpeg(two_people),
        "too_blurred": jpeg(cv2.GaussianBlur(rgb_of(rumsfeld), (0, 0), 4)),
        "unreadable": b"GIF89a but not really",
    }
    with api.client("investigator") as keeper:
        create_watchlist(keeper, "strict", {"P-1": "Donald Rumsfeld"})
        for reason, data in unfit.items():
            response = enroll(keeper, "strict", "P-1", data)
            assert response.status_code == 422, (reason, response.text)
            body = response.json()
            assert body["error"] == "enrollment_rejected"
            assert body["detail"]["reason"] == reason and body["detail"]["message"]
        no_zone = keeper.post(
            "/v1/faces/watchlists/strict/entries/P-1/images",
            files={"file": ("photo.jpg", rumsfeld, "image/jpeg")},
            data={"captured_at": "2024-03-01T10:00:00"},
        )
        assert no_zone.status_code == 422 and "zone" in no_zone.json()["detail"]
        nobody = enroll(keeper, "strict", "P-404", rumsfeld)
        assert nobody.status_code == 404
        shown = keeper.get("/v1/faces/watchlists/strict").json()
    assert [e["images"] for e in shown["entries"]] == [0]
    assert rows(api, WatchlistImage) == []


def test_without_the_faces_key_enrollment_and_search_answer_503(
    settings: Settings, shared_data: Path
) -> None:
    with running_api(faces_settings(settings, faces_key=None)) as api:
        case_id = open_case(api)
        with api.client("investigator") as keeper:
            create_watchlist(keeper, "keyless", {"P-1": "Donald Rumsfeld"})
            refused = enroll(keeper, "keyless", "P-1", lfw(shared_data, "Donald_Rumsfeld", 1))
            searched = search(keeper, case_id, {"p.jpg": lfw(shared_data, "Donald_Rumsfeld", 2)})
    for response in (refused, searched):
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "faces_key_unavailable"
        assert "VIGIL_FACES_KEY" in response.json()["detail"]


def test_uploads_over_the_cap_are_refused(settings: Settings, shared_data: Path) -> None:
    photo = lfw(shared_data, "Donald_Rumsfeld", 1)
    with running_api(faces_settings(settings, max_upload_bytes=len(photo) - 1)) as api:
        case_id = open_case(api)
        with api.client("investigator") as keeper:
            create_watchlist(keeper, "capped", {"P-1": "Donald Rumsfeld"})
            enrolled = enroll(keeper, "capped", "P-1", photo)
            searched = search(keeper, case_id, {"small.jpg": b"x" * 10, "big.jpg": photo})
            too_many = search(keeper, case_id, {f"{n}.jpg": b"x" for n in range(11)})
        assert rows(api, FaceSearch) == []
    for response in (enrolled, searched):
        assert (response.status_code, response.json()["error"]) == (413, "too_large"), response.text
    assert too_many.status_code == 400 and "files" in too_many.json()["detail"]


EXPECTED_PERMISSIONS = {
    ("POST", "/v1/faces/watchlists"): "face:watchlist",
    ("GET", "/v1/faces/watchlists"): "face:read",
    ("GET", "/v1/faces/watchlists/{name}"): "face:read",
    ("POST", "/v1/faces/watchlists/{name}/approve"): "face:approve",
    ("POST", "/v1/faces/watchlists/{name}/entries"): "face:watchlist",
    ("DELETE", "/v1/faces/watchlists/{name}/entries/{person_ref}"): "face:watchlist",
    ("POST", "/v1/faces/watchlists/{name}/entries/{person_ref}/images"): "face:watchlist",
    ("POST", "/v1/faces/searches"): "face:search",
    ("GET", "/v1/faces/searches/{search_id}"): "face:read",
    ("GET", "/v1/faces/searches/{search_id}/export"): "face:export",
    ("GET", "/v1/faces/review"): "face:read",
    ("GET", "/v1/faces/candidates/{candidate_id}/faces/{which}"): "face:read",
    ("POST", "/v1/faces/candidates/{candidate_id}/operator"): "face:operate",
    ("POST", "/v1/faces/candidates/{candidate_id}/investigator"): "face:confirm",
}


def test_each_route_requires_its_face_permission_and_never_admin() -> None:
    """The denial matrix (test_api_auth) checks that each Require refuses the other roles;
    this pins which permission each face route requires."""
    found = {}
    for route in faces_router.routes:
        assert isinstance(route, APIRoute)
        [require] = [d.call for d in route.dependant.dependencies if isinstance(d.call, Require)]
        assert require.permission is not None, route.path
        for method in route.methods or ():
            found[(method, route.path)] = require.permission
    assert found == EXPECTED_PERMISSIONS
    assert all("admin" not in PERMISSIONS[p] for p in found.values())


def test_a_person_is_removed_with_their_templates(api: Api, shared_data: Path) -> None:
    enrolled_watchlist(api, shared_data)
    with api.client("investigator") as keeper:
        removed = keeper.delete("/v1/faces/watchlists/bridge/entries/P-2")
        assert removed.status_code == 204
        assert keeper.delete("/v1/faces/watchlists/bridge/entries/P-2").status_code == 404
        shown = keeper.get("/v1/faces/watchlists/bridge").json()
        listed = keeper.get("/v1/faces/watchlists").json()
    assert [e["person_ref"] for e in shown["entries"]] == ["P-1"]
    assert shown["status"] == "draft", "a changed watchlist needs approving again"
    assert [(w["name"], w["searchable"]) for w in listed] == [("bridge", False)]
    assert len(rows(api, WatchlistImage)) == 3


def test_bad_requests_are_refused_with_a_reason(api: Api, shared_data: Path) -> None:
    with api.client("investigator") as keeper:
        short = keeper.post(
            "/v1/faces/watchlists",
            json={
                "name": "vague",
                "purpose": "suspects",
                "legal_basis": LEGAL_BASIS,
                "review_at": later(1),
                "expires_at": later(2),
            },
        )
        assert (short.status_code, short.json()["error"]) == (422, "invalid_face_request")
        assert "purpose" in short.json()["detail"]
        naive = keeper.post(
            "/v1/faces/watchlists",
            json={
                "name": "naive",
                "purpose": PURPOSE,
                "legal_basis": LEGAL_BASIS,
                "review_at": "2999-01-01T00:00:00",
                "expires_at": "2999-02-01T00:00:00",
            },
        )
        assert naive.status_code == 422
        case_id = open_case(api)
        no_case = search(keeper, 10_000, {"p.jpg": lfw(shared_data, "Donald_Rumsfeld", 1)})
        assert no_case.status_code == 404
        unjustified = keeper.post(
            "/v1/faces/searches",
            data={"case_id": str(case_id), "offence_ref": "X", "justification": "because"},
            files=[("files", ("p.jpg", b"x", "image/jpeg"))],
        )
        assert unjustified.status_code == 422 and "justify" in unjustified.json()["detail"]
        assert keeper.get("/v1/faces/searches/999").status_code == 404
        assert keeper.get("/v1/faces/candidates/999/faces/probe").status_code == 404
    assert rows(api, FaceSearch) == []


def test_a_review_queue_is_for_reviewers_and_investigators_only(api: Api) -> None:
    with api.client("analyst") as analyst:
        refused = analyst.get("/v1/faces/review")
    assert (refused.status_code, refused.json()["error"]) == (403, "not_allowed")
    with api.client("reviewer") as operator:
        assert operator.get("/v1/faces/review").json() == []
