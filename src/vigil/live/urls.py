"""Which stream URLs vigil opens, and how: the SSRF guard for live ingest.

Three ways to get a stream:

* **pull** — vigil connects out: ``rtmp``, ``rtmps``, ``rtsp``, ``srt``, ``http``/``https``
  (HLS ``.m3u8`` or a progressive stream). Every address the host resolves to must be allowed by
  :mod:`vigil.net` (public, or inside ``allow_networks``, and never inside ``deny_networks``),
  and the URL handed to FFmpeg names the checked address, so a DNS answer that changes between
  check and connect (rebinding) cannot redirect it. HTTP(S) is fetched by vigil itself
  (:mod:`vigil.live.ingest.httpio`), which checks every playlist, segment and redirect the same
  way: an HLS playlist cannot point FFmpeg at an internal address.
* **listen** — someone pushes to vigil. The host is the unspecified address (``0.0.0.0`` or
  ``[::]``) for ``rtmp``/``rtsp``/``srt``; ``udp`` always listens (UDP input is receive-only):
  its host is ``@``/empty/unspecified (all local addresses), an address of this machine (bind
  to it only) or a multicast group (joined, when ``allow_multicast``). The port must lie in
  ``listen_ports``. A loopback host on ``rtmp``/``rtsp``/``srt`` is a pull from a local relay,
  which ``allow_networks`` must allow like any private address.
* **file** — a local file played as if live (``file:///path`` or a bare path), only when
  ``allow_files``, and only under ``file_roots`` when those are given. FFmpeg is restricted to
  the file protocol and to plain media demuxers, so a playlist or concat file cannot reach
  further.

Credentials never leave this module in clear: :attr:`StreamTarget.redacted` (and ``repr``) hide
user info, secret-looking query values and the stream key of RTMP URLs; log and status lines
use it, and :func:`scrub` takes the URL out of error messages.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import av

from vigil.net import IPAddress, IPNetwork, UnresolvedHost, address_allowed, canonical, resolve

Mode = Literal["pull", "listen", "file"]
PULL_SCHEMES = frozenset({"rtmp", "rtmps", "rtsp", "srt", "http", "https"})
LISTEN_SCHEMES = frozenset({"rtmp", "rtsp", "srt", "udp"})
SCHEMES = PULL_SCHEMES | LISTEN_SCHEMES | {"file"}
_DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443, "rtsp": 554, "http": 80, "https": 443}
#: UDP URL options FFmpeg reads from the query that cannot make vigil send or bind elsewhere.
_UDP_OPTIONS = frozenset(
    {"fifo_size", "overrun_nonfatal", "buffer_size", "sources", "block", "reuse", "pkt_size"}
)
_SRT_OPTIONS = frozenset({"streamid", "passphrase", "pbkeylen", "latency", "mode"})
_OPTIONAL_PROTOCOLS = frozenset({"srt"})
_SECRET_WORDS = ("pass", "pwd", "token", "key", "secret", "auth", "sig", "streamid", "cred")
_HIDDEN = "***"
_ANY_ADDRESS = ("0.0.0.0", "::")
#: Demuxers a file may be read with: plain media only, no playlists (hls, concat) that open
#: further URLs.
FILE_FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,flv,avi,mpeg,h264,hevc,aac,mp3,wav,ogg,ivf,"
    "m4v,mpegvideo,asf,nut"
)


class StreamUrlRefused(ValueError):
    """A stream URL vigil will not open; ``reason`` says why (never holds credentials)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StreamTarget:
    """A checked stream URL: what to hand FFmpeg, and what to show people."""

    scheme: str
    mode: Mode
    #: The URL FFmpeg opens: host replaced by the checked address for pulls; credentials kept.
    url: str = field(repr=False)
    #: The URL with credentials and stream keys hidden: the only form to log or show.
    redacted: str
    #: The host name as given (HTTP Host header, TLS server name, RTMP tcUrl).
    host: str = ""
    #: For pulls: the checked address to connect to (http(s) requests are pinned to it by
    #: :mod:`vigil.live.ingest.httpio`, other protocols already name it in ``url``).
    address: str = ""
    #: For udp: the local address to bind ("" = all).
    local_address: str = ""
    path: Path | None = None
    multicast: bool = False

    def __str__(self) -> str:
        return self.redacted


