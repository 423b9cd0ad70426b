"""The evidence packet a reviewer gets with a live alert: keyframes, a plot of every signal over
time with the thresholds, and the sentence that says why it fired. (The clip itself is cut by
ingest from the packets it kept, without re-encoding.)"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vigil.live.fusion import FusionConfig, LevelChange, Window
from vigil.live.samples import VideoSample

_PALETTE = (
    (200, 40, 40),
    (40, 110, 200),
    (30, 150, 70),
    (220, 140, 20),
    (140, 60, 170),
    (90, 90, 90),
    (0, 150, 160),
    (170, 110, 60),
)


def select_keyframes(
    frames: Sequence[VideoSample], strength: dict[float, float], count: int
) -> list[VideoSample]:
    """``count`` frames that show the incident: the one with the strongest visual evidence and
    the rest evenly spread, in time order. ``strength`` maps a frame's time to its evidence."""
    if count <= 0 or not frames:
        return []
    chosen = {len(frames) - 1}
    if strength:
        chosen.add(max(range(len(frames)), key=lambda i: strength.get(frames[i].t, -1e9)))
    for index in np.linspace(0, len(frames) - 1, num=count).round().astype(int):
        if len(chosen) >= count:
            break
        chosen.add(int(index))
    return [frames[i] for i in sorted(chosen)]


def write_jpeg(rgb: np.ndarray, path: Path, quality: int = 90) -> Path:
    Image.fromarray(rgb).save(path, format="JPEG", quality=quality)
    return path


def render_plot(windows: Sequence[Window], config: FusionConfig, onset: float, path: Path) -> Path:
    """A PNG: each source's per-second ratio (top) and the CUSUM with its thresholds (bottom)."""
    width, height, margin = 960, 520, 48
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    if not windows:
        draw.text((margin, margin), "no windows yet", fill="black")
        image.save(path, format="PNG")
        return path
    start, end = windows[0].start, windows[-1].start + 1.0
    top = (margin, 24, width - 16, height // 2 - 16)
    bottom = (margin, height // 2 + 16, width - 16, height - 28)
    sources = sorted({name for window in windows for name in window.llr})
    values = [v for window in windows for v in window.llr.values()] or [0.0]
    ratio_range = (min(min(values), -1.0), max(max(values), 1.0))
    statistic_range = (0.0, max(config.critical * 1.1, max(w.statistic for w in windows)))

    def x(t: float) -> float:
        return top[0] + (top[2] - top[0]) * (t - start) / max(end - start, 1.0)

    def y(value: float, box: tuple[int, int, int, int], span: tuple[float, float]) -> float:
        low, high = span
        return box[3] - (box[3] - box[1]) * (value - low) / max(high - low, 1e-9)

    for box in (top, bottom):
        draw.rectangle(box, outline=(160, 160, 160))
    draw.line([(top[0], y(0, top, ratio_range)), (top[2], y(0, top, ratio_range))], fill="gray")
    for index, name in enumerate(sources):
        colour = _PALETTE[index % len(_PALETTE)]
        points = [
            (x(w.start + 0.5), y(w.llr[name], top, ratio_range)) for w in windows if name in w.llr
        ]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        draw.text((top[0] + 6 + 110 * index, top[1] + 4), name, fill=colour)
    for label, level in (
        ("watch", config.watch),
        ("alert", config.alert),
        ("critical", config.critical),
    ):
        level_y = y(level, bottom, statistic_range)
        draw.line([(bottom[0], level_y), (bottom[2], level_y)], fill=(230, 150, 150))
        draw.text((bottom[2] - 60, level_y - 12), label, fill=(180, 60, 60))
    cusum = [(x(w.start + 1.0), y(w.statistic, bottom, statistic_range)) for w in windows]
    if len(cusum) > 1:
        draw.line(cusum, fill="black", width=2)
    if start <= onset <= end:
        draw.line([(x(onset), top[1]), (x(onset), bottom[3])], fill=(0, 0, 0), width=1)
        draw.text((x(onset) + 3, bottom[3] + 4), "onset", fill="black")
    draw.text((4, top[1]), "LLR", fill="black")
    draw.text((4, bottom[1]), "CUSUM", fill="black")
    draw.text((bottom[0], bottom[3] + 4), f"{start:.0f} s", fill="black")
    draw.text((bottom[2] - 50, bottom[3] + 4), f"{end:.0f} s", fill="black")
    image.save(path, format="PNG")
    return path


def explain(change: LevelChange, contributions: dict[str, float], config: FusionConfig) -> str:
    """Why the stream reached its level, in one sentence a reviewer can check on the plot."""
    positive = [(name, value) for name, value in contributions.items() if value > 0]
    negative = [(name, value) for name, value in contributions.items() if value < 0]
    parts = [
        f"Live stream reached {change.level.upper()} at {change.window.start + 1:.0f} s "
        f"(CUSUM {change.window.statistic:.1f} >= {_threshold(change, config):.1f}), "
        f"evidence building since {change.onset:.0f} s"
    ]
    if positive:
        parts.append(
            "driven by " + ", ".join(f"{name} (+{value:.1f})" for name, value in positive[:4])
        )
    if negative:
        parts.append(
            "against: " + ", ".join(f"{name} ({value:.1f})" for name, value in negative[:3])
        )
    return "; ".join(parts) + ". Machine assessment only: a person decides."


def _threshold(change: LevelChange, config: FusionConfig) -> float:
    return {"watch": config.watch, "alert": config.alert}.get(change.level, config.critical)
