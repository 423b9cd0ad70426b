"""vPDQ: every usable frame of every indexed video in one PDQ index.

A frame's id packs its video's ``EntrySignal.id`` with the frame's position, so a frame hit maps
back to its video with a shift, and the only other state is each video's frame count (the
denominator of ``index_share``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vigil.hashing.index.base import IndexHit
from vigil.hashing.index.pdq import PdqIndex, hex_to_codes
from vigil.hashing.signals.vpdq import matchable_frames

#: Frame position bits in a frame id: 16M distinct frames per video, 2**39 signal ids.
FRAME_BITS = 24
_FRAME_MASK = (1 << FRAME_BITS) - 1
_COUNTS_FILE = "videos.npz"


class VpdqIndex:
    def __init__(
        self, frames: PdqIndex | None = None, counts: dict[int, int] | None = None
    ) -> None:
        self.frames = frames or PdqIndex()
        self._counts: dict[int, int] = counts or {}
        self._lock = threading.Lock()

    def add(self, ids: Sequence[int], values: Sequence[str]) -> None:
        codes, frame_ids, counts = [], [], {}
        for signal_id, value in zip(ids, values, strict=True):
            hashes = matchable_frames(value)
            if not hashes or len(hashes) > _FRAME_MASK:
                continue  # nothing usable to match on, like python-threatexchange
            codes.append(hex_to_codes(hashes))
            frame_ids.append((signal_id << FRAME_BITS) + np.arange(len(hashes), dtype=np.int64))
            counts[signal_id] = len(hashes)
        if not counts:
            return
        with self._lock:
            # Counts first: a frame hit must always find its video's count.
            self._counts = {**self._counts, **counts}
            self.frames.add(np.concatenate(codes), np.concatenate(frame_ids))

    def query(self, values: Sequence[str], threshold: float) -> list[list[IndexHit]]:
        """One list per query video, of every indexed video sharing at least one frame."""
        per_video = [matchable_frames(value) for value in values]
        codes = hex_to_codes([h for hashes in per_video for h in hashes])
        results = self.frames.search(codes, int(threshold))
        counts = self._counts
        out, first = [], 0
        for hashes in per_video:
            out.append(self._shares(results[first : first + len(hashes)], counts))
            first += len(hashes)
        return out

    @staticmethod
    def _shares(
        frame_results: list[tuple[np.ndarray, np.ndarray]], counts: dict[int, int]
    ) -> list[IndexHit]:
        if not frame_results:
            return []
        qrow = np.repeat(np.arange(len(frame_results)), [len(ids) for ids, _ in frame_results])
        frame_ids = np.concatenate([ids for ids, _ in frame_results])
        dist = np.concatenate([d for _, d in frame_results])
        video = frame_ids >> FRAME_BITS
        hits = []
        for signal_id in np.unique(video).tolist():
            mine = video == signal_id
            query_matched = len(np.unique(qrow[mine]))
            index_matched = len(np.unique(frame_ids[mine] & _FRAME_MASK))
            hits.append(
                IndexHit(
                    signal_id,
                    float(dist[mine].min()),
                    query_matched / len(frame_results),
                    index_matched / counts[signal_id],
                )
            )
        return hits

    def save(self, directory: Path) -> None:
        self.frames.save(directory)
        counts = self._counts
        np.savez(
            directory / _COUNTS_FILE,
            ids=np.fromiter(counts.keys(), np.int64, len(counts)),
            counts=np.fromiter(counts.values(), np.int64, len(counts)),
        )

    @classmethod
    def load(cls, directory: Path) -> VpdqIndex:
        with np.load(directory / _COUNTS_FILE) as data:
            counts = dict(zip(data["ids"].tolist(), data["counts"].tolist(), strict=True))
        return cls(PdqIndex.load(directory), counts)
