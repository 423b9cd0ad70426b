"""A watched stream end to end: real encoded streams through PyAV ingest, evidence, the CUSUM,
an alert in the review queue with its evidence packet, fingerprints in the incident bank that
catch a re-upload, the policy for automatic stream cuts, the API and the CLI.

A re-stream of known attack footage is the scenario that needs no trained head: one of the
stream's frames is banked first, so the known-content source raises the alarm."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from vigil.api.app import create_app
from vigil.config import Settings
from vigil.hashing import KnownContent
from vigil.live import LiveMonitor, LiveSettings, StreamSpec
from vigil.live.playout import play
from vigil.live.synth import FAST_SIZE, build_stream, held_out_assets, scenario
from vigil.net import free_local_port
from vigil.store.evidence import locate
from vigil.store.models import Action, Alert, AuditEvent, BankEntry

from test_api_support import serving

ONLY_KNOWN = ["known_content"]


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """12 s of 640x360 tripod footage, H.264 + AAC in MPEG-TS."""
    out = tmp_path_factory.mktemp("streams") / "tripod.ts"
    spec = scenario("benign_tripod", seed=3, duration_s=12.0, size=FAST_SIZE)
    build_stream(spec, out, held_out_assets(shared_data))
    return out


def _frame_at(video: Path, t: float, out: Path) -> Path:
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= t:
                frame.to_image().save(out)
                return out
    raise AssertionError(f"{video} has no frame at {t} s")


def _live_settings(settings: Settings, **overrides: object) -> LiveSettings:
    values = {
        **settings.model_dump(),
        "live_sources": ONLY_KNOWN,
        "live_allow_files": True,
        "live_pre_roll_seconds": 4.0,
        **overrides,
    }
    return LiveSettings.model_validate(values)


@pytest.fixture
def banked(settings: Settings, stream: Path, tmp_path: Path) -> Iterator[KnownContent]:
    """The store with frames of the stream's seconds 5-8 in a bank of known attack footage."""
    known = KnownContent(settings)
    known.banks.create("known-attacks")
    for tenth in range(50, 85, 5):
        frame = _frame_at(stream, tenth / 10, tmp_path / f"frame-{tenth}.png")
        _, entry = known.add_file("known-attacks", frame, labels=["attack"])
        assert entry is not None
    try:
        yield known
    finally:
        known.close()


def _watch(known: KnownContent, live: LiveSettings, stream: Path) -> LiveMonitor:
    monitor = LiveMonitor(known, live)
    session = monitor.watch(StreamSpec(str(stream), name="tripod", realtime=False))
    session.join(timeout=120)
    assert not session.running and session.error is None
    return monitor


def test_a_restream_of_known_footage_alerts_with_evidence_and_is_fingerprinted(
    banked: KnownContent, settings: Settings, stream: Path, tmp_path: Path
) -> None:
    live = _live_settings(settings)
    monitor = _watch(banked, live, stream)
    (session,) = monitor.sessions()
    (incident,) = session.incidents
    assert incident.level == "critical"  # two matching windows and more
    first = incident.events[0]
    # Banked seconds 5-8 (a tripod scene may show the same view earlier, which also matches).
    assert first["level"] == "alert" and float(first["t"]) <= 8.0
    with banked.db.session() as db:
        alert = db.scalars(select(Alert).where(Alert.source == "live")).one()
        entries = db.scalars(select(BankEntry).where(BankEntry.content_ref.like("live:%"))).all()
    assert alert.content_kind == "stream" and alert.status == "escalated"
    assert "known_content" in alert.explanation and alert.severity == 10
    roles = [item["role"] for item in alert.evidence]
    assert roles.count("plot") >= 1 and "keyframe" in roles and "clip" in roles
    for item in alert.evidence:
        assert locate(settings.home, item["name"]) is not None
    clips = [
        locate(settings.home, item["name"]) for item in alert.evidence if item["role"] == "clip"
    ]
    # The first clip runs from before the onset to whenever the responder cut it (that depends
    # on how far analysis had got); the rest of the stream follows in later segments, so
    # together they cover the incident up to the end of the 12 s stream.
    durations: dict[Path, float] = {}
    for path in clips:
        assert path is not None
        with av.open(str(path)) as container:
            assert container.streams.video
            durations[path] = float(container.duration or 0) / 1e6
    assert sum(durations.values()) >= 12.0 - max(0.0, float(first["t"]) - 4.0) - 1.0
    clip = max(durations, key=durations.__getitem__)
    assert {e.content_ref.split(":")[1] for e in entries} == {session.id}
    # A re-upload of the clip is caught by the incident bank.
    reupload = tmp_path / "reupload.mp4"
    reupload.write_bytes(clip.read_bytes())
    _, report = banked.match(reupload)
    assert "live-incidents" in {match.bank for match in report.matches}
    # The stream's own fingerprints never counted as evidence against it.
    assert all(w.llr.get("known_content", 0) in (0.0, 9.0) for w in session.fusion.history)
    assert session.latest["known_content"].detail.get("bank", "known-attacks") == "known-attacks"
    with banked.db.session() as db:
        assert db.scalars(select(Action)).all() == []  # no cut without a person deciding


def test_the_policy_can_allow_an_automatic_stream_cut_at_critical(
    banked: KnownContent, settings: Settings, stream: Path
) -> None:
    monitor = _watch(banked, _live_settings(settings, live_auto_cut_at="critical"), stream)
    (session,) = monitor.sessions()
    with banked.db.session() as db:
        actions = db.scalars(select(Action)).all()
        audit = db.scalars(select(AuditEvent).where(AuditEvent.action == "action.automatic"))
        assert [a.kind for a in actions] == ["stream_cut"] and actions[0].automatic
        assert len(audit.all()) == 1
    assert session.incidents[0].alert_id == actions[0].alert_id


