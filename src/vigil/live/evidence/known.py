"""Known content: frames of the stream matched against the hash banks (a re-stream of known
attack footage). A match is strong evidence on its own, so its ratio alone clears the alert
threshold within a window or two; no match says nothing (new footage is not benign footage).

The stream's own fingerprints (added to the incident bank while it runs) are not evidence
against it: matches whose entry belongs to this session are ignored. Other streams' incident
fingerprints are evidence (someone re-streaming an attack) unless ``match_incidents`` is off, as
in ``vigil live eval``, whose synthetic streams share background footage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vigil.hashing import KnownContent
from vigil.live.evidence.base import Evidence, VideoEvidenceSource
from vigil.live.incident import INCIDENT_REF_PREFIX, incident_prefix
from vigil.live.samples import VideoSample

#: One matching window lifts the statistic past the default alert threshold (5); a second one
#: takes it past critical (12). A bank match has no cap: it is decisive on its own.
MATCH_LLR = 9.0


@dataclass
class KnownContentEvidence:
    known: KnownContent
    session_id: str
    every_n_frames: int = 2
    match_incidents: bool = True
    name: str = "known_content"
    modality: Literal["video"] = "video"
    _seen: int = 0

    def observe(self, sample: VideoSample) -> Evidence | None:
        self._seen += 1
        if (self._seen - 1) % self.every_n_frames:
            return None
        own = incident_prefix(self.session_id) if self.match_incidents else INCIDENT_REF_PREFIX
        matches = [
            match
            for match in self.known.match_frame(sample.rgb).matches
            if not match.content_ref.startswith(own)
        ]
        if not matches:
            return Evidence(self.name, sample.t, 0.0, 0.0)
        best = matches[0]
        return Evidence(
            self.name,
            sample.t,
            1.0,
            MATCH_LLR,
            {
                "bank": best.bank,
                "entry_id": best.entry_id,
                "distance": best.distance,
                "labels": list(best.labels),
                "matches": len(matches),
            },
        )


@dataclass(frozen=True)
class KnownContentFactory:
    known: KnownContent
    every_n_frames: int = 2
    match_incidents: bool = True
    name: str = "known_content"

    def __call__(self, stream_id: str) -> VideoEvidenceSource:
        return KnownContentEvidence(
            self.known, stream_id, self.every_n_frames, self.match_incidents
        )
