"""Live streams shared by live workers under leases (issue 7): claims that never overlap, fair
shares, fencing of a holder that lost its lease, stops, serve in workers mode, and the fault
test — ``vigil worker --role live`` killed with SIGKILL mid-incident: another worker takes the
stream within the lease, the incident bank keeps the dead worker's fingerprints, and a SIGTERM
hands the stream over at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from postgres_server import PostgresServer
from test_live_session import _frame_at
from vigil.api.app import create_app
from vigil.config import Settings
from vigil.hashing import KnownContent
from vigil.live import LeasedStreams, LiveMonitor, LiveSettings, StreamSpec, UnknownStream
from vigil.live.leases import LeaseHolder
from vigil.live.registry import Held, LeaseLost, StreamRegistry
from vigil.live.synth import FAST_SIZE, build_stream, held_out_assets, scenario
from vigil.store import Database
from vigil.store.models import Alert, AuditEvent, BankEntry, LiveStream
from worker_cluster import wait_for

from test_api_support import serving

LEASE = 2.0


def _spec(name: str) -> StreamSpec:
    return StreamSpec(url=f"rtmp://relay.example/live/{name}", name=name)


def _add(registry: StreamRegistry, name: str) -> str:
    return registry.add(_spec(name), f"rtmp://relay.example/live/{name}", "test").id


# -- the registry ---------------------------------------------------------------------------


def test_workers_take_fair_shares_and_never_the_same_stream(db: Database) -> None:
    registry = StreamRegistry(db, LEASE)
    ids = {_add(registry, f"s{i}") for i in range(5)}
    registry.heartbeat("a", capacity=16)
    registry.heartbeat("b", capacity=16)
    first = registry.claim("a", 16)
    second = registry.claim("b", 16)
    # Five streams, two workers: a share is three; b takes what is left.
    assert len(first) == 3 and len(second) == 2
    assert {c.stream_id for c in first} | {c.stream_id for c in second} == ids
    assert registry.claim("a", 16) == [] and registry.claim("b", 16) == []
    assert all(c.generation == 1 for c in first + second)
    # Capacity caps a share.
    registry.heartbeat("c", capacity=1)
    extra = _add(registry, "s5")
    assert [c.stream_id for c in registry.claim("c", 1)] == [extra]
    assert registry.claim("c", 1) == []


def test_a_lost_lease_passes_to_another_worker_and_fences_the_old_holder(db: Database) -> None:
    registry = StreamRegistry(db, 0.5)
    stream_id = _add(registry, "cam")
    registry.heartbeat("a", 16)
    (claim,) = registry.claim("a", 16)
    status = {"running": True, "incidents": [{"number": 1, "level": "alert"}]}
    assert registry.renew("a", {stream_id: Held(1, status)}) == {stream_id: True}
    registry.heartbeat("b", 16)
    assert registry.claim("b", 16) == []  # a's lease holds
    time.sleep(0.7)
    registry.heartbeat("b", 16)
    (taken,) = registry.claim("b", 16)
    assert taken.generation == claim.generation + 1
    # The new holder numbers incidents on from the old holder's.
    assert taken.incident_base == 1 and taken.spec == _spec("cam")
    # The old holder can neither renew, nor overwrite the status, nor end the stream.
    assert registry.renew("a", {stream_id: Held(1, {"running": False})}) == {stream_id: False}
    assert not registry.end("a", stream_id, 1, {"error": "late"})
    row, _ = registry.get(stream_id)
    assert row.owner == "b" and row.ended_at is None and row.status == status
    with db.session() as session:
        claims = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "stream.claim")
        ).all()
    assert [(e.detail["worker"], e.detail["previous"]) for e in claims] == [
        ("a", None),
        ("b", "a"),
    ]


def test_the_fence_refuses_a_write_from_a_holder_that_lost_its_lease(db: Database) -> None:
    registry = StreamRegistry(db, 0.5)
    stream_id = _add(registry, "cam")
    registry.heartbeat("a", 16)
    registry.claim("a", 16)
    fence_a = registry.fence(stream_id, "a", 1)
    with db.session() as session:
        fence_a(session)  # a holds it: the write goes ahead
    time.sleep(0.7)
    with pytest.raises(LeaseLost), db.session() as session:
        fence_a(session)  # expired, even before anyone took it
    registry.heartbeat("b", 16)
    registry.claim("b", 16)
    with pytest.raises(LeaseLost), db.session() as session:
        fence_a(session)
    with db.session() as session:
        registry.fence(stream_id, "b", 2)(session)


def test_a_stop_ends_an_unheld_stream_at_once_and_a_held_one_at_its_holders_renewal(
    db: Database,
) -> None:
    registry = StreamRegistry(db, LEASE)
    waiting, held = _add(registry, "waiting"), _add(registry, "held")
    registry.request_stop(waiting, "test")
    registry.heartbeat("a", 16)
    (claim,) = registry.claim("a", 16)  # the stopped stream is not claimed
    assert claim.stream_id == held
    registry.request_stop(held, "test")
    assert registry.renew("a", {held: Held(1, {"running": True})}) == {held: False}
    assert registry.end("a", held, 1, {"running": False})
    for stream_id in (waiting, held):
        row, _ = registry.get(stream_id)
        assert row.ended_at is not None and row.stop_requested_at is not None
    with pytest.raises(UnknownStream):
        registry.request_stop("0123456789ab", "test")


def test_a_worker_that_leaves_hands_its_streams_back_at_once(db: Database) -> None:
    registry = StreamRegistry(db, 60.0)
    stream_id = _add(registry, "cam")
    registry.heartbeat("a", 16)
    registry.heartbeat("b", 16)
    (claim,) = registry.claim("a", 16)
    registry.leave("a", {stream_id: claim.generation})
    # No need to wait a minute for the lease, and a no longer counts towards the shares.
    (taken,) = registry.claim("b", 16)
    assert taken.stream_id == stream_id and taken.generation == 2


# -- serve in workers mode --------------------------------------------------------------------


def test_serve_in_workers_mode_records_streams_and_refuses_what_the_policy_refuses(
    settings: Settings,
) -> None:
    live = LiveSettings.model_validate(
        {**settings.model_dump(), "live_workers": True, "bootstrap_admin_token": "admin-secret"}
    )
    known = KnownContent(live)
    app = create_app(live, known)
    assert isinstance(app.state.live, LeasedStreams)
    headers = {"Authorization": "Bearer admin-secret"}
    try:
        with serving(app) as base_url, httpx.Client(base_url=base_url, headers=headers) as api:
            refused = api.post("/v1/streams", json={"url": "rtmp://10.0.0.1/live/x"})
            assert refused.status_code == 400 and refused.json()["error"] == "url_refused"
            assert api.post("/v1/streams", json={"url": "/etc/passwd"}).status_code == 400
            started = api.post(
                "/v1/streams", json={"url": "rtmp://user:pw@8.8.8.8/live/key", "name": "cam"}
            )
            assert started.status_code == 201, started.text
            body = started.json()
            assert body["state"] == "waiting" and body["worker"] is None
            assert "pw" not in body["url"] and "key" not in body["url"]
            listed = api.get("/v1/streams").json()["streams"]
            assert [s["id"] for s in listed] == [body["id"]]
            assert api.get("/v1/streams", params={"running": True}).json()["streams"] == []
            stopped = api.delete(f"/v1/streams/{body['id']}")
            assert stopped.status_code == 200 and stopped.json()["state"] == "ended"
            assert api.get("/v1/streams/0123456789ab").status_code == 404
            assert httpx.get(f"{base_url}/v1/streams").status_code == 401
        with known.db.session() as session:
            row = session.get(LiveStream, body["id"])
            assert row is not None and row.url == "rtmp://user:pw@8.8.8.8/live/key"
            actions = session.scalars(
                select(AuditEvent.action).where(AuditEvent.object_id == body["id"])
            ).all()
        assert list(actions) == ["stream.watch", "stream.stop"]
    finally:
        known.close()


# -- live workers as processes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def long_stream(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """30 s of 640x360 tripod footage, H.264 + AAC in MPEG-TS."""
    out = tmp_path_factory.mktemp("streams") / "tripod-30s.ts"
    spec = scenario("benign_tripod", seed=3, duration_s=30.0, size=FAST_SIZE)
    build_stream(spec, out, held_out_assets(shared_data))
    return out


class LiveWorker:
    """``vigil worker --role live`` in a subprocess; its log goes beside ``home``."""

    def __init__(self, name: str, home: Path, database_url: str) -> None:
        self.log = home.parent / f"worker-{name}.log"
        env = {
            **os.environ,
            "VIGIL_HOME": str(home),
            "VIGIL_DATABASE_URL": database_url,
            "VIGIL_LIVE_LEASE_SECONDS": str(LEASE),
            "VIGIL_LIVE_SOURCES": json.dumps(["known_content"]),
            "VIGIL_LIVE_ALLOW_FILES": "true",
            "VIGIL_LIVE_PRE_ROLL_SECONDS": "4",
        }
        command = [sys.executable, "-m", "vigil", "worker", "--role", "live"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log)

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def summary(self) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, self.log.read_text(errors="replace")[-3000:]
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    def ensure_dead(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def workers() -> Iterator[dict[str, LiveWorker]]:
    started: dict[str, LiveWorker] = {}
    try:
        yield started
    finally:
        for worker in started.values():
            worker.ensure_dead()


def _incident_entries(db: Database, stream_id: str) -> set[int]:
    with db.session() as session:
        entries = session.scalars(select(BankEntry)).all()
        return {e.id for e in entries if f"stream:{stream_id}" in (e.labels or [])}


def test_a_killed_live_worker_loses_its_stream_within_the_lease_and_its_fingerprints_stay(
    tmp_path: Path,
    postgres_url: str,
    long_stream: Path,
    workers: dict[str, LiveWorker],
) -> None:
    home = tmp_path / "home"
    settings = LiveSettings(
        home=home, database_url=postgres_url, live_workers=True, live_allow_files=True
    )
    known = KnownContent(settings)
    known.banks.create("known-attacks")
    for tenth in range(50, 85, 5):
        frame = _frame_at(long_stream, tenth / 10, tmp_path / f"frame-{tenth}.png")
        known.add_file("known-attacks", frame, labels=["attack"])
    streams = LeasedStreams(known.db, settings)
    try:
        workers["a"] = LiveWorker("a", home, postgres_url)
        stream_id = streams.watch(StreamSpec(url=str(long_stream), name="cam"), actor="test")["id"]

        def status() -> dict[str, Any]:
            return streams.status(stream_id)

        # a takes the stream, alerts on the known footage and fingerprints the incident.
        wait_for(
            lambda: any(i["fingerprints"] for i in status()["incidents"]), 90, "a's fingerprints"
        )
        holder_a = status()["worker"]
        assert holder_a and status()["state"] == "running"
        banked = _incident_entries(known.db, stream_id)
        assert banked

        workers["b"] = LiveWorker("b", home, postgres_url)
        time.sleep(1.0)  # b is up and beating; the stream is a's
        assert status()["worker"] == holder_a
        workers["a"].signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(
            lambda: status()["worker"] not in (None, holder_a),
            LEASE + 30,
            "b to take the stream",
        )
        taken_after = time.monotonic() - killed
        # The lease plus one renewal interval, plus b's tick and the reader starting.
        assert taken_after < LEASE * 1.2 + 5, taken_after
        holder_b = status()["worker"]

        # The dead worker's fingerprints are still in the bank and still match.
        assert banked <= _incident_entries(known.db, stream_id)
        frame = _frame_at(long_stream, 6.0, tmp_path / "reupload.png")
        _, report = known.match(frame, banks=[settings.live_incident_bank])
        assert report.matches

        # b plays the stream again and numbers its incident after a's.
        wait_for(lambda: len(status()["incidents"]) >= 2, 60, "b's incident")
        numbers = [i["number"] for i in status()["incidents"]]
        assert numbers[:2] == [1, 2]
        with known.db.session() as session:
            keys = session.scalars(select(Alert.dedupe_key).where(Alert.source == "live")).all()
        assert sorted(keys) == [f"live:{stream_id}:1", f"live:{stream_id}:2"]

        # A SIGTERM hands the stream back at once: c takes it well inside a lease.
        workers["c"] = LiveWorker("c", home, postgres_url)
        time.sleep(1.0)
        workers["b"].signal(signal.SIGTERM)
        assert workers["b"].summary()["claimed"] == 1
        wait_for(lambda: status()["worker"] not in (None, holder_b), 15, "c to take the stream")

        # A stop reaches the holder at its next renewal and the stream ends.
        assert streams.stop(stream_id, actor="test")["state"] in ("stopping", "ended")
        wait_for(lambda: status()["state"] == "ended", 15, "the stream to end")
        workers["c"].signal(signal.SIGTERM)
        assert workers["c"].summary()["claimed"] == 1
    finally:
        known.close()


def test_a_worker_cut_off_from_the_database_stops_its_streams_before_its_lease_ends(
    tmp_path: Path, private_postgres: PostgresServer, long_stream: Path
) -> None:
    """Nobody else can take the stream while the database is away, but when it comes back
    another worker may, at once: so the cut-off worker must have stopped by then, by its own
    clock. Then it claims the stream again itself, as a new holder."""
    settings = LiveSettings(
        home=tmp_path / "home",
        database_url=private_postgres.url,
        live_allow_files=True,
        live_sources=["known_content"],
        live_lease_seconds=LEASE,
    )
    known = KnownContent(settings)
    registry = StreamRegistry(known.db, LEASE)
    holder = LeaseHolder(LiveMonitor(known, settings), registry, name="cut-off")
    stop = threading.Event()
    runner = threading.Thread(target=holder.run, args=(stop,))
    try:
        stream_id = _add_file(registry, long_stream)
        runner.start()
        wait_for(lambda: bool(holder.watched), 60, "the claim")
        (watched,) = holder.watched.values()
        assert watched.session.running and watched.generation == 1
        private_postgres.stop("fast")
        cut = time.monotonic()
        while holder.watched and time.monotonic() - cut < LEASE * 3:
            time.sleep(0.02)
        let_go = time.time()
        assert not holder.watched, "the session outlived its lease"
        watched.session.join(10)
        assert not watched.session.running
        private_postgres.start()
        row, _ = registry.get(stream_id)
        assert row.lease_until is not None and row.owner == "cut-off"
        # Let go before the lease the database holds ran out (and any write the session still
        # had in flight is refused by the fence: the test above).
        assert let_go < row.lease_until.timestamp()
        wait_for(lambda: bool(holder.watched), 30, "the claim after the cut")
        (again,) = holder.watched.values()
        assert again.generation == 2 and again.session.running
    finally:
        stop.set()
        if runner.is_alive():
            runner.join(60)
        known.close()


def _add_file(registry: StreamRegistry, path: Path) -> str:
    return registry.add(StreamSpec(url=str(path), name="file"), str(path), "test").id
