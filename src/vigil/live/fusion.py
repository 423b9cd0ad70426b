"""Evidence fused over time with a CUSUM over per-second log-likelihood ratios.

Every source reports the log-likelihood ratio (attack vs. benign stream) of what it saw. Per
1-second window of stream time the fusion takes each source's strongest ratio, adds the sources
up (they look at different things: sound, objects, camera motion, overlays) and runs Page's
CUSUM::

    S_w = max(0, S_{w-1} + LLR_w - drift)

The drift is the design's safeguard against look-alikes: it sits just under a single source's
ceiling (2.5), and the sources that see nothing report their usual negative ratio (no weapon
-1, quiet audio -1, a tripod -0.5), so one cue alone does not accumulate (a gun shop, gunshots
on the radio, camera shake); two or three cues at once climb within seconds, and look-alike
evidence (a game HUD, game text, a gaming category) pulls the sum below zero. Known attack
footage is the exception: a bank match on its own is enough. The defaults (drift 2.0, alert at
5) were chosen on the seed-0 synthetic streams of ``vigil live eval`` and measured on seeds 1-2
(bench/RESULTS.md).

Levels: ``watch`` → ``alert`` → ``critical`` as S crosses its thresholds. The alert threshold
comes from a target false-alarm rate per stream-hour (:func:`calibrate`): the smallest h that
keeps the rate on benign traces under the target, and never below the Wald/Siegmund bound
``h = log(ARL0) / theta`` where theta solves ``E[exp(theta X)] = 1`` for the benign increments
``X = LLR - drift`` (the CUSUM's average run length to a false alarm is at least ``exp(theta h)``).
An incident ends when S has stayed at 0 for a cool-down; the next one is a new incident.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vigil.live.evidence.base import Evidence

Level = Literal["normal", "watch", "alert", "critical"]
LEVELS: tuple[Level, ...] = ("normal", "watch", "alert", "critical")


@dataclass(frozen=True)
class FusionConfig:
    drift: float = 2.0
    watch: float = 2.0
    alert: float = 5.0
    critical: float = 12.0
    #: How long a source's last evidence keeps counting when it reports less than once a second
    #: (OCR every few seconds, metadata): it holds until replaced, at most this long.
    hold_seconds: dict[str, float] = field(default_factory=lambda: {"gametext": 6.0})
    #: A window closes once a sample this far past its end has arrived: audio and video clocks
    #: of one stream are not decoded in lockstep.
    slack_seconds: float = 0.5
    #: S must stay at 0 this long before the incident is over and a new one can start.
    cooldown_seconds: float = 60.0
    #: Windows kept for the status page and the plot in the evidence packet.
    history_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not 0 < self.watch <= self.alert <= self.critical:
            raise ValueError("thresholds must satisfy 0 < watch <= alert <= critical")
        if self.drift < 0:
            raise ValueError("the drift must not be negative")

    def level_of(self, statistic: float) -> Level:
        if statistic >= self.critical:
            return "critical"
        if statistic >= self.alert:
            return "alert"
        if statistic >= self.watch:
            return "watch"
        return "normal"


@dataclass(frozen=True)
class Window:
    """One closed second of stream time."""

    start: float
    llr: dict[str, float]
    total: float
    statistic: float
    level: Level
    incident: int

    def as_json(self) -> dict[str, object]:
        return {
            "t": self.start,
            "llr": {name: round(value, 3) for name, value in self.llr.items()},
            "total": round(self.total, 3),
            "cusum": round(self.statistic, 3),
            "level": self.level,
            "incident": self.incident,
        }


@dataclass(frozen=True)
class LevelChange:
    """The incident's level rose (it never falls within an incident)."""

    incident: int
    level: Level
    previous: Level
    window: Window
    #: Stream time the statistic last left 0 before this incident: where the evidence began.
    onset: float


@dataclass
class _Held:
    evidence: Evidence
    until: float


