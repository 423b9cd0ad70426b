"""``vigil webhook ...`` and ``vigil actions ...``: receivers, the outbox, and a foreground
delivery worker (for a deployment that runs delivery apart from ``vigil serve``)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from vigil import actions
from vigil.actions import OutboxWorker, webhooks
from vigil.actions.kinds import WEBHOOK_KINDS
from vigil.cli.common import stderr, stdout
from vigil.cli.users import cli_actor
from vigil.config import Settings, get_settings
from vigil.store import Database

webhook_app = typer.Typer(help="Manage webhook receivers of actions.", no_args_is_help=True)
actions_app = typer.Typer(help="Inspect and deliver queued actions.", no_args_is_help=True)


def _settings() -> Settings:
    return get_settings()


@contextmanager
def _database() -> Iterator[Database]:
    db = Database(_settings().resolved_database_url)
    try:
        yield db
    except (webhooks.WebhookError, actions.ActionError) as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        db.dispose()


@contextmanager
def _session() -> Iterator[Session]:
    with _database() as db, db.session() as session:
        yield session


@webhook_app.command("add")
def add(
    name: str,
    url: str,
    kind: list[str] = typer.Option(
        ..., "--kind", help=f"Repeatable: {', '.join(sorted(WEBHOOK_KINDS))}."
    ),
    secret_stdin: bool = typer.Option(
        False, "--secret-stdin", help="Read the signing secret from stdin instead of making one."
    ),
) -> None:
    """Add a webhook and print its signing secret on stdout. It is shown this once."""
    given = sys.stdin.readline().strip() if secret_stdin else None
    with _session() as session:
        info, secret = webhooks.create(
            session,
            cli_actor(),
            name=name,
            url=url,
            kinds=kind,
            allow=_settings().url_fetch_allow,
            secret=given,
        )
    stderr.print(f"added webhook {info.name} (id {info.id}) for {', '.join(info.kinds)}")
    if given is None:
        # Bare on stdout so a script can capture it: SECRET=$(vigil webhook add ...)
        typer.echo(secret)


@webhook_app.command("list")
def list_webhooks() -> None:
    """List webhooks (never their secrets)."""
    with _session() as session:
        infos = webhooks.list_webhooks(session)
    table = Table("id", "name", "url", "kinds", "state")
    for info in infos:
        state = "enabled" if info.enabled else "disabled"
        table.add_row(str(info.id), info.name, info.url, ", ".join(info.kinds), state)
    stdout.print(table)


@webhook_app.command("disable")
def disable(name: str) -> None:
    """Stop sending to a webhook. Its queued actions become dead letters, to retry later."""
    with _session() as session:
        info = webhooks.find(session, name)
        webhooks.update(session, cli_actor(), info.id, allow=[], enabled=False)
    stdout.print(f"disabled webhook {name}")


@actions_app.command("list")
def list_actions(
    dead: bool = typer.Option(False, "--dead", help="Only dead letters."),
    status: list[str] = typer.Option([], "--status", help="Repeatable; e.g. pending."),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """Newest actions first, with their state and last error."""
    with _session() as session:
        rows = actions.list_actions(session, statuses=["dead"] if dead else status, limit=limit)
        table = Table("id", "kind", "status", "attempts", "webhook", "alert", "last error")
        for row in rows:
            table.add_row(
                str(row.id),
                row.kind,
                row.status,
                str(row.attempts),
                str(row.webhook_id or "-"),
                str(row.alert_id or "-"),
                row.last_error,
            )
    stdout.print(table)


@actions_app.command("retry")
def retry(action_id: int) -> None:
    """Send a dead letter again, with a fresh attempt budget."""
    with _session() as session:
        rows = actions.retry(session, action_id, actor=cli_actor())
    stdout.print(f"action {action_id} is due again ({len(rows)} row(s))")


@actions_app.command("deliver")
def deliver(
    threads: int = typer.Option(0, min=0, help="Worker threads; 0 means the setting."),
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
) -> None:
    """Run the delivery worker in the foreground until Ctrl-C or SIGTERM. Safe beside other
    workers and `vigil serve`: each action is claimed by one worker at a time."""
    with _database() as db, OutboxWorker(db, _settings()) as worker:
        if once:
            while worker.run_once():
                pass
            return
        done = threading.Event()

        def _stop(_signal: int, _frame: FrameType | None) -> None:
            done.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        worker.start(threads or None)
        stderr.print("delivering actions; Ctrl-C to stop")
        done.wait()
