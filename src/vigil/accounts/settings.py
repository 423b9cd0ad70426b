"""Account, session and login policy (``VIGIL_*`` environment, like every setting)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from vigil.config import Settings


class AccountSettings(Settings):
    session_cookie_secure: bool = Field(
        default=True,
        description="Mark the console cookie Secure (HTTPS only); off only for plain-http "
        "localhost development and tests.",
    )
    session_idle_minutes: float = Field(
        default=30.0, description="A session unused this long ends."
    )
    session_max_hours: float = Field(
        default=12.0, description="A session ends this long after login."
    )
    login_max_failures: int = Field(
        default=5, description="Failed logins (per username and client) before a lockout."
    )
    login_lockout_minutes: float = Field(
        default=15.0, description="The window failures are counted in, and the lockout's length."
    )
    password_min_length: int = 12

    @property
    def session_idle(self) -> timedelta:
        return timedelta(minutes=self.session_idle_minutes)

    @property
    def session_max(self) -> timedelta:
        return timedelta(hours=self.session_max_hours)

    @property
    def lockout(self) -> timedelta:
        return timedelta(minutes=self.login_lockout_minutes)
