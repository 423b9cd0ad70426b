"""Scoring live detection on labelled streams (``vigil live eval run``).

Each stream (a :class:`~vigil.live.groundtruth.Manifest`: synthetic from
:mod:`vigil.live.synth`, or a platform's own labelled clips) goes through the real pipeline,
ingest included, in one of two modes:

- ``live``: played as a real live stream (MPEG-TS over UDP on localhost, at real time, by
  :mod:`vigil.live.playout`); measures the wall-clock latency from the attack's onset to the
  alert being in the review queue;
- ``fast``: the file read as fast as the analysis keeps up; measures the same detections and
  false alarms in stream time, so that many stream-hours fit in an evaluation.

Reported: detection rate and delay (seconds from onset to alert) on attack streams, false alarms
per stream-hour on benign and hard-negative streams (and before the onset on attack streams),
the alert threshold that a target false-alarm rate would need on these streams, and each
source's mean ratio inside its cue windows vs. outside them.
"""

from __future__ import annotations

import json
import socket
import statistics
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from vigil.hashing import KnownContent
from vigil.live.fusion import FusionConfig, Window, calibrate, poisson_upper_95, replay
from vigil.live.groundtruth import Manifest
from vigil.live.monitor import LiveMonitor
from vigil.live.playout import play
from vigil.live.session import StreamSession, StreamSpec
from vigil.live.settings import LiveSettings
from vigil.net import free_local_port

Mode = Literal["live", "fast"]

#: Which sources each kind of cue should move.
CUE_SOURCES: dict[str, tuple[str, ...]] = {
    "weapon": ("weapon",),
    "gunshot": ("gunshot",),
    "explosion": ("gunshot",),
    "walk": ("ego_motion",),
    "hud": ("hud", "gametext"),
    "logo": ("hud",),
}


@dataclass(frozen=True)
class StreamResult:
    manifest: Manifest
    #: Stream times at which an incident reached ``alert``.
    alerts: tuple[float, ...]
    #: Seconds from onset to the first alert at or after it (attack streams that were caught).
    delay: float | None
    #: Wall-clock seconds from the onset going out to the alert being written (live mode).
    latency: float | None
    false_alarms: int
    #: Stream seconds in which an alert would be a false alarm.
    negative_seconds: float
    windows: tuple[Window, ...]
    error: str | None = None

    @property
    def detected(self) -> bool:
        return self.delay is not None


