"""``vigil faces ...``: retrospective face search from a terminal: the faces key, governed
watchlists, enrollment, searches, the two-person review, export and housekeeping.

Governance is about people: every command that reads or changes face data acts as the user
whose API token is in ``VIGIL_TOKEN`` (``vigil user token``), with that user's roles, exactly as
the API would, and the audit log names them. ``keygen``, ``purge`` and ``eval`` touch no one's
face data and need no token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from vigil.accounts import AccountError, Accounts, AccountSettings, Permission, Principal, TokenUse
from vigil.cli.common import emit_json, stderr, stdout
from vigil.cli.faces_eval import eval_command
from vigil.config import get_settings
from vigil.faces import review as face_review
from vigil.faces import watchlists
from vigil.faces.models import FaceModelError
from vigil.faces.quality import EnrollmentRejected
from vigil.faces.search import ProbeMedia, SearchRequest
from vigil.faces.service import FaceService
from vigil.faces.settings import FacesSettings
from vigil.faces.vault import VaultError, new_key
from vigil.review import ReviewError
from vigil.store import Database

faces_app = typer.Typer(
    help="Retrospective face search against governed watchlists.", no_args_is_help=True
)
watchlist_app = typer.Typer(
    help="Watchlists: create, fill, approve, inspect.", no_args_is_help=True
)
review_app = typer.Typer(help="The two-person review of candidates.", no_args_is_help=True)
faces_app.add_typer(watchlist_app, name="watchlist")
faces_app.add_typer(review_app, name="review")

TOKEN_VARIABLE = "VIGIL_TOKEN"
_WHEN_HELP = "ISO 8601 date or time; UTC unless it names a zone."


@dataclass(frozen=True)
class Acting:
    """The face service and the person a command acts as."""

    faces: FaceService
    principal: Principal


def _fail(message: str, code: int = 2) -> typer.Exit:
    stderr.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (ReviewError, VaultError, FaceModelError, AccountError) as exc:
        raise _fail(str(exc)) from None


def _principal(db: Database, command: str, permission: Permission) -> Principal:
    secret = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not secret:
        raise _fail(
            f"face search acts for a person: set {TOKEN_VARIABLE} to your API token "
            "(`vigil user token USERNAME NAME`)"
        )
    accounts = Accounts(db, AccountSettings.of(get_settings()))
    use = TokenUse("CLI", f"vigil faces {command}", permission)
    principal = accounts.authenticate_token(secret, use)
    if principal is None:
        raise _fail(f"the token in {TOKEN_VARIABLE} is unknown or disabled")
    if not principal.can(permission):
        roles = ", ".join(sorted(principal.roles))
        raise _fail(f"{principal.actor} (roles {roles}) lacks {permission!r}")
    return principal


@contextmanager
def _service() -> Iterator[FaceService]:
    settings = FacesSettings.of(get_settings())
    db = Database(settings.resolved_database_url)
    try:
        with _errors():
            yield FaceService(db, settings)
    finally:
        db.dispose()


@contextmanager
def _acting(command: str, permission: Permission) -> Iterator[Acting]:
    """The service, acting as ``VIGIL_TOKEN``'s user if they hold ``permission``. Errors of
    :mod:`vigil.faces` end the command with their message (after the unit of work inside
    rolled back)."""
    with _service() as faces:
        yield Acting(faces, _principal(faces.db, command, permission))


def _when(value: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=option) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _optional_when(value: str | None, option: str) -> datetime | None:
    return None if value is None else _when(value, option)


def _day(moment: datetime | None) -> str:
    return moment.isoformat(timespec="minutes") if moment else "-"


# --- key -------------------------------------------------------------------------------------


@faces_app.command("keygen")
def keygen() -> None:
    """Print a new key for VIGIL_FACES_KEY on stdout. Keep it secret and backed up: templates,
    crops and kept probe media are sealed with it, and without it they cannot be read."""
    stderr.print("set VIGIL_FACES_KEY to this key (losing it means enrolling everyone again):")
    typer.echo(new_key())


# --- watchlists ------------------------------------------------------------------------------


@watchlist_app.command("create")
def create_watchlist(
    name: str,
    purpose: str = typer.Option(..., help="Why the list exists (20+ characters)."),
    legal_basis: str = typer.Option(..., help="The law or authority it rests on (20+ chars)."),
    review_at: str = typer.Option(..., help=f"When it must be reviewed. {_WHEN_HELP}"),
    expires_at: str = typer.Option(..., help=f"When it expires and is purged. {_WHEN_HELP}"),
) -> None:
    """Create a draft watchlist (you own it); a supervisor other than you approves it."""
    terms = watchlists.WatchlistTerms(
        name,
        purpose,
        legal_basis,
        _when(review_at, "--review-at"),
        _when(expires_at, "--expires-at"),
    )
    with _acting("watchlist create", "face:watchlist") as acting:
        model = acting.faces.engine.model
        with acting.faces.db.session() as session:
            watchlists.create_watchlist(session, acting.principal, terms, model)
    stdout.print(f"created draft watchlist {name} ({model} templates)", highlight=False)


@watchlist_app.command("list")
def list_watchlists(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per watchlist."),
) -> None:
    """Watchlists with their status and dates."""
    from vigil.api.routes.faces import WatchlistOut

    with _acting("watchlist list", "face:read") as acting, acting.faces.db.session() as session:
        found = [WatchlistOut.of(w) for w in watchlists.list_watchlists(session)]
    if as_json:
        for item in found:
            emit_json(item.model_dump(mode="json"))
        return
    table = Table("name", "status", "searchable", "review", "expires", "model")
    for item in found:
        table.add_row(
            item.name,
            item.status,
            "yes" if item.searchable else "no",
            _day(item.review_at),
            _day(item.expires_at),
            item.model,
        )
    stdout.print(table)


@watchlist_app.command("show")
def show_watchlist(
    name: str, as_json: bool = typer.Option(False, "--json", help="As JSON (as the API).")
) -> None:
    """A watchlist, its terms and its people with their image counts (never a template)."""
    from vigil.api.routes.faces import WatchlistDetail

    with _acting("watchlist show", "face:read") as acting, acting.faces.db.session() as session:
        detail = WatchlistDetail.read(session, watchlists.get_watchlist(session, name))
    if as_json:
        emit_json(detail.model_dump(mode="json"))
        return
    state = f"{detail.status}, {'searchable' if detail.searchable else 'not searchable'}"
    stdout.print(f"[bold]{detail.name}[/bold] ({state})")
    for label, value in (
        ("purpose", detail.purpose),
        ("legal basis", detail.legal_basis),
        ("review", _day(detail.review_at)),
        ("expires", _day(detail.expires_at)),
        ("created by", detail.created_by),
    ):
        stdout.print(f"{label}: {value}", markup=False, highlight=False)
    table = Table("person", "name", "images")
    for entry in detail.entries:
        table.add_row(entry.person_ref, entry.display_name, str(entry.images))
    stdout.print(table)


@watchlist_app.command("approve")
def approve_watchlist(
    name: str,
    review_at: str | None = typer.Option(
        None, help=f"A new review date (needed once the old one passed). {_WHEN_HELP}"
    ),
) -> None:
    """Approve a watchlist (a supervisor, not its creator or owner): it becomes searchable."""
    when = _optional_when(review_at, "--review-at")
    with (
        _acting("watchlist approve", "face:approve") as acting,
        acting.faces.db.session() as session,
    ):
        approved = watchlists.approve_watchlist(session, acting.principal, name, when)
        until = _day(approved.review_at)
    stdout.print(f"approved {name} until its review on {until}", highlight=False)


@watchlist_app.command("add-person")
def add_person(
    watchlist: str,
    person_ref: str,
    display_name: str = typer.Argument(..., help="The name reviewers will see."),
) -> None:
    """Add a person to a watchlist (an approved list goes back to draft)."""
    with (
        _acting("watchlist add-person", "face:watchlist") as acting,
        acting.faces.db.session() as session,
    ):
        watchlists.add_entry(session, acting.principal, watchlist, person_ref, display_name)
    stdout.print(f"added {person_ref} to {watchlist}", highlight=False)


@watchlist_app.command("remove-person")
def remove_person(watchlist: str, person_ref: str) -> None:
    """Take a person off a watchlist, with their images and templates."""
    with (
        _acting("watchlist remove-person", "face:watchlist") as acting,
        acting.faces.db.session() as session,
    ):
        watchlists.remove_entry(session, acting.principal, watchlist, person_ref)
    stdout.print(f"removed {person_ref} from {watchlist}", highlight=False)


# --- enrollment ------------------------------------------------------------------------------


def _enroll_one(
    acting: Acting, watchlist: str, person_ref: str, path: Path, origin: watchlists.ImageSource
) -> dict[str, Any]:
    """One image in its own transaction: a rejected photo leaves the others enrolled."""
    try:
        data = path.read_bytes()
        with acting.faces.db.session() as session:
            image = acting.faces.enroll(
                session, acting.principal, watchlist, person_ref, data, origin
            )
            return {"image": str(path), "enrolled": True, "id": image.id, "quality": image.quality}
    except EnrollmentRejected as exc:
        return {"image": str(path), "enrolled": False, "reason": exc.reason, "message": str(exc)}
    except OSError as exc:
        message = f"The photo cannot be read: {exc}"
        return {"image": str(path), "enrolled": False, "reason": "unreadable", "message": message}


@faces_app.command("enroll")
def enroll(
    watchlist: str,
    person_ref: str,
    images: list[Path] = typer.Argument(..., help="Photos of the person, one face each."),
    source: str | None = typer.Option(
        None, help="Where the photos come from (custody record); default: each file's path."
    ),
    captured_at: str | None = typer.Option(None, help=f"When they were taken. {_WHEN_HELP}"),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any photo is rejected."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per photo."),
) -> None:
    """Enroll photos of a person: each must show one face, large, sharp and bright enough;
    a rejected photo is reported with its reason and the others are still enrolled."""
    when = _optional_when(captured_at, "--captured-at")
    with _acting("enroll", "face:watchlist") as acting:
        results = [
            _enroll_one(
                acting,
                watchlist,
                person_ref,
                path,
                watchlists.ImageSource(source or str(path), when),
            )
            for path in images
        ]
    for result in results:
        if as_json:
            emit_json(result)
        elif result["enrolled"]:
            stdout.print(f"enrolled {result['image']} (quality {result['quality']:.2f})")
        else:
            stderr.print(
                f"[yellow]rejected[/yellow] {result['image']}: {result['reason']}: "
                f"{result['message']}",
                highlight=False,
            )
    rejected = sum(not result["enrolled"] for result in results)
    if strict and rejected:
        raise typer.Exit(1)


# --- search ----------------------------------------------------------------------------------


def _media(paths: Sequence[Path]) -> list[ProbeMedia]:
    """Each file given, and the files under each folder given (hidden ones left out). A file
    is recorded under its name, one in a folder as ``folder/inner/path``: the search's record
    names the evidence, not the officer's disk."""
    media: list[ProbeMedia] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p.relative_to(path.parent) for p in path.rglob("*") if p.is_file())
            visible = [p for p in inside if not any(part.startswith(".") for part in p.parts)]
            media.extend(ProbeMedia(p.as_posix(), path.parent / p) for p in visible)
        elif path.is_file():
            media.append(ProbeMedia(path.name, path))
        else:
            raise _fail(f"no such file or folder: {path}")
    return media


