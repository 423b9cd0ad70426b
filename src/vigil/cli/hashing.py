"""``vigil hash`` and ``vigil match``: files or folders, images and videos."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vigil.cli.common import emit_json, known_content, stderr, stdout, with_progress
from vigil.hashing import HashResult, Match, iter_media_paths

PathsArgument = typer.Argument(..., help="Files or folders (scanned recursively).")
JsonOption = typer.Option(False, "--json", help="One JSON object per input on stdout.")
StrictOption = typer.Option(False, "--strict", help="Exit 1 if any input could not be hashed.")


def _report_failures(failures: list[HashResult], strict: bool) -> None:
    if failures:
        stderr.print(f"[yellow]{len(failures)} input(s) could not be hashed:[/yellow]")
        for failure in failures:
            stderr.print(f"  {failure.path}: {failure.error}")
    if strict and failures:
        raise typer.Exit(1)


def hash_command(
    paths: list[Path] = PathsArgument, as_json: bool = JsonOption, strict: bool = StrictOption
) -> None:
    """Hash media into PDQ, vPDQ, MD5 and SHA-256 signals."""
    files = list(iter_media_paths(paths))
    failures: list[HashResult] = []
    with known_content() as known:
        for path in with_progress(files, "hashing", len(files)):
            result = known.hash(path)
            if not result.ok:
                failures.append(result)
            if as_json:
                emit_json(result.as_json())
            elif result.ok:
                for signal in result.signals:
                    typer.echo(f"{result.path}\t{signal.signal_type}\t{signal.value}")
    _report_failures(failures, strict)


def match_command(
    paths: list[Path] = PathsArgument,
    banks: list[str] = typer.Option([], "--bank", help="Only these banks (repeatable)."),
    as_json: bool = JsonOption,
    strict: bool = StrictOption,
) -> None:
    """Match media against the hash banks."""
    files = list(iter_media_paths(paths))
    failures: list[HashResult] = []
    table = Table("path", "bank", "entry", "signal", "distance", "labels")
    matched = 0
    with known_content() as known:
        for path in with_progress(files, "matching", len(files)):
            result, report = known.match(path, banks or None)
            if not result.ok:
                failures.append(result)
            if as_json:
                emit_json({**result.as_json(), **report.as_json()})
                continue
            matched += bool(report.matches)
            for m in report.matches:
                table.add_row(result.path, m.bank, *_columns(m))
            for m in report.suppressed:
                table.add_row(
                    result.path, f"{m.bank} (suppressed: benign bank matched)", *_columns(m)
                )
    if not as_json:
        stdout.print(table if table.row_count else "no matches")
        stdout.print(f"{matched} of {len(files)} input(s) matched")
    _report_failures(failures, strict)


def _columns(match: Match) -> tuple[str, str, str, str]:
    score = (
        f"{match.query_share:.0%} of frames"
        if match.query_share is not None
        else f"{match.distance:g}"
    )
    return str(match.entry_id), match.signal_type, score, ", ".join(match.labels)
