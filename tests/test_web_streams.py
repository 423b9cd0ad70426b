"""The console's Streams page over real HTTP: who sees the watch form and Stop buttons, that a
change needs the CSRF token, and a real stream (a synthetic file played as if live, with frames
of it in a bank of known attack footage) from start to alert to stop, as the page, its
refreshed table and the alert page show it. Starting and stopping go through the API routes
the console's forms call."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
from sqlalchemy import select

from test_web_support import Console, WebSettings, running_console, web_settings
from vigil.config import Settings
from vigil.live import FusionConfig, LiveSettings
from vigil.live.synth import FAST_SIZE, build_stream, held_out_assets, scenario
from vigil.store.models import AuditEvent
from vigil.web.streams import SPARK_HEIGHT, SPARK_WIDTH, sparkline

pytest_plugins = ["test_web_support"]

#: Long enough to look at the page and stop it while it still runs, even on a busy machine.
STREAM_SECONDS = 20.0
#: The stream's seconds whose frames are banked as known attack footage.
BANKED = (3.0, 3.5, 4.0, 4.5, 5.0)
_WAIT_SECONDS = 60.0
_STOP = re.compile(r'<button[^>]*class="stop"[^>]*id="stop-([0-9a-f]{12})"')


class StreamConsoleSettings(WebSettings, LiveSettings):
    """The console's settings with the live ones: files accepted as streams, one source."""


def stream_settings(settings: Settings, **overrides: object) -> StreamConsoleSettings:
    values = web_settings(settings).model_dump()
    live = {
        # Only the bank matcher: no model loads, and the banked frames raise the alarm.
        "live_sources": ["known_content"],
        "live_allow_files": True,
        "live_pre_roll_seconds": 2.0,
        "live_max_streams": 1,
    }
    return StreamConsoleSettings(**{**values, **live, **overrides})


def build_tripod(folder: Path, shared_data: Path) -> Path:
    """Benign tripod footage, H.264 + AAC in MPEG-TS, small and quick to decode."""
    out = folder / "tripod.ts"
    spec = scenario("benign_tripod", seed=3, duration_s=STREAM_SECONDS, size=FAST_SIZE)
    build_stream(spec, out, held_out_assets(shared_data))
    return out


def bank_frames(console: Console, stream: Path, folder: Path) -> None:
    """Frames of ``stream`` at :data:`BANKED` in a bank: a re-stream of known attack footage."""
    known = console.known
    known.banks.create("known-attacks")
    wanted = list(BANKED)
    with av.open(str(stream)) as container:
        for frame in container.decode(video=0):
            if wanted and frame.time is not None and frame.time >= wanted[0]:
                path = folder / f"frame-{wanted.pop(0)}.png"
                frame.to_image().save(path)
                _, entry = known.add_file("known-attacks", path, labels=["attack"])
                assert entry is not None
    assert not wanted, f"{stream} ends before {wanted}"


def wait_for(client: httpx.Client, path: str, pattern: str) -> re.Match[str]:
    """Ask for ``path`` until its HTML matches ``pattern``; the match."""
    deadline = time.monotonic() + _WAIT_SECONDS
    text = ""
    while time.monotonic() < deadline:
        response = client.get(path)
        assert response.status_code == 200, response.text
        text = response.text
        found = re.search(pattern, text)
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{path} never showed {pattern!r}:\n{text}")


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    return build_tripod(tmp_path_factory.mktemp("streams"), shared_data)


@pytest.fixture
def console(settings: Settings) -> Iterator[Console]:
    with running_console(stream_settings(settings)) as running:
        yield running


def _audited(console: Console, action: str) -> list[AuditEvent]:
    with console.known.db.session() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_only_stream_watchers_get_the_form_and_changes_need_the_csrf_token(
    console: Console, stream: Path
) -> None:
    body = {"url": str(stream), "name": "cam"}
    with console.signed_in("reviewer") as reviewer:
        page = reviewer.get("/console/streams")
        assert page.status_code == 200 and "No streams are being watched" in page.text
        assert 'id="watch"' not in page.text
        assert 'href="/console/streams"' in page.text  # the navigation link
        refused = reviewer.post("/v1/streams", json=body)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    with console.signed_in("analyst") as analyst:
        page = analyst.get("/console/streams")
        assert 'id="watch"' in page.text and 'data-api="/v1/streams"' in page.text
        token = analyst.headers.pop("X-CSRF-Token")
        forged = analyst.post("/v1/streams", json=body)
        assert forged.status_code == 403 and forged.json()["error"] == "csrf_failed"
        analyst.headers["X-CSRF-Token"] = token
        private = analyst.post("/v1/streams", json={"url": "rtmp://10.0.0.1/live/x"})
        assert private.status_code == 400 and private.json()["error"] == "url_refused"
    assert console.app.state.live.monitor.sessions() == []
    assert _audited(console, "stream.watch") == []


