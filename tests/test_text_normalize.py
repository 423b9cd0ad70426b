# ruff: noqa: RUF001, RUF003 - look-alike characters are what these tests feed in
"""normalize: each evasion trick undone, real text left alone, hostile input survived, and the
output idempotent on every row of the shared text datasets (the classifiers train on it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigil.text.normalize import EVASIONS, Normalized, normalize


@pytest.mark.parametrize(
    ("text", "expected", "evasion"),
    [
        ("k i l l  t h e m", "kill them", "spaced"),
        ("K.I.L.L them", "kill them", "spaced"),
        ("k\ni\nl\nl", "kill", "spaced"),
        ("k1ll all j3ws", "kill all jews", "leet"),
        ("n1gg3r", "nigger", "leet"),
        ("isl@m a$$hole", "islam asshole", "leet"),
        ("kіll thе infidels", "kill the infidels", "homoglyph"),  # Cyrillic і and е
        ("ΗATE ηigger", "hate nigger", "homoglyph"),  # Greek capital eta, small eta
        ("ᴋɪʟʟ ᴛʜᴇᴍ", "kill them", "homoglyph"),  # Latin small capitals
        ("k̷̢̛i̸̡l̷l", "kill", "homoglyph"),  # marks stacked on Latin letters
        ("k\u200bi\u200cl\u2060l", "kill", "invisible"),
        ("\u202ekill\u202c them", "kill them", "invisible"),
        ("Ｋ𝐈𝐋𝐋 them", "kill them", "compat"),
        ("diiiiiie", "diie", "repeat"),
        ("ارهـــــابي", "ارهابي", "repeat"),  # Arabic kashida stretching a word
        ("I will 🔫 you ☠️", "i will gun you skull", "emoji"),
        ("💣💥 tonight", "bomb explosion tonight", "emoji"),
    ],
)
def test_evasion_undone(text: str, expected: str, evasion: str) -> None:
    result = normalize(text)
    assert result.text == expected
    assert evasion in result.evasions
    assert result.original == text


@pytest.mark.parametrize(
    "text",
    [
        "1488 covid19 3pm 1st 10:30 12.3.2020 24/7 $100k",
        "#k1ll stays a hashtag",
        "il y a à manger",  # real one-letter words are not joined
        "kill all the bees, see you soon",  # real double letters survive
        "1000000 people",
        "مرحبا بكم في الدولة الإسلامية",  # genuine Arabic stays Arabic
        "Путин и война",  # genuine Cyrillic is not transliterated
        "η Ελλάδα",
        "straße café naïve",
    ],
)
def test_ordinary_text_kept(text: str) -> None:
    result = normalize(text)
    assert result.text == text.casefold()
    assert result.evasions == ()


def test_placeholders_match_the_datasets() -> None:
    result = normalize("@Bob look https://x.com/a/b?c=1 and www.example.org/x @USER URL")
    assert result.text == "@user look url and url @user url"
    assert normalize("@llah").text == "@user"  # a leading @ is a mention
    assert normalize("bob@ home").text == "bob@ home"


def test_emoji_styling_is_not_an_evasion() -> None:
    result = normalize("family 👨\u200d👩\u200d👧 ❤️ 👍🏽")
    assert result.text == "family 👨👩👧 ❤ 👍"
    assert result.evasions == ()


def test_html_entities_decoded() -> None:
    assert normalize("Tom &amp;amp; Jerry &#128514; &lt;3").text == "tom & jerry 😂 <3"


def test_whitespace_collapsed() -> None:
    assert normalize("  a\t\tbig \n\n  gap\u00a0here  ").text == "a big gap here"


def test_evasions_in_fixed_order() -> None:
    result = normalize("k1ll  \u200bthеm  🔫🔫🔫 d i e e e e")
    assert list(result.evasions) == sorted(result.evasions, key=EVASIONS.index)
    assert set(result.evasions) == {"invisible", "homoglyph", "emoji", "spaced", "leet", "repeat"}


@pytest.mark.parametrize(
    "hostile",
    [
        "a" + "\u0301\u0316" * 25_000,  # 50k mixed combining marks (NFKC reorders them)
        "\u0301" * 50_000,
        "kill " * 10_000,
        "\u202e" * 50_000,
        "\ud800" * 1_000 + "x\udfff",  # lone surrogates
        "\x00kill\x00",
        "k\u200b" * 25_000,
        "k " * 25_000,
        "k1" * 25_000,
        "🔫" * 25_000,
        "&amp;" * 10_000,
    ],
)
def test_hostile_input_survives(hostile: str) -> None:
    result = normalize(hostile)
    result.text.encode("utf-8")  # no lone surrogate left to break storage
    assert "\x00" not in result.text
    assert len(result.text) <= 2 * len(hostile)
    assert normalize(result.text).text == result.text


def test_combining_runs_capped_before_reordering() -> None:
    # Marks of two classes need NFKC's canonical reordering, quadratic in the run's length.
    capped = normalize("д" + "\u0301\u0316" * 5_000 + " x")
    assert capped.text == "д\u0316\u0316\u0301\u0301 x"


def test_arabic_diacritics_dropped() -> None:
    assert normalize("بَّ" + "\u064e\u0651\u0650\u064f" * 2_000 + "ق").text == "بق"


def test_subdivision_flags_are_not_black_flags() -> None:
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    assert normalize(f"come on {england}") == Normalized(
        original=f"come on {england}", text="come on \U0001f3f4", evasions=()
    )


def test_emoji_runs_cut_to_two() -> None:
    assert normalize("🔫🔫🔫🔫🔫 💣").text == "gun gun bomb"


def test_result_is_frozen() -> None:
    result = normalize("x")
    assert isinstance(result, Normalized)
    with pytest.raises(AttributeError):
        result.text = "y"  # type: ignore[misc]


def test_idempotent_on_the_datasets(shared_data: Path) -> None:
    files = sorted((shared_data / "text").glob("*.jsonl"))
    assert files
    unstable: list[tuple[str, str]] = []
    rows = 0
    for path in files:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                text = json.loads(line)["text"]
                once = normalize(text).text
                rows += 1
                if normalize(once).text != once:
                    unstable.append((text, once))
    assert rows > 100_000
    assert unstable == []
