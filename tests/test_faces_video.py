"""Video and image probes on real media: LFW faces composited into videos that PyAV encodes,
decoded back, found by the face engine and tracked."""

from __future__ import annotations

import math
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from vigil.faces.engine import FaceEngine
from vigil.faces.probes import CROP_MAX_SIDE, face_crop, probes_from_image
from vigil.faces.settings import FacesSettings
from vigil.faces.video import (
    FrameSampler,
    TrackingRules,
    VideoError,
    VideoProbe,
    VideoProbes,
    probes_from_video,
)

FRAME_RATE = 25
SIZE = (640, 360)
SCENE_SECONDS = 4.0
#: Person A walks across the whole scene, blurred except in this window (seconds).
SHARP_WINDOW = (2.4, 2.6)
#: Person B stands on the right and leaves at this time.
B_LEAVES = 2.0
SAMPLING_FPS = 2.0
BLUR_SIGMA = 2.0
NO_LIMIT = 10**9


def lfw_face(shared_data: Path, name: str, number: int = 1) -> np.ndarray:
    """The central 160x160 of a 250x250 deep-funneled LFW image: the face and a little around."""
    path = shared_data / "faces" / "lfw" / "images" / name / f"{name}_{number:04d}.jpg"
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))[45:205, 45:205]


def background(size: tuple[int, int] = SIZE) -> np.ndarray:
    ramp = np.linspace(60, 140, size[0], dtype=np.uint8)
    return np.repeat(np.repeat(ramp[None, :, None], size[1], axis=0), 3, axis=2)


@dataclass(frozen=True)
class Walker:
    """A face pasted at ``start`` (x, y) that moves ``step`` pixels a frame, on screen during
    the ``shown`` intervals (seconds), blurred outside ``sharp``."""

    face: np.ndarray
    start: tuple[int, int]
    step: tuple[int, int] = (0, 0)
    shown: tuple[tuple[float, float], ...] = ((0.0, math.inf),)
    sharp: tuple[float, float] = (-math.inf, math.inf)

    def paste(self, canvas: np.ndarray, index: int) -> None:
        time = index / FRAME_RATE
        if not any(start <= time < end for start, end in self.shown):
            return
        face = self.face
        if not self.sharp[0] <= time < self.sharp[1]:
            face = cv2.GaussianBlur(face, (0, 0), BLUR_SIGMA)
        x, y = self.start[0] + self.step[0] * index, self.start[1] + self.step[1] * index
        canvas[y : y + face.shape[0], x : x + face.shape[1]] = face


