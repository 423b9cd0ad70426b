"""Content named by a message or a record: a file under a folder vigil was given, or a URL
fetched under the SSRF policy. Both refuse with :class:`ContentRefused` and a reason."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePath

from vigil.net import DownloadError, IPNetwork, UnresolvedHost, UrlRefused, download


class ContentRefused(Exception):
    """Content vigil will not open here, with the reason."""


def file_inside(base_dir: Path | None, raw: str, folder: str = "the folder") -> Path:
    """``raw``, a relative path, as a file inside ``base_dir`` (already resolved): an absolute
    path, a ``..`` step or a symlink that resolves outside it is refused; without ``base_dir``
    no local path is read at all."""
    if base_dir is None:
        raise ContentRefused(f"local paths are not read here (no {folder.removeprefix('the ')})")
    relative = PurePath(raw)
    if relative.is_absolute():
        raise ContentRefused(f"{raw!r} is an absolute path: only paths inside {folder} are read")
    if ".." in relative.parts:
        raise ContentRefused(f"{raw!r} leaves {folder}")
    try:
        path = (base_dir / relative).resolve()
        inside = path.is_relative_to(base_dir)
        is_file = inside and path.is_file()
    except (OSError, ValueError) as exc:  # a NUL byte, a loop of links
        raise ContentRefused(f"{raw!r} cannot be opened: {exc}") from None
    if not inside:
        raise ContentRefused(f"{raw!r} is a link that leads out of {folder}")
    if not is_file:
        raise ContentRefused(f"{raw!r} is not a file in {folder}")
    return path


@contextmanager
def fetched(
    url: str, *, allow: Sequence[IPNetwork], max_bytes: int, timeout: float
) -> Iterator[Path]:
    """``url`` downloaded into a temporary file, deleted afterwards. A URL the policy refuses
    is :class:`ContentRefused`; a download that fails is :class:`vigil.net.DownloadError`."""
    try:
        path = download(url, allow=allow, max_bytes=max_bytes, timeout=timeout)
    except (UrlRefused, UnresolvedHost) as exc:
        raise ContentRefused(str(exc)) from None
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


__all__ = ["ContentRefused", "DownloadError", "fetched", "file_inside"]
