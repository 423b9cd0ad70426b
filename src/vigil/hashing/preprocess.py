"""Undo the framing re-uploaders add before an image is hashed.

A 5 % change of framing moves a PDQ hash about as far as an unrelated image, so letterbox bars,
padding of any colour and screenshot-like frames (flat margins with a status bar or caption bar)
are trimmed before hashing. The bank side trims too, so both sides see the same content.
"""

from __future__ import annotations

import numpy as np

#: A border pixel may differ this much (per channel, 0-255) from its line's colour: JPEG q30
#: ringing and noise on a flat bar stay below it, while texture in a photo does not.
COLOUR_TOLERANCE = 24
#: Share of a line's pixels that must be near its colour for the line to be flat. Below 1 so that
#: a status bar's clock or battery icon, a few percent of the line, do not stop the trim.
FLAT_SHARE = 0.9
#: Mean absolute deviation of a flat line's near pixels. JPEG codes a flat 8x8 block exactly, so
#: padding stays within it; soft photo areas (sky, studio walls) carry sensor noise of 2-3.
FLAT_SPREAD = 1.5
#: Lines next to the content pick up JPEG ringing from it (spread up to ~2 at q30). They are trimmed
#: with a looser spread, but only for one JPEG block beyond a flat band, so that a soft sky next to
#: a thin frame is not eaten.
EDGE_SPREAD = 4.0
EDGE_GRACE = 8
#: A screenshot frame has lines of text (account name, caption) between flat bands. A run of lines
#: that are still partly background (this share near the colour of the band before them), no
#: taller than ``TEXT_GAP`` of the side, is skipped when another flat band follows it.
TEXT_SHARE = 0.4
TEXT_GAP = 0.08
#: Never keep less than this share of either dimension: a nearly flat image is left alone
#: rather than cut down to a sliver.
MIN_KEEP = 0.2
#: Flat edge bands thinner than this share of the side are left alone: scanned photos carry dark
#: edges of a few pixels that JPEG noise makes come and go, and trimming them on one copy but not
#: another would move the hash more than the edge itself does. Letterbox bars are far wider.
MIN_BAND = 0.01
#: Pixels sampled per line: enough to see a status bar's glyphs, and keeps the trim near 10 ms.
LINE_SAMPLES = 256


def _deviation(pixels: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Largest per-channel difference of each pixel from ``colour`` (one colour per line)."""
    diff = np.abs(pixels - colour)
    deviation: np.ndarray = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])
    return deviation


def _flat_lines(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line: flat (one colour up to JPEG noise), flat up to ringing, and its median colour."""
    colour = np.median(pixels, axis=1, keepdims=True)
    deviation = _deviation(pixels, colour)
    near = deviation <= COLOUR_TOLERANCE
    count = near.sum(axis=1)
    spread = np.where(near, deviation, 0).sum(axis=1) / np.maximum(count, 1)
    flat = (count >= FLAT_SHARE * pixels.shape[1]) & (spread <= FLAT_SPREAD)
    ringing = (count >= FLAT_SHARE * pixels.shape[1]) & (spread <= EDGE_SPREAD)
    return flat, ringing, colour


def _run_length(mask: np.ndarray, start: int, limit: int) -> int:
    """How many lines from ``start`` (at most ``limit``) are true in ``mask``."""
    stops = np.flatnonzero(~mask[start : start + limit])
    return int(stops[0]) if stops.size else min(limit, mask.size - start)


def _text_gap(
    pixels: np.ndarray, flat: np.ndarray, band: int, colour: np.ndarray, limit: int
) -> int:
    """Lines of text from ``band`` up to the next flat line, or 0 if they are not text on
    the band's background (or run past ``limit``)."""
    later = np.flatnonzero(flat[band : band + limit + 1])
    if later.size == 0:
        return 0
    gap = int(later[0])
    near = _deviation(pixels[band : band + gap], colour) <= COLOUR_TOLERANCE
    return gap if bool((near.mean(axis=1) >= TEXT_SHARE).all()) else 0


def _leading_band(pixels: np.ndarray, size: int) -> int:
    """How many lines from the start are framing: flat bands, text lines between them, ringing.

    ``pixels`` may cover only the first lines of a side of ``size`` lines.
    """
    flat, ringing, colour = _flat_lines(pixels)
    band, position = 0, 0
    while True:
        run = _run_length(flat, position, flat.size)
        if position == 0 and run < max(2, MIN_BAND * size):
            break
        band = position + run
        gap = _text_gap(pixels, flat, band, colour[band - 1], int(TEXT_GAP * size))
        if gap == 0:
            break
        position = band + gap
    if band == 0:
        return 0
    return band + _run_length(ringing, band, EDGE_GRACE)


def _side_band(rgb: np.ndarray) -> int:
    """Framing lines at the top of ``rgb``, looking only as deep as the framing goes.

    Most images have little or no framing, so lines are examined in growing blocks from the edge
    rather than all at once: this keeps the trim cheap on the upload path.
    """
    size = rgb.shape[0]
    step = max(1, rgb.shape[1] // LINE_SAMPLES)
    lookahead = int((TEXT_GAP + MIN_BAND) * size) + EDGE_GRACE
    depth = min(size, 2 * lookahead)
    while True:
        band = _leading_band(rgb[:depth, ::step].astype(np.int16), size)
        if depth == size or band + lookahead < depth:
            return band
        depth = min(size, 2 * depth)


def _trim_rows(rgb: np.ndarray) -> tuple[int, int]:
    """(first, end) of the rows to keep after dropping framing at the top and bottom."""
    height = rgb.shape[0]
    top = _side_band(rgb)
    bottom = _side_band(rgb[::-1])
    if height - top - bottom < MIN_KEEP * height:
        return 0, height
    return top, height - bottom


def unletterbox_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) bounds of the content once flat borders are trimmed.

    Rows, then columns, then rows again once side bars are gone: a side bar crossing a caption
    line can hide the caption's flat background until the bar is trimmed.
    """
    top, bottom, left, right = 0, rgb.shape[0], 0, rgb.shape[1]
    first, end = _trim_rows(rgb)
    top, bottom = first, end
    first, end = _trim_rows(rgb[top:bottom].transpose(1, 0, 2))
    left, right = first, end
    if (left, right) != (0, rgb.shape[1]):
        first, end = _trim_rows(rgb[top:bottom, left:right])
        top, bottom = top + first, top + end
    return top, bottom, left, right


def unletterbox(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` without its flat borders (letterbox bars, padding, screenshot frame); a view."""
    top, bottom, left, right = unletterbox_box(rgb)
    return rgb[top:bottom, left:right]
