"""Face search throughput through the face engine (dlib by default), in one process.

Two measurements:

- enrollment: decode + detect + quality + embed of LFW images (the first image of the first
  ``--images`` identities, by name), in faces per second;
- video probes: :func:`vigil.faces.video.probes_from_video` (decode, sample at ``--fps``,
  detect, quality, embed, track) on a generated clip of ``--seconds`` at 640x360 and 1280x720,
  with one to three LFW faces walking through (at most three at once, each on screen part of
  the time), in times real time per core: video seconds over CPU seconds (every thread of the
  process counted), and over wall seconds. Decoding alone is timed too, to show its share.

The clip is generated first (not timed); each measurement is the best of ``--repeats``.

Reproduce::

    .venv/bin/python bench/faces_throughput.py      # writes bench/results/faces_throughput.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import av
import cv2
import numpy as np
from PIL import Image

from vigil.faces.engine import FaceEngine, decode_image
from vigil.faces.settings import FacesSettings
from vigil.faces.video import FrameSampler, probes_from_video

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "lfw" / "images"
RESULTS = Path(__file__).resolve().parent / "results" / "faces_throughput.md"
FRAME_RATE = 25
RESOLUTIONS = ((640, 360), (1280, 720))
#: Who walks through the clip: identity, the shares of the clip when they enter and leave, and
#: where they are (x, y of the top-left corner, shares of the frame) at its start and its end.
#: The top row walks across; two people share the bottom row without overlapping.
WALKERS = (
    ("Colin_Powell", (0.0, 1.0), (0.0, 0.03), (0.74, 0.03)),
    ("Gerhard_Schroeder", (0.0, 0.6), (0.7, 0.52), (0.5, 0.52)),
    ("Serena_Williams", (0.4, 1.0), (0.05, 0.52), (0.2, 0.52)),
)
#: A face's side as a share of the frame height: 160 px in 360 rows.
FACE_SHARE = 0.45

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


def timed(work: Callable[[], T], repeats: int) -> tuple[T, Timing]:
    """The result of the last run and the best wall and CPU times over ``repeats`` runs."""
    best = Timing(float("inf"), float("inf"))
    result: T | None = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        run = Timing(time.perf_counter() - wall, time.process_time() - cpu)
        best = Timing(min(best.wall, run.wall), min(best.cpu, run.cpu))
    assert result is not None
    return result, best


def lfw_paths(count: int) -> list[Path]:
    names = sorted(path.name for path in DATA.iterdir() if path.is_dir())[:count]
    return [DATA / name / f"{name}_0001.jpg" for name in names]


def enroll_all(engine: FaceEngine, paths: list[Path], max_pixels: int) -> int:
    return sum(len(engine.faces(decode_image(path.read_bytes(), max_pixels))) for path in paths)


def face_patch(name: str, side: int) -> np.ndarray:
    with Image.open(DATA / name / f"{name}_0001.jpg") as image:
        central = np.asarray(image.convert("RGB"))[45:205, 45:205]
    return cv2.resize(central, (side, side), interpolation=cv2.INTER_AREA)


def clip_frame(size: tuple[int, int], patches: list[np.ndarray], share: float) -> np.ndarray:
    """The frame at ``share`` of the clip's length."""
    width, height = size
    ramp = np.linspace(60, 140, width, dtype=np.uint8)
    canvas = np.repeat(np.repeat(ramp[None, :, None], height, axis=0), 3, axis=2)
    for patch, (_, (enters, leaves), start, end) in zip(patches, WALKERS, strict=True):
        if enters <= share < leaves:
            x = round((start[0] + (end[0] - start[0]) * share) * width)
            y = round((start[1] + (end[1] - start[1]) * share) * height)
            canvas[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    return canvas


def write_clip(path: Path, size: tuple[int, int], seconds: float) -> Path:
    side = int(size[1] * FACE_SHARE)
    patches = [face_patch(name, side) for name, *_ in WALKERS]
    count = round(seconds * FRAME_RATE)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FRAME_RATE)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(count):
            rgb = clip_frame(size, patches, index / count)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


