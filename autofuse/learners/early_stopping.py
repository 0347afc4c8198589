"""Early stopping on an inner holdout: the pieces the boosting learner plugins share.

A learner that boosts with early stopping holds out part of its training rows
(``holdout``), stops after ``patience(n_rows)`` rounds without an improvement larger than
``min_delta`` (a share of a constant prediction's loss), and seeds both the split and the
library from its ``random_state`` (``seeds``); ``ProbabilityMixin`` gives its classifier
``predict_proba`` and ``predict``. The plugins in ``plugins/`` (LightGBM,
XGBoost, CatBoost) use these, so they stop alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TOLERANCE", "ProbabilityMixin", "holdout", "min_delta", "patience", "seeds"]


def holdout(y: np.ndarray, fraction: float, stratify: bool, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices: ``fraction`` of the rows (at least 20% or 50
    rows, whichever is fewer) held out, per class when ``stratify``; every class keeps at
    least one training row. No rows are held out from fewer than 30."""
    n = len(y)
    if n < 30:
        return np.arange(n), np.arange(0)
    share = max(fraction, min(0.2, 50 / n))
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(n)]
    valid = []
    for rows in groups:
        take = min(int(round(share * len(rows))), len(rows) - 1)
        if take > 0:
            valid.append(rng.permutation(rows)[:take])
    valid = np.sort(np.concatenate(valid)) if valid else np.arange(0)
    return np.setdiff1d(np.arange(n), valid), valid


def patience(n_rows: int) -> int:
    """Early-stopping rounds: AutoGluon's rule (300 rounds up to 10,000 rows, then fewer in
    proportion, at least 20) scaled down to 50 rounds, at least 20."""
    return max(20, min(50, round(50 * 10_000 / max(n_rows, 1))))


#: An improvement of the holdout loss smaller than this share of a constant prediction's loss
#: does not count: on (nearly) separable data the log-loss creeps down for thousands of
#: rounds without changing any prediction that matters.
TOLERANCE = 1e-3


def min_delta(y_train: np.ndarray, y_valid: np.ndarray, classifier: bool) -> float:
    """``TOLERANCE`` times the holdout loss of a constant prediction (the training class
    frequencies' log-loss, or the training mean's RMSE)."""
    if classifier:
        freq = np.bincount(y_train, minlength=int(y_valid.max()) + 1) / len(y_train)
        loss = -np.mean(np.log(np.clip(freq[y_valid], 1e-15, None)))
    else:
        loss = np.sqrt(np.mean((y_valid - y_train.mean()) ** 2))
    return TOLERANCE * float(loss)


def seeds(random_state: Any) -> tuple[np.random.Generator, int]:
    """A generator for the holdout and an int seed for the library, both from
    ``random_state``."""
    rng = np.random.default_rng(random_state)
    return rng, int(rng.integers(2**31 - 1))


class ProbabilityMixin:
    """``predict_proba`` and ``predict`` for a boosted classifier whose ``_proba(X)`` returns
    P(class 1) (1-D, binary) or one column per class; a fit that saw one class only
    predicts it. Needs ``classes_``."""

    classes_: np.ndarray

    def _proba(self, X: Any) -> np.ndarray:  # pragma: no cover - defined by the learner
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        if len(self.classes_) < 2:
            return np.ones((len(X), 1))
        p = np.asarray(self._proba(X))
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
