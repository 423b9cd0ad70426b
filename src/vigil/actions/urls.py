"""Webhook URLs go through the same address policy as ``GET /h/hash?url=``
(:mod:`vigil.net`, allow-list ``url_fetch_allow``): a webhook must not
be a way to make vigil POST into its own network. The check runs when a webhook is saved and
again before every delivery, and the request goes to the address that was checked, so a DNS
answer that changes in between (rebinding) cannot redirect it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from vigil.net import IPNetwork, UnresolvedHost, all_allowed, resolve


class WebhookUrlRefused(ValueError):
    """A webhook URL vigil will not send to."""


class UnresolvableHost(WebhookUrlRefused):
    """The host did not resolve: maybe for good, maybe a DNS hiccup worth retrying."""


@dataclass(frozen=True)
class Target:
    """Where to connect (the host replaced by a checked address) and the name to present."""

    url: httpx.URL
    host_header: str
    sni_hostname: str


def check_url(url: str, allow: list[IPNetwork]) -> Target:
    """The pinned target for ``url``, or :class:`WebhookUrlRefused` saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlRefused("a webhook URL must be http or https")
    if not parts.hostname:
        raise WebhookUrlRefused("the URL has no host")
    if parts.username or parts.password:
        raise WebhookUrlRefused("put credentials in the secret, not in the URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookUrlRefused("the URL has an invalid port") from None
    try:
        addresses = resolve(parts.hostname, port)
    except UnresolvedHost as exc:
        raise UnresolvableHost(str(exc)) from None
    if not all_allowed(addresses, allow):
        raise WebhookUrlRefused(f"{parts.hostname!r} resolves to a non-public address")
    pinned = httpx.URL(url).copy_with(host=str(addresses[0]))
    return Target(pinned, parts.netloc.rsplit("@", 1)[-1], parts.hostname)
