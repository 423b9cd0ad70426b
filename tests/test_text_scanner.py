"""The post pipeline end to end on the shipped models and a real store: files scanned and
resumed, nothing scanned twice, campaigns as one queue item that survives a restart,
counter-speech kept out of the queue, the CLI's report of bad lines."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from test_cli import run
from vigil.config import Settings
from vigil.store import Database
from vigil.store.models import Alert, PostRecord
from vigil.text.posts import Post
from vigil.text.scanner import PostScanner
from vigil.text.settings import TextSettings
from vigil.text.sources import file_source_key, scan_file

COUNTER_SPEECH = Path(__file__).parent / "data" / "counter_speech.jsonl"
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

THREAT = "I will shoot every one of you at the mosque on friday, you will all die"
PROPAGANDA = "baqiya wa tatamadad! the islamic state will remain and expand, join the mujahideen"
BENIGN = (
    "Lovely morning at the farmers market, the strawberries are back",
    "Does anyone know when the library reopens after the holidays?",
    "Our team won 3-1 last night, what a match",
)


def post(n: int, text: str, author: str = "", minutes: int = 0, **fields: Any) -> dict[str, Any]:
    at = START + timedelta(minutes=minutes or n)
    return {
        "id": str(n),
        "platform": "testnet",
        "author_ref": author or f"acct{n}",
        "text": text,
        "created_at": at.isoformat(),
        "reach": {"followers": 100 * n},
        **fields,
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]], *, append: bool = False) -> None:
    with path.open("a" if append else "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


@pytest.fixture
def text_settings(settings: Settings) -> TextSettings:
    return TextSettings(**{**settings.model_dump(), "text_batch_size": 4})


@pytest.fixture
def scanner(text_settings: TextSettings) -> Iterator[PostScanner]:
    db = Database(text_settings.resolved_database_url)
    yield PostScanner(db, text_settings)
    db.dispose()


def count(db: Database, model: Any) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_file_is_scanned_once_and_resumed_where_it_stopped(
    scanner: PostScanner, tmp_path: Path
) -> None:
    feed = tmp_path / "posts.jsonl"
    write_jsonl(feed, [post(1, THREAT), *(post(i + 2, t) for i, t in enumerate(BENIGN))])
    first = scan_file(scanner, feed)
    assert first.scanned == 4
    assert first.alerts == 1
    assert scanner.checkpoint(file_source_key(feed)) == feed.stat().st_size
    with scanner.db.session() as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.content_ref == "testnet:1"
        assert alert.severity == 10, "a threat to shoot people is a threat to life"
        assert "threat" in alert.explanation
        stored = session.scalars(select(PostRecord).where(PostRecord.key == "testnet:1")).one()
        assert stored.alert_id == alert.id
        assert "threat_incitement" in stored.flagged

    again = scan_file(scanner, feed)
    assert again.scanned == 0, "the checkpoint is at the end of the file"
    write_jsonl(feed, [post(9, PROPAGANDA)], append=True)
    resumed = scan_file(scanner, feed)
    assert resumed.scanned == 1
    assert resumed.alerts == 1
    assert count(scanner.db, PostRecord) == 5


def test_the_same_posts_pushed_twice_create_nothing_twice(scanner: PostScanner) -> None:
    posts = [Post.model_validate(post(1, THREAT)), Post.model_validate(post(2, BENIGN[0]))]
    first = scanner.scan(posts)
    second = scanner.scan([*posts, posts[0]])
    assert (first.scanned, first.alerts) == (2, 1)
    assert (second.scanned, second.duplicates, second.alerts) == (0, 3, 0)
    assert count(scanner.db, Alert) == 1


def test_a_campaign_is_one_queue_item_that_grows_and_survives_a_restart(
    text_settings: TextSettings, scanner: PostScanner
) -> None:
    variants = [
        PROPAGANDA,
        PROPAGANDA + " #dawlah",
        "RT " + PROPAGANDA,
        PROPAGANDA + " 🔥🔥",
        PROPAGANDA.replace("join", "JOIN"),
    ]
    posts = [
        Post.model_validate(post(i + 1, text, author=f"acct{i % 4}"))
        for i, text in enumerate(variants)
    ]
    result = scanner.scan(posts[:3])
    assert result.campaign_alerts == 1
    campaign_alert = result.alert_ids["campaign:testnet:1"]
    scanner.scan(posts[3:])
    with scanner.db.session() as session:
        alert = session.get_one(Alert, campaign_alert)
        size = next(s for s in alert.signals if s["type"] == "campaign")
        assert size["size"] >= 3
        reach_before = alert.reach
        assert alert.velocity > 0
        assert len(alert.evidence) >= 2, "members that joined later are added as evidence"

    restarted = PostScanner(scanner.db, text_settings)
    more = restarted.scan([Post.model_validate(post(40, PROPAGANDA + " !!", author="acct9"))])
    assert more.campaign_alerts == 0, "the campaign was restored, not started again"
    assert more.alert_ids["campaign:testnet:1"] == campaign_alert
    with scanner.db.session() as session:
        assert session.get_one(Alert, campaign_alert).reach > reach_before


def test_counter_speech_and_reporting_are_not_ranked_as_violence(scanner: PostScanner) -> None:
    rows = [json.loads(line) for line in COUNTER_SPEECH.read_text("utf-8").splitlines() if line]
    posts = [
        Post(id=str(n), platform="counter", text=row["text"], language=row.get("lang"))
        for n, row in enumerate(rows)
    ]
    result = scanner.scan(posts)
    violent = result.flagged["threat_to_life"] + result.flagged["threat_incitement"]
    # Measured on the shipped model: 4 of 60 ranked as a threat, 7 of 60 as terrorist support
    # (news of attacks the Islamic State claimed reads like the pro-ISIS accounts' tweets; see
    # the model card). The bounds catch a regression; the second is a known weakness.
    assert violent <= 0.1 * len(posts), result.flagged
    assert result.flagged["terror_support"] <= 0.15 * len(posts), result.flagged


def test_a_followed_file_is_read_as_it_grows(scanner: PostScanner, tmp_path: Path) -> None:
    feed = tmp_path / "growing.jsonl"
    write_jsonl(feed, [post(1, BENIGN[0])])
    stop = threading.Event()
    totals: list[int] = []
    follower = threading.Thread(
        target=lambda: totals.append(
            scan_file(scanner, feed, follow=True, poll_seconds=0.05, stop=stop).scanned
        )
    )
    follower.start()
    # A writer appends half a line, then finishes it: the half line must wait, not be lost.
    line = json.dumps(post(2, THREAT))
    with feed.open("a", encoding="utf-8") as out:
        out.write(line[:20])
        out.flush()
        time.sleep(0.3)
        out.write(line[20:] + "\n")
    deadline = time.monotonic() + 30
    while count(scanner.db, PostRecord) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    follower.join()
    assert totals == [2]
    assert count(scanner.db, Alert) == 1


def test_cli_scan_reports_bad_lines_and_keeps_the_rest(
    text_settings: TextSettings, tmp_path: Path
) -> None:
    feed = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps(post(1, BENIGN[0])),
        "{not json",
        json.dumps({"id": "2", "platform": "testnet", "text": 7}),
        json.dumps(post(3, THREAT)),
    ]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # In its own process, as a user runs it (the CLI configures logging for its process).
    result = run(text_settings, "posts", "scan", str(feed))
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {
        "scanned": 2,
        "alerts": 1,
        "campaign_alerts": 0,
        "duplicates": 0,
        "bad_lines": 2,
    }
    assert "line 2" in result.stderr
    assert "line 3" in result.stderr
    again = json.loads(run(text_settings, "posts", "scan", str(feed)).stdout.splitlines()[-1])
    assert again["scanned"] == 0, "the second run resumes at the end of the file"
