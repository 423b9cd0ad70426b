"""Live ingest on real streams, through the real demuxers and decoders, all on localhost.

Debian's ffmpeg (``ffmpeg -re``) plays the part of a broadcaster: it pushes MPEG-TS over UDP,
RTSP and RTMP to a listening reader, writes HLS into a folder a local HTTP server serves, and
publishes RTMP to an nginx relay the reader pulls from. Clips are 2-4 s long so that the whole
file stays well under a minute.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_network
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import in_ci
from vigil.hashing import get_signal_type, hash_file
from vigil.live.ingest import (
    Backoff,
    ClipUnavailable,
    ReaderConfig,
    SampleQueue,
    StreamReader,
    decode_mode,
)
from vigil.live.ingest.clock import StreamClock
from vigil.live.samples import AUDIO_RATE, AudioWindow, VideoSample
from vigil.live.urls import StreamUrlPolicy, StreamUrlRefused, protocol_available, redact
from vigil.net import free_local_port

LOOPBACK = StreamUrlPolicy(allow_networks=(ip_network("127.0.0.0/8"),))
FILES = StreamUrlPolicy(allow_files=True)
NGINX_RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


def require(tool: str) -> str:
    """A broadcaster tool: skip without it locally, fail in CI (scripts/test.sh installs it)."""
    found = shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        if in_ci():
            pytest.fail(f"{tool} is required in CI")
        pytest.skip(f"{tool} is not installed")
    return found


def encode(path: Path, seconds: float, extra: list[str] | None = None) -> Path:
    """A real H.264 + AAC clip: moving test pattern, a 440 Hz tone, a keyframe every second,
    B-frames (so that skipping non-reference frames saves something)."""
    subprocess.run(
        [
            require("ffmpeg"),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "superfast",
            "-bf",
            "2",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            *(extra or []),
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    return {
        "ts4": encode(folder / "four.ts", 4),
        "ts2": encode(folder / "two.ts", 2),
        "mp4": encode(folder / "three.mp4", 3),
    }


def push(source: Path, *output: str, realtime: bool = True) -> subprocess.Popen[bytes]:
    pace = ["-re"] if realtime else []
    command = [require("ffmpeg"), "-hide_banner", "-loglevel", "error", *pace, "-i", str(source)]
    return subprocess.Popen([*command, "-c", "copy", *output], stderr=subprocess.PIPE)


def push_when_listening(source: Path, *output: str, within: float = 8.0) -> None:
    """Push to a reader that is about to listen: ffmpeg fails at once while nobody listens."""
    deadline = time.monotonic() + within
    while True:
        pusher = push(source, *output)
        _, error = pusher.communicate(timeout=within)
        if pusher.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"could not push: {error.decode(errors='replace')}")
        time.sleep(0.2)


def collect(reader: StreamReader, within: float = 20.0) -> list[VideoSample | AudioWindow]:
    """Every sample until the reader ends; stops it if it has not ended ``within`` seconds."""
    watchdog = threading.Timer(within, reader.stop)
    watchdog.start()
    try:
        return list(reader.samples())
    finally:
        watchdog.cancel()
        assert reader.join(15), "the reader thread did not exit"


def video(samples: list[VideoSample | AudioWindow]) -> list[VideoSample]:
    return [s for s in samples if isinstance(s, VideoSample)]


def audio(samples: list[VideoSample | AudioWindow]) -> list[AudioWindow]:
    return [s for s in samples if isinstance(s, AudioWindow)]


def assert_stream_samples(samples: list[VideoSample | AudioWindow], seconds: float) -> None:
    """About ``seconds`` of stream at 2 fps and 1-s audio windows, on an increasing clock."""
    frames, windows = video(samples), audio(samples)
    assert abs(len(frames) - 2 * seconds) <= 2, [round(f.t, 2) for f in frames]
    assert abs(len(windows) - seconds) <= 1.5, [round(w.t, 2) for w in windows]
    times = [f.t for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(f.rgb.dtype == np.uint8 and f.rgb.shape == (240, 320, 3) for f in frames)
    assert all(w.samples.dtype == np.float32 and w.samples.shape == (AUDIO_RATE,) for w in windows)
    # The tone is there: a 440 Hz sine at full scale has an RMS near 1/sqrt(2) * amplitude.
    assert all(np.sqrt(np.mean(w.samples**2)) > 0.05 for w in windows)
    starts = [w.t for w in windows]
    assert np.allclose(np.diff(starts), 1.0, atol=0.05) if len(starts) > 1 else starts


# -- files played as if live ----------------------------------------------------------------


def test_file_plays_at_the_pace_of_its_timestamps(media: dict[str, Path], tmp_path: Path) -> None:
    reader = StreamReader(str(media["ts4"]), "file", policy=FILES)
    started = time.monotonic()
    samples = collect(reader)
    elapsed = time.monotonic() - started
    assert elapsed >= 3.5, elapsed
    assert reader.state == "ended" and reader.reason == "the stream ended"
    assert_stream_samples(samples, 4)
    assert 3.8 <= reader.t <= 4.2
    status = reader.status()
    assert status["frames_decoded"] == 100
    assert status["decode_errors"] == 0 and status["corrupt"] == 0
    assert status["video"] == "h264 320x240" and status["audio"] == "aac 44100 Hz"
    assert status["samples_dropped"] == 0 and status["reconnects"] == 0

    # The kept packets remux into clips PyAV and vPDQ read, from the keyframe before start.
    for suffix in (".ts", ".mp4"):
        clip = reader.write_clip(tmp_path / f"clip{suffix}", 1.0, 3.0)
        with av.open(str(clip)) as container:
            assert container.duration is not None
            assert abs(container.duration / 1e6 - 2.0) <= 1.0
            assert len(list(container.decode(video=0))) >= 45
            assert container.streams.audio
    result = hash_file(clip, [get_signal_type("vpdq")])  # the MP4: what incidents are hashed from
    assert result.ok and result.kind == "video" and result.signals
    other = reader.write_clip(tmp_path / "clip.avi", 0.0, 1.0)
    assert other.suffix == ".mp4" and other.exists()
    with pytest.raises(ClipUnavailable):
        reader.write_clip(tmp_path / "none.ts", 3.0, 2.0)


def test_file_as_fast_as_it_decodes_and_decode_modes(media: dict[str, Path]) -> None:
    decoded = {}
    for mode in ("all", "nonref", "keyframes"):
        config = ReaderConfig(realtime=False, decode=decode_mode(mode), max_side=160)
        reader = StreamReader(str(media["ts4"]), mode, policy=FILES, config=config)
        started = time.monotonic()
        samples = collect(reader)
        assert time.monotonic() - started < 3.0
        assert reader.state == "ended"
        assert all(f.rgb.shape == (120, 160, 3) for f in video(samples))
        assert len(audio(samples)) >= 3
        decoded[mode] = reader.status()["frames_decoded"]
        if mode == "keyframes":
            # One keyframe a second: a sample each, whatever fps asks for.
            assert 3 <= len(video(samples)) <= 5
    assert decoded["all"] == 100
    assert decoded["keyframes"] <= 5 < decoded["nonref"] < decoded["all"]
    with pytest.raises(ValueError, match="decode mode"):
        decode_mode("fast")


def test_slow_consumer_loses_the_oldest_samples(media: dict[str, Path]) -> None:
    queue = SampleQueue(maxsize=3)
    config = ReaderConfig(realtime=False)
    reader = StreamReader(str(media["ts4"]), "slow", policy=FILES, config=config, queue=queue)
    reader.start()
    assert reader.join(10)
    produced = reader.stats.video_samples + reader.stats.audio_windows
    assert len(queue) == 3 and queue.dropped("slow") == produced - 3
    assert reader.status()["samples_dropped"] == produced - 3
    kept = [queue.get(0) for _ in range(3)]
    assert max(s.t for s in kept if s is not None) >= 3.0  # the newest survive
    with pytest.raises(RuntimeError):
        next(reader.samples())


def test_broken_files_end_or_fail_clearly(media: dict[str, Path], tmp_path: Path) -> None:
    data = media["ts4"].read_bytes()
    truncated = tmp_path / "truncated.ts"
    truncated.write_bytes(data[: len(data) // 2])
    reader = StreamReader(str(truncated), "cut", policy=FILES, config=ReaderConfig(realtime=False))
    samples = collect(reader)
    assert reader.state == "ended" and 1 <= len(video(samples)) <= 6

    damaged = tmp_path / "damaged.ts"
    noise = np.random.default_rng(7).integers(0, 256, 40_000, dtype=np.uint8).tobytes()
    middle = len(data) // 2
    damaged.write_bytes(data[:middle] + noise + data[middle + len(noise) :])
    reader = StreamReader(str(damaged), "bad", policy=FILES, config=ReaderConfig(realtime=False))
    samples = collect(reader)
    assert reader.state == "ended" and len(video(samples)) >= 6
    status = reader.status()
    assert status["corrupt"] + status["decode_errors"] > 0, status

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(noise)
    reader = StreamReader(str(garbage), "junk", policy=FILES)
    assert collect(reader) == []
    assert reader.state == "failed" and "not a media file" in reader.reason


# -- network protocols ----------------------------------------------------------------------


def listening_config(**overrides: object) -> ReaderConfig:
    base: dict[str, object] = {
        "open_timeout": 1.0,
        "read_timeout": 1.0,
        "listen_timeout": 0.5,
        "reconnect": Backoff(initial=0.05, max_delay=0.2, max_seconds=1.5),
    }
    return ReaderConfig(**(base | overrides))  # type: ignore[arg-type]


def test_udp_stream_that_drops_comes_back_on_a_clock_that_keeps_going(
    media: dict[str, Path], tmp_path: Path
) -> None:
    port = free_local_port(socket.SOCK_DGRAM)
    reader = StreamReader(f"udp://127.0.0.1:{port}", "udp", config=listening_config())
    target = f"udp://127.0.0.1:{port}?pkt_size=1316"
    samples: list[VideoSample | AudioWindow] = []
    consumer = threading.Thread(target=lambda: samples.extend(collect(reader, 25)))
    consumer.start()
    first = push(media["ts2"], "-f", "mpegts", target)
    first.wait(10)
    time.sleep(1.5)  # the reader times out and reconnects meanwhile
    second = push(media["ts2"], "-f", "mpegts", target)
    second.wait(10)
    consumer.join(30)

    status = reader.status()
    assert reader.state == "ended" and "did not come back" in reader.reason, status
    assert status["reconnects"] >= 1
    frames = video(samples)
    times = [f.t for f in frames]
    assert times == sorted(times), times
    # Two 2-s pushes 1.5 s apart: the second one's samples carry on after the gap instead of
    # restarting at its timestamps (which are the first one's).
    assert times[-1] - times[0] >= 4.0, times
    gaps = np.diff(times)
    assert gaps.max() >= 1.0, times
    assert len(frames) >= 6
    # A clip across the reconnect remuxes both connections' packets (same codec parameters).
    clip = reader.write_clip(tmp_path / "both.mp4", 0.0, reader.t)
    with av.open(str(clip)) as container:
        assert len(list(container.decode(video=0))) >= 80


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``/redirect?to=URL`` answers 302 to URL."""

    def do_GET(self) -> None:
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(folder: Path) -> Iterator[int]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_hls_served_over_http_until_its_endlist(media: dict[str, Path], tmp_path: Path) -> None:
    playlist = tmp_path / "index.m3u8"
    writer = push(
        media["ts4"], "-f", "hls", "-hls_time", "1", "-hls_list_size", "10", str(playlist)
    )
    with serving(tmp_path) as port:
        deadline = time.monotonic() + 5
        while not playlist.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        reader = StreamReader(f"http://127.0.0.1:{port}/index.m3u8", "hls", policy=LOOPBACK)
        samples = collect(reader)
    writer.wait(10)
    assert reader.state == "ended", reader.status()
    assert_stream_samples(samples, 4)
    assert reader.status()["http_errors"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "index.m3u8",
        "redirect?to=http://10.255.0.1:8080/index.m3u8",
        "redirect?to=file:///etc/passwd",
    ],
)
def test_hls_cannot_lead_into_a_private_network(path: str, tmp_path: Path) -> None:
    """Neither a segment URL in the playlist nor a redirect reaches what the policy refuses."""
    (tmp_path / "index.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXTINF:1.0,\nhttp://10.255.0.1:8080/secret-segment.ts\n#EXT-X-ENDLIST\n"
    )
    with serving(tmp_path) as port:
        reader = StreamReader(f"http://127.0.0.1:{port}/{path}", "hls", policy=LOOPBACK)
        assert collect(reader) == []
    assert reader.state == "failed" and reader.reason.startswith("refused:"), reader.reason
    assert "10.255.0.1" in reader.reason or "file" in reader.reason


