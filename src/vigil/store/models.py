"""Tables of record. Hash banks live here; indexes are caches rebuilt from these rows."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# A 64-bit key on PostgreSQL; SQLite only auto-increments a plain INTEGER primary key. Every
# table sets sqlite_autoincrement so that SQLite, like a PostgreSQL sequence, never reuses an id.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive). A naive value
    given by a caller is taken to be UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


class Bank(Base):
    """A named list of known content. A negative bank holds known-benign content that vetoes
    matches from other banks (e.g. news footage that shares frames with an attack video)."""

    __tablename__ = "bank"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    negative: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Per-bank thresholds; NULL means the configured default.
    pdq_threshold: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vpdq_query_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    vpdq_index_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: What a match in this bank does: raise an alert for review, and/or act at once (e.g.
    #: "block" at upload for a bank of confirmed terrorist content). Recorded either way.
    alert_on_match: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_action: Mapped[str | None] = mapped_column(String(32), nullable=True)
    severity: Mapped[int] = mapped_column(Integer, default=5)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    entries: Mapped[list[BankEntry]] = relationship(
        back_populates="bank", cascade="all, delete-orphan", passive_deletes=True
    )


class BankEntry(Base):
    """One piece of known content in a bank, with the signals taken from it."""

    __tablename__ = "bank_entry"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="CASCADE"), index=True)
    labels: Mapped[list[str]] = mapped_column(default=list)
    source: Mapped[str] = mapped_column(String(256), default="")
    content_ref: Mapped[str] = mapped_column(Text, default="")
    #: When the content was first seen at its source, if known (not when we added it).
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    bank: Mapped[Bank] = relationship(back_populates="entries")
    signals: Mapped[list[EntrySignal]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", passive_deletes=True
    )


def lookup_key(value: str) -> str:
    """A short indexable key: the value itself when short (hashes), else its SHA-256."""
    return value if len(value) <= 64 else hashlib.sha256(value.encode()).hexdigest()


class EntrySignal(Base):
    """A hash of a bank entry. Ids only grow (never reused, even on SQLite) so that an index can
    follow the table by id: see ``vigil.hashing.index`` for how it copes with ids that commit
    out of order."""

    __tablename__ = "entry_signal"
    __table_args__ = (
        Index("ix_entry_signal_type_lookup", "signal_type", "lookup"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("bank_entry.id", ondelete="CASCADE"), index=True
    )
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="CASCADE"), index=True)
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    lookup: Mapped[str] = mapped_column(String(64))
    quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    variant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    entry: Mapped[BankEntry] = relationship(back_populates="signals")


class ApiToken(Base):
    """An API credential. Only a SHA-256 of the secret is stored."""

    __tablename__ = "api_token"
    __table_args__ = (UniqueConstraint("token_hash"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64))
    #: The person the token acts for; NULL for service tokens made before accounts existed.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), nullable=True, index=True
    )
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


# --- Review and action (users, audit, alerts, cases, decisions, outbox) -----------------------


class UserAccount(Base):
    """A person who signs in to the console or owns API tokens. ``roles`` is a list: one person
    may be both reviewer and investigator, and four-eyes rules compare people, not roles."""

    __tablename__ = "user_account"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    #: scrypt hash with its parameters and salt; NULL for accounts that only use tokens.
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    roles: Mapped[list[str]] = mapped_column(default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ConsoleSession(Base):
    """A signed-in console session. The cookie carries a random secret; only its SHA-256 is
    kept, so a copy of the database cannot be replayed as a login."""

    __tablename__ = "console_session"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEvent(Base):
    """One line of the append-only audit log. ``hash`` chains each event to the previous one
    (``prev_hash``), so a changed, inserted or deleted row breaks the chain where it happened."""

    __tablename__ = "audit_event"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(64), default="")
    object_id: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ReviewCase(Base):
    """Alerts about one incident or campaign, worked together."""

    __tablename__ = "review_case"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32), default="incident")
    status: Mapped[str] = mapped_column(String(32), default="open")
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Alert(Base):
    """Something a detector thinks a human should look at: one model for every capability."""

    __tablename__ = "alert"
    __table_args__ = (
        Index("ix_alert_queue", "status", "priority"),
        # An account's alerts and decisions (the account view, the ledger's decision count).
        Index("ix_alert_author", "platform", "author_ref"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: The same detection delivered twice (a retried request, a redelivered message) must not
    #: make a second alert: detectors derive this key from what they saw.
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    source: Mapped[str] = mapped_column(String(32))  # hashing, live, text, faces, report
    status: Mapped[str] = mapped_column(String(32), default="open")
    content_kind: Mapped[str] = mapped_column(String(32))  # image, video, stream, text, account
    content_ref: Mapped[str] = mapped_column(Text, default="")
    platform: Mapped[str] = mapped_column(String(64), default="")
    author_ref: Mapped[str] = mapped_column(String(256), default="")
    url: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    signals: Mapped[list[Any]] = mapped_column(JSON, default=list)
    matches: Mapped[list[Any]] = mapped_column(JSON, default=list)
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)
    explanation: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[float] = mapped_column(Float, default=0.0)
    severity: Mapped[int] = mapped_column(Integer, default=5)  # 0-10
    likelihood: Mapped[float] = mapped_column(Float, default=0.5)  # 0-1
    reach: Mapped[int] = mapped_column(BigInteger, default=0)
    velocity: Mapped[float] = mapped_column(Float, default=0.0)  # posts per hour (campaigns)
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_case.id", ondelete="SET NULL"), nullable=True, index=True
    )
    claimed_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Decision(Base):
    """A reviewer's decision on an alert. Decisions about a person (a referral, a face match)
    wait for a second person's approval before anything leaves vigil."""

    __tablename__ = "decision"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    outcome: Mapped[str] = mapped_column(String(32))  # confirm, dismiss, escalate, refer
    reason: Mapped[str] = mapped_column(Text)
    approval_status: Mapped[str] = mapped_column(String(32), default="not_required")
    approved_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Webhook(Base):
    """A receiver of actions. The secret signs every delivery (HMAC-SHA256)."""

    __tablename__ = "webhook"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    kinds: Mapped[list[str]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Action(Base):
    """An outbox row: committed in the same transaction as the decision that caused it, then
    delivered at least once. ``idempotency_key`` travels with every attempt so the receiver can
    drop duplicates."""

    __tablename__ = "action"
    __table_args__ = (
        Index("ix_action_due", "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # takedown, stream_cut, police_referral, ...
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert.id", ondelete="SET NULL"), nullable=True, index=True
    )
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("decision.id", ondelete="SET NULL"), nullable=True
    )
    webhook_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook.id", ondelete="SET NULL"), nullable=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: pending, awaiting_approval, delivered, dead, cancelled
    status: Mapped[str] = mapped_column(String(32), default="pending")
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ActionAttempt(Base):
    __tablename__ = "action_attempt"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("action.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)


class PublicReport(Base):
    """A report from the public. ``reference`` is what the reporter is given back."""

    __tablename__ = "public_report"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    url: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    media_path: Mapped[str] = mapped_column(Text, default="")
    #: A keyed hash of the client address, for rate limiting without keeping the address.
    client_hash: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert.id", ondelete="SET NULL"), nullable=True
    )


class PostRecord(Base):
    """A public post vigil scanned, harmful or not: the account and campaign views (and a
    restart's campaign state) are built from these rows. ``key`` is ``platform:id``; scanning the
    same post again finds it here and does nothing."""

    __tablename__ = "post"
    __table_args__ = (
        Index("ix_post_author", "platform", "author_ref"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(260), unique=True)
    platform: Mapped[str] = mapped_column(String(64))
    post_id: Mapped[str] = mapped_column(String(200))
    author_ref: Mapped[str] = mapped_column(String(256), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(16), default="")
    url: Mapped[str] = mapped_column(Text, default="")
    reach: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    #: Calibrated probability per label, the labels at their operating point, the top label's
    #: severity (0 when nothing was flagged) and the lexicon entries that hit.
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    flagged: Mapped[list[str]] = mapped_column(default=list)
    severity: Mapped[int] = mapped_column(Integer, default=0)
    lexicon: Mapped[list[str]] = mapped_column(default=list)
    #: Links to other posts and accounts, when the source data carries them (networks).
    links: Mapped[dict[str, Any]] = mapped_column(default=dict)
    campaign_id: Mapped[str | None] = mapped_column(String(260), nullable=True, index=True)
    #: The MinHash signature, so that campaigns survive a restart without rehashing texts.
    signature: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert.id", ondelete="SET NULL"), nullable=True
    )


class IngestCheckpoint(Base):
    """Where a post source stopped (a file's byte offset, a message count): committed with the
    posts it covers, so a restart resumes exactly there."""

    __tablename__ = "ingest_checkpoint"

    source: Mapped[str] = mapped_column(String(512), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Watchlist(Base):
    """A list of wanted people that face searches compare against. Governance is the point: it
    states why it exists and on what legal basis, has an owner and a review date, and cannot be
    searched until a second person (a supervisor) approved it, nor after it expired (its
    templates are then purged). ``model`` is the embedder its templates come from: templates of
    different models are not comparable."""

    __tablename__ = "watchlist"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    review_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: draft (editable, not searchable) -> approved -> expired (templates purged).
    status: Mapped[str] = mapped_column(String(16), default="draft")
    model: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    approved_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WatchlistEntry(Base):
    """A wanted person: a reference into the unit's own records and a display name, nothing
    else about them."""

    __tablename__ = "watchlist_entry"
    __table_args__ = (
        UniqueConstraint("watchlist_id", "person_ref"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(
        ForeignKey("watchlist.id", ondelete="CASCADE"), index=True
    )
    person_ref: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(256))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WatchlistImage(Base):
    """One enrolled image of an entry: where it came from, when it was taken, its quality, and
    the template and face crop, both encrypted with the faces key (``None`` once purged)."""

    __tablename__ = "watchlist_image"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("watchlist_entry.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(Text)
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    quality: Mapped[float] = mapped_column(Float)
    template: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    crop: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    enrolled_by: Mapped[str] = mapped_column(String(128))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FaceSearch(Base):
    """One search of probe media against approved watchlists, inside a case, with the offence
    it concerns and why it is necessary. Only the counts of faces that matched no one are kept:
    never their crops or templates."""

    __tablename__ = "face_search"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("review_case.id", ondelete="RESTRICT"))
    offence_ref: Mapped[str] = mapped_column(String(128))
    justification: Mapped[str] = mapped_column(Text)
    watchlists: Mapped[list[str]] = mapped_column(default=list)
    model: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float] = mapped_column(Float)
    requested_by: Mapped[str] = mapped_column(String(128))
    requester_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    #: What was searched: file names, media kinds, frames sampled, faces seen, faces with a
    #: candidate, errors per file.
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Where the probe media is kept until ``probe_purge_at`` (None: not kept).
    probe_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    probe_purge_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    probe_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: queued | running | done | failed: a search run inside its request is created "done"; a
    #: queued one waits for `vigil worker --role faces` (:mod:`vigil.faces.queue`).
    state: Mapped[str] = mapped_column(String(16), default="done", server_default="done")
    #: Why a failed search failed (a watchlist no longer searchable, the requester's rights).
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class FaceCandidate(Base):
    """A possible match of one probe face to one watchlist image: never an identification. It
    goes through two people: an operator, then the investigating officer, before it can be
    exported. ``status``: pending_operator -> pending_investigator -> confirmed, or rejected at
    either step."""

    __tablename__ = "face_candidate"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    search_id: Mapped[int] = mapped_column(
        ForeignKey("face_search.id", ondelete="CASCADE"), index=True
    )
    #: Which face of which probe: "<media name>#<face number>".
    probe: Mapped[str] = mapped_column(String(512))
    frame_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("watchlist_entry.id", ondelete="SET NULL"), nullable=True
    )
    image_id: Mapped[int | None] = mapped_column(
        ForeignKey("watchlist_image.id", ondelete="SET NULL"), nullable=True
    )
    watchlist: Mapped[str] = mapped_column(String(128))
    person_ref: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(256))
    #: The probe face, encrypted with the faces key.
    probe_crop: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="pending_operator", index=True)
    operator_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    operator_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    operator_note: Mapped[str] = mapped_column(Text, default="")
    operator_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    investigator_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    investigator_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    investigator_note: Mapped[str] = mapped_column(Text, default="")
    investigator_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LiveStream(Base):
    """A stream watched by ``vigil worker --role live`` processes. One worker at a time holds
    it under a lease it renews; a worker that stops renewing loses it to another once
    ``lease_until`` passes, and every claim bumps ``generation`` so that a worker whose lease
    was taken can no longer write here (its updates name the generation it holds)."""

    __tablename__ = "live_stream"

    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    #: The URL as given (credentials included: a worker needs them to pull the stream).
    url: Mapped[str] = mapped_column(Text)
    redacted_url: Mapped[str] = mapped_column(Text)
    #: name, platform, content_ref, metadata, reach, realtime.
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    #: The owner's latest view of the stream (what ``/v1/streams`` shows), with its trace.
    status: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    stop_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)


