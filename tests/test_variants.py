"""Bank and query hashes on real photos: edited copies meet their original, others do not."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from vigil.hashing.signals.base import Signal
from vigil.hashing.signals.pdq import DIHEDRAL_VARIANTS, UNTRIMMED, hamming, pdq_of_rgb
from vigil.hashing.variants import bank_image_signals, query_image_signals

# Meta's recommended PDQ match distance; bench/robustness.py measures vigil's own.
PDQ_MATCH = 31


def _kodak(shared_data: Path, number: int) -> Image.Image:
    with Image.open(shared_data / "images" / "kodak24" / f"{number:02d}.png") as image:
        return image.convert("RGB")


def _jpeg_rgb(image: Image.Image, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _pdq_distance(query: list[Signal], bank: list[Signal]) -> int:
    return min(
        hamming(q.value, b.value)
        for q in query
        for b in bank
        if q.signal_type == b.signal_type == "pdq"
    )


def _letterboxed(image: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (image.width, image.height + 200), (250, 250, 250))
    canvas.paste(image, (0, 130))
    return canvas


def test_bank_holds_the_eight_dihedral_hashes_and_query_one(shared_data: Path) -> None:
    framed = np.asarray(_letterboxed(_kodak(shared_data, 1)))
    bank = bank_image_signals(framed)
    assert [s.variant for s in bank] == [*DIHEDRAL_VARIANTS, UNTRIMMED]
    assert all(s.signal_type == "pdq" and s.quality is not None for s in bank)
    query = query_image_signals(framed)
    assert [s.variant for s in query] == ["original", UNTRIMMED]
    assert query[0].value == bank[0].value and query[1].value == bank[-1].value
    unframed = np.zeros((64, 64, 3), dtype=np.uint8) + np.arange(64, dtype=np.uint8)[:, None, None]
    assert [s.variant for s in query_image_signals(unframed)] == ["original"]


def test_never_matches_less_than_plain_pdq(shared_data: Path) -> None:
    """Trimming can differ between a photo on a near-white background and its JPEG copy; the
    untrimmed hash kept on both sides means vigil finds whatever plain PDQ finds."""
    pistols = sorted((shared_data / "weapons" / "pistols" / "images").glob("*.jpg"))[:60]
    found_by_plain = 0
    for path in pistols:
        with Image.open(path) as opened:
            photo = opened.convert("RGB")
        original, copy = np.asarray(photo), _jpeg_rgb(photo, quality=30)
        if hamming(pdq_of_rgb(original)[0], pdq_of_rgb(copy)[0]) <= PDQ_MATCH:
            found_by_plain += 1
            bank = bank_image_signals(original)
            assert _pdq_distance(query_image_signals(copy), bank) <= PDQ_MATCH, path.name
    assert found_by_plain >= 50


@pytest.mark.parametrize(
    "edit",
    [ImageOps.mirror, ImageOps.flip, lambda image: image.rotate(90, expand=True), _letterboxed],
    ids=["mirror", "flip", "rotate_90", "letterbox"],
)
def test_edited_copy_meets_its_original(
    shared_data: Path, edit: Callable[[Image.Image], Image.Image]
) -> None:
    photo = _kodak(shared_data, 23)
    bank = bank_image_signals(np.asarray(photo))
    copy = query_image_signals(_jpeg_rgb(edit(photo)))
    assert _pdq_distance(copy, bank) <= PDQ_MATCH


def test_other_photos_stay_far(shared_data: Path) -> None:
    bank = bank_image_signals(np.asarray(_kodak(shared_data, 23)))
    for number in (2, 9, 15, 19):
        query = query_image_signals(_jpeg_rgb(_kodak(shared_data, number)))
        assert _pdq_distance(query, bank) > 2 * PDQ_MATCH
