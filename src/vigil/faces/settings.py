"""Settings of face search, on top of :class:`vigil.config.Settings` (same ``VIGIL_*``
environment, same file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from vigil.config import Settings


class FacesSettings(Settings):
    faces_detector: Literal["dlib", "onnx"] = Field(
        default="dlib",
        description="dlib's HOG detector (ships with vigil's `faces` extra) or a user-supplied "
        "ONNX detector (`faces_detector_onnx`).",
    )
    faces_detector_onnx: Path | None = Field(
        default=None, description="A user-supplied ONNX face detector (see docs/faces.md)."
    )
    faces_detector_upsample: int = Field(
        default=1,
        ge=0,
        le=2,
        description="dlib HOG: times the image is doubled before detection (finds faces down "
        "to ~40 px at 1; each step costs ~4x).",
    )
    faces_embedder: Literal["dlib", "onnx"] = Field(
        default="dlib",
        description="dlib's ResNet (128-d, ships with the `faces` extra) or a user-supplied "
        "ArcFace-style ONNX embedder (`faces_embedder_onnx`, 112x112 aligned input).",
    )
    faces_embedder_onnx: Path | None = Field(
        default=None, description="A user-supplied ONNX face embedder (see docs/faces.md)."
    )
    faces_threshold: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity a candidate needs; default: the model card's operating "
        "threshold (`vigil faces eval` measures and writes it). Required for an ONNX embedder "
        "without a card.",
    )
    faces_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts face templates and crops at rest (urlsafe base64 of 32 "
        "bytes: `vigil faces keygen`). Enrollment and search refuse to run without it.",
    )
    faces_min_face_pixels: int = Field(
        default=80, ge=16, description="Enrollment: the face box's shorter side, at least."
    )
    faces_min_sharpness: float = Field(
        # LFW at 25: 2.5 % of photos refused, 87 % of sigma-1.5 blurred copies (where matching
        # starts to suffer); at 60, 31 % of good photos were refused.
        default=25.0,
        ge=0.0,
        description="Enrollment: variance of the Laplacian of the face crop resized to 112 px.",
    )
    faces_min_brightness: float = Field(
        default=40.0, ge=0.0, le=255.0, description="Enrollment: mean grey level of the face."
    )
    faces_candidates: int = Field(
        default=10, ge=1, le=100, description="Candidates listed per probe face, at most."
    )
    faces_index: Literal["auto", "exact", "hnsw"] = Field(
        default="auto",
        description="Exact search, approximate (faiss HNSW), or exact up to "
        "`faces_exact_max` templates and HNSW above.",
    )
    faces_exact_max: int = Field(default=50_000, ge=0)
    faces_video_fps: float = Field(
        default=2.0, gt=0, le=30, description="Frames sampled per second of a video probe."
    )
    faces_housekeeping_minutes: float = Field(
        default=60.0,
        ge=0,
        description="How often `vigil serve` expires watchlists past their expiry (purging "
        "their templates) and purges probe media past its retention; 0: only `vigil faces "
        "purge` and search attempts do.",
    )
    faces_probe_dir: Path | None = Field(
        default=None,
        description="Where probe media is kept, sealed (default: VIGIL_HOME/faces/probes). With "
        "`faces_queue` and workers on other machines: a folder they all share, mounted at the "
        "same path everywhere (searches record the path of their media).",
    )
    faces_queue: bool = Field(
        default=False,
        description="`POST /v1/faces/searches` only checks and stores the request and queues the "
        "search (202) for `vigil worker --role faces` instead of searching inside the request.",
    )
    faces_probe_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="Probe media (uploaded images and videos of a search) is purged after this "
        "long; 0 keeps none past the search.",
    )
