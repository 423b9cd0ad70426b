"""``vigil user ...``: accounts and their API tokens, for bootstrap and scripting."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import typer
from rich.table import Table

from vigil.accounts import ALL_ROLES, ROLES, AccountError, Accounts, AccountSettings
from vigil.cli.common import stderr, stdout
from vigil.config import get_settings
from vigil.store import Database

users_app = typer.Typer(help="Manage accounts and API tokens.", no_args_is_help=True)
_ROLE_HELP = f"One of {', '.join(ROLES)}."


def cli_actor() -> str:
    """How the audit log names whoever ran the command: the operating-system user."""
    return f"cli:{getpass.getuser()}"


@contextmanager
def _accounts() -> Iterator[Accounts]:
    settings = AccountSettings.of(get_settings())
    db = Database(settings.resolved_database_url)
    try:
        yield Accounts(db, settings)
    except AccountError as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        db.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        stderr.print("[red]error:[/red] the passwords differ")
        raise typer.Exit(2)
    return password


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"


@users_app.command("create")
def create(
    username: str,
    roles: list[str] = typer.Option(..., "--role", help=f"{_ROLE_HELP} May repeat."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    no_password: bool = typer.Option(
        False, "--no-password", help="An account that only uses API tokens (a service)."
    ),
    display_name: str = typer.Option("", "--display-name"),
) -> None:
    """Create an account (asks for its password unless told otherwise)."""
    password = None if no_password else _read_password(password_stdin)
    with _accounts() as accounts:
        info = accounts.create_user(cli_actor(), username, roles, password, display_name)
    stdout.print(f"created user {info.username} ({', '.join(info.roles)})")


@users_app.command("list")
def list_users() -> None:
    """List accounts."""
    with _accounts() as accounts:
        infos = accounts.list_users()
    table = Table("username", "roles", "state", "password", "created", "last login")
    for info in infos:
        table.add_row(
            info.username,
            ", ".join(info.roles),
            "disabled" if info.disabled else "active",
            "yes" if info.has_password else "no",
            _when(info.created_at),
            _when(info.last_login_at),
        )
    stdout.print(table)


@users_app.command("disable")
def disable(username: str) -> None:
    """Disable an account: its console sessions and API tokens stop working at once."""
    with _accounts() as accounts:
        accounts.disable_user(cli_actor(), username)
    stdout.print(f"disabled user {username} and its sessions and tokens")


@users_app.command("token")
def token(
    username: str,
    name: str,
    role: str = typer.Option(
        ALL_ROLES, "--role", help=f"Limit the token to one of the user's roles. {_ROLE_HELP}"
    ),
) -> None:
    """Create an API token acting for USERNAME and print its secret on stdout. It is shown this
    once: only a hash of it is stored."""
    with _accounts() as accounts:
        info, secret = accounts.create_token(cli_actor(), username, name, role)
    stderr.print(f"created token {info.name} for {username}; store the secret now:")
    # Bare on stdout so a script can capture it: TOKEN=$(vigil user token ci-bot ci)
    typer.echo(secret)


@users_app.command("tokens")
def list_tokens() -> None:
    """List API tokens (never their secrets)."""
    with _accounts() as accounts:
        infos = accounts.list_tokens()
    table = Table("name", "user", "scope", "state", "created", "last used")
    for info in infos:
        table.add_row(
            info.name,
            info.user or "-",
            info.scope or "all roles",
            "disabled" if info.disabled else "active",
            _when(info.created_at),
            _when(info.last_used_at),
        )
    stdout.print(table)


@users_app.command("token-disable")
def token_disable(name: str) -> None:
    """Disable an API token: requests with it are refused from now on."""
    with _accounts() as accounts:
        accounts.disable_token(cli_actor(), name)
    stdout.print(f"disabled token {name}")