def test_clock_keeps_increasing_across_jumps_and_reconnects() -> None:
    wall = [1000.0]
    clock = StreamClock(now=lambda: wall[0])
    assert clock.packet(95_000.0) == 0.0  # t starts at 0 whatever the timestamps
    wall[0] += 0.5
    assert clock.packet(95_000.5) == 0.5
    wall[0] += 0.04
    assert clock.packet(3.0) == pytest.approx(0.54)  # wrapped or restarted: rebased
    wall[0] += 0.04
    assert clock.packet(3.04) == pytest.approx(0.58)
    wall[0] += 0.04
    assert clock.packet(9_000.0) == pytest.approx(0.62)  # a jump far ahead of the wall clock
    assert clock.packet(8_999.5) == pytest.approx(0.12)  # interleaving: not a jump
    wall[0] += 5.0
    clock.connect()
    assert clock.packet(0.0) == pytest.approx(5.62)  # five seconds gone count as stream time
    assert clock.rebases == 3 and clock.t == pytest.approx(5.62)


def test_rtsp_pushed_to_a_listening_reader(media: dict[str, Path]) -> None:
    port = free_local_port()
    reader = StreamReader(f"rtsp://0.0.0.0:{port}/live", "rtsp", config=listening_config())
    assert reader.target.mode == "listen"
    samples: list[VideoSample | AudioWindow] = []
    consumer = threading.Thread(target=lambda: samples.extend(collect(reader)))
    consumer.start()
    push_when_listening(
        media["mp4"], "-f", "rtsp", "-rtsp_transport", "tcp", f"rtsp://127.0.0.1:{port}/live"
    )
    consumer.join(20)
    assert reader.state == "ended" and reader.reason == "the stream ended", reader.status()
    assert_stream_samples(samples, 3)


