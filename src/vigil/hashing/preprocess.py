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
#: Share of a line's pixels that must be near its colour. Below 1 so that a status bar's clock
#: or a caption's glyphs, which cover a few percent of the line, do not stop the trim.
FLAT_SHARE = 0.9
#: Mean absolute deviation of a line's near pixels. JPEG codes a flat 8x8 block exactly, so padding
#: stays within ``FLAT_SPREAD``; soft photo areas (sky, studio walls) carry sensor noise of 2-3.
FLAT_SPREAD = 1.5
#: Lines next to the content pick up JPEG ringing from it (spread up to ~2 at q30) and are trimmed
#: with a looser spread, but only for one JPEG block beyond a strictly flat band, so that a soft
#: sky adjoining a thin frame is not eaten.
EDGE_SPREAD = 4.0
EDGE_GRACE = 8
#: Never keep less than this share of either dimension: a nearly flat image is left alone
#: rather than cut down to a sliver.
MIN_KEEP = 0.3
#: Bands thinner than this (in pixels, at the decoded size) are JPEG edge effects, not framing.
MIN_BAND = 2


def _line_spread(rgb: np.ndarray) -> np.ndarray:
    """Per row of ``rgb``: how far its near pixels stray from its colour; inf if too few are near."""
    pixels = rgb.astype(np.int16)
    colour = np.median(pixels, axis=1, keepdims=True)
    deviation = np.abs(pixels - colour).max(axis=2)
    near = deviation <= COLOUR_TOLERANCE
    count = near.sum(axis=1)
    spread = (deviation * near).sum(axis=1) / np.maximum(count, 1)
    spread[count < FLAT_SHARE * rgb.shape[1]] = np.inf
    result: np.ndarray = spread
    return result


def _first(mask: np.ndarray) -> int:
    """Index of the first false in ``mask`` (its length if none)."""
    stops = np.flatnonzero(~mask)
    return int(stops[0]) if stops.size else mask.size


def _leading_band(spread: np.ndarray) -> int:
    """How many lines from the start belong to a flat band (the band to trim on that side)."""
    strict = _first(spread <= FLAT_SPREAD)
    if strict < MIN_BAND:
        return 0
    grace = spread[strict : strict + EDGE_GRACE]
    return strict + _first(grace <= EDGE_SPREAD)


def _trim_rows(rgb: np.ndarray) -> tuple[int, int]:
    """(first, end) of the rows to keep after dropping flat bands at the top and bottom."""
    spread = _line_spread(rgb)
    height = spread.size
    top = _leading_band(spread)
    bottom = _leading_band(spread[::-1])
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
