"""Random selection problems for the tests: predictions, targets and weights."""

from __future__ import annotations

import numpy as np

CLASSIFICATION = ["log_loss", "accuracy", "balanced_accuracy", "roc_auc", "f1"]
REGRESSION = ["rmse", "mse", "mae", "r2"]


def classification(rng, n_models=6, n_rows=80, n_classes=3, one_column=False):
    """Class probabilities (rows sum to 1) of correlated models, and labels."""
    y = rng.integers(0, n_classes, n_rows)
    signal = np.eye(n_classes)[y] * 1.5 + rng.normal(size=(n_rows, n_classes))
    logits = signal[None] + rng.normal(scale=1.5, size=(n_models, n_rows, n_classes))
    P = np.exp(logits)
    P /= P.sum(axis=2, keepdims=True)
    if one_column:
        assert n_classes == 2
        P = P[:, :, 1:]
    return P, y


def regression(rng, n_models=6, n_rows=80, n_outputs=1):
    y = rng.normal(size=(n_rows, n_outputs))
    P = y[None] + rng.normal(scale=rng.uniform(0.3, 2.0, size=(n_models, 1, 1)),
                             size=(n_models, n_rows, n_outputs))
    return P, (y[:, 0] if n_outputs == 1 else y)
