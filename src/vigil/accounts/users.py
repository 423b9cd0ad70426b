"""Accounts and their API tokens. Every change is audited in the transaction that makes it."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil.accounts.errors import AccountError, AccountExists, AccountNotFound
from vigil.accounts.passwords import hash_password
from vigil.accounts.roles import ROLES, Permission, Principal, Role, parse_roles
from vigil.accounts.settings import AccountSettings
from vigil.audit import record
from vigil.store import ApiToken, Database
from vigil.store.models import ConsoleSession, UserAccount

TOKEN_PREFIX = "vgl_"
BOOTSTRAP_NAME = "bootstrap-admin"
#: A token whose ``role`` column is empty acts with all of its user's roles.
ALL_ROLES = ""
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# last_used_at is for spotting stale tokens (the audit log has every use): writing it at most
# once a minute keeps it from adding an UPDATE to every request.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class UserInfo:
    username: str
    display_name: str
    roles: list[str]
    disabled: bool
    has_password: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class TokenInfo:
    name: str
    user: str | None
    #: The one role the token is limited to, or ALL_ROLES.
    scope: str
    disabled: bool
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class TokenUse:
    """One request made with a token: recorded as ``token.use`` whether it was allowed or not."""

    method: str
    route: str
    permission: Permission | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def active_roles(user: UserAccount, scope: str = ALL_ROLES) -> frozenset[Role]:
    """The user's roles (limited to ``scope``); none at all once the user is disabled."""
    if user.disabled:
        return frozenset()
    return frozenset(r for r in ROLES if r in user.roles and scope in (ALL_ROLES, r))


def _user_info(user: UserAccount) -> UserInfo:
    return UserInfo(
        user.username,
        user.display_name,
        list(user.roles),
        user.disabled,
        user.password_hash is not None,
        user.created_at,
        user.last_login_at,
    )


def _token_info(token: ApiToken, user: UserAccount | None) -> TokenInfo:
    return TokenInfo(
        token.name,
        user.username if user else None,
        token.role,
        token.disabled,
        token.created_at,
        token.last_used_at,
    )


def find_user(session: Session, username: str) -> UserAccount:
    user = session.scalar(select(UserAccount).where(UserAccount.username == username))
    if user is None:
        raise AccountNotFound(f"no user named {username!r}")
    return user


class Accounts:
    def __init__(
        self, db: Database, settings: AccountSettings, bootstrap_secret: str | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self._bootstrap_hash = hash_secret(bootstrap_secret) if bootstrap_secret else None

    # --- users ---------------------------------------------------------------------------

    def create_user(
        self,
        actor: str,
        username: str,
        roles: list[str],
        password: str | None = None,
        display_name: str = "",
    ) -> UserInfo:
        """A new account; without a password it can only use API tokens."""
        if not _USERNAME.fullmatch(username):
            raise AccountError(f"{username!r} is not a valid username (letters, digits, ._@-)")
        parsed = parse_roles(roles)
        password_hash = (
            hash_password(password, self.settings.password_min_length) if password else None
        )
        with self.db.session() as session:
            if session.scalar(select(UserAccount.id).where(UserAccount.username == username)):
                raise AccountExists(f"a user named {username!r} already exists")
            user = UserAccount(
                username=username,
                display_name=display_name,
                password_hash=password_hash,
                roles=sorted(parsed),
                disabled=False,
            )
            session.add(user)
            session.flush()
            record(session, actor, "user.create", "user", username, {"roles": user.roles})
            return _user_info(user)

    def list_users(self) -> list[UserInfo]:
        with self.db.session() as session:
            query = select(UserAccount).order_by(UserAccount.username)
            return [_user_info(user) for user in session.scalars(query)]

    def disable_user(self, actor: str, username: str) -> UserInfo:
        """Disable the account and, at once, every session and token it has."""
        now = datetime.now(UTC)
        with self.db.session() as session:
            user = find_user(session, username)
            user.disabled = True
            session.execute(
                update(ApiToken).where(ApiToken.user_id == user.id).values(disabled=True)
            )
            session.execute(
                update(ConsoleSession)
                .where(ConsoleSession.user_id == user.id, ConsoleSession.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            record(session, actor, "user.disable", "user", username)
            return _user_info(user)

    # --- tokens --------------------------------------------------------------------------

    def create_token(
        self, actor: str, username: str, name: str, scope: str = ALL_ROLES
    ) -> tuple[TokenInfo, str]:
        """A token acting for ``username`` (limited to one of its roles when ``scope`` names
        one); returns it with its secret, which is not kept anywhere."""
        if not name.strip() or len(name) > 128 or name == BOOTSTRAP_NAME:
            raise AccountError(f"{name!r} cannot be used as a token name")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.session() as session:
            user = find_user(session, username)
            if user.disabled:
                raise AccountError(f"user {username!r} is disabled")
            if scope != ALL_ROLES and scope not in user.roles:
                raise AccountError(f"user {username!r} does not have the role {scope!r}")
            if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
                raise AccountExists(f"a token named {name!r} already exists")
            token = ApiToken(
                name=name,
                role=scope,
                token_hash=hash_secret(secret),
                user_id=user.id,
                disabled=False,
            )
            session.add(token)
            session.flush()
            detail = {"user": username, "scope": scope}
            record(session, actor, "token.create", "token", name, detail)
            return _token_info(token, user), secret

    def list_tokens(self) -> list[TokenInfo]:
        with self.db.session() as session:
            query = (
                select(ApiToken, UserAccount)
                .outerjoin(UserAccount, ApiToken.user_id == UserAccount.id)
                .order_by(ApiToken.name)
            )
            return [_token_info(token, user) for token, user in session.execute(query)]

    def disable_token(self, actor: str, name: str) -> TokenInfo:
        with self.db.session() as session:
            token = session.scalar(select(ApiToken).where(ApiToken.name == name))
            if token is None:
                raise AccountNotFound(f"no token named {name!r}")
            token.disabled = True
            record(session, actor, "token.disable", "token", name)
            user = session.get(UserAccount, token.user_id) if token.user_id else None
            return _token_info(token, user)

    def authenticate_token(self, secret: str, use: TokenUse) -> Principal | None:
        """The caller a token stands for (``None``: unknown, disabled, or its user is), with
        the use recorded in the audit log."""
        digest = hash_secret(secret)
        with self.db.session() as session:
            principal = self._token_principal(session, digest)
            if principal is not None:
                allowed = use.permission is None or principal.can(use.permission)
                detail = {"method": use.method, "permission": use.permission, "allowed": allowed}
                record(session, principal.actor, "token.use", "route", use.route, detail)
            return principal

    def _token_principal(self, session: Session, digest: str) -> Principal | None:
        if self._bootstrap_hash is not None and hmac.compare_digest(digest, self._bootstrap_hash):
            return Principal(None, BOOTSTRAP_NAME, frozenset({"admin"}), token=BOOTSTRAP_NAME)
        # Looked up by digest: the secret itself never reaches the database or a log line.
        found = session.execute(
            select(ApiToken, UserAccount)
            .join(UserAccount, ApiToken.user_id == UserAccount.id)
            .where(ApiToken.token_hash == digest)
        ).first()
        if found is None:
            return None
        token, user = found
        roles = active_roles(user, token.role)
        if token.disabled or not roles:
            return None
        now = datetime.now(UTC)
        if token.last_used_at is None or now - token.last_used_at >= _LAST_USED_RESOLUTION:
            token.last_used_at = now
        return Principal(user.id, user.username, roles, token=token.name)
