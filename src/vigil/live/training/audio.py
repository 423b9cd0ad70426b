"""``vigil train audio``: the gunshot/explosion head of :mod:`vigil.live.evidence.audio`, trained
on SESA (``audio/sesa`` in the developer data: casual, explosion, gunshot, siren clips of 1-33 s,
16 kHz mono 8-bit).

Recordings, not clips, are the unit of the split. Some clips were cut from one recording; two
rules put them in one group (union-find, so groups chain):

* shared audio: the clips hold the same samples somewhere. Every 16-sample run of a clip whose
  span is at least 3/16 of full scale and whose hash is 0 mod 64 is an anchor (content-chosen,
  so the same audio gives the same anchors whatever the cut); two clips with
  :data:`SHARED_ANCHORS` anchors in common at one and the same offset hold the same audio
  (finds e.g. explosion_004/explosion_020 and siren_000/siren_040);
* same recording, other part: clips that follow each other in the file numbering, with the same
  label, whose spectral profiles (10th, 50th and 90th percentile of every mel band, centred on
  the data set's mean profile) have cosine similarity at least :data:`PROFILE_COSINE` (e.g.
  siren_003/siren_004, which share no samples). The numbering matters: the same test on clips
  far apart in it matches different recordings of similar sounds.

Whole groups holding about a quarter of each label's windows are held out
(:func:`~vigil.learning.grouped_holdout`); :func:`held_out_files` lists their clips
for the evaluation harness. Clips are sliced into 1-s windows every 0.5 s. A gunshot or
explosion clip is not a gunshot in every second (pauses between shots, fading tails), so only
its windows whose loudest 10-ms frame is within :data:`EVENT_DB` of the clip's loudest are
events; its quieter windows are neither positives nor negatives, in training and in the held-out
scores. Every training window is also mixed, once, over a casual window of the same fold at a
random peak-to-background ratio and gain (:data:`MIX_SNR_DB`, :data:`MIX_GAIN_DB`), label kept,
so that the head knows gunshots over speech and traffic; every class is mixed, so that mixing
itself says nothing about the label.

Platt calibration per event class and the operating threshold (at most :data:`TARGET_FPR` of
non-gunshot windows, explosions included) come from out-of-fold scores on the training groups;
the shipped head is then fitted on all training windows and measured once on the held-out ones.
"""

from __future__ import annotations

import csv
import hashlib
import math
import subprocess
import time
import wave
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.learning import (
    binary_metrics,
    grouped_folds,
    grouped_holdout,
    markdown_table,
    roc_auc,
    threshold_at_fpr,
)
from vigil.live.evidence.audio import (
    CLASSES,
    DEFAULT_MODEL,
    EVENT_CLASSES,
    EXPLOSION_LLR_MAX,
    LLR_MAX,
    LLR_MIN,
    SILENCE_PEAK_DBFS,
    WINDOW,
    AudioHead,
    GunshotModel,
    assess_window,
    mel_frames,
    read_metadata,
    window_features,
)
from vigil.live.samples import AUDIO_RATE

SESA = Path("audio") / "sesa"
HOP = WINDOW // 2
HELD_OUT_FRACTION = 0.25
FOLDS = 4
TARGET_FPR = 0.01
EVENT_DB = 20.0
SHARED_ANCHORS = 8
ANCHOR_LENGTH = 16
ANCHOR_SPAN = 3 / 16
ANCHOR_EVERY = 64
#: A run of audio found in more clips than this is generic (e.g. a clipped burst), not shared.
ANCHOR_MAX_CLIPS = 20
PROFILE_COSINE = 0.85
#: Event peak over background RMS. The evaluation streams put a 0.9 peak over 0.05 RMS (25 dB).
MIX_SNR_DB = (15.0, 40.0)
MIX_GAIN_DB = (-20.0, 0.0)
#: Peak-to-background ratios of the held-out mixtures (held-out gunshots over held-out casual).
EVAL_SNR_DB = (25.0, 15.0)
TIMED_WINDOWS = 200


@dataclass(frozen=True)
class Clip:
    name: str
    label: str
    #: Float samples in [-1, 1].
    samples: np.ndarray
    #: The stored integer samples (centred), for finding shared audio exactly.
    integers: np.ndarray
    #: Full scale of ``integers`` (128 for 8-bit, 32768 for 16-bit).
    full_scale: int


