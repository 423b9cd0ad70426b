"""Webhook receivers: create, list, change, disable. A secret is shown once, when it is made."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil import audit
from vigil.actions.kinds import WEBHOOK_KINDS
from vigil.actions.urls import check_url
from vigil.store.models import Webhook

SECRET_PREFIX = "whsec_"
MIN_SECRET_LENGTH = 24


class WebhookError(ValueError):
    """A webhook change that cannot be made (bad URL, unknown kind, weak secret)."""


class WebhookExists(WebhookError):
    pass


class WebhookNotFound(WebhookError):
    pass


@dataclass(frozen=True)
class WebhookInfo:
    """A webhook as shown to people: never its secret."""

    id: int
    name: str
    url: str
    kinds: list[str]
    enabled: bool
    created_at: datetime


def info(webhook: Webhook) -> WebhookInfo:
    return WebhookInfo(
        webhook.id,
        webhook.name,
        webhook.url,
        list(webhook.kinds),
        webhook.enabled,
        webhook.created_at,
    )


def _checked_kinds(kinds: Sequence[str]) -> list[str]:
    unknown = sorted(set(kinds) - WEBHOOK_KINDS)
    if unknown or not kinds:
        raise WebhookError(
            f"kinds must be a non-empty subset of {', '.join(sorted(WEBHOOK_KINDS))}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return sorted(set(kinds))


def _checked_url(url: str, allow: list[IPv4Network | IPv6Network]) -> str:
    try:
        check_url(url, allow)
    except ValueError as exc:
        raise WebhookError(str(exc)) from None
    return url


def _get(session: Session, webhook_id: int) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise WebhookNotFound(f"no webhook with id {webhook_id}")
    return webhook


def create(
    session: Session,
    actor: str,
    *,
    name: str,
    url: str,
    kinds: Sequence[str],
    allow: list[IPv4Network | IPv6Network],
    secret: str | None = None,
) -> tuple[WebhookInfo, str]:
    """Add a webhook; returns it with its signing secret (generated unless given)."""
    if not name.strip():
        raise WebhookError("a webhook needs a name")
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise WebhookError(f"a webhook secret must be at least {MIN_SECRET_LENGTH} characters")
    checked = _checked_kinds(kinds)
    _checked_url(url, allow)
    if session.scalar(select(Webhook.id).where(Webhook.name == name)) is not None:
        raise WebhookExists(f"a webhook named {name!r} already exists")
    secret = secret or SECRET_PREFIX + secrets.token_urlsafe(32)
    webhook = Webhook(name=name, url=url, secret=secret, kinds=checked, enabled=True)
    session.add(webhook)
    session.flush()
    audit.record(session, actor, "webhook.create", "webhook", str(webhook.id), _detail(webhook))
    return info(webhook), secret


def list_webhooks(session: Session) -> list[WebhookInfo]:
    return [info(w) for w in session.scalars(select(Webhook).order_by(Webhook.name))]


def get(session: Session, webhook_id: int) -> WebhookInfo:
    return info(_get(session, webhook_id))


def find(session: Session, name: str) -> WebhookInfo:
    webhook = session.scalar(select(Webhook).where(Webhook.name == name))
    if webhook is None:
        raise WebhookNotFound(f"no webhook named {name!r}")
    return info(webhook)


def update(
    session: Session,
    actor: str,
    webhook_id: int,
    *,
    allow: list[IPv4Network | IPv6Network],
    url: str | None = None,
    kinds: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> WebhookInfo:
    """Change a webhook. Actions already queued for it go to the new URL."""
    webhook = _get(session, webhook_id)
    if url is not None:
        webhook.url = _checked_url(url, allow)
    if kinds is not None:
        webhook.kinds = _checked_kinds(kinds)
    if enabled is not None:
        webhook.enabled = enabled
    session.flush()
    audit.record(session, actor, "webhook.update", "webhook", str(webhook.id), _detail(webhook))
    return info(webhook)


def delete(session: Session, actor: str, webhook_id: int) -> None:
    """Remove a webhook. Its queued actions keep their rows and go dead ("webhook deleted")
    when a worker reaches them, so nothing disappears silently."""
    webhook = _get(session, webhook_id)
    audit.record(session, actor, "webhook.delete", "webhook", str(webhook.id), _detail(webhook))
    session.delete(webhook)


def _detail(webhook: Webhook) -> dict[str, object]:
    # The secret stays out: the audit log is read by more people than administer webhooks.
    return {
        "name": webhook.name,
        "url": webhook.url,
        "kinds": list(webhook.kinds),
        "enabled": webhook.enabled,
    }
