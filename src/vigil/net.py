"""Which network addresses vigil may connect to on a user's behalf (SSRF policy).

Every feature that dials a URL someone else gave us (``GET /h/hash?url=``, webhooks, live
streams) resolves the host and checks each address here, then connects to the address that was
checked, so that a DNS answer that changes in between (rebinding) cannot redirect it. Private,
loopback, link-local, CGNAT, reserved and multicast space is refused unless an allow-list
network covers it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

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


async def resolve_async(host: str, port: int) -> list[IPAddress]:
    """:func:`resolve` without blocking the event loop."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnresolvedHost(f"cannot resolve {host!r}: {exc.strerror}") from None
    return _addresses(infos)


def free_local_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nobody holds right now (TCP or, with ``SOCK_DGRAM``, UDP): for a local
    player and listener that must agree on a port before either starts."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
