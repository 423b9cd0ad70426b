"""An account's risk: how much of what it posted lately was harmful, and how badly.

::

    risk(now) = sum over the account's flagged posts i of
                m_i * (w_s * (s_i/10)^2 * p_i  +  w_v * (s_i/10) * (ln k_i - ln(k_i - 1)))
                    * 2^(-(now - t_i) / h)

* ``s_i`` the post's severity (0-10, :mod:`vigil.text.triage`: threat to life 10, incitement 8,
  terrorist support 7, hate 5, offensive 2; a bank match 9) and ``p_i`` its likelihood: the
  square makes one threat weigh as much as ~2.6 hateful posts, and an offensive one 1/25 of a
  threat. Unflagged posts add nothing.
* ``k_i`` the account's flagged posts within the hour up to and including post ``i`` (as the
  posts arrive): the second term is 0 for an isolated post, and a burst of ``n`` flagged posts in
  an hour adds ``w_v * (s/10) * ln n`` in all: volume counts, with diminishing returns.
* ``m_i = 1 + w_d * d_i``, ``d_i`` the alerts on the account (``Alert.author_ref``) that
  reviewers confirmed or referred before post ``i`` was stored: an account with a record weighs
  more for the same post.
* ``t_i = min(post time, now)``, ``h`` the half-life: recency. A post is decayed from its own
  time, so an old post (an archive scanned today) adds little to today's risk, and a post dated
  in the future adds no more than one from now.

The sum is kept lazily (``AuthorAccount.risk`` as of ``risk_at``): ``risk(now) = risk(risk_at) *
2^(-(now - risk_at)/h) + the new posts' terms``, so nothing is recomputed from history.

Defaults (``VIGIL_ACCOUNTS_*``): threshold 25, h 72 h, w_s 10, w_v 8, w_d 0.5. One hateful post
a day (s 5, even at p 1) levels off at 2.5 / (1 - 2^(-24/72)) = 12.1: never an alert. Five
flagged incitement posts (s 8) within an hour reach 5 * 6.4 * p + 6.4 * ln 5 = 26.3 at p 0.5:
an alert (and five threats to life at p 0.5 reach 37.9). docs/accounts.md has the table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from vigil.networks.settings import NetworkSettings

#: The span within which flagged posts count as one burst.
BURST_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class RiskWeights:
    threshold: float = 25.0
    half_life_hours: float = 72.0
    severity: float = 10.0
    volume: float = 8.0
    decision: float = 0.5
    rearm_margin: float = 0.5

    @classmethod
    def of(cls, settings: NetworkSettings) -> RiskWeights:
        return cls(
            threshold=settings.accounts_risk_threshold,
            half_life_hours=settings.accounts_half_life_hours,
            severity=settings.accounts_severity_weight,
            volume=settings.accounts_volume_weight,
            decision=settings.accounts_decision_weight,
            rearm_margin=settings.accounts_rearm_margin,
        )


def decayed(risk: float, since: datetime, now: datetime, half_life_hours: float) -> float:
    """A risk of ``risk`` at ``since``, as of ``now`` (never grown by a clock that went back)."""
    hours = max((now - since).total_seconds(), 0.0) / 3600.0
    return risk * math.pow(2.0, -hours / half_life_hours)


def post_term(severity: int, likelihood: float, weights: RiskWeights) -> float:
    """What one flagged post adds for its severity and likelihood: ``w_s * (s/10)^2 * p``."""
    return weights.severity * (severity / 10.0) ** 2 * likelihood


def burst_term(severity: int, in_burst: int, weights: RiskWeights) -> float:
    """What the ``in_burst``-th flagged post within an hour adds for volume (0 for the first)."""
    if in_burst < 2:
        return 0.0
    return weights.volume * severity / 10.0 * (math.log(in_burst) - math.log(in_burst - 1))


def decision_factor(decisions: int, weights: RiskWeights) -> float:
    """``1 + w_d * decisions``: the weight of an account's record."""
    return 1.0 + weights.decision * decisions


def contribution(
    severity: int,
    likelihood: float,
    in_burst: int,
    decisions: int,
    at: datetime,
    now: datetime,
    weights: RiskWeights,
) -> float:
    """One post's term of the sum, as of ``now``."""
    if severity <= 0:
        return 0.0
    raw = (post_term(severity, likelihood, weights) + burst_term(severity, in_burst, weights)) * (
        decision_factor(decisions, weights)
    )
    return decayed(raw, min(at, now), now, weights.half_life_hours)


def burst_positions(earlier: Sequence[datetime], new: Sequence[datetime]) -> list[int]:
    """For each of an account's ``new`` flagged posts, its ``k``: the flagged posts within
    :data:`BURST_WINDOW` up to and including it, counting the ``earlier`` ones (already stored)
    and the new ones before it (in time, then in the order given)."""
    events = sorted(
        [(at, 0, index) for index, at in enumerate(earlier)]
        + [(at, 1, index) for index, at in enumerate(new)]
    )
    positions = [0] * len(new)
    start = 0
    for end, (at, is_new, index) in enumerate(events):
        while events[start][0] <= at - BURST_WINDOW:
            start += 1
        if is_new:
            positions[index] = end - start + 1
    return positions


def rearmed(risk: float, decided_at: float, weights: RiskWeights) -> bool:
    """Whether an account whose alert was decided at risk ``decided_at`` alerts again: only once
    its risk exceeds that by the margin (a reviewer already judged that level)."""
    return risk >= max(decided_at, weights.threshold) * (1.0 + weights.rearm_margin)
