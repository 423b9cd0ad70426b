"""The contract every evidence source keeps.

A source turns samples into :class:`Evidence`: a calibrated probability that the window shows
the thing it looks for, and the log-likelihood ratio (attack vs. benign stream) that the fusion
adds up. Sources that recognise look-alikes (a game HUD, game text, a "gaming" category) give
negative ratios. Each source has a model card (``vigil/live/models/*.md``) that says what its
ratio is worth.

Sources are made per stream by a :class:`EvidenceFactory`, because most of them remember earlier
frames (optical flow, static overlays); heavy models are loaded once per process and shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from vigil.live.samples import AudioWindow, VideoSample

Modality = Literal["video", "audio"]


@dataclass(frozen=True)
class Evidence:
    #: The source's name, e.g. ``gunshot``, ``weapon``, ``ego_motion``, ``hud``, ``onnx:mymodel``.
    source: str
    #: Stream time of the window the evidence is about.
    t: float
    #: Calibrated probability (or detector score in [0, 1]) of what the source looks for.
    score: float
    #: Log-likelihood ratio this window contributes: log P(x | attack) / P(x | benign), clipped by
    #: the source to its documented range.
    llr: float
    #: Why: whatever a reviewer needs to see (top classes, boxes, flow magnitude, OCR words).
    detail: dict[str, Any] = field(default_factory=dict)


class VideoEvidenceSource(Protocol):
    name: str
    modality: Literal["video"]

    def observe(self, sample: VideoSample) -> Evidence | None:
        """Evidence for this frame, or None when the source has nothing to say yet (it may skip
        frames to save CPU, or need a few frames of history)."""
        ...


class AudioEvidenceSource(Protocol):
    name: str
    modality: Literal["audio"]

    def observe(self, window: AudioWindow) -> Evidence | None: ...


EvidenceSource = VideoEvidenceSource | AudioEvidenceSource


class EvidenceFactory(Protocol):
    """Makes one stream's instance of a source."""

    @property
    def name(self) -> str: ...

    def __call__(self, stream_id: str) -> EvidenceSource: ...


def logit(p: float, floor: float = 1e-4) -> float:
    """log(p / (1 - p)) with p kept away from 0 and 1."""
    import math

    q = min(max(p, floor), 1.0 - floor)
    return math.log(q / (1.0 - q))


def clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)
