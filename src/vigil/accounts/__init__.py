"""Accounts, roles and permissions, API tokens and console sessions.

Other modules code against :data:`PERMISSIONS` and :class:`Principal`; the API's ``Require``
dependency turns a bearer token or a session cookie into a ``Principal``.
"""

from vigil.accounts.errors import (
    AccountError,
    AccountExists,
    AccountNotFound,
    LoginFailed,
    LoginLocked,
    WeakPassword,
)
from vigil.accounts.passwords import hash_password, verify_password
from vigil.accounts.roles import (
    PERMISSIONS,
    ROLES,
    Permission,
    Principal,
    Role,
    parse_roles,
    user_actor,
)
from vigil.accounts.sessions import ActiveSession, ConsoleLogin, ConsoleSessions, client_actor
from vigil.accounts.settings import AccountSettings
from vigil.accounts.users import (
    ALL_ROLES,
    BOOTSTRAP_NAME,
    TOKEN_PREFIX,
    Accounts,
    TokenInfo,
    TokenUse,
    UserInfo,
    hash_secret,
)

__all__ = [
    "ALL_ROLES",
    "BOOTSTRAP_NAME",
    "PERMISSIONS",
    "ROLES",
    "TOKEN_PREFIX",
    "AccountError",
    "AccountExists",
    "AccountNotFound",
    "AccountSettings",
    "Accounts",
    "ActiveSession",
    "ConsoleLogin",
    "ConsoleSessions",
    "LoginFailed",
    "LoginLocked",
    "Permission",
    "Principal",
    "Role",
    "TokenInfo",
    "TokenUse",
    "UserInfo",
    "WeakPassword",
    "client_actor",
    "hash_password",
    "hash_secret",
    "parse_roles",
    "user_actor",
    "verify_password",
]
