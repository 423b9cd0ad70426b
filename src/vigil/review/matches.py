"""From a hash match to an alert, or to a bank's automatic action.

Each positive bank in a match report is handled by its policy (``Bank.alert_on_match``,
``Bank.auto_action``, ``Bank.severity``):

- ``alert_on_match``: an alert enters the review queue with the bank's severity;
- ``auto_action`` (e.g. ``takedown`` for a bank of confirmed terrorist content): the action is
  queued at once, marked automatic, and audited. Without ``alert_on_match`` the alert is still
  written, as ``auto_actioned``, outside the queue: the record of what was done and why.

Matches suppressed by a negative (known-benign) bank raise nothing.

The alert's dedupe key is the content's SHA-256, the bank and where the content was seen
(platform, content reference): a retried request finds its alert, and the automatic action is
taken once, while the same file posted again elsewhere is a new alert, because it has to be
taken down there too.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil import actions, audit
from vigil.hashing import SIGNAL_TYPES, HashResult, Match, MatchReport
from vigil.review.alerts import NewAlert, content_payload, create_alert
from vigil.review.policy import ReviewPolicy
from vigil.store.models import Alert, Bank

SYSTEM_ACTOR = "system:hashing"
EXACT_TYPES = frozenset(kind.name for kind in SIGNAL_TYPES if kind.exact)


@dataclass(frozen=True)
class Sighting:
    """Where the matched content was seen."""

    content_ref: str = ""
    platform: str = ""
    author_ref: str = ""
    url: str = ""
    reach: int = 0
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class BankOutcome:
    bank: str
    alert_id: int
    #: False when an earlier delivery of the same sighting made the alert (and took the action).
    created: bool
    status: str
    automatic_action: str | None
    action_ids: tuple[int, ...]

    def as_json(self) -> dict[str, object]:
        return {**self.__dict__, "action_ids": list(self.action_ids)}


#: A second-stage match (embedding candidates verified by keypoints) has no distance on the
#: hash scale; a geometric fit was verified, so it counts as more likely than an edge match.
SECOND_STAGE_LIKELIHOOD = 0.75


def match_likelihood(match: Match, bank: Bank, policy: ReviewPolicy) -> float:
    """How sure the match is, 0.5 at the bank's threshold up to 1.0 for an identical hash: the
    thresholds are operating points chosen for (almost) no false matches, so even a match at the
    edge is more likely right than not."""
    if match.signal_type == "pdq":
        threshold = bank.pdq_threshold if bank.pdq_threshold is not None else policy.pdq_threshold
        return _from_margin(match.distance, float(threshold))
    if match.signal_type == "vpdq":
        required = (
            bank.vpdq_query_share if bank.vpdq_query_share is not None else policy.vpdq_query_share
        )
        return _from_margin(1.0 - (match.query_share or 0.0), 1.0 - required)
    if match.signal_type in EXACT_TYPES:
        return 1.0
    return SECOND_STAGE_LIKELIHOOD


def _from_margin(used: float, allowed: float) -> float:
    if allowed <= 0:
        return 1.0
    return max(0.5, 1.0 - 0.5 * used / allowed)


def alerts_from_match(
    session: Session,
    result: HashResult,
    report: MatchReport,
    *,
    policy: ReviewPolicy,
    sighting: Sighting | None = None,
    actor: str = SYSTEM_ACTOR,
) -> list[BankOutcome]:
    """Alerts and automatic actions for ``report``'s positive matches, in ``session``."""
    seen = sighting or Sighting()
    by_bank: dict[str, list[Match]] = defaultdict(list)
    for match in report.matches:
        by_bank[match.bank].append(match)
    if not by_bank or not result.ok:
        return []
    banks = session.scalars(select(Bank).where(Bank.name.in_(list(by_bank))))
    return [
        _handle(session, result, bank, by_bank[bank.name], policy, seen, actor)
        for bank in sorted(banks, key=lambda b: b.name)
        if bank.alert_on_match or bank.auto_action
    ]


def _handle(
    session: Session,
    result: HashResult,
    bank: Bank,
    matches: list[Match],
    policy: ReviewPolicy,
    seen: Sighting,
    actor: str,
) -> BankOutcome:
    alert, created = create_alert(
        session,
        _new_alert(result, bank, matches, policy, seen),
        weights=policy.weights,
        actor=actor,
    )
    action_ids: tuple[int, ...] = ()
    if created and bank.auto_action:
        action_ids = _act(session, alert, bank, actor)
    return BankOutcome(bank.name, alert.id, created, alert.status, bank.auto_action, action_ids)


def _new_alert(
    result: HashResult, bank: Bank, matches: list[Match], policy: ReviewPolicy, seen: Sighting
) -> NewAlert:
    signals: list[Any] = result.as_json()["signals"]  # type: ignore[assignment]
    likelihood = max(match_likelihood(m, bank, policy) for m in matches)
    return NewAlert(
        dedupe_key=_dedupe_key(signals, bank, seen),
        source="hashing",
        content_kind=result.kind or "image",
        content_ref=seen.content_ref or result.path,
        platform=seen.platform,
        author_ref=seen.author_ref,
        url=seen.url,
        signals=signals,
        matches=[m.as_json() for m in matches],
        evidence=[
            {
                "type": "bank_entry",
                "bank": m.bank,
                "entry_id": m.entry_id,
                "content_ref": m.content_ref,
            }
            for m in matches
        ],
        explanation=_explain(bank, matches),
        score=likelihood,
        severity=bank.severity,
        likelihood=likelihood,
        reach=seen.reach,
        occurred_at=seen.occurred_at,
        status="open" if bank.alert_on_match else "auto_actioned",
    )


def _dedupe_key(signals: list[Any], bank: Bank, seen: Sighting) -> str:
    sha256 = next(s["signal"] for s in signals if s["signal_type"] == "sha256")
    where = hashlib.sha256(f"{seen.platform}\n{seen.content_ref}".encode()).hexdigest()[:32]
    return f"hash:{sha256}:{bank.id}:{where}"


def _explain(bank: Bank, matches: list[Match]) -> str:
    best = matches[0]  # the matcher ranks by distance
    labels = sorted({label for m in matches for label in m.labels})
    how = (
        f"{best.query_share:.0%} of frames"
        if best.signal_type == "vpdq" and best.query_share is not None
        else f"distance {best.distance:g}"
    )
    return (
        f"Known content: {best.signal_type} match with bank {bank.name!r} entry {best.entry_id} "
        f"({how}); {len(matches)} entr{'y' if len(matches) == 1 else 'ies'} matched"
        + (f"; labels: {', '.join(labels)}" if labels else "")
    )


def _act(session: Session, alert: Alert, bank: Bank, actor: str) -> tuple[int, ...]:
    assert bank.auto_action is not None
    rows = actions.enqueue(
        session,
        bank.auto_action,
        alert_id=alert.id,
        decision_id=None,
        payload={**content_payload(alert), "bank": bank.name},
        automatic=True,
    )
    ids = tuple(row.id for row in rows)
    audit.record(
        session,
        actor,
        "action.automatic",
        "alert",
        alert.id,
        {"bank": bank.name, "kind": bank.auto_action, "action_ids": list(ids)},
    )
    return ids