def test_benign_footage_raises_nothing_and_the_watch_is_audited(
    settings: Settings, stream: Path
) -> None:
    known = KnownContent(settings)
    try:
        monitor = _watch(known, _live_settings(settings), stream)
        (session,) = monitor.sessions()
        assert session.incidents == [] and session.fusion.statistic == 0.0
        assert session.status()["t"] >= 11.0
        with known.db.session() as db:
            assert db.scalars(select(Alert)).all() == []
            actions = [e.action for e in db.scalars(select(AuditEvent))]
        assert "stream.watch" in actions
    finally:
        known.close()


def test_files_are_refused_unless_allowed(settings: Settings, stream: Path) -> None:
    from vigil.live import StreamUrlRefused

    known = KnownContent(settings)
    try:
        monitor = LiveMonitor(known, _live_settings(settings, live_allow_files=False))
        with pytest.raises(StreamUrlRefused):
            monitor.watch(StreamSpec(str(stream)))
    finally:
        known.close()


def test_the_api_starts_reports_and_stops_a_live_udp_stream(
    settings: Settings, stream: Path
) -> None:
    live = _live_settings(settings, bootstrap_admin_token="admin-secret")
    known = KnownContent(live)
    app = create_app(live, known)
    headers = {"Authorization": "Bearer admin-secret"}
    port = free_local_port(socket.SOCK_DGRAM)
    try:
        with serving(app) as base_url, httpx.Client(base_url=base_url, headers=headers) as api:
            refused = api.post("/v1/streams", json={"url": "rtmp://10.0.0.1/live/x"})
            assert refused.status_code == 400 and refused.json()["error"] == "url_refused"
            started = api.post(
                "/v1/streams",
                json={
                    "url": f"udp://@:{port}",
                    "name": "cam",
                    "platform": "test",
                    "metadata": {"category": "IRL"},
                },
            )
            assert started.status_code == 201, started.text
            stream_id = started.json()["id"]
            with play(stream, f"udp://127.0.0.1:{port}", delay_s=0.5) as playout:
                deadline = time.monotonic() + 30
                status: dict[str, object] = {}
                while time.monotonic() < deadline:
                    status = api.get(f"/v1/streams/{stream_id}").json()
                    if float(str(status["t"])) >= 3.0:
                        break
                    time.sleep(0.3)
                assert float(str(status["t"])) >= 3.0, status
                assert status["running"] and status["evidence"]["known_content"]["llr"] == 0.0
                assert isinstance(status["trace"], list) and status["trace"]
                listed = api.get("/v1/streams", params={"running": True}).json()["streams"]
                assert [s["id"] for s in listed] == [stream_id]
                stopped = api.delete(f"/v1/streams/{stream_id}")
                assert stopped.status_code == 200 and not stopped.json()["running"]
                playout.stop()
            assert api.get("/v1/streams/0123456789ab").status_code == 404
            assert api.get("/v1/streams/not-an-id").status_code == 422
    finally:
        known.close()


def test_vigil_watch_prints_json_and_exits_when_the_file_ends(
    settings: Settings, stream: Path
) -> None:
    env = {
        **os.environ,
        "VIGIL_HOME": str(settings.home),
        "VIGIL_DATABASE_URL": settings.resolved_database_url,
        "VIGIL_LIVE_SOURCES": json.dumps(ONLY_KNOWN),
    }
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "watch", str(stream), "--no-realtime", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    final = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert final[-1]["event"] == "final" and final[-1]["t"] >= 11.0
    assert final[-1]["ingest"]["state"] == "ended"


def test_a_keyframe_image_matches_only_when_banked(settings: Settings, tmp_path: Path) -> None:
    """known_content frames go through KnownContent.match_frame: PDQ of the decoded pixels."""
    known = KnownContent(settings)
    try:
        known.banks.create("known-attacks")
        image = Image.new("RGB", (320, 240))
        for x in range(320):
            for y in range(0, 240, 8):
                image.putpixel((x, y), (x % 256, (x * y) % 256, 90))
        path = tmp_path / "frame.png"
        image.save(path)
        rgb = np.asarray(image)
        assert known.match_frame(rgb).matches == []
        known.add_file("known-attacks", path)
        assert [m.bank for m in known.match_frame(rgb).matches] == ["known-attacks"]
    finally:
        known.close()


def test_another_streams_incident_footage_counts_unless_evaluating(
    settings: Settings, stream: Path, tmp_path: Path
) -> None:
    """A re-stream of another stream's incident is known content; in an evaluation, whose
    synthetic streams share background footage, it must not be."""
    from vigil.live.evidence.known import KnownContentEvidence
    from vigil.live.incident import IncidentBank
    from vigil.live.samples import VideoSample

    frame = _frame_at(stream, 6.0, tmp_path / "frame.png")
    known = KnownContent(settings)
    try:
        IncidentBank(known, "live-incidents").add("aaaaaaaaaaaa", 1, [frame], ["live-incident"])
        rgb = np.asarray(Image.open(frame).convert("RGB"))
        sample = VideoSample("bbbbbbbbbbbb", 6.0, rgb, time.monotonic())
        counted = KnownContentEvidence(known, "bbbbbbbbbbbb").observe(sample)
        ignored = KnownContentEvidence(known, "bbbbbbbbbbbb", match_incidents=False)
        own = KnownContentEvidence(known, "aaaaaaaaaaaa")
        assert counted is not None and counted.llr > 0
        assert counted.detail["bank"] == "live-incidents"
        for source in (ignored, own):
            evidence = source.observe(sample)
            assert evidence is not None and evidence.llr == 0.0
    finally:
        known.close()
