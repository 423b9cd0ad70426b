"""One object that wires the store, the banks, the index and the matcher together."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vigil.config import Settings, get_settings
from vigil.hashing.banks import BankService, NewEntry
from vigil.hashing.hasher import HashResult, hash_file, iter_media_paths
from vigil.hashing.index import SignalIndexSet
from vigil.hashing.matcher import Matcher, MatchReport
from vigil.hashing.media import MediaLimits
from vigil.hashing.signals import Signal
from vigil.store import Database


@dataclass
class AddReport:
    added: list[tuple[str, int]] = field(default_factory=list)  # (path, entry id)
    failed: list[HashResult] = field(default_factory=list)


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
        self.index = SignalIndexSet(
            self.db,
            self.settings.index_dir,
            compact_after=self.settings.index_compact_after,
            gap_grace=self.settings.index_gap_grace_seconds,
        )
        self.matcher = Matcher(self.db, self.index, self.settings)
        # A hash added through this object is matchable on the very next query.
        self.banks = BankService(self.db, on_change=lambda: self.matcher.refresh(force=True))

    def hash(self, path: Path) -> HashResult:
        return hash_file(path, limits=self.limits)

    def match(
        self, path: Path, banks: Sequence[str] | None = None
    ) -> tuple[HashResult, MatchReport]:
        result = self.hash(path)
        if not result.ok:
            return result, MatchReport()
        return result, self.matcher.match_signals(result.signals, banks)

    def match_signals(
        self, signals: Sequence[Signal], banks: Sequence[str] | None = None
    ) -> MatchReport:
        return self.matcher.match_signals(signals, banks)

    def add_content(
        self,
        bank: str,
        paths: Iterable[Path],
        *,
        labels: Sequence[str] = (),
        source: str = "",
        seen_at: datetime | None = None,
    ) -> Iterator[tuple[HashResult, int | None]]:
        """Hash each file (with bank-side variants) and add it; yields as it goes so a caller can
        show progress. A file that fails is yielded with ``None`` and nothing is written for it.
        A file whose bytes the bank already holds is not added twice: its entry id is yielded."""
        self.banks.get(bank)  # fail before hashing anything if the bank does not exist
        for path in iter_media_paths(paths):
            result = hash_file(path, limits=self.limits, for_bank=True)
            if not result.ok:
                yield result, None
                continue
            sha256 = next(s for s in result.signals if s.signal_type == "sha256")
            existing = self.banks.find_entry(bank, sha256)
            if existing is not None:
                yield result, existing
                continue
            entry = NewEntry(result.signals, list(labels), source, str(path), seen_at)
            (entry_id,) = self.banks.add_entries(bank, [entry])
            yield result, entry_id

    def close(self) -> None:
        self.index.close()
        self.db.dispose()
