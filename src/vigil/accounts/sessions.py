"""Console sessions: login with a password, a random secret in a cookie, CSRF tokens.

Failed logins are counted from the audit log (``login.failure`` per username and client), so a
lockout holds across restarts and replicas without a table of its own.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.accounts.errors import LoginFailed, LoginLocked
from vigil.accounts.passwords import DUMMY_HASH, verify_password
from vigil.accounts.roles import Principal, user_actor
from vigil.accounts.settings import AccountSettings
from vigil.accounts.users import active_roles, hash_secret
from vigil.audit import record
from vigil.store import Database
from vigil.store.models import AuditEvent, ConsoleSession, UserAccount

# Sliding the idle deadline at most once a minute keeps reads from each becoming a write.
_SLIDE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ConsoleLogin:
    principal: Principal
    #: The cookie's value; only its SHA-256 is stored.
    secret: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class ActiveSession:
    principal: Principal
    csrf_token: str


def client_actor(client: str) -> str:
    """How the audit log names someone not (yet) signed in."""
    return f"client:{client}"


def _password_ok(user: UserAccount | None, password: str) -> bool:
    if user is None or user.password_hash is None:
        verify_password(password, DUMMY_HASH)  # same cost as a real check: see DUMMY_HASH
        return False
    return verify_password(password, user.password_hash)


class ConsoleSessions:
    def __init__(self, db: Database, settings: AccountSettings) -> None:
        self.db = db
        self.settings = settings

    def login(self, username: str, password: str, client: str) -> ConsoleLogin:
        """A new session, or LoginFailed / LoginLocked (after ``login_max_failures`` failures
        for this username from this client within ``login_lockout_minutes``)."""
        now = datetime.now(UTC)
        with self.db.session() as session:
            locked_until = self._locked_until(session, username, client, now)
            user = session.scalar(select(UserAccount).where(UserAccount.username == username))
            # The password is checked even when locked out, so timing does not tell.
            if _password_ok(user, password) and locked_until is None:
                assert user is not None
                if active_roles(user):
                    return self._open(session, user, client, now)
            # A refused attempt counts as a failure too: guessing on keeps the lock closed.
            reason = "locked_out" if locked_until else "bad_credentials"
            detail = {"reason": reason}
            record(session, client_actor(client), "login.failure", "user", username, detail)
        if locked_until is not None:
            raise LoginLocked(locked_until)
        raise LoginFailed("wrong username or password")

    def _locked_until(
        self, session: Session, username: str, client: str, now: datetime
    ) -> datetime | None:
        window_start = now - self.settings.lockout
        last_success = session.scalar(
            select(func.max(AuditEvent.at)).where(
                AuditEvent.action == "login.success", AuditEvent.object_id == username
            )
        )
        since = max(window_start, last_success) if last_success else window_start
        failures = session.scalars(
            select(AuditEvent.at)
            .where(
                AuditEvent.action == "login.failure",
                AuditEvent.object_id == username,
                AuditEvent.actor == client_actor(client),
                AuditEvent.at > since,
            )
            .order_by(AuditEvent.at.desc())
            .limit(self.settings.login_max_failures)
        ).all()
        if len(failures) < self.settings.login_max_failures:
            return None
        # Open again once the oldest of the last N failures leaves the window.
        return failures[-1] + self.settings.lockout

    def _open(
        self, session: Session, user: UserAccount, client: str, now: datetime
    ) -> ConsoleLogin:
        secret = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        expires_at = now + min(self.settings.session_idle, self.settings.session_max)
        row = ConsoleSession(
            token_hash=hash_secret(secret),
            user_id=user.id,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires_at,
        )
        session.add(row)
        user.last_login_at = now
        session.flush()
        principal = Principal(user.id, user.username, active_roles(user))
        detail = {"client": client, "session": row.id}
        record(session, principal.actor, "login.success", "user", user.username, detail)
        return ConsoleLogin(principal, secret, csrf_token, expires_at)

    def authenticate(self, secret: str) -> ActiveSession | None:
        """The session a cookie carries, if it is live; sliding its idle deadline."""
        now = datetime.now(UTC)
        with self.db.session() as session:
            found = self._find(session, secret)
            if found is None:
                return None
            row, user = found
            roles = active_roles(user)
            if row.revoked_at is not None or row.expires_at <= now or not roles:
                return None
            deadline = min(
                now + self.settings.session_idle, row.created_at + self.settings.session_max
            )
            if deadline - row.expires_at >= _SLIDE_RESOLUTION:
                row.expires_at = deadline
            return ActiveSession(Principal(user.id, user.username, roles), row.csrf_token)

    def logout(self, secret: str) -> bool:
        """End the session the cookie carries; False when there was none to end."""
        now = datetime.now(UTC)
        with self.db.session() as session:
            found = self._find(session, secret)
            if found is None or found[0].revoked_at is not None:
                return False
            row, user = found
            row.revoked_at = now
            actor = user_actor(user.username)
            record(session, actor, "logout", "user", user.username, {"session": row.id})
            return True

    @staticmethod
    def _find(session: Session, secret: str) -> tuple[ConsoleSession, UserAccount] | None:
        found = session.execute(
            select(ConsoleSession, UserAccount)
            .join(UserAccount, ConsoleSession.user_id == UserAccount.id)
            .where(ConsoleSession.token_hash == hash_secret(secret))
        ).first()
        return None if found is None else (found[0], found[1])
