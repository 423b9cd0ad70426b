"""The evidence package a police referral carries: what was seen, why it matched, who decided
and who approved, and where the audit trail is. It names content by reference and hash; the
media itself stays in vigil (and with the platform) unless a unit asks for it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vigil.store.models import Alert, AuditEvent, BankEntry, Decision, UserAccount

PACKAGE_VERSION = 1
_ALERT_FIELDS = (
    "id", "source", "content_kind", "content_ref", "platform", "author_ref", "url", "text",
    "explanation", "score", "severity", "likelihood", "reach", "case_id",
)  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _person(session: Session, user_id: int | None) -> dict[str, Any] | None:
    if user_id is None:
        return None
    user = session.get(UserAccount, user_id)
    return {"id": user_id, "username": user.username if user else None}


def _bank_entries(session: Session, matches: list[Any]) -> list[dict[str, Any]]:
    ids = sorted({m["entry_id"] for m in matches if isinstance(m, dict) and "entry_id" in m})
    entries = session.scalars(select(BankEntry).where(BankEntry.id.in_(ids))).all()
    return [
        {
            "entry_id": e.id,
            "bank": e.bank.name,
            "labels": list(e.labels),
            "source": e.source,
            "content_ref": e.content_ref,
            "seen_at": _iso(e.seen_at),
        }
        for e in sorted(entries, key=lambda e: e.id)
    ]


def _audit_refs(session: Session, alert_id: int, decision_id: int) -> list[dict[str, Any]]:
    # The chain hash lets a recipient check later that this trail was not rewritten.
    events = session.scalars(
        select(AuditEvent)
        .where(
            or_(
                (AuditEvent.object_type == "alert") & (AuditEvent.object_id == str(alert_id)),
                (AuditEvent.object_type == "decision") & (AuditEvent.object_id == str(decision_id)),
            )
        )
        .order_by(AuditEvent.id)
    )
    return [
        {"id": e.id, "at": _iso(e.at), "actor": e.actor, "action": e.action, "hash": e.hash}
        for e in events
    ]


def content_sha256(signals: list[Any]) -> str | None:
    for signal in signals:
        if isinstance(signal, dict) and signal.get("signal_type") == "sha256":
            return str(signal.get("signal") or signal.get("value"))
    return None


def evidence_package(session: Session, alert: Alert, decision: Decision) -> dict[str, Any]:
    return {
        "package_version": PACKAGE_VERSION,
        "alert": {
            **{name: getattr(alert, name) for name in _ALERT_FIELDS},
            "occurred_at": _iso(alert.occurred_at),
            "created_at": _iso(alert.created_at),
        },
        "content_sha256": content_sha256(list(alert.signals)),
        "signals": list(alert.signals),
        "matches": list(alert.matches),
        "bank_entries": _bank_entries(session, list(alert.matches)),
        "evidence": list(alert.evidence),
        "decision": {
            "id": decision.id,
            "outcome": decision.outcome,
            "reason": decision.reason,
            "decided_by": _person(session, decision.user_id),
            "decided_at": _iso(decision.created_at),
            "approval_status": decision.approval_status,
            "approved_by": _person(session, decision.approved_by),
            "approved_at": _iso(decision.approved_at),
        },
        "audit": _audit_refs(session, alert.id, decision.id),
    }