def write_video(
    path: Path, frames: Sequence[np.ndarray], times: Sequence[float] | None = None, **options: str
) -> Path:
    """H.264 at :data:`FRAME_RATE`, or at the given presentation ``times`` (a 1 ms clock)."""
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=FRAME_RATE)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = round(times[index] * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@dataclass(frozen=True)
class Scene:
    path: Path
    a: np.ndarray
    b: np.ndarray


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine.from_settings(FacesSettings())


@pytest.fixture(scope="module")
def scene(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """A walks left to right, blurred but for :data:`SHARP_WINDOW`; B drifts left on the right
    and leaves at :data:`B_LEAVES`."""
    a, b = lfw_face(shared_data, "Colin_Powell"), lfw_face(shared_data, "Gerhard_Schroeder")
    walkers = (
        Walker(a, start=(40, 100), step=(3, 0), sharp=SHARP_WINDOW),
        Walker(b, start=(440, 80), step=(-1, 0), shown=((0.0, B_LEAVES),)),
    )
    frames = film(walkers, SCENE_SECONDS)
    path = write_video(tmp_path_factory.mktemp("scene") / "scene.mp4", frames)
    return Scene(path, a, b)


def film(
    walkers: Sequence[Walker], seconds: float, size: tuple[int, int] = SIZE
) -> list[np.ndarray]:
    frames = []
    for index in range(round(seconds * FRAME_RATE)):
        canvas = background(size)
        for walker in walkers:
            walker.paste(canvas, index)
        frames.append(canvas)
    return frames


@pytest.fixture(scope="module")
def scene_probes(scene: Scene, engine: FaceEngine) -> VideoProbes:
    return probes_from_video(scene.path, engine, FacesSettings(faces_video_fps=SAMPLING_FPS))


def template_of(engine: FaceEngine, face: np.ndarray) -> np.ndarray:
    found = engine.faces(np.ascontiguousarray(face))
    assert len(found) == 1
    return found[0].embedding


def probe_of(probes: VideoProbes, engine: FaceEngine, face: np.ndarray) -> VideoProbe:
    """The probe whose best view is most similar to ``face``."""
    template = template_of(engine, face)
    return max(probes.probes, key=lambda probe: float(probe.face.embedding @ template))


def sharpness(rgb: np.ndarray) -> float:
    grey = cv2.cvtColor(cv2.resize(rgb, (112, 112)), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def test_each_person_becomes_one_probe(
    scene: Scene, scene_probes: VideoProbes, engine: FaceEngine
) -> None:
    last_frame = SCENE_SECONDS - 1 / FRAME_RATE
    assert scene_probes.frames_sampled == math.floor(last_frame * SAMPLING_FPS) + 1
    assert scene_probes.seconds_decoded == pytest.approx(last_frame)
    assert scene_probes.notes == []
    assert len(scene_probes.probes) == 2
    a, b = probe_of(scene_probes, engine, scene.a), probe_of(scene_probes, engine, scene.b)
    assert a is not b
    threshold = engine.operating_point.threshold
    assert float(a.face.embedding @ template_of(engine, scene.a)) >= threshold
    assert float(b.face.embedding @ template_of(engine, scene.b)) >= threshold
    assert a.first_seen == b.first_seen == 0.0
    assert a.last_seen > last_frame - 1 / SAMPLING_FPS
    assert a.sightings == scene_probes.frames_sampled
    assert B_LEAVES - 1 / SAMPLING_FPS <= b.last_seen < B_LEAVES
    assert b.sightings == math.ceil(B_LEAVES * SAMPLING_FPS)
    for probe in (a, b):
        assert probe.frame_time is not None
        assert probe.first_seen <= probe.frame_time <= probe.last_seen


def test_the_sharpest_view_is_kept(
    scene: Scene, scene_probes: VideoProbes, engine: FaceEngine
) -> None:
    a = probe_of(scene_probes, engine, scene.a)
    assert a.frame_time is not None
    assert SHARP_WINDOW[0] <= a.frame_time < SHARP_WINDOW[1]
    # The first sample, at 0 s, shows A blurred, on the left.
    first = next(iter(FrameSampler(scene.path, SAMPLING_FPS, NO_LIMIT, NO_LIMIT)))
    blurred = min(engine.faces(first.rgb), key=lambda face: face.box.left)
    assert a.face.quality > blurred.quality
    assert sharpness(a.crop) > 2 * sharpness(face_crop(first.rgb, blurred.box))


def test_probes_carry_a_small_crop_and_a_track_template(
    scene_probes: VideoProbes, engine: FaceEngine
) -> None:
    for probe in scene_probes.probes:
        assert probe.crop.dtype == np.uint8 and probe.crop.ndim == 3
        assert probe.crop.shape[2] == 3 and max(probe.crop.shape[:2]) <= CROP_MAX_SIDE
        assert np.linalg.norm(probe.track_template) == pytest.approx(1.0, abs=1e-5)
        similarity = float(probe.track_template @ probe.face.embedding)
        assert similarity >= engine.operating_point.threshold


def test_a_track_survives_a_short_absence_but_not_a_long_one(
    shared_data: Path, engine: FaceEngine, tmp_path: Path
) -> None:
    # Sampled at 2 fps: away at the 1.0 s sample only (within max_missed = 2), then away for
    # the four samples from 2.0 s to 3.5 s: a new track, hence a second probe, from 4.0 s.
    face = lfw_face(shared_data, "Serena_Williams")
    walker = Walker(face, start=(80, 40), shown=((0.0, 0.9), (1.4, 2.0), (3.6, 4.6)))
    path = write_video(tmp_path / "away.mp4", film([walker], 4.6, size=(320, 240)))
    rules = TrackingRules(min_similarity=engine.operating_point.threshold, max_missed=2)
    settings = FacesSettings(faces_video_fps=SAMPLING_FPS)
    probes = probes_from_video(path, engine, settings, rules)
    assert [(p.first_seen, p.sightings) for p in probes.probes] == [(0.0, 3), (4.0, 2)]
    assert probes.probes[0].last_seen == pytest.approx(1.52)


@pytest.mark.parametrize("fps", [1.0, 3.0, 5.0])
def test_frames_are_sampled_at_the_asked_rate(scene: Scene, fps: float) -> None:
    sampler = FrameSampler(scene.path, fps, NO_LIMIT, NO_LIMIT)
    times = [frame.time for frame in sampler]
    grid = [k / fps for k in range(math.floor((SCENE_SECONDS - 1 / FRAME_RATE) * fps) + 1)]
    assert len(times) == len(grid) == sampler.frames_sampled
    for time, target in zip(times, grid, strict=True):
        assert target - 1e-6 <= time < target + 1 / FRAME_RATE


def test_variable_frame_rate_is_sampled_by_time(tmp_path: Path) -> None:
    # 30 fps for 2 s, 5 fps for 2 s, then 60 fps for 1 s: sampling by frame count would bunch
    # up in the fast parts and thin out in the slow one.
    times = (
        [i / 30 for i in range(60)]
        + [2 + i / 5 for i in range(10)]
        + [4 + i / 60 for i in range(60)]
    )
    frames = [np.full((120, 160, 3), index % 256, np.uint8) for index in range(len(times))]
    path = write_video(tmp_path / "vfr.mkv", frames, times)
    fps = 4.0
    sampled = [frame.time for frame in FrameSampler(path, fps, NO_LIMIT, NO_LIMIT)]
    grid = [k / fps for k in range(math.floor(times[-1] * fps) + 1)]
    # Each sample is the first frame shown at or after a grid point; a gap in the video that
    # spans several grid points gives one sample, not a burst.
    expected = sorted({min(t for t in times if t >= target - 1e-6) for target in grid})
    assert sampled == pytest.approx(expected, abs=1e-3)


def test_frames_come_upright(tmp_path: Path) -> None:
    upright = np.zeros((120, 160, 3), np.uint8)
    upright[:30, :40] = 255  # a mark at the top left
    stored = np.ascontiguousarray(np.rot90(upright, -1))  # as a phone held sideways stores it
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FRAME_RATE)
        stream.height, stream.width = stored.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(90)
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        container.mux(stream.encode())
    frame = next(iter(FrameSampler(path, SAMPLING_FPS, NO_LIMIT, NO_LIMIT)))
    assert frame.rgb.shape == upright.shape
    assert np.abs(frame.rgb.astype(int) - upright).mean() < 5


def test_a_cut_mp4_is_refused_clearly(scene: Scene, engine: FaceEngine, tmp_path: Path) -> None:
    # PyAV writes the MP4 index at the end: without it nothing can be read.
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(scene.path.read_bytes()[: scene.path.stat().st_size // 2])
    with pytest.raises(VideoError, match="cut short") as refused:
        probes_from_video(cut, engine, FacesSettings())
    assert refused.value.reason == "corrupt"


def test_a_cut_stream_gives_what_decoded_and_says_so(scene: Scene, tmp_path: Path) -> None:
    with av.open(str(scene.path)) as source:
        frames = [frame.to_ndarray(format="rgb24") for frame in source.decode(video=0)]
    whole = write_video(tmp_path / "whole.mkv", frames)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    sampler = FrameSampler(cut, SAMPLING_FPS, NO_LIMIT, NO_LIMIT)
    times = [frame.time for frame in sampler]
    assert times and times[-1] < SCENE_SECONDS - 1
    assert any("truncated" in note for note in sampler.notes)


def write_tone(path: Path) -> Path:
    rate = 8000
    samples = (np.sin(np.arange(rate) * 2 * np.pi * 440 / rate) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(samples.tobytes())
    return path


def test_files_that_are_not_videos_are_refused_clearly(
    shared_data: Path, engine: FaceEngine, tmp_path: Path
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("minutes of the meeting, not a video\n" * 20)
    photo = shared_data / "faces" / "lfw" / "images" / "Colin_Powell" / "Colin_Powell_0001.jpg"
    cases = {
        text: "corrupt",
        write_tone(tmp_path / "tone.wav"): "no_video_stream",
        photo: "not_a_video",
        tmp_path / "missing.mp4": "unreadable",
        tmp_path: "unreadable",
    }
    for path, reason in cases.items():
        with pytest.raises(VideoError) as refused:
            probes_from_video(path, engine, FacesSettings())
        assert refused.value.reason == reason, path
        assert str(path) in str(refused.value)


def test_limits_are_enforced_before_decoding(scene: Scene, engine: FaceEngine) -> None:
    with pytest.raises(VideoError) as too_long:
        probes_from_video(scene.path, engine, FacesSettings(max_video_seconds=SCENE_SECONDS / 2))
    assert too_long.value.reason == "too_long"
    with pytest.raises(VideoError) as too_large:
        probes_from_video(scene.path, engine, FacesSettings(max_image_pixels=SIZE[0] * SIZE[1] - 1))
    assert too_large.value.reason == "too_large"


def test_an_image_gives_one_probe_per_face_best_first(scene: Scene, engine: FaceEngine) -> None:
    canvas = background()
    canvas[100:260, 40:200] = cv2.GaussianBlur(scene.a, (0, 0), BLUR_SIGMA)
    canvas[80:240, 440:600] = scene.b
    probes = probes_from_image(canvas, engine)
    assert len(probes) == 2
    assert probes[0].face.quality >= probes[1].face.quality
    assert probes[0].face.box.left > SIZE[0] / 2  # the sharp face, B's, comes first
    for probe in probes:
        assert probe.frame_time is None
        assert probe.crop.dtype == np.uint8 and max(probe.crop.shape[:2]) <= CROP_MAX_SIDE
