"""The stream clock: one time axis ``t`` for a stream, whatever its timestamps do.

Container timestamps restart at each reconnect, wrap (33-bit MPEG-TS) and jump at
discontinuities (an encoder restart behind a UDP feed, an HLS discontinuity). The clock maps them
onto seconds since the session started that keep increasing: each new connection, and each jump
inside one, is rebased so that ``t`` continues from where it was, plus the real time that
passed meanwhile (a live stream that was gone for five seconds is five seconds further on).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class StreamClock:
    def __init__(
        self,
        *,
        back_tolerance: float = 2.0,
        max_jump: float = 10.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        #: Audio and video packets interleave up to a second or so apart; smaller steps back
        #: are interleaving, not a discontinuity.
        self.back_tolerance = back_tolerance
        #: A step forward this much beyond the wall time that passed is a discontinuity.
        self.max_jump = max_jump
        self._now = now
        self._offset: float | None = None
        self._start: float | None = None
        self._last_t: float | None = None
        self._last_wall = 0.0
        self.rebases = 0

    @property
    def t(self) -> float:
        """The latest stream time seen (0 before any packet)."""
        return self._last_t or 0.0

    def connect(self, start: float | None = None) -> None:
        """A new connection begins: its first timestamp will be rebased. ``start`` is the
        container's start time (the earliest timestamp of any of its streams), when known, so
        that no stream's first sample lands before the others'."""
        self._offset = None
        self._start = start

    def packet(self, source: float) -> float:
        """Stream time of a packet whose container timestamp is ``source`` seconds (in decode
        order, so that ``source`` mostly increases). Detects and absorbs jumps."""
        now = self._now()
        if self._offset is None or self._last_t is None:
            self._rebase(source, now)
        else:
            t = source + self._offset
            ahead = self._last_t + (now - self._last_wall) + self.max_jump
            if t < self._last_t - self.back_tolerance or t > ahead:
                self._rebase(source, now)
        assert self._offset is not None
        t = source + self._offset
        self._last_t = t if self._last_t is None else max(self._last_t, t)
        self._last_wall = now
        return t

    def frame(self, source: float) -> float:
        """Stream time of a decoded frame at ``source`` seconds: the current mapping, without
        jump detection (frames leave the decoder reordered)."""
        if self._offset is None:
            return self.t
        return source + self._offset

    def _rebase(self, source: float, now: float) -> None:
        if self._offset is None and self._start is not None and 0 <= source - self._start < 1:
            source = self._start
        if self._last_t is None:
            self._offset = -source
            return
        self.rebases += 1
        self._offset = self._last_t + max(0.0, now - self._last_wall) - source


class LagMeter:
    """How far the reader is behind the stream: wall time since a sample's stream time should
    have arrived, measured against the earliest any sample ever arrived (the stream's own pace).
    Grows when decoding falls behind or the source stalls; 0 when keeping up."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._best: float | None = None
        self._last_t = 0.0

    def reset(self) -> None:
        self._best = None

    def observe(self, t: float) -> None:
        behind = self._now() - t
        self._best = behind if self._best is None else min(self._best, behind)
        self._last_t = t

    def lag(self) -> float:
        if self._best is None:
            return 0.0
        return max(0.0, self._now() - self._last_t - self._best)


class Pacer:
    """Holds a file back to the pace of its timestamps, as if it were live."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._anchor: tuple[float, float] | None = None

    def reset(self) -> None:
        self._anchor = None

    def delay(self, t: float) -> float:
        """Seconds to wait before the packet at stream time ``t`` is due."""
        now = self._now()
        if self._anchor is None:
            self._anchor = (now, t)
            return 0.0
        wall, start = self._anchor
        return max(0.0, wall + (t - start) - now)
