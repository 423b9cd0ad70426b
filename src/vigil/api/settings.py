"""Settings only the HTTP API reads, on top of :class:`vigil.config.Settings` (same ``VIGIL_*``
environment, same file)."""

from __future__ import annotations

from pydantic import Field

from vigil.config import Settings


class ApiSettings(Settings):
    url_fetch_timeout: float = Field(
        default=30.0, description="Seconds a URL fetch may take in all, redirects included."
    )
    url_fetch_max_redirects: int = 3
