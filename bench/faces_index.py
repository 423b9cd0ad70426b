"""Face template search at scale: vigil's HNSW index against exact brute force.

    .venv/bin/python bench/faces_index.py [--sizes 100000 1000000] [--probes 1000]
        [--sweep-size 100000] [--out bench/results/faces_index.md]

Synthetic templates shaped like dlib's 128-d face descriptors: identities are unit-length
centres (a shared direction plus an anisotropic spread, so that different people sit at cosine
~0.0-0.5), images are centres plus per-image noise (two images of one person ~0.9). The gallery
holds 1-4 images per identity; each probe is a fresh image of a gallery identity, so every
probe has planted mates. The measured genuine/impostor cosines are reported.

Part 1 (``--sweep-size``): HNSW build parameters (M, efConstruction) and efSearch against
recall@10 and latency, to choose the defaults in ``vigil.faces.index``.
Part 2 (each of ``--sizes``): ExactIndex (the anchor: brute force, what open tools do) and
HnswIndex with the defaults: build time, RSS growth, single-probe latency (one query per call,
k=10), recall@10 of HNSW against exact on the same probes, and the planted mates found.
Searches run on one thread (faiss ``omp_set_num_threads(1)``, BLAS limited to 1 thread);
builds use every core.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from vigil.faces.index import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    ExactIndex,
    HnswIndex,
    TemplateIndex,
)

DIMENSION = 128
K = 10
#: Share of an identity's centre along the direction all faces share: impostors at ~0.25.
SHARED = np.sqrt(1 / 3)
#: Per-image noise norm, uniform in this range: two images of one person at ~0.82-0.94.
NOISE = (0.25, 0.45)
SWEEP_M = (16, 32)
SWEEP_EF_CONSTRUCTION = (40, 80, 160)
SWEEP_EF_SEARCH = (64, 128, 256, 512, 768, 1024)
CHUNK = 100_000


def rss_mb() -> float:
    """Resident set size from /proc (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def unit(rows: np.ndarray) -> np.ndarray:
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)


