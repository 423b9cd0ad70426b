"""Image hashing throughput: vigil vs python-threatexchange, on a folder of JPEGs.

The folder holds the Kodak24 photos re-encoded as JPEG at several sizes and qualities. Two
measurements, each best of ``--repeats`` runs over the whole folder:

- process level, start-up included on both sides: ``vigil hash <folder>`` (PDQ + MD5 + SHA-256)
  against ``threatexchange hash photo <files>`` (PDQ only);
- in process, start-up excluded on both sides: vigil's path (``Media(path)``, unletterbox, PDQ of
  the draft-decoded image, MD5 + SHA-256 of the bytes) against threatexchange's
  ``PdqSignal.hash_from_file`` (full decode, PDQ).

Decoding is the cost: PDQ works on a 64x64 downsample, so vigil lets libjpeg decode at 1/2, 1/4
or 1/8 scale (draft mode). The PDQ distance between the two libraries' hashes of each file is
reported too, to show what draft decoding changes.

Reproduce::

    .venv/bin/python bench/hash_throughput.py      # writes bench/results/hash_throughput.md
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from threatexchange.signal_type.pdq.signal import PdqSignal as TxPdqSignal

from vigil.hashing.media import Media
from vigil.hashing.signals.pdq import PdqSignal, hamming

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "hash_throughput.md"
BIN = Path(sys.executable).parent
LONG_SIDES = (768, 1536, 2048, 3072)
QUALITIES = (75, 92)


def make_folder(folder: Path) -> list[Path]:
    """Kodak24 at every long side and quality: 24 x 4 x 2 = 192 JPEGs."""
    paths = []
    for source in sorted((DATA / "images" / "kodak24").glob("*.png")):
        with Image.open(source) as opened:
            image = opened.convert("RGB")
        for side in LONG_SIDES:
            scale = side / max(image.size)
            resized = image.resize(
                (round(image.width * scale), round(image.height * scale)),
                Image.Resampling.LANCZOS,
            )
            for quality in QUALITIES:
                path = folder / f"{source.stem}_{side}_q{quality}.jpg"
                resized.save(path, "JPEG", quality=quality)
                paths.append(path)
    return paths


def _pixels(path: Path) -> int:
    with Image.open(path) as image:
        return image.width * image.height


def best_of(repeats: int, run: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def vigil_in_process(paths: list[Path]) -> list[str]:
    pdq = PdqSignal()
    hashes = []
    for path in paths:
        media = Media(path)
        (signal,) = pdq.hash_media(media)
        _ = media.digests
        hashes.append(signal.value)
    return hashes


def threatexchange_in_process(paths: list[Path]) -> list[str]:
    return [TxPdqSignal.hash_from_file(path) for path in paths]


def run_cli(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_folder(folder)
        megapixels = sum(_pixels(path) for path in paths) / 1e6
        vigil_hashes = vigil_in_process(paths)  # also warms the page cache for everyone
        tx_hashes = threatexchange_in_process(paths)
        timings = {
            "process, start-up included": (
                best_of(args.repeats, lambda: run_cli([str(BIN / "vigil"), "hash", str(folder)])),
                best_of(
                    args.repeats,
                    lambda: run_cli(
                        [str(BIN / "threatexchange"), "hash", "photo", *map(str, paths)]
                    ),
                ),
            ),
            "in process, start-up excluded": (
                best_of(args.repeats, lambda: vigil_in_process(paths)),
                best_of(args.repeats, lambda: threatexchange_in_process(paths)),
            ),
        }
    distances = np.array([hamming(a, b) for a, b in zip(vigil_hashes, tx_hashes, strict=True)])
    lines = [
        f"{len(paths)} JPEGs (Kodak24 at long side {', '.join(map(str, LONG_SIDES))} px, "
        f"quality {' and '.join(map(str, QUALITIES))}; {megapixels:.0f} megapixels in all), "
        f"best of {args.repeats} runs, single process, this machine's 2 cores shared.",
        "",
        "| measurement | vigil images/s | threatexchange images/s | ratio |",
        "|---|---|---|---|",
    ]
    for name, (vigil_s, tx_s) in timings.items():
        lines.append(
            f"| {name} | {len(paths) / vigil_s:.1f} | {len(paths) / tx_s:.1f} | "
            f"{tx_s / vigil_s:.2f}x |"
        )
    lines += [
        "",
        "vigil computes PDQ + MD5 + SHA-256 (and unletterboxes); `threatexchange hash photo` "
        "computes PDQ only.",
        f"PDQ distance between vigil's draft-decoded hash and threatexchange's full-decode hash "
        f"of the same file: median {np.median(distances):.0f}, max {distances.max()} bits "
        f"(match threshold 31).",
    ]
    table = "\n".join(lines)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# Hashing throughput: vigil vs python-threatexchange\n\n"
        "Reproduce: `.venv/bin/python bench/hash_throughput.py`\n\n"
        f"{table}\n"
    )


if __name__ == "__main__":
    main()
