"""Video probes: sample a video's frames, follow each face across them, keep its best view.

A video is decoded as a stream (one frame in memory at a time) and sampled by presentation
time at ``faces_video_fps``, so variable-frame-rate files are sampled evenly in time. Faces of
consecutive samples are joined into tracks when they are close in place *and* their templates
agree (greedy, most similar pair first; one face per track per frame). Each track becomes one
:class:`VideoProbe`: its best-quality face, the moment it was seen, a crop for the reviewer, and
when the person was on screen.

Which template the search uses: ``probe.face.embedding``, the best view's own template. The
operating threshold (the model card's) is measured between single-image templates, so a
single view is what it holds for. ``track_template`` (the mean of the best few views) is kept
beside it: averaging smooths pose and blur, but it moves scores in ways the card has not
measured, so it is for comparison, not for deciding.

Tracks join faces only above the search's own operating threshold: a track that wrongly joins
two people hides one of them (only the best view is searched), while a track split in two only
searches the same person twice, so the tracker errs towards splitting.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal, Protocol

import av
import av.container
import av.video
import numpy as np

from vigil.faces.probes import FaceFinder, Probe, face_crop
from vigil.faces.settings import FacesSettings
from vigil.faces.types import Face, FaceBox

VideoErrorReason = Literal[
    "unreadable", "corrupt", "no_video_stream", "not_a_video", "too_long", "too_large"
]

#: Demuxers that read still images: a photo is searched as an image, not as a one-frame video.
_IMAGE_FORMATS = ("image2",)
_IMAGE_FORMAT_SUFFIX = "_pipe"
#: Frame times are floats; a frame this close to its sampling time counts as on time.
_TIME_EPSILON = 1e-6


class VideoError(ValueError):
    """A video that cannot be used as a probe, with a short machine-readable ``reason``."""

    def __init__(self, reason: VideoErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason: VideoErrorReason = reason

    def __str__(self) -> str:
        return f"{self.reason}: {self.args[0]}"


@dataclass(frozen=True)
class SampledFrame:
    """A decoded frame, upright, as RGB ``uint8``; ``time`` in seconds from the video's start."""

    time: float
    rgb: np.ndarray


