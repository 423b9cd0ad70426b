"""First-person ego-motion from optical flow: is the camera carried by someone who moves?

A head, body or hand-held camera moves with its wearer: the whole picture shifts, turns and
shakes, and the motion is irregular from one frame to the next. A tripod, a CCTV camera or a
screen recording of a static page shows little global motion even when people move inside it,
and a broadcast pan is smooth.

Per frame pair (on a small grey copy, ``width`` px wide): Shi-Tomasi corners of the earlier
frame are tracked with pyramidal Lucas-Kanade (forward and backward, keeping consistent tracks),
and a similarity transform (shift, rotation, zoom) is fitted with RANSAC. That gives

* the global motion: the shift of the frame centre in frame widths per second;
* the explained share: how many tracks the camera's motion explains (RANSAC inliers) rather
  than objects moving in a still frame;
* a lost pair when too few tracks survive: a cut, a blackout or a jump too large to track.

Over the last ``window_s`` seconds these become

* ``speed``: the median global speed (widths/s; a zoom counts by how far it moves a point half
  a width from the centre);
* ``shake``: the RMS change of the global velocity from one pair to the next (widths/s):
  high-frequency variation that a smooth pan or a drone shot lacks;
* ``roll``: the RMS rotation rate (degrees/s) — heads and hands turn the horizon, pans don't;
* ``bob``: the share of the vertical velocity's spectrum in the walking band (1.3-2.7 Hz)
  — only when the source analyses frames at least ``2 * 2.7`` times a second.

What 2 fps can see: the step rhythm of walking (about 2 Hz) is above the 1 Hz Nyquist limit of
2 fps sampling, so its bob folds onto slow drift and per-frame noise; at that rate walking shows
up as irregular vertical velocity (``shake``), not as a spectral peak. Feed the source more
frames (``max_rate_hz`` caps how many it analyses) to measure ``bob`` itself.

The score is a hand-set rule, not a trained head (no first-person footage exists in the
training data): P(handheld) = moving x (0.3 + 0.7 x irregular) x (0.5 + 0.5 x explained) x
(1 - cut rate / 2), where ``moving`` and ``irregular`` are logistic ramps on ``speed`` and on
``max(shake, roll, bob)``. The ratio maps the score linearly onto [-0.5, +1.0]: a first-person
game moves just like a body camera, so camera motion is weak evidence on its own; a still
picture is mild evidence against. A window where nothing could be tracked (a blank screen, a
slideshow of unrelated pictures) gives no evidence. See ``vigil/live/models/cues.md``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from vigil.live.evidence.base import Evidence
from vigil.live.samples import VideoSample

NAME = "ego_motion"


@dataclass(frozen=True)
class EgoMotionConfig:
    #: Width of the grey copy the flow runs on.
    width: int = 256
    #: Frames closer than ``1 / max_rate_hz`` to the last analysed one are skipped.
    max_rate_hz: float = 10.0
    #: Seconds of frame pairs the statistics look back over.
    window_s: float = 4.0
    #: Tracked pairs needed in the window before the source says anything.
    min_pairs: int = 3
    max_corners: int = 160
    #: Fewer consistent tracks than this make the pair "lost" (a cut or an untrackable jump).
    min_tracks: int = 12
    #: Global speed (frame widths/s) at which ``moving`` is one half.
    speed_mid: float = 0.02
    #: Velocity change (widths/s, RMS) at which ``irregular`` is one half.
    shake_mid: float = 0.05
    #: Rotation rate (degrees/s, RMS) at which the roll part of ``irregular`` is one half.
    roll_mid: float = 2.0
    #: Walking cadence band (Hz) for the bob spectrum, used when the frame rate resolves it.
    bob_band: tuple[float, float] = (1.3, 2.7)
    llr_min: float = -0.5
    llr_max: float = 1.0

    def __post_init__(self) -> None:
        if self.width < 64:
            raise ValueError("the flow needs frames at least 64 px wide")
        if self.max_rate_hz <= 0 or self.window_s <= 0:
            raise ValueError("max_rate_hz and window_s must be positive")
        if self.min_pairs < 2:
            raise ValueError("min_pairs must be at least 2 (shake compares consecutive pairs)")
        if not 0 < self.bob_band[0] < self.bob_band[1]:
            raise ValueError("bob_band must be an increasing pair of positive frequencies")
        if not self.llr_min < 0 < self.llr_max:
            raise ValueError("the LLR range must straddle 0")


@dataclass(frozen=True)
class _Pair:
    """The camera's motion between two analysed frames, ``dt`` seconds apart."""

    t: float
    dt: float
    lost: bool
    #: Shift of the frame centre, in frame widths.
    dx: float = 0.0
    dy: float = 0.0
    #: Rotation in degrees and log of the zoom factor.
    rotation: float = 0.0
    log_zoom: float = 0.0
    #: Share of consistent tracks the global model explains.
    explained: float = 0.0


