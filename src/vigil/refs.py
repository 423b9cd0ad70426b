"""Account (and platform, campaign) references: what one may hold.

Shared by ingest, which refuses a post whose author or mention no page or route could name, and
by the account views, which answer 422 for the same characters in a path.
"""

from __future__ import annotations

import unicodedata

REF_MAX = 256

# Bidirectional embeddings, overrides, isolates and marks, and the byte-order mark: invisible,
# they make one reference look like another (U+202E turns "gnp.exe" round).
_INVISIBLE = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)


def _is_noncharacter(code: int) -> bool:
    return 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE


def check_ref(value: str, what: str = "author_ref", max_length: int = REF_MAX) -> str:
    """``value`` if it can be an account (or platform, or campaign) reference: 1 to
    ``max_length`` characters, none of them a control character, a surrogate, a noncharacter,
    a line or paragraph separator or an invisible direction mark. ``ValueError`` naming the
    first offending character otherwise (the API answers 422 with it)."""
    if not 1 <= len(value) <= max_length:
        raise ValueError(f"{what} must be 1 to {max_length} characters, not {len(value)}")
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if (
            category in ("Cc", "Cs", "Zl", "Zp")
            or char in _INVISIBLE
            or _is_noncharacter(ord(char))
        ):
            name = unicodedata.name(char, "a control character" if category == "Cc" else category)
            raise ValueError(
                f"{what} has U+{ord(char):04X} ({name}) at {position}: no reference carries one"
            )
    return value
