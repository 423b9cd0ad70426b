"""Play a media file as a real live stream, at real time, on a local endpoint.

:func:`play` starts a player process (this file run as a script: PyAV only, no external
binary, none of vigil imported, so that a player costs little) that remuxes the file without
re-encoding and sends each packet when its timestamp falls due, as ``ffmpeg -re`` does.
Targets:

``udp://HOST:PORT``
    MPEG-TS datagrams (``pkt_size=1316`` unless the URL sets one). Start the receiver first:
    what is sent before it listens is lost, as on a real network (or pass ``delay_s``).
``tcp://HOST:PORT``
    MPEG-TS over TCP; the player listens and serves one client, the stream starts when it
    connects and ends with EOF.
``http://HOST:PORT/PATH.m3u8``
    HLS (2-second segments, a rolling playlist of 6) written to a temporary folder and served
    over HTTP by the player, which keeps serving for a while after the end (``#EXT-X-ENDLIST``)
    so that a client can read the last segments.

The handle reports when stream time 0 (the first video frame) went out as a
``time.monotonic()`` value, which is system-wide on Linux, so a receiver in another process can
measure latency against it. The player never outlives its caller: it stops when the handle's
pipe closes (stop, context exit, garbage collection or the caller dying), and is killed if it
does not stop in time.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import av

#: HLS segment length and playlist size; the player serves this long after the end.
HLS_SEGMENT_S = 2
HLS_LIST_SIZE = 6
_STOP_GRACE_S = 3.0

Transport = Literal["udp", "tcp", "hls"]


@dataclass(frozen=True)
class Target:
    """Where the player sends: the muxer's URL and format, and what a receiver opens."""

    transport: Transport
    #: What a receiver opens (``av.open(target.url)``).
    url: str
    host: str
    port: int
    #: The path of the playlist below the served folder (HLS only).
    path: str = ""


def parse_target(url: str) -> Target:
    """Check a target URL; the error says which forms are supported."""
    parts = urlsplit(url)
    supported = "udp://HOST:PORT, tcp://HOST:PORT or http://HOST:PORT/NAME.m3u8"
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r}: bad port ({exc}); use {supported}") from None
    if not host or not port:
        raise ValueError(f"{url!r}: needs a host and a port; use {supported}")
    if parts.scheme in ("udp", "tcp"):
        transport: Transport = "udp" if parts.scheme == "udp" else "tcp"
        return Target(transport, url, host, port)
    if parts.scheme == "http" and parts.path.endswith(".m3u8") and ".." not in parts.path:
        return Target("hls", url, host, port, parts.path.lstrip("/"))
    raise ValueError(f"{url!r}: cannot play there; use {supported}")


class Playout:
    """A running player. Use as a context manager, or call :meth:`stop`."""

    def __init__(self, process: subprocess.Popen[bytes], source: Path, target: Target) -> None:
        self.source, self.target = source, target
        self._process = process
        self._started = threading.Event()
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._start_time: float | None = None
        self._sent_s = 0.0
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._threads = [
            threading.Thread(target=self._read_events, daemon=True, name="playout-events"),
            threading.Thread(target=self._read_errors, daemon=True, name="playout-errors"),
        ]
        for thread in self._threads:
            thread.start()
        self._finalizer = weakref.finalize(self, _end, process)

    @property
    def url(self) -> str:
        """What a receiver opens."""
        return self.target.url

    @property
    def start_time(self) -> float | None:
        """``time.monotonic()`` at which stream time 0 went out (None until it did)."""
        return self._start_time

    @property
    def finished(self) -> bool:
        """The player has exited (the whole file sent, stopped, or failed)."""
        return self._finished.is_set()

    @property
    def pid(self) -> int:
        """The player process."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.poll()

    @property
    def sent_s(self) -> float:
        """Seconds of stream time sent when the player ended."""
        return self._sent_s

    @property
    def error(self) -> str:
        """The player's error output (empty when all went well)."""
        return "\n".join(self._stderr)

    def wait_started(self, timeout: float | None = None) -> float | None:
        """Wait until stream time 0 has gone out; its ``time.monotonic()``, or None."""
        self._started.wait(timeout)
        return self._start_time

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until a receiver can open the URL (at once for UDP and TCP; for HLS, when the
        first segment is in the playlist)."""
        return self._ready.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the player to exit; True when it has."""
        return self._finished.wait(timeout)

    def stop(self) -> None:
        """Stop now: the player closes its output (HLS writes its end), then exits; one that
        does not exit within a few seconds is killed."""
        self._finalizer()
        for thread in self._threads:
            thread.join(timeout=_STOP_GRACE_S)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _read_events(self) -> None:
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                self._stderr.append(raw.decode("utf-8", "replace").rstrip())
                continue
            if event.get("event") == "started":
                self._start_time = float(event["monotonic"])
                self._started.set()
            elif event.get("event") == "ready":
                self._ready.set()
            elif event.get("event") == "finished":
                self._sent_s = float(event["sent_s"])
        self._process.wait()
        self._started.set()
        self._ready.set()
        self._finished.set()

    def _read_errors(self) -> None:
        assert self._process.stderr is not None
        for raw in self._process.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())


