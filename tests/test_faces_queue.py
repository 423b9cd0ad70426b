"""Queued face searches (issue 7): ``POST /v1/faces/searches`` with VIGIL_FACES_QUEUE checks and
stores the search and answers 202; a ``faces`` worker runs it as its requester, with the same
candidates as the search inside the request, once however often it is delivered and even after
a worker was killed in the middle; a search that a rule now forbids fails with the reason, and
no search is left queued by a bus that refused it.

Real LFW photos, dlib, the in-process bus and a real nats-server, both databases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from nats_server import NatsServer
from test_api_faces import (
    THRESHOLD,
    enrolled_watchlist,
    faces_settings,
    lfw,
    open_case,
    search,
)
from test_faces_service import build_watchlist, new_case, request
from test_faces_service import lfw as lfw_path
from test_faces_video import Walker, film, lfw_face, write_video
from test_review_support import person
from vigil.accounts import Principal
from vigil.api.app import create_app
from vigil.bus import Bus, BusSettings, ConsumeStats, InProcessBus, Message, consume, open_bus
from vigil.config import Settings
from vigil.faces.queue import QUEUE, enqueue, faces_handler, message_id
from vigil.faces.search import ProbeMedia, probe_media_dir
from vigil.faces.service import FaceService
from vigil.faces.settings import FacesSettings
from vigil.faces.vault import new_key
from vigil.faces.watchlists import add_entry, approve_watchlist
from vigil.store import Database
from vigil.store.models import AuditEvent, FaceCandidate, FaceSearch, UserAccount, Watchlist, utcnow

from test_api_support import Api, running_api, serving

pytest_plugins = ["test_api_support"]

#: Long enough for any search here: a delivery comes again only when its worker died.
ACK_WAIT = 60.0


@contextmanager
def worker(bus: Bus, service: FaceService, max_deliver: int = 5) -> Iterator[ConsumeStats]:
    """``vigil worker --role faces`` in a thread: the handler under the bus's consume loop.
    The stats are filled in when the block ends."""
    stop = threading.Event()
    stats = ConsumeStats()
    handler = faces_handler(service)

    def run() -> None:
        done = consume(
            bus, QUEUE, handler, stop=stop, batch=1, max_deliver=max_deliver, timeout=0.2
        )
        vars(stats).update(vars(done))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield stats
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive()


def drain(bus: InProcessBus, service: FaceService) -> ConsumeStats:
    with worker(bus, service) as stats:
        wait_for(lambda: bus.pending(QUEUE) == 0, "the queue to drain")
    return stats


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def search_row(db: Database, search_id: int) -> FaceSearch:
    with db.session() as session:
        record = session.get_one(FaceSearch, search_id)
        session.expunge(record)
        return record


def candidates(db: Database, search_id: int) -> list[tuple[str, str, int, float]]:
    with db.session() as session:
        found = session.scalars(select(FaceCandidate).where(FaceCandidate.search_id == search_id))
        return sorted((c.probe, c.person_ref, c.rank, round(c.score, 4)) for c in found)


def audit_actions(db: Database, search_id: int) -> list[tuple[str, str]]:
    with db.session() as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_type == "face_search", AuditEvent.object_id == str(search_id))
            .order_by(AuditEvent.id)
        )
        return [(e.actor, e.action) for e in events]


def clip(shared_data: Path, folder: Path, seconds: float = 2.0, step: int = 2) -> Path:
    """A video with Powell walking (``step`` pixels a frame) and a stranger standing still."""
    walkers = (
        Walker(lfw_face(shared_data, "Colin_Powell", 2), start=(40, 100), step=(step, 0)),
        Walker(lfw_face(shared_data, "Gerhard_Schroeder", 1), start=(440, 80)),
    )
    return write_video(folder / "clip.mp4", film(walkers, seconds))


# --- over HTTP, on JetStream ---------------------------------------------------------------


@pytest.fixture
def queued_api(settings: Settings, nats_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("VIGIL_BUS_URL", nats_url)
    with running_api(faces_settings(settings, faces_queue=True)) as api:
        yield api


def test_a_queued_search_gives_the_candidates_of_a_search_in_the_request(
    queued_api: Api, nats_url: str, shared_data: Path, tmp_path: Path
) -> None:
    api = queued_api
    case_id = open_case(api)
    enrolled_watchlist(api, shared_data)
    media = {
        "cctv-1.jpg": lfw(shared_data, "Donald_Rumsfeld", 4),
        "cctv-2.jpg": lfw(shared_data, "Colin_Powell", 2),
        "cctv-3.jpg": lfw(shared_data, "Serena_Williams", 1),
        "phone.mp4": clip(shared_data, tmp_path).read_bytes(),
    }
    with api.client("analyst") as analyst:
        queued = search(analyst, case_id, media, "bridge")
        assert queued.status_code == 202, queued.text
        search_id = queued.json()["search_id"]
        assert queued.json() == {"search_id": search_id, "state": "queued"}
        waiting = analyst.get(f"/v1/faces/searches/{search_id}").json()
        unreadable = search(analyst, case_id, {"notes.txt": b"not a picture, not a video"})
    assert (waiting["search"]["state"], waiting["search"]["error"]) == ("queued", None)
    assert waiting["candidates"] == []
    assert (unreadable.status_code, unreadable.json()["error"]) == (422, "invalid_face_request")
    assert "notes.txt is not a readable image or video" in unreadable.json()["detail"]
    with api.known.db.session() as session:
        assert session.scalar(select(func.count(FaceSearch.id))) == 1

    faces: FacesSettings = api.app.state.faces.settings
    bus = open_bus(BusSettings(bus_url=nats_url, bus_ack_wait_seconds=ACK_WAIT))
    db = Database(faces.resolved_database_url)  # the worker's own, as in another process
    try:
        with worker(bus, FaceService(db, faces)) as stats:
            wait_for(lambda: search_row(db, search_id).state == "done", "the worker's search")
        # The same search published again (a client's retry) is dropped by its message id.
        bus.publish(
            QUEUE, json.dumps({"search_id": search_id}).encode(), msg_id=message_id(search_id)
        )
        assert bus.fetch(QUEUE, 1, 1.0) == []
    finally:
        bus.close()
        db.dispose()
    assert (stats.handled, stats.failed, stats.dead) == (1, 0, 0)

    synchronous = faces.model_copy(update={"faces_queue": False})
    with serving(create_app(synchronous, api.known)) as base_url:
        api_now = Api(base_url, api.app, api.known, api.tokens)
        with api_now.client("analyst") as analyst:
            direct = search(analyst, case_id, media, "bridge")
    assert direct.status_code == 201, direct.text
    direct_id = direct.json()["search_id"]
    with api.client("reviewer") as reviewer:
        done = reviewer.get(f"/v1/faces/searches/{search_id}").json()
        in_request = reviewer.get(f"/v1/faces/searches/{direct_id}").json()
    assert (done["search"]["state"], done["search"]["error"]) == ("done", None)
    assert in_request["search"]["state"] == "done"
    found = candidates(api.known.db, search_id)
    assert found == candidates(api.known.db, direct_id)
    assert {(probe, person) for probe, person, _, _ in found} == {
        ("cctv-1.jpg#1", "P-1"),
        ("cctv-2.jpg#1", "P-2"),
        ("phone.mp4#2", "P-2"),
    }
    assert all(score >= THRESHOLD for *_, score in found)
    assert done["search"]["summary"] == in_request["search"]["summary"]
    assert [m["faces"] for m in done["search"]["summary"]["media"]] == [1, 1, 1, 2]
    assert done["search"]["probe_media_kept_until"] is not None
    kept = sorted(path.name for path in (probe_media_dir(faces) / str(search_id)).iterdir())
    assert kept == ["1.sealed", "2.sealed", "3.sealed", "4.sealed"]
    assert audit_actions(api.known.db, search_id) == [("token:test-analyst", "face.search.done")]


def test_a_search_the_bus_refuses_fails_instead_of_waiting_forever(
    queued_api: Api, nats_server: NatsServer, shared_data: Path
) -> None:
    api = queued_api
    case_id = open_case(api)
    enrolled_watchlist(api, shared_data)
    nats_server.stop()
    with api.client("analyst") as analyst:
        refused = search(analyst, case_id, {"p.jpg": lfw(shared_data, "Donald_Rumsfeld", 4)})
    assert (refused.status_code, refused.json()["error"]) == (503, "bus_unavailable")
    [record] = [search_row(api.known.db, r) for r in _search_ids(api.known.db)]
    assert str(record.id) in refused.json()["detail"]
    assert record.state == "failed" and record.error and "work bus" in record.error
    assert record.probe_dir is None and record.probe_purged_at is not None
    assert not (probe_media_dir(api.app.state.faces.settings) / str(record.id)).exists()
    actions = [action for _, action in audit_actions(api.known.db, record.id)]
    assert actions == ["face.search.failed", "face.probe.purge"]


def _search_ids(db: Database) -> list[int]:
    with db.session() as session:
        return list(session.scalars(select(FaceSearch.id).order_by(FaceSearch.id)))


# --- the worker's rules, on the service ----------------------------------------------------


@pytest.fixture
def service(db: Database, settings: Settings) -> FaceService:
    pytest.importorskip("dlib")
    values = {"faces_key": new_key(), "faces_queue": True}
    return FaceService(db, FacesSettings(**{**settings.model_dump(), **values}))


@pytest.fixture
def people(db: Database) -> dict[str, Principal]:
    return {
        "ian": person(db, "ian", "investigator"),
        "sue": person(db, "sue", "supervisor"),
        "ana": person(db, "ana", "analyst"),
    }


def queue_one(service: FaceService, bus: Bus, who: Principal, media: list[ProbeMedia]) -> int:
    case_id = new_case(service.db, who)
    return enqueue(service, bus, who, request(case_id), media)


def photo(shared_data: Path, name: str, number: int) -> ProbeMedia:
    return ProbeMedia(f"{name}.jpg", lfw_path(shared_data, name, number))


def test_a_redelivered_search_is_not_run_twice(
    service: FaceService, people: dict[str, Principal], shared_data: Path
) -> None:
    build_watchlist(service, people, shared_data)
    bus = InProcessBus(ack_wait=ACK_WAIT)
    search_id = queue_one(service, bus, people["ana"], [photo(shared_data, "Colin_Powell", 2)])
    assert drain(bus, service).handled == 1
    first = candidates(service.db, search_id)
    assert [(probe, person) for probe, person, _, _ in first] == [("Colin_Powell.jpg#1", "cp")]

    handle = faces_handler(service)
    message = Message(QUEUE, json.dumps({"search_id": search_id}).encode(), None, 2, 1)
    handle([message])  # a delivery again after the ack was lost: acknowledged, nothing done
    assert candidates(service.db, search_id) == first
    assert search_row(service.db, search_id).state == "done"
    assert audit_actions(service.db, search_id) == [("user:ana", "face.search.done")]


def test_a_search_forbidden_since_it_was_queued_fails_with_the_reason(
    service: FaceService, people: dict[str, Principal], shared_data: Path, db: Database
) -> None:
    build_watchlist(service, people, shared_data)
    bus = InProcessBus(ack_wait=ACK_WAIT)
    media = [photo(shared_data, "Colin_Powell", 2)]
    ana, al = people["ana"], person(db, "al", "analyst")
    suspended = queue_one(service, bus, ana, media)
    with db.session() as session:  # a new person on an approved list sends it back to draft
        add_entry(session, people["ian"], "attack-suspects", "gs", "Gerhard Schroeder")
    assert drain(bus, service).failed == 0

    with db.session() as session:
        approve_watchlist(session, people["sue"], "attack-suspects", None)
    revoked = queue_one(service, bus, al, media)
    with db.session() as session:
        disable = update(UserAccount).where(UserAccount.username == "al").values(disabled=True)
        session.execute(disable)
    drain(bus, service)

    expired = queue_one(service, bus, ana, media)
    with db.session() as session:
        session.execute(update(Watchlist).values(expires_at=utcnow() - timedelta(seconds=1)))
    drain(bus, service)

    outcomes = {
        search_id: (search_row(db, search_id).state, search_row(db, search_id).error)
        for search_id in (suspended, revoked, expired)
    }
    assert outcomes == {
        suspended: ("failed", "watchlist 'attack-suspects' is draft, not approved"),
        revoked: ("failed", "user:al may not face:search"),
        expired: ("failed", "watchlist 'attack-suspects' has expired"),
    }
    for search_id, requester in ((suspended, ana), (revoked, al), (expired, ana)):
        assert candidates(db, search_id) == []
        record = search_row(db, search_id)
        assert record.probe_dir is None and record.probe_purged_at is not None
        assert (requester.actor, "face.search.failed") in audit_actions(db, search_id)
    assert list(probe_media_dir(service.settings).iterdir()) == []


def test_malformed_messages_and_unknown_searches_are_dropped(service: FaceService) -> None:
    bus = InProcessBus(ack_wait=ACK_WAIT)
    for data in (
        b"{not json",
        b"\xff\xfe",
        b'{"search_id": "seven"}',
        b'{"search_id": 0}',
        b'{"search_id": 5, "extra": 1}',
        b'{"search_id": 99999}',
    ):
        bus.publish(QUEUE, data)
    stats = drain(bus, service)
    assert (stats.handled, stats.failed, stats.dead) == (6, 0, 0)


def test_media_the_worker_cannot_read_is_retried_then_the_search_fails(
    service: FaceService,
    people: dict[str, Principal],
    shared_data: Path,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe media folder not shared with this worker: another worker may have it, so the
    bus delivers the search again; on the last delivery the search fails with the error."""
    monkeypatch.setenv("VIGIL_BUS_MAX_DELIVER", "2")
    build_watchlist(service, people, shared_data)
    bus = InProcessBus(ack_wait=ACK_WAIT)
    search_id = queue_one(service, bus, people["ana"], [photo(shared_data, "Colin_Powell", 2)])
    (probe_media_dir(service.settings) / str(search_id) / "1.sealed").unlink()
    with worker(bus, service, max_deliver=2) as stats:
        wait_for(lambda: search_row(db, search_id).state == "failed", "the search to fail", 30)
    error = search_row(db, search_id).error or ""
    assert error.startswith("gave up after 2 tries:") and "1.sealed" in error
    assert (bus.pending(QUEUE), stats.dead) == (0, 0)


