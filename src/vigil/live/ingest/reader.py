"""One live stream, read by one thread: connect, demux, decode, sample, reconnect.

:class:`StreamReader` opens a checked URL with PyAV, keeps the last seconds of packets for
evidence clips (:class:`~vigil.live.ingest.ring.PacketRing`), decodes video and audio, and
pushes :class:`VideoSample`\\ s (``fps`` a second, scaled to ``max_side``) and 1-s
:class:`AudioWindow`\\ s into a bounded :class:`SampleQueue` on the stream clock. A dropped
stream is reopened with exponential backoff and jitter until it is back or the retry budget is
spent; a stream that ends (end of file, the server closing it cleanly) ends the reader. A
corrupt packet is counted and skipped, never fatal.

Stopping is cooperative: :meth:`StreamReader.stop` ends :meth:`~StreamReader.samples` at once,
but a thread blocked in FFmpeg returns only when its read or listen times out
(``read_timeout``/``listen_timeout``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import urlsplit

import av
import httpx

from vigil.live.ingest.clock import LagMeter, Pacer, StreamClock
from vigil.live.ingest.httpio import HttpOpener, Stopped
from vigil.live.ingest.queue import Sample, SampleQueue
from vigil.live.ingest.ring import Kept, Kind, Layout, PacketRing
from vigil.live.ingest.sampling import AudioWindower, FrameSampler, to_rgb
from vigil.live.samples import AudioWindow, VideoSample
from vigil.live.urls import FILE_FORMATS, StreamTarget, StreamUrlPolicy, StreamUrlRefused, scrub
from vigil.logs import get_logger

log = get_logger(__name__)

#: Which frames the video decoder decodes: ``all``; ``nonref`` skips frames no other frame
#: refers to (B-frames in most streams); ``keyframes`` decodes keyframes only (cheapest; a
#: sample every keyframe interval).
DecodeMode = Literal["all", "nonref", "keyframes"]
ThreadType = Literal["SLICE", "FRAME", "AUTO"]
State = Literal["connecting", "live", "reconnecting", "ended", "failed"]
_SKIP_FRAME: dict[DecodeMode, Literal["DEFAULT", "NONREF", "NONKEY"]] = {
    "all": "DEFAULT",
    "nonref": "NONREF",
    "keyframes": "NONKEY",
}
_MICROSECONDS = 1_000_000
#: Seconds of a live stream read to find its streams before samples flow.
_PROBE_SECONDS = 1.5
_HLS_EDGE_WAIT = 30.0
#: Protocol layers FFmpeg may open under each scheme; anything else (a file: or http: URL
#: smuggled into a playlist or redirect) is refused by FFmpeg itself.
_PROTOCOLS = {
    "rtmp": "rtmp,tcp",
    "rtmps": "rtmps,tls,tcp",
    "rtsp": "rtsp,rtp,tcp,udp",
    "srt": "srt",
    "udp": "udp",
    "file": "file",
}


def decode_mode(value: str) -> DecodeMode:
    """``value`` as a :data:`DecodeMode`, or ValueError naming the choices."""
    if value in get_args(DecodeMode):
        return cast(DecodeMode, value)
    raise ValueError(f"decode mode must be one of {', '.join(get_args(DecodeMode))}, not {value!r}")


def configure_decoder(stream: av.VideoStream, config: ReaderConfig) -> None:
    """Set ``stream``'s decoder up as the reader does: which frames, how many threads."""
    context = stream.codec_context
    context.skip_frame = _SKIP_FRAME[config.decode]
    context.thread_count = config.threads
    context.thread_type = config.thread_type


@dataclass(frozen=True)
class Backoff:
    """How a dropped stream is retried: waits grow ``initial * factor**n`` up to ``max_delay``,
    with jitter; it gives up after ``max_attempts`` tries or ``max_seconds`` since the drop."""

    initial: float = 0.5
    factor: float = 2.0
    max_delay: float = 10.0
    max_attempts: int | None = None
    max_seconds: float = 120.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        # Equal jitter: streams dropped together (one relay restarting) do not retry in step.
        ceiling = min(self.max_delay, self.initial * self.factor**attempt)
        return ceiling / 2 + rng.uniform(0.0, ceiling / 2)

    def exhausted(self, attempts: int, elapsed: float) -> bool:
        over = self.max_attempts is not None and attempts >= self.max_attempts
        return over or elapsed >= self.max_seconds


