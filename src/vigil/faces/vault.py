"""Encryption at rest of face templates, face crops and kept probe media.

A template is biometric data: a stolen database must not hand out a watchlist. Everything
face-shaped is sealed with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under the
key in ``VIGIL_FACES_KEY``; without the key nothing is enrolled or searched. ``vigil faces
keygen`` makes a key. Rotating the key means re-enrolling (the images' sources are recorded).
"""

from __future__ import annotations

import numpy as np
from pydantic import SecretStr

from vigil.faces.settings import FacesSettings


class VaultError(RuntimeError):
    """No key, a malformed key, or a value sealed under another key."""


def new_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


class Vault:
    def __init__(self, key: SecretStr | None) -> None:
        from cryptography.fernet import Fernet

        if key is None:
            raise VaultError(
                "face search needs an encryption key: set VIGIL_FACES_KEY "
                "(make one with `vigil faces keygen`)"
            )
        try:
            self._fernet = Fernet(key.get_secret_value().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise VaultError("VIGIL_FACES_KEY must be urlsafe base64 of 32 bytes") from None

    @classmethod
    def of(cls, settings: FacesSettings) -> Vault:
        return cls(settings.faces_key)

    def seal(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def open(self, token: bytes) -> bytes:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise VaultError("a face record was sealed under another key") from None

    def seal_template(self, template: np.ndarray) -> bytes:
        return self.seal(np.asarray(template, dtype="<f4").tobytes())

    def open_template(self, token: bytes) -> np.ndarray:
        return np.frombuffer(self.open(token), dtype="<f4").astype(np.float32)