def video_row(
    clip: Path, seconds: float, settings: FacesSettings, upsample: int, repeats: int
) -> str:
    engine = FaceEngine.from_settings(
        settings.model_copy(update={"faces_detector_upsample": upsample})
    )
    engine.faces(np.zeros((64, 64, 3), np.uint8))  # loads the models

    def decode_only() -> int:
        sampler = FrameSampler(
            clip, settings.faces_video_fps, settings.max_video_seconds, settings.max_image_pixels
        )
        return sum(1 for _ in sampler)

    samples, decoding = timed(decode_only, repeats)
    probes, whole = timed(lambda: probes_from_video(clip, engine, settings), repeats)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        size = f"{stream.width}x{stream.height}"
    return (
        f"| {size} | {upsample} | {samples} | {len(probes.probes)} | "
        f"{seconds / decoding.cpu:.0f}x | {whole.cpu:.1f} / {whole.wall:.1f} | "
        f"**{seconds / whole.cpu:.2f}x** | {seconds / whole.wall:.2f}x | "
        f"{1000 * (whole.cpu - decoding.cpu) / samples:.0f} |"
    )


def enrollment_lines(settings: FacesSettings, count: int, repeats: int) -> list[str]:
    engine = FaceEngine.from_settings(settings)
    paths = lfw_paths(count)
    enroll_all(engine, paths[:1], settings.max_image_pixels)  # loads the models
    faces, timing = timed(lambda: enroll_all(engine, paths, settings.max_image_pixels), repeats)
    return [
        "## Enrollment (decode + detect + quality + embed)",
        "",
        f"{len(paths)} LFW images (250x250 JPEG, the first image of the first {len(paths)} "
        f"identities by name), {faces} faces found, detector upsample "
        f"{settings.faces_detector_upsample}, best of {repeats}.",
        "",
        "| images/s (wall) | faces/s (wall) | **faces/s per core** (CPU) | CPU / wall (s) |",
        "|---|---|---|---|",
        f"| {len(paths) / timing.wall:.1f} | {faces / timing.wall:.1f} | "
        f"**{faces / timing.cpu:.1f}** | {timing.cpu:.1f} / {timing.wall:.1f} |",
    ]


def video_lines(settings: FacesSettings, seconds: float, repeats: int) -> list[str]:
    lines = [
        "## Video probes (decode + sample + detect + quality + embed + track)",
        "",
        f"Generated {seconds:.0f} s H.264 clips at {FRAME_RATE} fps: three LFW faces (each "
        f"{FACE_SHARE:.0%} of the frame height) walking through, one to three on screen at a "
        f"time; sampled at {settings.faces_video_fps:g} fps; best of {repeats}. x real time per "
        "core = video seconds / CPU seconds of the process (all threads).",
        "",
        "| clip | upsample | samples | probes | decode alone, x real time per core | "
        "CPU / wall (s) | **x real time per core** | x real time (wall) | "
        "ms CPU per sample, faces only |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for size in RESOLUTIONS:
            clip = write_clip(Path(folder) / f"clip_{size[1]}.mp4", size, seconds)
            lines += [video_row(clip, seconds, settings, up, repeats) for up in (1, 0)]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    settings = FacesSettings(faces_video_fps=args.fps)
    engine = FaceEngine.from_settings(settings)
    point = engine.operating_point
    # The threshold only decides which faces tracks join; without a model card it comes from
    # the environment, which the command must then show.
    from_environment = settings.faces_threshold is not None
    setting = [f"VIGIL_FACES_THRESHOLD={point.threshold:g}"] if from_environment else []
    command = " ".join([*setting, ".venv/bin/python", "bench/faces_throughput.py", *sys.argv[1:]])
    lines = [
        "# Face search throughput",
        "",
        f"Command: `{command}`",
        "",
        "One process on this machine (2 cores, shared with other work while measured). Models: "
        f"{engine.detector.name} detector, {engine.model} embedder; tracking threshold "
        f"{point.threshold:g} ({point.source}).",
        "",
        *enrollment_lines(settings, args.images, args.repeats),
        "",
        *video_lines(settings, args.seconds, args.repeats),
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
