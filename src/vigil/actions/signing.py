"""The webhook signature: ``X-Vigil-Signature: sha256=<hex HMAC-SHA256 of timestamp + "." + body>``.

The timestamp (``X-Vigil-Timestamp``, Unix seconds) is inside the signed text and fresh on every
attempt, so a receiver that refuses stale timestamps cannot be fed a recorded delivery again;
the idempotency key, not the signature, is what identifies a redelivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SCHEME = "sha256="
#: How old (or how far in the future) a timestamp may be before a receiver refuses it.
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Vigil-Signature`` header value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    return SCHEME + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes,
    header: str,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp`` with ``secret``, and the timestamp is
    within ``tolerance_seconds`` of ``now``. For receivers: pass the raw request body, before
    any JSON parsing."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        return False
    # compare_digest: a byte-by-byte compare would leak how much of a forged signature is right.
    return hmac.compare_digest(sign(secret, sent_at, body), header.strip())