class CusumFusion:
    """One stream's fusion state. Not thread-safe: one stream's samples arrive in one thread."""

    def __init__(self, config: FusionConfig | None = None) -> None:
        self.config = config or FusionConfig()
        self.statistic = 0.0
        self.level: Level = "normal"
        self.incident = 0
        self.history: deque[Window] = deque(maxlen=max(1, int(self.config.history_seconds)))
        self._window_start = 0.0
        self._pending: dict[str, float] = {}
        self._held: dict[str, _Held] = {}
        self._rise_start = 0.0
        self._zero_since: float | None = 0.0
        self._open_incident = False

    def add(self, evidence: Evidence) -> list[LevelChange]:
        """Take one piece of evidence; closes the windows its time moves past."""
        changes = self.advance(evidence.t)
        hold = self.config.hold_seconds.get(evidence.source, 0.0)
        self._held[evidence.source] = _Held(evidence, evidence.t + hold)
        previous = self._pending.get(evidence.source)
        if previous is None or evidence.llr > previous:
            self._pending[evidence.source] = evidence.llr
        return changes

    def advance(self, t: float) -> list[LevelChange]:
        """Close every window that ended more than the slack before ``t``."""
        changes: list[LevelChange] = []
        while t >= self._window_start + 1.0 + self.config.slack_seconds:
            change = self._close_window()
            if change is not None:
                changes.append(change)
        return changes

    def _close_window(self) -> LevelChange | None:
        start = self._window_start
        llr = dict(self._pending)
        for name, held in self._held.items():
            if name not in llr and held.until >= start:
                llr[name] = held.evidence.llr
        self._pending.clear()
        self._window_start = start + 1.0
        total = sum(llr.values())
        before = self.statistic
        self.statistic = max(0.0, before + total - self.config.drift)
        if before == 0.0 and self.statistic > 0.0:
            self._rise_start = start
        rose_from = self._update_level(start)
        window = Window(start, llr, total, self.statistic, self.level, self.incident)
        self.history.append(window)
        if rose_from is None:
            return None
        return LevelChange(self.incident, self.level, rose_from, window, self._rise_start)

    def _update_level(self, start: float) -> Level | None:
        """The level before, when this window raised it."""
        if self.statistic == 0.0:
            self._zero_since = start if self._zero_since is None else self._zero_since
            if (
                self._open_incident
                and start + 1.0 - self._zero_since >= self.config.cooldown_seconds
            ):
                self._open_incident = False
                self.level = "normal"
        else:
            self._zero_since = None
        reached = self.config.level_of(self.statistic)
        if LEVELS.index(reached) <= LEVELS.index(self.level):
            return None
        if not self._open_incident:
            self._open_incident = True
            self.incident += 1
        previous, self.level = self.level, reached
        return previous

    def contributions(self, since: float) -> dict[str, float]:
        """Each source's summed positive ratio over the windows since ``since``: why it fired."""
        totals: dict[str, float] = {}
        for window in self.history:
            if window.start >= since:
                for name, value in window.llr.items():
                    totals[name] = totals.get(name, 0.0) + value
        return dict(sorted(totals.items(), key=lambda item: -item[1]))


def replay(windows: Iterable[dict[str, float]], config: FusionConfig | None = None) -> list[Window]:
    """Run the CUSUM over per-window source ratios (one dict per second): for calibration and
    evaluation without decoding anything again."""
    fusion = CusumFusion(config)
    out: list[Window] = []
    for second, llrs in enumerate(windows):
        for name, value in llrs.items():
            fusion.add(Evidence(name, float(second), 0.0, value))
        fusion.advance(second + 1.0 + fusion.config.slack_seconds)
        out.append(fusion.history[-1])
    return out


@dataclass(frozen=True)
class Calibration:
    threshold: float
    #: The benign increments' exponent: false alarms come about every exp(theta * h) seconds.
    theta: float | None
    #: Alarms per stream-hour on the benign traces at ``threshold``.
    benign_rate_per_hour: float
    benign_hours: float
    target_per_hour: float

    def as_json(self) -> dict[str, object]:
        return {key: value for key, value in self.__dict__.items()}


def calibrate(
    traces: Sequence[Sequence[float]],
    target_per_hour: float,
    drift: float,
    *,
    candidates: Sequence[float] | None = None,
) -> Calibration:
    """The alert threshold for ``target_per_hour`` false alarms per stream-hour, from benign
    traces of combined per-second LLRs (one list per stream)."""
    if target_per_hour <= 0:
        raise ValueError("the target false-alarm rate must be positive")
    hours = sum(len(trace) for trace in traces) / 3600.0
    if hours == 0:
        raise ValueError("calibration needs at least one benign window")
    grid = list(candidates) if candidates else [0.5 * i for i in range(1, 121)]
    empirical = next(
        (h for h in sorted(grid) if _alarms(traces, drift, h) / hours <= target_per_hour),
        max(grid),
    )
    theta = _theta([x - drift for trace in traces for x in trace])
    analytic = math.log(3600.0 / target_per_hour) / theta if theta else 0.0
    threshold = max(empirical, analytic)
    return Calibration(
        threshold, theta, _alarms(traces, drift, threshold) / hours, hours, target_per_hour
    )


def _alarms(traces: Sequence[Sequence[float]], drift: float, threshold: float) -> int:
    """Alarms a CUSUM restarted after each alarm raises over the traces."""
    count = 0
    for trace in traces:
        statistic = 0.0
        for value in trace:
            statistic = max(0.0, statistic + value - drift)
            if statistic >= threshold:
                count += 1
                statistic = 0.0
    return count


def _theta(increments: Sequence[float]) -> float | None:
    """The positive root of mean(exp(theta * x)) = 1, or None when benign increments never rise
    (then no finite bound comes from them)."""
    x = np.asarray(increments, dtype=np.float64)
    if x.size == 0 or x.max() <= 0 or x.mean() >= 0:
        return None
    low, high = 1e-6, 1.0
    while np.mean(np.exp(high * x)) < 1.0 and high < 1e3:
        low, high = high, high * 2.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        if np.mean(np.exp(middle * x)) < 1.0:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)
