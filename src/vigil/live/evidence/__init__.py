"""Evidence sources for live streams (see :mod:`vigil.live.evidence.base` for the contract)."""

from vigil.live.evidence.base import (
    AudioEvidenceSource,
    Evidence,
    EvidenceFactory,
    EvidenceSource,
    Modality,
    VideoEvidenceSource,
    clip,
    logit,
)

__all__ = [
    "AudioEvidenceSource",
    "Evidence",
    "EvidenceFactory",
    "EvidenceSource",
    "Modality",
    "VideoEvidenceSource",
    "clip",
    "logit",
]