@dataclass(frozen=True)
class MotionStats:
    """The window's statistics that the score is made of (also the evidence's detail)."""

    pairs: int
    speed: float
    shake: float
    roll: float
    bob: float | None
    explained: float
    cut_rate: float

    def score(self, config: EgoMotionConfig) -> float:
        moving = _ramp(self.speed, config.speed_mid)
        irregular = max(
            _ramp(self.shake, config.shake_mid),
            _ramp(self.roll, config.roll_mid),
            self.bob or 0.0,
        )
        # A lost pair is a cut (edited footage) or a jump too fast to track (running, whipping
        # round): at 2 fps the two look alike, so lost pairs only damp the score.
        damp = 1 - 0.5 * self.cut_rate
        return moving * (0.3 + 0.7 * irregular) * (0.5 + 0.5 * self.explained) * damp


def _ramp(value: float, mid: float) -> float:
    """Logistic in log(value / mid): 0.5 at ``mid``, ~0.12 at half of it, ~0.88 at twice it."""
    if value <= 0:
        return 0.0
    return 1.0 / (1.0 + (mid / value) ** 3)


def grey_copy(rgb: np.ndarray, width: int) -> np.ndarray:
    """A small grey copy of an RGB frame, ``width`` px wide (the cue sources work on these)."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    height = max(16, round(grey.shape[0] * width / grey.shape[1]))
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)


def _track(
    before: np.ndarray, after: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pyramidal Lucas-Kanade: where ``points`` went, and which were found."""
    moved, status, _ = cv2.calcOpticalFlowPyrLK(
        before,
        after,
        points,
        points.copy(),
        winSize=(21, 21),
        maxLevel=4,
        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03),
    )
    return np.asarray(moved), np.asarray(status)


def _frame_motion(
    previous: np.ndarray, current: np.ndarray, t: float, dt: float, config: EgoMotionConfig
) -> _Pair:
    """The global motion between two grey frames (the later one at stream time ``t``)."""
    lost = _Pair(t, dt, lost=True)
    corners = cv2.goodFeaturesToTrack(
        previous, maxCorners=config.max_corners, qualityLevel=0.01, minDistance=6, blockSize=7
    )
    if corners is None or len(corners) < config.min_tracks:
        return lost
    forward, status = _track(previous, current, corners)
    back, status_back = _track(current, previous, forward)
    consistent = (
        (status.ravel() == 1)
        & (status_back.ravel() == 1)
        & (np.linalg.norm((back - corners).reshape(-1, 2), axis=1) < 1.0)
    )
    if int(consistent.sum()) < config.min_tracks:
        return lost
    source = corners.reshape(-1, 2)[consistent]
    target = forward.reshape(-1, 2)[consistent]
    model, inliers = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=1.5
    )
    if model is None or inliers is None:
        return lost
    height, width = previous.shape
    centre = np.array([width / 2.0, height / 2.0])
    dx, dy = (model[:, :2] @ centre + model[:, 2] - centre) / width
    return _Pair(
        t,
        dt,
        lost=False,
        dx=float(dx),
        dy=float(dy),
        rotation=math.degrees(math.atan2(model[1, 0], model[0, 0])),
        log_zoom=math.log(max(math.hypot(model[0, 0], model[1, 0]), 1e-6)),
        explained=float(inliers.sum()) / len(source),
    )


