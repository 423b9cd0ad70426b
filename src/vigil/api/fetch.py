"""Fetch media by URL for HMA's ``GET /h/hash?url=`` without opening a door into our network.

Only http(s); every address the host resolves to must be public (or inside
``url_fetch_allow``); the connection goes to the address that was checked, so a DNS answer that
changes between check and connect (rebinding) cannot redirect it; each redirect is checked the
same way; the body is capped at ``max_upload_bytes`` and the whole fetch at a deadline.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from vigil.api.errors import ApiError
from vigil.api.settings import ApiSettings
from vigil.api.uploads import too_large
from vigil.net import UnresolvedHost, all_allowed, resolve_async

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def refused(detail: str) -> ApiError:
    return ApiError(400, "url_refused", detail)


async def _pinned_request(url: str, settings: ApiSettings) -> tuple[httpx.URL, dict[str, str], str]:
    """The URL to connect to (host replaced by a checked address) and its Host/SNI name."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise refused("only http and https URLs can be fetched")
    if not parts.hostname:
        raise refused("the URL has no host")
    if parts.username or parts.password:
        raise refused("URLs with credentials are not fetched")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise refused("the URL has an invalid port") from None
    try:
        addresses = await resolve_async(parts.hostname, port)
    except UnresolvedHost as exc:
        raise refused(str(exc)) from None
    if not all_allowed(addresses, settings.url_fetch_allow):
        raise refused(f"{parts.hostname!r} resolves to a non-public address")
    target = httpx.URL(url).copy_with(host=str(addresses[0]))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return target, {"Host": host_header}, parts.hostname


async def _download(response: httpx.Response, limit: int) -> Path:
    fd, name = tempfile.mkstemp(prefix="vigil-fetch-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in response.aiter_bytes():
                if out.tell() + len(chunk) > limit:
                    raise too_large(limit)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def _fetch(url: str, settings: ApiSettings, client: httpx.AsyncClient) -> Path:
    for _ in range(settings.url_fetch_max_redirects + 1):
        target, headers, sni_host = await _pinned_request(url, settings)
        request = client.build_request(
            "GET", target, headers=headers, extensions={"sni_hostname": sni_host}
        )
        response = await client.send(request, stream=True)
        try:
            if response.status_code in _REDIRECTS and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            if response.status_code != 200:
                raise ApiError(502, "fetch_failed", f"the URL answered HTTP {response.status_code}")
            return await _download(response, settings.max_upload_bytes)
        finally:
            await response.aclose()
    raise refused(f"more than {settings.url_fetch_max_redirects} redirects")


@asynccontextmanager
async def fetched(url: str, settings: ApiSettings) -> AsyncIterator[Path]:
    """The media at ``url`` in a temporary file, deleted on exit."""
    timeout = settings.url_fetch_timeout
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=timeout, trust_env=False
    ) as client:
        try:
            path = await asyncio.wait_for(_fetch(url, settings, client), timeout)
        except TimeoutError:
            raise ApiError(504, "fetch_timeout", f"the URL took over {timeout}s") from None
        except httpx.HTTPError as exc:
            raise ApiError(502, "fetch_failed", f"cannot fetch the URL: {exc}") from None
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
