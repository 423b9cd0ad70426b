"""The account ledger: a post hook (:mod:`vigil.text.hooks`) that keeps every author's history
and risk as its posts are stored, the links between accounts the posts show, and the
account-level alert.

Per batch, inside the scanner's transaction (so exactly once in effect, like the posts):

* **Accounts** (``author_account``): one row per ``(platform, author_ref)`` with counts, per
  label count and highest severity, first/last seen, matched banks, and the risk
  (:mod:`vigil.networks.risk`). New accounts are inserted with ``ON CONFLICT DO NOTHING`` (another
  worker may insert the same one at the same moment) and then every account of the batch is read
  ``FOR UPDATE`` in key order, so that two workers' updates of one account serialise instead of
  losing one another's counts, and cannot deadlock. A post without an ``author_ref`` counts for
  no account.
* **Links** (``account_link``): a reply or repost links its author to the parent post's author
  (found by the parent's key ``platform:id``; a parent not stored yet makes no link), a mention to
  the account mentioned; one upsert per batch adds to the counts.
* **Alerts**: an account whose risk reaches ``VIGIL_ACCOUNTS_RISK_THRESHOLD`` raises one account
  alert (source ``accounts``, content ``account``: decisions need a second person) with its most
  severe recent posts as evidence and the risk's breakdown as explanation; while the alert is in
  the queue, each batch's flagged posts of the account are added to it. Once a reviewer decided
  it, the account alerts again only when its risk exceeds the risk the alert was decided at
  (``Alert.score``) by ``VIGIL_ACCOUNTS_REARM_MARGIN``.

Queries per batch: the accounts (two: which exist, then the locked read; one more insert when
some are new), the links (one to find the parents' authors, one upsert), and for the accounts
with flagged posts, their earlier flagged posts of the last hour and their decided alerts; the
accounts that alert read their recent flagged posts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vigil import review
from vigil.config import Settings
from vigil.networks.keys import Key, keys_in
from vigil.networks.risk import (
    BURST_WINDOW,
    RiskWeights,
    burst_positions,
    contribution,
    decayed,
    rearmed,
)
from vigil.networks.settings import NetworkSettings
from vigil.store.models import AccountLink, Alert, AuthorAccount, PostRecord, utcnow
from vigil.text import StoredPost

ACTOR = "system:accounts"
#: Posts an account alert shows when raised, and adds per batch while it grows.
EVIDENCE_POSTS = 10
#: Statuses of a decision that counts for the account's record (risk.decision_factor).
RECORD_STATUSES = ("confirmed", "referred")
#: Keys per ``IN`` list: well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 500
_TIMES = "\N{MULTIPLICATION SIGN}"

T = TypeVar("T")


def dedupe_key(platform: str, author_ref: str, after: int | None = None) -> str:
    """The account alert's key; ``after``: the decided alert a new one follows."""
    key = f"account:{platform}:{author_ref}"
    return (key if after is None else f"{key}:after:{after}")[:128]


@dataclass
class _Change:
    """One account's part of a batch."""

    account: AuthorAccount
    posts: list[StoredPost]
    flagged: list[StoredPost] = field(default_factory=list)
    #: The most flagged posts within an hour among this batch's (risk.burst_positions).
    burst: int = 0
    decisions: int = 0


