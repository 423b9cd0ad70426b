"""vPDQ hashing speed, as multiples of real time per CPU core, on a generated 720p30 video.

    .venv/bin/python bench/vpdq_speed.py [--seconds 60] [--out bench/results/vpdq_speed.md]

The video is 1280x720 at 30 fps, H.264, with a textured background scrolling under moving
blocks (motion in every frame, so the decoder does real work). Hashing runs on one thread
(``thread_count=1``) and the CPU time of the process is measured, so "x real time per core" is
video seconds / CPU seconds.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import vpdq

from vigil.hashing.media import Media
from vigil.hashing.signals.vpdq import VpdqSignal

WIDTH, HEIGHT, FPS = 1280, 720, 30


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generate(path: Path, seconds: int) -> None:
    rng = np.random.default_rng(0)
    texture = np.kron(
        rng.integers(0, 256, size=(HEIGHT // 40, 2 * WIDTH // 40, 3), dtype=np.uint8),
        np.ones((40, 40, 1), dtype=np.uint8),
    )
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(seconds * FPS):
            shift = (i * 7) % WIDTH
            frame = np.ascontiguousarray(texture[:, shift : shift + WIDTH])
            for block in range(4):
                y = (i * (3 + block) + 150 * block) % (HEIGHT - 120)
                x = (i * (5 + 2 * block)) % (WIDTH - 120)
                frame[y : y + 120, x : x + 120] = 60 * block
            packet = stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24"))
            container.mux(packet)
        container.mux(stream.encode())


def measure(path: Path, seconds: int) -> list[tuple[str, str]]:
    cpu, wall = cpu_seconds(), time.perf_counter()
    features = vpdq.computeHash(str(path), seconds_per_hash=1.0, thread_count=1)
    raw_cpu, raw_wall = cpu_seconds() - cpu, time.perf_counter() - wall

    cpu, wall = cpu_seconds(), time.perf_counter()
    (signal,) = VpdqSignal().hash_media(Media(path))
    full_cpu, full_wall = cpu_seconds() - cpu, time.perf_counter() - wall
    quality = np.mean([f.quality for f in features])
    return [
        (
            "video",
            f"{seconds} s, {WIDTH}x{HEIGHT} @ {FPS} fps, H.264, {path.stat().st_size / 1e6:.1f} MB",
        ),
        ("frames hashed (1 per second)", f"{len(features)} (mean quality {quality:.0f})"),
        ("vpdq.computeHash, 1 thread: CPU / wall", f"{raw_cpu:.1f} s / {raw_wall:.1f} s"),
        ("**x real time per core** (computeHash)", f"**{seconds / raw_cpu:.1f}x**"),
        (
            "VpdqSignal.hash_media (checks + hash, default threads): CPU / wall",
            f"{full_cpu:.1f} s / {full_wall:.1f} s",
        ),
        ("x real time per core (hash_media)", f"{seconds / full_cpu:.1f}x"),
        ("serialized signal", f"{len(signal.value):,} bytes"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        started = time.perf_counter()
        generate(path, args.seconds)
        generated = time.perf_counter() - started
        rows = measure(path, args.seconds)
    lines = [
        "# vPDQ hashing speed",
        "",
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}` "
        f"(video generated in {generated:.0f} s, not counted)",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
