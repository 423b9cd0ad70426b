"""A post, as every adapter (vigil JSONL, X API v2, Telegram export) and the push API hand it on.

One shape for every platform: the scanner, the queue and the account views never look at a
platform's own JSON. Validation happens here, once, so that a bad row is reported with its reason
and line instead of failing somewhere later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.refs import check_ref

#: Long enough for any platform's post (X: 25k for subscribers; Telegram: 4,096 + captions);
#: anything longer is not a post and would only slow the classifiers down.
MAX_TEXT_CHARS = 50_000
MAX_ATTACHMENTS = 20

Count = Annotated[int, Field(ge=0)]
ShortText = Annotated[str, Field(max_length=2_000)]


class Reach(BaseModel):
    """How many people a post can reach, as far as the platform tells."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    followers: Count = 0
    reposts: Count = 0
    views: Count = 0

    @property
    def audience(self) -> int:
        """People reached, best estimate: views when the platform counts them; else the author's
        followers plus 100 per repost (a repost reaches the reposter's followers, which the post
        does not carry; 100 is a typical median account)."""
        return self.views if self.views else self.followers + 100 * self.reposts


class Attachment(BaseModel):
    """An image attached to a post: a local file (exports) or a URL (APIs), never both needed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["image"] = "image"
    path: ShortText = ""
    url: ShortText = ""


class Post(BaseModel):
    """One public post. ``id`` is unique within ``platform``; ``author_ref`` is the platform's
    reference for the account (a handle or id, or a pseudonym where configured)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    id: Annotated[str, Field(min_length=1, max_length=200)]
    platform: Annotated[str, Field(min_length=1, max_length=50)]
    author_ref: Annotated[str, Field(max_length=200)] = ""
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] = ""
    language: Annotated[str, Field(max_length=16)] | None = None
    created_at: datetime | None = None
    url: ShortText = ""
    reach: Reach = Reach()
    attachments: Annotated[tuple[Attachment, ...], Field(max_length=MAX_ATTACHMENTS)] = ()
    #: Links to other posts and accounts when the source data has them (networks, issue 8).
    in_reply_to: ShortText = ""
    repost_of: ShortText = ""
    mentions: Annotated[tuple[ShortText, ...], Field(max_length=100)] = ()

    @field_validator("text")
    @classmethod
    def _no_nul(cls, text: str) -> str:
        # PostgreSQL text columns reject NUL; a post carrying one is hostile or corrupt.
        if "\x00" in text:
            raise ValueError("text contains a NUL character")
        return text

    @field_validator("author_ref")
    @classmethod
    def _nameable_author(cls, ref: str) -> str:
        # An account is shown and addressed by its reference: one carrying control or
        # invisible direction characters could impersonate another and no route could name it.
        return check_ref(ref) if ref else ref

    @field_validator("mentions")
    @classmethod
    def _nameable_mentions(cls, refs: tuple[str, ...]) -> tuple[str, ...]:
        for ref in refs:
            check_ref(ref, "a mention")
        return refs

    @property
    def key(self) -> str:
        """Unique across platforms: the alert dedupe key and the store's natural key."""
        return f"{self.platform}:{self.id}"


class BadLine(BaseModel):
    """A row an adapter could not turn into a post: reported with where it was, then skipped."""

    model_config = ConfigDict(frozen=True)

    line: int
    reason: str
