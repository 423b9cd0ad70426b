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
#: that are mostly background (this share near their colour), no taller than ``TEXT_GAP`` of the
#: side, is skipped when another flat band follows it.
TEXT_SHARE = 0.6
TEXT_GAP = 0.08
#: Never keep less than this share of either dimension: a nearly flat image is left alone
#: rather than cut down to a sliver.
MIN_KEEP = 0.3
#: Flat bands thinner than this (in pixels, at the decoded size) are JPEG edge effects, not framing.
MIN_BAND = 2


def _line_stats(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``rgb``: the share of pixels near its median colour, and how far those stray."""
    pixels = rgb.astype(np.int16)
    colour = np.median(pixels, axis=1, keepdims=True)
    deviation = np.abs(pixels - colour).max(axis=2)
    near = deviation <= COLOUR_TOLERANCE
    count = near.sum(axis=1)
    spread = (deviation * near).sum(axis=1) / np.maximum(count, 1)
    return count / rgb.shape[1], spread


def _run_length(mask: np.ndarray, start: int, limit: int) -> int:
    """How many lines from ``start`` (at most ``limit``) are true in ``mask``."""
    stops = np.flatnonzero(~mask[start : start + limit])
    return int(stops[0]) if stops.size else min(limit, mask.size - start)


def _leading_band(share: np.ndarray, spread: np.ndarray) -> int:
    """How many lines from the start are framing: flat bands, text lines between them, ringing."""
    size = share.size
    flat = (share >= FLAT_SHARE) & (spread <= FLAT_SPREAD)
    text = (share >= TEXT_SHARE) & ~flat
    band, position = 0, 0
    while position < size:
        run = _run_length(flat, position, size)
        if run < MIN_BAND:
            break
        band = position + run
        gap = _run_length(text, band, int(TEXT_GAP * size))
        position = band + gap
        if gap == 0 or position >= size or not flat[position]:
            break
    if band == 0:
        return 0
    ringing = (share >= FLAT_SHARE) & (spread <= EDGE_SPREAD)
    return band + _run_length(ringing, band, EDGE_GRACE)


def _trim_rows(rgb: np.ndarray) -> tuple[int, int]:
    """(first, end) of the rows to keep after dropping framing at the top and bottom."""
    share, spread = _line_stats(rgb)
    height = share.size
    top = _leading_band(share, spread)
    bottom = _leading_band(share[::-1], spread[::-1])
    if height - top - bottom < MIN_KEEP * height:
        return 0, height
    return top, height - bottom


def unletterbox_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) bounds of the content once flat borders are trimmed.

    Rows and columns are trimmed in turn, twice, because a side bar only looks flat once the
    top and bottom bars it crosses are gone (and the other way round).
    """
    top, bottom, left, right = 0, rgb.shape[0], 0, rgb.shape[1]
    for _ in range(2):
        first, end = _trim_rows(rgb[top:bottom, left:right])
        top, bottom = top + first, top + end
        first, end = _trim_rows(rgb[top:bottom, left:right].transpose(1, 0, 2))
        left, right = left + first, left + end
    return top, bottom, left, right


def unletterbox(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` without its flat borders (letterbox bars, padding, screenshot frame); a view."""
    top, bottom, left, right = unletterbox_box(rgb)
    return rgb[top:bottom, left:right]
