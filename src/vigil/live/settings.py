"""Settings of live-stream detection, on top of :class:`vigil.config.Settings` (same ``VIGIL_*``
environment, same file)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from pydantic import Field

from vigil.config import Settings
from vigil.live.fusion import DUTY, FusionConfig, Level
from vigil.live.session import LivePolicy

DEFAULT_SOURCES = (
    "gunshot",
    "weapon",
    "ego_motion",
    "hud",
    "gametext",
    "metadata",
    "known_content",
)


class LiveSettings(Settings):
    live_fps: float = Field(
        default=2.0, gt=0, le=30, description="Video frames sampled per second."
    )
    live_max_side: int = Field(
        default=640, ge=64, le=4096, description="Sampled frames are scaled to this longer side."
    )
    live_max_streams: int = Field(
        default=16, ge=1, le=1000, description="Streams watched at once (per live worker)."
    )
    live_workers: bool = Field(
        default=False,
        description="Streams are watched by `vigil worker --role live` processes, which share "
        "them under leases; serve only records requests and shows what the workers report. "
        "Off: serve watches them itself.",
    )
    live_lease_seconds: float = Field(
        default=10.0,
        ge=2.0,
        le=600.0,
        description="How long a live worker holds a stream without renewing it: a worker that "
        "dies loses its streams to another within this plus one renewal interval (a fifth of "
        "it). Workers renew, report status and claim streams every fifth of it.",
    )
    live_buffer_seconds: float = Field(
        default=45.0, gt=0, description="Packets kept for evidence clips (covers the pre-roll)."
    )
    live_decode: str = Field(
        default="nonref",
        description="Which frames are decoded: nonref (skip frames nothing refers to, e.g. "
        "B-frames: 35 % less decoding at 720p30 and still a frame within 1/30 s of each 2 fps "
        "sample), all, or keyframes (cheapest; latency grows with the keyframe interval).",
    )
    live_weapon_every: int = Field(
        default=2,
        ge=1,
        le=30,
        description="The weapon head looks at every Nth sampled frame. 2 (1 fps at the default "
        "2 fps) halves the heaviest source's CPU; the fusion takes one reading per second "
        "anyway, so the delay grows by at most half a second.",
    )
    live_model_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Threads per backbone inference. One spends the cores on more streams: two "
        "threads cost 2.2x the CPU of one for 1.5x the speed (bench/RESULTS.md).",
    )
    live_switch_interval_ms: float = Field(
        default=1.0,
        ge=0.1,
        le=100.0,
        description="How long a thread may hold Python's GIL while another waits for it, set "
        "for the whole process when its first stream starts (Python's default is 5). Reader "
        "threads take it back after every call into FFmpeg: at 1 ms, 10 720p streams kept up "
        "in one process where at 5 they fell behind (bench/RESULTS.md).",
    )
    live_reconnect_max_seconds: float = Field(
        default=120.0, ge=0, description="How long a dropped stream is retried before it ends."
    )
    live_allow_files: bool = Field(
        default=False,
        description="Accept file paths / file: URLs as streams (played as if live). Off for the "
        "API by default: a client must not read the server's files.",
    )
    live_url_allow: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="Non-public networks streams may be pulled from (e.g. an internal relay).",
    )
    live_url_deny_hosts: list[str] = Field(
        default_factory=list, description="Host names never pulled from, whatever they resolve to."
    )
    live_sources: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SOURCES),
        description="Evidence sources per stream (names from the model cards).",
    )
    live_onnx_models: Path | None = Field(
        default=None, description="A JSON file listing user-supplied ONNX classifiers to add."
    )
    live_drift: float = Field(
        default=0.2, ge=0, description="Evidence each source's CUSUM forgets per second."
    )
    live_duty: dict[str, float] = Field(
        default_factory=lambda: dict(DUTY),
        description="Fraction of an attack's seconds in which each intermittent cue shows "
        '(mixture; JSON, e.g. {"gunshot": 0.3}; {} turns the mixture off).',
    )
    live_source_cap: float = Field(
        default=3.0, gt=0, description="The most one attack-side source adds to the statistic."
    )
    live_watch: float = 2.0
    live_alert: float = 5.0
    live_critical: float = 12.0
    live_pre_roll_seconds: float = Field(default=10.0, ge=0)
    live_fingerprint_every_seconds: float = Field(default=15.0, gt=0)
    live_incident_bank: str = "live-incidents"
    live_match_incidents: bool = Field(
        default=True,
        description="Frames matching another stream's incident fingerprints count as known "
        "content (a re-stream of an attack). The evaluation turns this off: its synthetic "
        "streams share background footage.",
    )
    live_auto_cut_at: Level | None = Field(
        default=None,
        description="Queue a stream cut with no human decision at this level (e.g. critical). "
        "Off by default: a reviewer decides.",
    )

    def fusion(self) -> FusionConfig:
        return FusionConfig(
            drift=self.live_drift,
            cap=self.live_source_cap,
            duty=dict(self.live_duty),
            watch=self.live_watch,
            alert=self.live_alert,
            critical=self.live_critical,
        )

    def policy(self) -> LivePolicy:
        return LivePolicy(
            auto_cut_at=self.live_auto_cut_at,
            pre_roll_seconds=self.live_pre_roll_seconds,
            fingerprint_every_seconds=self.live_fingerprint_every_seconds,
            incident_bank=self.live_incident_bank,
        )