class LiveWorker(Base):
    """A live worker's heartbeat: how many workers share the streams (each takes its share)."""

    __tablename__ = "live_worker"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    capacity: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class AuthorAccount(Base):
    """An account seen posting on a platform (``author_ref``, pseudonymised at ingest when so
    configured), with running totals kept as its posts are stored, and its risk: a decayed sum
    that an account-level alert is raised on (:mod:`vigil.networks.risk`)."""

    __tablename__ = "author_account"
    __table_args__ = (
        UniqueConstraint("platform", "author_ref"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(64))
    author_ref: Mapped[str] = mapped_column(String(256))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    posts: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)
    #: Per label: {"count": n, "max_severity": s}.
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Banks its posts' attachments matched.
    banks: Mapped[list[str]] = mapped_column(default=list)
    #: The risk as of ``risk_at`` (it decays from there), and the highest it has been.
    risk: Mapped[float] = mapped_column(Float, default=0.0, index=True)
    risk_at: Mapped[datetime] = mapped_column(UTCDateTime())
    peak_risk: Mapped[float] = mapped_column(Float, default=0.0)
    #: The account-level alert, once its risk crossed the threshold.
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert.id", ondelete="SET NULL"), nullable=True
    )


class AccountLink(Base):
    """A directed link between two accounts of a platform that the posts show: ``reply``,
    ``repost`` or ``mention`` (from the source data), with how often and when."""

    __tablename__ = "account_link"
    __table_args__ = (
        UniqueConstraint("platform", "source_ref", "target_ref", "kind"),
        Index("ix_account_link_target", "platform", "target_ref"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(64))
    source_ref: Mapped[str] = mapped_column(String(256))
    target_ref: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Pseudonym(Base):
    """The way back from a pseudonymised account reference to the platform's: encrypted, read
    only by ``account:reveal`` and audited. Kept in its own database when
    ``VIGIL_PSEUDONYM_DATABASE_URL`` is set, away from the posts."""

    __tablename__ = "pseudonym"

    pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
