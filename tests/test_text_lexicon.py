"""The lexicon: the shipped list loads and matches evasive spellings, whole words only, in
several scripts; user files load, merge, save and fail with the entry's index; the shipped list
stays quiet on ordinary text."""

# ruff: noqa: RUF001, RUF003 - Cyrillic look-alikes are what some of these tests feed in

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vigil.text.lexicon import Lexicon, LexiconEntry, LexiconError
from vigil.text.normalize import normalize


def hits(lexicon: Lexicon, text: str) -> list[tuple[str, str]]:
    """(entry id, matched normalized text) for each hit."""
    normalized = normalize(text).text
    return [(hit.entry.id, normalized[hit.start : hit.end]) for hit in lexicon.match(normalized)]


@pytest.fixture(scope="module")
def default() -> Lexicon:
    return Lexicon.default()


@pytest.mark.parametrize(
    ("text", "entry_id", "matched"),
    [
        ("they fled Daesh last year", "uk-isil", "daesh"),
        ("D@esh", "uk-isil", "daesh"),
        ("d a e s h", "uk-isil", "daesh"),
        ("Dаеsh", "uk-isil", "daesh"),  # Cyrillic а and е
        ("ISIS-K claimed it", "uk-isil", "isis-k"),
        ("al-Qaeda, al qaeda", "uk-al-qaida", "al-qaeda"),
        ("alqaeda", "uk-al-qaida", "alqaeda"),
        ("ولداعش", "uk-isil", "ولداعش"),  # Arabic proclitics joined to the name
        ("الدولة باقية وتتمدد", "is-baqiya", "باقية وتتمدد"),
        ("baqiya wa tatamadad!!", "is-baqiya", "baqiya wa tatamadad"),
        ("wpww 14/88", "wp-1488", "14/88"),
        ("hayden - 1488 here", "wp-1488", "1488"),
        ("the day of the rope is coming", "wp-day-of-the-rope", "day of the rope"),
        ("Meine Ehre heißt Treue", "nazi-ss-motto", "meine ehre heisst treue"),
        ("(((Soros))) again", "hate-echo", "((soros))"),
        ("saint Tarrant did nothing wrong", "acc-saints", "saint tarrant"),
        ("PMC Wagner", "uk-wagner", "pmc wagner"),
        ("ЧВК Вагнер", "uk-wagner", "чвк вагнер"),
    ],
)
def test_default_matches(default: Lexicon, text: str, entry_id: str, matched: str) -> None:
    assert (entry_id, matched) in hits(default, text)


@pytest.mark.parametrize(
    "text",
    [
        "la ira de Dios",  # Spanish 'anger', not the IRA
        "our national action plan for the base case",
        "er zog sich zurück",  # German verb, not ZOG
        "he saw Isisford and crisis management",  # no match inside words
        "what is the ETA of the parcel",
        "كان الشباب في القاعدة مع حماس كبير",  # youth, the base, enthusiasm
        "lethal 1489 and 148 8",
    ],
)
def test_default_quiet_on_ordinary_text(default: Lexicon, text: str) -> None:
    assert hits(default, text) == []


def test_longest_term_wins(default: Lexicon) -> None:
    assert hits(default, "islamic state of iraq and the levant") == [
        ("uk-isil", "islamic state of iraq and the levant")
    ]


def test_explanation_names_term_entry_and_note(default: Lexicon) -> None:
    (hit,) = default.match(normalize("Daesh").text)
    assert hit.explanation.startswith('"Daesh" — Islamic State of Iraq and the Levant (ISIL): ')
    assert "Terrorism Act 2000" in hit.explanation


def test_default_entries_are_complete(default: Lexicon) -> None:
    assert default.as_of == "2025-07"
    categories = {entry.category for entry in default.entries}
    assert categories == {"proscribed_organisation", "slogan", "coded_term"}
    assert len(default.entries) >= 80
    for entry in default.entries:
        assert entry.note and entry.source and entry.terms
        assert 0.0 < entry.weight <= 1.0


