"""Which hashes a bank stores for an image entry, and which hashes an upload is searched with.

Uploads are the hot path, so the query side computes one PDQ hash of the unletterboxed image.
The bank side does the extra work once per entry: the 8 rotations/mirrors of its unletterboxed
image (``pdqhash.compute_dihedral`` gives all 8 for about the cost of one), so a mirrored or
90-degree-rotated upload still meets a hash in the index.

PDQ cannot follow crops or small rotations: a 2 % shift of framing moves it 36 bits, a 5 % corner
crop 83 (medians on Kodak24). Measured in bench/robustness.py at Meta's d<=31, over ~2.1M pairs
with no false match: plain PDQ finds 46 % of edited copies, these PDQ variants 64 % (padding,
mirror and screenshot frames now match), a bank-side grid of 10 crops per entry 88 % (but 25 % of
crops at other offsets, 0 % of 4 degree rotations), and these variants plus the embedding second
stage (:mod:`vigil.hashing.signals.embedding`) 100 %. So no crop grid is stored; pass
``embedding=True`` on both sides where torch is installed and ~25 ms per upload is affordable.
"""

from __future__ import annotations

import numpy as np

from vigil.hashing.signals.base import Signal
from vigil.hashing.signals.pdq import bank_pdq_signals, query_pdq_signals


def _embedding_signal(rgb: np.ndarray) -> Signal:
    # Imported here: the embedding needs torch, an optional extra that plain PDQ users skip.
    from vigil.hashing.signals.embedding import embedding_signal

    return embedding_signal(rgb)


def bank_image_signals(rgb: np.ndarray, *, embedding: bool = False) -> list[Signal]:
    """Hashes to store for a bank entry: the 8 dihedral PDQ variants (and the embedding)."""
    signals = bank_pdq_signals(rgb)
    return [*signals, _embedding_signal(rgb)] if embedding else signals


def query_image_signals(rgb: np.ndarray, *, embedding: bool = False) -> list[Signal]:
    """Hashes to search an upload with: one PDQ hash (and the embedding)."""
    signals = query_pdq_signals(rgb)
    return [*signals, _embedding_signal(rgb)] if embedding else signals
