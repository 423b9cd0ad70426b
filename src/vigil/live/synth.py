"""Synthetic, labelled test streams for ``vigil live eval`` (clearly synthetic: every manifest
says ``"synthetic": true``).

A stream is benign camera footage made from still photos (Kodak24; LFW faces as a news
presenter): a tripod's slow pans and zooms, or a handheld first-person walk (forward motion,
step bob, sway, jitter, roll), over casual or siren sounds (SESA) or quiet noise. Event cues are
spliced in at known times: a pistol (cut out with its YOLO box) held in the lower centre of the
frame or elsewhere in view, gunshot or explosion clips mixed into the audio, the walk starting.
Hard negatives reuse the same cues without the attack: an FPS-game look (static HUD with
crosshair, health bar, ``AMMO 30/120`` text and minimap over a walk with a held weapon and
gunshots), gunshots alone, a gun-shop product shot, explosions, a news view with a corner logo.

Only files the detection heads did not train on are used: :func:`held_out_assets` reads the
heads' ``held_out_files()`` (see :data:`HELD_OUT_SOURCES`) and falls back to a file-name hash
split while a head has published none; each manifest's ``asset_split`` says which applied.

The catalogue (:data:`SCENARIOS`) turns a scenario name, a seed and a duration into a
:class:`SynthSpec`; :func:`build_stream` renders it to H.264 + AAC (MPEG-TS or MP4) with PyAV and
writes the ground-truth :class:`~vigil.live.groundtruth.Manifest` beside it.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib
import itertools
import math
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vigil.live.groundtruth import Category, Cue, Manifest

#: The encoded audio: what live platforms carry (the ingest resamples to 16 kHz mono).
AUDIO_RATE = 48_000
HD_SIZE = (1280, 720)
#: Small streams for tests and quick runs.
FAST_SIZE = (640, 360)
#: Fraction of files the fallback split holds out, when no head has published its list.
FALLBACK_HELD_OUT = 0.3

CueKind = Literal["walk", "weapon", "gunshot", "explosion", "hud", "logo"]
Camera = Literal["tripod", "static", "studio"]
Ambience = Literal["casual", "siren", "noise"]
Placement = Literal["held", "elsewhere", "centre"]
ShotMode = Literal["tripod", "walk", "static", "presenter"]

#: Cues that make an attack visible or audible: a positive stream's onset is the first of them.
ATTACK_CUES: tuple[CueKind, ...] = ("weapon", "gunshot", "explosion")
_CONTAINERS = {".ts": "mpegts", ".mp4": "mp4", ".mkv": "matroska"}
_SOUND_CUES: tuple[CueKind, ...] = ("gunshot", "explosion")
_LOUDNESS = {"gunshot": 0.9, "explosion": 0.8}
_AMBIENCE_RMS = {"casual": 0.05, "siren": 0.035}
_LAYERS = {"weapon": 0, "logo": 1, "hud": 2}


# --------------------------------------------------------------------------------------------
# Assets: which data files a stream may use


@dataclass(frozen=True)
class Assets:
    """The data files synthetic streams may use, all outside the heads' training sets."""

    root: Path
    backgrounds: tuple[Path, ...]
    faces: tuple[Path, ...]
    pistols: tuple[Path, ...]
    gunshots: tuple[Path, ...]
    explosions: tuple[Path, ...]
    casual: tuple[Path, ...]
    sirens: tuple[Path, ...]
    #: Where the lists came from, copied into every manifest.
    split: str

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


#: The data sets, by the names the trainers' lists use, and their folders below the data folder.
DATASETS = {
    "sesa": "audio/sesa",
    "pistols": "weapons/pistols",
    "lfw": "faces/lfw",
    "kodak24": "images/kodak24",
}
#: Where each head publishes ``held_out_files()``: the first module that has it is used.
HELD_OUT_SOURCES = {
    "audio": ("vigil.live.evidence.audio", "vigil.live.training.audio"),
    "weapon": ("vigil.live.evidence.weapon", "vigil.live.training.weapon"),
}
_MAIN_DATASET = {"audio": "sesa", "weapon": "pistols"}

#: Held-out file names by data set; a data set absent from a head's list was not used by it.
HeldOut = dict[str, frozenset[str]]


def held_out_assets(data: Path) -> Assets:
    """Assets from the heads' published held-out lists, or a file-name hash split (recorded in
    ``Assets.split``) while a head publishes none."""
    audio, audio_note = held_out_lists("audio")
    weapon, weapon_note = held_out_lists("weapon")
    return assets_from_lists(
        data, audio=audio, weapon=weapon, split=f"audio: {audio_note}; weapon: {weapon_note}"
    )


def assets_from_lists(
    data: Path, *, audio: HeldOut | None, weapon: HeldOut | None, split: str
) -> Assets:
    """Assets restricted to held-out lists (None: the fallback hash split).

    The weapon head may train on Kodak and LFW photos as negatives: backgrounds and faces are
    restricted to its held-out ones when its list names those data sets, and used freely when
    it does not (it never saw them). Pistols and SESA clips must be listed.
    """
    sounds = _sesa(data)
    kodak = tuple(sorted((data / DATASETS["kodak24"]).glob("*.png")))
    lfw = tuple(sorted((data / DATASETS["lfw"] / "images").glob("*/*.jpg")))
    pistols = tuple(sorted((data / DATASETS["pistols"] / "images").glob("*.jpg")))
    assets = Assets(
        root=data,
        backgrounds=_keep(kodak, weapon, "kodak24"),
        faces=_keep(lfw, weapon, "lfw"),
        pistols=_keep(pistols, weapon, "pistols", required=True),
        gunshots=_keep(sounds.get("gunshot", ()), audio, "sesa", required=True),
        explosions=_keep(sounds.get("explosion", ()), audio, "sesa", required=True),
        casual=_keep(sounds.get("casual", ()), audio, "sesa", required=True),
        sirens=_keep(sounds.get("siren", ()), audio, "sesa", required=True),
        split=split,
    )
    empty = [name for name in _ASSET_ROLES if not getattr(assets, name)]
    if empty:
        raise ValueError(f"no usable held-out files for: {', '.join(empty)} (under {data})")
    return assets


_ASSET_ROLES = ("backgrounds", "faces", "pistols", "gunshots", "explosions", "casual", "sirens")


def held_out_lists(head: Literal["audio", "weapon"]) -> tuple[HeldOut | None, str]:
    """A head's held-out files by data set, or None while it publishes none; and a note on
    where they came from (or why there are none), for the manifests."""
    for module_name in HELD_OUT_SOURCES[head]:
        try:
            listing = importlib.import_module(module_name).held_out_files
        except (ImportError, AttributeError):
            continue
        try:
            files: Iterable[str] | Mapping[str, Iterable[str]] = listing()
        except FileNotFoundError as exc:
            return None, f"{module_name}.held_out_files(): {exc}; {_FALLBACK_NOTE}"
        held = held_out_by_dataset(files, _MAIN_DATASET[head])
        counts = ", ".join(f"{name} {len(names)}" for name, names in sorted(held.items()))
        return held, f"{module_name}.held_out_files() ({counts})"
    return None, f"no {head} head publishes held_out_files() yet; {_FALLBACK_NOTE}"