def test_default_is_quiet_on_most_dataset_rows(default: Lexicon, shared_data: Path) -> None:
    """Outside the pro-ISIS and Stormfront sets, very few posts hit at all: the list is not
    made of words ordinary posts use."""
    rows = hit_rows = 0
    for path in sorted((shared_data / "text").glob("*.jsonl")):
        if path.stem in ("isis_fifthtribe", "stormfront"):
            continue
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                rows += 1
                hit_rows += bool(default.match(normalize(json.loads(line)["text"]).text))
    assert rows > 50_000
    assert hit_rows / rows < 0.01


def test_default_finds_the_pro_isis_accounts(default: Lexicon, shared_data: Path) -> None:
    with (shared_data / "text" / "isis_fifthtribe.jsonl").open(encoding="utf-8") as lines:
        texts = [normalize(json.loads(line)["text"]).text for line in lines]
    with_hits = sum(bool(default.match(text)) for text in texts)
    assert with_hits / len(texts) > 0.15


def _entry(entry_id: str, terms: list[str], weight: float = 0.5) -> dict[str, object]:
    return {
        "id": entry_id,
        "name": f"Entry {entry_id}",
        "label": "hate",
        "category": "coded_term",
        "terms": terms,
        "weight": weight,
        "note": "a test entry",
        "source": "tests",
    }


def write(path: Path, entries: list[object], as_of: str = "2025-09") -> Path:
    path.write_text(json.dumps({"as_of": as_of, "entries": entries}), encoding="utf-8")
    return path


def test_user_file_merges_over_default(default: Lexicon, tmp_path: Path) -> None:
    user = Lexicon.load(
        write(
            tmp_path / "mine.json",
            [_entry("uk-isil", ["tanzim"], 0.9), _entry("local-code", ["gr33n fr0gs"])],
        )
    )
    merged = default.merged(user)
    assert len(merged.entries) == len(default.entries) + 1
    assert hits(merged, "tanzim and daesh and green frogs") == [
        ("uk-isil", "tanzim"),
        ("local-code", "green frogs"),
    ]
    assert merged.as_of == "2025-09"


def test_weight_zero_switches_an_entry_off(default: Lexicon, tmp_path: Path) -> None:
    off = Lexicon.load(write(tmp_path / "off.json", [_entry("uk-isil", ["daesh"], 0.0)]))
    assert hits(default.merged(off), "daesh") == []


def test_save_and_load_round_trip(default: Lexicon, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "saved.json"
    default.save(path)
    loaded = Lexicon.load(path)
    assert loaded.entries == default.entries
    assert loaded.as_of == default.as_of


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([_entry("ok", ["a"]), {**_entry("bad", ["x"]), "weight": 2}], "entry 1 (bad): weight"),
        ([{**_entry("bad", ["x"]), "label": "nice"}], "entry 0 (bad): label"),
        ([{**_entry("bad", ["x"]), "extra": 1}], "entry 0 (bad): extra"),
        ([_entry("bad", [])], "entry 0 (bad): terms"),
        ([_entry("bad", ["\u200b"])], "entry 0 (bad): term '\\u200b' is empty"),
        ([_entry("Bad Id", ["x"])], "entry 0 (Bad Id): id"),
        ([_entry("twice", ["x"]), _entry("twice", ["y"])], "entry 1 (twice): the id is used twice"),
        (["not an object"], "entry 0: entry"),
    ],
)
def test_bad_entries_named(tmp_path: Path, entries: list[object], message: str) -> None:
    path = write(tmp_path / "bad.json", entries)
    with pytest.raises(LexiconError, match=re.escape(message)):
        Lexicon.load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "expected an object"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_files_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(LexiconError, match=message):
        Lexicon.load(path)
    with pytest.raises(LexiconError, match="cannot read"):
        Lexicon.load(tmp_path / "missing.json")


def test_empty_lexicon_matches_nothing() -> None:
    assert Lexicon([]).match("anything at all") == []


def test_entries_built_in_code() -> None:
    entry = LexiconEntry(
        id="x",
        name="X",
        label="offensive",
        category="coded_term",
        terms=("sp@ced out",),
        weight=0.5,
        note="n",
        source="s",
    )
    (hit,) = Lexicon([entry]).match(normalize("this is S P A C E D out").text)
    assert (hit.entry, hit.term) == (entry, "sp@ced out")
