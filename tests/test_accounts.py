"""Accounts on SQLite and PostgreSQL: passwords, the role map, token scopes, session expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from vigil.accounts import (
    PERMISSIONS,
    AccountError,
    AccountExists,
    Accounts,
    AccountSettings,
    ConsoleSessions,
    LoginFailed,
    Principal,
    TokenUse,
    WeakPassword,
    hash_password,
    verify_password,
)
from vigil.store import Database
from vigil.store.models import ConsoleSession, UserAccount

PASSWORD = "a long enough passphrase"
USE = TokenUse("GET", "/v1/banks", "bank:read")


@pytest.fixture
def policy(tmp_path: Path) -> AccountSettings:
    return AccountSettings(home=tmp_path, session_idle_minutes=30, session_max_hours=12)


def test_password_hashes_carry_parameters_and_salt() -> None:
    first, second = hash_password(PASSWORD, 12), hash_password(PASSWORD, 12)
    assert first.startswith("scrypt$16384$8$1$") and first != second  # salted
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "!", first)
    with pytest.raises(WeakPassword, match="at least 12"):
        hash_password("short", 12)


def test_the_role_map_is_the_agreed_one() -> None:
    every = {"admin", "analyst", "reviewer", "investigator", "supervisor"}
    deciders = {"reviewer", "investigator", "supervisor"}
    expected = {
        "hash": every,
        "match": every,
        "bank:read": every,
        "alert:read": every,
        "bank:write": {"admin", "analyst"},
        "alert:create": {"admin", "analyst"},
        "alert:decide": deciders,
        "decision:approve": {"investigator", "supervisor"},
        "case:write": {"analyst"} | deciders,
        "evidence:view": deciders,
        "action:read": {"admin", "investigator", "supervisor"},
        "webhook:admin": {"admin"},
        "token:admin": {"admin"},
        "user:admin": {"admin"},
        "audit:read": {"admin", "supervisor"},
        "metrics:read": {"admin"},
        "stream:read": every,
        "stream:watch": {"admin", "analyst"},
        "post:read": every,
        "post:push": {"admin", "analyst"},
        "face:read": every - {"admin"},
        "face:watchlist": {"investigator", "supervisor"},
        "face:approve": {"supervisor"},
        "face:search": {"analyst", "investigator"},
        "face:operate": {"reviewer"},
        "face:confirm": {"investigator"},
        "face:export": {"investigator"},
        "account:read": every,
        "account:export": {"investigator", "supervisor"},
        "account:reveal": {"admin"},
    }
    assert {permission: set(roles) for permission, roles in PERMISSIONS.items()} == expected


def test_a_principal_can_what_any_of_its_roles_can() -> None:
    both = Principal(3, "dana", frozenset({"analyst", "supervisor"}))
    assert both.can("bank:write") and both.can("audit:read") and not both.can("user:admin")
    assert both.actor == "user:dana"
    assert Principal(3, "dana", frozenset({"analyst"}), token="ci").actor == "token:ci"


def test_users_and_tokens(db: Database, policy: AccountSettings) -> None:
    accounts = Accounts(db, policy)
    accounts.create_user("test", "dana", ["analyst", "supervisor"], PASSWORD, "Dana")
    with pytest.raises(AccountExists):
        accounts.create_user("test", "dana", ["admin"])
    for bad_name, roles in (("no spaces", ["admin"]), ("eve", []), ("eve", ["root"])):
        with pytest.raises(AccountError):
            accounts.create_user("test", bad_name, roles)
    _, full = accounts.create_token("test", "dana", "dana-all")
    _, scoped = accounts.create_token("test", "dana", "dana-sup", "supervisor")
    with pytest.raises(AccountError, match="does not have the role"):
        accounts.create_token("test", "dana", "dana-admin", "admin")

    principal = accounts.authenticate_token(full, USE)
    assert principal is not None and principal.roles == {"analyst", "supervisor"}
    assert principal.token == "dana-all" and principal.name == "dana"
    narrowed = accounts.authenticate_token(scoped, USE)
    assert narrowed is not None and narrowed.roles == {"supervisor"}
    assert accounts.authenticate_token("vgl_guess", USE) is None
    [info] = [t for t in accounts.list_tokens() if t.name == "dana-all"]
    assert info.last_used_at is not None and info.user == "dana"

    accounts.disable_token("test", "dana-all")
    assert accounts.authenticate_token(full, USE) is None
    assert accounts.authenticate_token(scoped, USE) is not None
    [user] = accounts.list_users()
    assert (user.username, user.roles, user.has_password) == (
        "dana",
        ["analyst", "supervisor"],
        True,
    )


def _session_row(db: Database) -> ConsoleSession:
    with db.session() as session:
        return session.scalars(select(ConsoleSession)).one()


def test_sessions_expire_when_idle_and_at_their_absolute_limit(
    db: Database, policy: AccountSettings
) -> None:
    Accounts(db, policy).create_user("test", "rita", ["reviewer"], PASSWORD)
    sessions = ConsoleSessions(db, policy)
    with pytest.raises(LoginFailed):
        sessions.login("rita", "not her password", "10.0.0.1")
    login = sessions.login("rita", PASSWORD, "10.0.0.1")
    row = _session_row(db)
    assert row.expires_at - row.created_at == timedelta(minutes=30)

    # Near the absolute limit, use slides the idle deadline only up to it.
    now = datetime.now(UTC)
    created = now - timedelta(hours=12) + timedelta(minutes=5)
    with db.session() as session:
        soon = now + timedelta(minutes=2)
        session.execute(update(ConsoleSession).values(created_at=created, expires_at=soon))
    assert sessions.authenticate(login.secret) is not None
    assert _session_row(db).expires_at == created + timedelta(hours=12)

    # Once the deadline has passed, the cookie is worth nothing.
    with db.session() as session:
        session.execute(update(ConsoleSession).values(expires_at=now - timedelta(seconds=1)))
    assert sessions.authenticate(login.secret) is None
    assert not sessions.logout("not-a-session")


def test_a_disabled_account_cannot_sign_in(db: Database, policy: AccountSettings) -> None:
    accounts = Accounts(db, policy)
    accounts.create_user("test", "sam", ["investigator"], PASSWORD)
    sessions = ConsoleSessions(db, policy)
    live = sessions.login("sam", PASSWORD, "10.0.0.9")
    accounts.disable_user("test", "sam")
    assert sessions.authenticate(live.secret) is None
    assert _session_row(db).revoked_at is not None
    with pytest.raises(LoginFailed):
        sessions.login("sam", PASSWORD, "10.0.0.9")
    with db.session() as session:
        assert session.scalars(select(UserAccount.disabled)).one() is True