@faces_app.command("search")
def search(
    media: list[Path] = typer.Argument(..., help="Images, videos, or folders of them."),
    case: int = typer.Option(..., "--case", help="The open case the search is for."),
    offence: str = typer.Option(..., "--offence", help="The offence reference."),
    justification: str = typer.Option(
        ..., help="Why the search is necessary and proportionate (20+ characters)."
    ),
    watchlist: list[str] = typer.Option(
        [], "--watchlist", help="Repeatable; default: every searchable watchlist."
    ),
    as_json: bool = typer.Option(False, "--json", help="The result as JSON (as the API)."),
) -> None:
    """Search incident media against approved watchlists. Candidates go to two-person review;
    faces that match no one are not kept."""
    request = SearchRequest(case, offence, justification, tuple(watchlist))
    files = _media(media)
    with _acting("search", "face:search") as acting:
        outcome = acting.faces.search(acting.principal, request, files)
        with acting.faces.db.session() as session:
            found = face_review.candidates_of(session, acting.principal, outcome.search_id)
            candidates = [face_review.candidate_json(c) for c in found]
    if as_json:
        body = {
            "search_id": outcome.search_id,
            "faces": outcome.faces,
            "media": [asdict(item) for item in outcome.media],
            "candidates": candidates,
        }
        emit_json(body)
        return
    for item in outcome.media:
        line = f"{item.name}: {item.kind or '?'}, {item.faces} faces, "
        line += f"{item.faces_with_candidates} with candidates"
        if item.error:
            line += f" ([red]{item.error}[/red])"
        stderr.print(line, highlight=False)
    stdout.print(f"search {outcome.search_id}: {len(candidates)} candidates for review")
    _candidate_table(candidates)


