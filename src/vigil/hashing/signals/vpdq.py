"""vPDQ: one PDQ hash per second of video, matched as a bag of frames.

The serialized value is python-threatexchange's: a JSON list of ``"pdqhex,quality,timestamp"``
strings (``vpdq_util.vpdq_to_json``), so bank exports load in either system.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

from vigil.config import get_settings
from vigil.hashing.media import Media, MediaError, MediaKind
from vigil.hashing.signals.base import Signal, SignalType, validate_hex
from vigil.hashing.signals.pdq import PDQ_HEX_LENGTH, hamming

#: python-threatexchange's ``VPDQ_QUALITY_THRESHOLD``: frames below it are not matched.
MIN_FRAME_QUALITY = 50
#: python-threatexchange's ``VPDQ_DISTANCE_THRESHOLD``: frames this close are the same frame.
FRAME_MATCH_DISTANCE = 31
_WORKER = "vigil.hashing.signals.vpdq_worker"


@dataclass(frozen=True)
class Frame:
    pdq_hex: str
    quality: int
    timestamp: float

    def __str__(self) -> str:
        # ``.3`` (three significant digits, not decimals) is what python-threatexchange writes.
        return f"{self.pdq_hex},{self.quality},{self.timestamp:.3}"

    @classmethod
    def parse(cls, text: str) -> Frame:
        try:
            pdq_hex, quality, timestamp = text.split(",")
            frame = cls(
                validate_hex(pdq_hex, PDQ_HEX_LENGTH, "a frame's PDQ"),
                int(quality),
                float(timestamp),
            )
        except ValueError as exc:
            raise ValueError(f"invalid vPDQ frame {text!r}: {exc}") from None
        if not 0 <= frame.quality <= 100 or frame.timestamp < 0:
            raise ValueError(f"invalid vPDQ frame {text!r}: quality or timestamp out of range")
        return frame


def parse_frames(value: str) -> list[Frame]:
    try:
        items = json.loads(value or "[]")
    except json.JSONDecodeError as exc:
        raise ValueError(f"a vPDQ signal must be a JSON list: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError("a vPDQ signal must be a JSON list of 'pdqhex,quality,timestamp' strings")
    return [Frame.parse(item) for item in items]


def serialize_frames(frames: list[Frame]) -> str:
    return json.dumps([str(frame) for frame in frames])


def matchable_frames(value: str, min_quality: int = MIN_FRAME_QUALITY) -> list[str]:
    """The distinct PDQ hashes of a video's frames of usable quality, in order of appearance:
    what python-threatexchange's ``prepare_vpdq_feature`` keeps for matching."""
    hashes = (f.pdq_hex for f in parse_frames(value) if f.quality >= min_quality)
    return list(dict.fromkeys(hashes))


def _compute_in_child(media: Media, seconds_per_hash: float, duration: float) -> list[Frame]:
    """vpdq in a child process: its decoder can abort the process on damaged frames, which
    must cost this one file, not the server or the rest of a folder scan."""
    command = [sys.executable, "-m", _WORKER, str(media.path), str(seconds_per_hash)]
    # Hashing runs at >10x real time; the margin covers a slow or loaded machine.
    timeout = 60.0 + 2.0 * duration
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise MediaError("corrupt", f"{media.path}: hashing took over {timeout:.0f}s") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["crashed"]
        raise MediaError("corrupt", f"{media.path}: video frames do not decode ({reason[0]})")
    return [Frame(str(h), int(q), float(t)) for h, q, t in json.loads(done.stdout)]


class VpdqSignal(SignalType):
    name = "vpdq"
    media_kinds: ClassVar[frozenset[MediaKind]] = frozenset({"video"})

    def hash_media(self, media: Media) -> list[Signal]:
        duration = media.check_video()
        frames = _compute_in_child(media, get_settings().vpdq_seconds_per_hash, duration)
        if not frames:
            raise MediaError("corrupt", f"{media.path}: no video frame could be decoded")
        quality = round(sum(f.quality for f in frames) / len(frames))
        return [Signal(self.name, serialize_frames(frames), quality)]

    def validate(self, value: str) -> str:
        frames = parse_frames(value)
        if not frames:
            raise ValueError("a vPDQ signal needs at least one frame")
        return serialize_frames(frames)

    def distance(self, a: str, b: str) -> float:
        """1 - the share of ``a``'s usable frames that match one of ``b``'s frames."""
        query, indexed = matchable_frames(a), matchable_frames(b)
        if not query:
            return 1.0
        matched = sum(any(hamming(q, i) <= FRAME_MATCH_DISTANCE for i in indexed) for q in query)
        return 1.0 - matched / len(query)
