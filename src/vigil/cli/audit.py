"""``vigil audit ...``: check the audit log's hash chain, export it."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vigil.audit import export_jsonl, verify
from vigil.cli.common import stderr, stdout
from vigil.config import get_settings
from vigil.store import Database

audit_app = typer.Typer(help="Check and export the audit log.", no_args_is_help=True)


@audit_app.command("verify")
def verify_command() -> None:
    """Walk the hash chain; exit 1 naming the first changed, inserted or deleted event."""
    db = Database(get_settings().resolved_database_url)
    try:
        report = verify(db)
    finally:
        db.dispose()
    if not report.ok:
        stderr.print(f"[red]tampered:[/red] {report.message}")
        stderr.print(f"{report.checked} events before it are intact")
        raise typer.Exit(1)
    stdout.print(f"ok: {report.checked} events, chain intact; last hash {report.last_hash}")


@audit_app.command("export")
def export_command(
    output: Path | None = typer.Option(None, "-o", "--output", help="Default: stdout."),
) -> None:
    """Every event as JSON lines, oldest first, with its hashes (for a SIEM or an archive)."""
    db = Database(get_settings().resolved_database_url)
    try:
        if output is None:
            count = export_jsonl(db, sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as out:
                count = export_jsonl(db, out)
    finally:
        db.dispose()
    stderr.print(f"exported {count} events")