def play(source: Path, url: str, *, delay_s: float = 0.0) -> Playout:
    """Start playing ``source`` to ``url`` at real time; stream time 0 goes out ``delay_s``
    after the player is up (time for a receiver to start listening)."""
    target = parse_target(url)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file to play")
    if delay_s < 0:
        raise ValueError(f"delay_s {delay_s} is negative")
    # Isolated (-I): the script's folder must not shadow modules, and vigil is not needed.
    command = [
        sys.executable,
        "-I",
        str(Path(__file__).resolve()),
        str(source),
        url,
        "--delay",
        str(delay_s),
    ]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    return Playout(process, source, target)


def _end(process: subprocess.Popen[bytes]) -> None:
    """Close the player's pipe (it stops by itself), then kill it if it lingers."""
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------------------------
# The player process


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _watch_parent(stop: threading.Event) -> None:
    """The parent holds our stdin open: EOF means it stopped us or died. (A raw read: a
    buffered one would hold a lock that interpreter shutdown then waits for.)"""
    while os.read(sys.stdin.fileno(), 4096):
        pass
    stop.set()


def _wait_until(deadline: float, stop: threading.Event) -> bool:
    """Sleep until ``deadline`` (monotonic) unless stopped; True when stopped."""
    delay = deadline - time.monotonic()
    return stop.wait(delay) if delay > 0 else stop.is_set()


def _output(target: Target, folder: Path | None) -> tuple[str, str, dict[str, str]]:
    """The muxer's URL, format and options for a target."""
    parts = urlsplit(target.url)
    query = parse_qs(parts.query)
    if target.transport == "udp":
        query.setdefault("pkt_size", ["1316"])
        return urlunsplit(parts._replace(query=urlencode(query, doseq=True))), "mpegts", {}
    if target.transport == "tcp":
        query.setdefault("listen", ["1"])
        query.setdefault("listen_timeout", ["120000"])
        return urlunsplit(parts._replace(query=urlencode(query, doseq=True))), "mpegts", {}
    assert folder is not None
    playlist = folder / target.path
    playlist.parent.mkdir(parents=True, exist_ok=True)
    options = {
        "hls_time": str(HLS_SEGMENT_S),
        "hls_list_size": str(HLS_LIST_SIZE),
        "hls_flags": "delete_segments+temp_file+independent_segments",
        "hls_segment_filename": str(playlist.with_name(playlist.stem + "_%05d.ts")),
    }
    return str(playlist), "hls", options


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not worth a line each."""


@contextlib.contextmanager
def _served(target: Target) -> Iterator[Path | None]:
    """For HLS, a temporary folder served over HTTP for as long as the player runs."""
    if target.transport != "hls":
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="vigil-hls-") as folder:
        handler = partial(_QuietHandler, directory=folder)
        server = ThreadingHTTPServer((target.host, target.port), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Path(folder)
        finally:
            server.shutdown()
            server.server_close()


def _pump(source: Path, target: Target, delay_s: float, stop: threading.Event) -> float:
    """Send the file's packets as their time falls due; the stream time sent."""
    with _served(target) as folder, av.open(str(source)) as inp:
        url, fmt, options = _output(target, folder)
        playlist = folder / target.path if folder is not None else None
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        video = next((s for s in streams if s.type == "video"), None)
        if video is None:
            raise ValueError(f"{source}: no video stream")
        zero = float((video.start_time or 0) * (video.time_base or 0))
        with av.open(url, "w", format=fmt, options=options) as out:
            mapping = {s.index: out.add_stream_from_template(s) for s in streams}
            if target.transport == "tcp":
                _emit("ready")  # listening from the next call, which waits for the client
            out.start_encoding()
            if target.transport == "udp":
                _emit("ready")
            start = time.monotonic() + delay_s
            _emit("started", monotonic=start)
            sent = _send(inp, out, mapping, start, zero, stop, playlist)
        _emit("finished", sent_s=round(sent, 3))
        if playlist is not None:
            # Let HLS clients read the last segments and the end of the playlist.
            stop.wait(HLS_SEGMENT_S * HLS_LIST_SIZE)
        return sent


def _send(
    inp: Any,
    out: Any,
    mapping: dict[int, Any],
    start: float,
    zero: float,
    stop: threading.Event,
    playlist: Path | None,
) -> float:
    sent = 0.0
    ready = playlist is None
    for packet in inp.demux(*[inp.streams[index] for index in mapping]):
        if packet.dts is None or packet.time_base is None:
            continue  # the demuxer's end-of-stream marker
        due = float(packet.dts * packet.time_base) - zero
        if _wait_until(start + due, stop):
            break
        packet.stream = mapping[packet.stream.index]
        out.mux(packet)
        sent = max(sent, due)
        if not ready and playlist is not None and playlist.exists():
            ready = True
            _emit("ready")
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Play a media file as a live stream.")
    parser.add_argument("source", type=Path)
    parser.add_argument("url")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    threading.Thread(target=_watch_parent, args=(stop,), daemon=True).start()
    try:
        _pump(args.source, parse_target(args.url), args.delay, stop)
    except (OSError, ValueError, av.FFmpegError) as exc:
        print(f"playout failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
