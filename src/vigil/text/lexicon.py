"""The curated lexicon: proscribed organisations, slogans and coded terms, each hit explained.

A classifier scores how a post reads; the lexicon says which known names and phrases it holds
and why they matter, in words a reviewer can check (the entry's note and source). Entries live
in JSON (``lexicon/default.json`` ships; a user's file has the same shape and overrides shipped
entries by id), so analysts edit them without touching code.

Matching, fast enough to run on every post:

* Terms are normalized with :func:`vigil.text.normalize.normalize` when loaded, so a term and
  an evasive spelling of it (``d@esh``, ``D A E S H``, Cyrillic look-alikes) meet on the
  same text.
* Every term of every entry goes into one regular expression shaped as a trie (terms sharing a
  prefix share a branch), so the engine tries only the few branches that fit the letters at
  each word start: one pass over the post whatever the number of terms.
* Terms match whole words: a term that starts or ends with a letter or digit does not match
  inside a longer word. Where a term has a space, hyphen, dot, slash or apostrophe, the text
  may have any of those (up to two) or none (``al-qaeda``, ``al qaeda``, ``alqaeda``;
  ``14/88``, ``14 88``, ``1488``). A ``*`` in a term stands for one to three words without
  brackets (``((*))``, the antisemitic echo). Arabic terms also match after the proclitics
  Arabic writes joined to the word (``و`` and or ``ف`` so, then ``ب`` with, ``ل`` for or
  ``ك`` like: ``ولداعش``).
* Of two terms starting at the same place, the longer wins.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vigil.text.normalize import normalize

Label = Literal["threat_incitement", "terror_support", "hate", "offensive"]
Category = Literal["proscribed_organisation", "slogan", "coded_term"]

DEFAULT_PATH = Path(__file__).with_name("lexicon") / "default.json"
#: A lexicon is a hand-edited list; a file this large is a mistake or an attack.
MAX_FILE_BYTES = 10 * 1024 * 1024

_SEPARATORS = r"\s\-_./'"
_SEPARATOR = f"[{_SEPARATORS}]{{0,2}}"
_WILDCARD = r"[^\s()]+(?: [^\s()]+){0,2}"
_ARABIC_PROCLITIC = "[وف]?[بلك]?"


@dataclass(frozen=True)
class LexiconEntry:
    id: str
    name: str
    label: Label
    category: Category
    terms: tuple[str, ...]  #: aliases and spellings, matched on normalized text, word-bounded
    weight: float  #: 0..1: how much a hit alone says
    note: str  #: the explanation shown to reviewers
    source: str  #: where the entry comes from


@dataclass(frozen=True)
class LexiconHit:
    entry: LexiconEntry
    term: str  #: the entry's term, as written in the lexicon, that matched
    start: int  #: span in the normalized text
    end: int

    @property
    def explanation(self) -> str:
        return f'"{self.term}" — {self.entry.name}: {self.entry.note}'


class LexiconError(ValueError):
    """A lexicon file that cannot be used, with where and why."""


class _EntryModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    label: Label
    category: Category
    terms: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]],
        Field(min_length=1, max_length=500),
    ]
    weight: Annotated[float, Field(ge=0.0, le=1.0)]
    note: Annotated[str, Field(min_length=1, max_length=2_000)]
    source: Annotated[str, Field(min_length=1, max_length=1_000)]


class Lexicon:
    """An immutable list of entries and the matcher compiled from them."""

    def __init__(self, entries: Iterable[LexiconEntry], *, as_of: str = "") -> None:
        self.entries: tuple[LexiconEntry, ...] = tuple(entries)
        self.as_of = as_of
        seen: set[str] = set()
        for index, entry in enumerate(self.entries):
            if entry.id in seen:
                raise LexiconError(f"entry {index} ({entry.id}): the id is used twice")
            seen.add(entry.id)
        self._matcher = _Matcher(self.entries)

    @classmethod
    def default(cls) -> Lexicon:
        """The shipped list (``lexicon/default.json``), compiled once per process."""
        return _default()

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        """A lexicon file: ``{"as_of": ..., "entries": [...]}``. Raises :class:`LexiconError`
        naming the file, and the entry's index and field for a bad entry."""
        document = _read_json(path)
        raw_entries = document.get("entries") if isinstance(document, dict) else None
        if not isinstance(raw_entries, list):
            raise LexiconError(f"{path}: expected an object with an 'entries' list")
        as_of = document.get("as_of", "")
        entries = [_entry(path, index, raw) for index, raw in enumerate(raw_entries)]
        try:
            return cls(entries, as_of=as_of if isinstance(as_of, str) else "")
        except LexiconError as exc:
            raise LexiconError(f"{path}: {exc}") from None

    def merged(self, other: Lexicon) -> Lexicon:
        """These entries with ``other``'s added; an ``other`` entry replaces one with its id."""
        overrides = {entry.id: entry for entry in other.entries}
        kept = [overrides.pop(entry.id, entry) for entry in self.entries]
        new = [entry for entry in other.entries if entry.id in overrides]
        return Lexicon([*kept, *new], as_of=other.as_of or self.as_of)

    def save(self, path: Path) -> None:
        """Write the lexicon as JSON (the format :meth:`load` reads), replacing ``path`` whole."""
        document = {
            "as_of": self.as_of,
            "entries": [_entry_json(entry) for entry in self.entries],
        }
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def match(self, normalized_text: str) -> list[LexiconHit]:
        """Hits in text already normalized (``normalize(text).text``), in text order."""
        return list(self._matcher.hits(normalized_text))


