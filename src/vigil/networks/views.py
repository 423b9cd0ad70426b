"""The read side of accounts and their networks: the accounts seen (sorted by risk now), one
account's history, its links and the campaigns it took part in, and campaigns with who posted
first and how they spread.

Everything reads the tables the ledger keeps (``author_account``, ``account_link``) and the stored
posts (``post``); nothing here writes. An account is a platform and a reference on it: the same
reference on two platforms is two accounts, shown side by side but never merged.

**Risk now.** The ledger stores each account's risk as of ``risk_at`` and decays it lazily (only
when the account posts again), so the stored value of an account that went quiet is stale. The
listing sorts and filters by the risk *now*; since decay only ever lowers it, the stored value
bounds the current one from above, and the walk down the risk index stops as soon as no further
account can enter the page (:func:`account_list`).

**Campaign membership** is ``post.campaign_id``, plus the campaign's first post: a campaign's id
is its first post's key, and that post was stored before it had a near-duplicate (so with no
campaign id of its own). Posts stored under the id of a campaign that was later merged into an
older one stay under that id (the tracker's aliases live in memory only).
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import cast

from vigil.networks.risk import decayed
from vigil.refs import check_ref
from vigil.store.models import (
    AccountLink,
    Alert,
    AuthorAccount,
    Decision,
    PostRecord,
    UserAccount,
    utcnow,
)

#: Rows read at a time while walking accounts down the risk index.
_CHUNK = 500
#: Bounds on what one account view carries (the export carries more: :mod:`export`).
MAX_ALERTS = 100
MAX_LINKS = 100
MAX_CAMPAIGNS = 50
MAX_PEERS = 20
#: A campaign that spread over more than this is bucketed by day, else by hour.
HOURLY_SPAN = timedelta(hours=72)
#: Past this many buckets (posts dated years apart), only those with posts are listed.
MAX_SPREAD_BUCKETS = 1000

PLATFORM_MAX = 64
CAMPAIGN_MAX = 260


def check_platform(value: str) -> str:
    return check_ref(value, "platform", PLATFORM_MAX)


def check_campaign(value: str) -> str:
    return check_ref(value, "campaign id", CAMPAIGN_MAX)


def check_label(value: str) -> str:
    """A triage label (``threat_incitement``, ``hate`` ...): lowercase letters and underscores."""
    if not 1 <= len(value) <= 64 or not all(c == "_" or "a" <= c <= "z" for c in value):
        raise ValueError("a label is 1 to 64 lowercase letters and underscores")
    return value


def to_json(value: Any) -> Any:
    """A view (dataclasses, datetimes, dicts, lists) as plain JSON values: times as ISO 8601."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def post_at() -> ColumnElement[datetime]:
    """When a post was made: the platform's time, else when vigil scanned it."""
    return func.coalesce(PostRecord.created_at, PostRecord.scanned_at)


# --- the accounts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountFilter:
    platform: str | None = None
    #: Risk now at least this.
    min_risk: float | None = None
    #: Accounts with a post flagged under this label.
    label: str | None = None
    #: Accounts seen posting at or after this.
    since: datetime | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class LabelStats:
    count: int
    max_severity: int


@dataclass(frozen=True)
class AccountSummary:
    platform: str
    author_ref: str
    first_seen: datetime
    last_seen: datetime
    posts: int
    flagged: int
    #: Posts flagged per label, with the highest severity among them.
    labels: dict[str, LabelStats]
    max_severity: int
    #: Banks the account's attached images matched.
    banks: list[str]
    #: Risk now (decayed from the stored value), the stored value's time, and the highest it
    #: has been.
    risk: float
    risk_at: datetime
    peak_risk: float
    #: The account-level alert in the review queue, once its risk crossed the threshold.
    alert_id: int | None


@dataclass(frozen=True)
class AccountPage:
    total: int
    limit: int
    offset: int
    accounts: list[AccountSummary]