def _candidate_table(candidates: list[dict[str, Any]]) -> None:
    if not candidates:
        return
    table = Table("id", "search", "probe", "rank", "score", "watchlist", "person", "status")
    for c in candidates:
        table.add_row(
            str(c["id"]),
            str(c["search_id"]),
            c["probe"],
            str(c["rank"]),
            f"{c['score']:.3f}",
            c["watchlist"],
            f"{c['person_ref']} {c['display_name']}",
            c["status"],
        )
    stdout.print(table)
    stdout.print(face_review.CAVEAT, style="italic", highlight=False)


# --- review ----------------------------------------------------------------------------------


@review_app.command("list")
def review_list(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per candidate."),
) -> None:
    """The candidates waiting for your step (an operator's, or an investigator's)."""
    with _acting("review list", "face:read") as acting, acting.faces.db.session() as session:
        queue = [
            face_review.candidate_json(c)
            for c in face_review.review_queue(session, acting.principal)
        ]
    if as_json:
        for candidate in queue:
            emit_json(candidate)
        return
    _candidate_table(queue)


_VERDICT_HELP = "match or no_match."
_NOTE_HELP = "What supports a match (features compared); needed for match."


@review_app.command("operator")
def review_operator(
    candidate_id: int,
    verdict: str = typer.Option(..., help=_VERDICT_HELP),
    note: str = typer.Option("", help=_NOTE_HELP),
) -> None:
    """The first look (a trained operator): could the probe face be the watchlist person?"""
    with _acting("review operator", "face:operate") as acting, acting.faces.db.session() as session:
        status = face_review.operator_review(
            session, acting.principal, candidate_id, verdict, note
        ).status
    stdout.print(f"candidate {candidate_id}: {status}", highlight=False)