@cache
def _default() -> Lexicon:
    return Lexicon.load(DEFAULT_PATH)


def _read_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LexiconError(f"{path}: {size} bytes, more than {MAX_FILE_BYTES} allowed")
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise LexiconError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise LexiconError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise LexiconError(f"{path}: not JSON: {exc.msg} (line {exc.lineno})") from None


def _entry(path: Path, index: int, raw: object) -> LexiconEntry:
    label = f"{path}: entry {index}"
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        label += f" ({raw['id']})"
    try:
        model = _EntryModel.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'entry'}: {error['msg']}"
            for error in exc.errors()
        )
        raise LexiconError(f"{label}: {problems}") from None
    for term in model.terms:
        if not normalize(term.replace("*", "")).text.strip():
            raise LexiconError(f"{label}: term {term!r} is empty once normalized")
    return LexiconEntry(**{**model.model_dump(), "terms": tuple(model.terms)})


def _entry_json(entry: LexiconEntry) -> dict[str, Any]:
    return {**asdict(entry), "terms": list(entry.terms)}


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    key: int | None = None  #: the term ending here, as an index into the matcher's terms


class _Matcher:
    """All terms compiled into one trie-shaped pattern; a match's last group names its term."""

    def __init__(self, entries: tuple[LexiconEntry, ...]) -> None:
        self._terms: list[list[tuple[LexiconEntry, str]]] = []
        index_of: dict[str, int] = {}
        for entry in entries:
            if entry.weight == 0:
                continue  # how a user's file switches a shipped entry off
            for term in entry.terms:
                key = _term_key(term)
                if key not in index_of:
                    index_of[key] = len(self._terms)
                    self._terms.append([])
                owners = self._terms[index_of[key]]
                if all(owner is not entry for owner, _ in owners):
                    owners.append((entry, term))
        self._pattern = _compile(index_of)

    def hits(self, text: str) -> Iterator[LexiconHit]:
        if self._pattern is None:
            return
        for match in self._pattern.finditer(text):
            assert match.lastgroup is not None  # every alternative ends in a named group
            for entry, term in self._terms[int(match.lastgroup[1:])]:
                yield LexiconHit(entry=entry, term=term, start=match.start(), end=match.end())


def _term_key(term: str) -> str:
    """A term as the matcher spells it: normalized, with separators and wildcards as tokens
    (``\\x00`` a separator, ``\\x01`` a wildcard: characters normalize never leaves)."""
    parts = [normalize(part).text for part in term.split("*")]
    key = "\x01".join(parts)
    return re.sub(f"[{_SEPARATORS}]+", "\x00", key).strip("\x00")


def _compile(index_of: dict[str, int]) -> re.Pattern[str] | None:
    groups: dict[str, _Node] = {"word": _Node(), "arabic": _Node(), "other": _Node()}
    for key, index in index_of.items():
        first = key[0]
        start = (
            "arabic" if "\u0600" <= first <= "\u06ff" else "word" if first.isalnum() else "other"
        )
        node = groups[start]
        for char in key:
            node = node.children.setdefault(char, _Node())
        node.key = index
    prefixes = {"word": r"(?<!\w)", "arabic": r"(?<!\w)" + _ARABIC_PROCLITIC, "other": ""}
    alternatives = [
        prefixes[name] + _node_pattern(root, "") for name, root in groups.items() if root.children
    ]
    return re.compile("|".join(alternatives)) if alternatives else None


def _node_pattern(node: _Node, last: str) -> str:
    """The regex for the trie below ``node``; ``last`` is the character leading into it.
    Longer continuations come before the term ending here, so the longest term wins."""
    options = [_edge(char) + _node_pattern(child, char) for char, child in node.children.items()]
    if node.key is not None:
        boundary = r"(?!\w)" if last.isalnum() or last == "_" else ""
        options.append(f"{boundary}(?P<t{node.key}>)")
    if len(options) == 1:
        return options[0]
    return "(?:" + "|".join(options) + ")"


def _edge(char: str) -> str:
    if char == "\x00":
        return _SEPARATOR
    if char == "\x01":
        return _WILDCARD
    return re.escape(char)
