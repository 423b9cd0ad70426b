"""Cryptographic digests of a file's bytes: matched only when identical."""

from __future__ import annotations

from typing import ClassVar

from vigil.hashing.media import Media, MediaKind
from vigil.hashing.signals.base import Signal, SignalType, validate_hex


class DigestSignalType(SignalType):
    media_kinds: ClassVar[frozenset[MediaKind]] = frozenset({"image", "video"})
    exact = True
    hex_length: ClassVar[int]

    def hash_media(self, media: Media) -> list[Signal]:
        return [Signal(self.name, media.digests[self.name])]

    def validate(self, value: str) -> str:
        return validate_hex(value, self.hex_length, self.name)

    def distance(self, a: str, b: str) -> float:
        return 0.0 if a.lower() == b.lower() else 1.0


class MD5Signal(DigestSignalType):
    """python-threatexchange calls it ``video_md5``; HMA also uses it for photos."""

    name = "md5"
    aliases = ("video_md5", "photo_md5")
    hex_length = 32


class SHA256Signal(DigestSignalType):
    """GIFCT's hash-sharing database carries these."""

    name = "sha256"
    aliases = ("video_sha256", "photo_sha256")
    hex_length = 64
