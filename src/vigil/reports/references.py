"""Reference numbers given back to reporters: ``VGL-XXXX-XXXX``.

Eight symbols of Crockford's base32 (no I, L, O or U, so a reference read out over the phone
survives) drawn from the operating system's CSPRNG: 2^40 values. A reference opens nothing by
itself (there is no public look-up), so it only has to be unguessable enough that one cannot be
made up to pass as someone else's when talking to a moderator.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PATTERN = re.compile(rf"^VGL-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}$")


def new_reference() -> str:
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"VGL-{symbols[:4]}-{symbols[4:]}"


def is_reference(text: str) -> bool:
    return PATTERN.fullmatch(text) is not None