class Faces:
    """Synthetic identities and images of them."""

    def __init__(self, identities: int, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        spectrum = 1 / (1 + np.arange(DIMENSION) / 8)
        self._scale = np.sqrt(spectrum / spectrum.sum())
        self._basis = np.linalg.qr(self._rng.standard_normal((DIMENSION, DIMENSION)))[0]
        self._shared = unit(self._rng.standard_normal((1, DIMENSION)))
        self.centres = np.vstack(list(self._centres(identities)))

    def _centres(self, count: int) -> Iterator[np.ndarray]:
        for start in range(0, count, CHUNK):
            rows = min(CHUNK, count - start)
            spread = (self._rng.standard_normal((rows, DIMENSION)) * self._scale) @ self._basis.T
            yield unit(SHARED * self._shared + spread)

    def images(self, identities: np.ndarray) -> np.ndarray:
        """One fresh image of each identity in ``identities``."""
        out = np.empty((len(identities), DIMENSION), dtype=np.float32)
        for start in range(0, len(identities), CHUNK):
            who = identities[start : start + CHUNK]
            noise = self._rng.standard_normal((len(who), DIMENSION)) / np.sqrt(DIMENSION)
            sigma = self._rng.uniform(*NOISE, size=(len(who), 1))
            out[start : start + len(who)] = unit(self.centres[who] + sigma * noise)
        return out


class Gallery:
    """``size`` templates of 1-4 images per identity, and ``probes`` fresh images of gallery
    identities (their mates: every gallery template of the same identity)."""

    def __init__(self, size: int, probes: int, seed: int) -> None:
        per_identity = np.random.default_rng(seed).integers(1, 5, size=size)
        owners = np.repeat(np.arange(size), per_identity)[:size]
        self.faces = Faces(int(owners[-1]) + 1, seed)
        self.owners = owners
        self.ids = np.arange(size, dtype=np.int64)
        self.templates = self.faces.images(owners)
        rng = np.random.default_rng(seed + 1)
        self.probe_owners = rng.choice(int(owners[-1]) + 1, size=probes, replace=False)
        self.probes = self.faces.images(self.probe_owners)

    def mates(self) -> list[set[int]]:
        first = np.searchsorted(self.owners, self.probe_owners, side="left")
        last = np.searchsorted(self.owners, self.probe_owners, side="right")
        return [set(range(a, b)) for a, b in zip(first.tolist(), last.tolist(), strict=True)]

    def cosines(self, sample: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
        """Genuine (probe, mate) and impostor (random template pairs of two identities)."""
        mates = self.mates()
        genuine = np.array(
            [float(self.probes[i] @ self.templates[min(m)]) for i, m in enumerate(mates)]
        )
        rng = np.random.default_rng(7)
        a, b = rng.integers(0, len(self.ids), size=(2, sample))
        other = self.owners[a] != self.owners[b]
        impostor = np.einsum("ij,ij->i", self.templates[a[other]], self.templates[b[other]])
        return genuine, impostor


def timed_build(index: TemplateIndex, gallery: Gallery) -> tuple[float, float]:
    """(seconds, RSS growth in MB) of adding the gallery to ``index``."""
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    index.add(gallery.ids, gallery.templates)
    return time.perf_counter() - start, rss_mb() - before


def single_probes(index: TemplateIndex, probes: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """Latency (s) of each probe searched alone, and each probe's top-``K`` ids."""
    index.search(probes[:20], K, -1.0)  # warm caches and thread pools
    seconds = np.empty(len(probes))
    found: list[list[int]] = []
    for i in range(len(probes)):
        start = time.perf_counter()
        (hits,) = index.search(probes[i : i + 1], K, -1.0)
        seconds[i] = time.perf_counter() - start
        found.append([template_id for template_id, _ in hits])
    return seconds, found


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    """Mean share of the exact top-``K`` that the approximate top-``K`` also holds."""
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def mates_found(found: list[list[int]], mates: list[set[int]]) -> float:
    """Share of all (probe, mate) pairs with the mate in the probe's top ``K``."""
    hit = sum(len(set(f) & m) for f, m in zip(found, mates, strict=True))
    return hit / sum(len(m) for m in mates)


def ms(seconds: np.ndarray) -> str:
    p50, p95, p99 = np.percentile(seconds, [50, 95, 99]) * 1e3
    return f"{p50:.3f} / {p95:.3f} / {p99:.3f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def search_one_thread(
    index: TemplateIndex, probes: np.ndarray
) -> tuple[np.ndarray, list[list[int]]]:
    faiss.omp_set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return single_probes(index, probes)
    finally:
        faiss.omp_set_num_threads(os.cpu_count() or 1)


def sweep(size: int, probes: int) -> str:
    gallery = Gallery(size, probes, seed=11)
    exact = ExactIndex(DIMENSION)
    exact.add(gallery.ids, gallery.templates)
    _, truth = search_one_thread(exact, gallery.probes)
    del exact
    rows = []
    for m in SWEEP_M:
        for ef_construction in SWEEP_EF_CONSTRUCTION:
            index = HnswIndex(DIMENSION, m=m, ef_construction=ef_construction)
            build_s, _ = timed_build(index, gallery)
            for ef_search in SWEEP_EF_SEARCH:
                index.ef_search = ef_search
                seconds, found = search_one_thread(index, gallery.probes)
                rows.append(
                    [
                        str(m),
                        str(ef_construction),
                        str(ef_search),
                        f"{build_s:.1f}",
                        ms(seconds),
                        f"{recall(found, truth):.4f}",
                    ]
                )
                print(*rows[-1], sep="\t", file=sys.stderr, flush=True)
            del index
    header = ["M", "efConstruction", "efSearch", "build s", "p50 / p95 / p99 ms", "recall@10"]
    return (
        f"### HNSW parameters at {size:,} templates ({probes} probes, one thread per search)\n\n"
        + table(header, rows)
    )


def at_scale(size: int, probes: int) -> str:
    gallery = Gallery(size, probes, seed=size)
    mates = gallery.mates()
    genuine, impostor = gallery.cosines()

    exact = ExactIndex(DIMENSION)
    exact_build, exact_mb = timed_build(exact, gallery)
    exact_s, truth = search_one_thread(exact, gallery.probes)
    del exact
    gc.collect()
    rows = [
        [
            "ExactIndex (numpy brute force)",
            f"{exact_build:.1f}",
            f"{exact_mb:.0f}",
            ms(exact_s),
            "1x",
            "1",
            f"{mates_found(truth, mates):.4f}",
        ]
    ]

    hnsw = HnswIndex(DIMENSION)
    hnsw_build, hnsw_mb = timed_build(hnsw, gallery)
    for ef_search in SWEEP_EF_SEARCH:
        hnsw.ef_search = ef_search
        seconds, found = search_one_thread(hnsw, gallery.probes)
        speed_up = np.percentile(exact_s, 50) / np.percentile(seconds, 50)
        default = " (default)" if ef_search == HNSW_EF_SEARCH else ""
        rows.append(
            [
                f"HnswIndex efSearch={ef_search}{default}",
                f"{hnsw_build:.1f}",
                f"{hnsw_mb:.0f}",
                ms(seconds),
                f"{speed_up:.1f}x",
                f"{recall(found, truth):.4f}",
                f"{mates_found(found, mates):.4f}",
            ]
        )

    def pct(values: np.ndarray) -> str:
        return " / ".join(f"{v:.3f}" for v in np.percentile(values, [1, 50, 99]))

    header = [
        "index",
        "build s",
        "RSS growth MB",
        "p50 / p95 / p99 ms",
        "p50 speed-up",
        "recall@10",
        "mates in top 10",
    ]
    return (
        f"### {size:,} templates ({len(gallery.faces.centres):,} identities), {probes} probes\n\n"
        f"HNSW: M={HNSW_M}, efConstruction={HNSW_EF_CONSTRUCTION}; the efSearch rows search "
        "one graph. Cosine, 1st / 50th / 99th percentile: genuine (probe, mate) "
        f"{pct(genuine)}; impostor pairs {pct(impostor)}.\n\n" + table(header, rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--probes", type=int, default=1_000)
    parser.add_argument("--sweep-size", type=int, default=100_000, help="0: no sweep")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    start_load = os.getloadavg()[0]

    sections = [
        "# Face template index benchmark\n",
        f"Command: `python {' '.join(sys.argv)}`\n",
        f"Machine: {os.cpu_count()} cores; faiss {faiss.__version__}, numpy {np.__version__}. "
        "Searches: one probe per call, k=10, min_score=-1, on one thread "
        "(`faiss.omp_set_num_threads(1)`, BLAS limited to 1 thread); builds on every core. "
        "Recall@10: the share of ExactIndex's top 10 that HNSW also returns.\n",
    ]
    if args.sweep_size:
        sections.append(sweep(args.sweep_size, args.probes))
    for size in args.sizes:
        sections.append(at_scale(size, args.probes))
        print(sections[-1], file=sys.stderr, flush=True)
    sections.append(
        "Load average (1 min) at the start / end of the run: "
        f"{start_load:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, shared with "
        "other work: tail latencies (p95/p99) include time the probe waited for a core.\n"
    )
    text = "\n".join(sections)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
