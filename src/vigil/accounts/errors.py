"""What account operations raise; the CLI and the API turn them into messages and statuses."""

from __future__ import annotations

from datetime import datetime


class AccountError(Exception):
    """An account or token operation that cannot be done (bad name, unknown role...)."""


class AccountExists(AccountError):
    pass


class AccountNotFound(AccountError):
    pass


class WeakPassword(AccountError):
    pass


class LoginFailed(AccountError):
    """Wrong username or password, or a disabled account: deliberately not told apart."""


class LoginLocked(AccountError):
    def __init__(self, until: datetime) -> None:
        super().__init__("too many failed logins; try again later")
        self.until = until
