"""Roles, permissions and the caller (``Principal``) that every authorised request carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from vigil.accounts.errors import AccountError

Role = Literal["admin", "analyst", "reviewer", "investigator", "supervisor"]
ROLES: tuple[Role, ...] = get_args(Role)

Permission = Literal[
    "hash",
    "match",
    "bank:read",
    "bank:write",
    "alert:read",
    "alert:create",
    "alert:decide",
    "decision:approve",
    "case:write",
    "evidence:view",
    "action:read",
    "webhook:admin",
    "token:admin",
    "user:admin",
    "audit:read",
    "metrics:read",
    "stream:read",
    "stream:watch",
    "post:read",
    "post:push",
    "face:read",
    "face:watchlist",
    "face:approve",
    "face:search",
    "face:operate",
    "face:confirm",
    "face:export",
    "account:read",
    "account:export",
    "account:reveal",
]

_ALL: frozenset[Role] = frozenset(ROLES)
_DECIDERS: frozenset[Role] = frozenset({"reviewer", "investigator", "supervisor"})
_ADMIN: frozenset[Role] = frozenset({"admin"})

PERMISSIONS: dict[Permission, frozenset[Role]] = {
    "hash": _ALL,
    "match": _ALL,
    "bank:read": _ALL,
    "alert:read": _ALL,
    "bank:write": frozenset({"admin", "analyst"}),
    "alert:create": frozenset({"admin", "analyst"}),
    "alert:decide": _DECIDERS,
    "decision:approve": frozenset({"investigator", "supervisor"}),
    "case:write": frozenset({"analyst", *_DECIDERS}),
    "evidence:view": _DECIDERS,
    "action:read": frozenset({"admin", "investigator", "supervisor"}),
    "webhook:admin": _ADMIN,
    "token:admin": _ADMIN,
    "user:admin": _ADMIN,
    "audit:read": frozenset({"admin", "supervisor"}),
    "metrics:read": _ADMIN,
    # Watching a stream fetches a URL from vigil's network and stores its footage as evidence.
    "stream:read": _ALL,
    "stream:watch": frozenset({"admin", "analyst"}),
    # Pushing posts is how a platform's or a unit's collector feeds vigil; reading a stored post
    # shows public text that every role sees in the queue anyway.
    "post:read": _ALL,
    "post:push": frozenset({"admin", "analyst"}),
    # Face search is biometric processing: least privilege, and never the technical admin.
    # Watchlists are kept by investigators and approved by a supervisor; analysts and
    # investigators search; a trained operator (reviewer) checks each candidate first, then the
    # investigating officer confirms or rejects it, and only they export.
    "face:read": frozenset({"analyst", "reviewer", "investigator", "supervisor"}),
    "face:watchlist": frozenset({"investigator", "supervisor"}),
    "face:approve": frozenset({"supervisor"}),
    "face:search": frozenset({"analyst", "investigator"}),
    "face:operate": frozenset({"reviewer"}),
    "face:confirm": frozenset({"investigator"}),
    "face:export": frozenset({"investigator"}),
    # Accounts are people's: reading one's history shows the public posts every role reads
    # already (post:read). Its evidence pack, for a referral, carries the alerts' evidence: the
    # people who refer and approve referrals export it (as only investigators export face
    # matches), never the technical admin. Revealing who is behind a pseudonym undoes a privacy
    # control: the admin alone, every reveal audited.
    "account:read": _ALL,
    "account:export": frozenset({"investigator", "supervisor"}),
    "account:reveal": _ADMIN,
}


def parse_roles(names: list[str] | tuple[str, ...]) -> frozenset[Role]:
    """The roles named (at least one), or AccountError naming the first that is not a role."""
    if not names:
        raise AccountError("at least one role is needed")
    by_name: dict[str, Role] = {role: role for role in ROLES}
    roles: set[Role] = set()
    for name in names:
        role = by_name.get(name)
        if role is None:
            raise AccountError(f"unknown role {name!r} (roles: {', '.join(ROLES)})")
        roles.add(role)
    return frozenset(roles)


def user_actor(username: str) -> str:
    return f"user:{username}"


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``user_id`` is the person (four-eyes rules compare it), ``None`` only for
    the bootstrap admin token; ``token`` is the API token's name when the call came with one."""

    user_id: int | None
    name: str
    roles: frozenset[Role]
    token: str | None = None

    def can(self, permission: Permission) -> bool:
        return not self.roles.isdisjoint(PERMISSIONS[permission])

    @property
    def actor(self) -> str:
        """How the audit log names this caller: ``token:ci-bot`` or ``user:alice``."""
        return f"token:{self.token}" if self.token is not None else user_actor(self.name)
