"""The signal-type interface: a signal type knows how to hash content and compare two signals.

Adding a signal type is one new module with one subclass, registered in ``signals/__init__.py``.
Names follow python-threatexchange (``pdq``, ``vpdq``, ``video_md5`` ...) through ``name`` and
``aliases`` so that hash lists exchanged with it load unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from vigil.hashing.media import Media, MediaKind


@dataclass(frozen=True)
class Signal:
    """One hash of one piece of content.

    ``variant`` names a transformed copy the hash was taken from (``"flip_x"``, ``"crop:0.05"``):
    a bank may hold several variants of one entry so that a transformed upload still matches.
    """

    signal_type: str
    value: str
    quality: int | None = None
    variant: str | None = None


class SignalType(ABC):
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    media_kinds: ClassVar[frozenset[MediaKind]]
    #: True when two signals match only if identical (the index is a lookup table).
    exact: ClassVar[bool] = False

    @abstractmethod
    def hash_media(self, media: Media) -> list[Signal]:
        """Hash one media item; raise :class:`~vigil.hashing.media.MediaError` if impossible."""

    def hash_media_for_bank(self, media: Media) -> list[Signal]:
        """Signals to store for a bank entry. A type may add variants here (more work once,
        when content is banked) so that the query side stays one cheap hash per upload."""
        return self.hash_media(media)

    @abstractmethod
    def validate(self, value: str) -> str:
        """Return the canonical form of a serialized signal, or raise ``ValueError``."""

    @abstractmethod
    def distance(self, a: str, b: str) -> float:
        """A distance between two serialized signals: 0 means identical."""

    def is_match(self, a: str, b: str, threshold: float) -> bool:
        return self.distance(a, b) <= threshold


def validate_hex(value: str, length: int, what: str) -> str:
    canonical = value.strip().lower()
    if len(canonical) != length:
        raise ValueError(f"{what} must be {length} hex characters, got {len(canonical)}")
    try:
        int(canonical, 16)
    except ValueError:
        raise ValueError(f"{what} must be hexadecimal") from None
    return canonical
