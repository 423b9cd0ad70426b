"""Pseudonymous account references: vigil can work on accounts without holding who they are.

With ``VIGIL_ACCOUNTS_PSEUDONYMISE`` on, every account reference a post carries (its author, the
accounts it mentions) is replaced at ingest, before anything is stored, classified or alerted, by

    pseudonym = "p_" + lowercase(base32(HMAC-SHA256(key, platform + "\\x00" + ref)))[:20]

under ``VIGIL_PSEUDONYM_KEY``: the same account always gets the same pseudonym (its history,
risk and links still add up), and nobody without the key can compute or reverse it (100 bits,
keyed). The way back is kept apart: the original sealed with Fernet (as the face vault seals
templates) under a key derived from the same secret, one row per pseudonym in the ``pseudonym``
table of ``VIGIL_PSEUDONYM_DATABASE_URL`` (a database of its own, away from the posts) or of the
main database. :meth:`Pseudonymiser.reveal` opens it for the audited reveal route.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from vigil.config import Settings
from vigil.store import Database
from vigil.store.models import Pseudonym, utcnow

PREFIX = "p_"
#: Base32 characters kept: 20 x 5 = 100 bits, far beyond any platform's account count.
LENGTH = 20
_SEAL_CONTEXT = b"vigil pseudonym seal v1"


class PseudonymError(RuntimeError):
    """No key or a malformed one, an unknown pseudonym, or a mapping sealed under another key."""


class PseudonymSettings(Settings):
    """The pseudonymisation settings, shared by post monitoring (which applies them at ingest)
    and the account views (which reveal): one switch, one key."""

    accounts_pseudonymise: bool = Field(
        default=False,
        description="Replace account references (authors, mentions) by keyed pseudonyms at "
        "ingest; the originals are kept sealed, apart (`VIGIL_PSEUDONYM_DATABASE_URL`).",
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="Secret of the pseudonyms and of the sealed originals: urlsafe base64 of "
        "32 bytes (`python -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32))"
        ".decode())'`). Changing it changes every pseudonym.",
    )
    pseudonym_database_url: str | None = Field(
        default=None,
        description="Database holding the sealed originals; default: the main database.",
    )

    @field_validator("pseudonym_key")
    @classmethod
    def _key_is_32_bytes(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            try:
                key_bytes(key)
            except PseudonymError as error:
                raise ValueError(str(error)) from None
        return key

    @model_validator(mode="after")
    def _key_when_on(self) -> Self:
        # Refused at startup rather than at the first post: a service that stored raw
        # references for an hour before failing would defeat the point.
        if self.accounts_pseudonymise and self.pseudonym_key is None:
            raise ValueError(
                "VIGIL_ACCOUNTS_PSEUDONYMISE is on but VIGIL_PSEUDONYM_KEY is not set "
                "(urlsafe base64 of 32 random bytes)"
            )
        return self


def key_bytes(key: SecretStr) -> bytes:
    """The 32 secret bytes of ``VIGIL_PSEUDONYM_KEY``."""
    try:
        raw = base64.urlsafe_b64decode(key.get_secret_value().encode("ascii"))
    except (ValueError, UnicodeEncodeError, binascii.Error):
        raise PseudonymError("VIGIL_PSEUDONYM_KEY must be urlsafe base64 of 32 bytes") from None
    if len(raw) != 32:
        raise PseudonymError("VIGIL_PSEUDONYM_KEY must be urlsafe base64 of 32 bytes")
    return raw


def open_pseudonymiser(settings: PseudonymSettings, db: Database) -> Pseudonymiser | None:
    """The configured pseudonymiser (None when pseudonymisation is off), its mapping in
    ``VIGIL_PSEUDONYM_DATABASE_URL`` when set, else in ``db``."""
    if not settings.accounts_pseudonymise:
        return None
    assert settings.pseudonym_key is not None  # the settings refuse to load without it
    mapping = Database(settings.pseudonym_database_url) if settings.pseudonym_database_url else db
    return Pseudonymiser(key_bytes(settings.pseudonym_key), mapping)


def reveal_with(settings: PseudonymSettings, db: Database, platform: str, pseudonym: str) -> str:
    """The original reference behind ``pseudonym``, with the configured key and mapping (for the
    reveal route and CLI, which must audit it)."""
    if settings.pseudonym_key is None:
        raise PseudonymError("revealing a pseudonym needs VIGIL_PSEUDONYM_KEY")
    mapping = Database(settings.pseudonym_database_url) if settings.pseudonym_database_url else db
    try:
        return Pseudonymiser(key_bytes(settings.pseudonym_key), mapping).reveal(platform, pseudonym)
    finally:
        if mapping is not db:
            mapping.dispose()


class Pseudonymiser:
    def __init__(self, key: bytes, db: Database) -> None:
        try:
            from cryptography.fernet import Fernet
        except ImportError:
            raise PseudonymError(
                "pseudonymisation seals the originals with the cryptography package: "
                "install it (it comes with vigil[faces])"
            ) from None
        self._key = key
        # A key of its own for sealing, so that no primitive shares its key with another.
        seal_key = hmac.new(key, _SEAL_CONTEXT, hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(seal_key))
        self.db = db

    def compute(self, platform: str, ref: str) -> str:
        """The pseudonym of ``ref`` on ``platform`` (deterministic; stores nothing)."""
        digest = hmac.new(self._key, f"{platform}\x00{ref}".encode(), hashlib.sha256).digest()
        return PREFIX + base64.b32encode(digest).decode("ascii")[:LENGTH].lower()

    def pseudonym(self, platform: str, ref: str) -> str:
        """The pseudonym of ``ref``, its sealed original stored if it is new."""
        return self.pseudonyms(platform, [ref])[ref]

    def pseudonyms(self, platform: str, refs: Iterable[str]) -> dict[str, str]:
        """Pseudonyms of many references of one platform, the new ones' originals stored in one
        transaction (committed before the caller stores anything that names them, so that a
        stored pseudonym can always be revealed)."""
        mapping = {ref: self.compute(platform, ref) for ref in refs if ref}
        if not mapping:
            return {}
        wanted = sorted(set(mapping.values()))
        with self.db.session() as session:
            known: set[str] = set()
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                known.update(
                    session.scalars(
                        select(Pseudonym.pseudonym).where(Pseudonym.pseudonym.in_(chunk))
                    )
                )
            new = sorted(
                {(pseudonym, ref) for ref, pseudonym in mapping.items() if pseudonym not in known}
            )
            if new:
                dialect = session.get_bind().dialect.name
                insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
                # Another process may seal the same new reference at the same moment: the first
                # row stands (both hold the same original).
                session.execute(
                    insert(Pseudonym).on_conflict_do_nothing(index_elements=[Pseudonym.pseudonym]),
                    [
                        {
                            "pseudonym": pseudonym,
                            "platform": platform,
                            "sealed": self._fernet.encrypt(ref.encode()),
                            "created_at": utcnow(),
                        }
                        for pseudonym, ref in new
                    ],
                )
        return mapping

    def reveal(self, platform: str, pseudonym: str) -> str:
        """The original reference behind ``pseudonym`` on ``platform``."""
        from cryptography.fernet import InvalidToken

        with self.db.session() as session:
            row = session.get(Pseudonym, pseudonym)
        if row is None or row.platform != platform:
            raise PseudonymError(f"no pseudonym {pseudonym!r} on {platform!r}")
        try:
            ref = self._fernet.decrypt(row.sealed).decode()
        except InvalidToken:
            raise PseudonymError("the pseudonym was sealed under another key") from None
        # A row copied from another pseudonym would open to the wrong person: check it is this
        # reference's own.
        if not hmac.compare_digest(self.compute(platform, ref), pseudonym):
            raise PseudonymError(f"the mapping of {pseudonym!r} does not belong to it")
        return ref