@dataclass(frozen=True)
class Report:
    mode: Mode
    results: tuple[StreamResult, ...]
    target_per_hour: float
    config: FusionConfig
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> dict[str, object]:
        attacks = [r for r in self.results if r.manifest.positive]
        delays = sorted(r.delay for r in attacks if r.delay is not None)
        latencies = sorted(r.latency for r in attacks if r.latency is not None)
        negative_hours = sum(r.negative_seconds for r in self.results) / 3600.0
        false_alarms = sum(r.false_alarms for r in self.results)
        by_category: dict[str, dict[str, float]] = {}
        for category in ("benign", "hard_negative", "attack"):
            chosen = [r for r in self.results if r.manifest.category == category]
            hours = sum(r.negative_seconds for r in chosen) / 3600.0
            alarms = sum(r.false_alarms for r in chosen)
            by_category[category] = {
                "streams": len(chosen),
                "negative_hours": round(hours, 4),
                "false_alarms": alarms,
                "per_hour": round(alarms / hours, 2) if hours else 0.0,
            }
        return {
            "mode": self.mode,
            "streams": len(self.results),
            "attack_streams": len(attacks),
            "detected": len(delays),
            "detection_rate": round(len(delays) / len(attacks), 3) if attacks else None,
            "delay_p50_s": _percentile(delays, 50),
            "delay_p95_s": _percentile(delays, 95),
            "latency_p50_s": _percentile(latencies, 50),
            "latency_p95_s": _percentile(latencies, 95),
            "false_alarms": false_alarms,
            "negative_hours": round(negative_hours, 4),
            "false_alarms_per_hour": round(false_alarms / negative_hours, 2)
            if negative_hours
            else None,
            "false_alarms_per_hour_upper_95": round(
                poisson_upper_95(false_alarms) / negative_hours, 2
            )
            if negative_hours
            else None,
            "by_category": by_category,
            "alert_threshold": self.config.alert,
            "calibration": self.calibration(),
            "errors": [r.manifest.video for r in self.results if r.error],
        }

    def calibration(self) -> dict[str, object] | None:
        """The alert threshold these benign/hard-negative streams call for at the target."""
        traces = [[w.llr for w in r.windows] for r in self.results if not r.manifest.positive]
        if not any(traces):
            return None
        return calibrate(traces, self.target_per_hour, self.config).as_json()

    def contributions(self) -> dict[str, dict[str, float | None]]:
        """Each source's mean per-second ratio inside its cues' windows and outside them."""
        inside: dict[str, list[float]] = {}
        outside: dict[str, list[float]] = {}
        for result in self.results:
            for window in result.windows:
                for source, value in window.llr.items():
                    cued = _cued(result.manifest, source, window.start + 0.5)
                    (inside if cued else outside).setdefault(source, []).append(value)
        sources = sorted(set(inside) | set(outside))
        return {
            source: {
                "inside": _mean(inside.get(source, [])),
                "outside": _mean(outside.get(source, [])),
            }
            for source in sources
        }

    def markdown(self) -> str:
        summary = self.summary()
        lines = [
            f"Mode: {self.mode}. Streams: {summary['streams']} "
            f"({summary['attack_streams']} attacks). Synthetic unless the manifests say otherwise.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| attacks detected | {summary['detected']}/{summary['attack_streams']} |",
            f"| delay onset → alert, p50 / p95 (stream s) | {summary['delay_p50_s']} / "
            f"{summary['delay_p95_s']} |",
        ]
        if self.mode == "live":
            lines.append(
                f"| latency onset → alert in queue, p50 / p95 (wall s) | "
                f"{summary['latency_p50_s']} / {summary['latency_p95_s']} |"
            )
        lines += [
            f"| false alarms / negative stream-hours | {summary['false_alarms']} / "
            f"{summary['negative_hours']} |",
            f"| false alarms / hour, 95 % upper bound | "
            f"{summary['false_alarms_per_hour_upper_95']} |",
            f"| alert threshold used | {self.config.alert} (drift {self.config.drift}) |",
            "",
            "| category | streams | negative hours | false alarms | per hour |",
            "|---|---|---|---|---|",
        ]
        by_category = summary["by_category"]
        assert isinstance(by_category, dict)
        for category, row in by_category.items():
            lines.append(
                f"| {category} | {row['streams']} | {row['negative_hours']} | "
                f"{row['false_alarms']} | {row['per_hour']} |"
            )
        lines += ["", "| source | mean LLR inside its cues | outside |", "|---|---|---|"]
        for source, row in self.contributions().items():
            lines.append(f"| {source} | {row['inside']} | {row['outside']} |")
        lines += [
            "",
            "| stream | category | onset | alerts at (s) | delay (s) |",
            "|---|---|---|---|---|",
        ]
        for result in self.results:
            manifest = result.manifest
            alerts = ", ".join(f"{t:.0f}" for t in result.alerts) or "-"
            lines.append(
                f"| {Path(manifest.video).name} | {manifest.category} | "
                f"{manifest.onset_s if manifest.onset_s is not None else '-'} | {alerts} | "
                f"{result.delay if result.delay is not None else '-'} |"
                + (f" error: {result.error}" if result.error else "")
            )
        if self.notes:
            lines += ["", *self.notes]
        return "\n".join(lines) + "\n"


def _cued(manifest: Manifest, source: str, t: float) -> bool:
    return any(
        onset <= t < offset
        for kind, sources in CUE_SOURCES.items()
        if source in sources
        for onset, offset in manifest.cue_windows(kind)
    )


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def score(
    manifest: Manifest,
    session: StreamSession,
    onset_wall: float | None,
) -> StreamResult:
    """Alerts of a finished session against the manifest's ground truth."""
    alerts = tuple(
        float(event["t"])
        for incident in session.incidents
        for event in incident.events
        if event.get("level") == "alert"
        or (event.get("level") == "critical" and not _had_alert(incident.events))
    )
    result = _scored(manifest, alerts, tuple(session.fusion.history), session.error)
    if result.delay is None or onset_wall is None or manifest.onset_s is None:
        return result
    alerted = _alerted_monotonic(session, manifest.onset_s + result.delay)
    latency = round(alerted - onset_wall, 2) if alerted is not None else None
    return replace(result, latency=latency)


def _scored(
    manifest: Manifest, alerts: tuple[float, ...], windows: tuple[Window, ...], error: str | None
) -> StreamResult:
    end = windows[-1].start + 1.0 if windows else 0.0
    onset = manifest.onset_s
    caught = [t for t in alerts if onset is not None and t >= onset]
    delay = round(caught[0] - onset, 2) if caught and onset is not None else None
    negative_end = end if onset is None else min(onset, end)
    false_alarms = sum(1 for t in alerts if onset is None or t < onset)
    return StreamResult(manifest, alerts, delay, None, false_alarms, negative_end, windows, error)


