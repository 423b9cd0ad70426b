"""Adapters on real fixture files (tests/data/posts): vigil JSONL with bad lines, an X API v2
search page, an X filtered-stream capture, a Telegram Desktop export. Bad lines are reported
with their numbers, resuming from any position neither re-reads nor skips a post, and a last
line still being written is left for the next read."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigil.text.adapters import (
    MAX_LINE_BYTES,
    AdapterError,
    Parsed,
    parse_record,
    read_file,
    read_stream,
)
from vigil.text.normalize import normalize
from vigil.text.posts import Attachment, BadLine, Post

DATA = Path(__file__).parent / "data" / "posts"
VIGIL = DATA / "vigil_bad_lines.jsonl"
X_PAGE = DATA / "x_search_page.json"
X_STREAM = DATA / "x_filtered_stream.ndjson"
TELEGRAM = DATA / "telegram_result.json"


def posts(items: list[Parsed]) -> list[Post]:
    return [parsed.item for parsed in items if isinstance(parsed.item, Post)]


def bad(items: list[Parsed]) -> dict[int, str]:
    return {p.item.line: p.item.reason for p in items if isinstance(p.item, BadLine)}


def test_vigil_lines_and_bad_lines() -> None:
    items = list(read_file(VIGIL))
    assert [post.id for post in posts(items)] == ["p1", "p8", "p9"]
    reasons = bad(items)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 11]  # line 2 is blank, not bad
    assert "not JSON" in reasons[3]
    assert "platform: Field required" in reasons[4]
    assert "not UTF-8" in reasons[5]
    assert "not a JSON object" in reasons[6]
    assert "NUL" in reasons[7]
    assert reasons[8].startswith("byte 429: text:")  # a lone surrogate escape
    assert "reach.followers" in reasons[9]
    assert "nested too deeply" in reasons[11]
    assert items[-1].position == VIGIL.stat().st_size


def test_hostile_unicode_kept_for_display_and_undone_for_reading() -> None:
    post = next(p for p in posts(list(read_file(VIGIL))) if p.id == "p8")
    assert "\u202e" in post.text  # the original is what the reviewer sees
    assert normalize(post.text).text == "evil kill them do"
    assert post.attachments == (Attachment(url="https://example.org/a.jpg"),)


def what(items: list[Parsed]) -> list[tuple[object, int]]:
    """Each item's post or bad-line reason (which holds its byte offset: line numbers count
    from where reading started), with its position."""
    return [(p.item.reason if isinstance(p.item, BadLine) else p.item, p.position) for p in items]


def test_resume_from_every_position_reads_the_rest_exactly() -> None:
    everything = list(read_file(VIGIL))
    for index, parsed in enumerate(everything):
        rest = list(read_file(VIGIL, start=parsed.position))
        assert what(rest) == what(everything[index + 1 :])


def test_truncated_last_line_waits_for_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "growing.jsonl"
    shutil.copy(VIGIL, path)
    size = path.stat().st_size
    line = json.dumps({"id": "late", "platform": "forum", "text": "appended later"}) + "\n"
    with path.open("a", encoding="utf-8") as out:
        out.write(line[:20])
    items = list(read_file(path))
    assert items[-1].position == size  # the partial line is neither consumed nor bad
    assert all(p.item.line != 13 for p in items if isinstance(p.item, BadLine))
    with path.open("a", encoding="utf-8") as out:
        out.write(line[20:])
    (late,) = list(read_file(path, start=size))
    assert isinstance(late.item, Post) and late.item.id == "late"
    assert late.position == path.stat().st_size


def test_complete_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "no-newline.jsonl"
    path.write_text(json.dumps({"id": "a", "platform": "p", "text": "t"}), encoding="utf-8")
    (item,) = list(read_file(path))
    assert isinstance(item.item, Post) and item.position == path.stat().st_size


def test_byte_order_mark_tolerated(tmp_path: Path) -> None:
    lines = tmp_path / "bom.jsonl"
    lines.write_bytes(b"\xef\xbb\xbf" + VIGIL.read_bytes())
    assert posts(list(read_file(lines))) == posts(list(read_file(VIGIL)))
    document = tmp_path / "bom.json"
    document.write_bytes(b"\xef\xbb\xbf" + TELEGRAM.read_bytes())
    assert posts(list(read_file(document))) == posts(list(read_file(TELEGRAM)))


def test_overlong_line_is_bad_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    good = json.dumps({"id": "after", "platform": "p", "text": "t"})
    long = json.dumps({"id": "big", "platform": "p", "text": "x" * (MAX_LINE_BYTES + 10)})
    path.write_text(f"{long}\n{good}\n", encoding="utf-8")
    items = list(read_file(path))
    assert bad(items)[1].endswith(f"longer than {MAX_LINE_BYTES} bytes")
    assert [post.id for post in posts(items)] == ["after"]
    assert [p.position for p in items] == [len(long) + 1, path.stat().st_size]
    with path.open("a", encoding="utf-8") as out:  # an overlong line still being written
        out.write(long[:-5])
    assert [p.position for p in read_file(path, start=items[-1].position)] == []


def test_x_search_page() -> None:
    items = list(read_file(X_PAGE))
    first, retweet, reply = posts(items)
    assert first.id == "1790000000000000001"
    assert first.author_ref == "newsdesk"
    assert first.text.startswith("Long thread") and "note_tweet" in first.text  # the long text
    assert "& more" in first.text  # X's HTML escaping undone
    assert first.created_at == datetime(2024, 5, 14, 9, 30, tzinfo=UTC)
    assert first.url == "https://x.com/i/web/status/1790000000000000001"
    assert (first.reach.followers, first.reach.reposts, first.reach.views) == (120000, 14, 5400)
    assert [a.url for a in first.attachments] == [
        "https://pbs.twimg.com/media/photo101.jpg",
        "https://pbs.twimg.com/ext_tw_video_thumb/102/pu/img/preview.jpg",
    ]
    assert first.mentions == ("newsdesk",)
    assert retweet.repost_of == first.id and retweet.author_ref == "X"
    assert reply.in_reply_to == first.id
    assert reply.repost_of == "1790000000000000000"  # quoted
    assert reply.language is None  # X's "qme": media only
    assert bad(items) == {4: "item 4: tweet 3: id: missing"}


def test_x_filtered_stream() -> None:
    items = list(read_file(X_STREAM))
    found = posts(items)
    assert [post.id for post in found] == [
        "1800000000000000001",
        "1800000000000000002",
        "1800000000000000004",
    ]
    assert found[0].author_ref == "heimatfront88" and found[0].reach.reposts == 5
    assert found[2].language is None  # "und"
    assert found[2].text == "k1ll them all <3"
    reasons = bad(items)  # line 2 is a keep-alive, line 4 a disconnect notice: neither is bad
    assert list(reasons) == [5]
    assert "id: String should have at least 1 character" in reasons[5]


def test_telegram_export() -> None:
    items = list(read_file(TELEGRAM))
    found = {post.id: post for post in posts(items)}
    assert list(found) == [f"1500000001/{n}" for n in (2, 3, 4, 5, 6, 8)]  # services skipped
    assert all(post.platform == "telegram" and post.url == "" for post in found.values())
    rich = found["1500000001/3"]
    assert rich.text == "Warning: contact @someone or see https://example.org/x"
    assert rich.mentions == ("someone",)
    assert rich.created_at == datetime(2024, 3, 1, 10, 6, tzinfo=UTC)
    assert found["1500000001/4"].attachments == (
        Attachment(path="photos/photo_1@01-03-2024_10-07-00.jpg"),
    )
    assert found["1500000001/5"].in_reply_to == "1500000001/4"
    assert found["1500000001/5"].author_ref == "user42"
    assert found["1500000001/6"].repost_of == "Other channel"
    assert found["1500000001/6"].attachments == ()  # the photo was not downloaded
    assert found["1500000001/8"].attachments == (Attachment(path="files/leaflet.png"),)
    assert bad(items) == {7: "item 7: id: missing"}
    assert [p.position for p in items] == [2, 3, 4, 5, 6, 7, 8]


def test_telegram_resume_by_message_count() -> None:
    everything = list(read_file(TELEGRAM))
    rest = list(read_file(TELEGRAM, start=4))
    assert [p.item for p in rest] == [p.item for p in everything if p.position > 4]


def test_telegram_all_chats_export_and_public_username() -> None:
    chat = json.loads(TELEGRAM.read_text(encoding="utf-8"))
    chat["messages"] = [message for message in chat["messages"] if "id" in message]
    export = {"about": "x", "chats": {"about": "y", "list": [{**chat, "username": "example"}]}}
    found = parse_record(export, "auto")
    assert [post.url for post in found][:2] == ["https://t.me/example/2", "https://t.me/example/3"]
    assert len(found) == 6 and found[0].platform == "telegram"


def test_document_size_cap(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="over the 1000-byte limit"):
        list(read_file(TELEGRAM, max_document_bytes=1000))
    broken = tmp_path / "broken.json"
    broken.write_text('{\n "name": "chat",\n "messages": [\n', encoding="utf-8")
    with pytest.raises(AdapterError, match="not JSON"):
        list(read_file(broken))
    with pytest.raises(AdapterError, match="not a Telegram Desktop export"):
        list(read_file(X_PAGE, "telegram"))


def test_stream_positions_count_bytes_and_match_the_file() -> None:
    from_file = list(read_file(VIGIL))
    from_stream = list(read_stream(io.BytesIO(VIGIL.read_bytes())))
    assert from_stream == from_file


def test_stream_truncated_tail_is_a_bad_line() -> None:
    data = VIGIL.read_bytes() + b'{"id": "cut", "platform": "p", "te'
    items = list(read_stream(io.BytesIO(data)))
    assert isinstance(items[-1].item, BadLine) and "not JSON" in items[-1].item.reason
    assert items[-1].position == len(data)


def test_stream_documents() -> None:
    from_stream = list(read_stream(io.BytesIO(TELEGRAM.read_bytes())))
    assert from_stream == list(read_file(TELEGRAM))
    assert posts(list(read_stream(io.BytesIO(X_PAGE.read_bytes()), "x")))[0].author_ref == (
        "newsdesk"
    )


def test_parse_record_formats_and_platform() -> None:
    tweet = {"id": "1", "text": "hi", "author_id": "7", "edit_history_tweet_ids": ["1"]}
    assert parse_record(tweet, "auto")[0].platform == "x"
    assert parse_record(tweet, "x", platform="twitter")[0].platform == "twitter"
    assert parse_record({"id": "1", "text": "t"}, "vigil", platform="forum")[0].platform == (
        "forum"
    )
    own = {"id": "1", "platform": "mastodon", "text": "t"}
    assert parse_record(own, "auto", platform="forum")[0].platform == "mastodon"
    assert parse_record({"meta": {"result_count": 0}}, "x") == []


@pytest.mark.parametrize(
    ("record", "fmt", "message"),
    [
        ({"id": "1", "text": "t"}, "vigil", "platform: Field required"),
        ({"id": "1", "platform": "p", "text": 5}, "auto", "text: Input should be a valid string"),
        ({"data": [{"id": "1", "text": "ok"}, {"text": "no id"}]}, "x", "tweet 1: id: missing"),
        ({"name": "chat"}, "telegram", "not a Telegram Desktop export"),
        ({"unrelated": True}, "x", "not an X API v2 tweet"),
    ],
)
def test_parse_record_errors_name_the_field(
    record: dict[str, object], fmt: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_record(record, fmt)  # type: ignore[arg-type]
