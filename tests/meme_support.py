"""Memes for the OCR and attachment tests: a real photo (Kodak24) with caption lines drawn in
white with a black outline, the way meme generators write them. It holds no tests itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def meme(photo: Path, lines: Sequence[str], size: int = 44) -> Image.Image:
    """``photo`` with ``lines`` centred, from the top down."""
    with Image.open(photo) as opened:
        image = opened.convert("RGB")
    font = (
        ImageFont.truetype(str(FONT_PATH), size)
        if FONT_PATH.is_file()
        else ImageFont.load_default(size=size)
    )
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        left = (image.width - draw.textlength(line, font=font)) / 2
        top = 20 + number * (image.height - 2 * size - 40) / max(1, len(lines) - 1)
        draw.text((left, top), line, font=font, fill="white", stroke_width=3, stroke_fill="black")
    return image