def load_sesa(folder: Path) -> list[Clip]:
    """The clips listed in ``labels.csv``, sorted by name. 16 kHz mono 8- or 16-bit PCM."""
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"no SESA labels at {labels}")
    with labels.open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["file"])
    clips = []
    for row in rows:
        if row["label"] not in CLASSES:
            raise ValueError(f"{labels}: unknown label {row['label']!r} for {row['file']}")
        clips.append(_read_clip(folder / row["file"], row["label"]))
    return clips


def _read_clip(path: Path, label: str) -> Clip:
    with wave.open(str(path), "rb") as reader:
        width, channels, rate = reader.getsampwidth(), reader.getnchannels(), reader.getframerate()
        raw = reader.readframes(reader.getnframes())
    if channels != 1 or rate != AUDIO_RATE or width not in (1, 2):
        raise ValueError(
            f"{path}: expected {AUDIO_RATE} Hz mono 8/16-bit, got {rate} Hz x "
            f"{channels}, {8 * width}-bit"
        )
    if width == 1:
        integers = np.frombuffer(raw, np.uint8).astype(np.int32) - 128
    else:
        integers = np.frombuffer(raw, "<i2").astype(np.int32)
    full_scale = 128 if width == 1 else 32768
    if integers.size < WINDOW:
        raise ValueError(f"{path}: shorter than one {WINDOW}-sample window")
    samples = (integers / full_scale).astype(np.float32)
    return Clip(path.name, label, samples, integers, full_scale)


# --------------------------------------------------------------------------------------------
# Recording groups


