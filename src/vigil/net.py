"""Which network addresses vigil may connect to on a user's behalf (SSRF policy), and the one
guarded download that fetches media by URL.

Every feature that dials a URL someone else gave us (``GET /h/hash?url=``, webhooks, live
streams, post attachments) resolves the host and checks each address here, then connects to the
address that was checked, so that a DNS answer that changes in between (rebinding) cannot
redirect it. Private, loopback, link-local, CGNAT, reserved and multicast space is refused
unless an allow-list network covers it.

:func:`download` is that policy applied to an HTTP GET: only http(s), no credentials in the
URL, every hop (redirects included) pinned to a checked address with the original Host header
and TLS server name, the body capped in bytes and the whole download in time. It is
synchronous (the API runs it in a worker thread) so that the post scanner's threads can use it
as they are.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


class UnresolvedHost(ValueError):
    """The host name did not resolve (for good, or a DNS hiccup worth retrying)."""


def canonical(address: IPAddress) -> IPAddress:
    """``::ffff:127.0.0.1`` is ``127.0.0.1``: mapped addresses are judged as what they reach."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_allowed(address: IPAddress, allow: Iterable[IPNetwork]) -> bool:
    address = canonical(address)
    if any(address in network for network in allow):
        return True
    # is_global is false for loopback, private, link-local, shared (CGNAT), reserved and
    # unspecified space; some multicast ranges count as global, so multicast is refused apart.
    return address.is_global and not address.is_multicast


def all_allowed(addresses: list[IPAddress], allow: Iterable[IPNetwork]) -> bool:
    """True when there is at least one address and every one is allowed: one forbidden answer
    refuses the host, because a client would otherwise pick among the answers at random."""
    networks = list(allow)
    return bool(addresses) and all(address_allowed(a, networks) for a in addresses)


def _addresses(infos: list[tuple[Any, ...]]) -> list[IPAddress]:
    # Scope ids ("fe80::1%eth0") are dropped before parsing; the address itself is what counts.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def resolve(host: str, port: int, kind: int = socket.SOCK_STREAM) -> list[IPAddress]:
    """Every address ``host`` resolves to, or :class:`UnresolvedHost`."""
    try:
        infos = socket.getaddrinfo(host, port, type=kind)
    except socket.gaierror as exc:
        raise UnresolvedHost(f"cannot resolve {host!r}: {exc.strerror}") from None
    return _addresses(infos)


def free_local_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nobody holds right now (TCP or, with ``SOCK_DGRAM``, UDP): for a local
    player and listener that must agree on a port before either starts."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class UrlRefused(ValueError):
    """A URL vigil will not connect to, with the reason."""


@dataclass(frozen=True)
class PinnedUrl:
    """Where to connect (the host replaced by a checked address) and the names to present."""

    url: httpx.URL
    host_header: str
    sni_hostname: str


def pin_url(url: str, allow: Iterable[IPNetwork]) -> PinnedUrl:
    """``url`` pinned to a checked address; :class:`UrlRefused` saying why not, or
    :class:`UnresolvedHost` when the host does not resolve (perhaps only for now)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("only http and https URLs are allowed")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    if parts.username or parts.password:
        raise UrlRefused("credentials do not belong in the URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UrlRefused("the URL has an invalid port") from None
    addresses = resolve(parts.hostname, port)
    if not all_allowed(addresses, allow):
        raise UrlRefused(f"{parts.hostname!r} resolves to a non-public address")
    pinned = httpx.URL(url).copy_with(host=str(addresses[0]))
    return PinnedUrl(pinned, parts.netloc.rsplit("@", 1)[-1], parts.hostname)


class DownloadError(Exception):
    """A download that failed after its URL was allowed: ``too_large``, ``timeout`` or
    ``failed`` (an HTTP error status, a broken connection)."""

    def __init__(self, reason: Literal["too_large", "timeout", "failed"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def download(
    url: str,
    *,
    allow: Iterable[IPNetwork],
    max_bytes: int,
    timeout: float,
    max_redirects: int = 3,
) -> Path:
    """GET ``url`` into a new temporary file, which the caller deletes. :class:`UrlRefused` or
    :class:`UnresolvedHost` for a URL (or redirect) the policy refuses, :class:`DownloadError`
    for the rest."""
    networks = list(allow)
    deadline = time.monotonic() + timeout
    with httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False) as client:
        for _ in range(max_redirects + 1):
            target = pin_url(url, networks)
            try:
                response = _get(client, target, deadline)
                try:
                    if response.status_code not in _REDIRECTS or "location" not in response.headers:
                        return _save(response, max_bytes, deadline)
                    url = urljoin(url, response.headers["location"])
                finally:
                    response.close()
            except httpx.TimeoutException:
                raise DownloadError("timeout", f"the URL took over {timeout}s") from None
            except httpx.HTTPError as exc:
                raise DownloadError("failed", f"cannot fetch the URL: {exc}") from None
    raise UrlRefused(f"more than {max_redirects} redirects")


def _get(client: httpx.Client, target: PinnedUrl, deadline: float) -> httpx.Response:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise httpx.TimeoutException("deadline passed")
    request = client.build_request(
        "GET",
        target.url,
        headers={"Host": target.host_header},
        extensions={"sni_hostname": target.sni_hostname},
        timeout=remaining,
    )
    return client.send(request, stream=True)


def _save(response: httpx.Response, max_bytes: int, deadline: float) -> Path:
    if response.status_code != 200:
        raise DownloadError("failed", f"the URL answered HTTP {response.status_code}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise DownloadError("too_large", f"the body is over the {max_bytes}-byte limit")
    fd, name = tempfile.mkstemp(prefix="vigil-fetch-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in response.iter_bytes():
                if out.tell() + len(chunk) > max_bytes:
                    raise DownloadError("too_large", f"the body is over the {max_bytes}-byte limit")
                if time.monotonic() > deadline:
                    raise httpx.TimeoutException("deadline passed")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
