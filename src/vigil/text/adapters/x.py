"""X (Twitter) API v2 → :class:`~vigil.text.posts.Post`.

Accepts a tweet object, or a response page or filtered-stream line
(``{"data": [...] | {...}, "includes": {"users", "media", "tweets"}}``): the page's
``includes`` fill in what the tweet only references (the author's username and followers, the
media's URLs). Field names follow the X API v2 data dictionary.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

from vigil.text.adapters.common import validated_post
from vigil.text.posts import MAX_ATTACHMENTS, Attachment, Post, Reach

PLATFORM = "x"
#: X's language codes that say "no language": undetermined, and its own q-codes for posts of
#: only media, hashtags, mentions, cashtags or very short text.
_NO_LANGUAGE = frozenset({"und", "zxx", "qme", "qht", "qam", "qct", "qst"})


def is_x_record(record: dict[str, Any]) -> bool:
    """A response page or stream line (possibly only ``errors``, as a stream's disconnect
    notice), or a bare tweet (which has no ``platform`` field but carries X-only fields)."""
    if any(key in record for key in ("data", "includes", "matching_rules", "errors", "meta")):
        return True
    tweet_only = ("author_id", "edit_history_tweet_ids", "public_metrics", "note_tweet")
    return "platform" not in record and any(key in record for key in tweet_only)


def x_posts(record: dict[str, Any], platform: str | None) -> Iterator[Post | ValueError]:
    """Each tweet of the record as a post, or the error that keeps it from being one."""
    data = record["data"] if "data" in record else _bare_tweet(record)
    tweets = data if isinstance(data, list) else [data]
    includes = _Includes(record.get("includes"))
    for index, tweet in enumerate(tweets):
        try:
            yield _post(tweet, includes, platform or PLATFORM)
        except ValueError as error:
            where = f"tweet {index}: " if len(tweets) > 1 else ""
            yield ValueError(f"{where}{error}")


def _bare_tweet(record: dict[str, Any]) -> dict[str, Any] | list[Any]:
    if "id" in record:
        return record
    if "meta" in record or "errors" in record:
        return []  # a page with no results, or only errors for tweets that are gone
    raise ValueError("not an X API v2 tweet or response page (no 'data' or 'id')")


class _Includes:
    """The expansions of a page, by key."""

    def __init__(self, includes: object) -> None:
        found = includes if isinstance(includes, dict) else {}
        self.users = _by(found.get("users"), "id")
        self.media = _by(found.get("media"), "media_key")


def _by(items: object, key: str) -> dict[str, dict[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {str(item[key]): item for item in items if isinstance(item, dict) and key in item}


def _post(tweet: object, includes: _Includes, platform: str) -> Post:
    if not isinstance(tweet, dict):
        raise ValueError("a tweet must be a JSON object")
    if "id" not in tweet:
        raise ValueError("id: missing")
    tweet_id = str(tweet["id"])
    author_id = str(tweet.get("author_id") or "")
    author = includes.users.get(author_id, {})
    metrics = _dict(tweet.get("public_metrics"))
    language = tweet.get("lang")
    replied_to, repost_of = _references(tweet.get("referenced_tweets"))
    return validated_post(
        id=tweet_id,
        platform=platform,
        author_ref=str(author.get("username") or author_id),
        text=html.unescape(_text(tweet)),  # X escapes &, < and > in tweet text
        language=None if not language or language in _NO_LANGUAGE else language,
        created_at=tweet.get("created_at"),
        url=f"https://x.com/i/web/status/{tweet_id}",
        reach=Reach(
            followers=_count(_dict(author.get("public_metrics")).get("followers_count")),
            reposts=_count(metrics.get("retweet_count")) + _count(metrics.get("quote_count")),
            views=_count(metrics.get("impression_count")),
        ),
        attachments=_images(tweet, includes),
        in_reply_to=replied_to,
        repost_of=repost_of,
        mentions=_mentions(tweet),
    )


def _text(tweet: dict[str, Any]) -> str:
    note = _dict(tweet.get("note_tweet"))  # a long post: ``text`` holds only its first 280
    text = note.get("text") if isinstance(note.get("text"), str) else tweet.get("text", "")
    if not isinstance(text, str):
        raise ValueError("text: not a string")
    return text


def _references(references: object) -> tuple[str, str]:
    """(the tweet replied to, the tweet reposted or quoted); a retweet wins over a quote."""
    replied_to = retweeted = quoted = ""
    for reference in references if isinstance(references, list) else []:
        if not isinstance(reference, dict):
            continue
        kind, target = reference.get("type"), str(reference.get("id") or "")
        if kind == "replied_to":
            replied_to = target
        elif kind == "retweeted":
            retweeted = target
        elif kind == "quoted":
            quoted = target
    return replied_to, retweeted or quoted


def _images(tweet: dict[str, Any], includes: _Includes) -> tuple[Attachment, ...]:
    """Photos, and the preview image of videos and GIFs: what OCR and the hash banks read."""
    keys = _dict(tweet.get("attachments")).get("media_keys")
    images = []
    for key in keys if isinstance(keys, list) else []:
        media = includes.media.get(str(key), {})
        url = media.get("url") if media.get("type") == "photo" else media.get("preview_image_url")
        if isinstance(url, str) and url:
            images.append(Attachment(url=url))
    return tuple(images[:MAX_ATTACHMENTS])


def _mentions(tweet: dict[str, Any]) -> tuple[str, ...]:
    mentions = _dict(tweet.get("entities")).get("mentions")
    names = [
        str(mention["username"])
        for mention in (mentions if isinstance(mentions, list) else [])
        if isinstance(mention, dict) and mention.get("username")
    ]
    return tuple(dict.fromkeys(names))[:100]


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0
