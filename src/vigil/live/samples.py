"""What ingest hands to the detectors: video frames and audio windows on the stream's clock.

``t`` is stream time in seconds since the session started (from the container's timestamps,
rebased at each reconnect so that it keeps increasing); ``received`` is ``time.monotonic()`` when
the sample left the decoder, so that alert latency can be measured against the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Audio windows are 1 s of 16 kHz mono float32 in [-1, 1].
AUDIO_RATE = 16_000
AUDIO_WINDOW_SECONDS = 1.0


@dataclass(frozen=True, eq=False)
class VideoSample:
    stream_id: str
    t: float
    #: H x W x 3 uint8 RGB, scaled so that its longer side is at most the configured size.
    rgb: np.ndarray
    received: float


@dataclass(frozen=True, eq=False)
class AudioWindow:
    stream_id: str
    t: float
    #: AUDIO_RATE * AUDIO_WINDOW_SECONDS float32 samples, mono.
    samples: np.ndarray
    received: float