def summary(account: AuthorAccount, now: datetime, half_life_hours: float) -> AccountSummary:
    labels = {
        label: LabelStats(int(stats.get("count", 0)), int(stats.get("max_severity", 0)))
        for label, stats in sorted(account.labels.items())
        if isinstance(stats, dict)
    }
    return AccountSummary(
        platform=account.platform,
        author_ref=account.author_ref,
        first_seen=account.first_seen,
        last_seen=account.last_seen,
        posts=account.posts,
        flagged=account.flagged,
        labels=labels,
        max_severity=max((stats.max_severity for stats in labels.values()), default=0),
        banks=sorted(account.banks),
        risk=decayed(account.risk, account.risk_at, now, half_life_hours),
        risk_at=account.risk_at,
        peak_risk=account.peak_risk,
        alert_id=account.alert_id,
    )


def _account_conditions(where: AccountFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.platform is not None:
        conditions.append(AuthorAccount.platform == where.platform)
    if where.since is not None:
        conditions.append(AuthorAccount.last_seen >= where.since)
    if where.label is not None:
        # A JSON path that works alike on SQLite and PostgreSQL (an "is not null" on the label
        # alone does not: SQLite quotes the missing value as the string 'null').
        conditions.append(AuthorAccount.labels[where.label]["count"].as_integer() > 0)
    return conditions


def _ranked(row: Any, now: datetime, half_life_hours: float) -> tuple[float, float, int]:
    """An account's place in the listing, the greatest first: risk now, then the most recently
    seen, then the newest row."""
    risk = decayed(row.risk, row.risk_at, now, half_life_hours)
    return risk, row.last_seen.timestamp(), row.id


def _walk(session: Session, query: Select[int, float, datetime, datetime]) -> Iterable[Any]:
    """The rows of ``query`` (ordered by stored risk, highest first) in chunks, by keyset: the
    next chunk starts below the last (risk, id) read."""
    last: tuple[float, int] | None = None
    while True:
        page = query
        if last is not None:
            risk, row_id = last
            page = page.where(
                or_(
                    AuthorAccount.risk < risk,
                    and_(AuthorAccount.risk == risk, AuthorAccount.id > row_id),
                )
            )
        rows = session.execute(page.limit(_CHUNK)).all()
        yield from rows
        if len(rows) < _CHUNK:
            return
        last = (rows[-1].risk, rows[-1].id)


def account_list(
    session: Session,
    where: AccountFilter,
    *,
    half_life_hours: float,
    now: datetime | None = None,
) -> AccountPage:
    """Accounts by risk now (highest first; then the most recently seen), filtered and paged."""
    now = now or utcnow()
    conditions = _account_conditions(where)
    columns = select(
        AuthorAccount.id, AuthorAccount.risk, AuthorAccount.risk_at, AuthorAccount.last_seen
    ).where(*conditions)
    by_stored_risk = columns.order_by(AuthorAccount.risk.desc(), AuthorAccount.id)
    wanted = where.offset + where.limit
    if where.min_risk is not None and where.min_risk > 0:
        # Every candidate must be looked at to count them; the stored risk bounds the current.
        candidates = session.execute(
            by_stored_risk.where(AuthorAccount.risk >= where.min_risk)
        ).all()
        ranked = sorted(
            (
                rank
                for rank in (_ranked(row, now, half_life_hours) for row in candidates)
                if rank[0] >= where.min_risk
            ),
            reverse=True,
        )
        ids = [row_id for _, _, row_id in ranked[where.offset : wanted]]
        return _page(session, where, len(ranked), ids, now, half_life_hours)
    total = session.scalar(select(func.count()).select_from(columns.subquery())) or 0
    # Accounts whose stored risk is above 0: a heap of the `wanted` best seen so far (the worst
    # of them on top), and the walk ends when the next stored risk cannot beat that worst.
    kept: list[tuple[float, float, int]] = []
    for row in _walk(session, by_stored_risk.where(AuthorAccount.risk > 0)):
        if len(kept) == wanted and row.risk < kept[0][0]:
            break
        rank = _ranked(row, now, half_life_hours)
        if len(kept) < wanted:
            heapq.heappush(kept, rank)
        elif rank > kept[0]:
            heapq.heapreplace(kept, rank)
    ids = [row_id for _, _, row_id in sorted(kept, reverse=True)[where.offset :]]
    if len(kept) < wanted:
        # The walk saw every account at risk and the page runs past them: the rest are at 0,
        # the most recently seen first.
        zeros = session.scalars(
            select(AuthorAccount.id)
            .where(*conditions, AuthorAccount.risk <= 0)
            .order_by(AuthorAccount.last_seen.desc(), AuthorAccount.id.desc())
            .offset(max(0, where.offset - len(kept)))
            .limit(where.limit - len(ids))
        )
        ids += list(zeros)
    return _page(session, where, total, ids, now, half_life_hours)


def _page(
    session: Session,
    where: AccountFilter,
    total: int,
    ids: list[int],
    now: datetime,
    half_life_hours: float,
) -> AccountPage:
    rows = {
        a.id: a for a in session.scalars(select(AuthorAccount).where(AuthorAccount.id.in_(ids)))
    }
    accounts = [summary(rows[i], now, half_life_hours) for i in ids if i in rows]
    return AccountPage(total, where.limit, where.offset, accounts)


def get_account(session: Session, platform: str, author_ref: str) -> AuthorAccount | None:
    return session.scalars(
        select(AuthorAccount).where(
            AuthorAccount.platform == platform, AuthorAccount.author_ref == author_ref
        )
    ).one_or_none()


# --- one account ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DayBucket:
    day: date
    posts: int
    flagged: int
    max_severity: int


@dataclass(frozen=True)
class PostItem:
    key: str
    post_id: str
    at: datetime
    label: str | None
    severity: int
    likelihood: float
    text: str
    url: str
    language: str
    reach: int
    campaign_id: str | None
    alert_id: int | None


@dataclass(frozen=True)
class DecisionItem:
    id: int
    alert_id: int
    outcome: str
    reason: str
    decided_by: str | None
    decided_at: datetime
    approval_status: str
    approved_by: str | None
    approved_at: datetime | None


@dataclass(frozen=True)
class AlertItem:
    """An alert concerning the account: about one of its posts, a campaign it took part in, or
    the account itself (``content_kind`` "account"). Without text or evidence, as in the queue's
    listing."""

    id: int
    source: str
    content_kind: str
    content_ref: str
    status: str
    severity: int
    explanation: str
    created_at: datetime
    decisions: list[DecisionItem]


@dataclass(frozen=True)
class LinkItem:
    """A link the posts show: ``out`` from this account to ``author_ref``, or ``in`` from it."""

    direction: Literal["out", "in"]
    author_ref: str
    kind: str
    count: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class CampaignShare:
    """A campaign the account posted in: its posts there, whether it started it, and the
    campaign's size."""

    campaign_id: str
    posts: int
    first: bool
    campaign_posts: int
    accounts: int


@dataclass(frozen=True)
class MediaPeer:
    """Another account whose attached images matched a bank this account's matched too."""

    platform: str
    author_ref: str
    banks: list[str]
    risk: float
    last_seen: datetime


@dataclass(frozen=True)
class AccountView:
    account: AccountSummary
    #: Other platforms where the same reference posts: separate accounts (perhaps not even the
    #: same person).
    also_on: list[str]
    #: Days with posts (UTC), oldest first.
    days: list[DayBucket]
    #: The most recent posts (``posts_offset``/``posts_limit``), newest first.
    posts: list[PostItem]
    alerts_total: int
    #: The most recent :data:`MAX_ALERTS`, with their decisions.
    alerts: list[AlertItem]
    links_out: list[LinkItem]
    links_in: list[LinkItem]
    campaigns: list[CampaignShare]
    shared_media: list[MediaPeer]


def _post_item(record: PostRecord) -> PostItem:
    label = record.scores.get("label")
    return PostItem(
        key=record.key,
        post_id=record.post_id,
        at=record.created_at or record.scanned_at,
        label=label if isinstance(label, str) else None,
        severity=record.severity,
        likelihood=float(record.scores.get("likelihood") or 0.0),
        text=record.text,
        url=record.url,
        language=record.language,
        reach=record.reach,
        campaign_id=record.campaign_id,
        alert_id=record.alert_id,
    )


def of_account(platform: str, author_ref: str) -> ColumnElement[bool]:
    return and_(PostRecord.platform == platform, PostRecord.author_ref == author_ref)


def _days(session: Session, platform: str, author_ref: str) -> list[DayBucket]:
    rows = session.execute(
        select(post_at().label("at"), PostRecord.severity).where(of_account(platform, author_ref))
    )
    posts: Counter[date] = Counter()
    flagged: Counter[date] = Counter()
    worst: dict[date, int] = {}
    for at, severity in rows:
        day = _utc(at).date()
        posts[day] += 1
        # Triage gives a severity above 0 exactly when it gave the post a label.
        flagged[day] += severity > 0
        worst[day] = max(worst.get(day, 0), severity)
    return [DayBucket(day, posts[day], flagged[day], worst[day]) for day in sorted(posts)]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def account_alert_ids(session: Session, account: AuthorAccount) -> list[int]:
    """Ids of the alerts concerning the account, newest first: those naming it as author (its
    posts', the campaigns it started, its own) and those its posts were queued under."""
    named = select(Alert.id).where(
        Alert.platform == account.platform, Alert.author_ref == account.author_ref
    )
    queued = select(PostRecord.alert_id).where(
        of_account(account.platform, account.author_ref), PostRecord.alert_id.is_not(None)
    )
    ids = {*session.scalars(named), *(i for i in session.scalars(queued.distinct()) if i)}
    if account.alert_id is not None:
        ids.add(account.alert_id)
    return sorted(ids, reverse=True)


def _user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(UserAccount.id, UserAccount.username).where(UserAccount.id.in_(wanted))
    )
    return {row.id: row.username for row in rows}


