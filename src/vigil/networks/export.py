"""An account's evidence pack, for a referral: the account as vigil knows it, its posts with their
texts and scores, the alerts concerning it with their evidence and the decisions on them, its
links and campaigns, and the audit trail of those alerts and decisions (each event with its
chain hash, so that a recipient can check later that the trail was not rewritten).

The pack's SHA-256 is taken over its canonical JSON (:func:`canonical`: keys sorted, no spaces,
UTF-8), and the export is recorded in the audit log as ``account.export`` with that hash, in the
same transaction: the audit chain then vouches for what left vigil and when.

**Bounded.** Flagged posts come first, then the most recent others, up to ``max_posts``; the pack
says how many posts there are in all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from vigil import audit
from vigil.networks.views import (
    account_alert_ids,
    account_campaigns,
    decisions_on,
    get_account,
    links_of,
    of_account,
    post_at,
    summary,
    to_json,
)
from vigil.store.models import Alert, AuditEvent, Decision, PostRecord, utcnow

PACK_VERSION = 1
MAX_POSTS = 10_000
CAVEAT = (
    "Account references are as the platform data carries them, or vigil's pseudonyms of them: "
    "vigil adds nothing about who is behind an account. Labels, severities and risk are machine "
    "assessments; the decisions record which people reviewed them."
)
_ALERT_FIELDS = (
    "id", "source", "status", "content_kind", "content_ref", "platform", "author_ref", "url",
    "text", "signals", "matches", "evidence", "explanation", "score", "severity", "likelihood",
    "reach", "velocity", "case_id", "occurred_at", "created_at", "updated_at",
)  # fmt: skip


@dataclass(frozen=True)
class EvidencePack:
    pack: dict[str, Any]
    #: SHA-256 of :func:`canonical` of ``pack``, hex.
    sha256: str


def canonical(pack: dict[str, Any]) -> bytes:
    """The bytes the pack's SHA-256 is taken over."""
    return json.dumps(pack, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _post_json(record: PostRecord) -> dict[str, Any]:
    return {
        "key": record.key,
        "platform": record.platform,
        "post_id": record.post_id,
        "author_ref": record.author_ref,
        "text": record.text,
        "language": record.language,
        "url": record.url,
        "reach": record.reach,
        "created_at": to_json(record.created_at),
        "scanned_at": to_json(record.scanned_at),
        "scores": record.scores,
        "flagged": list(record.flagged),
        "severity": record.severity,
        "lexicon": list(record.lexicon),
        "links": record.links,
        "campaign_id": record.campaign_id,
        "alert_id": record.alert_id,
    }


def _posts(
    session: Session, platform: str, author_ref: str, max_posts: int
) -> list[dict[str, Any]]:
    records = session.scalars(
        select(PostRecord)
        .where(of_account(platform, author_ref))
        .order_by((PostRecord.severity > 0).desc(), post_at().desc(), PostRecord.id.desc())
        .limit(max_posts)
    )
    chosen = sorted(records, key=lambda r: (r.created_at or r.scanned_at, r.id))
    return [_post_json(record) for record in chosen]


def _audit_trail(session: Session, alert_ids: list[int], account_id: int) -> list[dict[str, Any]]:
    decision_ids = list(
        session.scalars(select(Decision.id).where(Decision.alert_id.in_(alert_ids)))
    )
    concerning = or_(
        and_(AuditEvent.object_type == "alert", AuditEvent.object_id.in_(map(str, alert_ids))),
        and_(
            AuditEvent.object_type == "decision",
            AuditEvent.object_id.in_(map(str, decision_ids)),
        ),
        # Earlier exports and reveals of this account.
        and_(
            AuditEvent.object_type == "author_account",
            AuditEvent.object_id == str(account_id),
        ),
    )
    events = session.scalars(select(AuditEvent).where(concerning).order_by(AuditEvent.id))
    return [
        {
            "id": e.id,
            "at": to_json(e.at),
            "actor": e.actor,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "detail": e.detail,
            "hash": e.hash,
        }
        for e in events
    ]


def export_account(
    session: Session,
    actor: str,
    platform: str,
    author_ref: str,
    *,
    half_life_hours: float,
    max_posts: int = MAX_POSTS,
    now: datetime | None = None,
) -> EvidencePack | None:
    """The account's evidence pack, its export recorded in the audit log under ``actor`` in the
    caller's transaction (None, and nothing recorded, when there is no such account)."""
    now = now or utcnow()
    account = get_account(session, platform, author_ref)
    if account is None:
        return None
    alert_ids = account_alert_ids(session, account)
    alerts = session.scalars(select(Alert).where(Alert.id.in_(alert_ids)).order_by(Alert.id))
    decisions = decisions_on(session, alert_ids)
    links_out, links_in = links_of(session, account, limit=None)
    posts = _posts(session, platform, author_ref, max_posts)
    pack = {
        "pack_version": PACK_VERSION,
        "generated_at": now.isoformat(),
        "generated_by": actor,
        "caveat": CAVEAT,
        "account": to_json(summary(account, now, half_life_hours)),
        "posts_total": account.posts,
        "posts": posts,
        "alerts": [
            {name: to_json(getattr(alert, name)) for name in _ALERT_FIELDS} for alert in alerts
        ],
        "decisions": [to_json(d) for alert_id in alert_ids for d in decisions.get(alert_id, [])],
        "links": {"out": to_json(links_out), "in": to_json(links_in)},
        "campaigns": to_json(account_campaigns(session, account)),
        "audit": _audit_trail(session, alert_ids, account.id),
    }
    digest = hashlib.sha256(canonical(pack)).hexdigest()
    audit.record(
        session,
        actor,
        "account.export",
        "author_account",
        account.id,
        {
            "platform": platform,
            "author_ref": author_ref,
            "sha256": digest,
            "posts": len(posts),
            "alerts": alert_ids,
        },
    )
    return EvidencePack(pack, digest)
