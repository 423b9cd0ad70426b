"""Registry of signal types by name and alias."""

from __future__ import annotations

from vigil.hashing.signals.base import Signal, SignalType
from vigil.hashing.signals.digest import MD5Signal, SHA256Signal
from vigil.hashing.signals.embedding import EmbeddingSignal
from vigil.hashing.signals.keypoints import KeypointsSignal
from vigil.hashing.signals.pdq import PdqSignal
from vigil.hashing.signals.vpdq import VpdqSignal

SIGNAL_TYPES: tuple[SignalType, ...] = (PdqSignal(), MD5Signal(), SHA256Signal(), VpdqSignal())

#: Computed only when asked for: stored with bank entries, and for an upload as a second matching
#: stage when no hash matched (it needs torch and costs ~25 ms an image).
EMBEDDING = EmbeddingSignal()
#: Stored with bank entries beside the embedding, never indexed: the embedding's candidates are
#: verified against it.
KEYPOINTS = KeypointsSignal()

_BY_NAME: dict[str, SignalType] = {
    name: signal_type
    for signal_type in (*SIGNAL_TYPES, EMBEDDING, KEYPOINTS)
    for name in (signal_type.name, *signal_type.aliases)
}


def get_signal_type(name: str) -> SignalType:
    """Look a signal type up by its name or a python-threatexchange alias."""
    try:
        return _BY_NAME[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(_BY_NAME))
        raise ValueError(f"unknown signal type {name!r} (known: {known})") from None


__all__ = ["EMBEDDING", "KEYPOINTS", "SIGNAL_TYPES", "Signal", "SignalType", "get_signal_type"]
