"""One JSON record → posts, whichever format it is in (vigil's own, X API v2, a Telegram
export), and the format sniffed from the record itself when asked for ``auto``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from vigil.text.adapters.common import validated_post
from vigil.text.adapters.telegram import is_telegram_export, telegram_messages
from vigil.text.adapters.x import is_x_record, x_posts
from vigil.text.posts import Post

Format = Literal["auto", "vigil", "x", "telegram"]
FORMATS: tuple[Format, ...] = ("auto", "vigil", "x", "telegram")


def parse_record(record: dict[str, Any], fmt: Format, *, platform: str | None = None) -> list[Post]:
    """The posts in one JSON object (an X response page holds many). Raises ValueError with the
    reason, naming the field, when any of them is not a valid post."""
    posts = []
    for item in record_items(record, fmt, platform):
        if isinstance(item, ValueError):
            raise item
        posts.append(item)
    return posts


def record_items(record: object, fmt: Format, platform: str | None) -> Iterator[Post | ValueError]:
    """Each post in ``record``, or the error for each part that is not one: a page with one bad
    tweet still gives its other tweets. ``platform`` names the platform where the record has
    none (vigil records), or replaces the format's own name (``x``, ``telegram``)."""
    if not isinstance(record, dict):
        yield ValueError("not a JSON object")
        return
    kind = detect(record) if fmt == "auto" else fmt
    if kind == "x":
        yield from x_posts(record, platform)
    elif kind == "telegram":
        try:
            yield from (item for item in telegram_messages(record, platform) if item is not None)
        except ValueError as error:
            yield error
    else:
        try:
            yield _vigil_post(record, platform)
        except ValueError as error:
            yield error


def detect(record: dict[str, Any]) -> Format:
    if is_telegram_export(record):
        return "telegram"
    if is_x_record(record):
        return "x"
    return "vigil"


def _vigil_post(record: dict[str, Any], platform: str | None) -> Post:
    if platform and "platform" not in record:
        record = {**record, "platform": platform}
    return validated_post(**record)
