"""Hash files and folders into signals, one result per media item, errors included."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vigil.hashing.media import Media, MediaError, MediaKind, MediaLimits
from vigil.hashing.signals import SIGNAL_TYPES, Signal, SignalType


@dataclass
class HashResult:
    """The signals of one media item, or why it could not be hashed."""

    path: str
    kind: MediaKind | None = None
    signals: list[Signal] = field(default_factory=list)
    error: MediaError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "kind": self.kind,
            "signals": [
                {
                    "signal_type": s.signal_type,
                    "signal": s.value,
                    "quality": s.quality,
                    "variant": s.variant,
                }
                for s in self.signals
            ],
            "error": None
            if self.error is None
            else {"reason": self.error.reason, "message": str(self.error.args[0])},
        }


def iter_media_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Expand folders recursively (sorted, hidden files skipped); pass files through as given."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name
        else:
            yield path


def hash_file(
    path: Path,
    signal_types: Sequence[SignalType] = SIGNAL_TYPES,
    limits: MediaLimits | None = None,
    *,
    for_bank: bool = False,
) -> HashResult:
    result = HashResult(path=str(path))
    try:
        media = Media(path, limits or MediaLimits())
        result.kind = media.kind
        for signal_type in signal_types:
            if media.kind in signal_type.media_kinds:
                hash_fn = signal_type.hash_media_for_bank if for_bank else signal_type.hash_media
                result.signals.extend(hash_fn(media))
    except MediaError as exc:
        result.signals.clear()
        result.error = exc
    return result


def hash_paths(
    paths: Iterable[Path],
    signal_types: Sequence[SignalType] = SIGNAL_TYPES,
    limits: MediaLimits | None = None,
    *,
    for_bank: bool = False,
) -> Iterator[HashResult]:
    for path in iter_media_paths(paths):
        yield hash_file(path, signal_types, limits, for_bank=for_bank)
