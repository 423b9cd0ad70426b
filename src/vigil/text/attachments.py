"""Image attachments of posts: their text read by OCR (so that it goes through the same
classifiers and lexicon as the post's text: a meme's caption is how propaganda evades text
filters) and the image matched against the hash banks.

Where an image comes from decides what may be read:

* a local ``path`` (a Telegram export) is read only under ``base_dir``, the export's folder:
  an absolute path, a ``..`` step, or a symlink that resolves outside the folder is refused;
  without ``base_dir`` (posts pushed over the API) no local path is read at all;
* a ``url`` is fetched only with ``fetch_urls`` on, through :func:`vigil.net.download` (the SSRF
  policy: public addresses or ``url_allow``, every redirect checked, ``max_bytes`` and
  ``fetch_timeout``), into a temporary file deleted after reading.

Decoding is :class:`vigil.hashing.Media`'s: size, kind and decompression-bomb limits are checked
before any pixel is decoded. Bank matching is :meth:`vigil.hashing.KnownContent.match` (matches
vetoed by a negative bank are left out). Any failure is the finding's ``error``, never an
exception: one broken image must not stop a scan.

**Cost.** OCR takes 0.3-0.5 s an image on one core (:mod:`vigil.ocr`: one engine per process,
one reading at a time), hashing and matching ~20 ms. A post's first ``max_images`` images are
read. :meth:`AttachmentReader.read` blocks for all of it, so a caller with a text path to keep
fast runs it off that path: for the posts that have attachments only, in a worker thread (never
on an event loop), and merges the findings when they come back (a post's verdict from its text
does not wait for its images). The reader is thread-safe, but OCR is serialised per process, so
more than one worker buys only the downloads' and matching's overlap.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vigil.files import ContentRefused, DownloadError, fetched, file_inside
from vigil.hashing import KnownContent, Match, Media, MediaError, MediaLimits
from vigil.net import IPNetwork
from vigil.ocr import read_lines
from vigil.text.posts import Attachment, Post

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttachmentFinding:
    attachment: Attachment
    #: OCR'd lines, one per line of the image ("" when none, or OCR is off).
    text: str
    #: Bank matches (:class:`vigil.hashing.Match`), vetoed ones left out.
    matches: list[Match]
    #: Why the image could not be read; None when it was.
    error: str | None = None


class AttachmentReader:
    def __init__(
        self,
        *,
        known: KnownContent | None,
        base_dir: Path | None,
        fetch_urls: bool = False,
        max_bytes: int = 20 * 1024 * 1024,
        max_pixels: int = MediaLimits().max_image_pixels,
        url_allow: Sequence[IPNetwork] = (),
        fetch_timeout: float = 15.0,
        ocr: bool = True,
        ocr_max_side: int = 960,
        min_confidence: float = 0.6,
        max_images: int = 4,
    ) -> None:
        if max_bytes <= 0 or max_pixels <= 0 or fetch_timeout <= 0 or max_images < 0:
            raise ValueError("size, pixel, time and image limits must be positive")
        self.known = known
        self.base_dir = base_dir.resolve() if base_dir is not None else None
        self.fetch_urls = fetch_urls
        self.limits = MediaLimits(max_bytes=max_bytes, max_image_pixels=max_pixels)
        self.url_allow = list(url_allow)
        self.fetch_timeout = fetch_timeout
        self.ocr = ocr
        self.ocr_max_side = ocr_max_side
        self.min_confidence = min_confidence
        self.max_images = max_images

    def read(self, post: Post) -> list[AttachmentFinding]:
        """One finding per attachment of ``post``, in order."""
        return [
            self.read_one(attachment)
            if number < self.max_images
            else AttachmentFinding(
                attachment, "", [], f"not read: only a post's first {self.max_images} images are"
            )
            for number, attachment in enumerate(post.attachments)
        ]

    def read_one(self, attachment: Attachment) -> AttachmentFinding:
        try:
            with self._local_file(attachment) as path:
                return self._examine(attachment, path)
        except (ContentRefused, DownloadError) as exc:
            log.info("attachment %s not read: %s", attachment.path or attachment.url, exc)
            return AttachmentFinding(attachment, "", [], str(exc))

    @contextmanager
    def _local_file(self, attachment: Attachment) -> Iterator[Path]:
        if attachment.path:
            yield file_inside(self.base_dir, attachment.path, "the export folder")
        elif attachment.url:
            if not self.fetch_urls:
                raise ContentRefused("URL attachments are not fetched (fetch_urls is off)")
            with fetched(
                attachment.url,
                allow=self.url_allow,
                max_bytes=self.limits.max_bytes,
                timeout=self.fetch_timeout,
            ) as path:
                yield path
        else:
            raise ContentRefused("the attachment has neither a path nor a URL")

    def _examine(self, attachment: Attachment, path: Path) -> AttachmentFinding:
        try:
            media = Media(path, self.limits)
            if media.kind != "image":
                raise MediaError("unsupported", f"{path} is a video, not an image")
            rgb = media.image_rgb(draft_size=self.ocr_max_side) if self.ocr else None
        except MediaError as exc:
            # The message names the file read: a temporary one for a download.
            raise ContentRefused(
                str(exc).replace(str(path), attachment.path or attachment.url)
            ) from None
        text = ""
        if rgb is not None:
            text = "\n".join(read_lines(rgb, self.ocr_max_side, self.min_confidence))
        matches = self.known.match(path)[1].matches if self.known is not None else []
        return AttachmentFinding(attachment, text, matches)
