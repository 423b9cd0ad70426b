"""On-screen text typical of games, read with RapidOCR (PP-OCR models inside its wheel).

Games print their state on screen: AMMO 30/120, HP 100, KILLS, WAVE 3, +100, RESPAWN IN 5,
KILLCAM. A camera filming the real world rarely shows those words. OCR costs about 0.1 s per
640x360 frame on one core here (PP-OCRv6 small, detection limited to ``max_side`` px), so the
source reads one frame every ``interval_s`` seconds of stream time and returns None for the
frames in between (the fusion holds its last ratio for a few seconds).

The lexicon (:data:`LEXICON`) is a list of regular expressions over each OCR line, upper-cased,
with a weight: HUD vocabulary that names game mechanics weighs 1.0 (AMMO, HP, XP, KILLCAM,
RESPAWN, RELOAD, HEADSHOT, ...), words that also occur in sports or on signs weigh 0.6 (SCORE,
HEALTH, WAVE, LEVEL, ROUND, MISSION, VICTORY, ...), and the shapes of counters weigh 0.5-0.6
(``30/120`` ammo counters, ``+100`` point pop-ups, ``LV 12``). Each entry counts once per
reading. LLR = -1.5 x (sum of weights), clipped to [-3, 0]: two HUD words reach the floor, one
word on a shop sign costs at most 1.5. Dates, clock times and camera timestamps are kept out
of the counter pattern (a police body camera burns in a timestamp, not game words).

The OCR engine is :mod:`vigil.ocr`'s, loaded once per process and shared by all streams (and
the post scanner's attachments) behind a lock, on one ONNX Runtime thread so that many streams
share the CPU fairly.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vigil.live.evidence.base import Evidence
from vigil.live.samples import VideoSample
from vigil.ocr import read_lines

NAME = "gametext"

#: (label, pattern, weight): patterns match an upper-cased OCR line.
LEXICON: tuple[tuple[str, str, float], ...] = (
    # Game mechanics: rare on anything but a game's HUD.
    ("AMMO", r"\bAMMO\b", 1.0),
    ("HP", r"\bHP\b", 1.0),
    ("XP", r"\bXP\b", 1.0),
    ("ARMOR", r"\bARMOU?R\b", 1.0),
    ("KILLS", r"\bKILLS\b", 1.0),
    ("KILLCAM", r"\bKILL ?CAM\b", 1.0),
    ("KILLSTREAK", r"\bKILL ?STREAK\b", 1.0),
    ("MULTIKILL", r"\b(?:DOUBLE|TRIPLE|QUAD|MULTI) ?KILL\b", 1.0),
    ("HEADSHOT", r"\bHEAD ?SHOTS?\b", 1.0),
    ("RELOAD", r"\bRELOAD(?:ING)?\b", 1.0),
    ("RESPAWN", r"\bRE ?SPAWN(?:ING|S)?\b", 1.0),
    ("ELIMINATED", r"\bELIMINAT(?:ED|IONS?)\b", 1.0),
    ("K/D", r"\bK ?/ ?D\b", 1.0),
    ("GAME OVER", r"\bGAME ?OVER\b", 1.0),
    ("YOU DIED", r"\bYOU (?:DIED|ARE DEAD)\b", 1.0),
    ("MISSION FAILED", r"\bMISSION (?:FAILED|COMPLETE)\b", 1.0),
    ("SPECTATING", r"\bSPECTATING\b", 1.0),
    ("LOADOUT", r"\bLOADOUT\b", 1.0),
    ("PRESS TO", r"\bPRESS \[?[A-Z0-9]{1,5}\]? TO\b", 0.8),
    # Also on sports broadcasts, signs or menus: weaker.
    ("HEALTH", r"\bHEALTH\b", 0.6),
    ("SCORE", r"\bSCORE\b", 0.6),
    ("WAVE", r"\bWAVE\b", 0.6),
    ("LEVEL", r"\b(?:LEVEL|LVL)\b", 0.6),
    ("ROUND", r"\bROUND\b", 0.6),
    ("OBJECTIVE", r"\bOBJECTIVES?\b", 0.6),
    ("CHECKPOINT", r"\bCHECKPOINT\b", 0.6),
    ("MISSION", r"\bMISSION\b", 0.6),
    ("VICTORY", r"\b(?:VICTORY|DEFEAT)\b", 0.6),
    ("SHIELD", r"\bSHIELDS?\b", 0.6),
    ("STAMINA", r"\bSTAMINA\b", 0.6),
    ("GRENADE", r"\bGRENADES?\b", 0.6),
    ("SQUAD", r"\bSQUAD\b", 0.6),
    ("ASSISTS", r"\bASSISTS?\b", 0.6),
    # Shapes of HUD numbers. A counter is 1-3 digits / 2-3 digits standing alone: not a date
    # (12/05/2024), a time (12:05) or a fraction (1/2, 24/7).
    ("COUNTER", r"(?<![\d/.:-])\d{1,3} ?/ ?\d{2,3}(?![\d/.:-])", 0.6),
    ("POINTS", r"(?<![\w+])\+\d{2,4}(?![\w.,])", 0.5),
    ("LV", r"\bLV\.? ?\d{1,3}\b", 0.6),
)

_COMPILED = tuple((label, re.compile(pattern), weight) for label, pattern, weight in LEXICON)
_MISREAD_O = re.compile(r"(?<=[A-Z])0(?=[A-Z]|\b)")
_MISREAD_I = re.compile(r"(?<=[A-Z])1(?=[A-Z]|\b)")
_LETTERS_DIGITS = re.compile(r"(?<=[A-Z])(?=\d)|(?<=\d)(?=[A-Z])")


@dataclass(frozen=True)
class GameTextConfig:
    #: Seconds of stream time between two OCR readings of one stream.
    interval_s: float = 5.0
    #: OCR detection runs on the frame scaled so that its longer side is at most this.
    max_side: int = 640
    #: Lines the recogniser is less sure of than this are ignored.
    min_confidence: float = 0.6
    #: LLR per unit of lexicon weight, and the floor.
    llr_per_weight: float = 1.5
    llr_min: float = -3.0

    def __post_init__(self) -> None:
        if self.interval_s < 0:
            raise ValueError("interval_s must not be negative")
        if self.max_side < 64:
            raise ValueError("max_side must be at least 64 px")
        if self.llr_min >= 0 or self.llr_per_weight <= 0:
            raise ValueError(
                "game text is evidence against an attack: llr_min < 0 < llr_per_weight"
            )


def _normalise(line: str) -> str:
    """Upper case; a 0 or 1 inside a word reads as O or I (AMM0, K1LLS); letters and digits
    that OCR ran together are split (HP100 -> HP 100)."""
    text = _MISREAD_O.sub("O", line.upper())
    text = _MISREAD_I.sub("I", text)
    return _LETTERS_DIGITS.sub(" ", text)


def match_lexicon(lines: list[str]) -> dict[str, float]:
    """The lexicon entries the lines hit, with their weights (each entry once)."""
    hits: dict[str, float] = {}
    for line in map(_normalise, lines):
        for label, pattern, weight in _COMPILED:
            if pattern.search(line):
                hits[label] = weight
    return hits


class GameTextSource:
    """One stream's game-text reader: one OCR reading every ``interval_s`` seconds."""

    def __init__(self, config: GameTextConfig | None = None) -> None:
        self.config = config or GameTextConfig()
        self.name = NAME
        self.modality: Literal["video"] = "video"
        self._last: float | None = None

    def observe(self, sample: VideoSample) -> Evidence | None:
        if self._last is not None and 0 <= sample.t - self._last < self.config.interval_s:
            return None
        self._last = sample.t
        started = time.perf_counter()
        lines = read_lines(sample.rgb, self.config.max_side, self.config.min_confidence)
        hits = match_lexicon(lines)
        weight = sum(hits.values())
        llr = max(-self.config.llr_per_weight * weight, self.config.llr_min)
        detail = {
            "words": sorted(hits),
            "lines": lines[:20],
            "ocr_ms": round(1000 * (time.perf_counter() - started), 1),
        }
        return Evidence(NAME, sample.t, 1.0 - float(np.exp(-weight)), llr, detail)


class GameTextFactory:
    """Makes each stream's :class:`GameTextSource`; the OCR engine is shared by the process."""

    def __init__(self, config: GameTextConfig | None = None) -> None:
        self.config = config or GameTextConfig()
        self.name = NAME

    def __call__(self, stream_id: str) -> GameTextSource:
        return GameTextSource(self.config)
