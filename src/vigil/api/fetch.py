"""Fetch media by URL for HMA's ``GET /h/hash?url=`` without opening a door into our network.

The download is :func:`vigil.net.download` (only http(s); every address the host resolves to
must be public or inside ``url_fetch_allow``; each hop pinned to the checked address; the body
capped at ``max_upload_bytes`` and the whole fetch at ``url_fetch_timeout``), run in a worker
thread; its failures become the API's errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from vigil.api.errors import ApiError
from vigil.api.settings import ApiSettings
from vigil.api.uploads import too_large
from vigil.net import DownloadError, UnresolvedHost, UrlRefused, download


def _refused(detail: str) -> ApiError:
    return ApiError(400, "url_refused", detail)


def _api_error(error: DownloadError, settings: ApiSettings) -> ApiError:
    if error.reason == "too_large":
        return too_large(settings.max_upload_bytes)
    if error.reason == "timeout":
        return ApiError(504, "fetch_timeout", str(error))
    return ApiError(502, "fetch_failed", str(error))


@asynccontextmanager
async def fetched(url: str, settings: ApiSettings) -> AsyncIterator[Path]:
    """The media at ``url`` in a temporary file, deleted on exit."""
    try:
        path = await asyncio.to_thread(
            download,
            url,
            allow=settings.url_fetch_allow,
            max_bytes=settings.max_upload_bytes,
            timeout=settings.url_fetch_timeout,
            max_redirects=settings.url_fetch_max_redirects,
        )
    except (UrlRefused, UnresolvedHost) as exc:
        raise _refused(str(exc)) from None
    except DownloadError as exc:
        raise _api_error(exc, settings) from None
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
