"""Safe access to media files: sniff the kind, refuse bombs and oversize input, decode images.

Every failure is a :class:`MediaError` with a short machine-readable ``reason`` so that a
folder scan can report it per item and carry on.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MediaKind = Literal["image", "video"]
ErrorReason = Literal[
    "empty", "unreadable", "unsupported", "corrupt", "too_large", "bomb", "no_video_stream"
]

_READ_CHUNK = 1 << 20

# Magic numbers of the containers we accept. Anything else is tried with Pillow, then PyAV.
_IMAGE_MAGIC: tuple[bytes, ...] = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF little-endian
    b"MM\x00*",  # TIFF big-endian
)
_VIDEO_MAGIC: tuple[bytes, ...] = (
    b"\x1a\x45\xdf\xa3",  # Matroska / WebM
    b"FLV",
    b"\x00\x00\x01\xba",  # MPEG-PS
)


class MediaError(Exception):
    """Content that cannot be hashed, with the reason it was refused."""

    def __init__(self, reason: ErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason: ErrorReason = reason

    def __str__(self) -> str:
        return f"{self.reason}: {self.args[0]}"


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int = 512 * 1024 * 1024
    max_image_pixels: int = 64_000_000
    max_video_seconds: float = 6 * 3600.0


def _sniff_magic(head: bytes) -> MediaKind | None:
    if any(head.startswith(m) for m in _IMAGE_MAGIC):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "image" if brand in (b"avif", b"heic", b"heix", b"mif1") else "video"
    if any(head.startswith(m) for m in _VIDEO_MAGIC):
        return "video"
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:  # MPEG-TS sync bytes
        return "video"
    return None


@dataclass
class Media:
    """A media file on disk, checked for size and kind before anything decodes it."""

    path: Path
    limits: MediaLimits = field(default_factory=MediaLimits)

    def __post_init__(self) -> None:
        try:
            size = os.stat(self.path).st_size
            with open(self.path, "rb") as handle:
                head = handle.read(512)
        except IsADirectoryError as exc:
            raise MediaError("unreadable", f"{self.path} is a directory") from exc
        except OSError as exc:
            raise MediaError("unreadable", f"cannot read {self.path}: {exc.strerror}") from exc
        if size == 0:
            raise MediaError("empty", f"{self.path} is empty")
        if size > self.limits.max_bytes:
            raise MediaError(
                "too_large", f"{self.path} is {size} bytes, over the {self.limits.max_bytes} limit"
            )
        self.size = size
        self.kind: MediaKind = _sniff_magic(head) or self._probe_kind()

    def _probe_kind(self) -> MediaKind:
        try:
            with Image.open(self.path) as image:
                image.verify()
            return "image"
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            pass
        try:
            with av.open(str(self.path)) as container:
                if container.streams.video:
                    return "video"
        except (av.FFmpegError, OSError, ValueError):
            pass
        raise MediaError("unsupported", f"{self.path} is neither a supported image nor a video")

    @cached_property
    def digests(self) -> dict[str, str]:
        """MD5 and SHA-256 of the bytes, read once in chunks."""
        md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
        with open(self.path, "rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                md5.update(chunk)
                sha256.update(chunk)
        return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}

    def image_rgb(self, draft_size: int | None = 512) -> np.ndarray:
        """Decode to an RGB ``uint8`` array, upright per EXIF.

        ``draft_size`` lets JPEG decode at 1/2, 1/4 or 1/8 scale (no smaller than ``draft_size``
        on the short side): PDQ works on a 64x64 downsample, so full-resolution decoding buys
        nothing and is the main cost of hashing.
        """
        if self.kind != "image":
            raise MediaError("unsupported", f"{self.path} is a video, not an image")
        return decode_image(self.path, self.limits.max_image_pixels, draft_size)

    def check_video(self) -> float:
        """Open the container, check it has a decodable video stream; return its duration (s)."""
        if self.kind != "video":
            raise MediaError("unsupported", f"{self.path} is an image, not a video")
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise MediaError("no_video_stream", f"{self.path} has no video stream")
                stream = container.streams.video[0]
                if stream.codec_context is None or not stream.codec_context.name:
                    raise MediaError("unsupported", f"{self.path}: unsupported video codec")
                width, height = stream.codec_context.width, stream.codec_context.height
                if width * height > self.limits.max_image_pixels:
                    raise MediaError("bomb", f"{self.path}: {width}x{height} frames are too large")
                duration = float(container.duration or 0) / av.time_base
        except av.FFmpegError as exc:
            raise MediaError("corrupt", f"{self.path}: {exc}") from exc
        if duration > self.limits.max_video_seconds:
            raise MediaError(
                "too_large", f"{self.path} lasts {duration:.0f}s, over the configured limit"
            )
        return duration


def decode_image(path: Path, max_pixels: int, draft_size: int | None = 512) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise MediaError(
                        "bomb", f"{path}: {width}x{height} pixels exceeds the {max_pixels} limit"
                    )
                if draft_size and image.format == "JPEG":
                    image.draft("RGB", (draft_size, draft_size))
                image.load()
                upright = ImageOps.exif_transpose(image)
                return np.asarray(upright.convert("RGB"))
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError("bomb", f"{path}: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise MediaError("unsupported", f"{path}: not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError("corrupt", f"{path}: {exc}") from exc
