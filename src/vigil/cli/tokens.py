"""``vigil token ...``: create, list and disable API tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.table import Table

from vigil.api.auth import ROLES, TokenError, TokenStore
from vigil.cli.common import stderr, stdout
from vigil.config import get_settings
from vigil.store import Database

tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


@contextmanager
def _token_store() -> Iterator[TokenStore]:
    db = Database(get_settings().resolved_database_url)
    try:
        yield TokenStore(db)
    except TokenError as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        db.dispose()


@tokens_app.command("create")
def create(
    name: str,
    role: str = typer.Option(..., "--role", help=f"One of {', '.join(ROLES)}."),
) -> None:
    """Create a token and print its secret on stdout. It is shown this once: only a hash of it
    is stored."""
    with _token_store() as tokens:
        info, secret = tokens.create(name, role)
    stderr.print(f"created token {info.name} ({info.role}); store the secret now:")
    # Bare on stdout so a script can capture it: TOKEN=$(vigil token create ci --role analyst)
    typer.echo(secret)


@tokens_app.command("list")
def list_tokens() -> None:
    """List tokens (never their secrets)."""
    with _token_store() as tokens:
        infos = tokens.list_tokens()
    table = Table("name", "role", "state", "created", "last used")
    for info in infos:
        table.add_row(
            info.name,
            info.role,
            "disabled" if info.disabled else "active",
            info.created_at.isoformat(timespec="seconds"),
            info.last_used_at.isoformat(timespec="seconds") if info.last_used_at else "never",
        )
    stdout.print(table)


@tokens_app.command("disable")
def disable(name: str) -> None:
    """Disable a token: requests with it are refused from now on."""
    with _token_store() as tokens:
        tokens.disable(name)
    stdout.print(f"disabled token {name}")
