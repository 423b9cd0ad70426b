"""One watched stream: samples → evidence → fusion → what each level does.

The analysis thread never waits on the database or on hashing: level changes are handed to the
stream's responder thread, which (in this order, because a reviewer should see the alert as
soon as possible and re-uploads must be caught from the first minute):

1. at ``alert``: writes the keyframes and the plot to the evidence store and opens an alert in
   the review queue;
2. at ``fingerprint_at`` (default ``alert``): cuts the clip from some seconds before the onset,
   hashes it (vPDQ, MD5, SHA-256) and the keyframes (PDQ) into the incident bank, attaches the
   clip to the alert, and keeps adding a new segment every ``fingerprint_every_seconds`` while
   the incident lasts;
3. at ``critical``: escalates the alert; a stream cut is queued automatically only if the
   policy says so (``auto_cut_at``), otherwise it waits for a reviewer's decision.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import structlog
from sqlalchemy.orm import Session

from vigil import actions, audit, review
from vigil.live.evidence.base import (
    AudioEvidenceSource,
    Evidence,
    EvidenceFactory,
    VideoEvidenceSource,
)
from vigil.live.fusion import LEVELS, CusumFusion, FusionConfig, Level, LevelChange, Window
from vigil.live.incident import IncidentBank
from vigil.live.packet import explain, render_plot, select_keyframes, write_jpeg
from vigil.live.samples import AudioWindow, VideoSample
from vigil.store import Database
from vigil.store.evidence import store

log = structlog.get_logger(__name__)
ACTOR = "system:live"
SampleT = TypeVar("SampleT", VideoSample, AudioWindow)


class Feed(Protocol):
    """What the session needs from ingest (:class:`vigil.live.ingest.StreamReader`)."""

    def samples(self) -> Iterator[VideoSample | AudioWindow]:
        """Samples until the stream ends or :meth:`stop` is called."""
        ...

    def write_clip(self, path: Path, start: float, end: float) -> Path:
        """The kept packets between stream times ``start`` and ``end``, remuxed into ``path``
        (the suffix may be changed to the container actually written)."""
        ...

    def status(self) -> dict[str, Any]: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class StreamSpec:
    url: str
    name: str = ""
    #: Where the stream runs and the platform's id for it: what a stream cut names.
    platform: str = ""
    content_ref: str = ""
    #: What the platform says about the stream (category, title, tags).
    metadata: dict[str, str] = field(default_factory=dict)
    #: Viewers, when known: the review queue weighs reach.
    reach: int = 0
    #: A file is played at the pace of its timestamps, as if live; False reads it as fast as
    #: the analysis keeps up (evaluation). Live URLs arrive at their own pace either way.
    realtime: bool = True


@dataclass(frozen=True)
class LivePolicy:
    """What each level does. Nothing adverse to a person happens without a human decision,
    unless ``auto_cut_at`` explicitly allows an automatic stream cut."""

    alert_at: Level = "alert"
    fingerprint_at: Level = "alert"
    escalate_at: Level = "critical"
    auto_cut_at: Level | None = None
    severity: dict[str, int] = field(
        default_factory=lambda: {"watch": 6, "alert": 9, "critical": 10}
    )
    #: The clip and fingerprints start this long before the evidence began.
    pre_roll_seconds: float = 10.0
    keyframes: int = 6
    fingerprint_every_seconds: float = 15.0
    incident_bank: str = "live-incidents"


def reached(level: Level, threshold: Level | None) -> bool:
    return threshold is not None and LEVELS.index(level) >= LEVELS.index(threshold)


@dataclass
class Incident:
    number: int
    onset: float
    level: Level = "normal"
    alert_id: int | None = None
    fingerprinted_until: float | None = None
    entry_ids: list[int] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Services:
    """What the responder writes to: the store, the incident bank, the review queue."""

    db: Database
    home: Path
    incident_bank: IncidentBank
    weights: review.PriorityWeights


class StreamSession:
    def __init__(
        self,
        session_id: str,
        spec: StreamSpec,
        feed: Feed,
        factories: Sequence[EvidenceFactory],
        services: Services,
        *,
        policy: LivePolicy | None = None,
        fusion: FusionConfig | None = None,
        redacted_url: str = "",
        on_end: Callable[[StreamSession], None] | None = None,
        incident_base: int = 0,
        fence: Callable[[Session], None] | None = None,
    ) -> None:
        self.id = session_id
        self.spec = spec
        self.feed = feed
        self.policy = policy or LivePolicy()
        self.fusion = CusumFusion(fusion)
        self.services = services
        self.redacted_url = redacted_url or spec.url
        #: Incidents are numbered on from here: a stream taken over from a worker that died
        #: keeps the numbers (and so the alerts' keys) its earlier incidents had.
        self._incident_base = incident_base
        #: Called first in each transaction that writes to the review queue: raises when this
        #: process no longer holds the stream (:meth:`vigil.live.registry.StreamRegistry.fence`).
        self._fence = fence
        self._video: list[VideoEvidenceSource] = []
        self._audio: list[AudioEvidenceSource] = []
        for factory in factories:
            source = factory(session_id)
            if source.modality == "video":
                self._video.append(source)
            else:
                self._audio.append(source)
        self._on_end = on_end
        self._lock = threading.Lock()
        self.latest: dict[str, Evidence] = {}
        self.source_errors: dict[str, int] = {}
        self.incidents: list[Incident] = []
        keep = max(4, int(self.policy.pre_roll_seconds + 30) * 4)
        #: Recent frames with the visual evidence they raised (keyframes pick the strongest).
        self._frames: deque[tuple[VideoSample, float]] = deque(maxlen=keep)
        self.samples = 0
        self.last_t = 0.0
        self.last_lag = 0.0
        self.finished: float | None = None
        self.error: str | None = None
        self._abandoned = threading.Event()
        self._responder = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"live-{session_id}")
        self._thread = threading.Thread(target=self._run, name=f"live-{session_id}", daemon=True)

    # -- the analysis thread ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop reading; the samples already read are analysed and an open incident's last
        footage fingerprinted."""
        self.feed.stop()

    def abandon(self) -> None:
        """Stop at once, leaving the samples already read: a live worker whose lease ran out
        must write nothing more for a stream that may already be another worker's."""
        self._abandoned.set()
        self.feed.stop()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._responder.shutdown(wait=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            for sample in self.feed.samples():
                if self._abandoned.is_set():
                    break
                self._analyse(sample)
            if not self._abandoned.is_set():
                self._close()
        except Exception as exc:  # the stream ends, the process goes on
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("live.session_failed", session=self.id)
        finally:
            self.finished = time.time()
            if self._on_end is not None:
                self._on_end(self)

    def _analyse(self, sample: VideoSample | AudioWindow) -> None:
        self.samples += 1
        self.last_t = max(self.last_t, sample.t)
        self.last_lag = time.monotonic() - sample.received
        changes: list[LevelChange] = []
        for evidence in self._observe(sample):
            with self._lock:
                self.latest[evidence.source] = evidence
            changes += self.fusion.add(evidence)
        changes += self.fusion.advance(sample.t)
        for change in changes:
            self._on_change(change)
        self._maybe_fingerprint_more()

    def _observe(self, sample: VideoSample | AudioWindow) -> list[Evidence]:
        found: list[Evidence] = []
        if isinstance(sample, VideoSample):
            for video in self._video:
                found += self._safely(video.name, video.observe, sample)
            self._frames.append((sample, sum(e.llr for e in found if e.llr > 0)))
        else:
            for audio in self._audio:
                found += self._safely(audio.name, audio.observe, sample)
        return found

    def _safely(
        self, name: str, observe: Callable[[SampleT], Evidence | None], sample: SampleT
    ) -> list[Evidence]:
        """A source that fails on one sample is counted and skipped, never fatal."""
        try:
            evidence = observe(sample)
        except Exception:
            count = self.source_errors.get(name, 0) + 1
            self.source_errors[name] = count
            if count == 1:
                log.exception("live.source_failed", session=self.id, source=name)
            return []
        return [] if evidence is None else [evidence]

    def _on_change(self, change: LevelChange) -> None:
        incident = self._incident(change)
        incident.level = change.level
        event: dict[str, Any] = {
            "level": change.level,
            "t": change.window.start + 1.0,
            "cusum": change.window.statistic,
            "wall": time.time(),
            "monotonic": time.monotonic(),
            "lag": self.last_lag,
        }
        incident.events.append(event)
        log.info(
            "live.level",
            session=self.id,
            level=change.level,
            incident=incident.number,
            t=round(change.window.start + 1.0, 1),
        )
        frames = self._incident_frames(incident)
        windows = list(self.fusion.history)
        contributions = self.fusion.contributions()
        self._responder.submit(
            self._respond, change, incident, event, frames, windows, contributions
        )

    def _incident(self, change: LevelChange) -> Incident:
        number = self._incident_base + change.incident
        if not self.incidents or self.incidents[-1].number != number:
            self.incidents.append(Incident(number, change.onset))
        return self.incidents[-1]

    def _incident_frames(self, incident: Incident) -> list[VideoSample]:
        since = incident.onset - self.policy.pre_roll_seconds
        recent = [(frame, visual) for frame, visual in self._frames if frame.t >= since]
        frames = [frame for frame, _ in recent]
        strength = {frame.t: visual for frame, visual in recent}
        return select_keyframes(frames, strength, self.policy.keyframes)

    def _maybe_fingerprint_more(self) -> None:
        if not self.incidents:
            return
        incident = self.incidents[-1]
        until = incident.fingerprinted_until
        if (
            until is not None
            and self.fusion.level != "normal"
            and self.last_t - until >= self.policy.fingerprint_every_seconds
        ):
            incident.fingerprinted_until = self.last_t
            self._responder.submit(self._fingerprint, incident, until, self.last_t, [])

    def _close(self) -> None:
        """The stream ended: fingerprint what is left of an open incident."""
        if self.incidents and self.incidents[-1].fingerprinted_until is not None:
            incident = self.incidents[-1]
            start = incident.fingerprinted_until
            assert start is not None
            if self.last_t > start:
                incident.fingerprinted_until = self.last_t
                self._responder.submit(self._fingerprint, incident, start, self.last_t, [])

    # -- the responder thread -----------------------------------------------------------------

    def _respond(
        self,
        change: LevelChange,
        incident: Incident,
        event: dict[str, Any],
        frames: list[VideoSample],
        windows: list[Window],
        contributions: dict[str, float],
    ) -> None:
        try:
            with tempfile.TemporaryDirectory(prefix="vigil-live-") as tmp:
                folder = Path(tmp)
                keyframes = [
                    write_jpeg(frame.rgb, folder / f"keyframe-{frame.t:09.2f}.jpg")
                    for frame in frames
                ]
                why = explain(change, contributions, self.fusion.config)
                if reached(change.level, self.policy.alert_at):
                    self._alert(change, incident, folder, keyframes, windows, why)
                    event["alert_id"] = incident.alert_id
                    event["alerted_wall"] = time.time()
                    event["alerted_monotonic"] = time.monotonic()
                if (
                    reached(change.level, self.policy.fingerprint_at)
                    and incident.fingerprinted_until is None
                ):
                    start = incident.onset - self.policy.pre_roll_seconds
                    incident.fingerprinted_until = max(self.last_t, change.window.start + 1.0)
                    self._fingerprint(incident, start, incident.fingerprinted_until, keyframes)
                if reached(change.level, self.policy.auto_cut_at) and incident.alert_id:
                    self._auto_cut(incident)
        except Exception:
            log.exception("live.respond_failed", session=self.id, incident=incident.number)

    def _alert(
        self,
        change: LevelChange,
        incident: Incident,
        folder: Path,
        keyframes: list[Path],
        windows: list[Window],
        why: str,
    ) -> None:
        plot = render_plot(windows[-180:], self.fusion.config, change.onset, folder / "plot.png")
        items = [self._stored(path, "keyframe") for path in keyframes]
        items.append(self._stored(plot, "plot"))
        severity = self.policy.severity.get(change.level, 9)
        likelihood = min(0.99, 0.5 + change.window.statistic / (4 * self.fusion.config.critical))
        with self._writing() as session:
            if incident.alert_id is None:
                alert, _ = review.create_alert(
                    session,
                    review.NewAlert(
                        dedupe_key=f"live:{self.id}:{incident.number}",
                        source="live",
                        content_kind="stream",
                        content_ref=self.spec.content_ref or self.id,
                        platform=self.spec.platform,
                        url=self.redacted_url,
                        signals=[{"stream": self.id, "incident": incident.number}],
                        evidence=items,
                        explanation=why,
                        score=change.window.statistic,
                        severity=severity,
                        likelihood=likelihood,
                        reach=self.spec.reach,
                    ),
                    weights=self.services.weights,
                    actor=ACTOR,
                )
                incident.alert_id = alert.id
            else:
                review.update_detection(
                    session,
                    incident.alert_id,
                    review.DetectionUpdate(
                        severity=severity,
                        likelihood=likelihood,
                        score=change.window.statistic,
                        explanation=why,
                        evidence=items,
                        escalate=reached(change.level, self.policy.escalate_at),
                    ),
                    weights=self.services.weights,
                    actor=ACTOR,
                )

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with self.services.db.session() as session:
            if self._fence is not None:
                self._fence(session)
            yield session

    def _stored(self, path: Path, kind: str) -> dict[str, Any]:
        stored = store(self.services.home, path)
        return {
            "type": "upload",
            "role": kind,
            "name": stored.name,
            "sha256": stored.sha256,
            "media_type": stored.media_type,
            "size": stored.size,
            "filename": path.name,
            "stream": self.id,
        }

    def _fingerprint(
        self, incident: Incident, start: float, end: float, keyframes: list[Path]
    ) -> None:
        try:
            with tempfile.TemporaryDirectory(prefix="vigil-clip-") as tmp:
                clip = self.feed.write_clip(
                    Path(tmp) / f"clip-{start:.0f}-{end:.0f}.mp4", start, end
                )
                labels = ["live-incident", f"stream:{self.id}", f"level:{incident.level}"]
                added = self.services.incident_bank.add(
                    self.id, incident.number, [clip, *keyframes], labels
                )
                incident.entry_ids += added.entry_ids
                item = self._stored(clip, "clip")
                incident.events.append(
                    {
                        "fingerprinted": [start, end],
                        "entries": list(added.entry_ids),
                        "failed": list(added.failed),
                        "wall": time.time(),
                    }
                )
                if incident.alert_id is not None:
                    with self._writing() as session:
                        review.update_detection(
                            session,
                            incident.alert_id,
                            review.DetectionUpdate(evidence=[item]),
                            weights=self.services.weights,
                            actor=ACTOR,
                        )
        except Exception:
            log.exception("live.fingerprint_failed", session=self.id, incident=incident.number)

    def _auto_cut(self, incident: Incident) -> None:
        assert incident.alert_id is not None
        with self._writing() as session:
            alert = review.get_alert(session, incident.alert_id)
            rows = actions.enqueue(
                session,
                "stream_cut",
                alert_id=alert.id,
                decision_id=None,
                payload={**review.content_payload(alert), "stream": self.id},
                automatic=True,
            )
            audit.record(
                session,
                ACTOR,
                "action.automatic",
                "alert",
                alert.id,
                {
                    "kind": "stream_cut",
                    "policy": f"auto_cut_at={self.policy.auto_cut_at}",
                    "action_ids": [row.id for row in rows],
                },
            )

    # -- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            latest = {
                name: {"t": round(e.t, 2), "score": round(e.score, 3), "llr": round(e.llr, 3)}
                for name, e in self.latest.items()
            }
        return {
            "id": self.id,
            "name": self.spec.name,
            "url": self.redacted_url,
            "platform": self.spec.platform,
            "content_ref": self.spec.content_ref,
            "running": self.running,
            "ingest": self.feed.status(),
            "t": round(self.last_t, 2),
            "lag_seconds": round(self.last_lag, 3),
            "samples": self.samples,
            "level": self.fusion.level,
            "cusum": round(self.fusion.statistic, 3),
            "evidence": latest,
            "source_errors": dict(self.source_errors),
            "incidents": [
                {
                    "number": i.number,
                    "onset": i.onset,
                    "level": i.level,
                    "alert_id": i.alert_id,
                    "fingerprints": len(i.entry_ids),
                }
                for i in self.incidents
            ],
            "error": self.error,
        }

    def trace(self, seconds: float = 120.0) -> list[dict[str, object]]:
        windows = list(self.fusion.history)
        if not windows:
            return []
        since = windows[-1].start - seconds
        return [w.as_json() for w in windows if w.start >= since]
