"""Gunshot audio evidence: the shipped head on held-out SESA clips, what bad windows give, the
artifact round trip, recording groups, and ``vigil train audio`` end to end on a subset."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vigil.learning import roc_auc
from vigil.live.evidence.audio import (
    DEFAULT_MODEL,
    LLR_MAX,
    LLR_MIN,
    WINDOW,
    AudioEvidence,
    GunshotModel,
    assess_window,
    gunshot_factory,
    load_model,
    read_metadata,
)
from vigil.live.evidence.base import EvidenceFactory
from vigil.live.samples import AudioWindow
from vigil.live.training.audio import (
    Clip,
    load_sesa,
    recording_groups,
    slice_windows,
)

#: The card's held-out AUC of gunshot against casual windows is 0.97 (0.98 against everything).
#: Casual is the hard class (knocks, slams); a logistic regression on the same features reaches
#: about 0.93 and chance is 0.5, so 0.93 fails a head that lost what the network adds, with room
#: for platform float differences.
AUC_FLOOR = 0.93
#: Every 5th clip of each class: ~90 clips from many recordings, trains in ~15-30 s.
SUBSET_EVERY = 5


@pytest.fixture(scope="module")
def model() -> GunshotModel:
    return load_model()


@pytest.fixture(scope="module")
def held_out(shared_data: Path) -> list[Clip]:
    from vigil.live.training.audio import held_out_files

    names = {Path(file).name for file in held_out_files()}
    return [clip for clip in load_sesa(shared_data / "audio/sesa") if clip.name in names]


def _scored_windows(clips: list[Clip], label: str) -> list[np.ndarray]:
    chosen = [clip for clip in clips if clip.label == label]
    windows = slice_windows(chosen)
    return [windows.samples(chosen, int(i)) for i in np.flatnonzero(windows.scored)]


def _loudest_gunshot(model: GunshotModel, held_out: list[Clip]) -> np.ndarray:
    """The held-out gunshot window the head is surest of."""
    windows = _scored_windows(held_out, "gunshot")
    scores = [assess_window(model, w, 0.0).score for w in windows]
    return windows[int(np.argmax(scores))]


def test_held_out_gunshots_outrank_casual_sound(model: GunshotModel, held_out: list[Clip]) -> None:
    shots = [assess_window(model, w, 0.0) for w in _scored_windows(held_out, "gunshot")]
    casual = [assess_window(model, w, 0.0) for w in _scored_windows(held_out, "casual")]
    assert len(shots) >= 50 and len(casual) >= 200
    truth = np.r_[np.ones(len(shots), bool), np.zeros(len(casual), bool)]
    auc = roc_auc(truth, np.array([e.score for e in shots + casual]))
    assert auc is not None and auc > AUC_FLOOR
    # The ratio follows the score: gunshots add evidence on average, casual sound takes it away.
    assert np.mean([e.llr for e in shots]) > 1.0 > 0.0 > np.mean([e.llr for e in casual])
    assert all(LLR_MIN <= e.llr <= LLR_MAX for e in shots + casual)


def test_held_out_files_are_whole_recordings_of_every_class(shared_data: Path) -> None:
    from vigil.live.training.audio import held_out_files

    metadata = read_metadata()
    held = set(held_out_files())
    assert all((shared_data / file).is_file() for file in held)
    assert {Path(f).name.split("_")[0] for f in held} == {"casual", "explosion", "gunshot", "siren"}
    # A grouped clip is held out exactly when its group's first clip is.
    for clip, first in metadata["groups"].items():
        assert (f"audio/sesa/{clip}" in held) == (f"audio/sesa/{first}" in held), clip


def test_silence_and_quiet_noise_say_nothing(model: GunshotModel) -> None:
    quiet = np.random.default_rng(0).normal(0.0, 10 ** (-60 / 20), WINDOW).astype(np.float32)
    for samples in (np.zeros(WINDOW, np.float32), quiet):
        evidence = assess_window(model, samples, 3.0)
        assert (evidence.score, evidence.llr, evidence.t) == (0.0, 0.0, 3.0)
        assert evidence.detail["silent"] is True and evidence.detail["gunshot"] is False


def test_nan_samples_are_zeroed_and_counted(model: GunshotModel, held_out: list[Clip]) -> None:
    shot = _loudest_gunshot(model, held_out)
    broken = shot.copy()
    broken[:800] = np.nan
    broken[900] = np.inf
    evidence = assess_window(model, broken, 0.0)
    assert evidence.detail["nonfinite_samples"] == 801
    assert math.isfinite(evidence.score) and LLR_MIN <= evidence.llr <= LLR_MAX
    dropout = assess_window(model, np.full(WINDOW, np.nan, np.float32), 0.0)
    assert dropout.llr == 0.0 and dropout.detail["silent"] is True


def test_overshoot_is_clipped_and_a_clipped_gunshot_is_still_one(
    model: GunshotModel, held_out: list[Clip]
) -> None:
    shot = _loudest_gunshot(model, held_out)
    evidence = assess_window(model, shot * 4.0, 0.0)
    assert 0.0 < evidence.detail["clipped_share"] < 0.5
    assert evidence.detail["peak_dbfs"] == 0.0
    assert evidence.score >= model.threshold and evidence.llr > 1.0


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros(WINDOW - 1, np.float32), "16000 mono samples"),
        (np.zeros((WINDOW, 2), np.float32), "16000 mono samples"),
        (np.zeros(WINDOW, np.int16), "float samples"),
    ],
)
def test_a_window_of_the_wrong_shape_or_type_is_an_error(
    model: GunshotModel, samples: np.ndarray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        assess_window(model, samples, 0.0)


def test_factory_makes_stream_sources_sharing_one_model(held_out: list[Clip]) -> None:
    factory: EvidenceFactory = gunshot_factory()
    first, second = factory("a"), factory("b")
    assert factory.name == first.name == "gunshot" and first.modality == "audio"
    assert first is not second and load_model() is load_model(DEFAULT_MODEL)
    assert isinstance(first, AudioEvidence)
    window = _scored_windows(held_out, "gunshot")[0]
    evidence = first.observe(AudioWindow("a", 7.0, window, 0.0))
    assert evidence is not None and evidence.source == "gunshot" and evidence.t == 7.0
    assert {"p_gunshot", "p_explosion", "loudness_dbfs"} <= set(evidence.detail)


def test_save_and_load_give_identical_probabilities(
    model: GunshotModel, held_out: list[Clip], tmp_path: Path
) -> None:
    from vigil.live.evidence.audio import window_features

    features = np.array([window_features(w) for w in _scored_windows(held_out, "gunshot")[:40]])
    copy = tmp_path / "copy.npz"
    model.save(copy, {"held_out": []})
    again = GunshotModel.load(copy)
    for name, p in model.calibrated(features).items():
        assert np.array_equal(p, again.calibrated(features)[name])
    assert again.threshold == model.threshold and again.priors == model.priors
    # A model made with other features is refused rather than misread.
    text = copy.with_suffix(".json").read_text()
    copy.with_suffix(".json").write_text(text.replace('"mel_mean_0"', '"mel_mean_x"'))
    with pytest.raises(ValueError, match="other features"):
        GunshotModel.load(copy)
    with pytest.raises(FileNotFoundError, match="vigil train audio"):
        GunshotModel.load(tmp_path / "missing.npz")


def _link(shared_data: Path, root: Path, names: list[str]) -> Path:
    """A developer-data folder with links to some SESA clips and their labels."""
    source = shared_data / "audio/sesa"
    folder = root / "audio/sesa"
    folder.mkdir(parents=True)
    lines = (source / "labels.csv").read_text().splitlines()
    kept = [line for line in lines[1:] if line.split(",")[0] in names]
    (folder / "labels.csv").write_text("\n".join([lines[0], *kept]) + "\n")
    for name in names:
        (folder / name).symlink_to(source / name)
    return root


def test_clips_sharing_audio_or_a_recording_are_grouped(shared_data: Path, tmp_path: Path) -> None:
    names = [
        "casual_001.wav",
        "casual_002.wav",
        "explosion_004.wav",
        "explosion_005.wav",
        "explosion_020.wav",
        "gunshot_000.wav",
        "siren_000.wav",
        "siren_003.wav",
        "siren_004.wav",
        "siren_040.wav",
    ]
    data = _link(shared_data, tmp_path, names)
    clips = load_sesa(data / "audio/sesa")
    group = dict(zip([c.name for c in clips], recording_groups(clips), strict=True))
    # explosion_004/020 and siren_000/040 share samples; siren_003/004 are one recording.
    assert group["explosion_020.wav"] == group["explosion_004.wav"] == "explosion_004.wav"
    assert group["siren_040.wav"] == group["siren_000.wav"]
    assert group["siren_004.wav"] == group["siren_003.wav"]
    assert len(set(group.values())) >= 6


def test_vigil_train_audio_end_to_end_on_a_subset(shared_data: Path, tmp_path: Path) -> None:
    from vigil.cli.train import train_app
    from vigil.live.training.audio import held_out_files

    labels = (shared_data / "audio/sesa/labels.csv").read_text().splitlines()[1:]
    by_class: dict[str, list[str]] = {}
    for line in labels:
        name, label, _ = line.split(",")
        by_class.setdefault(label, []).append(name)
    names = [n for files in by_class.values() for n in sorted(files)[::SUBSET_EVERY]]
    data = _link(shared_data, tmp_path / "data", names)
    out = tmp_path / "models"
    result = CliRunner().invoke(
        train_app, ["audio", "--data", str(data), "--out", str(out), "--seed", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "Gunshot / explosion audio" in result.output
    card = (out / "gunshot.md").read_text()
    assert f"vigil train audio --data {data.as_posix()} --seed 2" in card
    assert "Held-out results" in card
    metadata = read_metadata(out / "gunshot.npz")
    assert metadata["seed"] == 2
    held = held_out_files(out / "gunshot.npz")
    assert 0.1 * len(names) <= len(held) <= 0.5 * len(names)
    assert all((data / file).is_file() for file in held)
    trained = load_model(out / "gunshot.npz")
    assert 0.0 < trained.threshold < 1.0
    metrics = metadata["metrics"]
    assert 0.5 < metrics["auc"]["all"] <= 1.0
    assert 0.0 < metrics["ms_per_window"]["median"] < 100.0
    source = gunshot_factory(out / "gunshot.npz")("s")
    assert isinstance(source, AudioEvidence) and source.model is trained
    evidence = source.observe(AudioWindow("s", 0.0, np.zeros(WINDOW, np.float32), 0.0))
    assert evidence.llr == 0.0
