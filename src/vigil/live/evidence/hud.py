"""Static overlays: edges that stay put while the picture behind them moves (a game's HUD).

A game draws its crosshair, health and ammo bars, minimap and counters on top of the rendered
scene; they stay at the same pixels however the player turns. A camera carried by a person has
nothing fixed in its picture. So: keep the last ``window_s`` seconds of small grey frames
(``width`` px wide) and their fine detail (the frame minus its Gaussian blur); when most of the
picture changes over that time, the pixels whose detail keeps the same sign and at least
``detail_threshold`` grey levels in *every* frame are overlays. Fine detail is what a thin,
anti-aliased or half-transparent HUD line keeps while the background behind it changes (its
pixel values do change, so an "unchanged value" test misses it), and a moving scene's detail
flips sign at a pixel as soon as anything crosses it (edge magnitude alone does not: an edge
sliding along itself, or a blurry boundary jittering by a pixel, stays an edge).

The overlay edges are grouped into elements (connected components after a small dilation, so a
word is one element) and scored:

* a compact element at the centre of the picture — a crosshair — weighs most (2.5);
* the first other element weighs little (0.4): a broadcaster's logo, a watermark or a camera's
  timestamp is common on real footage, including re-streams of a real attack, and must not be
  enough to clear it;
* every further element adds 0.8 (a game HUD has several: bars, counters, a minimap).

LLR = -(scene change) x (sum of weights), clipped to [-4, 0]. "Scene change" ramps from 0 to 1
as the share of pixels that changed over the window goes from 30 % to 60 %: a still camera
(everything static) or a slow pan says nothing. Black letterbox or pillarbox borders (a phone's
vertical video in a 16:9 stream) are trimmed first, so their straight edges are not overlays.

Limits: a car's dashboard or a helmet brim fixed in a moving picture counts as an element (one
element weighs 0.4); a third-person game without a crosshair gets only the element weights; an
attacker could add a fake HUD to a real stream (the clip to -4 and the other cues bound what
that buys). See ``vigil/live/models/cues.md``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from vigil.live.evidence.base import Evidence
from vigil.live.evidence.motion import grey_copy
from vigil.live.samples import VideoSample

NAME = "hud"


@dataclass(frozen=True)
class HudConfig:
    #: Width of the grey copy the overlay search runs on.
    width: int = 320
    #: Seconds of frames a fixed edge must persist through.
    window_s: float = 4.0
    #: Frames needed in the window before the source says anything.
    min_frames: int = 6
    #: Frames closer than ``1 / max_rate_hz`` to the last kept one are skipped.
    max_rate_hz: float = 4.0
    #: Grey levels (0-255) of fine detail, same sign, a pixel must keep in every frame.
    detail_threshold: float = 6.0
    #: Sigma (analysis px) of the blur that fine detail is measured against.
    blur_sigma: float = 1.5
    #: A pixel "changed" when its grey value spans more than this over the window.
    change_threshold: float = 30.0
    #: Share of changed pixels where the scene-change ramp starts and where it reaches 1.
    change_low: float = 0.3
    change_high: float = 0.6
    #: Persistent pixels an element needs (at ``width`` 320 the test HUD's crosshair has ~30).
    min_element_pixels: int = 16
    #: Share of its (dilated) bounding box an element's persistent pixels must fill.
    min_element_density: float = 0.1
    #: Share of its persistent pixels on the minority edge direction (horizontal/vertical).
    min_orientation_mix: float = 0.15
    crosshair_weight: float = 2.5
    first_element_weight: float = 0.4
    element_weight: float = 0.8
    llr_min: float = -4.0

    def __post_init__(self) -> None:
        if self.width < 64:
            raise ValueError("the overlay search needs frames at least 64 px wide")
        if self.min_frames < 3:
            raise ValueError("min_frames must be at least 3")
        if self.window_s <= 0 or self.max_rate_hz <= 0:
            raise ValueError("window_s and max_rate_hz must be positive")
        if not 0 <= self.change_low < self.change_high <= 1:
            raise ValueError("need 0 <= change_low < change_high <= 1")
        if self.llr_min >= 0:
            raise ValueError("llr_min must be negative: overlays are evidence against an attack")


@dataclass(frozen=True)
class Overlays:
    """What the window shows: how much changed, and the fixed elements found."""

    changed: float
    crosshair: bool
    #: Bounding boxes (x, y, w, h) of the elements other than the crosshair, as fractions of
    #: the content area.
    elements: tuple[tuple[float, float, float, float], ...]
    #: Content area (x, y, w, h) in analysis pixels after trimming uniform borders.
    content: tuple[int, int, int, int]

    def strength(self, config: HudConfig) -> float:
        """The summed weights of the elements (before the scene-change factor)."""
        others = len(self.elements)
        return (
            config.crosshair_weight * self.crosshair
            + config.first_element_weight * min(others, 1)
            + config.element_weight * max(0, others - 1)
        )

    def scene_change(self, config: HudConfig) -> float:
        ramp = (self.changed - config.change_low) / (config.change_high - config.change_low)
        return float(np.clip(ramp, 0.0, 1.0))


def _detail_map(grey: np.ndarray, sigma: float) -> np.ndarray:
    blurred = np.asarray(cv2.GaussianBlur(grey, (0, 0), sigma), dtype=np.int16)
    detail: np.ndarray = np.asarray(grey, dtype=np.int16) - blurred
    return detail


def _content_box(mean: np.ndarray, spread: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) inside uniform, unchanging borders (letterbox, pillarbox)."""

    def flat(axis: int) -> np.ndarray:
        is_flat: np.ndarray = (np.median(spread, axis=axis) < 6) & (mean.std(axis=axis) < 6)
        return is_flat

    def span(is_flat: np.ndarray) -> tuple[int, int]:
        live = np.flatnonzero(~is_flat)
        if live.size == 0:
            return 0, is_flat.size
        # Two pixels in from a trimmed border: its straight boundary edge is not an overlay.
        start = int(live[0]) + (2 if live[0] > 0 else 0)
        stop = int(live[-1]) + 1 - (2 if live[-1] < is_flat.size - 1 else 0)
        return start, max(stop, start + 1)

    top, bottom = span(flat(1))
    left, right = span(flat(0))
    return left, top, right - left, bottom - top


