"""Settings of the public reporting service, on top of :class:`vigil.config.Settings` (same
``VIGIL_*`` environment, same file)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from vigil.config import Settings


class ReportSettings(Settings):
    report_rate_limit: int = Field(
        default=5, ge=1, description="Reports one client may send per window."
    )
    report_rate_window_seconds: float = Field(default=3600.0, gt=0)
    report_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, description="The largest upload a report may carry."
    )
    report_max_description_chars: int = Field(default=5000, ge=1)
    report_severity: int = Field(
        default=4, ge=0, le=10, description="Severity of a report that matches no bank."
    )
    report_client_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for client addresses (rate limiting); default: a random key kept "
        "in VIGIL_HOME/secrets. Replicas behind one balancer must share it.",
    )
