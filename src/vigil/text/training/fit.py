"""Fitting the heads: one masked, class-balanced logistic regression for all labels at once,
Platt calibration and gates.

One objective for the four labels (sum over rows and labels of the weighted log-loss, where
the label is known, plus an L2 penalty), minimised by L-BFGS on sparse or dense inputs: each
step is two matrix products for all labels, where four separate solvers would each pass over
the data. A row's unknown label contributes nothing (the mask), not a negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, sparse  # type: ignore[import-untyped]

from vigil.text.classifier.features import N_FEATURES, unit_counts

MAX_ITERATIONS = 400


def ngram_matrix(texts: Sequence[str]) -> Any:
    """The n-gram vectors of canonical texts as a sparse matrix (N x N_FEATURES)."""
    indices, values, pointers = [], [], [0]
    for text in texts:
        index, value = unit_counts(text)
        indices.append(index)
        values.append(value)
        pointers.append(pointers[-1] + index.size)
    return sparse.csr_matrix(
        (
            np.concatenate([np.zeros(0, np.float32), *values]),
            np.concatenate([np.zeros(0, np.int64), *indices]),
            np.asarray(pointers, dtype=np.int64),
        ),
        shape=(len(texts), N_FEATURES),
    )


@dataclass(frozen=True)
class Linear:
    weights: np.ndarray  # inputs x labels
    bias: np.ndarray  # labels


def balanced_weights(targets: np.ndarray) -> np.ndarray:
    """Per row and label: 0 where unknown, else n_known / (2 n_class), so that each label's
    positives and negatives weigh the same in total."""
    known = targets >= 0
    positive = targets == 1
    weights = np.zeros(targets.shape, dtype=np.float64)
    for k in range(targets.shape[1]):
        n_known, n_positive = known[:, k].sum(), positive[:, k].sum()
        n_negative = n_known - n_positive
        if n_positive == 0 or n_negative == 0:
            raise ValueError(f"label {k} needs positives and negatives to train")
        weights[positive[:, k], k] = n_known / (2.0 * n_positive)
        weights[known[:, k] & ~positive[:, k], k] = n_known / (2.0 * n_negative)
    return weights


def fit_logistic(
    x: Any,
    targets: np.ndarray,
    weights: np.ndarray,
    l2: float,
    *,
    start: Linear | None = None,
) -> Linear:
    """Masked multi-label logistic regression (see the module doc). ``x``: N x D (sparse or
    dense); ``targets``: N x L of 0/1/-1; ``weights``: N x L (0 where unknown). The loss is
    averaged over rows, so ``l2`` does not depend on the data size. ``start``: a solution to
    begin from (a fit on similar data converges in far fewer steps)."""
    n, d = x.shape
    labels = targets.shape[1]
    y = (targets == 1).astype(np.float64)
    w = weights / n

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef = theta[: d * labels].reshape(d, labels)
        bias = theta[d * labels :]
        z = np.asarray(x @ coef) + bias
        # log(1 + e^z) - y z, stably
        value = float((w * (np.logaddexp(0.0, z) - y * z)).sum()) + 0.5 * l2 * float(
            (coef**2).sum()
        )
        residual = w * (1.0 / (1.0 + np.exp(-z)) - y)
        grad_coef = np.asarray(x.T @ residual) + l2 * coef
        return value, np.concatenate([grad_coef.ravel(), residual.sum(axis=0)])

    initial = (
        np.zeros(d * labels + labels)
        if start is None
        else np.concatenate([start.weights.ravel(), start.bias])
    )
    result = optimize.minimize(
        loss, initial, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITERATIONS}
    )
    theta = result.x
    return Linear(theta[: d * labels].reshape(d, labels), theta[d * labels :])


def platt(logits: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Platt scaling (slope, intercept) of one label's out-of-fold logits."""
    x = np.column_stack([logits, np.ones_like(logits)])
    y = truth.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ theta
        residual = 1.0 / (1.0 + np.exp(-z)) - y
        return float((np.logaddexp(0.0, z) - y * z).sum()), x.T @ residual

    result = optimize.minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


def gate_threshold(first_probabilities: np.ndarray, retention: float) -> float:
    """The highest first-stage threshold that passes ``retention`` of the given rows (the rows
    the full model flags)."""
    if first_probabilities.size == 0:
        return 1.0
    missed = int(np.floor((1.0 - retention) * first_probabilities.size))
    return float(np.sort(first_probabilities)[missed])
