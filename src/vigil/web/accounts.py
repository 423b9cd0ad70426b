"""The console's Accounts and Campaigns pages: accounts by risk now with filters, one account's
history (its alerts link to the review queue, where decisions on an account need a second
person), campaigns, and one campaign with the picture of its network beside the same accounts
in a table. They read through :mod:`vigil.networks.views`, as ``/v1/accounts`` and
``/v1/campaigns`` do; the evidence pack is the API's own export (a plain link, for those who may
export), and revealing a pseudonym is left to the API.

References are shown inside ``<bdi>`` (a right-to-left reference cannot reorder the text around
it) and escaped like every value; the graph's SVG is inlined as :mod:`vigil.networks.graph`
drew it, escaped there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from vigil.networks import NetworkSettings
from vigil.networks.graph import campaign_graph, render_graph_svg
from vigil.networks.views import (
    AccountFilter,
    account_list,
    account_view,
    campaign_list,
    campaign_view,
    check_campaign,
    check_label,
    check_platform,
)
from vigil.refs import check_ref
from vigil.store import Database
from vigil.web.auth import Page, Viewer
from vigil.web.rendering import render

router = APIRouter()
AccountReader = Annotated[Viewer, Depends(Page("account:read"))]

PAGE = 50
#: Days with posts listed on an account's page (the API has them all).
DAYS_SHOWN = 60
T = TypeVar("T")


def account_href(platform: str, author_ref: str) -> str:
    return f"/console/accounts/{quote(platform, safe='')}/{quote(author_ref, safe='')}"


def campaign_href(campaign_id: str) -> str:
    return f"/console/campaigns/{quote(campaign_id, safe='')}"


def _db(request: Request) -> Database:
    db: Database = request.app.state.known.db
    return db


def _half_life(request: Request) -> float:
    return NetworkSettings.of(request.app.state.settings).accounts_half_life_hours


def _parsed(raw: str | None, parse: Callable[[str], T], name: str) -> T | None:
    """A filter field of the page's form: empty is no filter; a bad value says which."""
    if raw is None or raw.strip() == "":
        return None
    try:
        return parse(raw.strip())
    except ValueError as exc:
        raise HTTPException(422, f"{name}: {exc}") from None


def _checked(value: str, check: Callable[[str], str]) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _risk(raw: str) -> float:
    value = float(raw)
    if not 0 <= value < float("inf"):
        raise ValueError("a number from 0 up")
    return value


def _offset(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 1_000_000_000:
        raise ValueError("a whole number from 0 up")
    return value


@router.get("/accounts")
def accounts(
    request: Request,
    viewer: AccountReader,
    platform: str | None = None,
    min_risk: str | None = None,
    label: str | None = None,
    since: str | None = None,
    offset: str | None = None,
) -> Response:
    """Accounts, the highest risk now first, with the API's filters."""
    where = AccountFilter(
        platform=_parsed(platform, check_platform, "platform"),
        min_risk=_parsed(min_risk, _risk, "minimum risk"),
        label=_parsed(label, check_label, "label"),
        since=_parsed(since, datetime.fromisoformat, "since"),
        limit=PAGE,
        offset=_parsed(offset, _offset, "offset") or 0,
    )
    with _db(request).session() as session:
        page = account_list(session, where, half_life_hours=_half_life(request))
    filters = {
        key: value
        for key, value in (
            ("platform", platform),
            ("min_risk", min_risk),
            ("label", label),
            ("since", since),
        )
        if value
    }

    def paged(start: int) -> str:
        return "/console/accounts?" + urlencode({**filters, "offset": start})

    return render(
        request,
        "accounts.html",
        viewer,
        page=page,
        filters=filters,
        href=account_href,
        newer=paged(max(0, where.offset - PAGE)) if where.offset > 0 else None,
        older=paged(where.offset + PAGE) if where.offset + PAGE < page.total else None,
    )


@router.get("/accounts/{platform}/{author_ref}")
def account(request: Request, platform: str, author_ref: str, viewer: AccountReader) -> Response:
    """One account: totals, labels, posts per day, recent posts, alerts and decisions, links,
    campaigns and accounts sharing its banks."""
    platform = _checked(platform, check_platform)
    author_ref = _checked(author_ref, check_ref)
    with _db(request).session() as session:
        view = account_view(session, platform, author_ref, half_life_hours=_half_life(request))
    if view is None:
        raise HTTPException(404, f"No account {author_ref} on {platform}")
    export = (
        f"/v1/accounts/{quote(platform, safe='')}/{quote(author_ref, safe='')}/export"
        if viewer.can("account:export")
        else None
    )
    return render(
        request,
        "account.html",
        viewer,
        view=view,
        days=view.days[-DAYS_SHOWN:],
        href=account_href,
        campaign_href=campaign_href,
        export=export,
    )


@router.get("/campaigns")
def campaigns(request: Request, viewer: AccountReader, offset: str | None = None) -> Response:
    """Campaigns, the most recently active first."""
    start = _parsed(offset, _offset, "offset") or 0
    with _db(request).session() as session:
        page = campaign_list(session, limit=PAGE, offset=start)
    return render(
        request,
        "campaigns.html",
        viewer,
        page=page,
        campaign_href=campaign_href,
        newer=f"/console/campaigns?offset={max(0, start - PAGE)}" if start > 0 else None,
        older=f"/console/campaigns?offset={start + PAGE}" if start + PAGE < page.total else None,
    )


@router.get("/campaigns/{campaign_id}")
def campaign(request: Request, campaign_id: str, viewer: AccountReader) -> Response:
    """One campaign: its first post, the picture of its network, its accounts in the order they
    joined, and its spread."""
    campaign_id = _checked(campaign_id, check_campaign)
    half_life = _half_life(request)
    with _db(request).session() as session:
        view = campaign_view(session, campaign_id, half_life_hours=half_life)
        graph = campaign_graph(session, campaign_id, half_life_hours=half_life)
    if view is None or graph is None:
        raise HTTPException(404, f"No campaign {campaign_id}")
    return render(
        request,
        "campaign.html",
        viewer,
        view=view,
        graph=graph,
        # Drawn with every label escaped: safe to inline as it is.
        svg=render_graph_svg(graph, id_prefix="campaign-graph"),
        href=account_href,
        first=next((member for member in view.members if member.first), None),
        spread=[bucket for bucket in view.spread if bucket.posts],
    )
