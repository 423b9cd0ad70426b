"""Configuration from environment variables (``VIGIL_*``) and an optional TOML/.env file.

Precedence, highest first: explicit keyword arguments, environment variables, the file named by
``VIGIL_CONFIG`` (a ``.env``-style file), defaults.
"""

from __future__ import annotations

import os
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_",
        env_file=os.environ.get("VIGIL_CONFIG"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    home: Path = Field(default=Path("vigil-data"), description="Data directory (SQLite, indexes).")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file inside `home`."
    )
    log_level: str = "INFO"
    log_json: bool = Field(default=False, description="Emit logs as JSON lines.")

    # Media safety limits: a decompression bomb or an oversize upload is refused, not decoded.
    max_upload_bytes: int = 512 * 1024 * 1024
    max_image_pixels: int = 64_000_000
    max_video_seconds: float = 6 * 3600.0
    media_queue_dir: Path | None = Field(
        default=None,
        description="The shared folder `vigil worker --role media` reads `path` items from "
        "(relative to it); without it only `url` items are taken.",
    )
    media_fetch_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Longest download of a media queue item's URL."
    )

    # Matching defaults (ANCHORS.md: Meta's recommended PDQ operating point).
    pdq_threshold: int = 31
    pdq_min_quality: int = 50
    vpdq_seconds_per_hash: float = 1.0
    vpdq_query_share: float = 0.8
    vpdq_index_share: float = 0.0
    embedding: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Second matching stage for crops and small rotations: the image embedding "
        "retrieves candidates, ORB keypoints verify them. Needs vigil[embed]; auto turns it on "
        "when torch is installed.",
    )
    # The second stage, measured in bench/robustness.py (results/robustness.md): the embedding
    # only retrieves, so its radius is loose; a match needs a verified geometric fit.
    #: The embedding's nearest entries that are verified, at most (each ~1 ms).
    embedding_candidates: int = Field(default=5, ge=1)
    #: 1 - cosine within which an entry is a candidate at all.
    embedding_candidate_distance: float = 0.4
    #: RANSAC inliers of one similarity transform from the upload's keypoints to the entry's.
    verify_min_inliers: int = Field(default=50, ge=3)
    #: Share of the banked image's area the inliers' bounding box must cover.
    verify_min_coverage: float = Field(default=0.1, ge=0.0, le=1.0)
    #: Median reprojection error of the inliers, in pixels of the 512-pixel working image: a
    #: copy fits within ORB's sub-pixel noise, another shot of the same scene does not.
    verify_max_residual: float = Field(default=1.15, gt=0.0)
    index_refresh_seconds: float = 1.0
    index_compact_after: int = 50_000
    #: How long an id gap (a transaction not yet committed, or rolled back) is waited for.
    index_gap_grace_seconds: float = 60.0

    # Outbound requests: URL fetches (`GET /h/hash?url=`) and webhook deliveries share one
    # address policy (vigil.net): public addresses only, unless a network is allowed here.
    url_fetch_allow: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description=(
            "Networks that URL fetches and webhooks may reach even though they are private, "
            "loopback or otherwise non-public (e.g. an internal media store)."
        ),
    )

    # Action delivery (the webhook outbox, vigil.actions)
    actions_worker: bool = Field(
        default=True, description="Run the delivery worker inside `vigil serve`."
    )
    actions_worker_threads: int = Field(default=2, ge=1, le=64)
    actions_batch_size: int = Field(default=20, ge=1, le=1000)
    #: How long an idle worker sleeps before looking again; an enqueue in the same process wakes
    #: it at once, so this only bounds the delay for actions another process committed.
    actions_poll_seconds: float = Field(default=0.5, gt=0)
    actions_backoff_base_seconds: float = Field(default=2.0, gt=0)
    actions_backoff_max_seconds: float = Field(default=600.0, gt=0)
    actions_max_attempts: int = Field(default=12, ge=1)
    actions_connect_timeout: float = Field(default=5.0, gt=0)
    actions_request_timeout: float = Field(default=15.0, gt=0)
    #: A claimed action is someone else's to retry once this passes (a worker died mid-send).
    #: Longer than a request can take, so a live worker's action is never sent twice at once.
    actions_lease_seconds: float = Field(default=60.0, gt=0)

    # Review queue (vigil.review.priority documents the formula these weigh).
    review_severity_weight: float = Field(default=1.0, ge=0, description="Exponent of severity.")
    review_likelihood_weight: float = Field(
        default=1.0, ge=0, description="Exponent of likelihood."
    )
    review_reach_weight: float = Field(
        default=0.25, ge=0, description="w in 1 + w*log10(1 + reach): how much audience counts."
    )
    review_velocity_weight: float = Field(
        default=0.5,
        ge=0,
        description="v in 1 + v*log10(1 + posts per hour): how much a spreading campaign counts.",
    )
    review_half_life_hours: float = Field(
        default=24.0, gt=0, description="An alert's priority halves every this many hours."
    )
    review_claim_minutes: float = Field(
        default=15.0, gt=0, description="A claim on an alert lapses after this long."
    )

    # API
    bootstrap_admin_token: SecretStr | None = Field(
        default=None,
        description="If set, accepted as an admin API token (for first start and scripting).",
    )

    @classmethod
    def of(cls, settings: Settings) -> Self:
        """``settings`` as this subclass (a capability's settings on top of the shared ones):
        the shared fields come from ``settings``, the subclass's own from the environment."""
        if isinstance(settings, cls):
            return settings
        return cls(**settings.model_dump())

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'vigil.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