def decisions_on(session: Session, alert_ids: Sequence[int]) -> dict[int, list[DecisionItem]]:
    decisions = list(
        session.scalars(
            select(Decision).where(Decision.alert_id.in_(alert_ids)).order_by(Decision.id)
        )
    )
    names = _user_names(
        session, [d.user_id for d in decisions] + [d.approved_by for d in decisions]
    )
    by_alert: dict[int, list[DecisionItem]] = defaultdict(list)
    for d in decisions:
        by_alert[d.alert_id].append(
            DecisionItem(
                id=d.id,
                alert_id=d.alert_id,
                outcome=d.outcome,
                reason=d.reason,
                decided_by=names.get(d.user_id) if d.user_id is not None else None,
                decided_at=d.created_at,
                approval_status=d.approval_status,
                approved_by=names.get(d.approved_by) if d.approved_by is not None else None,
                approved_at=d.approved_at,
            )
        )
    return by_alert


def _alerts(session: Session, ids: Sequence[int]) -> list[AlertItem]:
    alerts = list(session.scalars(select(Alert).where(Alert.id.in_(ids)).order_by(Alert.id.desc())))
    decisions = decisions_on(session, ids)
    return [
        AlertItem(
            id=a.id,
            source=a.source,
            content_kind=a.content_kind,
            content_ref=a.content_ref,
            status=a.status,
            severity=a.severity,
            explanation=a.explanation,
            created_at=a.created_at,
            decisions=decisions.get(a.id, []),
        )
        for a in alerts
    ]


