"""Post hooks: what other capabilities (account histories, networks) learn of each stored post.

The scanner calls every hook once per batch, inside the batch's transaction, after the batch's
posts and alerts are in the session (flushed, so their ids exist and queries see them). A hook's
writes therefore commit with the posts or not at all, and since a redelivered batch skips the
posts already stored, a hook never sees the same post twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class StoredPost:
    """A post as stored, with its triage."""

    #: "platform:id", ``PostRecord.key``.
    key: str
    platform: str
    #: As stored: a pseudonym when pseudonymisation is on; "" when the source gave none.
    author_ref: str
    #: ``created_at``, else the scan time (UTC, aware).
    at: datetime
    #: The triage label when flagged (threat_to_life, threat_incitement, terror_support, hate,
    #: offensive, known_content), else None.
    label: str | None
    severity: int
    likelihood: float
    #: The classifier's labels at their operating points.
    flagged: tuple[str, ...]
    #: Banks an attached image matched.
    banks: tuple[str, ...]
    campaign_id: str | None
    #: The parent post's id on the same platform ("" if none).
    in_reply_to: str
    #: The reposted post's id ("" if none).
    repost_of: str
    #: Account references mentioned (pseudonymised like ``author_ref``).
    mentions: tuple[str, ...]
    #: The post's alert, or its campaign's.
    alert_id: int | None
    reach: int


class PostHook(Protocol):
    def stored(self, session: Session, posts: Sequence[StoredPost]) -> None:
        """Called with every post stored in a batch, inside the batch's transaction."""
        ...