def redact(url: str) -> str:
    """``url`` fit for a log line: user info, secret-looking query values and RTMP stream keys
    replaced by ``***``. Unparseable input is hidden whole."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        userinfo, at, hostport = netloc.rpartition("@")
        if userinfo:
            netloc = f"{_HIDDEN}{at}{hostport}"
        query = "&".join(
            f"{quote(key)}={_HIDDEN if _secret(key) else quote(value, safe='/:@,.')}"
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        )
        path = parts.path
        if parts.scheme in ("rtmp", "rtmps") and path.count("/") >= 2:
            # rtmp://host/app/KEY: the last segment is the publish/play key.
            path = path.rsplit("/", 1)[0] + "/" + _HIDDEN
        return urlunsplit((parts.scheme, netloc, path, query, ""))
    except ValueError:
        return _HIDDEN


def scrub(message: str, *urls: str) -> str:
    """``message`` (e.g. an FFmpeg error, which quotes the URL it opened) with each URL
    replaced by its redacted form."""
    for url in sorted(filter(None, urls), key=len, reverse=True):
        message = message.replace(url, redact(url))
    return message


def _secret(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)


def _matches(host: str, names: Iterable[str]) -> bool:
    """``host`` is one of ``names`` or a subdomain of one."""
    host = host.lower().rstrip(".")
    return any(host == n or host.endswith("." + n) for n in (n.lower().strip(".") for n in names))


@cache
def protocol_available(scheme: str) -> bool:
    """Whether PyAV's FFmpeg build has ``scheme``. Only optional protocols are probed (PyPI
    wheels of av 18 have no libsrt); ``srt://`` has no port, so a build that has it fails on
    the argument before any I/O."""
    if scheme not in _OPTIONAL_PROTOCOLS:
        return True
    try:
        av.open(f"{scheme}://", timeout=0.5).close()
    except av.ProtocolNotFoundError:
        return False
    except (av.FFmpegError, OSError):
        pass
    return True


@dataclass(frozen=True)
class StreamUrlPolicy:
    """What may be opened. The defaults allow public pulls and listening on unprivileged
    ports, and refuse files."""

    #: Non-public networks pulls may reach anyway (an internal relay, a lab camera).
    allow_networks: tuple[IPNetwork, ...] = ()
    #: Networks never reached, public or not.
    deny_networks: tuple[IPNetwork, ...] = ()
    #: When not empty, pulls only from these hosts (and their subdomains).
    allow_hosts: tuple[str, ...] = ()
    #: Hosts (and their subdomains) never pulled from, whatever they resolve to.
    deny_hosts: tuple[str, ...] = ()
    allow_files: bool = False
    #: When not empty, files only under these folders.
    file_roots: tuple[Path, ...] = ()
    allow_listen: bool = True
    listen_ports: tuple[int, int] = (1024, 65535)
    allow_multicast: bool = True
    schemes: frozenset[str] = SCHEMES

    def check(self, url: str) -> StreamTarget:
        """The target for ``url``, or :class:`StreamUrlRefused` saying why not. Resolves the
        host, so call it again before each reconnect: DNS may have moved."""
        url = url.strip()
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file" or (not scheme and url) or _windows_drive(scheme):
            return self._file(url, scheme)
        if scheme not in SCHEMES:
            raise StreamUrlRefused(
                f"scheme {scheme or '(none)'!r} is not a stream protocol vigil opens "
                f"(one of {', '.join(sorted(SCHEMES))})"
            )
        if scheme not in self.schemes:
            raise StreamUrlRefused(f"{scheme} streams are not allowed here")
        if not protocol_available(scheme):
            raise StreamUrlRefused(
                f"{scheme} is not supported: this PyAV build's FFmpeg has no {scheme} protocol"
            )
        try:
            port = parts.port
        except ValueError:
            raise StreamUrlRefused("the URL has an invalid port") from None
        if parts.fragment:
            raise StreamUrlRefused("stream URLs cannot have a #fragment")
        host = (parts.hostname or "").lower()
        if scheme == "udp" or (scheme in LISTEN_SCHEMES and host in _ANY_ADDRESS):
            return self._listen(url, scheme, host, port)
        return self._pull(url, scheme, host, port)

    # -- pull ------------------------------------------------------------------------------

    def _pull(self, url: str, scheme: str, host: str, port: int | None) -> StreamTarget:
        if not host:
            raise StreamUrlRefused("the URL has no host")
        if self.allow_hosts and not _matches(host, self.allow_hosts):
            raise StreamUrlRefused(f"{host!r} is not on the allowed host list")
        if _matches(host, self.deny_hosts):
            raise StreamUrlRefused(f"{host!r} is on the denied host list")
        if scheme == "srt":
            _check_srt_query(urlsplit(url).query, "caller")
        port = port or _DEFAULT_PORTS.get(scheme, 0)
        if not port:
            raise StreamUrlRefused(f"{scheme} URLs need a port")
        address = self.pull_address(host, port)
        # HLS resolves segment URLs against the playlist's: FFmpeg must see the name, and
        # vigil's HTTP opener pins each request instead.
        opened = url if scheme in ("http", "https") else pinned_url(url, address)
        return StreamTarget(scheme, "pull", opened, redact(url), host=host, address=str(address))

    def pull_address(self, host: str, port: int) -> IPAddress:
        """The address to connect to for ``host``: every answer must be allowed, since a
        client would otherwise pick among them."""
        try:
            addresses = resolve(host, port)
        except UnresolvedHost as exc:
            raise StreamUrlRefused(str(exc)) from None
        if not addresses:
            raise StreamUrlRefused(f"{host!r} resolves to no address")
        for address in addresses:
            if not self.address_allowed(address):
                named = "" if host == str(address) else f"{host!r} resolves to "
                raise StreamUrlRefused(
                    f"{named}{canonical(address)} is an address streams may not reach "
                    "(private, loopback, link-local, multicast or denied)"
                )
        return addresses[0]

    def address_allowed(self, address: IPAddress) -> bool:
        address = canonical(address)
        if any(address in network for network in self.deny_networks):
            return False
        return address_allowed(address, self.allow_networks)

    # -- listen ----------------------------------------------------------------------------

    def _listen(self, url: str, scheme: str, host: str, port: int | None) -> StreamTarget:
        if not self.allow_listen:
            raise StreamUrlRefused("listening for pushed streams is not allowed here")
        low, high = self.listen_ports
        if port is None or not low <= port <= high:
            raise StreamUrlRefused(f"a listening port must be between {low} and {high}")
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise StreamUrlRefused("a listening URL cannot carry credentials")
        multicast, local = False, ""
        if scheme == "udp":
            self._check_udp_query(parts.query)
            multicast, local = self._udp_host(host)
        elif scheme == "srt":
            _check_srt_query(parts.query, "listener")
        return StreamTarget(
            scheme, "listen", url, redact(url), host=host, local_address=local, multicast=multicast
        )

    def _check_udp_query(self, query: str) -> None:
        keys = {key for key, _ in parse_qsl(query, keep_blank_values=True)}
        if keys - _UDP_OPTIONS:
            raise StreamUrlRefused(
                f"udp options not accepted: {sorted(keys - _UDP_OPTIONS)} "
                f"(allowed: {', '.join(sorted(_UDP_OPTIONS))})"
            )

    def _udp_host(self, host: str) -> tuple[bool, str]:
        """(multicast?, local address to bind) for a udp URL's host."""
        if _unspecified(host):
            return False, ""
        try:
            address = canonical(ipaddress.ip_address(host))
        except ValueError:
            raise StreamUrlRefused(
                "a udp URL's host must be @, an address of this machine or a multicast group"
            ) from None
        if address.is_multicast:
            if not self.allow_multicast:
                raise StreamUrlRefused("joining multicast groups is not allowed here")
            if any(address in network for network in self.deny_networks):
                raise StreamUrlRefused(f"multicast group {address} is denied")
            return True, ""
        if not _is_local(address):
            raise StreamUrlRefused(f"{address} is not an address of this machine")
        return False, str(address)

    # -- files -----------------------------------------------------------------------------

    def _file(self, url: str, scheme: str) -> StreamTarget:
        if not self.allow_files:
            raise StreamUrlRefused("files are not accepted as streams here")
        raw = urlsplit(url).path if scheme == "file" else url
        path = Path(raw).expanduser().resolve()
        if self.file_roots and not any(
            path.is_relative_to(root.expanduser().resolve()) for root in self.file_roots
        ):
            raise StreamUrlRefused("the file is outside the allowed folders")
        if not path.is_file():
            raise StreamUrlRefused(f"no such file: {path}")
        return StreamTarget(
            "file", "file", "file:" + str(path), str(path), host="", local_address="", path=path
        )


def _check_srt_query(query: str, mode: str) -> None:
    options = dict(parse_qsl(query, keep_blank_values=True))
    if set(options) - _SRT_OPTIONS:
        raise StreamUrlRefused(f"srt options not accepted: {sorted(set(options) - _SRT_OPTIONS)}")
    if options.get("mode", mode) != mode:
        raise StreamUrlRefused(f"this srt URL must use mode={mode}")


def _unspecified(host: str) -> bool:
    return host in ("", "@", *_ANY_ADDRESS)


def _windows_drive(scheme: str) -> bool:
    return len(scheme) == 1 and scheme.isalpha()


def _is_local(address: IPAddress) -> bool:
    """Whether ``address`` belongs to this machine: only then can a socket bind to it."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


def pinned_url(url: str, address: IPAddress | str) -> str:
    """``url`` with its host replaced by ``address`` (user info and port kept)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else str(address)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, userinfo + host + port, parts.path, parts.query, ""))
