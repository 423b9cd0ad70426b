"""The settings the review package acts on, read once from :class:`vigil.config.Settings`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from vigil.config import Settings
from vigil.review.priority import PriorityWeights


@dataclass(frozen=True)
class ReviewPolicy:
    weights: PriorityWeights = field(default_factory=PriorityWeights)
    claim_ttl: timedelta = timedelta(minutes=15)
    #: Match thresholds, to turn a match distance into a likelihood (see vigil.review.matches).
    pdq_threshold: int = 31
    vpdq_query_share: float = 0.8

    @classmethod
    def of(cls, settings: Settings) -> ReviewPolicy:
        return cls(
            weights=PriorityWeights.of(settings),
            claim_ttl=timedelta(minutes=settings.review_claim_minutes),
            pdq_threshold=settings.pdq_threshold,
            vpdq_query_share=settings.vpdq_query_share,
        )