_FALLBACK_NOTE = f"fallback split: sha256(file name) holds out {FALLBACK_HELD_OUT:.0%}"


def held_out_by_dataset(files: Iterable[str] | Mapping[str, Iterable[str]], main: str) -> HeldOut:
    """A head's list (paths relative to the data folder, flat or by data set) as file names by
    data set; a path outside every known data set folder counts as the head's ``main`` one."""
    if isinstance(files, Mapping):
        return {name: frozenset(Path(f).name for f in entries) for name, entries in files.items()}
    held: dict[str, set[str]] = {}
    for entry in files:
        posix = Path(entry).as_posix()
        name = next((n for n, folder in DATASETS.items() if f"{folder}/" in posix), main)
        held.setdefault(name, set()).add(Path(entry).name)
    return {name: frozenset(names) for name, names in held.items()}


def _keep(
    paths: Iterable[Path], held: HeldOut | None, dataset: str, *, required: bool = False
) -> tuple[Path, ...]:
    if held is None:
        return tuple(path for path in paths if _hash_held_out(path.name))
    if dataset in held:
        return tuple(path for path in paths if path.name in held[dataset])
    if required:
        raise ValueError(f"the held-out lists name no {dataset} files")
    return tuple(paths)


def _hash_held_out(name: str) -> bool:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < FALLBACK_HELD_OUT


def _sesa(data: Path) -> dict[str, tuple[Path, ...]]:
    folder = data / "audio" / "sesa"
    rows = (folder / "labels.csv").read_text(encoding="utf-8").splitlines()[1:]
    by_label: dict[str, list[Path]] = {}
    for row in rows:
        name, label, *_ = row.split(",")
        by_label.setdefault(label, []).append(folder / name)
    return {label: tuple(sorted(paths)) for label, paths in by_label.items()}


# --------------------------------------------------------------------------------------------
# Specs and the scenario catalogue


@dataclass(frozen=True)
class CueSpec:
    kind: CueKind
    onset_s: float
    offset_s: float


@dataclass(frozen=True)
class SynthSpec:
    """What to render. Times are seconds from the first frame."""

    scenario: str
    category: Category
    seed: int
    duration_s: float
    cues: tuple[CueSpec, ...] = ()
    #: The camera outside ``walk`` cues; inside them it is always the handheld walk, so that
    #: every moment of first-person motion is labelled.
    camera: Camera = "tripod"
    ambience: Ambience = "casual"
    #: Where a weapon cue puts the weapon.
    placement: Placement = "held"
    width: int = HD_SIZE[0]
    height: int = HD_SIZE[1]
    fps: int = 30
    description: str = ""

    def __post_init__(self) -> None:
        if not 4.0 <= self.duration_s <= 6 * 3600:
            raise ValueError(f"duration_s {self.duration_s} is outside 4 s .. 6 h")
        if self.width % 2 or self.height % 2 or not 64 <= min(self.width, self.height) <= 4320:
            raise ValueError(f"size {self.width}x{self.height} must be even and 64..4320")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps {self.fps} is outside 1..120")
        for cue in self.cues:
            if not 0 <= cue.onset_s < cue.offset_s <= self.duration_s:
                raise ValueError(f"cue {cue} does not lie within 0..{self.duration_s} s")
        if self.positive and not any(cue.kind in ATTACK_CUES for cue in self.cues):
            raise ValueError(f"an attack needs one of the cues {', '.join(ATTACK_CUES)}")

    @property
    def positive(self) -> bool:
        return self.category == "attack"

    @property
    def onset_s(self) -> float | None:
        """For an attack, the first moment a weapon is seen or a shot heard."""
        if not self.positive:
            return None
        return min(cue.onset_s for cue in self.cues if cue.kind in ATTACK_CUES)


@dataclass(frozen=True)
class Layout:
    """A scenario's choices for one seed: cues, camera, sound and weapon placement."""

    cues: tuple[CueSpec, ...]
    camera: Camera = "tripod"
    ambience: Ambience = "casual"
    placement: Placement = "held"


@dataclass(frozen=True)
class Scenario:
    name: str
    category: Category
    description: str
    #: (random generator, duration in seconds) -> layout.
    plan: Callable[[np.random.Generator, float], Layout]


def _at(rng: np.random.Generator, duration: float, low: float, high: float) -> float:
    return round(duration * float(rng.uniform(low, high)), 2)


def _talk(rng: np.random.Generator) -> Ambience:
    return "casual" if rng.random() < 0.7 else "siren"


def _attack(rng: np.random.Generator, d: float) -> Layout:
    walk = _at(rng, d, 0.15, 0.25)
    weapon = walk + _at(rng, d, 0.1, 0.2)
    shots = weapon + _at(rng, d, 0.05, 0.12)
    cues = (CueSpec("walk", walk, d), CueSpec("weapon", weapon, d), CueSpec("gunshot", shots, d))
    return Layout(cues, camera="tripod", ambience=_talk(rng))


def _attack_shots_first(rng: np.random.Generator, d: float) -> Layout:
    shots = _at(rng, d, 0.3, 0.45)
    weapon = shots + _at(rng, d, 0.05, 0.1)
    cues = (CueSpec("walk", 0.0, d), CueSpec("gunshot", shots, d), CueSpec("weapon", weapon, d))
    return Layout(cues, ambience=_talk(rng))


def _attack_silent(rng: np.random.Generator, d: float) -> Layout:
    walk = _at(rng, d, 0.15, 0.25)
    weapon = walk + _at(rng, d, 0.1, 0.2)
    return Layout((CueSpec("walk", walk, d), CueSpec("weapon", weapon, d)), ambience="noise")


def _attack_bystander(rng: np.random.Generator, d: float) -> Layout:
    weapon = _at(rng, d, 0.3, 0.45)
    shots = weapon + _at(rng, d, 0.03, 0.08)
    cues = (CueSpec("walk", 0.0, d), CueSpec("weapon", weapon, d), CueSpec("gunshot", shots, d))
    return Layout(cues, ambience=_talk(rng), placement="elsewhere")


def _benign_tripod(rng: np.random.Generator, d: float) -> Layout:
    return Layout((), camera="tripod", ambience=_talk(rng))


def _benign_walk(rng: np.random.Generator, d: float) -> Layout:
    return Layout((CueSpec("walk", 0.0, d),), ambience=_talk(rng))


def _news(rng: np.random.Generator, d: float) -> Layout:
    return Layout((CueSpec("logo", 0.0, d),), camera="studio", ambience=_talk(rng))


def _game_fps(rng: np.random.Generator, d: float) -> Layout:
    shots = _at(rng, d, 0.3, 0.45)
    cues = (
        CueSpec("hud", 0.0, d),
        CueSpec("walk", 0.0, d),
        CueSpec("weapon", 0.0, d),
        CueSpec("gunshot", shots, d),
    )
    return Layout(cues, ambience="noise")


def _sound_only(kind: CueKind) -> Callable[[np.random.Generator, float], Layout]:
    def plan(rng: np.random.Generator, d: float) -> Layout:
        onset = _at(rng, d, 0.3, 0.5)
        offset = min(d, onset + _at(rng, d, 0.2, 0.4))
        return Layout((CueSpec(kind, onset, offset),), camera="tripod", ambience=_talk(rng))

    return plan


