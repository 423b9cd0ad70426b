"""Unletterboxing on real photos: framing goes, content stays, JPEG noise does not fool it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vigil.hashing.preprocess import unletterbox, unletterbox_box
from vigil.hashing.signals.pdq import hamming, pdq_of_rgb

# Kodak24 photos carry a thin dark scan edge of up to a few pixels; nothing more may go.
SCAN_EDGE = 12


def _kodak(shared_data: Path, number: int) -> Image.Image:
    with Image.open(shared_data / "images" / "kodak24" / f"{number:02d}.png") as image:
        return image.convert("RGB")


def _jpeg_rgb(image: Image.Image, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _assert_box_near(found: tuple[int, int, int, int], expected: tuple[int, int, int, int]) -> None:
    assert np.abs(np.subtract(found, expected)).max() <= SCAN_EDGE, (found, expected)


@pytest.mark.parametrize("number", range(1, 25))
def test_photos_without_framing_keep_their_content(shared_data: Path, number: int) -> None:
    rgb = np.asarray(_kodak(shared_data, number))
    top, bottom, left, right = unletterbox_box(rgb)
    height, width = rgb.shape[:2]
    assert max(top, height - bottom, left, width - right) <= SCAN_EDGE


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (37, 120, 201)])
def test_uneven_padding_of_any_colour_is_removed_after_jpeg_q30(
    shared_data: Path, colour: tuple[int, int, int]
) -> None:
    photo = _kodak(shared_data, 5)
    canvas = Image.new("RGB", (photo.width + 160, photo.height + 90), colour)
    canvas.paste(photo, (120, 20))
    rgb = _jpeg_rgb(canvas, 30)
    _assert_box_near(unletterbox_box(rgb), (20, 20 + photo.height, 120, 120 + photo.width))


def test_screenshot_frame_with_status_bar_and_captions_is_removed(shared_data: Path) -> None:
    photo = _kodak(shared_data, 7)
    canvas = Image.new("RGB", (photo.width + 40, 2 * photo.height + 400), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=36)
    draw.rectangle((0, 0, canvas.width, 70), fill=(20, 20, 20))
    draw.text((20, 15), "9:41", font=font, fill="white")
    draw.text((20, 100), "@someone posted this", font=font, fill="black")
    canvas.paste(photo, (20, 180))
    below = 180 + photo.height
    draw.text((20, below + 30), "share before they delete it", font=font, fill="black")
    rgb = _jpeg_rgb(canvas, 75)
    _assert_box_near(unletterbox_box(rgb), (180, below, 20, 20 + photo.width))


def test_letterboxed_copy_hashes_like_the_original(shared_data: Path) -> None:
    photo = _kodak(shared_data, 21)
    canvas = Image.new("RGB", (photo.width, photo.height + 300), "black")
    canvas.paste(photo, (0, 150))
    original, _ = pdq_of_rgb(unletterbox(np.asarray(photo)))
    boxed = _jpeg_rgb(canvas, 60)
    assert hamming(pdq_of_rgb(boxed)[0], original) > 31
    assert hamming(pdq_of_rgb(unletterbox(boxed))[0], original) <= 20


def test_a_flat_image_is_left_whole() -> None:
    rgb = np.full((300, 400, 3), 128, dtype=np.uint8)
    assert unletterbox_box(rgb) == (0, 300, 0, 400)


def test_returns_a_view_into_the_input(shared_data: Path) -> None:
    rgb = _jpeg_rgb(_kodak(shared_data, 3), 90)
    assert np.shares_memory(unletterbox(rgb), rgb)
