"""Telegram Desktop's JSON export (``result.json``) → :class:`~vigil.text.posts.Post`.

An export holds one chat (``{"name", "type", "id", "messages": [...]}``) or all of an
account's chats (``{"chats": {"list": [chat, ...]}}``). Messages are numbered across the whole
file in order, service messages included: that number is how a scan resumes.

A message's ``text`` is a string, or a list of strings and entity objects
(``{"type": "bold", "text": ...}``) that are joined. Service messages (joins, pins, calls) are
not posts and are skipped without a word. A photo becomes a local attachment, its path relative
to the export folder, as Telegram wrote it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from vigil.text.adapters.common import validated_post
from vigil.text.posts import Attachment, Post

PLATFORM = "telegram"
#: What the export writes in place of a file it was told not to download.
_NOT_DOWNLOADED = "(File not included"


def is_telegram_export(record: dict[str, Any]) -> bool:
    return isinstance(record.get("messages"), list) or isinstance(record.get("chats"), dict)


def telegram_messages(
    document: dict[str, Any], platform: str | None
) -> Iterator[Post | ValueError | None]:
    """Each message in file order: a post, the error that keeps it from being one, or None for
    a service message."""
    if not is_telegram_export(document):
        raise ValueError("not a Telegram Desktop export (no 'messages' or 'chats')")
    chats = document["chats"].get("list") if "chats" in document else [document]
    for chat in chats if isinstance(chats, list) else []:
        if not isinstance(chat, dict) or not isinstance(chat.get("messages"), list):
            continue
        for message in chat["messages"]:
            try:
                yield _post(chat, message, platform or PLATFORM)
            except ValueError as error:
                yield error


def _post(chat: dict[str, Any], message: object, platform: str) -> Post | None:
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    if message.get("type") == "service":
        return None
    if "id" not in message:
        raise ValueError("id: missing")
    chat_id, message_id = str(chat.get("id", "")), str(message["id"])
    username = chat.get("username")
    reply_to = message.get("reply_to_message_id")
    forwarded = message.get("forwarded_from")
    return validated_post(
        id=f"{chat_id}/{message_id}",
        platform=platform,
        author_ref=str(message.get("from_id") or message.get("from") or ""),
        text=_text(message),
        created_at=_date(message),
        url=f"https://t.me/{username}/{message_id}" if isinstance(username, str) else "",
        attachments=_images(message),
        in_reply_to=f"{chat_id}/{reply_to}" if reply_to is not None else "",
        repost_of=str(forwarded) if forwarded else "",
        mentions=_mentions(message),
    )


def _text(message: dict[str, Any]) -> str:
    text = message.get("text", "")
    if isinstance(text, str):
        return text
    if isinstance(text, list):
        return "".join(_piece(piece) for piece in text)
    raise ValueError("text: neither a string nor a list")


def _piece(piece: object) -> str:
    if isinstance(piece, str):
        return piece
    if isinstance(piece, dict) and isinstance(piece.get("text"), str):
        return str(piece["text"])
    raise ValueError("text: a part is neither a string nor an entity with text")


def _date(message: dict[str, Any]) -> datetime | str | None:
    """UTC from ``date_unixtime``; ``date`` is the exporting computer's local time."""
    unixtime = message.get("date_unixtime")
    if isinstance(unixtime, str | int) and str(unixtime).isdigit():
        return datetime.fromtimestamp(int(unixtime), tz=UTC)
    date = message.get("date")
    return date if isinstance(date, str) else None


def _images(message: dict[str, Any]) -> tuple[Attachment, ...]:
    paths = [message.get("photo")]
    if str(message.get("mime_type", "")).startswith("image/"):
        paths.append(message.get("file"))  # an image sent as a file
    return tuple(
        Attachment(path=path)
        for path in paths
        if isinstance(path, str) and path and not path.startswith(_NOT_DOWNLOADED)
    )


def _mentions(message: dict[str, Any]) -> tuple[str, ...]:
    entities = message.get("text_entities")
    names = [
        str(entity["text"]).lstrip("@")
        for entity in (entities if isinstance(entities, list) else [])
        if isinstance(entity, dict) and entity.get("type") == "mention" and entity.get("text")
    ]
    return tuple(dict.fromkeys(names))[:100]