class FrameSampler:
    """Iterates a video's frames sampled at ``fps`` by presentation time.

    The declared duration and frame size are checked before decoding, and the frame size and
    time again while decoding (headers can lie). A file that breaks part-way yields what decoded
    before the damage, and says so in ``notes``; one from which nothing decodes is a
    :class:`VideoError`. After iterating, ``frames_sampled``, ``seconds_decoded`` (the time of
    the last decoded frame) and ``notes`` describe the run.
    """

    def __init__(self, path: Path, fps: float, max_seconds: float, max_pixels: int) -> None:
        if fps <= 0:
            raise ValueError(f"the sampling rate must be positive, not {fps}")
        self.path = path
        self.fps = fps
        self.max_seconds = max_seconds
        self.max_pixels = max_pixels
        self.frames_sampled = 0
        self.seconds_decoded = 0.0
        self.notes: list[str] = []

    def __iter__(self) -> Iterator[SampledFrame]:
        with self._open() as container:
            stream = self._video_stream(container)
            declared = self._declared_seconds(container, stream)
            stream.thread_type = "AUTO"
            yield from self._sample(container, stream)
        if self.frames_sampled == 0:
            raise VideoError("corrupt", f"{self.path}: no frame could be decoded")
        self._note_early_end(declared)

    def _open(self) -> av.container.InputContainer:
        if not self.path.is_file():
            raise VideoError("unreadable", f"{self.path} is not a readable file")
        try:
            return av.open(str(self.path), mode="r")
        except av.FFmpegError as exc:
            raise VideoError(
                "corrupt",
                f"{self.path} is not a readable video (damaged, cut short, or another kind of "
                f"file): {_ffmpeg_message(exc)}",
            ) from exc
        except OSError as exc:
            raise VideoError("unreadable", f"cannot read {self.path}: {exc}") from exc

    def _video_stream(self, container: av.container.InputContainer) -> av.video.VideoStream:
        format_name = container.format.name
        if format_name in _IMAGE_FORMATS or format_name.endswith(_IMAGE_FORMAT_SUFFIX):
            raise VideoError("not_a_video", f"{self.path} is a still image: search it as one")
        streams = [
            stream
            for stream in container.streams.video
            if not stream.disposition & av.stream.Disposition.attached_pic  # cover art
        ]
        if not streams:
            raise VideoError("no_video_stream", f"{self.path} has no video stream")
        stream = streams[0]
        self._check_pixels(stream.codec_context.width, stream.codec_context.height)
        return stream

    def _declared_seconds(
        self, container: av.container.InputContainer, stream: av.video.VideoStream
    ) -> float | None:
        declared = _seconds(stream.duration, stream.time_base)
        if declared is None and container.duration is not None:
            declared = container.duration / av.time_base
        if declared is None:
            return None
        if declared > self.max_seconds:
            raise VideoError(
                "too_long",
                f"{self.path} lasts {declared:.0f} s, over the {self.max_seconds:.0f} s limit",
            )
        return declared

    def _check_pixels(self, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise VideoError(
                "too_large",
                f"{self.path}: {width}x{height} frames exceed the {self.max_pixels} pixel limit",
            )

    def _sample(
        self, container: av.container.InputContainer, stream: av.video.VideoStream
    ) -> Iterator[SampledFrame]:
        origin = _seconds(stream.start_time, stream.time_base)
        next_time = 0.0
        damaged = untimed = 0
        try:
            for frame in container.decode(stream):
                if frame.time is None:  # no time to sample it by, nor to report it at
                    untimed += 1
                    continue
                origin = frame.time if origin is None else origin
                time = max(0.0, frame.time - origin)
                if time > self.max_seconds:
                    self.notes.append(f"stopped at the {self.max_seconds:.0f} s limit")
                    break
                self._check_pixels(frame.width, frame.height)
                self.seconds_decoded = max(self.seconds_decoded, time)
                damaged += frame.is_corrupt
                if time + _TIME_EPSILON < next_time:
                    continue
                yield SampledFrame(time=time, rgb=_upright_rgb(frame))
                self.frames_sampled += 1
                next_time = (math.floor(time * self.fps + _TIME_EPSILON) + 1) / self.fps
        except av.FFmpegError as exc:
            if self.frames_sampled == 0:
                message = _ffmpeg_message(exc)
                raise VideoError("corrupt", f"{self.path} cannot be decoded: {message}") from exc
            self.notes.append(
                f"decoding stopped after {self.seconds_decoded:.1f} s: {_ffmpeg_message(exc)}"
            )
        if damaged:
            self.notes.append(f"{damaged} decoded frames were damaged")
        if untimed:
            self.notes.append(f"{untimed} frames without a timestamp were skipped")

    def _note_early_end(self, declared: float | None) -> None:
        # The last frame starts one frame interval before the declared end; a gap larger than
        # a sampling interval (or a second) means frames are missing: a cut or damaged file.
        if declared is not None and declared - self.seconds_decoded > max(1.0, 1.0 / self.fps):
            self.notes.append(
                f"the video declares {declared:.1f} s but frames stop at "
                f"{self.seconds_decoded:.1f} s: the file is truncated or damaged"
            )


def _ffmpeg_message(error: av.FFmpegError) -> str:
    """FFmpeg's own words, without the errno and path that ``str`` adds."""
    return error.strerror or str(error)


def _seconds(timestamp: int | None, time_base: Fraction | None) -> float | None:
    return None if timestamp is None or time_base is None else float(timestamp * time_base)


def _upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """The frame as RGB, turned as its display matrix says (phones record sideways)."""
    rgb = frame.to_ndarray(format="rgb24")
    quarter_turns = round(frame.rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


@dataclass(frozen=True)
class VideoProbe(Probe):
    """One person followed through a video: ``face`` is their best-quality view, seen at
    ``frame_time``; they were on screen from ``first_seen`` to ``last_seen`` (seconds) in
    ``sightings`` sampled frames. ``track_template`` is the unit mean of the best few views'
    templates (see the module docstring for why the search uses ``face.embedding``)."""

    first_seen: float
    last_seen: float
    sightings: int
    track_template: np.ndarray


@dataclass(frozen=True)
class VideoProbes:
    """Every person tracked in a video, in order of appearance, and how the decoding went."""

    probes: list[VideoProbe]
    frames_sampled: int
    seconds_decoded: float
    notes: list[str]


@dataclass(frozen=True)
class TrackingRules:
    """When a face continues a track.

    Its template's cosine similarity to the track's last or best view must reach
    ``min_similarity``, and its box centre must lie within ``1 + max_speed * seconds`` face
    sizes of the track's last box, ``seconds`` being the time since that sighting (4 face sizes
    a second is someone walking briskly across, close to the camera). A track ends after
    ``max_missed`` consecutive samples without its face, so a face lost to a blurred or turned
    frame or two is picked up again.
    """

    min_similarity: float
    max_speed: float = 4.0
    max_missed: int = 2
    averaged: int = 3


@dataclass
class _Track:
    best: Face
    best_time: float
    best_crop: np.ndarray
    last: Face
    first_seen: float
    last_seen: float
    top: list[Face]
    sightings: int = 1
    missed: int = 0

    @classmethod
    def start(cls, face: Face, frame: SampledFrame) -> _Track:
        return cls(
            best=face,
            best_time=frame.time,
            best_crop=face_crop(frame.rgb, face.box),
            last=face,
            first_seen=frame.time,
            last_seen=frame.time,
            top=[face],
        )

    def similarity(self, face: Face) -> float:
        # The last view follows a slowly turning head; the best one survives a bad last view.
        return float(
            max(self.last.embedding @ face.embedding, self.best.embedding @ face.embedding)
        )

    def near(self, face: Face, time: float, rules: TrackingRules) -> bool:
        size = max(self.last.box.width, self.last.box.height, 1)
        reach = size * (1.0 + rules.max_speed * (time - self.last_seen))
        return _centre_distance(self.last.box, face.box) <= reach

    def add(self, face: Face, frame: SampledFrame, averaged: int) -> None:
        if face.quality > self.best.quality:
            self.best, self.best_time = face, frame.time
            self.best_crop = face_crop(frame.rgb, face.box)
        self.top = sorted([*self.top, face], key=lambda kept: kept.quality, reverse=True)
        del self.top[averaged:]
        self.last, self.last_seen = face, frame.time
        self.sightings += 1
        self.missed = 0

    def probe(self) -> VideoProbe:
        mean = np.stack([face.embedding for face in self.top]).astype(np.float64).mean(axis=0)
        return VideoProbe(
            face=self.best,
            crop=self.best_crop,
            frame_time=self.best_time,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            sightings=self.sightings,
            track_template=(mean / np.linalg.norm(mean)).astype(np.float32),
        )


def _centre_distance(a: FaceBox, b: FaceBox) -> float:
    return math.hypot(
        (a.left + a.right - b.left - b.right) / 2, (a.top + a.bottom - b.top - b.bottom) / 2
    )


@dataclass
class FaceTracker:
    """Joins the faces of successive sampled frames into tracks (see :class:`TrackingRules`)."""

    rules: TrackingRules
    _active: list[_Track] = field(default_factory=list)
    _ended: list[_Track] = field(default_factory=list)

    def update(self, frame: SampledFrame, faces: list[Face]) -> None:
        """Add the faces found in ``frame``; frames must come in time order."""
        matched = self._match(frame.time, faces)
        for face_index, face in enumerate(faces):
            track = matched.get(face_index)
            if track is None:
                self._active.append(_Track.start(face, frame))
            else:
                track.add(face, frame, self.rules.averaged)
        for track in self._active:
            if track.last_seen < frame.time:  # not seen in this frame
                track.missed += 1
        self._ended += [track for track in self._active if track.missed > self.rules.max_missed]
        self._active = [track for track in self._active if track.missed <= self.rules.max_missed]

    def _match(self, time: float, faces: list[Face]) -> dict[int, _Track]:
        """Greedy assignment, most similar pair first, of faces to the tracks they may continue."""
        pairs = [
            (track.similarity(face), track_index, face_index)
            for track_index, track in enumerate(self._active)
            for face_index, face in enumerate(faces)
            if track.near(face, time, self.rules)
        ]
        matched: dict[int, _Track] = {}
        used_tracks: set[int] = set()
        for similarity, track_index, face_index in sorted(pairs, reverse=True):
            if similarity < self.rules.min_similarity:
                break
            if track_index not in used_tracks and face_index not in matched:
                matched[face_index] = self._active[track_index]
                used_tracks.add(track_index)
        return matched

    def probes(self) -> list[VideoProbe]:
        """One probe per track so far, in order of first appearance."""
        tracks = sorted(self._ended + self._active, key=lambda track: track.first_seen)
        return [track.probe() for track in tracks]


class _Threshold(Protocol):
    @property
    def threshold(self) -> float: ...


class TrackingEngine(FaceFinder, Protocol):
    """A face engine that also knows its operating threshold (the tracks' ``min_similarity``);
    :class:`vigil.faces.engine.FaceEngine` is one."""

    @property
    def operating_point(self) -> _Threshold: ...


def probes_from_video(
    path: Path,
    engine: TrackingEngine,
    settings: FacesSettings,
    rules: TrackingRules | None = None,
) -> VideoProbes:
    """Sample ``path`` at ``settings.faces_video_fps``, find and track faces, one probe per track.

    Raises :class:`VideoError` for a file that is not a usable video; a partly damaged one gives
    the probes of what decoded, with a note.
    """
    sampler = FrameSampler(
        path,
        fps=settings.faces_video_fps,
        max_seconds=settings.max_video_seconds,
        max_pixels=settings.max_image_pixels,
    )
    tracker = FaceTracker(rules or TrackingRules(min_similarity=engine.operating_point.threshold))
    for frame in sampler:
        tracker.update(frame, engine.faces(frame.rgb))
    return VideoProbes(
        probes=tracker.probes(),
        frames_sampled=sampler.frames_sampled,
        seconds_decoded=sampler.seconds_decoded,
        notes=sampler.notes,
    )