def _weapon_only(rng: np.random.Generator, d: float) -> Layout:
    cue = CueSpec("weapon", _at(rng, d, 0.2, 0.35), _at(rng, d, 0.75, 0.95))
    return Layout((cue,), camera="static", ambience="casual", placement="centre")


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "attack", "attack", "tripod, then a first-person walk, a held weapon, gunshots", _attack
        ),
        Scenario(
            "attack_shots_first",
            "attack",
            "first-person walk; gunshots heard before the weapon comes into view",
            _attack_shots_first,
        ),
        Scenario(
            "attack_silent",
            "attack",
            "first-person walk and a held weapon, no gunshots, quiet audio",
            _attack_silent,
        ),
        Scenario(
            "attack_bystander",
            "attack",
            "a bystander's handheld phone: a weapon elsewhere in view, gunshots",
            _attack_bystander,
        ),
        Scenario(
            "benign_tripod", "benign", "tripod pans and zooms, talk or sirens", _benign_tripod
        ),
        Scenario("benign_walk", "benign", "first-person walk (vlog), talk or sirens", _benign_walk),
        Scenario("news", "hard_negative", "presenter and field shots, corner logo, banner", _news),
        Scenario(
            "game_fps",
            "hard_negative",
            "FPS-game look: static HUD, walk, weapon in the lower centre, gunshots",
            _game_fps,
        ),
        Scenario(
            "gunshot_only",
            "hard_negative",
            "tripod footage with gunshots heard, no weapon",
            _sound_only("gunshot"),
        ),
        Scenario(
            "weapon_only",
            "hard_negative",
            "gun-shop product shot: a weapon centred, static camera, talk",
            _weapon_only,
        ),
        Scenario(
            "explosion_only",
            "hard_negative",
            "tripod footage with explosions heard (gunshot's near-class)",
            _sound_only("explosion"),
        ),
    )
}


def scenario(
    name: str,
    *,
    seed: int = 0,
    duration_s: float = 60.0,
    size: tuple[int, int] = HD_SIZE,
    fps: int = 30,
) -> SynthSpec:
    """The catalogue's spec for one scenario and seed (deterministic)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    entry = SCENARIOS[name]
    layout = entry.plan(_rng(name, seed, "plan"), duration_s)
    return SynthSpec(
        scenario=name,
        category=entry.category,
        seed=seed,
        duration_s=duration_s,
        cues=layout.cues,
        camera=layout.camera,
        ambience=layout.ambience,
        placement=layout.placement,
        width=size[0],
        height=size[1],
        fps=fps,
        description=entry.description,
    )


def _rng(name: str, seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{name}/{purpose}".encode())])


# --------------------------------------------------------------------------------------------
# Camera: shots and per-frame poses


@dataclass(frozen=True)
class _Shot:
    start: float
    end: float
    mode: ShotMode
    photo: int
    #: Start and end (u, v, zoom): u, v place the view within the photo (0..1).
    a: tuple[float, float, float]
    b: tuple[float, float, float]


@dataclass(frozen=True)
class _Pose:
    u: float
    v: float
    zoom: float
    roll: float = 0.0
    #: The handheld offset of the view in output pixels (step bob, sway, jitter).
    dx: float = 0.0
    dy: float = 0.0


@dataclass(frozen=True)
class _Gait:
    """A walker's rhythm: step frequency, bob and sway sizes (fractions of frame height) and a
    smooth jitter made of a few slow sinusoids."""

    step_hz: float
    bob: float
    sway: float
    roll: float
    jitter: np.ndarray = field(repr=False)  # rows: (amplitude, hz, phase) for x, y, roll

    @staticmethod
    def random(rng: np.random.Generator) -> _Gait:
        jitter = np.column_stack(
            (rng.uniform(0.2, 1.0, 9), rng.uniform(0.3, 3.0, 9), rng.uniform(0, 2 * np.pi, 9))
        )
        return _Gait(
            step_hz=float(rng.uniform(1.7, 2.1)),
            bob=float(rng.uniform(0.01, 0.018)),
            sway=float(rng.uniform(0.006, 0.012)),
            roll=float(rng.uniform(0.008, 0.02)),
            jitter=jitter,
        )

    def offset(self, t: float, height: int) -> tuple[float, float, float]:
        """(dx, dy, roll) at time t."""
        wave = self.jitter[:, 0] * np.sin(2 * np.pi * self.jitter[:, 1] * t + self.jitter[:, 2])
        jx, jy, jr = (float(part.sum()) / 3 for part in wave.reshape(3, 3))
        step = 2 * np.pi * self.step_hz * t
        dy = height * (self.bob * abs(math.sin(step / 2)) + 0.003 * jy)
        dx = height * (self.sway * math.sin(step / 2) + 0.004 * jx)
        roll = self.roll * math.sin(step / 2 + 0.6) + 0.004 * jr
        return dx, dy, roll


_SHOT_LENGTHS: dict[ShotMode, tuple[float, float]] = {
    "tripod": (8.0, 16.0),
    "walk": (6.0, 10.0),
    "static": (1e9, 1e9),
    "presenter": (8.0, 14.0),
}


def _plan_shots(spec: SynthSpec, rng: np.random.Generator, photos: int) -> list[_Shot]:
    walks = [(c.onset_s, c.offset_s) for c in spec.cues if c.kind == "walk"]
    cuts = sorted({0.0, spec.duration_s, *(t for window in walks for t in window)})
    shots: list[_Shot] = []
    for start, end in itertools.pairwise(cuts):
        walking = any(on <= start < off for on, off in walks)
        shots += _segment_shots(spec, rng, start, end, walking, photos, len(shots))
    return shots


def _segment_shots(
    spec: SynthSpec,
    rng: np.random.Generator,
    start: float,
    end: float,
    walking: bool,
    photos: int,
    index: int,
) -> Iterator[_Shot]:
    t = start
    while t < end:
        mode = _shot_mode(spec.camera, walking, index)
        low, high = _SHOT_LENGTHS[mode]
        length = float(rng.uniform(low, high))
        stop = end if end - (t + length) < 2.0 else t + length
        yield _Shot(t, stop, mode, index % photos, *_shot_path(mode, rng))
        t, index = stop, index + 1


def _shot_mode(camera: Camera, walking: bool, index: int) -> ShotMode:
    if walking:
        return "walk"
    if camera == "studio":
        return "presenter" if index % 2 == 0 else "tripod"
    return "static" if camera == "static" else "tripod"


def _shot_path(
    mode: ShotMode, rng: np.random.Generator
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    if mode in ("static", "presenter"):
        return (0.5, 0.5, 1.0), (0.5, 0.5, 1.0)
    if mode == "walk":
        zoom = float(rng.uniform(1.15, 1.3))
        a = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.35, 0.65)), zoom)
        b = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.35, 0.65)), zoom)
        return a, b
    a = (float(rng.random()), float(rng.random()), float(rng.uniform(1.0, 1.35)))
    b = (float(rng.random()), float(rng.random()), float(rng.uniform(1.0, 1.35)))
    return a, b


def _pose(shot: _Shot, t: float, gait: _Gait, height: int) -> _Pose:
    tau = (t - shot.start) / max(shot.end - shot.start, 1e-6)
    if shot.mode == "walk":
        # Walking forward expands the view steadily: zoom grows exponentially with time.
        zoom = shot.a[2] * math.exp(0.045 * (t - shot.start))
        u = shot.a[0] + (shot.b[0] - shot.a[0]) * tau
        v = shot.a[1] + (shot.b[1] - shot.a[1]) * tau
        dx, dy, roll = gait.offset(t, height)
        return _Pose(u, v, zoom, roll, dx, dy)
    ease = tau * tau * (3 - 2 * tau)
    u, v, zoom = (a + (b - a) * ease for a, b in zip(shot.a, shot.b, strict=True))
    return _Pose(u, v, zoom)


def _view_matrix(pose: _Pose, source: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """The affine map from output pixels to source pixels for one pose."""
    src_h, src_w = source
    width, height = out
    scale = min(src_w / width, src_h / height) / pose.zoom
    cos, sin = math.cos(pose.roll), math.sin(pose.roll)
    half_w, half_h = scale * width / 2, scale * height / 2
    extent_x = half_w * abs(cos) + half_h * abs(sin)
    extent_y = half_w * abs(sin) + half_h * abs(cos)
    cx = extent_x + pose.u * max(src_w - 2 * extent_x, 0.0) + pose.dx * scale
    cy = extent_y + pose.v * max(src_h - 2 * extent_y, 0.0) + pose.dy * scale
    return np.array(
        [
            [scale * cos, -scale * sin, cx - scale * (cos * width / 2 - sin * height / 2)],
            [scale * sin, scale * cos, cy - scale * (sin * width / 2 + cos * height / 2)],
        ],
        dtype=np.float64,
    )


# --------------------------------------------------------------------------------------------
# Overlays


@dataclass(frozen=True)
class _Patch:
    """An RGBA overlay prepared for blending: premultiplied colour and 1 - alpha."""

    colour: np.ndarray  # h x w x 3 float32, premultiplied
    keep: np.ndarray  # h x w x 1 float32

    @staticmethod
    def from_rgba(rgba: np.ndarray) -> _Patch:
        alpha = rgba[..., 3:4].astype(np.float32) / 255.0
        return _Patch(rgba[..., :3].astype(np.float32) * alpha, 1.0 - alpha)

    @property
    def size(self) -> tuple[int, int]:
        return self.colour.shape[1], self.colour.shape[0]


def _blend(frame: np.ndarray, patch: _Patch, x: int, y: int) -> None:
    height, width = frame.shape[:2]
    pw, ph = patch.size
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, width), min(y + ph, height)
    if x0 >= x1 or y0 >= y1:
        return
    sx, sy = slice(x0 - x, x1 - x), slice(y0 - y, y1 - y)
    region = frame[y0:y1, x0:x1]
    mixed = patch.colour[sy, sx] + patch.keep[sy, sx] * region
    region[...] = np.clip(mixed, 0, 255).astype(np.uint8)


def _feathered(height: int, width: int, feather: float) -> np.ndarray:
    """An alpha mask rising from the border over ``feather`` pixels."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    edge = np.minimum.reduce([xs + 1, width - xs, ys + 1, height - ys])
    alpha: np.ndarray = (np.clip(edge / max(feather, 1.0), 0, 1) * 255).astype(np.uint8)
    return alpha


