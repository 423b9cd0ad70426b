"""Campaigns over real rows of ../shared/data/text: edited copies (hashtags, an inserted or
replaced word, emoji, a mention and a link, swapped sentences, a chain of edits) join their
original's campaign; unrelated rows of the same forum do not merge; re-adding is a no-op;
restoring from signatures rebuilds the same campaigns; old posts expire."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigil.text.campaigns import CampaignTracker, CampaignView, shingles, words
from vigil.text.normalize import normalize

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _rows(shared_data: Path, name: str) -> list[dict[str, str]]:
    with open(shared_data / "text" / f"{name}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _long_distinct(rows: list[dict[str, str]], count: int, min_words: int = 12) -> list[str]:
    seen: set[str] = set()
    texts = []
    for row in rows:
        text = row["text"]
        if len(words(text)) >= min_words and text not in seen:
            seen.add(text)
            texts.append(text)
        if len(texts) == count:
            break
    return texts


@pytest.fixture(scope="module")
def isis(shared_data: Path) -> list[str]:
    """40 ISIS tweets, none a near-duplicate of another (the dataset has retweets and reposts
    that edits could bridge)."""
    chosen: list[str] = []
    for text in _long_distinct(_rows(shared_data, "isis_fifthtribe"), 400):
        if all(_jaccard(text, other) < 0.3 for other in chosen):
            chosen.append(text)
    return chosen[:40]


@pytest.fixture(scope="module")
def stormfront_rows(shared_data: Path) -> list[dict[str, str]]:
    return _rows(shared_data, "stormfront")


def _jaccard(a: str, b: str) -> float:
    first, second = set(shingles(words(a))), set(shingles(words(b)))
    return len(first & second) / len(first | second)


def _insert_word(text: str, word: str) -> str:
    parts = text.split()
    return " ".join([*parts[: len(parts) // 2], word, *parts[len(parts) // 2 :]])


def _replace_word(text: str, word: str, position: int | None = None) -> str:
    parts = text.split()
    parts[len(parts) // 2 if position is None else position] = word
    return " ".join(parts)


EDITS: dict[str, Callable[[str], str]] = {
    "hashtags": lambda text: f"{text} #ISIS #Syria #BreakingNews",
    "inserted word": lambda text: _insert_word(text, "truly"),
    "replaced word": lambda text: _replace_word(text, "everything"),
    "emoji": lambda text: f"🔥🔥 {text} 💪🏴",
    "mention and link": lambda text: f"@someone {text} https://t.co/Xy12ab",
    "two edits": lambda text: _insert_word(f"{text} #Caliphate_News", "brothers"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_copies_of_real_posts_join_the_original(isis: list[str], edit: str) -> None:
    # Normalized first, as the scanner does: emoji become words, links and mentions placeholders.
    tracker = CampaignTracker()
    for number, text in enumerate(isis):
        assert tracker.add(f"x:{number}", normalize(text).text, f"origin{number}", T0) is None
    joined = []
    for number, text in enumerate(isis):
        view = tracker.add(f"x:{number}:copy", normalize(EDITS[edit](text)).text, "copier", T0)
        joined.append(view is not None and view.id == f"x:{number}" and view.size == 2)
    assert all(joined), [isis[i] for i, ok in enumerate(joined) if not ok]


def test_swapped_sentences_of_a_real_post_join(stormfront_rows: list[dict[str, str]]) -> None:
    by_post: dict[str, list[str]] = {}
    for row in stormfront_rows:
        by_post.setdefault(row["id"].rsplit("_", 1)[0], []).append(row["text"])
    pairs = [s[:2] for s in by_post.values() if len(s) >= 2 and len(words(s[0] + s[1])) >= 16]
    tracker = CampaignTracker()
    for number, (first, second) in enumerate(pairs[:40]):
        tracker.add(f"s:{number}", f"{first} {second}", "a", T0)
        view = tracker.add(f"s:{number}:swapped", f"{second} {first}", "b", T0)
        assert view is not None and view.id == f"s:{number}", (first, second)


def test_unrelated_posts_of_one_forum_do_not_merge(stormfront_rows: list[dict[str, str]]) -> None:
    texts = _long_distinct(stormfront_rows, 4000, min_words=5)
    tracker = CampaignTracker()
    members: dict[str, list[str]] = {}
    for number, text in enumerate(texts):
        view = tracker.add(f"s:{number}", text, f"u{number}", T0 + timedelta(seconds=number))
        if view is not None:
            others = members.setdefault(view.id, [texts[int(view.id.split(":")[1])]])
            # Whatever it joined, something in the campaign really is a near-duplicate of it.
            assert max(_jaccard(text, other) for other in others) >= 0.45, (text, others)
            others.append(text)
    assert sum(len(m) for m in members.values()) < 0.005 * len(texts)


def test_a_chain_of_edits_stays_one_campaign_with_the_first_id(isis: list[str]) -> None:
    text = " ".join(isis[0].split() + isis[1].split())
    chain = [text]
    for step, word in enumerate(("one", "two", "three", "four", "five", "six", "seven")):
        chain.append(_replace_word(chain[-1], word, 2 + 4 * step))
    assert _jaccard(chain[0], chain[-1]) < 0.6  # the ends alone would not match
    tracker = CampaignTracker()
    views = [
        tracker.add(f"c:{n}", t, f"a{n}", T0 + timedelta(minutes=n)) for n, t in enumerate(chain)
    ]
    assert views[0] is None
    assert {v.id for v in views[1:] if v} == {"c:0"}
    last = views[-1]
    assert last is not None and last.size == len(chain) and last.accounts == len(chain)
    assert last.first_post_key == "c:0" and last.first_author_ref == "a0"
    assert last.first_seen == T0 and last.last_seen == T0 + timedelta(minutes=len(chain) - 1)
    assert last.sample_keys[0] == f"c:{len(chain) - 1}" and len(last.sample_keys) == 5


def test_a_burst_of_copies_is_one_campaign(isis: list[str]) -> None:
    # Hundreds of posts share each band key: the index samples those buckets.
    tracker = CampaignTracker()
    tracker.add("b:0", isis[9], "origin", T0)
    edits = list(EDITS.values())
    ids = {
        view.id if view else None
        for n in range(1, 600)
        for view in [tracker.add(f"b:{n}", edits[n % len(edits)](isis[9]) + f" #{n}", f"a{n}", T0)]
    }
    assert ids == {"b:0"}
    final = tracker.view("b:0")
    assert final is not None and final.size == 600 and final.accounts == 600


def test_two_campaigns_bridged_by_a_post_merge_under_the_older_id(isis: list[str]) -> None:
    long = " ".join(isis[10:13]).split()
    cut = len(long) * 3 // 4
    head, tail = " ".join(long[:cut]), " ".join(long[-cut:])
    assert _jaccard(head, tail) < 0.6
    tracker = CampaignTracker()
    tracker.add("head", head, "a", T0)
    tracker.add("head:2", EDITS["hashtags"](head), "b", T0)
    tracker.add("tail", tail, "c", T0)
    before = tracker.add("tail:2", EDITS["emoji"](tail), "d", T0)
    assert before is not None and before.id == "tail"
    merged = tracker.add("bridge", " ".join(long), "e", T0)
    assert merged is not None and merged.id == "head" and merged.size == 5
    assert tracker.view("tail") == merged == tracker.view("head")


def test_re_adding_a_key_changes_nothing(isis: list[str]) -> None:
    tracker = CampaignTracker()
    tracker.add("p:1", isis[2], "a", T0)
    first = tracker.add("p:2", EDITS["hashtags"](isis[2]), "b", T0)
    again = tracker.add("p:2", EDITS["hashtags"](isis[2]), "b", T0 + timedelta(minutes=5))
    other_text = tracker.add("p:2", isis[5], "z", T0)
    assert first is not None and first == again == other_text
    assert first.size == 2 and len(tracker) == 2
    assert tracker.add("p:1", isis[2], "a", T0) == first


def test_restore_from_signatures_rebuilds_the_same_campaigns(
    isis: list[str], stormfront_rows: list[dict[str, str]]
) -> None:
    texts = [*_long_distinct(stormfront_rows, 300, min_words=5), *isis]
    texts += [edit(t) for t in isis[:20] for edit in EDITS.values()]
    original = CampaignTracker(window=timedelta(hours=2))
    stored = []
    for number, text in enumerate(texts):
        at = T0 + timedelta(seconds=10 * number)
        original.add(f"k:{number}", text, f"a{number % 7}", at)
        stored.append((f"k:{number}", original.signature(text), f"a{number % 7}", at))
    restored = CampaignTracker(window=timedelta(hours=2))
    for key, signature, author, at in stored:
        if signature is not None:
            restored.restore(key, signature, author, at)
    ids = {f"k:{n}" for n in range(len(texts))}
    views = {key: original.view(key) for key in ids}
    assert sum(v is not None for v in views.values()) >= 20
    assert views == {key: restored.view(key) for key in ids}
    assert len(restored) == len(original)


def test_restore_refuses_what_is_not_a_signature_of_this_configuration(isis: list[str]) -> None:
    small = CampaignTracker(num_perm=64)
    signature = small.signature(isis[0])
    assert signature is not None
    tracker = CampaignTracker()
    for bad in (signature, b"", b"garbage", signature[:40]):
        with pytest.raises(ValueError):
            tracker.restore("k", bad, "a", T0)
    assert len(tracker) == 0


def test_old_posts_expire_and_the_campaign_keeps_its_id(isis: list[str]) -> None:
    tracker = CampaignTracker(window=timedelta(hours=1))
    tracker.add("e:0", isis[3], "a", T0)
    tracker.add("e:1", EDITS["emoji"](isis[3]), "b", T0 + timedelta(minutes=40))
    view = tracker.add("e:2", EDITS["hashtags"](isis[3]), "c", T0 + timedelta(minutes=90))
    assert view is not None
    assert (view.id, view.size, view.accounts, view.first_seen) == ("e:0", 2, 2, T0)
    assert view.sample_keys == ("e:2", "e:1")
    tracker.add("late", isis[4], "d", T0 + timedelta(minutes=20))  # older than the window now
    assert len(tracker) == 2
    tracker.add("later", isis[5], "d", T0 + timedelta(hours=3))
    assert tracker.view("e:0") is None and len(tracker) == 1


def test_memory_is_bounded_by_max_posts(stormfront_rows: list[dict[str, str]]) -> None:
    texts = _long_distinct(stormfront_rows, 300, min_words=5)
    tracker = CampaignTracker(max_posts=50)
    for number, text in enumerate(texts):
        tracker.add(f"m:{number}", text, "a", T0 + timedelta(seconds=number))
        assert len(tracker) <= 50
    tracker.add("copy", texts[-1] + " #copy", "b", T0 + timedelta(seconds=len(texts)))
    assert tracker.view(f"m:{len(texts) - 1}") is not None  # the newest are the ones kept


def test_velocity_counts_the_last_hour(isis: list[str]) -> None:
    tracker = CampaignTracker()
    times = [T0, T0 + timedelta(minutes=100), T0 + timedelta(minutes=130), T0 + timedelta(hours=2)]
    views = [tracker.add(f"v:{n}", f"{isis[6]} #{n}", f"a{n}", at) for n, at in enumerate(times)]
    last = views[-1]
    assert last is not None and last.size == 4
    assert last.velocity_per_hour == 3.0
    tracker.add("unrelated", isis[7], "z", T0 + timedelta(hours=5))
    quiet = tracker.view("v:0")
    assert quiet is not None and quiet.velocity_per_hour == 0.0


def test_short_texts_are_not_tracked() -> None:
    tracker = CampaignTracker()
    for text in ("Allahu akbar", "I hate you all", "", "🔥🔥🔥", "https://t.co/x @a @b"):
        assert tracker.signature(text) is None
        assert tracker.add(text or "empty", text, "a", T0) is None
        assert tracker.add(f"{text}:2", text, "b", T0) is None
    assert len(tracker) == 0


def test_hostile_unicode_and_unspaced_scripts() -> None:
    tracker = CampaignTracker()
    hostile = "k\u200bi\u202el\u202cl \ud800 them all now \x00 tonight at the square \u0301\u0301"
    tracker.add("h:1", hostile, "a", T0)
    assert tracker.signature(hostile) is not None
    chinese = "我们明天在广场集合一起行动不要告诉任何人"
    assert len(words(chinese)) == len(chinese)
    tracker.add("zh:1", chinese, "a", T0)
    view = tracker.add("zh:2", chinese + "快点", "b", T0)
    assert view is not None and view.id == "zh:1"


def test_naive_datetimes_read_as_utc(isis: list[str]) -> None:
    tracker = CampaignTracker()
    tracker.add("n:1", isis[8], "a", T0.replace(tzinfo=None))
    view = tracker.add("n:2", EDITS["emoji"](isis[8]), "b", T0)
    assert view is not None and view.first_seen == T0


def test_adds_from_several_threads(isis: list[str]) -> None:
    tracker = CampaignTracker()
    for number, text in enumerate(isis):
        tracker.add(f"t:{number}", text, "origin", T0)

    def copies(number: int) -> CampaignView | None:
        view = None
        for name, edit in EDITS.items():
            view = tracker.add(f"t:{number}:{name}", edit(isis[number]), name, T0)
        return view

    with ThreadPoolExecutor(max_workers=4) as pool:
        views = list(pool.map(copies, range(len(isis))))
    assert len(tracker) == len(isis) * (1 + len(EDITS))
    assert all(v is not None and v.size == 1 + len(EDITS) for v in views)


@pytest.mark.parametrize(
    "bad",
    [{"threshold": 0.0}, {"num_perm": 8}, {"min_tokens": 1}, {"window": timedelta(0)}],
)
def test_bad_configuration_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CampaignTracker(**bad)  # type: ignore[arg-type]
