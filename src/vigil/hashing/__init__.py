"""Known-content matching: hash images and videos, keep hash banks, match fast.

Public API::

    from vigil.hashing import KnownContent, hash_file
    known = KnownContent()                     # settings from VIGIL_* environment
    known.banks.create("incident-2019")
    for result, entry_id in known.add_content("incident-2019", [Path("clips/")]): ...
    result, report = known.match(Path("upload.jpg"))

    features, imagenet = backbone_outputs([rgb])  # the embedding backbone, for trained heads
    rgb = Media(path, MediaLimits()).image_rgb()  # decoded after the size and bomb checks
"""

from vigil.hashing.banks import (
    BankError,
    BankExists,
    BankInfo,
    BankNotFound,
    BankService,
    NewEntry,
)
from vigil.hashing.hasher import HashResult, hash_file, hash_paths, iter_media_paths
from vigil.hashing.matcher import Match, Matcher, MatchReport
from vigil.hashing.media import Media, MediaError, MediaLimits
from vigil.hashing.service import KnownContent
from vigil.hashing.signals import SIGNAL_TYPES, Signal, SignalType, get_signal_type
from vigil.hashing.signals.embedding import backbone_outputs

__all__ = [
    "SIGNAL_TYPES",
    "BankError",
    "BankExists",
    "BankInfo",
    "BankNotFound",
    "BankService",
    "HashResult",
    "KnownContent",
    "Match",
    "MatchReport",
    "Matcher",
    "Media",
    "MediaError",
    "MediaLimits",
    "NewEntry",
    "Signal",
    "SignalType",
    "backbone_outputs",
    "get_signal_type",
    "hash_file",
    "hash_paths",
    "iter_media_paths",
]
