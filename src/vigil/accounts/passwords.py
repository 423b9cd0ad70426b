"""Password hashing with scrypt (stdlib). The stored string carries its parameters and salt, so
they can be raised later without invalidating existing hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from vigil.accounts.errors import WeakPassword

# RFC 7914's interactive-login parameters: 2^14 iterations, 16 MiB of memory per hash.
_N, _R, _P = 2**14, 8, 1
_KEY_BYTES = 32
_SCHEME = "scrypt"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _derive(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # maxmem: OpenSSL's default cap (32 MiB) is too tight for n=2^14, r=8 on some builds.
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=256 * 1024 * 1024
    )


def hash_password(password: str, min_length: int) -> str:
    """``scrypt$n$r$p$salt$key`` (base64 salt and key)."""
    if len(password) < min_length:
        raise WeakPassword(f"a password needs at least {min_length} characters")
    salt = secrets.token_bytes(16)
    key = _derive(password, salt, _N, _R, _P, _KEY_BYTES)
    return f"{_SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    scheme, n, r, p, salt, key = stored.split("$")
    if scheme != _SCHEME:
        return False
    expected = base64.b64decode(key)
    actual = _derive(password, base64.b64decode(salt), int(n), int(r), int(p), len(expected))
    return hmac.compare_digest(actual, expected)


# Checked when the account does not exist, so that a wrong username costs the same time as a
# wrong password and response times do not reveal which usernames exist.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16), 0)
