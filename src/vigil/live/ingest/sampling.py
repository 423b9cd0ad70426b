"""From decoded frames to samples: video frames picked at a fixed rate on the stream clock and
scaled down, audio resampled to 16 kHz mono and cut into exact 1-second windows."""

from __future__ import annotations

import av
import numpy as np

from vigil.live.samples import AUDIO_RATE, AUDIO_WINDOW_SECONDS

WINDOW = round(AUDIO_RATE * AUDIO_WINDOW_SECONDS)
#: Audio whose timestamps drift this far from the samples counted so far has a gap (lost
#: packets, a reconnect): the partial window is dropped and windows restart at the new time.
_AUDIO_GAP = 0.2
_GRID_SLACK = 0.005


class FrameSampler:
    """Picks frames ``fps`` times a second of stream time, on a fixed grid while it keeps up."""

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.interval = 1.0 / fps
        self._next: float | None = None

    def take(self, t: float) -> bool:
        if self._next is None or t - self._next >= self.interval:
            # First frame, or frames were missing (keyframes only, a gap): restart the grid.
            self._next = t + self.interval
            return True
        # A little slack: 30 fps timestamps can round to just below the grid.
        if t < self._next - _GRID_SLACK:
            return False
        self._next += self.interval
        return True


def to_rgb(frame: av.VideoFrame, max_side: int) -> np.ndarray:
    """``frame`` as H x W x 3 uint8 RGB, scaled (area-averaged) so its longer side is at most
    ``max_side``."""
    width, height = frame.width, frame.height
    scale = min(1.0, max_side / max(width, height))
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    rgb: np.ndarray = frame.to_ndarray(
        format="rgb24", width=size[0], height=size[1], interpolation="AREA"
    )
    return rgb


class AudioWindower:
    """Resamples audio frames to 16 kHz mono float32 and returns each complete 1-s window with
    the stream time of its first sample."""

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None
        self._chunks: list[np.ndarray] = []
        self._count = 0
        self._start = 0.0
        self._next_input: float | None = None

    def reset(self) -> None:
        self._resampler = None
        self._chunks, self._count = [], 0
        self._next_input = None

    def push(self, frame: av.AudioFrame, t: float) -> list[tuple[float, np.ndarray]]:
        if self._next_input is None or abs(t - self._next_input) > _AUDIO_GAP:
            self.reset()
            self._start = t
        self._next_input = t + frame.samples / frame.sample_rate
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        for out in self._resampler.resample(frame):
            chunk = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            self._chunks.append(chunk)
            self._count += len(chunk)
        return self._windows()

    def _windows(self) -> list[tuple[float, np.ndarray]]:
        if self._count < WINDOW:
            return []
        audio = np.concatenate(self._chunks)
        windows: list[tuple[float, np.ndarray]] = []
        while len(audio) >= WINDOW:
            windows.append((self._start, np.clip(audio[:WINDOW], -1.0, 1.0)))
            audio = audio[WINDOW:]
            self._start += AUDIO_WINDOW_SECONDS
        self._chunks, self._count = [audio], len(audio)
        return windows