def test_a_watched_stream_shows_its_level_trace_and_alert_until_stopped(
    console: Console, stream: Path, tmp_path: Path
) -> None:
    bank_frames(console, stream, tmp_path)
    body = {
        "url": str(stream),
        "name": "cam-1",
        "platform": "test",
        "metadata": {"category": "IRL"},
    }
    with console.signed_in("analyst") as analyst, console.signed_in("reviewer") as reviewer:
        started = analyst.post("/v1/streams", json=body)
        assert started.status_code == 201, started.text
        stream_id = started.json()["id"]
        # One stream at a time here (live_max_streams=1): the limit is the API's answer.
        second = analyst.post("/v1/streams", json={**body, "name": "cam-2"})
        assert second.status_code == 429 and second.json()["error"] == "too_many_streams"

        # The table the page refreshes from shows the alert once the responder opened it.
        link = wait_for(reviewer, "/console/streams/table", r'href="/console/alerts/(\d+)"')
        alert_id = int(link.group(1))
        page = analyst.get("/console/streams").text
        row = page[page.index(f'id="stream-{stream_id}"') :]
        row = row[: row.index("</tr>")]
        level = re.search(r'class="level level-(\w+)">(\w+)<', row)
        assert level is not None and level.group(1) == level.group(2)
        assert level.group(1) in ("alert", "critical")
        assert "cam-1" in row and "<td>test</td>" in row and 'class="ingest">live' in row
        assert re.search(r"known_content: \d\.\d\d / \+9\.00", row), row
        points = re.search(r'<polyline class="trace" points="([^"]+)"', row)
        assert points is not None
        xs = [float(pair.split(",")[0]) for pair in points.group(1).split()]
        assert len(xs) >= 2 and xs[-1] == SPARK_WIDTH  # the newest second at the right edge
        assert _STOP.findall(page) == [stream_id]
        assert 'id="stop-' not in reviewer.get("/console/streams").text

        alert_page = reviewer.get(f"/console/alerts/{alert_id}").text
        assert f'href="/console/streams#stream-{stream_id}"' in alert_page
        assert re.search(
            r'Level now</dt><dd><span class="level level-(alert|critical)"', alert_page
        )

        stopped = analyst.delete(f"/v1/streams/{stream_id}")
        assert stopped.status_code == 200 and not stopped.json()["running"]
        after = analyst.get("/console/streams").text
        assert "(no longer watched)" in after and _STOP.findall(after) == []
        assert "(no longer watched)" in reviewer.get(f"/console/alerts/{alert_id}").text

    for action in ("stream.watch", "stream.stop"):
        [event] = _audited(console, action)
        assert (event.actor, event.object_id) == ("user:console-analyst", stream_id)


def test_the_alert_page_has_no_stream_section_for_a_stream_the_monitor_forgot(
    console: Console,
) -> None:
    with console.signed_in("admin") as admin:
        body = {
            "dedupe_key": "live:gone:1",
            "source": "live",
            "content_kind": "stream",
            "signals": [{"stream": "0123456789ab", "incident": 1}],
        }
        created = admin.post("/v1/alerts", json=body)
        assert created.status_code == 201, created.text
        page = admin.get(f"/console/alerts/{created.json()['id']}")
    assert page.status_code == 200 and 'id="stream-status"' not in page.text


def test_the_sparkline_puts_the_newest_second_right_and_shows_the_thresholds_it_reaches() -> None:
    config = FusionConfig()  # watch 2, alert 5, critical 12
    calm = sparkline([0.0, 1.0, 0.5], config)
    assert [t.level for t in calm.thresholds] == ["watch", "alert"]  # alert always shown
    points = [tuple(map(float, p.split(","))) for p in calm.points.split()]
    assert [x for x, _ in points][-1] == SPARK_WIDTH and points[0][1] == SPARK_HEIGHT
    assert calm.peak == 1.0 and calm.windows == 3

    climbing = sparkline([float(v) for v in range(200)], config)
    assert climbing.windows == 120 and climbing.peak == 199.0
    assert [t.level for t in climbing.thresholds] == ["watch", "alert", "critical"]
    first_x, first_y = map(float, climbing.points.split()[0].split(","))
    assert first_x == 0.0 and first_y < SPARK_HEIGHT  # the oldest kept second is 80, not 0

    empty = sparkline([], config)  # a stream whose first second has not closed yet
    assert (empty.points, empty.windows) == ("", 0)
    below = sparkline([-3.0, 0.0, 6.0], config)
    heights = [float(p.split(",")[1]) for p in below.points.split()]
    assert heights[0] == SPARK_HEIGHT and 0 < heights[2] < heights[1] < SPARK_HEIGHT