def _bob(pairs: list[_Pair], config: EgoMotionConfig) -> float | None:
    """How much of the vertical velocity swings at walking cadence, when the rate resolves it:
    the band's share of the spectrum, weighted by how strong the band's swing is (a near-still
    picture's noise can put any share in the band)."""
    if len(pairs) < 8:
        return None
    rate = 1.0 / float(np.median([p.dt for p in pairs]))
    if rate < 2 * config.bob_band[1]:
        return None
    times = np.array([p.t for p in pairs])
    vy = np.array([p.dy / p.dt for p in pairs])
    # The pairs are not exactly evenly spaced (skipped or late frames): resample onto the
    # median step before taking the spectrum.
    grid = np.arange(times[0], times[-1], 1.0 / rate)
    if grid.size < 8:
        return None
    series = np.interp(grid, times, vy)
    series = (series - series.mean()) * np.hanning(series.size)
    power = np.abs(np.fft.rfft(series)) ** 2
    freqs = np.fft.rfftfreq(series.size, 1.0 / rate)
    total = float(power[1:].sum())
    if total <= 0:
        return 0.0
    in_band = (freqs >= config.bob_band[0]) & (freqs <= config.bob_band[1])
    share = float(power[in_band].sum()) / total
    # Parseval: the band's share of the windowed series' mean square.
    band_rms = math.sqrt(share * float(np.mean(series**2)))
    return share * _ramp(band_rms, config.shake_mid)


def _window_stats(pairs: list[_Pair], config: EgoMotionConfig) -> MotionStats | None:
    tracked = [p for p in pairs if not p.lost]
    if len(tracked) < config.min_pairs:
        return None
    # A zoom by log z moves a point half a width from the centre by about z / 2 widths: walking
    # forward counts as motion even when the centre stays put.
    velocity = np.array([[p.dx, p.dy, p.log_zoom / 2] for p in tracked]) / np.array(
        [[p.dt] for p in tracked]
    )
    speed = float(np.median(np.linalg.norm(velocity, axis=1)))
    change = np.diff(velocity, axis=0)
    shake = float(np.sqrt(np.mean(np.sum(change**2, axis=1))))
    roll = float(np.sqrt(np.mean([(p.rotation / p.dt) ** 2 for p in tracked])))
    explained = float(np.mean([p.explained for p in tracked]))
    return MotionStats(
        pairs=len(tracked),
        speed=speed,
        shake=shake,
        roll=roll,
        bob=_bob(tracked, config),
        explained=explained,
        cut_rate=(len(pairs) - len(tracked)) / len(pairs),
    )


class EgoMotionSource:
    """One stream's ego-motion estimator (it keeps the last frame and the window's pairs)."""

    def __init__(self, config: EgoMotionConfig | None = None) -> None:
        self.config = config or EgoMotionConfig()
        self.name = NAME
        self.modality: Literal["video"] = "video"
        self._previous: np.ndarray | None = None
        self._previous_t = 0.0
        self._pairs: deque[_Pair] = deque()

    def observe(self, sample: VideoSample) -> Evidence | None:
        # 10 % slack: frames of a stream at exactly max_rate_hz arrive a hair early at times.
        too_soon = 0 <= sample.t - self._previous_t < 0.9 / self.config.max_rate_hz
        if self._previous is not None and too_soon:
            return None
        grey = grey_copy(sample.rgb, self.config.width)
        previous, self._previous = self._previous, grey
        previous_t, self._previous_t = self._previous_t, sample.t
        if previous is None or previous.shape != grey.shape or sample.t <= previous_t:
            # A new stream, a resolution change or a clock reset: start the history again.
            self._pairs.clear()
            return None
        self._add_pair(previous, grey, sample.t, sample.t - previous_t)
        stats = _window_stats(list(self._pairs), self.config)
        if stats is None:
            return None
        score = stats.score(self.config)
        llr = self.config.llr_min + (self.config.llr_max - self.config.llr_min) * score
        return Evidence(NAME, sample.t, score, llr, _detail(stats))

    def _add_pair(self, previous: np.ndarray, current: np.ndarray, t: float, dt: float) -> None:
        self._pairs.append(_frame_motion(previous, current, t, dt, self.config))
        while self._pairs and self._pairs[0].t <= t - self.config.window_s:
            self._pairs.popleft()


def _detail(stats: MotionStats) -> dict[str, Any]:
    return {
        "pairs": stats.pairs,
        "speed": round(stats.speed, 4),
        "shake": round(stats.shake, 4),
        "roll": round(stats.roll, 3),
        "bob": None if stats.bob is None else round(stats.bob, 3),
        "explained": round(stats.explained, 3),
        "cut_rate": round(stats.cut_rate, 3),
    }


class EgoMotionFactory:
    """Makes each stream's :class:`EgoMotionSource` (the source is cheap: no shared model)."""

    def __init__(self, config: EgoMotionConfig | None = None) -> None:
        self.config = config or EgoMotionConfig()
        self.name = NAME

    def __call__(self, stream_id: str) -> EgoMotionSource:
        return EgoMotionSource(self.config)
