"""The ``vigil`` command."""

from __future__ import annotations

import typer

from vigil import __version__
from vigil.cli.accounts import accounts_app, campaigns_app
from vigil.cli.actions import actions_app, webhook_app
from vigil.cli.audit import audit_app
from vigil.cli.banks import bank_app
from vigil.cli.faces import faces_app
from vigil.cli.hashing import hash_command, match_command
from vigil.cli.live import live_app, watch_command
from vigil.cli.posts import posts_app
from vigil.cli.review import alerts_app
from vigil.cli.serve import serve
from vigil.cli.train import train_app
from vigil.cli.users import users_app
from vigil.cli.worker import worker_command
from vigil.config import get_settings
from vigil.logs import configure_logging

app = typer.Typer(
    name="vigil",
    help="Find terrorist and violent-extremist content early and stop it spreading.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Configuration comes from VIGIL_* environment variables (see the README)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


app.command("hash")(hash_command)
app.command("match")(match_command)
app.add_typer(bank_app, name="bank")
app.command("serve")(serve)
app.add_typer(users_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(webhook_app, name="webhook")
app.add_typer(actions_app, name="actions")
app.add_typer(alerts_app, name="alerts")
app.add_typer(train_app, name="train")
app.command("watch")(watch_command)
app.add_typer(live_app, name="live")
app.add_typer(posts_app, name="posts")
app.add_typer(faces_app, name="faces")
app.add_typer(accounts_app, name="accounts")
app.add_typer(campaigns_app, name="campaigns")
app.command("worker")(worker_command)
