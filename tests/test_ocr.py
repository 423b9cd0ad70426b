"""The shared OCR engine (vigil.ocr) reads a caption drawn on a real photo, filters by
confidence, and serves several threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from meme_support import meme
from vigil.ocr import read_lines, read_text

CAPTION = ("JOIN THE FIGHT TONIGHT", "Kill them all at the square")


@pytest.fixture(scope="module")
def captioned(shared_data: Path) -> np.ndarray:
    return np.asarray(meme(shared_data / "images" / "kodak24" / "05.png", CAPTION))


def _words(lines: list[str]) -> set[str]:
    return set(" ".join(lines).upper().split())


def test_a_caption_on_a_real_photo_is_read(captioned: np.ndarray) -> None:
    lines = read_lines(captioned, max_side=960)
    assert "Kill them all at the square" in lines
    assert {"JOIN", "THE", "KILL", "SQUARE"} <= _words(lines)


def test_lines_below_the_confidence_floor_are_dropped(captioned: np.ndarray) -> None:
    scored = read_text(captioned, max_side=960)
    assert scored and all(0.0 <= score <= 1.0 for _, score in scored)
    floor = min(score for _, score in scored) + 1e-6
    kept = read_lines(captioned, max_side=960, min_confidence=floor)
    assert kept == [text for text, score in scored if score >= floor]
    assert len(kept) == len(scored) - 1


def test_the_photo_alone_has_no_caption(shared_data: Path) -> None:
    bare = np.asarray(meme(shared_data / "images" / "kodak24" / "05.png", []))
    assert not {"JOIN", "FIGHT", "KILL", "SQUARE"} & _words(read_lines(bare, max_side=960))


def test_several_threads_share_the_engine(captioned: np.ndarray) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        readings = list(pool.map(lambda rgb: read_lines(rgb, 960), [captioned] * 3))
    assert readings[0] == readings[1] == readings[2]
    assert "Kill them all at the square" in readings[0]
