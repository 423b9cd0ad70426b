"""``vigil alerts ...``: the review queue from a terminal (list, show, reprioritise).

Showing an alert's evidence needs ``--evidence`` and is recorded in the audit log under the
operating-system user, as the API records a reviewer's view.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from vigil import review
from vigil.cli.common import emit_json, stderr, stdout
from vigil.cli.users import cli_actor
from vigil.config import get_settings
from vigil.store import Database
from vigil.store.models import Alert, utcnow

alerts_app = typer.Typer(help="Review alerts: the priority queue.", no_args_is_help=True)


@contextmanager
def _session() -> Iterator[tuple[Session, review.ReviewPolicy]]:
    settings = get_settings()
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as session:
            yield session, review.ReviewPolicy.of(settings)
    except review.ReviewError as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        db.dispose()


def _json(alert: Alert, policy: review.ReviewPolicy, *, evidence: bool) -> dict[str, object]:
    body = review.alert_json(alert, policy.weights, utcnow(), evidence=evidence)
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in body.items()}


@alerts_app.command("list")
def list_alerts(
    status: list[str] = typer.Option(
        [], "--status", help="Repeatable; default: the queue (open, escalated)."
    ),
    source: str | None = typer.Option(None, help="hashing, live, text, faces, report."),
    platform: str | None = typer.Option(None),
    case: int | None = typer.Option(None, "--case", help="Only alerts in this case."),
    limit: int = typer.Option(50, min=1),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per alert."),
) -> None:
    """Alerts, highest priority first (without evidence)."""
    where = review.AlertFilter(
        statuses=status or review.QUEUE_STATUSES,
        source=source,
        platform=platform,
        case_id=case,
        limit=limit,
    )
    with _session() as (session, policy):
        alerts = [_json(a, policy, evidence=False) for a in review.list_alerts(session, where)]
    if as_json:
        for alert in alerts:
            emit_json(alert)
        return
    table = Table("id", "priority", "sev", "status", "source", "platform", "claimed", "why")
    for alert in alerts:
        table.add_row(
            str(alert["id"]),
            f"{alert['priority']:.3f}",
            str(alert["severity"]),
            str(alert["status"]),
            str(alert["source"]),
            str(alert["platform"]),
            "" if alert["claimed_by"] is None else f"user {alert['claimed_by']}",
            str(alert["explanation"])[:60],
        )
    stdout.print(table)


@alerts_app.command("show")
def show(
    alert_id: int,
    evidence: bool = typer.Option(
        False, "--evidence", help="Include the text and evidence (recorded in the audit log)."
    ),
) -> None:
    """One alert as JSON."""
    with _session() as (session, policy):
        alert = review.view_alert(session, alert_id, actor=cli_actor(), evidence=evidence)
        emit_json(_json(alert, policy, evidence=evidence))


@alerts_app.command("reprioritise")
def reprioritise() -> None:
    """Recompute queue keys after changing VIGIL_REVIEW_* weights or the half-life."""
    with _session() as (session, policy):
        count = review.recompute_priorities(session, policy.weights)
    stdout.print(f"reprioritised {count} alerts")