def write_traces(report: Report, path: Path) -> Path:
    """Each stream's manifest and per-second source ratios as JSON lines, so that other fusion
    settings can be scored (:func:`rescore`) without decoding anything again."""
    with path.open("w", encoding="utf-8") as out:
        for result in report.results:
            record = {
                "manifest": result.manifest.model_dump(mode="json"),
                "llr": [window.llr for window in result.windows],
                "error": result.error,
            }
            out.write(json.dumps(record) + "\n")
    return path


def rescore(path: Path, config: FusionConfig, *, target_per_hour: float = 0.1) -> Report:
    """Score recorded traces (:func:`write_traces`) under another fusion configuration."""
    results = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
            manifest = Manifest.model_validate(record["manifest"])
            llrs = [{str(k): float(v) for k, v in w.items()} for w in record["llr"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}:{number}: not a trace record: {exc}") from None
        windows = tuple(replay(llrs, config))
        results.append(
            _scored(manifest, alert_times(windows, config), windows, record.get("error"))
        )
    return Report(
        "fast",
        tuple(results),
        target_per_hour,
        config,
        notes=(f"Rescored from {path.name} (recorded per-second ratios, no decoding).",),
    )


def alert_times(windows: Sequence[Window], config: FusionConfig) -> tuple[float, ...]:
    """Stream times at which an incident first reached ``alert`` (the session's event times)."""
    alerted: set[int] = set()
    times = []
    for window in windows:
        if window.statistic >= config.alert and window.incident not in alerted:
            alerted.add(window.incident)
            times.append(window.start + 1.0)
    return tuple(times)


def _had_alert(events: Sequence[dict[str, object]]) -> bool:
    return any(event.get("level") == "alert" for event in events)


def _alerted_monotonic(session: StreamSession, t: float) -> float | None:
    for incident in session.incidents:
        for event in incident.events:
            if event.get("t") == t and "alerted_monotonic" in event:
                return float(str(event["alerted_monotonic"]))
    return None


def _run_one(monitor: LiveMonitor, manifest: Manifest, mode: Mode) -> StreamResult:
    name = Path(manifest.video).stem
    if mode == "fast":
        session = monitor.watch(StreamSpec(manifest.video, name=name, realtime=False))
        session.join()
        return score(manifest, session, None)
    port = free_local_port(socket.SOCK_DGRAM)
    session = monitor.watch(StreamSpec(f"udp://@:{port}", name=name))
    with play(Path(manifest.video), f"udp://127.0.0.1:{port}", delay_s=1.0) as playout:
        started = playout.wait_started(timeout=30)
        playout.wait(timeout=(manifest.duration_s or 600) + 60)
    # The reader ends the session once the stream has been silent past its reconnect budget.
    session.join(timeout=120)
    if session.running:
        session.stop()
        session.join(timeout=30)
    onset_wall = (
        started + manifest.onset_s if started is not None and manifest.onset_s is not None else None
    )
    return score(manifest, session, onset_wall)


def _run_safely(monitor: LiveMonitor, manifest: Manifest, mode: Mode) -> StreamResult:
    """One stream's result; a stream that cannot be run is reported, the rest go on."""
    try:
        return _run_one(monitor, manifest, mode)
    except Exception as exc:
        return StreamResult(manifest, (), None, None, 0, 0.0, (), f"{type(exc).__name__}: {exc}")


def evaluate(
    manifests: Sequence[Manifest],
    settings: LiveSettings,
    *,
    mode: Mode = "fast",
    concurrency: int = 2,
    target_per_hour: float = 0.1,
    progress: Callable[[StreamResult], None] | None = None,
) -> Report:
    """Run every stream through a fresh store (alerts of an evaluation never reach the real
    review queue) and score it."""
    with tempfile.TemporaryDirectory(prefix="vigil-eval-") as home:
        isolated = settings.model_copy(
            update={
                "home": Path(home),
                "database_url": None,
                "live_allow_files": True,
                # Loopback is where the player sends from; never allowed outside an evaluation.
                "live_url_allow": [*settings.live_url_allow, "127.0.0.0/8"],
                "live_reconnect_max_seconds": 3.0,
                "live_match_incidents": False,
                "live_max_streams": max(settings.live_max_streams, concurrency),
            }
        )
        isolated = LiveSettings.model_validate(isolated.model_dump())
        known = KnownContent(isolated)
        monitor = LiveMonitor(known, isolated)
        results: list[StreamResult] = []
        try:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                for result in pool.map(lambda m: _run_safely(monitor, m, mode), manifests):
                    results.append(result)
                    if progress is not None:
                        progress(result)
        finally:
            monitor.close()
            known.close()
    return Report(
        mode,
        tuple(results),
        target_per_hour,
        settings.fusion(),
        notes=("Streams marked synthetic are generated from ../shared/data; see the manifests.",),
    )
