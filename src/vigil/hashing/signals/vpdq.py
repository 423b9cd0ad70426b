"""vPDQ: one PDQ hash per second of video, matched as a bag of frames.

The serialized value is python-threatexchange's: a JSON list of ``"pdqhex,quality,timestamp"``
strings (``vpdq_util.vpdq_to_json``), so bank exports load in either system.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import av
import vpdq

from vigil.config import get_settings
from vigil.hashing.media import Media, MediaError, MediaKind
from vigil.hashing.signals.base import Signal, SignalType, validate_hex
from vigil.hashing.signals.pdq import PDQ_HEX_LENGTH, hamming

#: python-threatexchange's ``VPDQ_QUALITY_THRESHOLD``: frames below it are not matched.
MIN_FRAME_QUALITY = 50
#: python-threatexchange's ``VPDQ_DISTANCE_THRESHOLD``: frames this close are the same frame.
FRAME_MATCH_DISTANCE = 31


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


def _check_first_frame(media: Media) -> None:
    """Decode one frame with PyAV first: vpdq's native decoder aborts the whole process (an
    ffmpeg assertion, not an exception) on a stream whose frames do not decode."""
    try:
        with av.open(str(media.path)) as container:
            frame = next(container.decode(video=0), None)
    except av.FFmpegError as exc:
        raise MediaError("corrupt", f"{media.path}: video frames do not decode: {exc}") from exc
    if frame is None:
        raise MediaError("corrupt", f"{media.path}: the video has no frames")


class VpdqSignal(SignalType):
    name = "vpdq"
    media_kinds: ClassVar[frozenset[MediaKind]] = frozenset({"video"})

    def hash_media(self, media: Media) -> list[Signal]:
        media.check_video()
        _check_first_frame(media)
        seconds = get_settings().vpdq_seconds_per_hash
        try:
            features = vpdq.computeHash(str(media.path), seconds_per_hash=seconds)
        except (RuntimeError, ValueError) as exc:
            raise MediaError("corrupt", f"{media.path}: cannot decode video frames: {exc}") from exc
        if not features:
            raise MediaError("corrupt", f"{media.path}: no video frame could be decoded")
        frames = [Frame(f.hex, int(f.quality), float(f.timestamp)) for f in features]
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