def links_of(
    session: Session, account: AuthorAccount, limit: int | None = MAX_LINKS
) -> tuple[list[LinkItem], list[LinkItem]]:
    """The account's links out and in, the most used first."""

    def links(direction: Literal["out", "in"]) -> list[LinkItem]:
        mine, other = AccountLink.source_ref, AccountLink.target_ref
        if direction == "in":
            mine, other = other, mine
        query = (
            select(AccountLink, other)
            .where(AccountLink.platform == account.platform, mine == account.author_ref)
            .order_by(AccountLink.count.desc(), AccountLink.last_at.desc(), AccountLink.id)
            .limit(limit)
        )
        return [
            LinkItem(direction, ref, link.kind, link.count, link.first_at, link.last_at)
            for link, ref in session.execute(query)
        ]

    return links("out"), links("in")


def account_campaigns(session: Session, account: AuthorAccount) -> list[CampaignShare]:
    own = of_account(account.platform, account.author_ref)
    joined = session.execute(
        select(PostRecord.campaign_id, func.count())
        .where(own, PostRecord.campaign_id.is_not(None))
        .group_by(PostRecord.campaign_id)
    )
    counts: Counter[str] = Counter()
    for campaign_id, posts in joined:
        if campaign_id is not None:
            counts[campaign_id] += posts
    # Campaigns this account started: those named after one of its posts, which was stored
    # before it had a copy (so without the campaign's id, and not counted above).
    member = PostRecord.__table__.alias("member")
    started: set[str] = set()
    firsts = select(member.c.campaign_id, PostRecord.campaign_id).where(
        own, member.c.campaign_id == PostRecord.key
    )
    for campaign_id, its_own in session.execute(firsts.distinct()):
        started.add(campaign_id)
        counts[campaign_id] += campaign_id != its_own
    ids = [campaign_id for campaign_id, _ in counts.most_common(MAX_CAMPAIGNS)]
    # Every one has a post carrying its id: a summary each.
    sizes = {found.id: found for found in campaign_summaries(session, ids)}
    return [
        CampaignShare(
            campaign_id=campaign_id,
            posts=counts[campaign_id],
            first=campaign_id in started,
            campaign_posts=sizes[campaign_id].posts,
            accounts=sizes[campaign_id].accounts,
        )
        for campaign_id in ids
    ]