class AccountLedger:
    """Keeps accounts, links and account alerts; give it to the scanner as a hook."""

    def __init__(
        self,
        settings: NetworkSettings,
        weights: review.PriorityWeights,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``clock``: what "now" is for the risk's decay; a replayed stream (the benchmark)
        passes its own."""
        self.risk = RiskWeights.of(settings)
        self.weights = weights
        self.clock = clock

    @classmethod
    def of(cls, settings: Settings) -> AccountLedger:
        """The ledger ``settings`` describe (the composition roots' one line)."""
        return cls(NetworkSettings.of(settings), review.PriorityWeights.of(settings))

    def stored(self, session: Session, posts: Sequence[StoredPost]) -> None:
        now = self.clock()
        grouped: dict[Key, list[StoredPost]] = {}
        for post in posts:
            if post.author_ref:
                grouped.setdefault((post.platform, post.author_ref), []).append(post)
        if grouped:
            accounts = _locked_accounts(session, sorted(grouped), now)
            changes = {key: _Change(accounts[key], grouped[key]) for key in sorted(grouped)}
            self._update(session, changes, {post.key for post in posts}, now)
            self._alert(session, changes, now)
        _add_links(session, posts)

    def _update(
        self, session: Session, changes: dict[Key, _Change], batch: set[str], now: datetime
    ) -> None:
        for change in changes.values():
            change.flagged = sorted(
                (post for post in change.posts if post.severity > 0), key=lambda p: (p.at, p.key)
            )
        flagged = [key for key, change in changes.items() if change.flagged]
        earlier = _earlier_flagged(session, flagged, changes, batch)
        decisions = _decisions(session, flagged)
        for key, change in changes.items():
            change.decisions = decisions.get(key, 0)
            positions = burst_positions(earlier.get(key, []), [p.at for p in change.flagged])
            change.burst = max(positions, default=0)
            added = sum(
                contribution(
                    post.severity,
                    post.likelihood,
                    position,
                    change.decisions,
                    post.at,
                    now,
                    self.risk,
                )
                for post, position in zip(change.flagged, positions, strict=True)
            )
            _count(change, now, added, self.risk.half_life_hours)

    def _alert(self, session: Session, changes: dict[Key, _Change], now: datetime) -> None:
        ids = [c.account.alert_id for c in changes.values() if c.account.alert_id is not None]
        alerts = {
            alert.id: alert
            for chunk in _chunks(ids)
            for alert in session.scalars(select(Alert).where(Alert.id.in_(chunk)))
        }
        raise_: list[tuple[_Change, Alert | None]] = []
        grow: list[tuple[_Change, Alert]] = []
        for change in changes.values():
            account = change.account
            alert = alerts.get(account.alert_id) if account.alert_id is not None else None
            if alert is None:
                if account.risk >= self.risk.threshold:
                    raise_.append((change, None))
            elif alert.status in review.QUEUE_STATUSES:
                if change.flagged:
                    grow.append((change, alert))
            # An alert awaiting a second person's approval is left as the first one saw it.
            elif alert.status != "awaiting_approval" and rearmed(
                account.risk, alert.score, self.risk
            ):
                raise_.append((change, alert))
        if not raise_ and not grow:
            return
        recent = _recent_flagged(
            session,
            [(c.account.platform, c.account.author_ref) for c, _ in [*raise_, *grow]],
            now - timedelta(hours=self.risk.half_life_hours),
        )
        for change, decided in raise_:
            self._raise(session, change, decided, recent.get(_key(change.account), []), now)
        for change, alert in grow:
            self._grow(session, change, alert, recent.get(_key(change.account), []))

    def _raise(
        self,
        session: Session,
        change: _Change,
        decided: Alert | None,
        recent: list[_Recent],
        now: datetime,
    ) -> None:
        account = change.account
        evidence = sorted(recent, key=_severest)[:EVIDENCE_POSTS]
        explanation = self._explain(change, recent)
        if decided is not None:
            explanation = (
                f"again after alert {decided.id} was {decided.status} at risk "
                f"{decided.score:.1f}: {explanation}"
            )
        new = review.NewAlert(
            dedupe_key=dedupe_key(
                account.platform, account.author_ref, decided.id if decided else None
            ),
            source="accounts",
            content_kind="account",
            content_ref=f"{account.platform}:{account.author_ref}",
            platform=account.platform,
            author_ref=account.author_ref,
            signals=[self._signal(change, recent)],
            evidence=[item.evidence() for item in evidence],
            explanation=explanation,
            score=account.risk,
            severity=max((item.severity for item in recent), default=0),
            likelihood=max((item.likelihood for item in recent), default=0.0),
            reach=sum(item.reach for item in recent),
            velocity=float(change.burst),
            occurred_at=now,
        )
        alert, _ = review.create_alert(session, new, weights=self.weights, actor=ACTOR)
        account.alert_id = alert.id

    def _grow(self, session: Session, change: _Change, alert: Alert, recent: list[_Recent]) -> None:
        added = sorted((_Recent.of_post(post) for post in change.flagged), key=_severest)[
            :EVIDENCE_POSTS
        ]
        update = review.DetectionUpdate(
            severity=max((item.severity for item in recent), default=0),
            likelihood=max((item.likelihood for item in recent), default=0.0),
            score=change.account.risk,
            reach=sum(item.reach for item in recent),
            velocity=float(change.burst),
            explanation=self._explain(change, recent),
            evidence=[item.evidence() for item in added],
        )
        review.update_detection(session, alert.id, update, weights=self.weights, actor=ACTOR)

    def _explain(self, change: _Change, recent: list[_Recent]) -> str:
        """E.g. "risk 31.2 ≥ 25: 6 flagged posts in 72 h (threat_incitement x5, hate x1, max
        severity 9), 5 within an hour, 1 confirmed decision" (with a multiplication sign)."""
        risk = change.account.risk
        relation = "≥" if risk >= self.risk.threshold else "<"
        labels = Counter(item.label for item in recent)
        detail = [f"{label} {_TIMES}{n}" for label, n in labels.most_common()]
        if recent:
            detail.append(f"max severity {max(item.severity for item in recent)}")
        parts = [
            f"risk {risk:.1f} {relation} {self.risk.threshold:g}: {len(recent)} flagged posts in "
            f"{self.risk.half_life_hours:g} h" + (f" ({', '.join(detail)})" if detail else "")
        ]
        if change.burst > 1:
            parts.append(f"{change.burst} within an hour")
        if change.decisions:
            plural = "s" if change.decisions > 1 else ""
            parts.append(f"{change.decisions} confirmed decision{plural}")
        return ", ".join(parts)

    def _signal(self, change: _Change, recent: list[_Recent]) -> dict[str, Any]:
        return {
            "type": "account_risk",
            "risk": round(change.account.risk, 3),
            "threshold": self.risk.threshold,
            "half_life_hours": self.risk.half_life_hours,
            "recent_flagged": len(recent),
            "labels": dict(Counter(item.label for item in recent)),
            "burst": change.burst,
            "decisions": change.decisions,
        }


@dataclass(frozen=True)
class _Recent:
    """A flagged post as an account alert shows it."""

    key: str
    label: str
    severity: int
    likelihood: float
    at: datetime
    reach: int
    alert_id: int | None

    @classmethod
    def of_post(cls, post: StoredPost) -> _Recent:
        return cls(
            post.key,
            post.label or "",
            post.severity,
            post.likelihood,
            post.at,
            post.reach,
            post.alert_id,
        )

    def evidence(self) -> dict[str, Any]:
        return {
            "type": "account_post",
            "post": self.key,
            "label": self.label,
            "severity": self.severity,
            "likelihood": round(self.likelihood, 4),
            "at": self.at.isoformat(),
            "alert_id": self.alert_id,
        }


def _severest(item: _Recent) -> tuple[int, float, float]:
    # Sorted ascending by this: most severe, then most likely, then most recent first.
    return (-item.severity, -item.likelihood, -item.at.timestamp())


def _key(account: AuthorAccount) -> Key:
    return (account.platform, account.author_ref)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _account_in(keys: Sequence[Key]) -> ColumnElement[bool]:
    return keys_in(AuthorAccount.platform, AuthorAccount.author_ref, keys)


def _locked_accounts(session: Session, keys: list[Key], now: datetime) -> dict[Key, AuthorAccount]:
    """The batch's accounts, the new ones created, all locked (``keys`` sorted)."""
    known: set[Key] = set()
    for chunk in _chunks(keys):
        rows = session.execute(
            select(AuthorAccount.platform, AuthorAccount.author_ref).where(_account_in(chunk))
        )
        known.update((row.platform, row.author_ref) for row in rows)
    new = [key for key in keys if key not in known]
    if new:
        # Another worker may be inserting the same account: its row wins and this insert waits
        # for it (PostgreSQL) and does nothing; the locked read below then finds it.
        session.execute(
            _insert(session)(AuthorAccount.__table__).on_conflict_do_nothing(
                index_elements=["platform", "author_ref"]
            ),
            [
                {
                    "platform": platform,
                    "author_ref": ref,
                    "first_seen": now,
                    "last_seen": now,
                    "posts": 0,
                    "flagged": 0,
                    "labels": {},
                    "banks": [],
                    "risk": 0.0,
                    "risk_at": now,
                    "peak_risk": 0.0,
                }
                for platform, ref in new
            ],
        )
    accounts: dict[Key, AuthorAccount] = {}
    for chunk in _chunks(keys):
        # Locked in key order in every worker, after any insert: no two batches can wait on
        # each other.
        query = (
            select(AuthorAccount)
            .where(_account_in(chunk))
            .order_by(AuthorAccount.platform, AuthorAccount.author_ref)
            .with_for_update()
        )
        for account in session.scalars(query):
            accounts[_key(account)] = account
    return accounts


def _count(change: _Change, now: datetime, added: float, half_life_hours: float) -> None:
    account, posts = change.account, change.posts
    first = min(post.at for post in posts)
    last = max(post.at for post in posts)
    # A new row was created with "now"; its first post decides.
    fresh = account.posts == 0
    account.first_seen = first if fresh else min(account.first_seen, first)
    account.last_seen = last if fresh else max(account.last_seen, last)
    account.posts += len(posts)
    account.flagged += len(change.flagged)
    labels = {label: dict(entry) for label, entry in account.labels.items()}
    for post in change.flagged:
        entry = labels.setdefault(post.label or "", {"count": 0, "max_severity": 0})
        entry["count"] += 1
        entry["max_severity"] = max(entry["max_severity"], post.severity)
    # JSON columns are compared by identity: new objects, so the change is written.
    account.labels = labels
    banks = set(account.banks).union(*(post.banks for post in posts))
    if len(banks) > len(account.banks):
        account.banks = sorted(banks)
    account.risk = decayed(account.risk, account.risk_at, now, half_life_hours) + added
    account.risk_at = max(account.risk_at, now)
    account.peak_risk = max(account.peak_risk, account.risk)


def _post_time(since: datetime) -> ColumnElement[bool]:
    """A post's time (created, else scanned) at or after ``since``."""
    return or_(
        PostRecord.created_at >= since,
        and_(PostRecord.created_at.is_(None), PostRecord.scanned_at >= since),
    )


def _author_in(keys: Sequence[Key]) -> ColumnElement[bool]:
    return keys_in(PostRecord.platform, PostRecord.author_ref, keys)


def _earlier_flagged(
    session: Session, keys: list[Key], changes: dict[Key, _Change], batch: set[str]
) -> dict[Key, list[datetime]]:
    """Times of the accounts' flagged posts stored before this batch, within an hour before
    the batch's first flagged post: the bursts the new posts continue."""
    if not keys:
        return {}
    since = min(changes[key].flagged[0].at for key in keys)
    found: dict[Key, list[datetime]] = {}
    for chunk in _chunks(keys):
        rows = session.execute(
            select(
                PostRecord.platform,
                PostRecord.author_ref,
                PostRecord.key,
                PostRecord.created_at,
                PostRecord.scanned_at,
            ).where(_author_in(chunk), PostRecord.severity > 0, _post_time(since - BURST_WINDOW))
        )
        for row in rows:
            if row.key not in batch:
                found.setdefault((row.platform, row.author_ref), []).append(
                    row.created_at or row.scanned_at
                )
    return found


def _decisions(session: Session, keys: list[Key]) -> dict[Key, int]:
    """Alerts on each account that reviewers confirmed or referred (its record)."""
    found: dict[Key, int] = {}
    for chunk in _chunks(keys):
        rows = session.execute(
            select(Alert.platform, Alert.author_ref, func.count(Alert.id))
            .where(
                keys_in(Alert.platform, Alert.author_ref, chunk),
                Alert.status.in_(RECORD_STATUSES),
            )
            .group_by(Alert.platform, Alert.author_ref)
        )
        found.update({(platform, ref): int(n) for platform, ref, n in rows})
    return found


def _recent_flagged(session: Session, keys: list[Key], since: datetime) -> dict[Key, list[_Recent]]:
    """The accounts' flagged posts since ``since`` (this batch's included: they are flushed)."""
    found: dict[Key, list[_Recent]] = {}
    for chunk in _chunks(sorted(set(keys))):
        rows = session.execute(
            select(
                PostRecord.platform,
                PostRecord.author_ref,
                PostRecord.key,
                PostRecord.severity,
                PostRecord.scores,
                PostRecord.created_at,
                PostRecord.scanned_at,
                PostRecord.reach,
                PostRecord.alert_id,
            ).where(_author_in(chunk), PostRecord.severity > 0, _post_time(since))
        )
        for row in rows:
            found.setdefault((row.platform, row.author_ref), []).append(
                _Recent(
                    key=row.key,
                    label=str(row.scores.get("label") or ""),
                    severity=row.severity,
                    likelihood=float(row.scores.get("likelihood") or 0.0),
                    at=row.created_at or row.scanned_at,
                    reach=row.reach,
                    alert_id=row.alert_id,
                )
            )
    return found


def _links(
    session: Session, posts: Iterable[StoredPost]
) -> dict[tuple[str, str, str, str], list[datetime]]:
    """(platform, source, target, kind) -> the times of the posts that make the link."""
    posts = [post for post in posts if post.author_ref]
    parents = sorted(
        {
            f"{post.platform}:{parent}"
            for post in posts
            for parent in (post.in_reply_to, post.repost_of)
            if parent
        }
    )
    authors: dict[str, str] = {}
    for chunk in _chunks(parents):
        rows = session.execute(
            select(PostRecord.key, PostRecord.author_ref).where(PostRecord.key.in_(chunk))
        )
        authors.update({row.key: row.author_ref for row in rows})
    links: dict[tuple[str, str, str, str], list[datetime]] = {}
    for post in posts:
        targets = [
            (authors.get(f"{post.platform}:{parent}", ""), kind)
            for parent, kind in ((post.in_reply_to, "reply"), (post.repost_of, "repost"))
            if parent
        ]
        targets += [(ref, "mention") for ref in dict.fromkeys(post.mentions)]
        for target, kind in targets:
            # A thread of one's own replies, or a self-mention, links an account to nothing.
            if target and target != post.author_ref:
                key = (post.platform, post.author_ref, target, kind)
                links.setdefault(key, []).append(post.at)
    return links


def _add_links(session: Session, posts: Iterable[StoredPost]) -> None:
    links = _links(session, posts)
    if not links:
        return
    table = AccountLink.__table__
    insert = _insert(session)(table)
    excluded = insert.excluded
    # One upsert, rows in key order (the order PostgreSQL locks them in, the same in every
    # worker): counts add up, first and last widen.
    statement = insert.on_conflict_do_update(
        index_elements=["platform", "source_ref", "target_ref", "kind"],
        set_={
            "count": table.c["count"] + excluded["count"],
            "first_at": case(
                (excluded.first_at < table.c.first_at, excluded.first_at), else_=table.c.first_at
            ),
            "last_at": case(
                (excluded.last_at > table.c.last_at, excluded.last_at), else_=table.c.last_at
            ),
        },
    )
    session.execute(
        statement,
        [
            {
                "platform": platform,
                "source_ref": source,
                "target_ref": target,
                "kind": kind,
                "count": len(times),
                "first_at": min(times),
                "last_at": max(times),
            }
            for (platform, source, target, kind), times in sorted(links.items())
        ],
    )
