"""Which hashes a bank stores for an image entry, and which hashes an upload is searched with.

Uploads are the hot path, so the query side computes one PDQ hash of the unletterboxed image.
The bank side does the extra work once per entry: the 8 rotations/mirrors of its unletterboxed
image (``pdqhash.compute_dihedral`` gives all 8 for about the cost of one), so a mirrored or
90-degree-rotated upload still meets a hash in the index.

PDQ cannot follow crops or small rotations: a 2 % shift of framing moves it 36 bits, a 5 % corner
crop 83 (medians on Kodak24). A bank-side grid of 10 crops per entry covered only the crops it was
built for (25 % of crops at other offsets, 0 % of 4 degree rotations), so none is stored: those
edits are the second stage's, an embedding's candidates verified on ORB keypoints
(:class:`vigil.hashing.KnownContent`). bench/robustness.py measures each stage.
"""

from __future__ import annotations

import numpy as np

from vigil.hashing.signals.base import Signal
from vigil.hashing.signals.pdq import bank_pdq_signals, query_pdq_signals


def bank_image_signals(rgb: np.ndarray) -> list[Signal]:
    """Hashes to store for a bank entry: the 8 dihedral PDQ variants."""
    return bank_pdq_signals(rgb)


def query_image_signals(rgb: np.ndarray) -> list[Signal]:
    """Hashes to search an upload with: one PDQ hash of the unletterboxed image."""
    return query_pdq_signals(rgb)