def _contains_bank(session: Session, bank: str) -> ColumnElement[bool]:
    """``author_account.banks`` (a JSON list) holds ``bank``."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(AuthorAccount.banks, JSONB).contains([bank])
    values = func.json_each(AuthorAccount.banks).table_valued("value")
    return exists(select(literal_column("1")).select_from(values).where(values.c.value == bank))


def _shared_media(
    session: Session, account: AuthorAccount, now: datetime, half_life_hours: float
) -> list[MediaPeer]:
    peers: dict[int, tuple[AuthorAccount, set[str]]] = {}
    for bank in sorted(account.banks):
        query = (
            select(AuthorAccount)
            .where(_contains_bank(session, bank), AuthorAccount.id != account.id)
            .order_by(AuthorAccount.last_seen.desc(), AuthorAccount.id)
            .limit(MAX_PEERS)
        )
        for peer in session.scalars(query):
            peers.setdefault(peer.id, (peer, set()))[1].add(bank)
    shown = [
        MediaPeer(
            platform=peer.platform,
            author_ref=peer.author_ref,
            banks=sorted(banks),
            risk=decayed(peer.risk, peer.risk_at, now, half_life_hours),
            last_seen=peer.last_seen,
        )
        for peer, banks in peers.values()
    ]
    shown.sort(key=lambda p: (-len(p.banks), -p.risk, p.platform, p.author_ref))
    return shown[:MAX_PEERS]


def account_view(
    session: Session,
    platform: str,
    author_ref: str,
    *,
    half_life_hours: float,
    posts_limit: int = 50,
    posts_offset: int = 0,
    now: datetime | None = None,
) -> AccountView | None:
    """Everything known about one account (None when it never posted)."""
    now = now or utcnow()
    account = get_account(session, platform, author_ref)
    if account is None:
        return None
    also_on = sorted(
        session.scalars(
            select(AuthorAccount.platform).where(
                AuthorAccount.author_ref == author_ref, AuthorAccount.platform != platform
            )
        )
    )
    posts = session.scalars(
        select(PostRecord)
        .where(of_account(platform, author_ref))
        .order_by(post_at().desc(), PostRecord.id.desc())
        .offset(posts_offset)
        .limit(posts_limit)
    )
    alert_ids = account_alert_ids(session, account)
    links_out, links_in = links_of(session, account)
    return AccountView(
        account=summary(account, now, half_life_hours),
        also_on=also_on,
        days=_days(session, platform, author_ref),
        posts=[_post_item(p) for p in posts],
        alerts_total=len(alert_ids),
        alerts=_alerts(session, alert_ids[:MAX_ALERTS]),
        links_out=links_out,
        links_in=links_in,
        campaigns=account_campaigns(session, account),
        shared_media=_shared_media(session, account, now, half_life_hours),
    )


# --- campaigns ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignSummary:
    id: str
    posts: int
    #: Distinct accounts (platform and reference) that posted in it.
    accounts: int
    first_at: datetime
    last_at: datetime
    max_severity: int
    #: The campaign's queue item (``text:campaign:<id>``), once it became one.
    alert_id: int | None


@dataclass(frozen=True)
class CampaignPage:
    total: int
    limit: int
    offset: int
    campaigns: list[CampaignSummary]


def _in_campaign(campaign_id: str) -> ColumnElement[bool]:
    return or_(PostRecord.campaign_id == campaign_id, PostRecord.key == campaign_id)


def _campaign_alerts(session: Session, ids: Sequence[str]) -> dict[str, int]:
    keys = {f"text:campaign:{campaign_id}"[:128]: campaign_id for campaign_id in ids}
    rows = session.execute(select(Alert.dedupe_key, Alert.id).where(Alert.dedupe_key.in_(keys)))
    return {keys[row.dedupe_key]: row.id for row in rows}


def campaign_summaries(session: Session, ids: Sequence[str]) -> list[CampaignSummary]:
    """The campaigns ``ids`` (those with posts), in that order."""
    if not ids:
        return []
    at = post_at()
    aggregates: dict[str, list[Any]] = {}
    members: dict[str, set[str]] = defaultdict(set)
    grouped = session.execute(
        select(
            PostRecord.campaign_id,
            func.count(),
            func.min(at),
            func.max(at),
            func.max(PostRecord.severity),
        )
        .where(PostRecord.campaign_id.in_(ids))
        .group_by(PostRecord.campaign_id)
    )
    for campaign_id, posts, first, last, severity in grouped:
        if campaign_id is not None:
            aggregates[campaign_id] = [posts, _utc(first), _utc(last), severity]
    # Distinct accounts, and the first posts (stored without the campaign id they started).
    authors = session.execute(
        select(PostRecord.campaign_id, PostRecord.platform, PostRecord.author_ref)
        .where(PostRecord.campaign_id.in_(ids), PostRecord.author_ref != "")
        .distinct()
    )
    for campaign_id, platform, author_ref in authors:
        if campaign_id is not None:
            members[campaign_id].add(f"{platform}:{author_ref}")
    firsts = session.execute(
        select(
            PostRecord.key, PostRecord.platform, PostRecord.author_ref, at, PostRecord.severity
        ).where(
            PostRecord.key.in_(list(aggregates)),
            # Not counted twice should it carry the campaign's id after all.
            PostRecord.campaign_id.is_distinct_from(PostRecord.key),
        )
    )
    for key, platform, author_ref, first_at, severity in firsts:
        found = aggregates[key]
        found[0] += 1
        found[1] = min(found[1], _utc(first_at))
        found[3] = max(found[3], severity)
        if author_ref:
            members[key].add(f"{platform}:{author_ref}")
    alerts = _campaign_alerts(session, list(aggregates))
    return [
        CampaignSummary(
            id=campaign_id,
            posts=aggregates[campaign_id][0],
            accounts=len(members[campaign_id]),
            first_at=aggregates[campaign_id][1],
            last_at=aggregates[campaign_id][2],
            max_severity=aggregates[campaign_id][3],
            alert_id=alerts.get(campaign_id),
        )
        for campaign_id in ids
        if campaign_id in aggregates
    ]


def campaign_list(
    session: Session, *, since: datetime | None = None, limit: int = 50, offset: int = 0
) -> CampaignPage:
    """Campaigns, the most recently active first."""
    last = func.max(post_at())
    query = (
        select(PostRecord.campaign_id)
        .where(PostRecord.campaign_id.is_not(None))
        .group_by(PostRecord.campaign_id)
    )
    if since is not None:
        query = query.having(last >= since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = query.order_by(last.desc(), PostRecord.campaign_id).offset(offset).limit(limit)
    ids = [campaign_id for campaign_id in session.scalars(page) if campaign_id is not None]
    return CampaignPage(total, limit, offset, campaign_summaries(session, ids))


@dataclass(frozen=True)
class CampaignMember:
    platform: str
    author_ref: str
    #: The account's posts in the campaign, when the first and last were made, the highest
    #: severity among them.
    posts: int
    first_at: datetime
    last_at: datetime
    max_severity: int
    #: The account's risk now (0 when the ledger has not seen it).
    risk: float
    #: It made the campaign's first post.
    first: bool


@dataclass(frozen=True)
class SpreadBucket:
    start: datetime
    posts: int
    #: Accounts whose first post in the campaign fell in this bucket, and all so far.
    new_accounts: int
    accounts: int


@dataclass(frozen=True)
class CampaignView:
    campaign: CampaignSummary
    first_post: PostItem | None
    members_total: int
    #: In the order they joined (first post in the campaign), at most ``max_members``.
    members: list[CampaignMember]
    bucket: Literal["hour", "day"]
    #: Every bucket from the first post to the last, empty ones included (only those with
    #: posts past :data:`MAX_SPREAD_BUCKETS`).
    spread: list[SpreadBucket]


def campaign_members(
    session: Session,
    campaign_id: str,
    *,
    half_life_hours: float,
    now: datetime | None = None,
) -> list[CampaignMember]:
    """Every account that posted in the campaign, in the order they joined."""
    now = now or utcnow()
    at = post_at()
    rows = session.execute(
        select(
            PostRecord.platform,
            PostRecord.author_ref,
            func.count(),
            func.min(at),
            func.max(at),
            func.max(PostRecord.severity),
        )
        .where(_in_campaign(campaign_id), PostRecord.author_ref != "")
        .group_by(PostRecord.platform, PostRecord.author_ref)
    ).all()
    first = session.execute(
        select(PostRecord.platform, PostRecord.author_ref).where(PostRecord.key == campaign_id)
    ).one_or_none()
    risks = _risks(session, [(row[0], row[1]) for row in rows], now, half_life_hours)
    members = [
        CampaignMember(
            platform=platform,
            author_ref=author_ref,
            posts=posts,
            first_at=_utc(first_at),
            last_at=_utc(last_at),
            max_severity=severity,
            risk=risks.get((platform, author_ref), 0.0),
            first=first is not None and (platform, author_ref) == tuple(first),
        )
        for platform, author_ref, posts, first_at, last_at, severity in rows
    ]
    members.sort(key=lambda m: (not m.first, m.first_at, m.platform, m.author_ref))
    return members


def _risks(
    session: Session,
    accounts: Sequence[tuple[str, str]],
    now: datetime,
    half_life_hours: float,
) -> dict[tuple[str, str], float]:
    """Risk now of each (platform, author_ref) the ledger knows."""
    risks: dict[tuple[str, str], float] = {}
    wanted = set(accounts)
    refs = sorted({ref for _, ref in accounts})
    for start in range(0, len(refs), _CHUNK):
        rows = session.execute(
            select(
                AuthorAccount.platform,
                AuthorAccount.author_ref,
                AuthorAccount.risk,
                AuthorAccount.risk_at,
            ).where(AuthorAccount.author_ref.in_(refs[start : start + _CHUNK]))
        )
        for platform, ref, risk, risk_at in rows:
            if (platform, ref) in wanted:
                risks[(platform, ref)] = decayed(risk, risk_at, now, half_life_hours)
    return risks


def _spread(
    session: Session, campaign_id: str, members: Sequence[CampaignMember]
) -> tuple[Literal["hour", "day"], list[SpreadBucket]]:
    times = sorted(
        _utc(t) for t in session.scalars(select(post_at()).where(_in_campaign(campaign_id)))
    )
    if not times:
        return "hour", []
    unit: Literal["hour", "day"] = "hour" if times[-1] - times[0] <= HOURLY_SPAN else "day"
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)

    def floor(moment: datetime) -> datetime:
        hour = moment.replace(minute=0, second=0, microsecond=0)
        return hour if unit == "hour" else hour.replace(hour=0)

    posts = Counter(floor(t) for t in times)
    joined = Counter(floor(m.first_at) for m in members)
    first, last = floor(times[0]), floor(times[-1])
    if (last - first) / step < MAX_SPREAD_BUCKETS:
        starts = [first + step * n for n in range(int((last - first) / step) + 1)]
    else:
        starts = sorted(posts)
    buckets: list[SpreadBucket] = []
    seen = 0
    for start in starts:
        seen += joined[start]
        buckets.append(SpreadBucket(start, posts[start], joined[start], seen))
    return unit, buckets


def campaign_view(
    session: Session,
    campaign_id: str,
    *,
    half_life_hours: float,
    max_members: int = 200,
    now: datetime | None = None,
) -> CampaignView | None:
    """A campaign: its size, first post, the accounts in it and its spread (None: no such
    campaign)."""
    summaries = campaign_summaries(session, [campaign_id])
    if not summaries:
        return None
    members = campaign_members(session, campaign_id, half_life_hours=half_life_hours, now=now)
    first = session.scalars(select(PostRecord).where(PostRecord.key == campaign_id)).one_or_none()
    unit, spread = _spread(session, campaign_id, members)
    return CampaignView(
        campaign=summaries[0],
        first_post=_post_item(first) if first is not None else None,
        members_total=len(members),
        members=members[:max_members],
        bucket=unit,
        spread=spread,
    )
