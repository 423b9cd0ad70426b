"""The review queue's priority: which alert a reviewer should look at first.

::

    priority(now) = (severity/10)^a * likelihood^b * (1 + w_reach*log10(1 + reach))
                    * (1 + w_velocity*log10(1 + velocity)) * 2^(-age/half_life),
    age = now - occurred_at

``a``, ``b``, ``w_reach`` and ``w_velocity`` are weights (``VIGIL_REVIEW_SEVERITY_WEIGHT``,
``VIGIL_REVIEW_LIKELIHOOD_WEIGHT``, ``VIGIL_REVIEW_REACH_WEIGHT``,
``VIGIL_REVIEW_VELOCITY_WEIGHT``) and ``half_life`` is ``VIGIL_REVIEW_HALF_LIFE_HOURS``. Reach is
damped by the logarithm so that a post seen a million times outranks one seen ten times without
burying everything else. Velocity is how fast the content is spreading, in posts per hour (a
campaign of near-duplicate posts); 0 for a single item, whose factor is then 1.

Recency is handled at query time without recomputing anything: exponential decay multiplies
every alert's priority by the same factor as time passes, so the *order* of two alerts never
changes once both exist. ``Alert.priority`` therefore stores a time-invariant queue key,

    key = log2(priority at occurrence) + (occurred_at - EPOCH) / half_life

and ordering by ``key`` (an index on ``status, priority``) is ordering by ``priority(now)`` for
every ``now``; ``current_priority`` turns a key back into today's value. Changing the weights
or the half-life changes the keys: ``recompute_priorities`` (``vigil alerts reprioritise``)
rewrites them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from vigil.config import Settings

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
#: An alert of priority 0 (severity or likelihood 0) still needs a finite key; it sorts as
#: this, i.e. below any real priority of the same age.
_FLOOR = 1e-9


@dataclass(frozen=True)
class PriorityWeights:
    severity: float = 1.0
    likelihood: float = 1.0
    reach: float = 0.25
    velocity: float = 0.5
    half_life_hours: float = 24.0

    @classmethod
    def of(cls, settings: Settings) -> PriorityWeights:
        return cls(
            severity=settings.review_severity_weight,
            likelihood=settings.review_likelihood_weight,
            reach=settings.review_reach_weight,
            velocity=settings.review_velocity_weight,
            half_life_hours=settings.review_half_life_hours,
        )

    @property
    def half_life_seconds(self) -> float:
        return self.half_life_hours * 3600.0


def base_priority(
    weights: PriorityWeights, severity: int, likelihood: float, reach: int, velocity: float = 0.0
) -> float:
    """Priority at the moment the content occurred (no decay yet)."""
    return float(
        (severity / 10.0) ** weights.severity
        * likelihood**weights.likelihood
        * (1.0 + weights.reach * math.log10(1 + max(reach, 0)))
        * (1.0 + weights.velocity * math.log10(1 + max(velocity, 0.0)))
    )


def queue_key(
    weights: PriorityWeights,
    severity: int,
    likelihood: float,
    reach: int,
    occurred_at: datetime,
    velocity: float = 0.0,
) -> float:
    base = max(base_priority(weights, severity, likelihood, reach, velocity), _FLOOR)
    return math.log2(base) + (occurred_at - EPOCH).total_seconds() / weights.half_life_seconds


def current_priority(weights: PriorityWeights, key: float, now: datetime) -> float:
    """``priority(now)`` of an alert whose queue key is ``key``."""
    return float(2.0 ** (key - (now - EPOCH).total_seconds() / weights.half_life_seconds))
