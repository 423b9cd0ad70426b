"""The trainers' shared split, threshold and metric helpers."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.learning import (
    binary_metrics,
    grouped_folds,
    grouped_holdout,
    markdown_table,
    roc_auc,
    threshold_at_fpr,
)


def _groups(rng: np.random.Generator, n_groups: int) -> list[str]:
    sizes = rng.integers(1, 6, size=n_groups)
    return [f"g{index}" for index, size in enumerate(sizes) for _ in range(size)]


def test_holdout_keeps_groups_whole_and_takes_about_the_fraction_of_each_stratum() -> None:
    groups = _groups(np.random.default_rng(1), 200)
    strata = ["a" if int(name[1:]) % 3 else "b" for name in groups]
    held = grouped_holdout(groups, 0.25, seed=7, strata=strata)
    for name in set(groups):
        members = held[[index for index, group in enumerate(groups) if group == name]]
        assert members.all() or not members.any()
    for stratum in ("a", "b"):
        mask = np.asarray(strata) == stratum
        assert abs(held[mask].mean() - 0.25) < 0.03
    assert np.array_equal(held, grouped_holdout(groups, 0.25, seed=7, strata=strata))
    assert not np.array_equal(held, grouped_holdout(groups, 0.25, seed=8, strata=strata))


def test_holdout_rejects_a_fraction_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="fraction"):
        grouped_holdout(["a", "b"], 1.0, seed=0)


def test_folds_keep_groups_whole_and_balance_sizes() -> None:
    groups = _groups(np.random.default_rng(2), 60)
    folds = grouped_folds(groups, 5, seed=0)
    assert sorted(set(folds.tolist())) == [0, 1, 2, 3, 4]
    for name in set(groups):
        assert len({int(folds[index]) for index, group in enumerate(groups) if group == name}) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 5  # at most one group (<= 5 items) apart
    with pytest.raises(ValueError, match="folds"):
        grouped_folds(["a", "a", "b"], 3, seed=0)


def test_threshold_is_the_lowest_that_keeps_the_false_positive_rate() -> None:
    negatives = np.random.default_rng(3).normal(size=1000)
    threshold = threshold_at_fpr(negatives, 0.01)
    assert (negatives >= threshold).mean() <= 0.01
    lower = np.nextafter(threshold, -np.inf)
    assert (negatives >= lower).mean() > 0.01 or lower < negatives.min()
    assert (negatives >= threshold_at_fpr(negatives, 0.0)).sum() == 0


def test_auc_matches_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(4)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.random(300) + labels * 0.3, 1)  # rounding makes ties
    positives, negatives = scores[labels], scores[~labels]
    pairwise = (positives[:, None] > negatives[None, :]).mean() + 0.5 * (
        positives[:, None] == negatives[None, :]
    ).mean()
    assert roc_auc(labels, scores) == pytest.approx(pairwise)
    assert roc_auc(np.ones(3, dtype=bool), np.arange(3.0)) is None


def test_metrics_count_decisions_at_the_threshold() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0], dtype=bool)
    scores = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.3, 0.0])
    metrics = binary_metrics(labels, scores, 0.5)
    assert (metrics["tp"], metrics["fp"], metrics["fn"], metrics["tn"]) == (2, 1, 1, 3)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["fpr"] == pytest.approx(1 / 4)


def test_markdown_table() -> None:
    table = markdown_table(["a", "b"], [[0.12345, None], ["x", 3]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 0.123 | n/a |", "| x | 3 |"]
