"""HTTP(S) for FFmpeg, fetched by vigil so that the URL policy sees every request.

An HLS playlist names further URLs (segments, variant playlists, reloads) and HTTP answers can
redirect; FFmpeg's own HTTP client would follow any of them into an internal network. Given as
``io_open`` to :func:`av.open`, :class:`HttpOpener` handles every URL the demuxer opens: each
one, and each redirect, passes :meth:`StreamUrlPolicy.check` and is fetched from the address
that was checked (Host header and TLS server name kept), as :mod:`vigil.net` does for webhooks.
Bodies stream: a progressive live stream (MPEG-TS or FLV over HTTP) is never read whole.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from vigil.live.urls import StreamUrlPolicy, StreamUrlRefused, pinned_url

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_AVIO_FLAG_WRITE = 2


class Stopped(Exception):
    """The reader was asked to stop while FFmpeg was reading."""


class HttpBody:
    """A response body as the read-only file object PyAV's custom I/O wants."""

    def __init__(self, response: httpx.Response, stopped: threading.Event) -> None:
        self._response = response
        self._chunks: Iterator[bytes] = response.iter_raw()
        self._buffer = b""
        self._stopped = stopped

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if self._stopped.is_set():
                raise Stopped
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        self._response.close()


class HttpOpener:
    """``io_open`` for :func:`av.open`. The first URL (the one the stream was opened with)
    raises on an HTTP error, so that a stream that is not there fails clearly; later ones
    (segments, reloads) read as empty, which FFmpeg's HLS demuxer skips like a missing segment
    (they are counted in :attr:`errors`). A refused URL always raises."""

    def __init__(
        self,
        policy: StreamUrlPolicy,
        *,
        timeout: float,
        stopped: threading.Event,
        max_redirects: int = 3,
    ) -> None:
        self._policy = policy
        self._stopped = stopped
        self._max_redirects = max_redirects
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)
        self._opened = 0
        self.errors = 0

    def __call__(self, url: str, flags: int, options: dict[str, Any]) -> HttpBody | _Empty:
        if flags & _AVIO_FLAG_WRITE:
            raise PermissionError("a stream is read, never written")
        if self._stopped.is_set():
            raise Stopped
        first = self._opened == 0
        self._opened += 1
        response = self._get(url)
        if response.status_code == 200:
            return HttpBody(response, self._stopped)
        response.close()
        if first:
            raise OSError(f"the stream URL answered HTTP {response.status_code}")
        self.errors += 1
        return _Empty()

    def _get(self, url: str) -> httpx.Response:
        for _ in range(self._max_redirects + 1):
            target = self._policy.check(url)
            if target.scheme not in ("http", "https"):
                raise StreamUrlRefused(f"an HTTP stream cannot lead to a {target.scheme} URL")
            parts = urlsplit(url)
            request = self._client.build_request(
                "GET",
                pinned_url(url, target.address),
                headers={"Host": parts.netloc.rsplit("@", 1)[-1]},
                extensions={"sni_hostname": target.host},
            )
            response = self._client.send(request, stream=True)
            if response.status_code not in _REDIRECTS or "location" not in response.headers:
                return response
            response.close()
            url = urljoin(url, response.headers["location"])
        raise StreamUrlRefused(f"more than {self._max_redirects} redirects")

    def close(self) -> None:
        self._client.close()


class _Empty:
    def read(self, size: int) -> bytes:
        return b""

    def close(self) -> None:
        pass
