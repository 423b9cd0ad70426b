"""Match signals against the banks: index look-up, per-bank thresholds, negative-bank veto."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import select

from vigil.config import Settings
from vigil.hashing.index import IndexHit, SignalIndexSet
from vigil.hashing.signals import EMBEDDING, KEYPOINTS, Signal, get_signal_type
from vigil.hashing.signals.keypoints import FitRule, Keypoints, decode, verify
from vigil.store import Bank, BankEntry, Database, EntrySignal


@dataclass(frozen=True)
class Match:
    bank: str
    entry_id: int
    signal_type: str
    distance: float
    labels: list[str]
    source: str
    content_ref: str
    negative: bool
    variant: str | None = None
    query_share: float | None = None
    index_share: float | None = None
    #: Second stage: RANSAC inliers of the upload's keypoints on the entry's.
    verified_inliers: int | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "bank": self.bank,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type,
            "distance": self.distance,
            "query_share": self.query_share,
            "index_share": self.index_share,
            "labels": self.labels,
            "source": self.source,
            "content_ref": self.content_ref,
            "variant": self.variant,
            "verified_inliers": self.verified_inliers,
        }


@dataclass
class MatchReport:
    """Matches of one piece of content. When a negative (known-benign) bank matches, the positive
    matches move to ``suppressed``: they are kept for review, but nothing acts on them."""

    matches: list[Match] = field(default_factory=list)
    suppressed: list[Match] = field(default_factory=list)
    benign: list[Match] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.matches or self.suppressed or self.benign)

    def as_json(self) -> dict[str, object]:
        return {
            "matches": [m.as_json() for m in self.matches],
            "suppressed": [m.as_json() for m in self.suppressed],
            "benign": [m.as_json() for m in self.benign],
        }


@dataclass(frozen=True)
class _BankRule:
    name: str
    negative: bool
    pdq_threshold: int
    query_share: float
    index_share: float


class Matcher:
    def __init__(self, db: Database, index: SignalIndexSet, settings: Settings) -> None:
        self.db = db
        self.index = index
        self.settings = settings
        self._last_refresh = 0.0
        self._refresh_lock = threading.Lock()

    def refresh(self, *, force: bool = False) -> None:
        """Pull rows added by other processes; at most once per ``index_refresh_seconds``."""
        now = time.monotonic()
        if not force and now - self._last_refresh < self.settings.index_refresh_seconds:
            return
        with self._refresh_lock:
            self.index.refresh()
            self._last_refresh = time.monotonic()

    def match_signals(
        self, signals: Sequence[Signal], banks: Sequence[str] | None = None
    ) -> MatchReport:
        """Matches of hashes. An embedding is no evidence by itself (similar scenes sit as close
        as copies) and is left out here: see :meth:`match_verified`."""
        self.refresh()
        rules = self._rules(banks)
        if not rules:
            return MatchReport()
        hashes = [s for s in signals if s.signal_type != EMBEDDING.name]
        hits = self._query(hashes, max(r.pdq_threshold for r in rules.values()))
        return self._resolve(hits, rules)

    def match_verified(
        self,
        embedding: Signal,
        query_keypoints: Callable[[], Keypoints],
        banks: Sequence[str] | None = None,
    ) -> MatchReport:
        """Second stage: the embedding's nearest entries become matches only when the upload's
        keypoints fit the entry's stored ones. ``query_keypoints`` is called at most once, and
        only when there is a candidate to verify."""
        self.refresh()
        rules = self._rules(banks)
        if not rules or not self.index.holds(EMBEDDING.name):
            return MatchReport()
        settings = self.settings
        (hits,) = self.index.query(
            EMBEDDING.name, [embedding.value], settings.embedding_candidate_distance
        )
        candidates = self._candidates(hits, rules)
        stored = self._stored_keypoints([match.entry_id for match in candidates])
        query = query_keypoints() if stored else None
        verified = []
        for match in candidates:
            if query is None or match.entry_id not in stored:
                continue  # an entry banked without keypoints cannot be verified
            fit = verify(query, stored[match.entry_id], settings.verify_min_inliers)
            if fit.passes(FitRule.of(settings)):
                verified.append(replace(match, verified_inliers=fit.inliers))
        return _report(verified)

    def _rules(self, banks: Sequence[str] | None) -> dict[int, _BankRule]:
        with self.db.session() as session:
            query = select(Bank).where(Bank.enabled.is_(True))
            if banks:
                # Negative banks always apply: a caller narrowing the search must not lose the veto.
                query = query.where(Bank.name.in_(banks) | Bank.negative.is_(True))
            return {
                bank.id: _BankRule(
                    bank.name,
                    bank.negative,
                    bank.pdq_threshold
                    if bank.pdq_threshold is not None
                    else self.settings.pdq_threshold,
                    bank.vpdq_query_share
                    if bank.vpdq_query_share is not None
                    else self.settings.vpdq_query_share,
                    bank.vpdq_index_share
                    if bank.vpdq_index_share is not None
                    else self.settings.vpdq_index_share,
                )
                for bank in session.scalars(query)
            }

    def _query(self, signals: Sequence[Signal], pdq_threshold: int) -> dict[int, IndexHit]:
        """Best hit per banked signal id over all query signals."""
        by_type: dict[str, list[str]] = defaultdict(list)
        for signal in signals:
            if (
                signal.signal_type == "pdq"
                and signal.quality is not None
                and signal.quality < self.settings.pdq_min_quality
            ):
                # Flat or tiny images hash to near-constant PDQs that match anything. A hash
                # given without its quality (an HMA lookup) is matched: the caller vouches for it.
                continue
            by_type[get_signal_type(signal.signal_type).name].append(signal.value)
        best: dict[int, IndexHit] = {}
        for signal_type, values in by_type.items():
            threshold = self._index_threshold(signal_type, pdq_threshold)
            for hits in self.index.query(signal_type, values, threshold):
                for hit in hits:
                    known = best.get(hit.signal_id)
                    if known is None or _better(hit, known):
                        best[hit.signal_id] = hit
        return best

    def _passes(self, signal_type: str, hit: IndexHit, rule: _BankRule) -> bool:
        if signal_type == "vpdq":
            return (hit.query_share or 0.0) >= rule.query_share and (
                hit.index_share or 0.0
            ) >= rule.index_share
        if signal_type == "pdq":
            return hit.distance <= rule.pdq_threshold
        return hit.distance == 0

    def _index_threshold(self, signal_type: str, pdq_threshold: int) -> float:
        if get_signal_type(signal_type).exact:
            return 0.0
        return float(pdq_threshold)  # PDQ, and each vPDQ frame

    def _resolve(self, hits: dict[int, IndexHit], rules: dict[int, _BankRule]) -> MatchReport:
        found = self._matches(hits, rules)
        return _report(m for sid, rule, m in found if self._passes(m.signal_type, hits[sid], rule))

    def _candidates(self, hits: list[IndexHit], rules: dict[int, _BankRule]) -> list[Match]:
        """The ``embedding_candidates`` nearest entries of the banks searched."""
        by_entry: dict[int, Match] = {}
        found = self._matches({hit.signal_id: hit for hit in hits}, rules)
        for match in sorted((match for _, _, match in found), key=_rank):
            by_entry.setdefault(match.entry_id, match)
        return list(by_entry.values())[: self.settings.embedding_candidates]

    def _matches(
        self, hits: dict[int, IndexHit], rules: dict[int, _BankRule]
    ) -> list[tuple[int, _BankRule, Match]]:
        """(banked signal id, its bank's rule, match) per hit in the banks searched, before the
        rule has judged the hit."""
        if not hits:
            return []
        found = []
        with self.db.session() as session:
            rows = session.execute(
                select(EntrySignal, BankEntry)
                .join(BankEntry, EntrySignal.entry_id == BankEntry.id)
                .where(EntrySignal.id.in_(list(hits)))
            )
            for signal, entry in rows:
                rule = rules.get(signal.bank_id)
                if rule is None:
                    continue
                hit = hits[signal.id]
                match = Match(
                    bank=rule.name,
                    entry_id=entry.id,
                    signal_type=signal.signal_type,
                    distance=hit.distance,
                    labels=list(entry.labels),
                    source=entry.source,
                    content_ref=entry.content_ref,
                    negative=rule.negative,
                    variant=signal.variant,
                    query_share=hit.query_share,
                    index_share=hit.index_share,
                )
                found.append((signal.id, rule, match))
        return found

    def _stored_keypoints(self, entry_ids: Sequence[int]) -> dict[int, Keypoints]:
        if not entry_ids:
            return {}
        with self.db.session() as session:
            rows = session.execute(
                select(EntrySignal.entry_id, EntrySignal.value).where(
                    EntrySignal.entry_id.in_(entry_ids),
                    EntrySignal.signal_type == KEYPOINTS.name,
                )
            )
            return {entry_id: decode(value) for entry_id, value in rows}


def _rank(match: Match) -> tuple[float, str, int]:
    return match.distance, match.bank, match.entry_id


def _report(matches: Iterable[Match]) -> MatchReport:
    """The best match per entry, ranked; a negative bank's match suppresses the positives."""
    by_entry: dict[int, Match] = {}
    for match in matches:
        known = by_entry.get(match.entry_id)
        if known is None or match.distance < known.distance:
            by_entry[match.entry_id] = match
    ranked = sorted(by_entry.values(), key=_rank)
    report = MatchReport(benign=[m for m in ranked if m.negative])
    positives = [m for m in ranked if not m.negative]
    if report.benign:
        report.suppressed = positives
    else:
        report.matches = positives
    return report


def _better(hit: IndexHit, other: IndexHit) -> bool:
    if hit.query_share is not None and other.query_share is not None:
        return hit.query_share > other.query_share
    return hit.distance < other.distance