# --- a worker killed in the middle of a search ---------------------------------------------


def test_a_search_cut_short_by_kill_9_is_run_again_without_duplicates(
    service: FaceService,
    people: dict[str, Principal],
    shared_data: Path,
    db: Database,
    nats_url: str,
    tmp_path: Path,
) -> None:
    build_watchlist(service, people, shared_data)
    ack_wait = 3.0
    bus = open_bus(BusSettings(bus_url=nats_url, bus_ack_wait_seconds=ack_wait))
    long_clip = clip(shared_data, tmp_path, seconds=12.0, step=0)
    media = [ProbeMedia("long.mp4", long_clip), photo(shared_data, "Donald_Rumsfeld", 2)]
    settings = service.settings
    env = {
        **os.environ,
        "VIGIL_HOME": str(settings.home),
        "VIGIL_DATABASE_URL": settings.resolved_database_url,
        "VIGIL_BUS_URL": nats_url,
        "VIGIL_BUS_ACK_WAIT_SECONDS": str(ack_wait),
        "VIGIL_FACES_KEY": settings.faces_key.get_secret_value() if settings.faces_key else "",
    }
    log = (tmp_path / "worker.log").open("wb")
    command = [sys.executable, "-m", "vigil", "worker", "--role", "faces"]
    doomed = subprocess.Popen(command, env=env, stderr=log)
    try:
        search_id = queue_one(service, bus, people["ana"], media)
        wait_for(lambda: search_row(db, search_id).state == "running", "the worker to start")
        time.sleep(1.0)  # into the video
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        if doomed.poll() is None:
            doomed.kill()
        log.close()
    assert search_row(db, search_id).state == "running", "killed after the search ended"
    assert candidates(db, search_id) == []

    try:
        with worker(bus, service) as stats:
            wait_for(lambda: search_row(db, search_id).state == "done", "the search run again")
    finally:
        bus.close()
    assert stats.handled == 1
    found = candidates(db, search_id)
    assert {(probe, person) for probe, person, _, _ in found} == {
        ("long.mp4#2", "cp"),
        ("Donald_Rumsfeld.jpg#1", "dr"),
    }
    assert len(found) == len(set(found))
    assert audit_actions(db, search_id) == [("user:ana", "face.search.done")]