def find_overlays(greys: np.ndarray, details: np.ndarray, config: HudConfig) -> Overlays:
    """Fixed elements in a stack of grey frames (time first) and their fine-detail maps."""
    spread = greys.max(axis=0).astype(np.int16) - greys.min(axis=0)
    mean = greys.mean(axis=0, dtype=np.float32)
    x, y, w, h = _content_box(mean, spread)
    changed = float((spread[y : y + h, x : x + w] > config.change_threshold).mean())
    overlays = Overlays(changed, False, (), (x, y, w, h))
    if overlays.scene_change(config) == 0.0:
        # Too little moved for fixed pixels to mean anything.
        return overlays
    details = details[:, y : y + h, x : x + w]
    sign = np.sign(details.sum(axis=0, dtype=np.int32)).astype(np.int16)
    persistent = (details * sign).min(axis=0) >= config.detail_threshold
    mean = mean[y : y + h, x : x + w]
    vertical = np.abs(cv2.Sobel(mean, cv2.CV_32F, 1, 0)) > np.abs(cv2.Sobel(mean, cv2.CV_32F, 0, 1))
    mask = cv2.dilate(persistent.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    crosshair = False
    elements: list[tuple[float, float, float, float]] = []
    for label in range(1, count):
        ex, ey, ew, eh, _ = (int(v) for v in stats[label])
        pixels = (labels == label) & persistent
        if not _is_element(int(pixels.sum()), ew * eh, float(vertical[pixels].mean()), config):
            continue
        box = (ex / w, ey / h, ew / w, eh / h)
        if _is_crosshair(box):
            crosshair = True
        else:
            elements.append(box)
    return Overlays(changed, crosshair, tuple(elements), (x, y, w, h))


def _is_element(pixels: int, area: int, vertical: float, config: HudConfig) -> bool:
    """Enough fixed pixels, densely packed, with edges in both directions.

    A moving scene leaves a few scattered coincidences, and a pan along a straight edge leaves
    that edge (it slides along itself): thin, sparse, one direction. Overlay text, bars, rims
    and crosshairs are dense and have both horizontal and vertical edges."""
    return (
        pixels >= config.min_element_pixels
        and pixels >= config.min_element_density * area
        and min(vertical, 1.0 - vertical) >= config.min_orientation_mix
    )


def _is_crosshair(box: tuple[float, float, float, float]) -> bool:
    """Small and centred on the middle of the picture."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return abs(cx - 0.5) < 0.04 and abs(cy - 0.5) < 0.06 and w < 0.15 and h < 0.25


class HudSource:
    """One stream's overlay detector (it keeps the window's small frames and detail maps)."""

    def __init__(self, config: HudConfig | None = None) -> None:
        self.config = config or HudConfig()
        self.name = NAME
        self.modality: Literal["video"] = "video"
        self._frames: deque[tuple[float, np.ndarray, np.ndarray]] = deque()

    def observe(self, sample: VideoSample) -> Evidence | None:
        if self._frames and 0 <= sample.t - self._frames[-1][0] < 0.9 / self.config.max_rate_hz:
            return None
        grey = grey_copy(sample.rgb, self.config.width)
        if self._frames and (
            self._frames[-1][1].shape != grey.shape or sample.t <= self._frames[-1][0]
        ):
            # A resolution change or a clock reset: the old frames don't line up any more.
            self._frames.clear()
        self._frames.append((sample.t, grey, _detail_map(grey, self.config.blur_sigma)))
        while self._frames[0][0] <= sample.t - self.config.window_s:
            self._frames.popleft()
        if len(self._frames) < self.config.min_frames:
            return None
        greys = np.stack([frame[1] for frame in self._frames])
        details = np.stack([frame[2] for frame in self._frames])
        overlays = find_overlays(greys, details, self.config)
        strength = overlays.strength(self.config)
        change = overlays.scene_change(self.config)
        llr = max(-change * strength, self.config.llr_min)
        score = change * min(1.0, strength / -self.config.llr_min)
        return Evidence(NAME, sample.t, score, llr, _detail(overlays, change))


def _detail(overlays: Overlays, change: float) -> dict[str, Any]:
    return {
        "changed": round(overlays.changed, 3),
        "scene_change": round(change, 3),
        "crosshair": overlays.crosshair,
        "elements": [[round(v, 3) for v in box] for box in overlays.elements],
        "content": list(overlays.content),
    }


class HudFactory:
    """Makes each stream's :class:`HudSource` (cheap: no shared model)."""

    def __init__(self, config: HudConfig | None = None) -> None:
        self.config = config or HudConfig()
        self.name = NAME

    def __call__(self, stream_id: str) -> HudSource:
        return HudSource(self.config)
