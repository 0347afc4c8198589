"""Checks the tests share on a fused model's output."""

from __future__ import annotations

import numpy as np


def check_predictions(fused, task, X):
    """A regression's predictions are finite, one per row; a classifier's probabilities
    have one column per class, are >= 0 and sum to 1 per row."""
    if task == "regression":
        pred = fused.predict(X)
        assert pred.shape == (len(X),) and np.all(np.isfinite(pred))
    else:
        proba = fused.predict_proba(X)
        assert proba.shape == (len(X), len(fused.classes_))
        assert proba.min() >= 0
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
