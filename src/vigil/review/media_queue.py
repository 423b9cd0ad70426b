"""The ``media`` queue: uploads a platform wants matched, handled by ``vigil worker --role
media`` as ``POST /v1/scan`` handles one upload (hash, match, raise what each bank says).

A message is one JSON object: the content as ``path`` (relative to ``VIGIL_MEDIA_QUEUE_DIR``, a
folder the platform and the workers share) or ``url`` (fetched under the SSRF policy,
``VIGIL_URL_FETCH_ALLOW``, ``VIGIL_MAX_UPLOAD_BYTES``), and where it was seen: ``platform``,
``content_ref``, ``author_ref``, ``seen_url``, ``reach``. The alert's dedupe key is the content's
SHA-256 with the bank and the sighting, so a redelivered item finds its alert and a bank's
automatic action runs once.

An item that can never succeed (malformed, refused, not media, a decompression bomb) is logged
and dropped; one that may succeed later (a download that timed out, the database away) raises,
so the bus delivers it again and, if it keeps failing, moves it to the dead letters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vigil.bus import Handler, Message
from vigil.config import Settings
from vigil.files import ContentRefused, DownloadError, fetched, file_inside
from vigil.hashing import KnownContent
from vigil.logs import get_logger
from vigil.review.matches import Sighting, alerts_from_match
from vigil.review.policy import ReviewPolicy

log = get_logger(__name__)

QUEUE = "media"
ACTOR = "system:media-worker"


class MediaItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(default="", max_length=1000)
    url: str = Field(default="", max_length=4000)
    platform: str = Field(default="", max_length=64)
    content_ref: str = Field(default="", max_length=500)
    author_ref: str = Field(default="", max_length=256)
    seen_url: str = Field(default="", max_length=4000)
    reach: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> MediaItem:
        if bool(self.path) == bool(self.url):
            raise ValueError("an item names its content by exactly one of path or url")
        return self

    @property
    def sighting(self) -> Sighting:
        return Sighting(self.content_ref, self.platform, self.author_ref, self.seen_url, self.reach)


def media_handler(known: KnownContent, settings: Settings) -> Handler:
    """Handles each item of a batch in turn; see the module docstring for what is retried."""
    policy = ReviewPolicy.of(settings)
    base = settings.media_queue_dir.resolve() if settings.media_queue_dir else None

    def handle(messages: Sequence[Message]) -> None:
        for message in messages:
            try:
                item = MediaItem.model_validate(json.loads(message.data))
                with _content(item, base, settings) as path:
                    _match(known, policy, item, path)
            except (ValueError, ValidationError, ContentRefused, UnicodeDecodeError) as exc:
                log.warning("media.item_dropped", sequence=message.sequence, reason=str(exc))
            except DownloadError as exc:
                if exc.reason == "too_large":
                    log.warning("media.item_dropped", sequence=message.sequence, reason=str(exc))
                else:
                    raise

    return handle


def _content(
    item: MediaItem, base: Path | None, settings: Settings
) -> AbstractContextManager[Path]:
    if item.path:
        # A shared file is read in place: nothing to delete afterwards.
        return nullcontext(file_inside(base, item.path, "the media queue folder"))
    return fetched(
        item.url,
        allow=settings.url_fetch_allow,
        max_bytes=settings.max_upload_bytes,
        timeout=settings.media_fetch_timeout_seconds,
    )


def _match(known: KnownContent, policy: ReviewPolicy, item: MediaItem, path: Path) -> None:
    result, report = known.match(path)
    if not result.ok:
        log.warning("media.not_hashed", item=item.path or item.url, reason=result.error)
        return
    with known.db.session() as session:
        outcomes = alerts_from_match(
            session, result, report, policy=policy, sighting=item.sighting, actor=ACTOR
        )
    log.info("media.matched", item=item.path or item.url, banks=[o.bank for o in outcomes])
