"""Synthetic streams for the visual-cue tests, rendered from real photos (Kodak24).

* ``walk``: a hand-held walk: the view drifts forward (zoom), bobs with each step at a cadence
  that wanders around 1.9 Hz, sways, shakes and rolls a little.
* ``tripod``: the same photo through a still camera while an object (a patch of another photo)
  crosses the frame.
* ``pan``: a smooth broadcast pan at constant speed.
* ``game``: the walk with a static HUD drawn on top (crosshair at the centre, health and ammo
  bars, "AMMO 30/120", "HP 100", a minimap).
* ``news``: the walk with a small broadcast logo in the top-right corner.

Every frame goes through a JPEG round trip, as a stream's frames would. Imported by the
test_live_* cue modules; it holds no tests itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vigil.live.evidence.base import Evidence, VideoEvidenceSource
from vigil.live.samples import VideoSample

WIDTH, HEIGHT = 640, 360
FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


@lru_cache(maxsize=8)
def photo(kodak: Path, index: int) -> np.ndarray:
    with Image.open(kodak / f"{index:02d}.png") as image:
        return np.asarray(image.convert("RGB"))


def _font(size: int) -> ImageFont.FreeTypeFont:
    if FONT_PATH.is_file():
        return ImageFont.truetype(str(FONT_PATH), size)
    return ImageFont.load_default(size=size)


def _view(image: np.ndarray, cx: float, cy: float, zoom: float, roll: float) -> np.ndarray:
    """The 640x360 view of ``image`` centred on (cx, cy), ``zoom`` output px per image px."""
    model = cv2.getRotationMatrix2D((cx, cy), roll, zoom)
    model[0, 2] += WIDTH / 2 - cx
    model[1, 2] += HEIGHT / 2 - cy
    return cv2.warpAffine(
        image, model, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def _jpeg(frame: np.ndarray, quality: int = 80) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])


def walk(image: np.ndarray, seconds: float, fps: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    frames = []
    phase = 0.0
    shake = np.zeros(3)
    n = round(seconds * fps)
    for i in range(n):
        t = i / fps
        cadence = 1.9 + 0.15 * math.sin(0.7 * t)
        phase += 2 * math.pi * cadence / fps
        # Jitter as an AR(1) process: hand tremor and footfalls, correlated over ~0.2 s.
        decay = math.exp(-1 / (0.2 * fps))
        shake = decay * shake + math.sqrt(1 - decay**2) * rng.normal(0, [5.0, 5.0, 1.2])
        cx = width / 2 + 40 * math.sin(0.3 * t) + 6 * math.sin(phase / 2) + shake[0]
        cy = height / 2 + 8 * math.sin(phase) + shake[1]
        zoom = 1.05 * math.exp(0.03 * t)
        frames.append(_jpeg(_view(image, cx, cy, zoom, shake[2])))
    return frames


def tripod(
    image: np.ndarray, thing: np.ndarray, seconds: float, fps: float, seed: int = 0
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    background = _view(image, width / 2, height / 2, 1.05, 0.0)
    patch = cv2.resize(thing[100:340, 200:360], (80, 120), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(round(seconds * fps)):
        t = i / fps
        frame = background.copy()
        x = int(40 + 70 * t) % (WIDTH - 80)
        y = 200 + int(6 * math.sin(4 * t))
        frame[y : y + 120, x : x + 80] = patch
        noise = rng.normal(0, 1.5, frame.shape)
        frames.append(_jpeg(np.clip(frame + noise, 0, 255).astype(np.uint8)))
    return frames


def pan(image: np.ndarray, seconds: float, fps: float) -> list[np.ndarray]:
    height, width = image.shape[:2]
    frames = []
    for i in range(round(seconds * fps)):
        t = i / fps
        frames.append(_jpeg(_view(image, width / 2 - 120 + 30 * t, height / 2, 1.1, 0.0)))
    return frames


def _hud_layer() -> tuple[np.ndarray, np.ndarray]:
    """An RGBA game HUD for a 640x360 frame: (rgb, alpha in [0, 1])."""
    layer = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    cx, cy = WIDTH // 2, HEIGHT // 2
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        start = (cx + 5 * dx, cy + 5 * dy)
        end = (cx + 16 * dx, cy + 16 * dy)
        draw.line([start, end], fill=(0, 0, 0, 255), width=4)
        draw.line([start, end], fill=(255, 255, 255, 255), width=2)
    # Health bar (bottom left), ammo counter (bottom right), minimap (top left).
    draw.rectangle([20, 318, 190, 336], fill=(0, 0, 0, 160), outline=(255, 255, 255, 255))
    draw.rectangle([23, 321, 150, 333], fill=(60, 220, 60, 255))
    draw.text((22, 292), "HP 100", font=_font(18), fill=(255, 255, 255, 255))
    draw.rectangle([470, 300, 625, 340], fill=(0, 0, 0, 150))
    draw.text((480, 306), "AMMO 30/120", font=_font(20), fill=(255, 230, 80, 255))
    draw.ellipse([14, 14, 104, 104], fill=(20, 40, 20, 200), outline=(255, 255, 255, 255))
    draw.polygon([(59, 50), (53, 66), (65, 66)], fill=(255, 60, 60, 255))
    array = np.asarray(layer).astype(np.float32)
    return array[:, :, :3], array[:, :, 3:] / 255.0


def _logo_layer() -> tuple[np.ndarray, np.ndarray]:
    """A small broadcast logo (top-right corner)."""
    layer = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rectangle([560, 16, 624, 44], fill=(200, 20, 30, 230))
    draw.text((566, 20), "N24", font=_font(18), fill=(255, 255, 255, 255))
    array = np.asarray(layer).astype(np.float32)
    return array[:, :, :3], array[:, :, 3:] / 255.0


def _overlay(frames: list[np.ndarray], layer: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    rgb, alpha = layer
    return [
        _jpeg((frame.astype(np.float32) * (1 - alpha) + rgb * alpha).astype(np.uint8))
        for frame in frames
    ]


def game(frames: list[np.ndarray]) -> list[np.ndarray]:
    return _overlay(frames, _hud_layer())


def news(frames: list[np.ndarray]) -> list[np.ndarray]:
    return _overlay(frames, _logo_layer())


def samples(frames: list[np.ndarray], fps: float, stream_id: str = "s") -> Iterator[VideoSample]:
    for i, frame in enumerate(frames):
        yield VideoSample(stream_id, i / fps, frame, time.monotonic())


def run(source: VideoEvidenceSource, frames: list[np.ndarray], fps: float) -> list[Evidence]:
    """Every piece of evidence the source gives over the sequence."""
    return [e for e in map(source.observe, samples(frames, fps)) if e is not None]


def median_llr(
    make: Callable[[], VideoEvidenceSource], frames: list[np.ndarray], fps: float
) -> float:
    evidence = run(make(), frames, fps)
    assert evidence, "the source said nothing over the whole sequence"
    return float(np.median([e.llr for e in evidence]))


def _report(kodak: Path) -> None:
    """Median LLR of each source on each synthetic sequence, and ms per 640x360 frame: the
    numbers in vigil/live/models/cues.md."""
    from vigil.live.evidence.gametext import GameTextConfig, GameTextSource
    from vigil.live.evidence.hud import HudSource
    from vigil.live.evidence.motion import EgoMotionSource

    makers: dict[str, Callable[[], VideoEvidenceSource]] = {
        "ego_motion": EgoMotionSource,
        "hud": HudSource,
        "gametext": lambda: GameTextSource(GameTextConfig(interval_s=0.0)),
    }
    llrs: dict[tuple[str, str], list[float]] = {}
    costs: dict[str, list[float]] = {name: [] for name in makers}
    for index in (1, 5, 8, 13, 23):
        image, thing = photo(kodak, index), photo(kodak, 4 if index != 4 else 3)
        walking = walk(image, 12, 2, seed=index)
        sequences = {
            "walk": walking,
            "pan": pan(image, 12, 2),
            "tripod": tripod(image, thing, 12, 2),
            "still screen": [walking[0]] * 24,
            "game": game(walking),
            "news": news(walking),
        }
        for sequence, frames in sequences.items():
            for name, make in makers.items():
                source, used = make(), frames if name != "gametext" else frames[::6]
                started = time.perf_counter()
                evidence = run(source, used, 2 if name != "gametext" else 2 / 6)
                costs[name].append(1000 * (time.perf_counter() - started) / len(used))
                llrs.setdefault((name, sequence), []).append(
                    float(np.median([e.llr for e in evidence])) if evidence else float("nan")
                )
    sequences_seen = list(dict.fromkeys(sequence for _, sequence in llrs))
    print("| source | " + " | ".join(sequences_seen) + " | ms/frame (median) |")
    print("|---" * (len(sequences_seen) + 2) + "|")
    for name in makers:
        cells = []
        for sequence in sequences_seen:
            values = llrs[(name, sequence)]
            cells.append(f"{np.nanmedian(values):+.2f} ({min(values):+.2f}..{max(values):+.2f})")
        print(f"| {name} | " + " | ".join(cells) + f" | {np.median(costs[name]):.1f} |")


if __name__ == "__main__":
    _report(Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "kodak24")
