# ruff: noqa: RUF001, RUF002, RUF003 - look-alike characters are this module's subject
"""Undo the tricks people use to slip words past filters, keeping the original for display.

Everything downstream (classifiers, the lexicon, MinHash) reads ``normalize(text).text``, and
the classifiers are trained on it, so the output of this module is a contract: change it and
the shipped models must be retrained.

Design choices:

* Steps run in one fixed order chosen so that the result is idempotent
  (``normalize(normalize(x).text).text == normalize(x).text``): HTML entities → invisible
  characters → NFKC (long combining-mark runs capped first) → marks stacked on Latin letters and
  Arabic diacritics → URLs and @mentions → emoji used as words → spaced-out letters →
  whitespace → homoglyphs → casefold → leetspeak → repeated characters. For example
  homoglyphs are folded after letters are joined (``р a y`` only becomes one mixed-script
  word once joined), and before casefolding, because case tells look-alikes apart (Greek
  ``Η`` reads as ``H``, its lower case ``η`` as ``n``).
* Homoglyphs are folded to Latin only inside a word that also holds a Latin letter
  (``kіll`` with a Cyrillic ``і``), so genuine Arabic, Cyrillic and Greek text is left
  alone. Latin small capitals and Cherokee letters (fancy-text generators; Cherokee text is
  vanishingly rare in posts) are folded everywhere. The table is hand-written from the
  Latin prototypes in Unicode's confusables data (UTS #39), plus the lower-case Cyrillic
  forms that read as Latin in mixed words (``к``, ``н``, ``т``); the full confusables file
  maps mostly characters that NFKC already folds and maps some letters to prototypes that are
  not plain Latin (``к`` → ``ĸ``), so it would add a dependency and startup time for little.
* Leetspeak is decoded only in a word where a run of leet characters sits between two Latin
  letters (``k1ll``, ``n1gg3r``, ``isl@m``, ``a$$hole``), so numbers, dates, ``1488``,
  ``covid19``, ``3pm``, ``1st`` and hashtags survive. A leading ``@`` is a mention (it links
  to an account on every platform), so ``@llah`` becomes ``@user``. Known casualties: rare
  letter-digit-letter words such as ``h1n1`` and Arabizi (``sa3a``).
* Spaced-out letters (``k i l l``, ``k.i.l.l``, one letter per line) are joined when at least
  three single letters or digits are separated by one and the same separator; two spaces
  between such runs mark a word break, so ``k i l l  t h e m`` becomes ``kill them``. A run
  made only of real one-letter words (French ``il y a à``) is left alone.
* Runs of one repeated non-digit character are cut to two, not one: two keeps the real double
  letters (``kill``, ``allah``, ``see``) so that ``kiiiill`` and ``kill`` stay close, and
  digits are never cut (``1000000``).
* A small explicit table maps emoji used as words (🔫 → ``gun``) to words; other emoji are
  kept, except skin-tone modifiers and variation selectors, which only change how an emoji
  looks.
* URLs become ``url`` and @mentions ``@user``, as in the training datasets (OLID, ISIS).
* HTML entities are decoded (X API text and Davidson carry ``&amp;``, ``&#128514;``), up to
  four levels of double escaping.
* Hostile input stays linear: combining-mark runs are capped before NFKC (whose canonical
  reordering is quadratic in a run's length), and every pattern is free of nested
  quantifiers.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

#: The tricks :func:`normalize` undoes, in the order they are reported.
EVASIONS = ("compat", "invisible", "homoglyph", "emoji", "spaced", "leet", "repeat")

URL_PLACEHOLDER = "url"
MENTION_PLACEHOLDER = "@user"

#: Longest run of combining marks kept before NFKC: enough for stacked Vietnamese, Hebrew
#: pointing or Indic clusters; a longer run is noise (or an attack on NFKC's reordering).
MAX_MARKS_RUN = 4
_HTML_UNESCAPE_ROUNDS = 4


@dataclass(frozen=True)
class Normalized:
    original: str  #: kept for display
    text: str  #: what classifiers, the lexicon and MinHash see
    evasions: tuple[str, ...]  #: tricks undone, from :data:`EVASIONS`


def _char_classes() -> tuple[list[str], list[str], list[str]]:
    """Invisible characters, combining marks and non-spacing marks, from the Unicode database
    of this Python, scanned once at import: the planes that hold letters, marks and emoji,
    plus plane 14 (tag characters and variation selectors)."""
    invisible: list[str] = []
    marks: list[str] = []
    nonspacing: list[str] = []
    for code in (*range(0x20000), *range(0xE0000, 0xE0200)):
        char = chr(code)
        category = unicodedata.category(char)
        if category in ("Cf", "Cs", "Co") or (category == "Cc" and not char.isspace()):
            invisible.append(char)
        elif category[0] == "M":
            marks.append(char)
            if category != "Mc":
                nonspacing.append(char)
    return invisible, marks, nonspacing


def _one_of(chars: list[str], extra: str = "") -> str:
    """A regex matching one of ``chars`` (sorted) or of the class body ``extra``.

    Characters beyond the BMP get their own class behind a cheap guard: ``re`` compiles a BMP
    class to a lookup table but tests a class holding astral characters range by range, which
    made each of these patterns ten times slower."""
    bmp = _ranges([char for char in chars if char <= "\uffff"])
    astral = _ranges([char for char in chars if char > "\uffff"])
    return f"(?:[{bmp}{extra}]|(?=[\U00010000-\U0010ffff])[{astral}])"


def _ranges(chars: list[str]) -> str:
    """Sorted characters as the body of a regex class, consecutive code points as ranges."""
    parts: list[str] = []
    start = end = ord(chars[0])
    for code in (*(ord(c) for c in chars[1:]), -1):
        if code == end + 1:
            end = code
            continue
        parts.append(re.escape(chr(start)) + ("-" + re.escape(chr(end)) if end > start else ""))
        start = end = code
    return "".join(parts)


_INVISIBLE_CHARS, _MARK_CHARS, _NONSPACING_CHARS = _char_classes()
#: Also invisible though not of a format category: Hangul fillers and the braille blank (shown
#: as nothing, used to pad words apart), the combining grapheme joiner, Mongolian variation
#: selectors, Khmer inherent vowels.
_OTHER_INVISIBLE = "\u115f\u1160\u3164\uffa0\u2800\u034f\u180b-\u180f\u17b4\u17b5"
_EMOJI_STYLE = "\ufe00-\ufe0f\U000e0100-\U000e01ef\U0001f3fb-\U0001f3ff"  # selectors, skin tones
_INVISIBLE = re.compile(_one_of(_INVISIBLE_CHARS, _OTHER_INVISIBLE + _EMOJI_STYLE) + "+")
_PRINTABLE_INVISIBLE = re.compile(f"[{_OTHER_INVISIBLE}{_EMOJI_STYLE}]")  # isprintable() misses
_ZWJ = "\u200d"


def _emoji_joiner(char: str) -> bool:
    """The zero-width joiner and the tag characters that spell subdivision flags (England)."""
    return char == _ZWJ or "\U000e0020" <= char <= "\U000e007f"


#: What counts as an evasion among the removed characters: everything but the emoji styling,
#: flag tags and a zero-width joiner between two emoji (ordinary emoji sequences).
_EVASIVE_INVISIBLE = re.compile(
    _one_of([char for char in _INVISIBLE_CHARS if not _emoji_joiner(char)], _OTHER_INVISIBLE)
    + f"|(?<=\\w){_ZWJ}|{_ZWJ}(?=\\w)"
)
_MARK = _one_of(_MARK_CHARS)
_MARK_RUN = re.compile(f"({_MARK}{{{MAX_MARKS_RUN}}}){_MARK}+")
_LATIN_LETTER = "a-zA-Z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_NONSPACING_MARK = _one_of(_NONSPACING_CHARS)
_MARKS_ON_LATIN = re.compile(f"(?<=[{_LATIN_LETTER}]){_NONSPACING_MARK}+")
#: Arabic short vowels and Quranic annotation marks: optional in writing and absent from most
#: posts, so they are dropped as Arabic NLP usually does (the letters are untouched).
_ARABIC_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06ed]+")
_TATWEEL = re.compile("\u0640+")  # kashida: stretches a word (and splits keywords)
_MARK_OR_TATWEEL = re.compile(_one_of(_NONSPACING_CHARS, "\u0640"))

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"@(?<!\w@)(?<!@@)\w+")  # starts with a literal: re scans for it fast

_EMOJI_WORDS = {
    "🔫": "gun",
    "💣": "bomb",
    "🔪": "knife",
    "🗡": "dagger",
    "⚔": "swords",
    "🪓": "axe",
    "💥": "explosion",
    "🧨": "dynamite",
    "☠": "skull",
    "💀": "skull",
    "⚰": "coffin",
    "🪦": "grave",
    "🩸": "blood",
    "🔥": "fire",
    "🪢": "rope",
    "✈": "plane",
    "🏢": "building",
    "🐷": "pig",
    "🐖": "pig",
    "🐒": "monkey",
    "🐵": "monkey",
    "🦍": "gorilla",
    "🐀": "rat",
    "🖕": "middle finger",
}
# Not 🏴 (black flag): it also starts the England, Scotland and Wales flags (their tag
# characters are removed as invisible) and the pirate flag.
_EMOJI_TABLE = {ord(emoji): f" {word} " for emoji, word in _EMOJI_WORDS.items()}
_WORD_EMOJIS = frozenset(_EMOJI_WORDS)
_WORD_EMOJI_RUN = re.compile("([" + "".join(_EMOJI_WORDS) + r"])\1{2,}")

_SPACED = re.compile(r"(?<![^\W_])[^\W_]([ \t\n.\-_*·~])(?:[^\W_]\1)+[^\W_](?![^\W_])")
#: What every spaced run holds (its second and third letters), found fast because the pattern
#: starts with a separator, so ``re`` skips to separators instead of trying every position.
_SPACED_HINT = re.compile(r"[ \t\n.\-_*·~][^\W_][ \t\n.\-_*·~][^\W_](?![^\W_])")
_ONE_LETTER_WORDS = frozenset("aàeéioóuyù")


def _pairs(table: str) -> dict[int, str]:
    """``"ᴀa ʙb"`` → {ord("ᴀ"): "a", ord("ʙ"): "b"}: one look-alike and its Latin letter."""
    return {ord(pair[0]): pair[1] for pair in table.split()}


#: Folded everywhere: Latin small capitals and letter variants (fancy-text generators) and
#: Cherokee capitals, which stand for Latin letters in any post vigil will see.
_ALWAYS_FOLD = _pairs(
    "ᴀa ʙb ᴄc ᴅd ᴇe ɢg ʜh ɪi ᴊj ᴋk ʟl ᴍm ɴn ᴏo ᴘp ʀr ꜱs ᴛt ᴜu ᴠv ᴡw ʏy ᴢz ıi ȷj ɑa ɡg ɩi "
    "ᎪA ᏴB ᏟC ᎬE ᎻH ᎫJ ᏦK ᎷM ᏚS ᎢT ᏔW ᏃZ ᎠD ᏀG ᏞL ᏒR ᏙV ᏩW ᏗD Ꭵi"
)
#: Folded only inside a word that also holds a Latin letter: Cyrillic, Greek and Armenian
#: letters that read as Latin ones. Case matters (Greek Η reads H, η reads n).
_MIXED_FOLD = _pairs(
    "аa Аa вb Вb сc Сc еe Еe һh нh Нh іi Іi јj Јj кk Кk мm Мm оo Оo рp Рp ѕs Ѕs тt Тt "
    "уy Уy хx Хx ԁd ԛq ԝw Ԝw ӏl Ӏl үy Үy пn ьb "
    "αa Αa βb Βb εe Εe Ζz ηn Ηh ιi Ιi κk Κk Μm νv Νn οo Οo ρp Ρp τt Τt υu Υy χx Χx γy ωw ϲc ϳj "
    "օo սu ոn հh զq"
)
_ALWAYS_FOLDABLE = re.compile("[" + "".join(map(chr, _ALWAYS_FOLD)) + "]")
_MIXED_FOLDABLE = re.compile("[" + "".join(map(chr, _MIXED_FOLD)) + "]")
_WORD = re.compile(r"\S+")
_HAS_LATIN = re.compile(f"[{_LATIN_LETTER}]")

#: Digits and symbols that stand for letters. Not ``!``, ``|`` or ``+``: between two letters
#: they are far more often punctuation without its space (``recht!Zusammenhalten``).
_LEET = str.maketrans("0134578@$€", "oieastbase")
#: A leet character after a letter and before one: the pattern starts with the leet character
#: so that ``re`` skips to those (a letter first would be tried at every position).
_LEET_INSIDE = re.compile(r"[0134578@$€](?<=[a-z].)[0134578@$€]*[a-z]")
_LEET_WORD = re.compile(r"(?<![\w#@$])[a-z0-9@$€]*[a-z][0134578@$€]+[a-z][a-z0-9@$€]*(?!\w)")
_REPEATED = re.compile(r"([^\d\s])\1{2,}")
_THRICE = re.compile(r"(.)\1\1")  # any triple; a plain group scans several times faster


def normalize(text: str) -> Normalized:
    """The text the detectors read, and which evasion tricks were undone to get it."""
    found: set[str] = set()
    result = _unescape_html(text)
    for step in _STEPS:
        result = step(result, found)
    return Normalized(
        original=text,
        text=result,
        evasions=tuple(name for name in EVASIONS if name in found),
    )


Step = Callable[[str, set[str]], str]


def _unescape_html(text: str) -> str:
    for _ in range(_HTML_UNESCAPE_ROUNDS):
        if "&" not in text:
            break
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    return text


def _remove_invisible(text: str, found: set[str]) -> str:
    if text.isprintable() and not _PRINTABLE_INVISIBLE.search(text):
        return text
    stripped = _INVISIBLE.sub("", text)
    if len(stripped) != len(text) and _EVASIVE_INVISIBLE.search(text):
        found.add("invisible")
    return stripped


def _nfkc(text: str, found: set[str]) -> str:
    if unicodedata.is_normalized("NFKC", text):
        return text
    # Canonical reordering is quadratic in a run of marks: 50k marks would take seconds.
    text = _MARK_RUN.sub(r"\1", text)
    if any(_compatibility_alnum(char) for char in set(text)):
        found.add("compat")
    return unicodedata.normalize("NFKC", text)


def _compatibility_alnum(char: str) -> bool:
    """A character that NFKC turns into letters or digits (𝐤, ｋ, ⓚ, ²): a disguised
    letter, unlike typographic compatibility forms such as … or non-breaking spaces."""
    if not unicodedata.decomposition(char).startswith("<"):
        return False
    return any(folded.isalnum() for folded in unicodedata.normalize("NFKC", char))


def _strip_marks(text: str, found: set[str]) -> str:
    if text.isascii() or not _MARK_OR_TATWEEL.search(text):
        return text
    stripped = _MARKS_ON_LATIN.sub("", text)
    if len(stripped) != len(text):
        found.add("homoglyph")  # marks stacked on a letter disguise it (zalgo)
    stripped = _ARABIC_DIACRITICS.sub("", stripped)
    unstretched = _TATWEEL.sub("", stripped)
    if len(unstretched) != len(stripped):
        found.add("repeat")
    return unstretched


def _placeholders(text: str, found: set[str]) -> str:
    if "://" in text or "www." in text or "WWW." in text:
        text = _URL.sub(URL_PLACEHOLDER, text)
    if "@" in text:
        text = _MENTION.sub(MENTION_PLACEHOLDER, text)
    return text


def _emoji_words(text: str, found: set[str]) -> str:
    if text.isascii() or _WORD_EMOJIS.isdisjoint(text):
        return text
    found.add("emoji")
    # A run of one emoji is emphasis, cut to two as repeated characters are (🔫🔫🔫🔫 → gun gun).
    return _WORD_EMOJI_RUN.sub(r"\1\1", text).translate(_EMOJI_TABLE)


def _join_spaced(text: str, found: set[str]) -> str:
    if not _SPACED_HINT.search(text):
        return text

    def join(match: re.Match[str]) -> str:
        elements = match.group()[::2]
        letters = sum(char.isalpha() for char in elements)
        if 2 * letters < len(elements) or set(elements.casefold()) <= _ONE_LETTER_WORDS:
            return match.group()
        found.add("spaced")
        return elements

    return _SPACED.sub(join, text)


def _collapse_whitespace(text: str, found: set[str]) -> str:
    collapsed = " ".join(text.split())
    if len(collapsed) == len(text.strip()):
        return collapsed
    # Runs of single letters that only a longer gap kept apart now touch: join them too.
    return _join_spaced(collapsed, found)


def _fold_homoglyphs(text: str, found: set[str]) -> str:
    if text.isascii():
        return text
    folded = text.translate(_ALWAYS_FOLD) if _ALWAYS_FOLDABLE.search(text) else text
    if _MIXED_FOLDABLE.search(folded) and _HAS_LATIN.search(folded):
        folded = _WORD.sub(_fold_mixed_word, folded)
    if folded != text:
        found.add("homoglyph")
    return folded


def _fold_mixed_word(match: re.Match[str]) -> str:
    word = match.group()
    if _MIXED_FOLDABLE.search(word) and _HAS_LATIN.search(word):
        return word.translate(_MIXED_FOLD)
    return word


def _casefold(text: str, found: set[str]) -> str:
    if text.isascii():
        return text.lower()
    # Turkish İ casefolds to i + a combining dot, which would read as a stacked mark.
    folded = text.casefold().replace("i\u0307", "i")
    return (
        folded
        if unicodedata.is_normalized("NFKC", folded)
        else unicodedata.normalize("NFKC", folded)
    )


def _decode_leet(text: str, found: set[str]) -> str:
    if not _LEET_INSIDE.search(text):
        return text

    def decode(match: re.Match[str]) -> str:
        found.add("leet")
        return match.group().translate(_LEET)

    return _LEET_WORD.sub(decode, text)


def _cut_repeats(text: str, found: set[str]) -> str:
    if not _THRICE.search(text):
        return text

    def cut(match: re.Match[str]) -> str:
        char = match.group(1)
        if char.isalpha():
            found.add("repeat")  # a stretched word; !!!!! or ..... is only emphasis
        return char * 2

    return _REPEATED.sub(cut, text)


_STEPS: tuple[Step, ...] = (
    _remove_invisible,
    _nfkc,
    _strip_marks,
    _placeholders,
    _emoji_words,
    _join_spaced,
    _collapse_whitespace,
    _fold_homoglyphs,
    _casefold,
    _decode_leet,
    _cut_repeats,
)
