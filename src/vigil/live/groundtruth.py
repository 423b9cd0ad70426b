"""Ground truth for the live evaluation harness: one :class:`Manifest` per stream.

The same format describes vigil's synthetic test streams (written by :mod:`vigil.live.synth`)
and a platform's own labelled footage, so that the scorer treats both alike.

Manifest (JSON sidecar, ``NAME.json`` beside ``NAME.ts``)::

    {
      "format": "vigil-live-manifest/1",
      "video": "attack-s0.ts",         # relative to the folder holding the manifest
      "synthetic": true,                # false for real footage
      "scenario": "attack",             # free text for real clips ("airsoft", "police_training")
      "category": "attack",             # attack | benign | hard_negative
      "positive": true,                 # true exactly when category == "attack"
      "onset_s": 21.4,                  # attack visible or audible from; null if negative
      "duration_s": 60.0,
      "cues": [                         # when each cue is on screen / on air (may be empty)
        {"kind": "weapon", "onset_s": 21.4, "offset_s": 60.0, "marks_s": [], "detail": {...}},
        {"kind": "gunshot", "onset_s": 23.0, "offset_s": 60.0, "marks_s": [23.0, 25.1], ...}
      ],
      ...                               # seed, width, height, fps, assets, asset_split, notes
    }

All times are seconds from the first video frame. ``onset_s`` is what an annotator marks on real
footage: the first moment the attack can be seen or heard (a weapon raised, the first shot).
A cue's ``marks_s`` are instants inside its window (each gunshot or explosion clip's start).
Hard negatives carry cues too (a game's weapon and gunshots): ``positive`` is false, so any alert
on them is a false alarm, while their cue windows still measure each evidence source.

Real labelled clips (a folder)::

    clips/          any layout below the folder
    labels.csv      clip,positive,onset_s[,category][,scenario][,notes]

``clip`` is the path relative to the folder; ``positive`` is 1/0 (or true/false, yes/no);
``onset_s`` is required for positive clips and empty for negative ones; ``category`` defaults to
``attack`` for positives and ``benign`` for negatives (``hard_negative`` marks look-alikes:
games, airsoft, films, police training); ``scenario`` defaults to the category. A folder may
also hold manifests (``*.json``) written in the format above; :func:`load_folder` reads both.
Every problem in a labels file is reported at once, with its line number.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal, Self

import av
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FORMAT = "vigil-live-manifest/1"
LABELS_FILE = "labels.csv"

Category = Literal["attack", "benign", "hard_negative"]
CATEGORIES: tuple[Category, ...] = ("attack", "benign", "hard_negative")

_REQUIRED_COLUMNS = ("clip", "positive", "onset_s")
_OPTIONAL_COLUMNS = ("category", "scenario", "notes")
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


class GroundTruthError(ValueError):
    """A manifest or labels file that cannot be used; the message says where and why."""


class Cue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: walk | weapon | gunshot | explosion | hud | logo for synthetic streams; free for real ones.
    kind: str = Field(min_length=1)
    onset_s: float = Field(ge=0)
    offset_s: float = Field(ge=0)
    marks_s: tuple[float, ...] = ()
    detail: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.offset_s < self.onset_s:
            raise ValueError(f"cue {self.kind!r} ends ({self.offset_s}) before it starts")
        if any(not self.onset_s <= mark <= self.offset_s for mark in self.marks_s):
            raise ValueError(f"cue {self.kind!r} has marks outside its window")
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["vigil-live-manifest/1"] = "vigil-live-manifest/1"
    #: The video: relative to the manifest's folder on disk, absolute once loaded.
    video: str = Field(min_length=1)
    synthetic: bool
    scenario: str = Field(min_length=1)
    category: Category
    positive: bool
    onset_s: float | None = Field(default=None, ge=0)
    duration_s: float | None = Field(default=None, gt=0)
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    cues: tuple[Cue, ...] = ()
    #: Data files used, by role, relative to the data folder (synthetic streams only).
    assets: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: Where the held-out file lists came from (synthetic streams only).
    asset_split: str = ""
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.positive != (self.category == "attack"):
            raise ValueError(f"positive={self.positive} contradicts category {self.category!r}")
        if self.positive and self.onset_s is None:
            raise ValueError("a positive stream needs onset_s")
        if not self.positive and self.onset_s is not None:
            raise ValueError("a negative stream has no onset_s")
        if self.duration_s is not None and (self.onset_s or 0.0) > self.duration_s:
            raise ValueError(f"onset_s {self.onset_s} is after the end ({self.duration_s} s)")
        return self

    def cue_windows(self, kind: str) -> list[tuple[float, float]]:
        """The (onset, offset) windows of one kind of cue, in time order."""
        return sorted((cue.onset_s, cue.offset_s) for cue in self.cues if cue.kind == kind)

    def write(self, path: Path) -> Path:
        """Write the manifest as JSON with ``video`` relative to ``path``'s folder, which must
        hold the video (so that the pair can be moved together)."""
        video = (path.parent / self.video).resolve()
        if not _inside(video, path.parent):
            raise GroundTruthError(f"{path}: the video {self.video} is not inside {path.parent}")
        relative = video.relative_to(path.parent.resolve()).as_posix()
        data = self.model_copy(update={"video": relative}).model_dump(mode="json")
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path


def load_manifest(path: Path) -> Manifest:
    """Read one manifest; its ``video`` comes back absolute and must exist."""
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise GroundTruthError(f"{path}: cannot read the manifest: {exc}") from exc
    except ValidationError as exc:
        raise GroundTruthError(f"{path}: not a valid manifest: {_pydantic_message(exc)}") from exc
    video = _resolve_clip(path.parent, manifest.video, where=str(path))
    return manifest.model_copy(update={"video": str(video)})


def load_labels(folder: Path) -> list[Manifest]:
    """Read ``folder/labels.csv`` (real labelled clips), probing each clip's duration."""
    path = folder / LABELS_FILE
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = tuple(reader.fieldnames or ())
            rows = list(reader)
    except OSError as exc:
        raise GroundTruthError(f"{path}: cannot read the labels: {exc}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise GroundTruthError(f"{path}: not a readable CSV file: {exc}") from exc
    _check_columns(path, columns)
    manifests: list[Manifest] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if None in row:
            problems.append(f"line {line}: more values than the header has columns")
            continue
        try:
            manifest = _labelled_clip(folder, row, line)
        except GroundTruthError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if manifest.video in seen:
            problems.append(
                f"line {line}: clip {row['clip']!r} repeats line {seen[manifest.video]}"
            )
            continue
        seen[manifest.video] = line
        manifests.append(manifest)
    if problems:
        raise GroundTruthError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    if not manifests:
        raise GroundTruthError(f"{path}: no clips listed")
    return manifests


def load_folder(folder: Path) -> list[Manifest]:
    """Every stream in a folder: ``labels.csv`` rows and ``*.json`` manifests, sorted by video."""
    if not folder.is_dir():
        raise GroundTruthError(f"{folder}: not a folder")
    manifests = load_labels(folder) if (folder / LABELS_FILE).is_file() else []
    manifests += [load_manifest(path) for path in sorted(folder.glob("*.json"))]
    if not manifests:
        raise GroundTruthError(f"{folder}: neither {LABELS_FILE} nor any *.json manifest found")
    videos = [manifest.video for manifest in manifests]
    duplicates = sorted({video for video in videos if videos.count(video) > 1})
    if duplicates:
        raise GroundTruthError(f"{folder}: videos described twice: {', '.join(duplicates)}")
    return sorted(manifests, key=lambda manifest: manifest.video)


def probe_duration(path: Path) -> float:
    """The duration of a media file in seconds, from its container (no full decode)."""
    try:
        with av.open(str(path)) as container:
            if container.duration is not None and container.duration > 0:
                return float(container.duration) / av.time_base
            lengths = [
                float(s.duration * s.time_base)
                for s in container.streams
                if s.duration is not None and s.time_base is not None
            ]
            if lengths and max(lengths) > 0:
                return max(lengths)
    except av.FFmpegError as exc:
        raise GroundTruthError(f"{path.name} is not a readable video: {exc}") from exc
    raise GroundTruthError(f"{path.name} does not say how long it is")


def _labelled_clip(folder: Path, row: dict[str, str | None], line: int) -> Manifest:
    clip = (row.get("clip") or "").strip()
    if not clip:
        raise GroundTruthError("clip is empty")
    positive = _boolean(row.get("positive"))
    onset = _onset(row.get("onset_s"), positive)
    category = (row.get("category") or "").strip() or ("attack" if positive else "benign")
    if category not in CATEGORIES:
        raise GroundTruthError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    video = _resolve_clip(folder, clip, where=f"line {line}")
    duration = probe_duration(video)
    fields = {
        "video": str(video),
        "synthetic": False,
        "scenario": (row.get("scenario") or "").strip() or category,
        "category": category,
        "positive": positive,
        "onset_s": onset,
        "duration_s": duration,
        "notes": (row.get("notes") or "").strip(),
    }
    try:
        return Manifest.model_validate(fields)
    except ValidationError as exc:
        raise GroundTruthError(_pydantic_message(exc)) from exc


def _boolean(value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise GroundTruthError(f"positive {value!r} is not 1/0, true/false or yes/no")


def _onset(value: str | None, positive: bool) -> float | None:
    text = (value or "").strip()
    if not text:
        if positive:
            raise GroundTruthError("a positive clip needs onset_s (seconds from its start)")
        return None
    if not positive:
        raise GroundTruthError(f"a negative clip has no onset_s (got {text!r}); leave it empty")
    try:
        onset = float(text)
    except ValueError:
        raise GroundTruthError(f"onset_s {text!r} is not a number of seconds") from None
    if not onset >= 0:
        raise GroundTruthError(f"onset_s {text!r} is negative or not finite")
    return onset


def _resolve_clip(folder: Path, clip: str, *, where: str) -> Path:
    path = (folder / clip).resolve()
    if not _inside(path, folder):
        raise GroundTruthError(f"{where}: clip {clip!r} lies outside {folder}")
    if not path.is_file():
        raise GroundTruthError(f"{where}: clip {clip!r} does not exist in {folder}")
    return path


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _check_columns(path: Path, columns: tuple[str, ...]) -> None:
    missing = [column for column in _REQUIRED_COLUMNS if column not in columns]
    unknown = [c for c in columns if c not in _REQUIRED_COLUMNS + _OPTIONAL_COLUMNS]
    if missing or unknown:
        expected = ",".join(_REQUIRED_COLUMNS) + "[," + "][,".join(_OPTIONAL_COLUMNS) + "]"
        found = ", ".join(
            ([f"missing column(s) {', '.join(missing)}"] if missing else [])
            + ([f"unknown column(s) {', '.join(unknown)}"] if unknown else [])
        )
        raise GroundTruthError(f"{path}: {found}; the header must be {expected}")


def _pydantic_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'manifest'}: {error['msg']}"
        for error in exc.errors()
    )