def test_rtmp_pushed_to_a_listening_reader(media: dict[str, Path]) -> None:
    port = free_local_port()
    url = f"rtmp://0.0.0.0:{port}/live/streamkey"
    reader = StreamReader(url, "rtmp", config=listening_config())
    assert "streamkey" not in reader.status()["url"]
    samples: list[VideoSample | AudioWindow] = []
    consumer = threading.Thread(target=lambda: samples.extend(collect(reader)))
    consumer.start()
    push_when_listening(media["ts2"], "-f", "flv", f"rtmp://127.0.0.1:{port}/live/streamkey")
    consumer.join(20)
    # The publisher hanging up reads as a drop; nobody pushes again, so the stream ends.
    assert reader.state == "ended", reader.status()
    assert_stream_samples(samples, 2)


@contextmanager
def nginx_rtmp_relay(folder: Path) -> Iterator[int]:
    nginx = require("nginx")
    if not NGINX_RTMP_MODULE.exists():
        if in_ci():
            pytest.fail("libnginx-mod-rtmp is required in CI")
        pytest.skip("libnginx-mod-rtmp is not installed")
    port = free_local_port()
    config = folder / "nginx.conf"
    config.write_text(
        f"load_module {NGINX_RTMP_MODULE};\n"
        f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log;\nevents {{ worker_connections 64; }}\n"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}\n"
    )
    relay = subprocess.Popen(
        [nginx, "-e", str(folder / "error.log"), "-p", str(folder), "-c", str(config)]
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert relay.poll() is None and time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield port
    finally:
        relay.terminate()
        relay.wait(5)


def test_rtmp_pulled_from_a_relay(media: dict[str, Path], tmp_path: Path) -> None:
    with nginx_rtmp_relay(tmp_path) as port:
        publisher = push(media["ts4"], "-f", "flv", f"rtmp://127.0.0.1:{port}/live/cam")
        time.sleep(0.5)
        reader = StreamReader(
            f"rtmp://localhost:{port}/live/cam", "relay", policy=LOOPBACK, config=listening_config()
        )
        assert reader.target.url.startswith(f"rtmp://127.0.0.1:{port}/")  # pinned
        samples = collect(reader)
        publisher.wait(10)
    assert reader.state == "ended", reader.status()
    assert len(video(samples)) >= 5 and len(audio(samples)) >= 2
    assert_stream_samples(samples, len(audio(samples)) + 0.5)


def test_srt_is_refused_clearly_when_this_pyav_has_no_srt() -> None:
    url = f"srt://127.0.0.1:{free_local_port()}?mode=caller"
    if protocol_available("srt"):
        assert LOOPBACK.check(url).scheme == "srt"
    else:
        with pytest.raises(StreamUrlRefused, match="no srt protocol"):
            LOOPBACK.check(url)


def test_a_stream_that_never_answers_fails_without_leaking_credentials(
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = f"rtsp://viewer:hunter2@127.0.0.1:{free_local_port()}/cam?token=abc123"
    config = listening_config(reconnect=Backoff(initial=0.05, max_delay=0.1, max_attempts=2))
    reader = StreamReader(url, "cam", policy=LOOPBACK, config=config)
    assert collect(reader) == []
    status = reader.status()
    assert reader.state == "failed" and reader.reason.startswith("cannot connect"), status
    assert status["reconnects"] == 1
    shown = f"{status} {reader.target!r} {reader.target} {capfd.readouterr()}"
    assert "hunter2" not in shown and "abc123" not in shown and "viewer" not in shown
    assert "127.0.0.1" in status["url"]


# -- the URL policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("rtmp://10.1.2.3/live/x", "may not reach"),
        ("rtsp://192.168.1.10:554/cam", "may not reach"),
        ("http://127.0.0.1:8080/index.m3u8", "may not reach"),
        ("https://[::1]/live.m3u8", "may not reach"),
        ("http://169.254.169.254/latest/meta-data", "may not reach"),
        ("rtmp://[::ffff:127.0.0.1]/live/x", "may not reach"),
        ("http://localhost/index.m3u8", "may not reach"),
        ("http://100.64.0.1/index.m3u8", "may not reach"),
        ("http://224.0.0.1/x.m3u8", "may not reach"),
        ("ftp://example.org/x.ts", "not a stream protocol"),
        ("gopher://example.org/", "not a stream protocol"),
        ("concat:/etc/passwd|/etc/hosts", "not a stream protocol"),
        ("subfile,,start,0,end,0,,:/etc/passwd", "files are not accepted"),
        ("/etc/passwd", "files are not accepted"),
        ("file:///etc/passwd", "files are not accepted"),
        ("udp://@:80", "listening port must be between"),
        ("udp://@", "listening port must be between"),
        ("udp://8.8.8.8:5000", "not an address of this machine"),
        ("udp://@:5000?connect=1&localaddr=10.0.0.1", "udp options not accepted"),
        ("udp://example.org:5000", "must be @"),
        ("rtmp://0.0.0.0:80/live/x", "listening port must be between"),
        ("rtmp://user:pw@0.0.0.0:1935/live/x", "cannot carry credentials"),
        ("rtmp://:1935/live", "no host"),
        ("http://example.org:99999/x.m3u8", "invalid port"),
        ("http://no-such-host.invalid/x.m3u8", "cannot resolve"),
    ],
)
def test_policy_refuses(url: str, reason: str) -> None:
    with pytest.raises(StreamUrlRefused, match=reason) as refused:
        StreamUrlPolicy().check(url)
    assert "pw@" not in refused.value.reason


