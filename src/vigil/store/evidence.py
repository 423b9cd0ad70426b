"""Evidence files under ``VIGIL_HOME/evidence``, named by their SHA-256 (the same bytes are kept
once), written owner-only: uploads from public reports, clips and keyframes from live streams.
Only the console serves them, to people with ``evidence:view``."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20
# Media types the console may show inline; anything else is only ever offered as a download.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"\x1a\x45\xdf\xa3", 0, "video/webm"),
    (b"ftyp", 4, "video/mp4"),
)
INLINE_TYPES = frozenset(media_type for _, _, media_type in _MAGIC)
FALLBACK_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class StoredFile:
    #: Relative to the evidence root, e.g. ``ab/abcdef...``.
    name: str
    sha256: str
    md5: str
    size: int
    media_type: str


def evidence_root(home: Path) -> Path:
    return home / "evidence"


def sniff_media_type(head: bytes) -> str:
    for magic, offset, media_type in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return media_type
    return FALLBACK_TYPE


def _digests(path: Path) -> tuple[str, str, int, bytes]:
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size, head = 0, b""
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            if not head:
                head = chunk[:64]
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha256.hexdigest(), md5.hexdigest(), size, head


def store(home: Path, source: Path) -> StoredFile:
    """Copy ``source`` into the evidence store (once per content) and describe it."""
    sha256, md5, size, head = _digests(source)
    name = f"{sha256[:2]}/{sha256}"
    target = evidence_root(home) / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Copy under a temporary name and rename: a reader never sees half a file.
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return StoredFile(name, sha256, md5, size, sniff_media_type(head))


def locate(home: Path, name: str) -> Path | None:
    """The stored file called ``name``, or None; never a path outside the store."""
    root = evidence_root(home).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path