@review_app.command("investigator")
def review_investigator(
    candidate_id: int,
    verdict: str = typer.Option(..., help=_VERDICT_HELP),
    note: str = typer.Option("", help=_NOTE_HELP),
) -> None:
    """The decision (an investigator other than the operator): confirm or reject."""
    with (
        _acting("review investigator", "face:confirm") as acting,
        acting.faces.db.session() as session,
    ):
        status = face_review.investigator_review(
            session, acting.principal, candidate_id, verdict, note
        ).status
    stdout.print(f"candidate {candidate_id}: {status}", highlight=False)


# --- export and housekeeping -----------------------------------------------------------------


@faces_app.command("export")
def export(
    search_id: int,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
) -> None:
    """The search and its confirmed candidates as JSON, for the case file; refused while any
    candidate is still under review."""
    with _acting("export", "face:export") as acting, acting.faces.db.session() as session:
        body = face_review.export_confirmed(session, acting.principal, search_id)
    text = json.dumps(body, ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    stderr.print(f"wrote {len(body['confirmed'])} confirmed candidates to {output}")


@faces_app.command("purge")
def purge() -> None:
    """Expire watchlists past their expiry (purging their templates and crops) and delete
    probe media past VIGIL_FACES_PROBE_RETENTION_DAYS. Run it daily (cron, a timer)."""
    with _service() as faces:
        done = faces.housekeeping()
    expired = ", ".join(done.expired_watchlists) or "none"
    stdout.print(
        f"expired watchlists: {expired}; probe media purged for {done.purged_searches} searches",
        highlight=False,
    )


faces_app.command("eval")(eval_command)
