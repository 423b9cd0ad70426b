"""Webhook URLs go through the same address policy as ``GET /h/hash?url=``
(:mod:`vigil.net`, allow-list ``url_fetch_allow``): a webhook must not
be a way to make vigil POST into its own network. The check runs when a webhook is saved and
again before every delivery, and the request goes to the address that was checked, so a DNS
answer that changes in between (rebinding) cannot redirect it.
"""

from __future__ import annotations

from vigil.net import IPNetwork, PinnedUrl, UnresolvedHost, UrlRefused, pin_url


class WebhookUrlRefused(ValueError):
    """A webhook URL vigil will not send to."""


class UnresolvableHost(WebhookUrlRefused):
    """The host did not resolve: maybe for good, maybe a DNS hiccup worth retrying."""


def check_url(url: str, allow: list[IPNetwork]) -> PinnedUrl:
    """The pinned target for ``url``, or :class:`WebhookUrlRefused` saying why not."""
    try:
        return pin_url(url, allow)
    except UnresolvedHost as exc:
        raise UnresolvableHost(str(exc)) from None
    except UrlRefused as exc:
        raise WebhookUrlRefused(str(exc)) from None
