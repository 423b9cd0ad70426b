"""Gunshot and explosion evidence from 1-second audio windows.

Features are hand-made and cheap (numpy only, :func:`window_features`): a log-mel spectrogram
of the window summarised per band (mean, peak, spread over time, relative to the window's
loudest frame so that the head never sees the recording level), and the shape of the loudest
event (how far and how sharply it rises above the background, how fast it decays, how impulsive
and broadband it is). Gunshots are impulsive broadband transients with a sharp attack and a
short decay; explosions are longer and lower; sirens are tonal; casual sound (speech, traffic)
has no single dominant onset.

The head (:class:`AudioHead`) is a one-hidden-layer network over four classes (gunshot,
explosion, siren, casual), Platt-calibrated per class on out-of-fold scores (see
``models/gunshot.md``). The evidence's score is the calibrated P(gunshot); its ratio is

    max(logit(P(gunshot)) - logit(prior), min(logit(P(explosion)) - logit(prior), 1.0))

clipped to [:data:`LLR_MIN`, :data:`LLR_MAX`], with the priors the class shares of the training
windows, so that each term is the window's log-likelihood ratio for that sound. An explosion
counts at most :data:`EXPLOSION_LLR_MAX`: attacks do use explosives, but benign streams carry
far more explosions than gunshots (fireworks, films, games, demolition), so hearing one says
less about the stream. The upper clip keeps one cue alone below the fusion's drift; the lower
one keeps a long stretch of ordinary sound from burying the gunshot that follows.

A window quieter than :data:`SILENCE_PEAK_DBFS` at its peak gives score 0 and ratio 0: the 8-bit
training audio cannot represent it (its step is -42 dBFS), a gunshot is never that quiet, and a
muted stream is no evidence either way. The model ships as ``models/gunshot.npz`` (weights)
with ``models/gunshot.json`` (classes, calibration, priors, threshold, held-out files, metrics)
and is loaded once per process and shared by every stream's source (it is read-only).
"""

from __future__ import annotations

import functools
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from vigil.learning import read_model_metadata
from vigil.live.evidence.base import (
    AudioEvidenceSource,
    Evidence,
    EvidenceFactory,
    clip,
    logit,
)
from vigil.live.samples import AUDIO_RATE, AUDIO_WINDOW_SECONDS, AudioWindow
from vigil.live.training import MODELS_DIR

NAME = "gunshot"
DEFAULT_MODEL = MODELS_DIR / "gunshot.npz"
CLASSES = ("casual", "explosion", "gunshot", "siren")
#: Classes whose calibrated probability the evidence reports (and whose ratio it uses).
EVENT_CLASSES = ("gunshot", "explosion")
FORMAT = 1

WINDOW = int(AUDIO_RATE * AUDIO_WINDOW_SECONDS)
N_FFT = 512
HOP = 160
N_MELS = 32
FMIN = 50.0
#: Frames after the loudest one at which the decay is read: 50, 150 and 400 ms.
DECAY_FRAMES = (5, 15, 40)
#: Variance of 8-bit quantisation noise (step 1/128): the noise floor of the training audio.
QUANTISATION_VARIANCE = (1.0 / 128.0) ** 2 / 12.0
SILENCE_PEAK_DBFS = -40.0
LLR_MIN = -1.0
LLR_MAX = 2.5
EXPLOSION_LLR_MAX = 1.0


# --------------------------------------------------------------------------------------------
# Features


@functools.lru_cache(maxsize=1)
def _mel_filterbank() -> np.ndarray:
    """(N_FFT // 2 + 1, N_MELS) triangular filters, evenly spaced on the mel scale."""

    def to_mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    mels = np.linspace(to_mel(FMIN), to_mel(AUDIO_RATE / 2), N_MELS + 2)
    edges = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / AUDIO_RATE)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - low) / (centre - low)
    falling = (high - freqs[None, :]) / (high - centre)
    bank = np.maximum(0.0, np.minimum(rising, falling))
    return np.ascontiguousarray(bank.T, dtype=np.float32)


@functools.lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1].astype(np.float32)


