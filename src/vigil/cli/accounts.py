"""``vigil accounts`` and ``vigil campaigns``: accounts seen posting, by risk now, one account's
history and its evidence pack; campaigns, one campaign and a picture of its network.

Like ``vigil alerts``, these read the database directly (whoever runs them holds its
credentials); an evidence pack's export is recorded in the audit log under the operating-system
user, as the API records an investigator's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from vigil.cli.common import emit_json, stderr, stdout
from vigil.cli.users import cli_actor
from vigil.config import get_settings
from vigil.networks import NetworkSettings
from vigil.networks.export import MAX_POSTS, canonical, export_account
from vigil.networks.graph import MAX_NODES, campaign_graph, render_graph_svg
from vigil.networks.views import (
    AccountFilter,
    account_list,
    account_view,
    campaign_list,
    campaign_view,
    check_campaign,
    check_label,
    check_platform,
    to_json,
)
from vigil.refs import check_ref
from vigil.store import Database

accounts_app = typer.Typer(
    help="Accounts seen posting: by risk, one account's history, its evidence pack.",
    no_args_is_help=True,
)
campaigns_app = typer.Typer(
    help="Campaigns of near-duplicate posts: who took part, who was first, the spread.",
    no_args_is_help=True,
)


@contextmanager
def _session() -> Iterator[tuple[Session, float]]:
    """A transaction on the configured database, and the risk's half-life."""
    settings = NetworkSettings.of(get_settings())
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as session:
            yield session, settings.accounts_half_life_hours
    finally:
        db.dispose()


def _checked(value: str, check: Callable[[str], str], hint: str) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from None


def _missing(what: str) -> typer.Exit:
    stderr.print(f"[red]error:[/red] no {what}", markup=True, highlight=False)
    return typer.Exit(1)


@accounts_app.command("list")
def list_accounts(
    platform: str | None = typer.Option(None, help="Only this platform's accounts."),
    min_risk: float | None = typer.Option(None, min=0, help="Risk now at least this."),
    label: str | None = typer.Option(None, help="With a post flagged under this label."),
    since: datetime | None = typer.Option(None, help="Seen posting at or after this (UTC)."),
    limit: int = typer.Option(50, min=1, max=500),
    offset: int = typer.Option(0, min=0),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per account."),
) -> None:
    """Accounts, the highest risk now first."""
    if label is not None:
        label = _checked(label, check_label, "--label")
    where = AccountFilter(platform, min_risk, label, since, limit, offset)
    with _session() as (session, half_life):
        page = account_list(session, where, half_life_hours=half_life)
    if as_json:
        for account in page.accounts:
            emit_json(to_json(account))
        return
    table = Table("platform", "account", "risk", "peak", "posts", "flagged", "labels", "last seen")
    for a in page.accounts:
        table.add_row(
            a.platform,
            a.author_ref,
            f"{a.risk:.1f}",
            f"{a.peak_risk:.1f}",
            str(a.posts),
            str(a.flagged),
            ", ".join(f"{name} {s.count}" for name, s in a.labels.items()),
            a.last_seen.strftime("%Y-%m-%d %H:%M"),
        )
    stdout.print(table)
    stdout.print(f"{len(page.accounts)} of {page.total} accounts", highlight=False)


@accounts_app.command("show")
def show(
    platform: str = typer.Argument(..., help="The platform, e.g. x."),
    author_ref: str = typer.Argument(..., help="The account's reference on it."),
    posts: int = typer.Option(20, min=0, max=500, help="Recent posts to include."),
) -> None:
    """One account as JSON: totals, posts per day, recent posts, alerts and decisions, links,
    campaigns and accounts sharing its banks."""
    platform = _checked(platform, check_platform, "PLATFORM")
    author_ref = _checked(author_ref, check_ref, "AUTHOR_REF")
    with _session() as (session, half_life):
        view = account_view(
            session, platform, author_ref, half_life_hours=half_life, posts_limit=posts
        )
    if view is None:
        raise _missing(f"account {author_ref!r} on {platform!r}")
    emit_json(to_json(view))


@accounts_app.command("export")
def export(
    platform: str = typer.Argument(..., help="The platform, e.g. x."),
    author_ref: str = typer.Argument(..., help="The account's reference on it."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here, not stdout."),
    max_posts: int = typer.Option(MAX_POSTS, min=1, help="Posts at most, the flagged first."),
) -> None:
    """The account's evidence pack for a referral, as JSON; its SHA-256 goes to stderr and, with
    the export, into the audit log."""
    platform = _checked(platform, check_platform, "PLATFORM")
    author_ref = _checked(author_ref, check_ref, "AUTHOR_REF")
    with _session() as (session, half_life):
        pack = export_account(
            session,
            cli_actor(),
            platform,
            author_ref,
            half_life_hours=half_life,
            max_posts=max_posts,
        )
    if pack is None:
        raise _missing(f"account {author_ref!r} on {platform!r}")
    # The canonical bytes themselves: what is written is what the hash is of.
    body = canonical(pack.pack)
    assert hashlib.sha256(body).hexdigest() == pack.sha256
    if output is None:
        typer.echo(body.decode())
    else:
        output.write_bytes(body + b"\n")
    stderr.print(f"sha256 {pack.sha256}", highlight=False)


@campaigns_app.command("list")
def list_campaigns(
    since: datetime | None = typer.Option(None, help="Active at or after this (UTC)."),
    limit: int = typer.Option(50, min=1, max=500),
    offset: int = typer.Option(0, min=0),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per campaign."),
) -> None:
    """Campaigns, the most recently active first."""
    with _session() as (session, _):
        page = campaign_list(session, since=since, limit=limit, offset=offset)
    if as_json:
        for campaign in page.campaigns:
            emit_json(to_json(campaign))
        return
    table = Table("campaign", "posts", "accounts", "severity", "first", "last", "alert")
    for c in page.campaigns:
        table.add_row(
            c.id,
            str(c.posts),
            str(c.accounts),
            str(c.max_severity),
            c.first_at.strftime("%Y-%m-%d %H:%M"),
            c.last_at.strftime("%Y-%m-%d %H:%M"),
            "" if c.alert_id is None else f"#{c.alert_id}",
        )
    stdout.print(table)
    stdout.print(f"{len(page.campaigns)} of {page.total} campaigns", highlight=False)


@campaigns_app.command("show")
def show_campaign(
    campaign_id: str = typer.Argument(..., help="The campaign's id: its first post's key."),
    svg: Path | None = typer.Option(None, "--svg", help="Also draw its network into this file."),
    max_nodes: int = typer.Option(MAX_NODES, min=1, max=200, help="Accounts drawn at most."),
) -> None:
    """One campaign as JSON: its first post, its accounts in the order they joined, its spread."""
    campaign_id = _checked(campaign_id, check_campaign, "CAMPAIGN_ID")
    with _session() as (session, half_life):
        view = campaign_view(session, campaign_id, half_life_hours=half_life)
        graph = (
            campaign_graph(session, campaign_id, half_life_hours=half_life, max_nodes=max_nodes)
            if svg is not None and view is not None
            else None
        )
    if view is None:
        raise _missing(f"campaign {campaign_id!r}")
    emit_json(to_json(view))
    if svg is not None and graph is not None:
        svg.write_text(render_graph_svg(graph), encoding="utf-8")
        stderr.print(f"graph written to {svg}", highlight=False)
