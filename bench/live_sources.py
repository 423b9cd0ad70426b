"""CPU each evidence source costs per stream-second on a 720p30 stream, and what decoding costs.

    .venv/bin/python bench/live_sources.py [--seconds 30] [--out bench/results/live_sources.md]

One synthetic attack stream (``vigil.live.synth``, 1280x720 at 30 fps) is read once through the
real :class:`~vigil.live.ingest.StreamReader` (as fast as it decodes, CPU time of the reader
thread measured); its samples are kept and every source in ``live_sources`` then observes them
in turn, one thread, ``torch`` and OpenCV held to one thread as the session runs them. The sum
is one stream's budget; 2 cores divided by it is the ceiling on streams per process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from vigil.hashing import KnownContent
from vigil.live import LiveSettings
from vigil.live.ingest import open_feed
from vigil.live.samples import AudioWindow, VideoSample
from vigil.live.session import StreamSpec
from vigil.live.sources import SourceRegistry
from vigil.live.synth import HD_SIZE, build_stream, held_out_assets, scenario

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CACHE = Path(tempfile.gettempdir()) / "vigil-bench-live"


def _stream(seconds: float) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"attack-s0-{seconds:.0f}.ts"
    if not path.with_suffix(".json").exists():
        spec = scenario("attack", seed=0, duration_s=seconds, size=HD_SIZE)
        build_stream(spec, path, held_out_assets(DATA))
    return path


def _read(path: Path, settings: LiveSettings) -> tuple[list[VideoSample | AudioWindow], float]:
    reader, _ = open_feed(StreamSpec(str(path), name="bench", realtime=False), settings)
    started = time.process_time()
    reader.start()
    samples = list(reader.samples())
    reader.join()
    return samples, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    path = _stream(args.seconds)
    with tempfile.TemporaryDirectory() as home:
        settings = LiveSettings(home=Path(home), live_allow_files=True)
        known = KnownContent(settings)
        samples, decode_cpu = _read(path, settings)
        stream_seconds = max(s.t for s in samples) + 1.0
        rows = [("decode + sample (reader)", decode_cpu)]
        for factory in SourceRegistry(settings, known)(StreamSpec(str(path), name="bench")):
            source = factory("bench")
            wanted = VideoSample if source.modality == "video" else AudioWindow
            chosen = [s for s in samples if isinstance(s, wanted)]
            source.observe(chosen[0])  # type: ignore[arg-type]  # warm-up: lazy model loads
            started = time.process_time()
            for sample in chosen:
                source.observe(sample)  # type: ignore[arg-type]
            rows.append((factory.name, time.process_time() - started))
        known.close()
    total = sum(cpu for _, cpu in rows)
    lines = [
        "# CPU per evidence source at 720p30 (`bench/live_sources.py`)",
        "",
        f"`.venv/bin/python bench/live_sources.py --seconds {args.seconds:.0f}` — "
        f"{os.cpu_count()} CPUs, load average before the run {os.getloadavg()[0]:.2f}. "
        "One synthetic attack stream, samples at the default rates.",
        "",
        "| stage | CPU ms per stream-second | share |",
        "|---|---|---|",
        *(
            f"| {name} | {1000 * cpu / stream_seconds:.0f} | {100 * cpu / total:.0f} % |"
            for name, cpu in rows
        ),
        f"| **total** | **{1000 * total / stream_seconds:.0f}** | |",
        "",
        f"Ceiling on 2 cores: {2 * stream_seconds / total:.1f} streams.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