@dataclass(frozen=True)
class ReaderConfig:
    #: Video frames sampled per second of stream time.
    fps: float = 2.0
    #: Sampled frames are scaled so that their longer side is at most this.
    max_side: int = 640
    video: bool = True
    audio: bool = True
    decode: DecodeMode = "all"
    #: Decoder threads per stream (0: FFmpeg picks). One thread per stream spends the cores on
    #: more streams; more threads cut one stream's latency.
    threads: int = 1
    thread_type: ThreadType = "AUTO"
    #: Files are played at the pace of their timestamps (as if live); False reads them as fast
    #: as they decode (evaluation). Live streams arrive at their own pace either way.
    realtime: bool = True
    #: Seconds of packets kept for :meth:`StreamReader.write_clip`, and a byte cap on them.
    buffer_seconds: float = 30.0
    buffer_max_bytes: int = 256 * 2**20
    #: Samples waiting for the consumer; beyond this the oldest are dropped (and counted).
    queue_size: int = 32
    #: Seconds to connect, and without data before a stream counts as dropped.
    open_timeout: float = 10.0
    read_timeout: float = 10.0
    #: Seconds a listening URL waits for someone to push, per attempt.
    listen_timeout: float = 30.0
    #: Corrupt reads in a row before the connection counts as dropped.
    max_bad_reads: int = 100
    reconnect: Backoff = field(default_factory=Backoff)


@dataclass
class ReaderStats:
    packets: int = 0
    frames_decoded: int = 0
    video_samples: int = 0
    audio_windows: int = 0
    #: Packets the decoder rejected, and packets or frames flagged corrupt (a continuity
    #: error in MPEG-TS, a concealed slice): counted, skipped or shown as decoded.
    decode_errors: int = 0
    corrupt: int = 0
    reconnects: int = 0
    http_errors: int = 0


class _Permanent(Exception):
    """Retrying cannot help (a file that is not media, a protocol this build lacks)."""