def recording_groups(clips: Sequence[Clip]) -> list[str]:
    """Each clip's group: the name of the first clip of its recording (see the module doc)."""
    parent = list(range(len(clips)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def join(a: int, b: int) -> None:
        parent[max(root(a), root(b))] = min(root(a), root(b))

    for a, b in _shared_audio(clips):
        join(a, b)
    profiles = np.array([_profile(clip) for clip in clips])
    profiles -= profiles.mean(axis=0)
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    for index in range(len(clips) - 1):
        same_label = clips[index].label == clips[index + 1].label
        if same_label and float(profiles[index] @ profiles[index + 1]) >= PROFILE_COSINE:
            join(index, index + 1)
    return [clips[root(index)].name for index in range(len(clips))]


def _anchors(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Content-chosen (hash, position) pairs of loud 16-sample runs."""
    runs = np.lib.stride_tricks.sliding_window_view(clip.integers, ANCHOR_LENGTH)
    span = runs.max(axis=1) - runs.min(axis=1)
    powers = np.uint64(0x9E3779B97F4A7C15) ** np.arange(ANCHOR_LENGTH, dtype=np.uint64)
    with np.errstate(over="ignore"):
        hashes = (runs.astype(np.uint64) * powers).sum(axis=1, dtype=np.uint64)
    hashes ^= hashes >> np.uint64(29)
    chosen = (span >= ANCHOR_SPAN * clip.full_scale) & (hashes % np.uint64(ANCHOR_EVERY) == 0)
    positions = np.flatnonzero(chosen)
    return hashes[positions], positions


def _shared_audio(clips: Sequence[Clip]) -> list[tuple[int, int]]:
    """Pairs of clips with at least SHARED_ANCHORS anchors in common at one offset."""
    where: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for index, clip in enumerate(clips):
        for value, position in zip(*_anchors(clip), strict=True):
            where[int(value)].append((index, int(position)))
    offsets: dict[tuple[int, int], Counter[int]] = defaultdict(Counter)
    for found in where.values():
        if len(found) > ANCHOR_MAX_CLIPS:
            continue
        for k, (a, at_a) in enumerate(found):
            for b, at_b in found[k + 1 :]:
                if a != b:
                    offsets[(a, b)][at_a - at_b] += 1
    return sorted(
        pair for pair, counts in offsets.items() if counts.most_common(1)[0][1] >= SHARED_ANCHORS
    )


def _profile(clip: Clip) -> np.ndarray:
    mel, _ = mel_frames(clip.samples)
    mel_db = 10.0 * np.log10(mel)
    profile: np.ndarray = np.percentile(mel_db, [10, 50, 90], axis=0).ravel()
    return profile


# --------------------------------------------------------------------------------------------
# Windows


@dataclass(frozen=True)
class Windows:
    """Every 1-s window of every clip, every HOP samples (the last one flush with the end)."""

    clip: np.ndarray
    start: np.ndarray
    #: False for the quiet windows of gunshot and explosion clips (not events, not negatives).
    scored: np.ndarray

    def samples(self, clips: Sequence[Clip], index: int) -> np.ndarray:
        start = int(self.start[index])
        segment: np.ndarray = clips[int(self.clip[index])].samples[start : start + WINDOW]
        return segment


def slice_windows(clips: Sequence[Clip]) -> Windows:
    owners: list[int] = []
    starts: list[int] = []
    scored: list[bool] = []
    for index, clip in enumerate(clips):
        last = clip.samples.size - WINDOW
        positions = sorted({*range(0, last + 1, HOP), last})
        levels = np.array([_loudest_frame_db(clip.samples[p : p + WINDOW]) for p in positions])
        event = clip.label in EVENT_CLASSES
        owners += [index] * len(positions)
        starts += positions
        scored += (levels >= levels.max() - EVENT_DB).tolist() if event else [True] * len(levels)
    return Windows(np.array(owners), np.array(starts), np.array(scored))


def _loudest_frame_db(samples: np.ndarray) -> float:
    """Level of the loudest 10-ms frame: a lone shot barely moves a window's RMS."""
    frames = samples[: samples.size // 160 * 160].astype(np.float64).reshape(-1, 160)
    return 10.0 * math.log10(float((frames**2).mean(axis=1).max()) + 1e-12)


def mix(event: np.ndarray, background: np.ndarray, snr_db: float, gain_db: float) -> np.ndarray:
    """``event`` over ``background`` with the event's peak ``snr_db`` above the background's
    RMS (a peak ratio: an RMS ratio says little about a lone shot in a 1-s window), scaled by
    ``gain_db`` and clipped."""
    peak = float(np.abs(event).max()) + 1e-9
    floor = math.sqrt(float(np.mean(background.astype(np.float64) ** 2))) + 1e-9
    gain = 10.0 ** (gain_db / 20.0)
    mixed = (event + background * (peak / floor) * 10.0 ** (-snr_db / 20.0)) * gain
    clipped: np.ndarray = np.clip(mixed, -1.0, 1.0).astype(np.float32)
    return clipped


def _features(clips: Sequence[Clip], windows: Windows, rows: np.ndarray) -> np.ndarray:
    return np.array([window_features(windows.samples(clips, int(i))) for i in rows])


def _mixtures(
    clips: Sequence[Clip],
    windows: Windows,
    rows: np.ndarray,
    fold_of: dict[int, int],
    rng: np.random.Generator,
) -> np.ndarray:
    """Features of each row mixed over a random casual window of its own fold (so a fold's
    out-of-fold scores never see another fold's audio)."""
    labels = _labels(clips, windows)
    casual: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        if labels[row] == "casual":
            casual[fold_of[int(row)]].append(int(row))
    features = []
    for row in rows:
        pool = casual[fold_of[int(row)]]
        if not pool:
            raise ValueError("every fold needs casual windows to mix over")
        background = windows.samples(clips, pool[int(rng.integers(len(pool)))])
        mixed = mix(
            windows.samples(clips, int(row)),
            background,
            float(rng.uniform(*MIX_SNR_DB)),
            float(rng.uniform(*MIX_GAIN_DB)),
        )
        features.append(window_features(mixed))
    return np.array(features)


def _labels(clips: Sequence[Clip], windows: Windows) -> np.ndarray:
    return np.array([clips[int(i)].label for i in windows.clip])


# --------------------------------------------------------------------------------------------
# Training


def train(data_dir: Path, out_dir: Path, *, seed: int = 0) -> Path:
    """Train, calibrate and measure the head on ``data_dir/audio/sesa``; write
    ``gunshot.npz`` + ``.json`` and the model card ``gunshot.md`` to ``out_dir``; return the
    card's path."""
    began = time.monotonic()
    clips = load_sesa(data_dir / SESA)
    groups = recording_groups(clips)
    windows = slice_windows(clips)
    labels = _labels(clips, windows)
    held = _hold_out(clips, groups, windows, seed)
    in_training = ~held[windows.clip] & windows.scored
    train_rows = np.flatnonzero(in_training)
    fold = grouped_folds([groups[int(c)] for c in windows.clip[train_rows]], FOLDS, seed=seed)
    fold_of = dict(zip(train_rows.tolist(), fold.tolist(), strict=True))

    rng = np.random.default_rng(seed)
    clean = _features(clips, windows, train_rows)
    mixed = _mixtures(clips, windows, train_rows, fold_of, rng)
    x = np.vstack([clean, mixed])
    y = np.concatenate([labels[train_rows]] * 2)
    folds = np.concatenate([fold] * 2)

    out_of_fold = np.zeros((train_rows.size, len(CLASSES)))
    for k in range(FOLDS):
        head = AudioHead(seed=seed).fit(x[folds != k], y[folds != k])
        out_of_fold[fold == k] = head.predict_proba(clean[fold == k])
    truth = labels[train_rows]
    calibration = {
        name: _platt(out_of_fold[:, CLASSES.index(name)], truth == name) for name in EVENT_CLASSES
    }
    priors = {name: float(np.mean(truth == name)) for name in EVENT_CLASSES}
    model = GunshotModel(AudioHead(seed=seed).fit(x, y), calibration, priors, threshold=1.0)
    if model.head.classes_ != CLASSES:
        raise ValueError(f"training data must hold all of {CLASSES}, got {model.head.classes_}")
    calibrated = _calibrate(out_of_fold, calibration)
    model.threshold = threshold_at_fpr(calibrated[truth != "gunshot"], TARGET_FPR)

    metrics = evaluate(model, clips, windows, held)
    metrics["out_of_fold_auc"] = [
        roc_auc(truth[fold == k] == "gunshot", calibrated[fold == k]) for k in range(FOLDS)
    ]
    metrics["training_windows"] = {name: int(np.sum(truth == name)) for name in CLASSES}
    metrics["training_seconds"] = round(time.monotonic() - began, 1)

    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / DEFAULT_MODEL.name
    model.save(model_path, _metadata(data_dir, clips, groups, held, metrics, seed))
    card = out_dir / "gunshot.md"
    card.write_text(model_card(read_metadata(model_path)), encoding="utf-8")
    return card


def _hold_out(
    clips: Sequence[Clip], groups: Sequence[str], windows: Windows, seed: int
) -> np.ndarray:
    """Held-out clips: whole groups, about HELD_OUT_FRACTION of each label's scored windows
    (clip counts would hold out mostly short clips: few windows to measure on). A group is
    stratified by its first clip's label, so that it never spans two strata."""
    label_of = {clip.name: clip.label for clip in clips}
    scored = windows.clip[windows.scored]
    window_groups = [groups[int(c)] for c in scored]
    by_window = grouped_holdout(
        window_groups,
        HELD_OUT_FRACTION,
        seed=seed,
        strata=[label_of[group] for group in window_groups],
    )
    held = np.zeros(len(clips), dtype=bool)
    held[scored[by_window]] = True
    return held


def _platt(raw: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Platt scaling (a, b): P = sigmoid(a * logit(raw) + b), fitted unregularised."""
    from sklearn.linear_model import LogisticRegression

    score = _logit(raw)[:, None]
    fitted = LogisticRegression(C=1e6, max_iter=1000).fit(score, truth.astype(np.int64))
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-7, 1.0 - 1e-7)
    result: np.ndarray = np.log(q / (1.0 - q))
    return result


def _calibrate(raw: np.ndarray, calibration: dict[str, tuple[float, float]]) -> np.ndarray:
    """Calibrated P(gunshot) from raw class probabilities (N x CLASSES)."""
    a, b = calibration["gunshot"]
    result: np.ndarray = 1.0 / (1.0 + np.exp(-(a * _logit(raw[:, CLASSES.index("gunshot")]) + b)))
    return result


# --------------------------------------------------------------------------------------------
# Held-out evaluation


def evaluate(
    model: GunshotModel, clips: Sequence[Clip], windows: Windows, held: np.ndarray
) -> dict[str, Any]:
    """Held-out metrics of the source exactly as streams use it (:func:`assess_window`)."""
    rows = np.flatnonzero(held[windows.clip] & windows.scored)
    labels = _labels(clips, windows)[rows]
    evidence = [assess_window(model, windows.samples(clips, int(r)), 0.0) for r in rows]
    p_gunshot = np.array([e.score for e in evidence])
    p_explosion = np.array([e.detail.get("p_explosion", 0.0) for e in evidence])
    llr = np.array([e.llr for e in evidence])
    is_gunshot = labels == "gunshot"
    at_threshold = binary_metrics(is_gunshot, p_gunshot, model.threshold)
    flagged = p_gunshot >= model.threshold
    benign = np.isin(labels, ["casual", "siren"])
    raw = model.head.predict_proba(_features(clips, windows, rows))
    return {
        "windows": {name: int(np.sum(labels == name)) for name in CLASSES},
        "quiet_event_windows_excluded": int(np.sum(held[windows.clip] & ~windows.scored)),
        "auc": {
            "all": roc_auc(is_gunshot, p_gunshot),
            **{
                name: roc_auc(
                    is_gunshot[is_gunshot | (labels == name)],
                    p_gunshot[is_gunshot | (labels == name)],
                )
                for name in CLASSES
                if name != "gunshot"
            },
        },
        "at_threshold": at_threshold,
        "false_positives_per_hour": {
            "non_gunshot": 3600.0 * float(flagged[~is_gunshot].mean()),
            "casual_and_siren": 3600.0 * float(flagged[benign].mean()),
        },
        "flagged_share": {name: float(flagged[labels == name].mean()) for name in CLASSES},
        "explosion": {
            "auc_explosion_vs_rest": roc_auc(labels == "explosion", p_explosion),
            "gunshot_windows_more_explosion": float(
                np.mean(p_explosion[is_gunshot] > p_gunshot[is_gunshot])
            ),
        },
        "confusion": _confusion(labels, raw),
        "clips": _clip_detection(clips, windows, rows, flagged, held),
        "calibration": _calibration_metrics(is_gunshot, p_gunshot),
        "llr": {
            name: {
                "mean": float(llr[labels == name].mean()),
                "at_max": float(np.mean(llr[labels == name] >= LLR_MAX)),
            }
            for name in CLASSES
        },
        "mixtures": _held_out_mixtures(model, clips, windows, rows, labels, p_gunshot),
        "ms_per_window": _cost(model, clips, windows, rows),
    }


def _confusion(labels: np.ndarray, raw: np.ndarray) -> dict[str, dict[str, int]]:
    """Held-out windows by true class (rows) and the head's top class (columns)."""
    top = np.array(CLASSES)[np.argmax(raw, axis=1)]
    return {
        truth: {guess: int(np.sum((labels == truth) & (top == guess))) for guess in CLASSES}
        for truth in CLASSES
    }


def _clip_detection(
    clips: Sequence[Clip],
    windows: Windows,
    rows: np.ndarray,
    flagged: np.ndarray,
    held: np.ndarray,
) -> dict[str, float]:
    """Share of held-out clips of each class with at least one window over the threshold."""
    any_flag: dict[int, bool] = defaultdict(bool)
    for row, flag in zip(rows.tolist(), flagged.tolist(), strict=True):
        any_flag[int(windows.clip[row])] |= flag
    result = {}
    for name in CLASSES:
        members = [i for i, clip in enumerate(clips) if held[i] and clip.label == name]
        result[name] = float(np.mean([any_flag[i] for i in members])) if members else math.nan
    return result


def _calibration_metrics(truth: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, 11)
    bins = np.clip(np.digitize(p, edges[1:-1]), 0, 9)
    filled = [k for k in range(10) if np.any(bins == k)]
    counts = [int(np.sum(bins == k)) for k in filled]
    mean_p = [float(p[bins == k].mean()) for k in filled]
    share = [float(truth[bins == k].mean()) for k in filled]
    reliability = [
        {"bin": f"{edges[k]:.1f}-{edges[k + 1]:.1f}", "windows": n, "mean_p": q, "gunshot_share": f}
        for k, n, q, f in zip(filled, counts, mean_p, share, strict=True)
    ]
    ece = sum(n / p.size * abs(q - f) for n, q, f in zip(counts, mean_p, share, strict=True))
    return {
        "brier": float(np.mean((p - truth) ** 2)),
        "brier_base_rate": float(np.mean((truth.mean() - truth) ** 2)),
        "ece": float(ece),
        "reliability": reliability,
    }


def _held_out_mixtures(
    model: GunshotModel,
    clips: Sequence[Clip],
    windows: Windows,
    rows: np.ndarray,
    labels: np.ndarray,
    p_gunshot: np.ndarray,
) -> dict[str, dict[str, float | None]]:
    """Held-out gunshot windows over held-out casual windows, against clean held-out casual."""
    rng = np.random.default_rng(1)
    shots, casual = rows[labels == "gunshot"], rows[labels == "casual"]
    result: dict[str, dict[str, float | None]] = {}
    for snr in EVAL_SNR_DB:
        scores = np.array(
            [
                assess_window(
                    model,
                    mix(
                        windows.samples(clips, int(shot)),
                        windows.samples(clips, int(casual[rng.integers(casual.size)])),
                        snr,
                        0.0,
                    ),
                    0.0,
                ).score
                for shot in shots
            ]
        )
        negatives = p_gunshot[labels == "casual"]
        truth = np.r_[np.ones(scores.size, bool), np.zeros(negatives.size, bool)]
        result[f"{snr:g} dB"] = {
            "auc_vs_casual": roc_auc(truth, np.r_[scores, negatives]),
            "recall": float(np.mean(scores >= model.threshold)),
        }
    return result


def _cost(
    model: GunshotModel, clips: Sequence[Clip], windows: Windows, rows: np.ndarray
) -> dict[str, float]:
    """Wall time of one window through the source (features, head, calibration)."""
    timings = []
    for row in rows[:: max(1, rows.size // TIMED_WINDOWS)][:TIMED_WINDOWS]:
        samples = windows.samples(clips, int(row))
        began = time.perf_counter()
        assess_window(model, samples, 0.0)
        timings.append(1000.0 * (time.perf_counter() - began))
    return {"median": float(np.median(timings)), "p95": float(np.percentile(timings, 95))}


# --------------------------------------------------------------------------------------------
# Metadata and the model card


def _metadata(
    data_dir: Path,
    clips: Sequence[Clip],
    groups: Sequence[str],
    held: np.ndarray,
    metrics: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    folder = data_dir / SESA
    digest = hashlib.sha256((folder / "labels.csv").read_bytes())
    for clip in clips:
        digest.update((folder / clip.name).read_bytes())
    prefix = SESA.as_posix()
    return {
        "data": {
            "folder": prefix,
            "sha256": digest.hexdigest(),
            "clips": {name: sum(c.label == name for c in clips) for name in CLASSES},
            "recording_groups": {
                name: len({g for c, g in zip(clips, groups, strict=True) if c.label == name})
                for name in CLASSES
            },
        },
        "code_commit": _code_commit(),
        "command": f"vigil train audio --data {data_dir.as_posix()} --seed {seed}",
        "window": {"samples": WINDOW, "hop": HOP, "event_db": EVENT_DB},
        "llr": {
            "min": LLR_MIN,
            "max": LLR_MAX,
            "explosion_max": EXPLOSION_LLR_MAX,
            "silence_peak_dbfs": SILENCE_PEAK_DBFS,
        },
        "target_fpr": TARGET_FPR,
        "held_out": [f"{prefix}/{c.name}" for c, out in zip(clips, held, strict=True) if out],
        "groups": {c.name: g for c, g in zip(clips, groups, strict=True) if c.name != g},
        "metrics": metrics,
    }


def _code_commit() -> str | None:
    """The commit the trainer ran from, marked when the two audio modules differ from it (other
    files may be edited by others meanwhile: they do not change this model)."""
    import vigil.live.evidence.audio as evidence

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--", __file__, str(evidence.__file__))
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit} + local changes" if changed else commit


def held_out_files(model_path: Path | None = None) -> list[str]:
    """SESA files the shipped head (or the one at ``model_path``) never saw in training, as
    paths relative to the developer data folder (``audio/sesa/gunshot_003.wav``): the only ones
    synthetic evaluation streams may use."""
    held: list[str] = read_metadata(model_path)["held_out"]
    return held


def model_card(metadata: dict[str, Any]) -> str:
    """The markdown model card of a trained model, from its metadata."""
    m = metadata["metrics"]
    at = m["at_threshold"]
    clips = metadata["data"]["clips"]
    held = Counter(Path(f).name.split("_")[0] for f in metadata["held_out"])
    recordings = metadata["data"]["recording_groups"]
    split = markdown_table(
        [
            "class",
            "clips",
            "recording groups",
            "held-out clips",
            "held-out windows scored",
            "training windows",
        ],
        [
            [
                name,
                clips[name],
                recordings[name],
                held[name],
                m["windows"][name],
                m["training_windows"][name],
            ]
            for name in CLASSES
        ],
    )
    folds = ", ".join("n/a" if auc is None else f"{auc:.3f}" for auc in m["out_of_fold_auc"])
    window = metadata["window"]
    hop_s = window["hop"] / AUDIO_RATE
    snr = f"event peak {MIX_SNR_DB[0]:g} to {MIX_SNR_DB[1]:g} dB over the background's RMS"
    gain = f"gain {MIX_GAIN_DB[0]:g} to {MIX_GAIN_DB[1]:g} dB"
    auc = markdown_table(
        ["gunshot windows against", "ROC AUC"],
        [["all non-gunshot windows", m["auc"]["all"]]]
        + [[f"{name} windows", m["auc"][name]] for name in CLASSES if name != "gunshot"],
    )
    fph = m["false_positives_per_hour"]
    operating = markdown_table(
        ["at P(gunshot) >= threshold", "value"],
        [
            ["threshold (calibrated P(gunshot))", metadata["threshold"]],
            ["precision (held-out prevalence)", at["precision"]],
            ["recall (gunshot windows)", at["recall"]],
            ["false-positive rate (non-gunshot windows)", at["fpr"]],
            ["false positives per hour, all non-gunshot audio", fph["non_gunshot"]],
            ["false positives per hour, casual + siren audio", fph["casual_and_siren"]],
            *([f"share of {name} windows flagged", m["flagged_share"][name]] for name in CLASSES),
            *(
                [f"held-out {name} clips with a flagged window", m["clips"][name]]
                for name in CLASSES
            ),
        ],
    )
    confusion = markdown_table(
        ["true \\ head's top class", *CLASSES],
        [[truth, *(m["confusion"][truth][guess] for guess in CLASSES)] for truth in CLASSES],
    )
    mixtures = markdown_table(
        ["gunshot peak over casual RMS", "AUC vs clean casual", "recall"],
        [[snr, v["auc_vs_casual"], v["recall"]] for snr, v in m["mixtures"].items()],
    )
    cal = m["calibration"]
    reliability = markdown_table(
        ["P(gunshot) bin", "windows", "mean P", "gunshot share"],
        [[r["bin"], r["windows"], r["mean_p"], r["gunshot_share"]] for r in cal["reliability"]],
    )
    llr = metadata["llr"]
    llr_table = markdown_table(
        ["held-out windows", "mean LLR", f"share at the +{llr['max']} cap"],
        [[name, m["llr"][name]["mean"], m["llr"][name]["at_max"]] for name in CLASSES],
    )
    cost = m["ms_per_window"]
    return f"""# Gunshot / explosion audio (`gunshot`)

Evidence source `vigil.live.evidence.audio` (name `gunshot`, audio), trained by
`vigil.live.training.audio`. Every 1-s window of 16 kHz mono audio is described by
{len(metadata["features"])} numpy features (log-mel band mean/peak/spread relative to the window's
loudest frame, and the loudest event's rise, decay, crest factor, energy kurtosis, spectral flux,
flatness, centroid and low-frequency share) and classified by a one-hidden-layer network
({metadata["hidden"]} ReLU units, L2 {metadata["alpha"]}) into {", ".join(CLASSES)}. P(gunshot)
and P(explosion) are Platt-calibrated on out-of-fold scores.

Evidence per window: score = P(gunshot);
LLR = clip(max(logit P(gunshot) - logit {metadata["priors"]["gunshot"]:.4f},
min(logit P(explosion) - logit {metadata["priors"]["explosion"]:.4f}, {llr["explosion_max"]})),
{llr["min"]}, {llr["max"]}), the priors being the class shares of the training windows (so each
term is the window's log-likelihood ratio for that sound). Explosions count at most
{llr["explosion_max"]}: benign streams (fireworks, films, games, demolition) carry far more of them
than gunshots. A window whose peak is under {llr["silence_peak_dbfs"]} dBFS (below the 8-bit
training audio's step) gives score 0 and LLR 0: silence says nothing either way. NaN/inf samples
are zeroed and overshoot clipped (both reported in the detail); a window of the wrong length or
an integer type is a `ValueError`.

## Training data

SESA (`{metadata["data"]["folder"]}` of the developer data, sha256 of labels + clips
`{metadata["data"]["sha256"][:16]}…`): {sum(clips.values())} Freesound clips of 1-33 s, 16 kHz mono
8-bit, licence CC BY 4.0 as cited, not verified.

**Recording groups.** Clips cut from one recording are one group (union-find): clips that share
audio exactly ({SHARED_ANCHORS}+ content-chosen 16-sample anchors at one offset, e.g.
explosion_004/020, siren_000/040), and neighbours in the file numbering with the same label and
a spectral-profile cosine of at least {PROFILE_COSINE} (e.g. siren_003/004, which share no samples).
{sum(recordings.values())} groups for {sum(clips.values())} clips (per class in the table below);
the membership is in `gunshot.json` (`groups`: each grouped clip and its group's first clip).

**Split.** Whole groups, about {HELD_OUT_FRACTION:.0%} of each class's scored windows, are held
out (seed {metadata["seed"]}); `held_out_files()` lists them for the evaluation harness. Windows:
1 s every {hop_s:g} s. In gunshot and explosion clips only windows whose loudest 10-ms frame
is within {window["event_db"]:g} dB of the clip's loudest are events;
the quieter ones (pauses between shots, fading tails: {m["quiet_event_windows_excluded"]} held out)
are neither positives nor negatives. Every training window is mixed once over a casual window of
its own fold ({snr}, {gain}, label kept).

{split}
Calibration and the threshold come from {FOLDS}-fold grouped out-of-fold scores on the training
groups (AUC per fold: {folds}); the threshold keeps at most {metadata["target_fpr"]:.0%} of
out-of-fold non-gunshot windows (explosions included) above it.
The shipped head is then fitted on all training windows and measured once on the held-out ones,
through the same code path streams use.

## Held-out results (window level)

{auc}
{operating}
False positives per hour assume one window per second of non-gunshot audio, as in a live stream.
Gunshot vs explosion: AUC {m["auc"]["explosion"]:.3f}; {m["flagged_share"]["explosion"]:.1%} of
explosion windows flagged as gunshot; {m["explosion"]["gunshot_windows_more_explosion"]:.1%} of
gunshot windows have P(explosion) > P(gunshot); explosion-vs-rest AUC of P(explosion)
{m["explosion"]["auc_explosion_vs_rest"]:.3f}.

Head's top class (raw, uncalibrated) on held-out windows:

{confusion}
Gunshots over background (held-out clips only):

{mixtures}
**Calibration** of P(gunshot) on held-out windows: Brier {cal["brier"]:.4f} (base-rate forecast
{cal["brier_base_rate"]:.4f}), expected calibration error {cal["ece"]:.3f}.

{reliability}
**LLR** contributed per held-out window:

{llr_table}
**Cost**: {cost["median"]:.2f} ms per 1-s window (median; p95 {cost["p95"]:.2f} ms), features +
head, one thread, measured during training on the shared 2-core development machine.

## Limits

- Small data: {clips["gunshot"]} gunshot clips from {recordings["gunshot"]} recording groups; the
  held-out figures rest on {held["gunshot"]} gunshot clips. Another seed draws another split
  and the figures move with it, the operating threshold most: it sits at the 1 % tail of
  out-of-fold negatives, a few dozen windows, mostly knocks and slams. The fusion does not use
  the threshold (it adds the LLR, which follows the calibrated probability); only the detail's
  `gunshot` flag does.
- Freesound recordings, not live-stream audio (AAC, loudness-normalised, speech and music on
  top). Impulsive casual sounds (knocks, slams, hammering) are the main false positives.
- Game and film gunshots are gunshots to this head (and to any audio-only model): telling a
  game from reality is the fusion's job, with the look-alike sources.
- The threshold is set on out-of-fold scores; its held-out false-positive rate is what the
  table says, not the {metadata["target_fpr"]:.0%} target.

## Reproduce

From the repository root:

    .venv/bin/{metadata["command"]}

Training took {m["training_seconds"]:g} s on the shared 2-core development machine (code
`{metadata["code_commit"]}`).
"""
