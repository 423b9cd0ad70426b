"""Stream metadata: the category, title and tags the platform registered the stream with.

Most first-person shooting on live platforms is a game, airsoft, a film or a training drill,
and platforms usually say so: a "Call of Duty" category, an "airsoft milsim" title, a "trailer"
tag. Those labels are evidence *against* an attack, and only weak evidence: the streamer writes
them, and an attacker who knows that vigil reads them can label a real attack "Call of Duty"
(the Halle and Buffalo attacks were streamed on Twitch, a gaming platform). So the ratio is
modest — a category hit counts 0.75, every title or tag term 0.35, the sum clipped to [-1, 0]
— and it is emitted once a second, so a mislabelled stream costs the fusion at most 1 per
second against the 2.5-7 per second that co-occurring attack cues add.

No positive ratio from titles: an attacker's title is chosen by the attacker (the known ones
were innocuous or in-jokes), while words like "shooting", "attack" or "live fire" are far more
common on benign streams (games, ranges, news, photo shoots); a positive ratio would raise
false alarms on exactly those streams and would be trivial to avoid for the attacker.

Terms (:data:`TERMS`) match whole words after lower-casing and turning punctuation into spaces
("Counter-Strike 2" -> "counter strike 2"). "bodycam" alone is deliberately not a term: it
names photorealistic games but also real body-camera footage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from vigil.live.evidence.base import Evidence
from vigil.live.samples import VideoSample

NAME = "metadata"

#: Look-alike terms by group (for the detail shown to reviewers).
TERMS: dict[str, tuple[str, ...]] = {
    "gaming": (
        "gaming",
        "gamer",
        "gameplay",
        "game",
        "games",
        "video game",
        "video games",
        "videogame",
        "lets play",
        "playthrough",
        "walkthrough",
        "speedrun",
        "esports",
        "e sports",
        "fps",
        "first person shooter",
        "shooter game",
        "battle royale",
        "multiplayer",
        "ranked",
        "twitch plays",
        "playstation",
        "ps5",
        "ps4",
        "xbox",
        "nintendo",
    ),
    "game_title": (
        "call of duty",
        "cod",
        "warzone",
        "modern warfare",
        "black ops",
        "counter strike",
        "cs2",
        "csgo",
        "cs go",
        "valorant",
        "fortnite",
        "pubg",
        "apex legends",
        "battlefield",
        "rainbow six",
        "r6",
        "siege",
        "escape from tarkov",
        "tarkov",
        "halo",
        "doom",
        "overwatch",
        "arma",
        "arma 3",
        "arma reforger",
        "squad",
        "insurgency",
        "insurgency sandstorm",
        "ready or not",
        "hell let loose",
        "dayz",
        "gta",
        "grand theft auto",
        "far cry",
        "stalker",
        "payday",
        "left 4 dead",
        "borderlands",
        "titanfall",
        "the finals",
        "hunt showdown",
        "sniper elite",
        "ghost recon",
        "battlebit",
        "delta force",
        "xdefiant",
        "unrecord",
        "swat 4",
        "pavlov",
    ),
    "airsoft": (
        "airsoft",
        "paintball",
        "milsim",
        "nerf",
        "laser tag",
        "lasertag",
        "gel blaster",
        "gelsoft",
    ),
    "film": (
        "film",
        "movie",
        "trailer",
        "teaser",
        "cinema",
        "short film",
        "behind the scenes",
        "stunt",
        "stunts",
        "vfx",
        "cgi",
        "special effects",
    ),
    "training": (
        "police training",
        "swat training",
        "military training",
        "training exercise",
        "active shooter drill",
        "active shooter training",
        "drill",
        "simulation",
        "simulator",
        "reenactment",
        "re enactment",
        "force on force",
        "simunition",
        "shoot house",
        "shooting range",
        "gun range",
        "range day",
        "target practice",
    ),
    "vr": ("vr", "virtual reality"),
}

_PUNCTUATION = re.compile(r"[^\w]+")


def _normalise(text: str) -> str:
    """Lower case, apostrophes dropped ("let's" -> "lets"), other punctuation as spaces."""
    return " " + _PUNCTUATION.sub(" ", text.lower().replace("'", "").replace("\u2019", "")) + " "


def _terms_in(text: str) -> list[str]:
    padded = _normalise(text)
    return sorted({term for terms in TERMS.values() for term in terms if f" {term} " in padded})


@dataclass(frozen=True)
class StreamMetadata:
    category: str | None = None
    title: str | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> StreamMetadata:
        """From what a platform or an API client gives: ``category`` (or ``game``,
        ``game_name``), ``title``, ``tags`` (a list of strings or a comma-separated string).
        Other keys are ignored; a key of the wrong type is an error that names it."""
        category = _text(data, "category") or _text(data, "game") or _text(data, "game_name")
        raw_tags = data.get("tags", ())
        if isinstance(raw_tags, str):
            tags = tuple(tag.strip() for tag in raw_tags.split(",") if tag.strip())
        elif isinstance(raw_tags, list | tuple) and all(isinstance(t, str) for t in raw_tags):
            tags = tuple(raw_tags)
        else:
            raise ValueError("stream metadata 'tags' must be a list of strings or a string")
        return cls(category=category, title=_text(data, "title"), tags=tags)


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"stream metadata '{key}' must be a string, not {type(value).__name__}")


@dataclass(frozen=True)
class MetadataConfig:
    #: Seconds of stream time between two emissions (the fusion sees it in every window).
    interval_s: float = 1.0
    category_weight: float = 0.75
    term_weight: float = 0.35
    llr_min: float = -1.0

    def __post_init__(self) -> None:
        if self.interval_s < 0:
            raise ValueError("interval_s must not be negative")
        if self.llr_min >= 0 or self.category_weight < 0 or self.term_weight < 0:
            raise ValueError("metadata is evidence against an attack: llr_min < 0, weights >= 0")


@dataclass(frozen=True)
class MetadataHits:
    category: list[str] = field(default_factory=list)
    title: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def llr(self, config: MetadataConfig) -> float:
        terms = set(self.title) | set(self.tags)
        weight = config.category_weight * bool(self.category) + config.term_weight * len(terms)
        return max(-weight, config.llr_min)


def look_alike_terms(metadata: StreamMetadata) -> MetadataHits:
    return MetadataHits(
        category=_terms_in(metadata.category or ""),
        title=_terms_in(metadata.title or ""),
        tags=sorted({term for tag in metadata.tags for term in _terms_in(tag)}),
    )


MetadataLookup = Callable[[str], StreamMetadata | Mapping[str, Any] | None]


class MetadataSource:
    """One stream's metadata evidence. It asks ``lookup`` for the stream's current metadata at
    every emission, so a title changed mid-stream counts from the next second."""

    def __init__(
        self, stream_id: str, lookup: MetadataLookup, config: MetadataConfig | None = None
    ) -> None:
        self.config = config or MetadataConfig()
        self.name = NAME
        self.modality: Literal["video"] = "video"
        self._stream_id = stream_id
        self._lookup = lookup
        self._last: float | None = None
        self._cached: tuple[StreamMetadata, MetadataHits] | None = None

    def observe(self, sample: VideoSample) -> Evidence | None:
        if self._last is not None and 0 <= sample.t - self._last < self.config.interval_s:
            return None
        found = self._lookup(self._stream_id)
        if found is None:
            return None
        self._last = sample.t
        metadata = (
            found if isinstance(found, StreamMetadata) else StreamMetadata.from_mapping(found)
        )
        if self._cached is None or self._cached[0] != metadata:
            self._cached = (metadata, look_alike_terms(metadata))
        hits = self._cached[1]
        llr = hits.llr(self.config)
        detail = {"category": hits.category, "title": hits.title, "tags": hits.tags}
        return Evidence(NAME, sample.t, llr / self.config.llr_min, llr, detail)


class MetadataFactory:
    """Makes each stream's :class:`MetadataSource`; ``lookup(stream_id)`` returns the stream's
    metadata (a :class:`StreamMetadata` or a mapping) or None when the platform gave none,
    e.g. ``MetadataFactory(registered_metadata.get)``."""

    def __init__(self, lookup: MetadataLookup, config: MetadataConfig | None = None) -> None:
        self.lookup = lookup
        self.config = config or MetadataConfig()
        self.name = NAME

    def __call__(self, stream_id: str) -> MetadataSource:
        return MetadataSource(stream_id, self.lookup, self.config)