@functools.lru_cache(maxsize=1)
def _noise_floor() -> tuple[np.ndarray, float]:
    """Expected mel-band and whole-frame power of 8-bit quantisation noise. Added to every
    frame, so that live audio with a cleaner floor than the 8-bit training clips looks like
    them: without it, a loud event over digital silence gives level ratios the head never saw."""
    per_bin = QUANTISATION_VARIANCE * float((_hann() ** 2).sum())
    mel = per_bin * _mel_filterbank().sum(axis=0)
    return mel.astype(np.float32), per_bin * (N_FFT // 2 + 1)


def mel_frames(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mel-band power (frames x N_MELS) and total power per frame, 10 ms hop, noise floor
    included. ``samples`` are float in [-1, 1], at least ``N_FFT`` long."""
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float32), N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * _hann(), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel_floor, frame_floor = _noise_floor()
    mel: np.ndarray = power @ _mel_filterbank() + mel_floor
    total: np.ndarray = power.sum(axis=1) + frame_floor
    return mel, total


def _kurtosis(values: np.ndarray) -> float:
    centred = values - values.mean()
    variance = float((centred**2).mean())
    return float((centred**4).mean() / variance**2) if variance > 0.0 else 0.0


FEATURE_NAMES: tuple[str, ...] = (
    *(f"mel_mean_{band}" for band in range(N_MELS)),
    *(f"mel_max_{band}" for band in range(N_MELS)),
    *(f"mel_std_{band}" for band in range(N_MELS)),
    "peak_over_median_db",
    "peak_over_p10_db",
    "max_rise_10ms_db",
    "max_rise_20ms_db",
    *(f"decay_{frames * 10}ms_db" for frames in DECAY_FRAMES),
    "share_within_6db",
    "share_within_20db",
    "log_energy_kurtosis",
    "crest_db",
    "log_sample_kurtosis",
    "flux_max",
    "flux_mean",
    "flux_max_over_mean",
    "peak_flatness",
    "mean_flatness",
    "peak_centroid",
    "peak_low_share_db",
)


def window_features(samples: np.ndarray) -> np.ndarray:
    """The head's inputs for one window: ``WINDOW`` finite float samples in [-1, 1] (see
    :func:`prepare_window` for live input)."""
    mel, total = mel_frames(samples)
    mel_db = 10.0 * np.log10(mel)
    frame_db = 10.0 * np.log10(total)
    peak = int(np.argmax(frame_db))
    top = float(frame_db[peak])
    decays = [top - float(frame_db[min(peak + n, len(frame_db) - 1)]) for n in DECAY_FRAMES]
    flux = np.maximum(np.diff(mel_db, axis=0), 0.0).mean(axis=1)
    flatness = np.exp(np.log(mel).mean(axis=1)) / mel.mean(axis=1)
    peak_mel = mel[peak].astype(np.float64)
    wave = samples.astype(np.float64)
    rms = math.sqrt(float(np.mean(wave**2)))
    shape = [
        top - float(np.median(frame_db)),
        top - float(np.percentile(frame_db, 10)),
        float(np.diff(frame_db).max()),
        float((frame_db[2:] - frame_db[:-2]).max()),
        *decays,
        float(np.mean(frame_db >= top - 6.0)),
        float(np.mean(frame_db >= top - 20.0)),
        math.log1p(_kurtosis(total.astype(np.float64))),
        20.0 * math.log10((float(np.abs(wave).max()) + 1e-9) / (rms + 1e-9)),
        math.log1p(_kurtosis(wave)),
        float(flux.max()),
        float(flux.mean()),
        float(flux.max() / (flux.mean() + 1e-3)),
        float(flatness[peak]),
        float(flatness.mean()),
        float((peak_mel * np.arange(N_MELS)).sum() / peak_mel.sum()) / N_MELS,
        10.0 * math.log10(float(peak_mel[: N_MELS // 8].sum()) / float(peak_mel.sum())),
    ]
    relative = mel_db - top
    return np.concatenate(
        [relative.mean(axis=0), relative.max(axis=0), mel_db.std(axis=0), np.asarray(shape)]
    ).astype(np.float32)


@dataclass(frozen=True)
class PreparedWindow:
    """A live window made safe for :func:`window_features`, and what was done to it."""

    samples: np.ndarray
    #: Samples that were NaN or infinite (decoder glitches), set to 0.
    nonfinite: int
    #: Share of samples at or beyond full scale (clipped to [-1, 1]).
    clipped: float
    peak_dbfs: float
    rms_dbfs: float

    @property
    def silent(self) -> bool:
        return self.peak_dbfs < SILENCE_PEAK_DBFS


def prepare_window(samples: np.ndarray) -> PreparedWindow:
    """Check a window's shape and type (a wrong one is an ingest bug: ``ValueError``), and
    repair what a decoder can produce: non-finite samples become 0, overshoot is clipped."""
    array = np.asarray(samples)
    if array.ndim != 1 or array.shape[0] != WINDOW:
        raise ValueError(f"an audio window must be {WINDOW} mono samples, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"an audio window must be float samples in [-1, 1], got {array.dtype}")
    finite = np.isfinite(array)
    values = np.where(finite, array, 0.0).astype(np.float32)
    clipped = float(np.mean(np.abs(values) >= 1.0))
    values = np.clip(values, -1.0, 1.0)
    peak = float(np.abs(values).max())
    rms = math.sqrt(float(np.mean(values.astype(np.float64) ** 2)))
    return PreparedWindow(
        samples=values,
        nonfinite=int(finite.size - finite.sum()),
        clipped=clipped,
        peak_dbfs=20.0 * math.log10(max(peak, 1e-10)),
        rms_dbfs=20.0 * math.log10(max(rms, 1e-10)),
    )


# --------------------------------------------------------------------------------------------
# The head


class AudioHead:
    """Standardised inputs, one ReLU hidden layer, softmax over the classes, scikit-learn style:
    ``fit`` needs scikit-learn (the ``live`` extra), ``predict_proba`` is numpy only."""

    def __init__(self, hidden: int = 16, alpha: float = 0.1, seed: int = 0) -> None:
        self.hidden = hidden
        self.alpha = alpha
        self.seed = seed
        self.classes_: tuple[str, ...] = ()
        self.arrays: dict[str, np.ndarray] = {}

    def fit(self, x: np.ndarray, y: np.ndarray) -> Self:
        from sklearn.neural_network import MLPClassifier

        self._check_inputs(x)
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        scale = np.where(std > 1e-9, std, 1.0)
        network = MLPClassifier(
            (self.hidden,), alpha=self.alpha, max_iter=1000, random_state=self.seed
        )
        network.fit((x - mean) / scale, np.asarray(y, dtype=str))
        self.classes_ = tuple(str(label) for label in network.classes_)
        if len(self.classes_) < 3:
            raise ValueError("the head needs at least three classes (binary nets use a sigmoid)")
        self.arrays = {
            "mean": mean.astype(np.float64),
            "scale": scale.astype(np.float64),
            "w0": network.coefs_[0],
            "b0": network.intercepts_[0],
            "w1": network.coefs_[1],
            "b1": network.intercepts_[1],
        }
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """N x len(classes_) class probabilities (rows sum to 1)."""
        self._check_inputs(x)
        a = self.arrays
        hidden = np.maximum((x - a["mean"]) / a["scale"] @ a["w0"] + a["b0"], 0.0)
        logits = hidden @ a["w1"] + a["b1"]
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        probabilities: np.ndarray = odds / odds.sum(axis=1, keepdims=True)
        return probabilities

    def _check_inputs(self, x: np.ndarray) -> None:
        if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"the head takes N x {len(FEATURE_NAMES)} window_features rows")


@dataclass
class GunshotModel:
    """The head with what turns its output into evidence: per-class Platt calibration
    ``sigmoid(a * logit(p) + b)``, the training priors and the operating threshold."""

    head: AudioHead
    #: class -> (a, b), for :data:`EVENT_CLASSES`.
    calibration: dict[str, tuple[float, float]]
    priors: dict[str, float]
    threshold: float

    def calibrated(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Calibrated probability of each event class, per row of features."""
        raw = np.clip(self.head.predict_proba(x), 1e-7, 1.0 - 1e-7)
        out: dict[str, np.ndarray] = {}
        for name, (a, b) in self.calibration.items():
            p = raw[:, self.head.classes_.index(name)]
            out[name] = 1.0 / (1.0 + np.exp(-(a * np.log(p / (1.0 - p)) + b)))
        return out

    def llr(self, p_gunshot: float, p_explosion: float) -> float:
        """The window's ratio (see the module docstring)."""
        gunshot = logit(p_gunshot) - logit(self.priors["gunshot"])
        explosion = logit(p_explosion) - logit(self.priors["explosion"])
        return clip(max(gunshot, min(explosion, EXPLOSION_LLR_MAX)), LLR_MIN, LLR_MAX)

    def save(self, path: Path, metadata: dict[str, Any]) -> None:
        """Weights to ``path`` (npz), everything else to its ``.json`` sibling."""
        a = self.head.arrays
        np.savez(
            path, mean=a["mean"], scale=a["scale"], w0=a["w0"], b0=a["b0"], w1=a["w1"], b1=a["b1"]
        )
        document = {
            "format": FORMAT,
            "name": NAME,
            **metadata,
            "classes": list(self.head.classes_),
            "features": list(FEATURE_NAMES),
            "hidden": self.head.hidden,
            "alpha": self.head.alpha,
            "seed": self.head.seed,
            "calibration": {name: list(ab) for name, ab in self.calibration.items()},
            "priors": self.priors,
            "threshold": self.threshold,
        }
        path.with_suffix(".json").write_text(json.dumps(document, indent=1) + "\n", "utf-8")

    @classmethod
    def load(cls, path: Path) -> GunshotModel:
        metadata = read_metadata(path)
        if metadata.get("format") != FORMAT or metadata.get("features") != list(FEATURE_NAMES):
            raise ValueError(f"{path} was trained with other features: retrain it")
        head = AudioHead(int(metadata["hidden"]), float(metadata["alpha"]), int(metadata["seed"]))
        head.classes_ = tuple(metadata["classes"])
        with np.load(path, allow_pickle=False) as arrays:
            head.arrays = {key: np.asarray(arrays[key], dtype=np.float64) for key in arrays.files}
        for array in head.arrays.values():
            array.flags.writeable = False
        expected = {"mean", "scale", "w0", "b0", "w1", "b1"}
        if set(head.arrays) != expected or head.arrays["w1"].shape[1] != len(head.classes_):
            raise ValueError(f"{path}: expected arrays {sorted(expected)} matching the classes")
        return cls(
            head=head,
            calibration={k: (float(v[0]), float(v[1])) for k, v in metadata["calibration"].items()},
            priors={k: float(v) for k, v in metadata["priors"].items()},
            threshold=float(metadata["threshold"]),
        )


def read_metadata(model_path: Path | None = None) -> dict[str, Any]:
    """The JSON metadata beside a gunshot model (the shipped one by default)."""
    return read_model_metadata(model_path or DEFAULT_MODEL, "gunshot", "vigil train audio")


_LOAD_LOCK = threading.Lock()


def load_model(model_path: Path | None = None) -> GunshotModel:
    """The model at ``model_path`` (the shipped one by default), loaded once per process."""
    with _LOAD_LOCK:
        return _cached_model((model_path or DEFAULT_MODEL).resolve())


@functools.lru_cache(maxsize=4)
def _cached_model(path: Path) -> GunshotModel:
    return GunshotModel.load(path)


# --------------------------------------------------------------------------------------------
# The evidence source


def assess_window(model: GunshotModel, samples: np.ndarray, t: float) -> Evidence:
    """Score one window of live audio (raises ``ValueError`` only for a wrong shape or type)."""
    window = prepare_window(samples)
    detail: dict[str, Any] = {
        "loudness_dbfs": round(window.rms_dbfs, 1),
        "peak_dbfs": round(window.peak_dbfs, 1),
        "threshold": model.threshold,
    }
    if window.nonfinite:
        detail["nonfinite_samples"] = window.nonfinite
    if window.clipped:
        detail["clipped_share"] = window.clipped
    if window.silent:
        return Evidence(NAME, t, 0.0, 0.0, {**detail, "silent": True, "gunshot": False})
    scores = model.calibrated(window_features(window.samples)[None, :])
    p_gunshot, p_explosion = float(scores["gunshot"][0]), float(scores["explosion"][0])
    detail |= {
        "p_gunshot": p_gunshot,
        "p_explosion": p_explosion,
        "gunshot": p_gunshot >= model.threshold,
    }
    return Evidence(NAME, t, p_gunshot, model.llr(p_gunshot, p_explosion), detail)


@dataclass
class AudioEvidence:
    """One stream's gunshot source: every window is scored on its own (no history)."""

    model: GunshotModel
    name: str = NAME
    modality: Literal["audio"] = "audio"

    def observe(self, window: AudioWindow) -> Evidence:
        return assess_window(self.model, window.samples, window.t)


@dataclass
class GunshotFactory:
    model: GunshotModel
    name: str = NAME

    def __call__(self, stream_id: str) -> AudioEvidenceSource:
        return AudioEvidence(self.model)


def gunshot_factory(model_path: Path | None = None) -> EvidenceFactory:
    """Gunshot sources for streams; the model is loaded (and checked) now, once per process."""
    return GunshotFactory(load_model(model_path))
