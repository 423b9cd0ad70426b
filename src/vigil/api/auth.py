"""API tokens, roles and per-route permissions.

A token is ``vgl_`` plus 32 random bytes (URL-safe base64), shown once when created; only its
SHA-256 is stored. ``settings.bootstrap_admin_token`` is accepted as an admin token so a fresh
install can be driven before any token exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update

from vigil.api.errors import ApiError
from vigil.logs import get_logger
from vigil.store import ApiToken, Database

Role = Literal["admin", "analyst", "reviewer", "investigator", "supervisor"]
ROLES: tuple[Role, ...] = get_args(Role)
_ROLE_BY_NAME: dict[str, Role] = {role: role for role in ROLES}
Permission = Literal["hash", "match", "bank:read", "bank:write", "token:admin"]

PERMISSIONS: dict[Permission, frozenset[Role]] = {
    "hash": frozenset(ROLES),
    "match": frozenset(ROLES),
    "bank:read": frozenset(ROLES),
    "bank:write": frozenset({"admin", "analyst"}),
    "token:admin": frozenset({"admin"}),
}

TOKEN_PREFIX = "vgl_"
BOOTSTRAP_NAME = "bootstrap-admin"
# last_used_at is for spotting stale tokens, not an audit trail: writing it on every request would
# turn each read into a write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)

log = get_logger(__name__)


class TokenError(Exception):
    """A token operation that cannot be done (bad name, unknown role)."""


class TokenExists(TokenError):
    pass


class TokenNotFound(TokenError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name and role."""

    name: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return self.role in PERMISSIONS[permission]


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: str
    disabled: bool
    created_at: datetime
    last_used_at: datetime | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(token: ApiToken) -> TokenInfo:
    return TokenInfo(token.name, token.role, token.disabled, token.created_at, token.last_used_at)


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class TokenStore:
    def __init__(self, db: Database, bootstrap_secret: str | None = None) -> None:
        self.db = db
        self._bootstrap_hash = hash_secret(bootstrap_secret) if bootstrap_secret else None

    def create(self, name: str, role: str) -> tuple[TokenInfo, str]:
        """Create a token; returns it with its secret, which is not kept anywhere."""
        if role not in ROLES:
            raise TokenError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        if not name.strip() or name == BOOTSTRAP_NAME:
            raise TokenError(f"{name!r} cannot be used as a token name")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.session() as session:
            if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
                raise TokenExists(f"a token named {name!r} already exists")
            token = ApiToken(name=name, role=role, token_hash=hash_secret(secret), disabled=False)
            session.add(token)
            session.flush()
            return _info(token), secret

    def list_tokens(self) -> list[TokenInfo]:
        with self.db.session() as session:
            return [_info(t) for t in session.scalars(select(ApiToken).order_by(ApiToken.name))]

    def disable(self, name: str) -> TokenInfo:
        with self.db.session() as session:
            token = session.scalar(select(ApiToken).where(ApiToken.name == name))
            if token is None:
                raise TokenNotFound(f"no token named {name!r}")
            token.disabled = True
            return _info(token)

    def authenticate(self, secret: str) -> Principal | None:
        digest = hash_secret(secret)
        if self._bootstrap_hash is not None and hmac.compare_digest(digest, self._bootstrap_hash):
            return Principal(BOOTSTRAP_NAME, "admin")
        now = datetime.now(UTC)
        with self.db.session() as session:
            # Looked up by digest: the secret itself never reaches the database or a log line.
            token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
            role = _ROLE_BY_NAME.get(token.role) if token is not None else None
            if token is None or role is None or token.disabled:
                return None
            last_used = token.last_used_at
            if last_used is None or now - _as_utc(last_used) >= _LAST_USED_RESOLUTION:
                session.execute(
                    update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
                )
            return Principal(token.name, role)


_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer vgl_...`")


def token_store(request: Request) -> TokenStore:
    store: TokenStore = request.app.state.tokens
    return store


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


class Require:
    """A dependency that admits callers whose role has ``permission``; returns the caller.

    A class, not a closure, so the permission of each route can be read back from the app (the
    tests check that every route but the health probes has one)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(
        self,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        tokens: TokenStore = Depends(token_store),
    ) -> Principal:
        if credentials is None:
            raise _unauthorized("an `Authorization: Bearer <token>` header is required")
        principal = tokens.authenticate(credentials.credentials)
        if principal is None:
            log.info("auth.rejected", reason="unknown or disabled token")
            raise _unauthorized("the token is unknown or disabled")
        if not principal.can(self.permission):
            log.info("auth.forbidden", token=principal.name, permission=self.permission)
            raise ApiError(403, "forbidden", f"role {principal.role!r} lacks {self.permission!r}")
        return principal
