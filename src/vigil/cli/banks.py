"""``vigil bank ...``: create, list, change, fill, import, export and delete hash banks."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from vigil.cli.common import emit_json, known_content, stderr, stdout, with_progress
from vigil.hashing import iter_media_paths
from vigil.hashing.formats import FORMATS, read_hash_list, write_hash_list

bank_app = typer.Typer(help="Manage hash banks.", no_args_is_help=True)

FormatOption = typer.Option(None, "--format", help=f"One of {', '.join(FORMATS)}.")


def _check_format(fmt: str | None) -> None:
    if fmt is not None and fmt not in FORMATS:
        stderr.print(f"[red]error:[/red] --format must be one of {', '.join(FORMATS)}")
        raise typer.Exit(2)


@bank_app.command("create")
def create(
    name: str,
    description: str = typer.Option("", help="What the bank holds and why."),
    negative: bool = typer.Option(
        False, "--negative", help="Known-benign content: a match here suppresses other matches."
    ),
    pdq_threshold: int | None = typer.Option(None, help="Max PDQ distance (default 31)."),
    vpdq_query_share: float | None = typer.Option(None, help="Min share of query frames."),
    vpdq_index_share: float | None = typer.Option(None, help="Min share of banked frames."),
) -> None:
    """Create a bank."""
    with known_content() as known:
        info = known.banks.create(
            name,
            description=description,
            negative=negative,
            pdq_threshold=pdq_threshold,
            vpdq_query_share=vpdq_query_share,
            vpdq_index_share=vpdq_index_share,
        )
    stdout.print(f"created bank {info.name}")


@bank_app.command("list")
def list_banks(as_json: bool = typer.Option(False, "--json")) -> None:
    """List banks with their settings and sizes."""
    with known_content() as known:
        banks = known.banks.list_banks()
    if as_json:
        for info in banks:
            emit_json(info.as_json())
        return
    table = Table("name", "kind", "enabled", "entries", "signals", "pdq ≤", "description")
    for info in banks:
        table.add_row(
            info.name,
            "negative" if info.negative else "positive",
            "yes" if info.enabled else "no",
            str(info.entries),
            str(info.signals),
            "default" if info.pdq_threshold is None else str(info.pdq_threshold),
            info.description,
        )
    stdout.print(table)


@bank_app.command("set")
def set_bank(
    name: str,
    enabled: bool | None = typer.Option(None, "--enable/--disable"),
    description: str | None = typer.Option(None),
    pdq_threshold: int | None = typer.Option(None),
    vpdq_query_share: float | None = typer.Option(None),
    vpdq_index_share: float | None = typer.Option(None),
) -> None:
    """Enable or disable a bank, or change its thresholds."""
    with known_content() as known:
        info = known.banks.update(
            name,
            enabled=enabled,
            description=description,
            pdq_threshold=pdq_threshold,
            vpdq_query_share=vpdq_query_share,
            vpdq_index_share=vpdq_index_share,
        )
    stdout.print(f"bank {info.name}: {'enabled' if info.enabled else 'disabled'}")


@bank_app.command("add")
def add(
    name: str,
    paths: list[Path] = typer.Argument(..., help="Files or folders of known content."),
    labels: list[str] = typer.Option([], "--label", help="Label for every entry (repeatable)."),
    source: str = typer.Option("", help="Where the content came from."),
    seen_at: datetime | None = typer.Option(None, help="When it was first seen (ISO 8601)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any file failed."),
) -> None:
    """Hash files and add them to a bank; they are matchable at once."""
    files = list(iter_media_paths(paths))
    added = failed = 0
    with known_content() as known:
        progress = with_progress(
            known.add_content(name, files, labels=labels, source=source, seen_at=seen_at),
            f"adding to {name}",
            len(files),
        )
        for result, entry_id in progress:
            if entry_id is None:
                failed += 1
                stderr.print(f"[yellow]skipped[/yellow] {result.path}: {result.error}")
            else:
                added += 1
    stdout.print(f"added {added} entr{'y' if added == 1 else 'ies'} to {name}; {failed} failed")
    if strict and failed:
        raise typer.Exit(1)


@bank_app.command("import")
def import_list(
    name: str,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    fmt: str | None = FormatOption,
    signal_type: str | None = typer.Option(
        None, help="Type of bare signals in a python-threatexchange file."
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any row was bad."),
) -> None:
    """Import a hash list (CSV/TSV `signal_type,signal,labels...`, JSONL, or pytx text)."""
    _check_format(fmt)
    report = read_hash_list(file, fmt, default_signal_type=signal_type)  # type: ignore[arg-type]
    with known_content() as known:
        known.banks.add_entries(name, report.entries)
    for error in report.errors[:50]:
        stderr.print(f"[yellow]line {error.line}:[/yellow] {error.message}")
    if len(report.errors) > 50:
        stderr.print(f"... and {len(report.errors) - 50} more bad rows")
    imported, skipped = len(report.entries), len(report.errors)
    stdout.print(f"imported {imported} signal(s) into {name}; {skipped} bad row(s) skipped")
    if strict and report.errors:
        raise typer.Exit(1)


@bank_app.command("export")
def export(
    name: str,
    fmt: str | None = FormatOption,
    output: Path | None = typer.Option(None, "--output", "-o", help="File (default stdout)."),
) -> None:
    """Export a bank's signals."""
    _check_format(fmt)
    chosen = fmt or "csv"
    with known_content() as known:
        known.banks.get(name)
        if output is None:
            count = write_hash_list(known.banks.iter_signals(name), sys.stdout, chosen)  # type: ignore[arg-type]
        else:
            with open(output, "w", encoding="utf-8", newline="") as stream:
                count = write_hash_list(known.banks.iter_signals(name), stream, chosen)  # type: ignore[arg-type]
    stderr.print(f"exported {count} signal(s) from {name}")


@bank_app.command("delete")
def delete(
    name: str, yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")
) -> None:
    """Delete a bank and everything in it."""
    if not yes:
        typer.confirm(f"Delete bank {name} and all its entries?", abort=True)
    with known_content() as known:
        known.banks.delete(name)
    stdout.print(f"deleted bank {name}")
