"""PDQ: Meta's 256-bit perceptual image hash (64 hex characters) with a 0-100 quality score."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pdqhash

from vigil.hashing.media import Media, MediaKind
from vigil.hashing.preprocess import unletterbox
from vigil.hashing.signals.base import Signal, SignalType, validate_hex

PDQ_BITS = 256
PDQ_HEX_LENGTH = 64

#: Order of the hashes ``pdqhash.compute_dihedral`` returns.
DIHEDRAL_VARIANTS: tuple[str, ...] = (
    "original",
    "rotate_90",
    "rotate_180",
    "rotate_270",
    "flip_x",
    "flip_y",
    "flip_plus_1",
    "flip_minus_1",
)


def bits_to_hex(bits: np.ndarray) -> str:
    """256 0/1 values, most significant first, as pdqhash and the reference hex use."""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def hex_to_bytes(value: str) -> bytes:
    return bytes.fromhex(value)


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def pdq_of_rgb(rgb: np.ndarray) -> tuple[str, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return bits_to_hex(bits), int(quality)


def dihedral_pdq_of_rgb(rgb: np.ndarray) -> list[tuple[str, str, int]]:
    """(variant, hex, quality) for the 8 rotations/mirrors, for about the cost of one hash."""
    hashes, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [
        (variant, bits_to_hex(bits), int(quality))
        for variant, bits in zip(DIHEDRAL_VARIANTS, hashes, strict=True)
    ]


UNTRIMMED = "untrimmed"


def _untrimmed(rgb: np.ndarray, content: np.ndarray) -> list[Signal]:
    """The plain PDQ of the whole image when trimming changed it. Trimming can differ between an
    original and its re-encoded copy (a near-white background after JPEG noise), so plain PDQ's
    hash is kept on both sides: vigil never matches less than plain PDQ does."""
    if content.shape == rgb.shape:
        return []
    value, quality = pdq_of_rgb(rgb)
    return [Signal(PdqSignal.name, value, quality, UNTRIMMED)]


def query_pdq_signals(rgb: np.ndarray) -> list[Signal]:
    """The PDQ hash of the unletterboxed image (plus the untrimmed one if they differ): uploads
    are the hot path, and PDQ itself costs a few milliseconds next to decoding.

    Letterbox bars, padding and screenshot frames move PDQ as far as an unrelated image; on
    unframed images the trim is a few pixels at most, so hashes from other tools still match.
    """
    content = unletterbox(rgb)
    value, quality = pdq_of_rgb(content)
    return [Signal(PdqSignal.name, value, quality, DIHEDRAL_VARIANTS[0]), *_untrimmed(rgb, content)]


def bank_pdq_signals(rgb: np.ndarray) -> list[Signal]:
    """The 8 rotations/mirrors of the unletterboxed image (and the untrimmed hash), stored once
    per bank entry so that a mirrored or 90-degree-rotated upload meets a hash in one query."""
    content = unletterbox(rgb)
    dihedral = [
        Signal(PdqSignal.name, value, quality, variant)
        for variant, value, quality in dihedral_pdq_of_rgb(content)
    ]
    return [*dihedral, *_untrimmed(rgb, content)]


class PdqSignal(SignalType):
    name = "pdq"
    media_kinds: ClassVar[frozenset[MediaKind]] = frozenset({"image"})

    def hash_media(self, media: Media) -> list[Signal]:
        return query_pdq_signals(media.image_rgb())

    def hash_media_for_bank(self, media: Media) -> list[Signal]:
        return bank_pdq_signals(media.image_rgb())

    def validate(self, value: str) -> str:
        return validate_hex(value, PDQ_HEX_LENGTH, "a PDQ hash")

    def distance(self, a: str, b: str) -> float:
        return float(hamming(a, b))
