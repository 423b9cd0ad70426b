"""Accounts seen posting and their networks: ``/v1/accounts`` (by risk now, one account's history,
its evidence pack, the reveal of a pseudonym) and ``/v1/campaigns`` (who took part, who posted
first, the spread, the graph as SVG).

Account references and campaign ids are path parameters: checked for length and characters (no
control, direction or other invisible characters) before any lookup, answered 422 naming the
character. Every route needs ``account:read`` but the export (``account:export``, audited as
``account.export`` with the pack's SHA-256) and the reveal (``account:reveal``, audited as
``account.reveal`` whatever its outcome, and never with the revealed reference in the log).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field

from vigil import audit
from vigil.accounts import Principal
from vigil.api.auth import Require
from vigil.api.common import api_settings, known_content
from vigil.api.errors import ApiError, ErrorBody
from vigil.networks import NetworkSettings
from vigil.networks.export import MAX_POSTS, export_account
from vigil.networks.graph import MAX_NODES, campaign_graph, render_graph_svg
from vigil.networks.views import (
    CAMPAIGN_MAX,
    PLATFORM_MAX,
    AccountFilter,
    AccountPage,
    AccountView,
    CampaignPage,
    CampaignView,
    account_list,
    account_view,
    campaign_list,
    campaign_view,
    check_campaign,
    check_label,
    check_platform,
    get_account,
)
from vigil.pseudonyms import PREFIX, PseudonymError, reveal_with
from vigil.refs import REF_MAX, check_ref
from vigil.store import Database

router = APIRouter(prefix="/v1", tags=["accounts and networks"])
Reader = Annotated[Principal, Depends(Require("account:read"))]
Exporter = Annotated[Principal, Depends(Require("account:export"))]
Revealer = Annotated[Principal, Depends(Require("account:reveal"))]

Platform = Annotated[
    str,
    Path(min_length=1, max_length=PLATFORM_MAX, description="The platform, e.g. `x`."),
    AfterValidator(check_platform),
]
AuthorRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=REF_MAX,
        description="The account's reference on the platform (a pseudonym where configured).",
    ),
    AfterValidator(check_ref),
]
CampaignId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=CAMPAIGN_MAX,
        description="The campaign's id: the key (`platform:id`) of its first post.",
    ),
    AfterValidator(check_campaign),
]
#: Offsets past this are refused (a database's OFFSET has a bound; nobody pages that far).
_MAX_OFFSET = 1_000_000_000
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=_MAX_OFFSET)]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such account or campaign."},
}
_SVG_HEADERS = {
    # The picture is a document of its own when opened directly: nothing in it may load or run.
    "Content-Security-Policy": "default-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class ExportOut(BaseModel):
    sha256: str = Field(
        description="SHA-256 of the pack's canonical JSON (keys sorted, separators `,` and `:`, "
        "UTF-8 unescaped), as recorded in the audit log's `account.export` event."
    )
    pack: dict[str, Any]


class RevealOut(BaseModel):
    platform: str
    pseudonym: str
    author_ref: str = Field(description="The platform's own reference behind the pseudonym.")


def _settings(request: Request) -> NetworkSettings:
    return NetworkSettings.of(api_settings(request))


def _db(request: Request) -> Database:
    return known_content(request).db


Networks = Annotated[NetworkSettings, Depends(_settings)]


def _label(value: str | None) -> str | None:
    return None if value is None else check_label(value)


def _no_account(platform: str, author_ref: str) -> ApiError:
    return ApiError(404, "not_found", f"no account {author_ref!r} on {platform!r}")


@router.get("/accounts")
def list_accounts(
    _: Reader,
    request: Request,
    settings: Networks,
    platform: Annotated[str | None, Query(max_length=PLATFORM_MAX)] = None,
    min_risk: Annotated[
        float | None, Query(ge=0, allow_inf_nan=False, description="Risk now at least this.")
    ] = None,
    label: Annotated[
        str | None,
        Query(description="With a post flagged under this label, e.g. `threat_incitement`."),
        AfterValidator(_label),
    ] = None,
    since: Annotated[datetime | None, Query(description="Seen posting at or after this.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AccountPage:
    """Every account seen posting, the highest risk now first (then the most recently seen)."""
    where = AccountFilter(platform, min_risk, label, since, limit, offset)
    with _db(request).session() as session:
        return account_list(session, where, half_life_hours=settings.accounts_half_life_hours)


@router.get("/accounts/{platform}/{author_ref}", responses=_NOT_FOUND)
def get_account_view(
    platform: Platform,
    author_ref: AuthorRef,
    _: Reader,
    request: Request,
    settings: Networks,
    posts_limit: Limit = 50,
    posts_offset: Offset = 0,
) -> AccountView:
    """One account: totals and labels, posts per day, its recent posts, the alerts concerning
    it and the decisions on them, its links in and out, campaigns, accounts sharing its banks.
    Alerts come without text or evidence (see ``GET /v1/alerts/{id}``)."""
    with _db(request).session() as session:
        found = account_view(
            session,
            platform,
            author_ref,
            half_life_hours=settings.accounts_half_life_hours,
            posts_limit=posts_limit,
            posts_offset=posts_offset,
        )
    if found is None:
        raise _no_account(platform, author_ref)
    return found


@router.get("/accounts/{platform}/{author_ref}/export", responses=_NOT_FOUND)
def export(
    platform: Platform,
    author_ref: AuthorRef,
    principal: Exporter,
    request: Request,
    settings: Networks,
    max_posts: Annotated[int, Query(ge=1, le=100_000)] = MAX_POSTS,
) -> ExportOut:
    """The account's evidence pack for a referral (its posts with their texts, the alerts and
    decisions, links, campaigns, and the audit trail of those alerts), with its SHA-256; the
    export is recorded in the audit log."""
    with _db(request).session() as session:
        pack = export_account(
            session,
            principal.actor,
            platform,
            author_ref,
            half_life_hours=settings.accounts_half_life_hours,
            max_posts=max_posts,
        )
    if pack is None:
        raise _no_account(platform, author_ref)
    return ExportOut(sha256=pack.sha256, pack=pack.pack)


@router.post(
    "/accounts/{platform}/{author_ref}/reveal",
    responses={
        **_NOT_FOUND,
        409: {
            "model": ErrorBody,
            "description": "The reference is not a pseudonym, or it cannot be revealed here.",
        },
    },
)
def reveal(
    platform: Platform,
    author_ref: AuthorRef,
    principal: Revealer,
    request: Request,
    settings: Networks,
) -> RevealOut:
    """The platform's reference behind a pseudonymised account (VIGIL_ACCOUNTS_PSEUDONYMISE).
    Every attempt is recorded in the audit log; the revealed reference never is."""
    db = _db(request)
    with db.session() as session:
        account = get_account(session, platform, author_ref)
        account_id = account.id if account is not None else None
    if account_id is None:
        raise _no_account(platform, author_ref)
    problem: ApiError | None = None
    revealed = ""
    if not author_ref.startswith(PREFIX):
        problem = ApiError(
            409,
            "not_pseudonymised",
            f"{author_ref!r} is not a pseudonym: it is the platform's own reference",
        )
    else:
        try:
            revealed = reveal_with(settings, db, platform, author_ref)
        except PseudonymError as exc:
            problem = ApiError(409, "reveal_failed", str(exc))
    with db.session() as session:
        detail = {"platform": platform, "pseudonym": author_ref, "revealed": problem is None}
        audit.record(
            session, principal.actor, "account.reveal", "author_account", account_id, detail
        )
    if problem is not None:
        raise problem
    return RevealOut(platform=platform, pseudonym=author_ref, author_ref=revealed)


@router.get("/campaigns")
def list_campaigns(
    _: Reader,
    request: Request,
    since: Annotated[datetime | None, Query(description="Active at or after this.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CampaignPage:
    """Campaigns of near-duplicate posts, the most recently active first."""
    with _db(request).session() as session:
        return campaign_list(session, since=since, limit=limit, offset=offset)


@router.get("/campaigns/{campaign_id}", responses=_NOT_FOUND)
def get_campaign(
    campaign_id: CampaignId,
    _: Reader,
    request: Request,
    settings: Networks,
    max_members: Annotated[int, Query(ge=1, le=5_000)] = 200,
) -> CampaignView:
    """A campaign: its first post, the accounts in it in the order they joined, and its spread
    (posts and accounts per hour, or per day past three days)."""
    with _db(request).session() as session:
        found = campaign_view(
            session,
            campaign_id,
            half_life_hours=settings.accounts_half_life_hours,
            max_members=max_members,
        )
    if found is None:
        raise ApiError(404, "not_found", f"no campaign {campaign_id!r}")
    return found


@router.get(
    "/campaigns/{campaign_id}/graph.svg",
    response_class=Response,
    responses={
        200: {
            "content": {"image/svg+xml": {"schema": {"type": "string"}}},
            "description": "The graph, an accessible standalone SVG.",
        },
        **_NOT_FOUND,
    },
)
def campaign_graph_svg(
    campaign_id: CampaignId,
    _: Reader,
    request: Request,
    settings: Networks,
    max_nodes: Annotated[int, Query(ge=1, le=200)] = MAX_NODES,
) -> Response:
    """A picture of the campaign's network: its accounts (the ``max_nodes`` at the highest risk
    drawn; the picture says how many were left out), replies, reposts and mentions between them,
    other campaigns they share and the banks their images matched."""
    with _db(request).session() as session:
        graph = campaign_graph(
            session,
            campaign_id,
            half_life_hours=settings.accounts_half_life_hours,
            max_nodes=max_nodes,
        )
    if graph is None:
        raise ApiError(404, "not_found", f"no campaign {campaign_id!r}")
    return Response(render_graph_svg(graph), media_type="image/svg+xml", headers=_SVG_HEADERS)
