"""Post monitoring as one object the API and the CLI share: a lazily built scanner (loading the
classifiers takes seconds, and a server that never receives a post should not pay for it),
pushes serialised through it, and stored posts read back."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from vigil.bus import Bus
from vigil.hashing import KnownContent
from vigil.store import Database
from vigil.store.models import PostRecord
from vigil.text.adapters import Format, parse_record
from vigil.text.attachments import AttachmentReader
from vigil.text.hooks import PostHook
from vigil.text.posts import BadLine, Post
from vigil.text.settings import TextSettings

#: The bus queue posts go on for `vigil worker --role posts`.
QUEUE = "posts"

if TYPE_CHECKING:
    from vigil.text.scanner import PostScanner, ScanResult


@dataclass
class PushResult:
    #: None when the posts were queued for workers rather than scanned.
    result: ScanResult | None
    rejected: list[BadLine] = field(default_factory=list)
    queued: int = 0


class PostService:
    def __init__(
        self,
        db: Database,
        settings: TextSettings,
        known: KnownContent | None = None,
        *,
        export_dir: Path | None = None,
        bus: Bus | None = None,
        hooks: Sequence[PostHook] = (),
    ) -> None:
        """``export_dir``: the folder of the export being scanned, the only place a post's
        local attachment paths may point into (None: local paths are refused, as for pushed
        posts, which have no business naming files on vigil's disk). ``bus``: where pushes go
        instead of the scanner (``text_queue``), for ``vigil worker --role posts``. ``hooks``:
        given every stored batch (account histories, :mod:`vigil.text.hooks`)."""
        self.db = db
        self.settings = settings
        self.known = known
        self.export_dir = export_dir
        self.bus = bus
        self.hooks = tuple(hooks)
        self._scanner: PostScanner | None = None
        self._lock = threading.Lock()

    def scanner(self) -> PostScanner:
        # Imported here: the scanner pulls in the classifiers (the text extra), which a server
        # that only matches hashes may not have installed.
        from vigil.text.scanner import PostScanner

        with self._lock:
            if self._scanner is None:
                self._scanner = PostScanner(
                    self.db, self.settings, attachments=self._attachments(), hooks=self.hooks
                )
            return self._scanner

    def _attachments(self) -> AttachmentReader | None:
        if not self.settings.text_attachments:
            return None
        return AttachmentReader(
            known=self.known,
            base_dir=self.export_dir,
            fetch_urls=self.settings.text_fetch_attachment_urls,
            url_allow=tuple(self.settings.url_fetch_allow),
        )

    def push(
        self, records: list[dict[str, Any]], fmt: Format, platform: str | None = None
    ) -> PushResult:
        """Scan posts given as JSON records (or queue them, with a bus); a record that is not a
        post is rejected with its index (``BadLine.line``, 0-based) and the rest go on."""
        posts: list[Post] = []
        rejected: list[BadLine] = []
        for index, record in enumerate(records):
            try:
                posts += parse_record(record, fmt, platform=platform)
            except ValueError as error:
                rejected.append(BadLine(line=index, reason=str(error)))
        if self.bus is not None:
            # The post as vigil's own record format, which the worker reads by default; its key
            # as the message id, so a client's retried push is queued once.
            for post in posts:
                self.bus.publish(QUEUE, post.model_dump_json().encode(), msg_id=post.key)
            return PushResult(None, rejected, queued=len(posts))
        scanner = self.scanner()
        with self._lock:
            return PushResult(scanner.scan(posts), rejected)

    def get(self, key: str) -> PostRecord | None:
        with self.db.session() as session:
            return session.scalars(select(PostRecord).where(PostRecord.key == key)).one_or_none()