def test_policy_lists_and_modes(tmp_path: Path) -> None:
    policy = StreamUrlPolicy(
        allow_networks=(ip_network("10.9.0.0/16"),),
        deny_networks=(ip_network("10.9.9.0/24"),),
        deny_hosts=("blocked.example",),
    )
    pinned = policy.check("rtsp://admin:s3cret@10.9.1.2:8554/cam")
    assert pinned.mode == "pull" and pinned.url == "rtsp://admin:s3cret@10.9.1.2:8554/cam"
    assert pinned.redacted == "rtsp://***@10.9.1.2:8554/cam" and "s3cret" not in repr(pinned)
    with pytest.raises(StreamUrlRefused, match="may not reach"):
        policy.check("rtsp://10.9.9.9/cam")
    with pytest.raises(StreamUrlRefused, match="denied host list"):
        policy.check("rtmp://live.blocked.example/app/key")
    narrow = StreamUrlPolicy(allow_hosts=("relay.example",))
    with pytest.raises(StreamUrlRefused, match="not on the allowed host list"):
        narrow.check("rtmp://elsewhere.example/app/key")

    assert policy.check("udp://@:5004").mode == "listen"
    local = policy.check("udp://127.0.0.1:5004?fifo_size=100000")
    assert local.local_address == "127.0.0.1" and not local.multicast
    assert policy.check("udp://239.1.2.3:5004").multicast
    with pytest.raises(StreamUrlRefused, match="multicast"):
        StreamUrlPolicy(allow_multicast=False).check("udp://239.1.2.3:5004")
    with pytest.raises(StreamUrlRefused, match="not allowed here"):
        StreamUrlPolicy(allow_listen=False).check("rtmp://0.0.0.0:1935/live/key")
    assert policy.check("rtsp://0.0.0.0:8554/live").mode == "listen"

    clip = tmp_path / "clip.ts"
    clip.write_bytes(b"x")
    roots = StreamUrlPolicy(allow_files=True, file_roots=(tmp_path,))
    assert roots.check(f"file://{clip}").path == clip.resolve()
    assert roots.check(str(clip)).url == f"file:{clip.resolve()}"
    with pytest.raises(StreamUrlRefused, match="outside the allowed folders"):
        roots.check("/etc/hostname")
    with pytest.raises(StreamUrlRefused, match="no such file"):
        roots.check(str(tmp_path / "missing.ts"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://u:p@cam.example/x", "rtsp://***@cam.example/x"),
        ("rtmp://a.example/live/sk_live_123", "rtmp://a.example/live/***"),
        ("https://h.example/i.m3u8?token=t0k&x=1", "https://h.example/i.m3u8?token=***&x=1"),
        (
            "srt://h.example:9000?passphrase=pw&streamid=s",
            "srt://h.example:9000?passphrase=***&streamid=***",
        ),
        ("udp://@:5000", "udp://@:5000"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_reader_refuses_before_starting() -> None:
    with pytest.raises(StreamUrlRefused, match="may not reach"):
        StreamReader("rtmp://10.0.0.1/live/x")
    with pytest.raises(StreamUrlRefused, match="files are not accepted"):
        StreamReader("/etc/hostname")
