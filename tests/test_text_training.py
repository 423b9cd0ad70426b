"""``vigil train text``: label mapping, deduplication and split on the real data sets, the masked
regression, operating points, and a whole training run (through the CLI) on a small sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vigil.cli.train import train_app
from vigil.text.classify import LABELS, TextClassifier
from vigil.text.normalize import normalize
from vigil.text.training.data import (
    MAPPINGS,
    UNKNOWN,
    dedupe_key,
    full_stage_sample,
    load_examples,
    map_row,
)
from vigil.text.training.fit import (
    balanced_weights,
    fit_logistic,
    gate_threshold,
    platt,
)

THREAT, TERROR, HATE, OFFENSIVE = (LABELS.index(name) for name in LABELS)


def targets(dataset: str, labels: dict[str, object]) -> dict[str, int]:
    return dict(zip(LABELS, map_row(dataset, labels), strict=True))


# --------------------------------------------------------------------------------------------
# Label mapping


def test_unannotated_labels_are_unknown_not_negative() -> None:
    olid = targets("olid", {"a": "OFF"})
    assert olid == {
        "threat_incitement": UNKNOWN,
        "terror_support": 0,
        "hate": UNKNOWN,
        "offensive": 1,
    }
    stormfront = targets("stormfront", {"hate": False})
    assert stormfront["offensive"] == UNKNOWN and stormfront["hate"] == 0


def test_nesting_fills_what_the_known_labels_force() -> None:
    # An inoffensive tweet is neither hateful nor threatening.
    assert targets("olid", {"a": "NOT"}) == dict.fromkeys(LABELS, 0)
    # A call to violence is offensive; hate is still unknown in GermEval.
    germeval = targets("germeval2026", {"vio": "call2violence", "c2a": True})
    assert germeval == {
        "threat_incitement": 1,
        "terror_support": 0,
        "hate": UNKNOWN,
        "offensive": 1,
    }
    assert targets("germeval2026", {"vio": "other"})["threat_incitement"] == UNKNOWN
    assert targets("hatexplain", {"label": "hatespeech"})["offensive"] == 1


def test_every_data_set_maps_and_only_the_pro_isis_set_is_terror_support() -> None:
    assert targets("isis_fifthtribe", {"pro_isis_account": True}) == {
        "threat_incitement": UNKNOWN,
        "terror_support": 1,
        "hate": UNKNOWN,
        "offensive": UNKNOWN,
    }
    assert targets("ethos", {"is_hate": 0.8, "violence": 0.6})["threat_incitement"] == 1
    assert targets("ethos", {"is_hate": 0.2})["threat_incitement"] == UNKNOWN
    mlma = targets("mlma", {"sentiment": ["hateful", "fearful"]})
    assert (mlma["hate"], mlma["offensive"]) == (1, 1)
    assert targets("mlma", {"sentiment": ["normal"]})["offensive"] == 0
    assert targets("davidson", {"class": "offensive"})["hate"] == 0
    assert targets("hateval2019_trial", {"HS": 0, "TR": 0, "AG": 0})["offensive"] == UNKNOWN
    # HateXplain's undecided rows carry nothing.
    assert set(map_row("hatexplain", {"label": "undecided"})) == {UNKNOWN}
    assert len(MAPPINGS) == 9


def test_dedupe_key_ignores_case_mentions_links_and_retweet_prefix() -> None:
    assert dedupe_key("RT @someone: Hello World url") == dedupe_key("hello   world!")
    assert dedupe_key("[@IND] Hallo") == dedupe_key("Hallo")
    assert dedupe_key("kill them") != dedupe_key("kill him")


# --------------------------------------------------------------------------------------------
# Split, on the real data


@pytest.fixture(scope="module")
def examples(shared_data: Path) -> list:  # type: ignore[type-arg]
    return load_examples(shared_data, lambda text: normalize(text).text, seed=0)


def test_no_text_account_or_post_is_on_both_sides(examples: list) -> None:  # type: ignore[type-arg]
    train = [e for e in examples if e.role == "train"]
    held = [e for e in examples if e.role == "held_out"]
    assert {e.key for e in train}.isdisjoint({e.key for e in held})
    assert {e.group for e in train}.isdisjoint({e.group for e in held})
    accounts = {e.group for e in held if e.dataset == "isis_fifthtribe"}
    assert accounts and all(group.startswith("account:") for group in accounts)


def test_hatexplain_keeps_its_official_division(examples: list) -> None:  # type: ignore[type-arg]
    hatexplain = [e for e in examples if e.dataset == "hatexplain"]
    assert all(e.role == "held_out" for e in hatexplain if e.official_split == "dev")
    assert all(e.role != "held_out" for e in hatexplain if e.official_split == "train")
    assert sum(e.role == "held_out" for e in hatexplain) >= 1_900


def test_every_set_and_language_is_held_out_in_part(examples: list) -> None:  # type: ignore[type-arg]
    for dataset in MAPPINGS:
        rows = [e for e in examples if e.dataset == dataset]
        share = np.mean([e.role == "held_out" for e in rows])
        assert 0.08 < share < 0.6, dataset
    held_languages = {e.lang for e in examples if e.role == "held_out"}
    assert {"en", "de", "fr", "ar", "es"} <= held_languages


def test_full_stage_sample_is_capped_training_rows_with_every_threat(
    examples: list,  # type: ignore[type-arg]
) -> None:
    sample = full_stage_sample(examples, 500, seed=0)
    chosen = [examples[i] for i in sample]
    assert all(e.role == "train" for e in chosen)
    threats = [e for e in examples if e.role == "train" and e.targets[THREAT] == 1]
    assert len([e for e in chosen if e.targets[THREAT] == 1]) == len(threats)
    for dataset in MAPPINGS:
        assert sum(e.dataset == dataset for e in chosen) <= max(
            500, sum(e.dataset == dataset for e in threats)
        )


# --------------------------------------------------------------------------------------------
# Fitting


def test_a_masked_label_is_fitted_as_if_its_unknown_rows_were_absent() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    noise = rng.normal(size=(400, 2))
    y = np.column_stack([x[:, 0] + noise[:, 0] > 0, x[:, 1] + noise[:, 1] > 0]).astype(np.int64)
    y[:60, 1] = UNKNOWN
    joint = fit_logistic(x, y, balanced_weights(y), 0.0)
    alone = fit_logistic(x[60:], y[60:, 1:], balanced_weights(y[60:, 1:]), 0.0)
    assert np.allclose(joint.weights[:, 1], alone.weights[:, 0], atol=1e-3)
    assert np.argmax(np.abs(joint.weights[:, 0])) == 0
    assert np.argmax(np.abs(joint.weights[:, 1])) == 1


def test_balanced_weights_need_both_classes() -> None:
    with pytest.raises(ValueError, match="positives and negatives"):
        balanced_weights(np.array([[1], [1], [UNKNOWN]]))


def test_platt_and_thresholds() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random(2_000) < 0.3
    logits = np.where(truth, 2.0, -2.0) + rng.normal(size=truth.size)
    slope, intercept = platt(logits, truth)
    p = 1.0 / (1.0 + np.exp(-(slope * logits + intercept)))
    assert abs(p.mean() - truth.mean()) < 0.01
    assert gate_threshold(np.array([0.1, 0.2, 0.3, 0.4]), 0.75) == pytest.approx(0.2)
    assert gate_threshold(np.array([0.1, 0.2, 0.3, 0.4]), 1.0) == pytest.approx(0.1)


# --------------------------------------------------------------------------------------------
# A whole run through the CLI, on a small sample of every data set


def test_train_text_command_writes_a_loadable_model_and_card(
    shared_data: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "text").mkdir(parents=True)
    for source in sorted((shared_data / "text").glob("*.jsonl")):
        lines = source.read_text("utf-8").splitlines()
        # Every 100th row, and enough calls to violence that each fold holds some.
        threats = [line for line in lines if '"vio": "call2violence"' in line][:24]
        sample = [*lines[::100], *threats]
        (data / "text" / source.name).write_text("\n".join(sample) + "\n", "utf-8")
    out = tmp_path / "model"
    # train_app, not the whole CLI: the CLI's callback would point this process's logging at
    # the runner's stderr, which is closed once the runner returns.
    result = CliRunner().invoke(
        train_app,
        ["text", "--data", str(data), "--out", str(out), "--cache", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "# Text classifiers" in result.output
    metadata = json.loads((out / "text.json").read_text("utf-8"))
    assert metadata["labels"] == list(LABELS)
    assert set(metadata["metrics"]["native"]) >= {"hatexplain", "olid", "stormfront"}
    classifier = TextClassifier.load(out / "text.npz")
    assert classifier.thresholds == metadata["thresholds"]
    score = classifier.predict([normalize("you are a stupid idiot").text])[0]
    assert set(score.probabilities) == set(LABELS)
    # The embedding cache was filled and a second run reads it.
    assert any((tmp_path / "text-embeddings").rglob("chunk-*.npz"))
