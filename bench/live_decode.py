"""What decoding a 720p30 live stream costs, per decode mode and thread count.

    .venv/bin/python bench/live_decode.py [--seconds 20] [--repeats 3] \
        [--out bench/results/live_decode.md]

Streams are made by Debian's ffmpeg as the issue says: ``testsrc2`` at 1280x720, 30 fps, and a
sine tone, x264 ``veryfast`` at 3 Mbit/s with a keyframe every 2 s and B-frames (x264's
default 3), AAC audio, in MPEG-TS. A second stream adds strong temporal noise (``noise``
filter) so that every macroblock changes, closer to a shaky body camera than a test card.

Two measurements per mode (all / nonref / keyframes) and decoder thread count (1, 2):

* **decode**: demux + video decode only, as :class:`~vigil.live.ingest.StreamReader` sets the
  decoder up (``skip_frame``, ``thread_count``);
* **reader**: the whole :class:`StreamReader` path with ``realtime=False``: demux, packet ring,
  decode, 2 fps RGB samples scaled to 640 px, audio resampled into 1-s windows.

Cost is CPU time of the process (all threads) per second of stream, so "ms per stream-second"
divided by 10 is the percent of one core a stream needs; wall time shows what threads buy in
latency. Medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import av

from vigil.live.ingest import ReaderConfig, StreamReader, StreamUrlPolicy
from vigil.live.ingest.reader import DecodeMode, configure_decoder

MODES: tuple[DecodeMode, ...] = ("all", "nonref", "keyframes")
THREADS = (1, 2)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generate(path: Path, seconds: int, noise: bool) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        sys.exit("needs Debian's ffmpeg on PATH")
    video_filter = ["-vf", "noise=alls=30:allf=t"] if noise else []
    subprocess.run(
        [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), *video_filter,
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-maxrate", "3M",
            "-bufsize", "6M", "-g", "60", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def decode_only(path: Path, mode: DecodeMode, threads: int) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        configure_decoder(stream, ReaderConfig(decode=mode, threads=threads))
        return sum(1 for _ in container.decode(stream))


def through_reader(path: Path, mode: DecodeMode, threads: int) -> int:
    config = ReaderConfig(realtime=False, decode=mode, threads=threads, queue_size=10_000)
    reader = StreamReader(
        str(path), "bench", policy=StreamUrlPolicy(allow_files=True), config=config
    )
    for _ in reader.samples():
        pass
    assert reader.state == "ended", reader.status()
    return reader.stats.frames_decoded


def timed(run: Callable[[], int], repeats: int) -> tuple[float, float, int]:
    """Median CPU and wall seconds of ``repeats`` runs, and the frames decoded."""
    cpus, walls, frames = [], [], 0
    for _ in range(repeats):
        cpu, wall = cpu_seconds(), time.perf_counter()
        frames = run()
        cpus.append(cpu_seconds() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(cpus), statistics.median(walls), frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [
        "# Live decode cost at 720p30 (`bench/live_decode.py`)",
        "",
        f"`.venv/bin/python bench/live_decode.py --seconds {args.seconds} "
        f"--repeats {args.repeats}` — {os.cpu_count()} CPUs, load average before the run "
        f"{os.getloadavg()[0]:.1f}, PyAV {av.__version__} (FFmpeg libavcodec "
        f"{'.'.join(map(str, av.library_versions['libavcodec']))}).",
        "",
        "CPU and wall ms per second of stream (median of runs); frames decoded of "
        f"{args.seconds * 30}; 'x real time' = stream seconds per CPU second.",
        "",
        "| stream | path | mode | threads | CPU ms/s | wall ms/s | frames | x real time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, noise in (("testsrc2", False), ("testsrc2+noise", True)):
            path = generate(Path(tmp) / f"{name}.ts", args.seconds, noise)
            for label, run in (("decode", decode_only), ("reader", through_reader)):
                for mode in MODES:
                    for threads in THREADS:
                        cpu, wall, frames = timed(partial(run, path, mode, threads), args.repeats)
                        row = (
                            f"| {name} | {label} | {mode} | {threads} | "
                            f"{1000 * cpu / args.seconds:.0f} | {1000 * wall / args.seconds:.0f} | "
                            f"{frames} | {args.seconds / cpu:.0f} |"
                        )
                        print(row, flush=True)
                        lines.append(row)
    report = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
