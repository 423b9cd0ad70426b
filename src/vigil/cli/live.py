"""``vigil watch URL...``: watch live streams (or files played as if live) from a terminal.

Prints a status table once a second (or, with ``--json``, one JSON line per level change and a
final status per stream); alerts go to the review queue as with ``vigil serve``. Ctrl-C stops
every stream cleanly (open incidents are fingerprinted before exit).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.live import Live
from rich.table import Table

from vigil.cli.common import emit_json, stderr, stdout
from vigil.cli.users import cli_actor
from vigil.config import get_settings
from vigil.hashing import KnownContent
from vigil.live import LiveMonitor, LiveSettings, StreamSession, StreamSpec, StreamUrlRefused

if TYPE_CHECKING:
    from vigil.live.evaluation import Report

_LEVEL_STYLE = {
    "normal": "green",
    "watch": "yellow",
    "alert": "bold red",
    "critical": "bold magenta",
}
live_app = typer.Typer(help="Live-stream detection: evaluation.", no_args_is_help=True)
eval_app = typer.Typer(
    help="Build labelled test streams and measure detection delay and false alarms.",
    no_args_is_help=True,
)
live_app.add_typer(eval_app, name="eval")


def watch_command(
    urls: list[str] = typer.Argument(..., help="Stream URLs or files (played as if live)."),
    fps: float | None = typer.Option(None, help="Video frames sampled per second (default 2)."),
    realtime: bool = typer.Option(
        True, help="Play files at the pace of their timestamps; --no-realtime reads them fast."
    ),
    platform: str = typer.Option("", help="Platform the streams run on."),
    category: str = typer.Option("", help="The platform's category for the streams."),
    title: str = typer.Option("", help="The streams' title."),
    duration: float | None = typer.Option(None, help="Stop after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """Watch streams: evidence is fused over time, alerts go to the review queue, and incident
    footage is fingerprinted into the incident bank at once."""
    base = LiveSettings.of(get_settings())
    # The operator names local files on their own machine: unlike the API, files are allowed.
    settings = base.model_copy(
        update={"live_allow_files": True, **({"live_fps": fps} if fps else {})}
    )
    metadata = {key: value for key, value in (("category", category), ("title", title)) if value}
    known = KnownContent(settings)
    monitor = LiveMonitor(known, settings)
    try:
        sessions = _start(monitor, urls, platform, metadata, realtime)
        if as_json:
            _follow_json(sessions, duration)
        else:
            _follow_table(sessions, duration)
    except KeyboardInterrupt:
        stderr.print("stopping...")
    finally:
        monitor.close()
        if as_json:
            for session in monitor.sessions():
                emit_json({"event": "final", **session.status()})
        known.close()


def _start(
    monitor: LiveMonitor,
    urls: Sequence[str],
    platform: str,
    metadata: dict[str, str],
    realtime: bool,
) -> list[StreamSession]:
    sessions = []
    for url in urls:
        spec = StreamSpec(url, name=url, platform=platform, metadata=metadata, realtime=realtime)
        try:
            sessions.append(monitor.watch(spec, actor=cli_actor()))
        except StreamUrlRefused as exc:
            stderr.print(f"[red]refused:[/red] {exc}")
    if not sessions:
        raise typer.Exit(2)
    return sessions


def _running(sessions: Sequence[StreamSession], started: float, duration: float | None) -> bool:
    within = duration is None or time.monotonic() - started < duration
    return within and any(session.running for session in sessions)


def _follow_json(sessions: Sequence[StreamSession], duration: float | None) -> None:
    started = time.monotonic()
    seen: dict[tuple[str, int, str], bool] = {}
    while _running(sessions, started, duration):
        time.sleep(0.25)
        for session in sessions:
            for incident in session.incidents:
                for event in list(incident.events):
                    if "level" not in event:
                        continue
                    key = (session.id, incident.number, str(event["level"]))
                    if key not in seen:
                        seen[key] = True
                        emit_json({"event": "level", "stream": session.id, **event})


def _follow_table(sessions: Sequence[StreamSession], duration: float | None) -> None:
    started = time.monotonic()
    with Live(_table(sessions), console=stderr, refresh_per_second=2) as live:
        while _running(sessions, started, duration):
            time.sleep(0.5)
            live.update(_table(sessions))
        live.update(_table(sessions))


def _table(sessions: Sequence[StreamSession]) -> Table:
    table = Table("stream", "state", "t (s)", "level", "CUSUM", "evidence (LLR)", "alerts")
    for session in sessions:
        status = session.status()
        level = str(status["level"])
        evidence = ", ".join(
            f"{name} {value['llr']:+.1f}" for name, value in sorted(status["evidence"].items())
        )
        alerts = ", ".join(str(i["alert_id"]) for i in status["incidents"] if i["alert_id"])
        table.add_row(
            str(status["name"])[:40],
            str(status["ingest"].get("state", "running" if status["running"] else "ended")),
            f"{status['t']:.0f}",
            f"[{_LEVEL_STYLE.get(level, '')}]{level}[/]",
            f"{status['cusum']:.1f}",
            evidence,
            alerts or "-",
        )
    return table


@eval_app.command("build")
def eval_build(
    out: Path = typer.Option(..., help="Folder for the streams and their manifests."),
    data: Path = typer.Option(Path("../shared/data"), help="The developer data folder."),
    scenario: list[str] = typer.Option([], help="Scenarios to build (default: all)."),
    seeds: list[int] = typer.Option([0], "--seed", help="Seeds (one stream per scenario each)."),
    duration: float = typer.Option(60.0, help="Seconds per stream."),
    fast: bool = typer.Option(False, help="640x360 instead of 1280x720."),
) -> None:
    """Synthetic labelled streams from held-out data (see vigil.live.synth)."""
    from vigil.live.synth import FAST_SIZE, HD_SIZE, build_catalogue, held_out_assets

    manifests = build_catalogue(
        out,
        held_out_assets(data),
        names=scenario or None,
        seeds=seeds,
        duration_s=duration,
        size=FAST_SIZE if fast else HD_SIZE,
    )
    for manifest in manifests:
        stdout.print(f"{manifest.category:14} {manifest.video}")


@eval_app.command("run")
def eval_run(
    folder: Path = typer.Argument(..., help="Streams with manifests, or clips with labels.csv."),
    mode: str = typer.Option("fast", help="fast (files, stream time) or live (UDP, real time)."),
    concurrency: int = typer.Option(2, min=1, help="Streams evaluated at once."),
    target_per_hour: float = typer.Option(0.1, help="False alarms per stream-hour to aim for."),
    report: Path | None = typer.Option(None, help="Write the markdown report here."),
    traces: Path | None = typer.Option(
        None, help="Write each stream's per-second ratios here (JSONL) for `eval rescore`."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run every stream through the real pipeline and score it against its ground truth."""
    from vigil.live.evaluation import evaluate, write_traces
    from vigil.live.groundtruth import GroundTruthError, load_folder

    if mode not in ("fast", "live"):
        stderr.print("[red]error:[/red] --mode is fast or live")
        raise typer.Exit(2)
    try:
        manifests = load_folder(folder)
    except GroundTruthError as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    result = evaluate(
        manifests,
        LiveSettings.of(get_settings()),
        mode="live" if mode == "live" else "fast",
        concurrency=concurrency,
        target_per_hour=target_per_hour,
        progress=lambda r: stderr.print(
            f"{Path(r.manifest.video).name}: alerts at {list(r.alerts)}"
        ),
    )
    if traces is not None:
        write_traces(result, traces)
    _emit(result, report, as_json)


@eval_app.command("rescore")
def eval_rescore(
    traces: Path = typer.Argument(..., help="Traces written by `vigil live eval run --traces`."),
    target_per_hour: float = typer.Option(0.1, help="False alarms per stream-hour to aim for."),
    report: Path | None = typer.Option(None, help="Write the markdown report here."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Score recorded traces under the current fusion settings (VIGIL_LIVE_DRIFT, _ALERT, ...)
    without decoding anything again: how a platform tunes its thresholds."""
    from vigil.live.evaluation import rescore

    try:
        result = rescore(
            traces, LiveSettings.of(get_settings()).fusion(), target_per_hour=target_per_hour
        )
    except (OSError, ValueError) as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _emit(result, report, as_json)


def _emit(result: Report, report: Path | None, as_json: bool) -> None:
    if report is not None:
        report.write_text(result.markdown(), encoding="utf-8")
    if as_json:
        sys.stdout.write(json.dumps(result.summary(), default=str) + "\n")
    else:
        stdout.print(result.markdown())