class StreamReader:
    """Reads one stream in its own thread. Raises :class:`StreamUrlRefused` at once for a URL
    the policy refuses."""

    def __init__(
        self,
        url: str,
        stream_id: str = "",
        *,
        policy: StreamUrlPolicy | None = None,
        config: ReaderConfig | None = None,
        queue: SampleQueue | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy or StreamUrlPolicy()
        self.config = config or ReaderConfig()
        self._url = url
        self.target = self.policy.check(url)
        self.stream_id = stream_id
        self.stats = ReaderStats()
        self._own_queue = queue is None
        self._queue = (
            queue
            if queue is not None
            else SampleQueue(self.config.queue_size, block=not self.config.realtime)
        )
        self._ring = PacketRing(self.config.buffer_seconds, self.config.buffer_max_bytes)
        self._clock = StreamClock()
        self._lag = LagMeter()
        self._pacer = Pacer()
        self._sampler = FrameSampler(self.config.fps)
        self._windower = AudioWindower()
        self._rng = rng or random.Random()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._state: State = "connecting"
        self._reason = ""
        self._since = time.time()
        self._ever_live = False
        self._live_now = False
        self._info: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, name=f"ingest-{stream_id}", daemon=True)

    # -- public --------------------------------------------------------------------------------

    @property
    def redacted_url(self) -> str:
        return self.target.redacted

    @property
    def state(self) -> State:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def t(self) -> float:
        """The latest stream time read."""
        return self._clock.t

    @property
    def finished(self) -> bool:
        return self._state in ("ended", "failed")

    def start(self) -> None:
        if not self._thread.is_alive() and not self.finished:
            self._thread.start()

    def stop(self) -> None:
        """Stop reading: :meth:`samples` ends once the queued samples are taken."""
        self._stopping.set()
        self._finish("ended", "stopped")

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True once it has exited."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def samples(self) -> Iterator[Sample]:
        """Samples as they come (starts the reader); ends when the stream ends or
        :meth:`stop` is called. Only for a reader with its own queue."""
        if not self._own_queue:
            raise RuntimeError("this reader feeds a shared queue: read that queue")
        self.start()
        yield from self._queue

    def write_clip(self, path: Path, start: float, end: float) -> Path:
        """The kept packets from the last keyframe at or before stream time ``start`` to
        ``end``, remuxed without re-encoding: MPEG-TS for ``.ts``, Matroska for ``.mkv``, else
        MP4 (the suffix becomes ``.mp4``). Returns the path written; raises
        :class:`~vigil.live.ingest.ring.ClipUnavailable` when nothing kept covers the times."""
        return self._ring.write_clip(path, start, end)

    def kept(self) -> tuple[float, float] | None:
        """Stream times of the oldest and newest packet kept for clips."""
        return self._ring.span()

    def status(self) -> dict[str, Any]:
        """State, reason and counters, fit to show (the URL is redacted)."""
        kept = self._ring.span()
        with self._lock:
            return {
                "stream_id": self.stream_id,
                "url": self.target.redacted,
                "mode": self.target.mode,
                "state": self._state,
                "reason": self._reason,
                "since": self._since,
                "t": round(self._clock.t, 3),
                "lag_seconds": round(self._lag.lag(), 3) if self._live_now else None,
                "samples_dropped": self._queue.dropped(self.stream_id),
                "kept_seconds": round(kept[1] - kept[0], 1) if kept else 0.0,
                **self._info,
                **vars(self.stats),
            }

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._connect_until_done()
        except Exception as exc:  # the reader ends; the process goes on
            log.exception("live.ingest_crashed", stream=self.stream_id, url=self.redacted_url)
            self._finish("failed", f"internal error: {self._describe(exc)}")
        finally:
            if self._own_queue:
                self._queue.close()

    def _connect_until_done(self) -> None:
        backoff = self.config.reconnect
        attempts, outage_start = 0, time.monotonic()
        while not self._stopping.is_set():
            try:
                if self._connection() == "eof":
                    self._finish("ended", "the stream ended")
                return
            except StreamUrlRefused as exc:
                self._finish("failed", f"refused: {exc.reason}")
                return
            except _Permanent as exc:
                self._finish("failed", str(exc))
                return
            except (av.FFmpegError, OSError, httpx.HTTPError, Stopped) as exc:
                if self._stopping.is_set():
                    return
                error = self._describe(exc)
            if self.target.mode == "file":
                self._finish("failed", f"the file cannot be read: {error}")
                return
            if self._live_now:
                attempts, outage_start = 0, time.monotonic()
            self._live_now = False
            if backoff.exhausted(attempts + 1, time.monotonic() - outage_start):
                if self._ever_live:
                    self._finish("ended", f"the stream dropped and did not come back: {error}")
                else:
                    self._finish("failed", f"cannot connect: {error}")
                return
            self._set_state("reconnecting" if self._ever_live else "connecting", error)
            if self._stopping.wait(backoff.delay(attempts, self._rng)):
                return
            attempts += 1
            self.stats.reconnects += 1

    def _connection(self) -> str:
        """Open, read until the stream ends ("eof") or the reader stops ("stopped"); a drop
        raises."""
        if self.stats.reconnects:
            self.target = self.policy.check(self._url)  # DNS may have moved meanwhile
        target = self.target
        opener = None
        read_timeout = self.config.read_timeout
        if target.scheme in ("http", "https"):
            opener = HttpOpener(self.policy, timeout=read_timeout, stopped=self._stopping)
            # vigil's HTTP client times out stalled requests itself; FFmpeg's HLS demuxer may
            # wait a whole segment duration at the live edge for the playlist to grow.
            read_timeout += _HLS_EDGE_WAIT
        # Probing a live stream takes as long as the data it reads takes to arrive; an open
        # interrupted mid-probe can leave the protocol (RTMP) broken for the reads after it.
        open_timeout = self.config.open_timeout + _PROBE_SECONDS
        if target.mode == "listen":
            open_timeout += self.config.listen_timeout
        try:
            try:
                container = av.open(
                    target.url,
                    options=self._options(target),
                    timeout=(open_timeout, read_timeout),
                    io_open=opener,
                )
            except (av.ProtocolNotFoundError, av.PermissionError) as exc:
                raise _Permanent(f"cannot open: {self._describe(exc)}") from None
            except av.InvalidDataError as exc:
                if target.mode == "file":
                    raise _Permanent(f"not a media file: {self._describe(exc)}") from None
                raise
            try:
                return self._read(container)
            finally:
                container.close()
        finally:
            if opener is not None:
                self.stats.http_errors += opener.errors
                opener.close()

    def _options(self, target: StreamTarget) -> dict[str, str]:
        config = self.config
        options: dict[str, str] = {}
        if target.scheme in _PROTOCOLS:
            options["protocol_whitelist"] = _PROTOCOLS[target.scheme]
        if target.mode == "file":
            options["format_whitelist"] = FILE_FORMATS
            return options
        # Start within a second or two. (Not fflags=nobuffer: it throws away the packets read
        # while probing, the first second of every connection.)
        options |= {
            "analyzeduration": str(round(_PROBE_SECONDS * _MICROSECONDS)),
            "probesize": "2000000",
        }
        io_timeout = str(round(config.read_timeout * _MICROSECONDS))
        listen_seconds = str(max(1, round(config.listen_timeout)))
        listening = target.mode == "listen"
        if target.scheme in ("rtmp", "rtmps"):
            options |= {"listen": "1", "timeout": listen_seconds} if listening else {}
            options |= {} if listening else {"rw_timeout": io_timeout}
            if not listening and target.host:
                options["rtmp_tcurl"] = _tcurl(target)
        elif target.scheme == "rtsp":
            options |= {"rtsp_transport": "tcp", "timeout": io_timeout}
            if listening:
                options |= {"rtsp_flags": "listen", "listen_timeout": listen_seconds}
        elif target.scheme == "srt":
            options |= {"mode": "listener" if listening else "caller", "rw_timeout": io_timeout}
        elif target.scheme == "udp":
            # A reader that falls behind loses datagrams rather than dying on a full buffer.
            options |= {"fifo_size": "278528", "overrun_nonfatal": "1", "buffer_size": "4194304"}
            if target.local_address:
                options["localaddr"] = target.local_address
        elif target.scheme in ("http", "https"):
            # Keep-alive reuse needs FFmpeg's own HTTP context, which vigil's opener replaces.
            options["http_persistent"] = "0"
        return options

    def _read(self, container: av.container.InputContainer) -> str:
        video = (
            container.streams.video[0] if self.config.video and container.streams.video else None
        )
        audio = (
            container.streams.audio[0] if self.config.audio and container.streams.audio else None
        )
        if video is None and audio is None:
            raise OSError("the stream has no video or audio")
        if video is not None:
            configure_decoder(video, self.config)
        layout = Layout(video, audio)
        self._describe_streams(video, audio)
        start = container.start_time
        self._clock.connect(start / _MICROSECONDS if start is not None else None)
        self._lag.reset()
        self._pacer.reset()
        self._windower.reset()
        selected = [s for s in (video, audio) if s is not None]
        bad_reads = 0
        while True:
            try:
                for packet in container.demux(selected):
                    if self._stopping.is_set():
                        return "stopped"
                    self._packet(packet, layout)
                    bad_reads = 0
                return "eof"
            except av.InvalidDataError:
                # The demuxer resyncs on the next read; a run of them is a broken connection.
                self.stats.decode_errors += 1
                bad_reads += 1
                if bad_reads > self.config.max_bad_reads:
                    raise

    def _packet(self, packet: av.Packet[Any], layout: Layout) -> None:
        stamp = packet.dts if packet.dts is not None else packet.pts
        if packet.size == 0 or stamp is None or packet.time_base is None:
            self._decode(packet)  # the flush packets at the end (or an untimed one)
            return
        base = packet.time_base
        t = self._clock.packet(float(stamp * base))
        pts = t + float((packet.pts - stamp) * base) if packet.pts is not None else t
        if not self._live_now:
            self._live_now = self._ever_live = True
            self._set_state("live", "")
        if self.target.mode == "file" and self.config.realtime:
            wait = self._pacer.delay(t)
            if wait > 0 and self._stopping.wait(wait):
                return
        self._lag.observe(t)
        self.stats.packets += 1
        self.stats.corrupt += packet.is_corrupt
        kind: Kind = "video" if packet.stream.type == "video" else "audio"
        duration = float(packet.duration * base) if packet.duration else 0.0
        self._ring.add(Kept(kind, bytes(packet), t, pts, duration, packet.is_keyframe, layout))
        self._decode(packet)

    def _decode(self, packet: av.Packet[Any]) -> None:
        try:
            frames = packet.decode()
        except (av.FFmpegError, ValueError):
            self.stats.decode_errors += 1
            return
        for frame in frames:
            try:
                if isinstance(frame, av.VideoFrame):
                    self._video_frame(frame)
                elif isinstance(frame, av.AudioFrame):
                    self._audio_frame(frame)
            except (av.FFmpegError, ValueError):
                self.stats.decode_errors += 1

    def _video_frame(self, frame: av.VideoFrame) -> None:
        self.stats.frames_decoded += 1
        self.stats.corrupt += frame.is_corrupt
        if frame.time is None:
            return
        t = self._clock.frame(frame.time)
        if self._sampler.take(t):
            rgb = to_rgb(frame, self.config.max_side)
            self._queue.put(VideoSample(self.stream_id, t, rgb, time.monotonic()))
            self.stats.video_samples += 1

    def _audio_frame(self, frame: av.AudioFrame) -> None:
        if frame.time is None:
            return
        for start, samples in self._windower.push(frame, self._clock.frame(frame.time)):
            self._queue.put(AudioWindow(self.stream_id, start, samples, time.monotonic()))
            self.stats.audio_windows += 1

    # -- state ---------------------------------------------------------------------------------

    def _set_state(self, state: State, reason: str) -> None:
        with self._lock:
            if self._state in ("ended", "failed") or (state, reason) == (self._state, self._reason):
                return
            self._state, self._reason, self._since = state, reason, time.time()
        log.info(
            "live.ingest_state",
            stream=self.stream_id,
            url=self.redacted_url,
            state=state,
            reason=reason,
            t=round(self._clock.t, 2),
        )

    def _finish(self, state: Literal["ended", "failed"], reason: str) -> None:
        self._set_state(state, reason)
        if self._own_queue and state == "ended" and reason == "stopped":
            self._queue.close()

    def _describe(self, exc: BaseException) -> str:
        """An error in words, without the URL (FFmpeg's messages quote it, credentials and
        all)."""
        if isinstance(exc, av.ExitError):
            message = "timed out waiting for data"
        elif isinstance(exc, av.FFmpegError):
            message = str(exc.strerror or type(exc).__name__)
        else:
            message = f"{type(exc).__name__}: {exc}"
        return scrub(message, self._url, self.target.url)

    def _describe_streams(self, video: av.VideoStream | None, audio: av.AudioStream | None) -> None:
        info: dict[str, str] = {}
        if video is not None:
            info["video"] = f"{video.codec_context.name} {video.width}x{video.height}"
        if audio is not None:
            info["audio"] = f"{audio.codec_context.name} {audio.sample_rate} Hz"
        with self._lock:
            self._info = info


def _tcurl(target: StreamTarget) -> str:
    """The RTMP tcUrl with the host's name rather than the pinned address: servers route
    applications by it."""
    parts = urlsplit(target.url)
    app = parts.path.lstrip("/").split("/", 1)[0]
    port = f":{parts.port}" if parts.port else ""
    return f"{target.scheme}://{target.host}{port}/{app}"