def _oval(rgb: np.ndarray) -> np.ndarray:
    """RGBA keeping a soft ellipse (a head and shoulders cut from a face photo)."""
    height, width = rgb.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.hypot((xs - width / 2) / (width / 2), (ys - height * 0.55) / (height * 0.6))
    alpha = np.clip((1.0 - r) / 0.12, 0, 1) * 255
    return np.dstack([rgb, alpha.astype(np.uint8)])


def pistol_box(image: Path) -> tuple[int, int, int, int]:
    """The largest YOLO box of a pistol image, in pixels (x0, y0, x1, y1)."""
    label = image.parent.parent / "labels" / f"{image.stem}.txt"
    with Image.open(image) as picture:
        width, height = picture.size
    boxes = []
    for line in label.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 5:
            cx, cy, w, h = (float(value) for value in parts[1:])
            boxes.append((w * h, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    if not boxes:
        raise ValueError(f"{label}: no YOLO box")
    _, x0, y0, x1, y1 = max(boxes)
    return (
        max(int(x0 * width), 0),
        max(int(y0 * height), 0),
        min(math.ceil(x1 * width), width),
        min(math.ceil(y1 * height), height),
    )


def pistol_cutout(image: Path) -> tuple[np.ndarray, bool]:
    """The pistol of a photo as RGBA, cropped to its YOLO box: cut from its background by
    GrabCut when that finds one clean object (True), else the whole box, edges feathered."""
    with Image.open(image) as picture:
        rgb = np.asarray(picture.convert("RGB"))
    x0, y0, x1, y1 = pistol_box(image)
    crop = rgb[y0:y1, x0:x1]
    alpha = _grabcut(rgb, (x0, y0, x1, y1))
    if alpha is None:
        height, width = crop.shape[:2]
        return np.dstack([crop, _feathered(height, width, 0.08 * min(height, width))]), False
    return np.dstack([crop, alpha]), True


def _grabcut(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    x0, y0, x1, y1 = box
    mask = np.zeros(rgb.shape[:2], np.uint8)
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means draws from OpenCV's global generator
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    try:
        cv2.grabCut(bgr, mask, (x0, y0, x1 - x0, y1 - y0), *models, 3, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return None  # e.g. a box filling the photo leaves no background to learn from
    found = np.isin(mask[y0:y1, x0:x1], (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    inside = np.asarray(cv2.morphologyEx(found, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inside)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = int(stats[largest, cv2.CC_STAT_AREA])
    # A pistol fills a good part of its box and is one object: anything else is a failed cut.
    if not 0.25 <= area / inside.size <= 0.92 or area < 0.85 * int(inside.sum()):
        return None
    alpha = (labels == largest).astype(np.float32) * 255
    return np.asarray(cv2.GaussianBlur(alpha, (0, 0), sigmaX=1.0), dtype=np.uint8)


@dataclass(frozen=True)
class _Weapon:
    patch: _Patch
    x: int
    y: int
    placement: Placement
    cut: bool

    def box(self) -> list[int]:
        """Where the weapon rests (it moves a little around this), unclipped."""
        w, h = self.patch.size
        return [self.x, self.y, self.x + w, self.y + h]

    def draw(self, frame: np.ndarray, since_onset: float, pose: _Pose) -> None:
        height = self.patch.size[1]
        if self.placement == "held":
            # Raised into view over 0.4 s, then moving a little with the wearer's hands.
            raise_in = max(0.0, 1.0 - since_onset / 0.4) * height
            dx, dy = 0.5 * pose.dx, 0.5 * pose.dy + raise_in
        elif self.placement == "elsewhere":
            # Someone else's weapon belongs to the scene: the view shakes around it.
            dx, dy = -pose.dx, -pose.dy
        else:
            # Turned in a presenter's hands.
            turn = 0.8 * since_onset
            dx, dy = 0.04 * height * math.sin(turn), 0.02 * height * math.sin(0.6 * turn)
        _blend(frame, self.patch, self.x + int(dx), self.y + int(dy))


def _weapon(
    cutout: tuple[np.ndarray, bool],
    placement: Placement,
    size: tuple[int, int],
    rng: np.random.Generator,
) -> _Weapon:
    width, height = size
    rgba, cut = cutout
    fraction = {"held": 0.42, "elsewhere": 0.22, "centre": 0.55}[placement]
    target_h = int(height * fraction)
    target_w = min(int(rgba.shape[1] * target_h / rgba.shape[0]), int(width * 0.6))
    sprite = np.asarray(cv2.resize(rgba, (target_w, target_h), interpolation=cv2.INTER_AREA))
    if placement == "held":
        x, y = int(width * 0.54 - target_w / 2), int(height - 0.85 * target_h)
    elif placement == "centre":
        x, y = (width - target_w) // 2, (height - target_h) // 2
    else:
        left = bool(rng.random() < 0.5)
        span = max(int(width * 0.3) - target_w, 1)
        x = int(width * 0.04) + int(rng.integers(0, span))
        x = x if left else width - target_w - x
        y = int(height * 0.12) + int(rng.integers(0, max(int(height * 0.35), 1)))
    return _Weapon(_Patch.from_rgba(sprite), x, y, placement, cut)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(size, 8))


def _text_patch(
    text: str, size: int, colour: tuple[int, int, int], outline: bool = True
) -> np.ndarray:
    """Text as RGBA; outlined in black (as game HUDs and captions are) unless on a box."""
    font = _font(size)
    stroke = max(size // 14, 1) if outline else 0
    left, top, right, bottom = (int(v) for v in font.getbbox(text, stroke_width=stroke))
    pad = max(size // 8, 2)
    canvas = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text(
        (pad - left, pad - top),
        text,
        font=font,
        fill=(*colour, 255),
        stroke_width=stroke,
        stroke_fill=(0, 0, 0, 255),
    )
    return np.asarray(canvas)


_HUD_COLOURS = ((255, 255, 255), (90, 255, 120), (0, 230, 255), (255, 210, 40))


class _Hud:
    """A first-person-shooter HUD: crosshair, health bar, ammo counter and minimap. Everything
    is static except the ammo count, which drops with each shot as in a game."""

    def __init__(self, size: tuple[int, int], rng: np.random.Generator) -> None:
        width, height = size
        self.colour = _HUD_COLOURS[int(rng.integers(0, len(_HUD_COLOURS)))]
        self.magazine, self.reserve = 30, 120
        self.text_size = max(height // 18, 10)
        margin = height // 24
        self.parts: dict[str, tuple[_Patch, int, int]] = {}
        cross = self._crosshair(height, rng)
        self._place(
            "crosshair", cross, (width - cross.shape[1]) // 2, (height - cross.shape[0]) // 2
        )
        bar = self._health(width, height, rng)
        self._place("health", bar, margin, height - margin - bar.shape[0])
        radar = self._minimap(height, rng)
        left = bool(rng.random() < 0.5)
        self._place("minimap", radar, margin if left else width - margin - radar.shape[1], margin)
        self.size, self.margin = size, margin
        self._ammo: dict[int, tuple[_Patch, int, int]] = {}

    def _place(self, name: str, rgba: np.ndarray, x: int, y: int) -> None:
        self.parts[name] = (_Patch.from_rgba(rgba), x, y)

    def _crosshair(self, height: int, rng: np.random.Generator) -> np.ndarray:
        """Four arms and a dot, outlined in black so that they read on any background."""
        arm, gap = int(height * rng.uniform(0.015, 0.025)), int(height * 0.008)
        thick, rim = max(height // 200, 2), max(height // 360, 1)
        side = 2 * (arm + gap + rim) + thick
        canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        draw, c, half = ImageDraw.Draw(canvas), side // 2, thick // 2
        reach = arm + rim
        shapes = [
            (rim, c - half, reach, c + half),
            (side - reach, c - half, side - rim, c + half),
            (c - half, rim, c + half, reach),
            (c - half, side - reach, c + half, side - rim),
        ]
        for fill, grow in (((0, 0, 0, 255), rim), ((*self.colour, 255), 0)):
            for x0, y0, x1, y1 in shapes:
                draw.rectangle((x0 - grow, y0 - grow, x1 + grow, y1 + grow), fill=fill)
            dot = thick + grow
            draw.ellipse((c - dot, c - dot, c + dot, c + dot), fill=fill)
        return np.asarray(canvas)

    def _health(self, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
        bar_w, bar_h = int(width * 0.2), max(height // 30, 6)
        label = _text_patch("HP", self.text_size, self.colour)
        canvas = Image.new("RGBA", (label.shape[1] + bar_w + 8, max(label.shape[0], bar_h)))
        canvas.alpha_composite(Image.fromarray(label))
        draw = ImageDraw.Draw(canvas)
        x0, y0 = label.shape[1] + 4, (canvas.height - bar_h) // 2
        draw.rectangle(
            (x0, y0, x0 + bar_w, y0 + bar_h), fill=(0, 0, 0, 200), outline=(*self.colour, 255)
        )
        filled = int(bar_w * rng.uniform(0.45, 1.0))
        draw.rectangle((x0 + 2, y0 + 2, x0 + filled - 2, y0 + bar_h - 2), fill=(220, 40, 40, 230))
        return np.asarray(canvas)

    def _minimap(self, height: int, rng: np.random.Generator) -> np.ndarray:
        side = int(height * 0.22)
        canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        draw = ImageDraw.Draw(canvas)
        draw.ellipse(
            (0, 0, side - 1, side - 1), fill=(20, 30, 25, 220), outline=(*self.colour, 255), width=2
        )
        for _ in range(7):
            x, y = (int(value) for value in rng.integers(side // 5, 4 * side // 5, 2))
            w, h = (int(value) for value in rng.integers(side // 16, side // 6, 2))
            draw.rectangle((x, y, x + w, y + h), fill=(110, 120, 110, 255))
        c, r = side // 2, side // 14
        draw.polygon([(c, c - r), (c - r, c + r), (c + r, c + r)], fill=(*self.colour, 255))
        return np.asarray(canvas)

    def text(self, shots: int) -> str:
        return f"AMMO {self.magazine - shots % self.magazine}/{self.reserve}"

    def ammo(self, shots: int) -> tuple[_Patch, int, int]:
        key = shots % self.magazine
        if key not in self._ammo:
            rgba = _text_patch(self.text(shots), self.text_size, self.colour)
            width, height = self.size
            x, y = width - self.margin - rgba.shape[1], height - self.margin - rgba.shape[0]
            self._ammo[key] = (_Patch.from_rgba(rgba), x, y)
        return self._ammo[key]

    def boxes(self) -> dict[str, list[int]]:
        parts = {**self.parts, "ammo": self.ammo(0)}
        return {name: [x, y, x + p.size[0], y + p.size[1]] for name, (p, x, y) in parts.items()}

    def draw(self, frame: np.ndarray, shots: int) -> None:
        for patch, x, y in (*self.parts.values(), self.ammo(shots)):
            _blend(frame, patch, x, y)


_HEADLINES = (
    "CITY COUNCIL APPROVES NEW PARK PLAN",
    "STORM WARNING FOR THE COAST THIS WEEKEND",
    "LOCAL TEAM WINS REGIONAL FINAL",
    "ROADWORKS CLOSE BRIDGE UNTIL FRIDAY",
)


class _NewsGraphics:
    """A news channel's corner logo and lower-third banner (static) and ticker (scrolling)."""

    def __init__(self, size: tuple[int, int], rng: np.random.Generator) -> None:
        width, height = size
        unit = max(height // 24, 8)
        logo = _text_patch(
            str(rng.choice(["VNN 24", "NEWS 7", "WTV LIVE"])), 2 * unit, (255, 255, 255)
        )
        logo = self._on_box(logo, (200, 20, 30, 215))
        self.logo = (_Patch.from_rgba(logo), width - logo.shape[1] - unit, unit)
        title = self._on_box(
            _text_patch("BREAKING NEWS", unit, (255, 255, 255), outline=False), (200, 20, 30, 235)
        )
        headline = str(rng.choice(_HEADLINES))
        line = self._on_box(
            _text_patch(headline, unit, (20, 20, 20), outline=False), (245, 245, 245, 235)
        )
        banner_y = height - 4 * unit - title.shape[0] - line.shape[0]
        self.banner = [
            (_Patch.from_rgba(title), 2 * unit, banner_y),
            (_Patch.from_rgba(line), 2 * unit, banner_y + title.shape[0]),
        ]
        ticker = " +++ ".join([*_HEADLINES, "WEATHER: SUNNY SPELLS, 21C"]) + " +++ "
        strip = self._on_box(
            _text_patch(ticker, unit, (255, 255, 255), outline=False), (20, 30, 60, 230)
        )
        self.ticker = np.concatenate([strip, strip[:, :width]], axis=1)
        self.ticker_y = height - strip.shape[0] - unit // 2
        self.speed = width / 8.0  # pixels per second
        self.width = width

    @staticmethod
    def _on_box(text: np.ndarray, fill: tuple[int, int, int, int]) -> np.ndarray:
        canvas = Image.new("RGBA", (text.shape[1] + 12, text.shape[0] + 4), fill)
        canvas.alpha_composite(Image.fromarray(text), (6, 2))
        return np.asarray(canvas)

    def boxes(self) -> dict[str, list[int]]:
        named = {"logo": self.logo, "title": self.banner[0], "headline": self.banner[1]}
        boxes = {name: [x, y, x + p.size[0], y + p.size[1]] for name, (p, x, y) in named.items()}
        boxes["ticker"] = [0, self.ticker_y, self.width, self.ticker_y + self.ticker.shape[0]]
        return boxes

    def draw(self, frame: np.ndarray, t: float) -> None:
        period = self.ticker.shape[1] - self.width
        start = int(t * self.speed) % max(period, 1)
        window = self.ticker[:, start : start + self.width]
        _blend(frame, _Patch.from_rgba(window), 0, self.ticker_y)
        for patch, x, y in (self.logo, *self.banner):
            _blend(frame, patch, x, y)


def _presenter(face: Path, height: int) -> _Patch:
    with Image.open(face) as picture:
        rgb = np.asarray(picture.convert("RGB"))
    side = int(height * 0.62)
    rgb = cv2.resize(rgb[20:-10, 35:-35], (int(side * 0.85), side), interpolation=cv2.INTER_CUBIC)
    return _Patch.from_rgba(_oval(rgb))


# --------------------------------------------------------------------------------------------
# Audio


@lru_cache(maxsize=64)
def _sound(path: Path) -> np.ndarray:
    """A clip decoded to AUDIO_RATE mono float32 (cached: clips repeat across streams)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    samples = samples - float(samples.mean()) if samples.size else samples
    if samples.size < AUDIO_RATE // 10 or not np.abs(samples).max() > 0:
        raise ValueError(f"{path}: too short or silent to use")
    samples.setflags(write=False)
    return samples


def _event_clip(path: Path, peak: float) -> np.ndarray:
    """A gunshot/explosion clip from its first loud moment, peak-normalised, faded out."""
    samples = _sound(path)
    loud = np.flatnonzero(np.abs(samples) >= 0.25 * np.abs(samples).max())
    start = max(int(loud[0]) - AUDIO_RATE // 200, 0)
    clip = samples[start:] * (peak / float(np.abs(samples).max()))
    return _fade(clip, out_s=0.03)


def _fade(clip: np.ndarray, *, in_s: float = 0.0, out_s: float = 0.0) -> np.ndarray:
    clip = clip.astype(np.float32, copy=True)
    for seconds, sl in ((in_s, slice(None, None)), (out_s, slice(None, None, -1))):
        n = min(int(seconds * AUDIO_RATE), clip.size)
        if n:
            clip[sl][:n] *= np.linspace(0.0, 1.0, n, dtype=np.float32)
    return clip


def _ambience(
    kind: Ambience, pool: Sequence[Path], samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[Path]]:
    bed = rng.normal(0.0, 0.004 if kind == "noise" else 0.002, samples).astype(np.float32)
    if kind == "noise":
        return bed, []
    used: list[Path] = []
    at = 0
    for index in _cycle(rng, len(pool)):
        if at >= samples:
            break
        clip = _levelled(_sound(pool[index]), _AMBIENCE_RMS[kind])
        part = _fade(clip, in_s=0.1, out_s=0.1)[: samples - at]
        bed[at : at + part.size] += part
        used.append(pool[index])
        at += max(clip.size - AUDIO_RATE // 10, AUDIO_RATE // 10)
    return bed, used


def _levelled(clip: np.ndarray, target: float, window_s: float = 0.25) -> np.ndarray:
    """A background clip brought to ``target`` RMS and held near it, as a phone's automatic
    gain control does: loud passages (shouts, passing trucks) would otherwise rival the events
    spliced over them."""
    window = int(window_s * AUDIO_RATE)
    frames = -(-clip.size // window)
    padded = np.zeros(frames * window, np.float32)
    padded[: clip.size] = clip
    local = np.sqrt(np.mean(np.square(padded.reshape(frames, window)), axis=1)) + 1e-4
    gains = np.minimum(target / _rms(clip), 1.6 * target / local)
    centres = (np.arange(frames) + 0.5) * window
    curve = np.interp(np.arange(clip.size), centres, gains).astype(np.float32)
    levelled: np.ndarray = clip * curve
    return levelled


def _cycle(rng: np.random.Generator, n: int) -> Iterator[int]:
    """Endless indices into a pool: shuffled, each pass in a new order."""
    while True:
        yield from (int(i) for i in rng.permutation(n))


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) or 1.0


@dataclass(frozen=True)
class _Placed:
    """Sound clips placed for one cue: their start times, the files and when the last ends."""

    marks: tuple[float, ...]
    files: tuple[Path, ...]
    end: float


def _place_sounds(
    mix: np.ndarray, cue: CueSpec, pool: Sequence[Path], rng: np.random.Generator
) -> _Placed:
    marks: list[float] = []
    files: list[Path] = []
    t, end = cue.onset_s, cue.onset_s
    for index in _cycle(rng, len(pool)):
        if t >= cue.offset_s - 0.25:
            break
        clip = _event_clip(pool[index], _LOUDNESS[cue.kind])
        start = round(t * AUDIO_RATE)
        stop = min(start + clip.size, int(cue.offset_s * AUDIO_RATE), mix.size)
        if stop <= start:  # the audio track ends before the cue does
            break
        mix[start:stop] += _fade(clip[: stop - start], out_s=0.05)
        # Rounded to milliseconds for the manifest, but never outside the cue's window.
        marks.append(max(round(t, 3), cue.onset_s))
        files.append(pool[index])
        end = max(stop / AUDIO_RATE, marks[-1])
        t = end + float(rng.uniform(0.3, 2.5))
    return _Placed(tuple(marks), tuple(files), round(end, 3))


# --------------------------------------------------------------------------------------------
# Building a stream


@dataclass
class _Scene:
    """Everything one stream draws, chosen once from the spec and the assets."""

    spec: SynthSpec
    photos: list[np.ndarray]
    shots: list[_Shot]
    gait: _Gait
    weapon: _Weapon | None
    hud: _Hud | None
    news: _NewsGraphics | None
    presenter: _Patch | None
    shots_fired: np.ndarray  # gunshot mark times, for the HUD's ammo counter
    used: dict[str, list[Path]]
    blurred: dict[int, np.ndarray] = field(default_factory=dict)

    def frame(self, t: float, shot: _Shot) -> np.ndarray:
        size = (self.spec.width, self.spec.height)
        pose = _pose(shot, t, self.gait, self.spec.height)
        source = self.photos[shot.photo]
        if shot.mode in ("static", "presenter"):
            source = self._blurred(shot.photo)
        matrix = _view_matrix(pose, source.shape[:2], size)
        frame = cv2.warpAffine(
            source,
            matrix,
            size,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        if shot.mode == "presenter" and self.presenter is not None:
            pw, ph = self.presenter.size
            sway = 4 * math.sin(0.7 * t), 3 * math.sin(0.45 * t + 1.0)
            x, y = int(size[0] * 0.32 - pw / 2 + sway[0]), int(size[1] - ph + sway[1] + 4)
            _blend(frame, self.presenter, x, y)
        self._cues(frame, t, pose)
        return frame

    def _cues(self, frame: np.ndarray, t: float, pose: _Pose) -> None:
        # The weapon is in the scene; channel graphics and game HUDs are drawn over it.
        for cue in sorted(self.spec.cues, key=lambda cue: _LAYERS.get(cue.kind, 0)):
            if not cue.onset_s <= t < cue.offset_s:
                continue
            if cue.kind == "weapon" and self.weapon is not None:
                self.weapon.draw(frame, t - cue.onset_s, pose)
            elif cue.kind == "hud" and self.hud is not None:
                self.hud.draw(frame, int(np.searchsorted(self.shots_fired, t, side="right")))
            elif cue.kind == "logo" and self.news is not None:
                self.news.draw(frame, t)

    def _blurred(self, index: int) -> np.ndarray:
        """The photo out of focus: the backdrop of a product shot or a studio."""
        if index not in self.blurred:
            photo = self.photos[index]
            sigma = max(photo.shape[:2]) / 90
            self.blurred[index] = cv2.GaussianBlur(photo, (0, 0), sigmaX=sigma)
        return self.blurred[index]


@dataclass(frozen=True)
class Encoding:
    """How streams are encoded: like a streaming app's settings (constant bit rate, a keyframe
    every 2 s), so that decoding them costs what decoding real live streams costs."""

    preset: str = "superfast"
    #: None: 4500 kbit/s for 720p30 (a common live setting), scaled by pixel rate, at most 6000.
    bitrate_kbps: int | None = None
    audio_kbps: int = 128

    def video_kbps(self, spec: SynthSpec) -> int:
        if self.bitrate_kbps is not None:
            return self.bitrate_kbps
        scale = spec.width * spec.height * spec.fps / (1280 * 720 * 30)
        return min(round(4500 * scale), 6000)

    def options(self, spec: SynthSpec) -> dict[str, str]:
        rate = self.video_kbps(spec)
        return {
            "preset": self.preset,
            "b": f"{rate}k",
            "maxrate": f"{rate}k",
            "bufsize": f"{2 * rate}k",
            "g": str(2 * spec.fps),
        }

    def describe(self, spec: SynthSpec) -> str:
        return (
            f"H.264 {spec.width}x{spec.height} {spec.fps} fps x264 {self.preset} "
            f"{self.video_kbps(spec)} kbit/s, keyframe every 2 s; AAC {AUDIO_RATE} Hz stereo "
            f"{self.audio_kbps} kbit/s"
        )


def build_stream(
    spec: SynthSpec, out_path: Path, assets: Assets, *, encoding: Encoding = Encoding()
) -> Manifest:
    """Render ``spec`` to ``out_path`` (``.ts``, ``.mp4`` or ``.mkv``) and write its manifest
    beside it (same name, ``.json``). Returns the manifest with ``video`` absolute. The file
    appears only when complete."""
    container = _CONTAINERS.get(out_path.suffix.lower())
    if container is None:
        raise ValueError(f"{out_path}: the suffix must be one of {', '.join(_CONTAINERS)}")
    rng = _rng(spec.scenario, spec.seed, "build")
    audio, placed, sounds_used = _mix(spec, assets, rng)
    scene = _scene(spec, assets, rng, placed)
    partial = out_path.with_name(out_path.name + ".partial")
    try:
        _encode(scene, audio, partial, container, encoding)
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    used = {**scene.used, **sounds_used}
    manifest = _manifest(spec, out_path, assets, scene, placed, used, encoding.describe(spec))
    manifest.write(out_path.with_suffix(".json"))
    return manifest


def build_catalogue(
    out_dir: Path,
    assets: Assets,
    *,
    names: Sequence[str] | None = None,
    seeds: Sequence[int] = (0,),
    duration_s: float = 60.0,
    size: tuple[int, int] = HD_SIZE,
    fps: int = 30,
) -> list[Manifest]:
    """Build every (scenario, seed) pair into ``out_dir`` as ``NAME-sSEED.ts`` + ``.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        build_stream(
            scenario(name, seed=seed, duration_s=duration_s, size=size, fps=fps),
            out_dir / f"{name}-s{seed}.ts",
            assets,
        )
        for name in (names or list(SCENARIOS))
        for seed in seeds
    ]


def _mix(
    spec: SynthSpec, assets: Assets, rng: np.random.Generator
) -> tuple[np.ndarray, dict[int, _Placed], dict[str, list[Path]]]:
    """The soundtrack (mono, AUDIO_RATE) and, per sound cue index, the clips placed."""
    samples = _frames(spec) * AUDIO_RATE // spec.fps
    pools = {"casual": assets.casual, "siren": assets.sirens, "noise": ()}
    mix, ambience = _ambience(spec.ambience, pools[spec.ambience], samples, rng)
    events = {"gunshot": assets.gunshots, "explosion": assets.explosions}
    placed = {
        index: _place_sounds(mix, cue, events[cue.kind], rng)
        for index, cue in enumerate(spec.cues)
        if cue.kind in _SOUND_CUES
    }
    used: dict[str, list[Path]] = {"ambience": ambience}
    for index, clips in placed.items():
        used.setdefault(spec.cues[index].kind, []).extend(clips.files)
    # A soft limiter: loud shots saturate smoothly, as a phone's microphone does.
    return np.tanh(mix).astype(np.float32), placed, used


def _scene(
    spec: SynthSpec, assets: Assets, rng: np.random.Generator, placed: dict[int, _Placed]
) -> _Scene:
    size = (spec.width, spec.height)
    order = rng.permutation(len(assets.backgrounds))[: min(6, len(assets.backgrounds))]
    chosen = [assets.backgrounds[int(i)] for i in order]
    used: dict[str, list[Path]] = {"background": chosen}
    weapon = hud = news = presenter = None
    kinds = {cue.kind for cue in spec.cues}
    if "weapon" in kinds:
        pistol, cutout = _pick_pistol(assets.pistols, rng)
        weapon = _weapon(cutout, spec.placement, size, rng)
        used["weapon"] = [pistol]
    if "hud" in kinds:
        hud = _Hud(size, rng)
    if "logo" in kinds:
        news = _NewsGraphics(size, rng)
    if spec.camera == "studio":
        face = assets.faces[int(rng.integers(0, len(assets.faces)))]
        presenter = _presenter(face, spec.height)
        used["face"] = [face]
    fired = sorted(
        mark
        for index, clips in placed.items()
        if spec.cues[index].kind == "gunshot"
        for mark in clips.marks
    )
    return _Scene(
        spec=spec,
        photos=[_photo(path) for path in chosen],
        shots=_plan_shots(spec, rng, len(chosen)),
        gait=_Gait.random(rng),
        weapon=weapon,
        hud=hud,
        news=news,
        presenter=presenter,
        shots_fired=np.asarray(fired, dtype=np.float64),
        used=used,
    )


def _photo(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.ascontiguousarray(np.asarray(picture.convert("RGB")))


def _pick_pistol(
    pistols: Sequence[Path], rng: np.random.Generator, tries: int = 12
) -> tuple[Path, tuple[np.ndarray, bool]]:
    """A pistol whose box is big enough to be recognisable when scaled up, preferring one that
    cuts cleanly from its background (labels are noisy: some boxes hold no clear pistol)."""
    fallback: tuple[Path, tuple[np.ndarray, bool]] | None = None
    for index in rng.permutation(len(pistols)):
        path = pistols[int(index)]
        x0, y0, x1, y1 = pistol_box(path)
        with Image.open(path) as picture:
            short = min(picture.size)
        if min(x1 - x0, y1 - y0) < 0.25 * short:
            continue
        cutout = pistol_cutout(path)
        if cutout[1]:
            return path, cutout
        fallback = fallback or (path, cutout)
        tries -= 1
        if tries == 0:
            break
    if fallback is None:
        raise ValueError("no held-out pistol image has a box of at least a quarter of the image")
    return fallback


def _frames(spec: SynthSpec) -> int:
    return round(spec.duration_s * spec.fps)


def _encode(
    scene: _Scene, audio: np.ndarray, path: Path, container_format: str, encoding: Encoding
) -> None:
    spec = scene.spec
    with av.open(str(path), "w", format=container_format) as container:
        video = container.add_stream("libx264", rate=spec.fps, options=encoding.options(spec))
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        sound.bit_rate = encoding.audio_kbps * 1000
        sent = 0
        for index, rgb in enumerate(_render(scene)):
            yuv = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, spec.fps)
            container.mux(video.encode(frame))
            # Keep the audio in step with the video so that the file interleaves like a live feed.
            due = min((index + 1) * AUDIO_RATE // spec.fps, audio.size)
            while sent < due:
                part = audio[sent : sent + 1024]
                container.mux(sound.encode(_audio_frame(part, sent)))
                sent += part.size
        container.mux(video.encode(None))
        container.mux(sound.encode(None))


def _render(scene: _Scene) -> Iterator[np.ndarray]:
    """The stream's frames in order, each drawn in the shot it belongs to."""
    spec = scene.spec
    ends = [shot.end for shot in scene.shots]
    for index in range(_frames(spec)):
        t = index / spec.fps
        shot = scene.shots[min(bisect.bisect_right(ends, t), len(ends) - 1)]
        yield scene.frame(t, shot)


def _audio_frame(mono: np.ndarray, pts: int) -> Any:
    stereo = np.ascontiguousarray(np.stack([mono, mono]), dtype=np.float32)
    frame = av.AudioFrame.from_ndarray(stereo, format="fltp", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, pts, Fraction(1, AUDIO_RATE)
    return frame


def _manifest(
    spec: SynthSpec,
    out_path: Path,
    assets: Assets,
    scene: _Scene,
    placed: dict[int, _Placed],
    used: dict[str, list[Path]],
    encoding: str,
) -> Manifest:
    cues = [_cue(spec, index, cue, scene, placed) for index, cue in enumerate(spec.cues)]
    return Manifest(
        video=str(out_path.resolve()),
        synthetic=True,
        scenario=spec.scenario,
        category=spec.category,
        positive=spec.positive,
        onset_s=spec.onset_s,
        duration_s=_frames(spec) / spec.fps,
        seed=spec.seed,
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        cues=tuple(cues),
        assets={
            role: tuple(dict.fromkeys(assets.relative(path) for path in paths))
            for role, paths in used.items()
            if paths
        },
        asset_split=assets.split,
        notes=f"synthetic stream built by vigil.live.synth: {spec.description}; {encoding}",
    )


def _cue(
    spec: SynthSpec, index: int, cue: CueSpec, scene: _Scene, placed: dict[int, _Placed]
) -> Cue:
    detail: dict[str, Any] = {}
    offset, marks = cue.offset_s, tuple[float, ...]()
    if cue.kind in _SOUND_CUES:
        sounds = placed[index]
        offset, marks = sounds.end, sounds.marks
    elif cue.kind == "weapon" and scene.weapon is not None:
        detail = {
            "placement": scene.weapon.placement,
            "box": _clipped(scene.weapon.box(), spec),
            "size": list(scene.weapon.patch.size),
            "cutout": "grabcut" if scene.weapon.cut else "box",
        }
    elif cue.kind == "hud" and scene.hud is not None:
        detail = {"boxes": scene.hud.boxes(), "text": scene.hud.text(0)}
    elif cue.kind == "logo" and scene.news is not None:
        detail = {"boxes": scene.news.boxes()}
    elif cue.kind == "walk":
        detail = {"step_hz": round(scene.gait.step_hz, 3)}
    return Cue(kind=cue.kind, onset_s=cue.onset_s, offset_s=offset, marks_s=marks, detail=detail)


def _clipped(box: list[int], spec: SynthSpec) -> list[int]:
    x0, y0, x1, y1 = box
    return [max(x0, 0), max(y0, 0), min(x1, spec.width), min(y1, spec.height)]
