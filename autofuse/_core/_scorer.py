"""Greedy selection for any scikit-learn scorer: the same interface as the kernels, in NumPy.

A scorer takes ``(estimator, X, y)``; here the estimator is a stand-in that returns the
candidate blend from ``predict_proba`` / ``predict`` / ``decision_function``, so every
scikit-learn scorer (and any ``make_scorer`` result) works unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from autofuse._core._prepare import Prepared


class _BlendClassifier(ClassifierMixin, BaseEstimator):
    """Answers a scorer's questions with a fixed matrix of class probabilities."""

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba
        self.classes_ = np.arange(proba.shape[1])

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.proba

    def predict(self, X: Any) -> np.ndarray:
        return self.proba.argmax(axis=1)

    def decision_function(self, X: Any) -> np.ndarray:
        return self.proba[:, 1] if self.proba.shape[1] == 2 else self.proba


class _BlendRegressor(RegressorMixin, BaseEstimator):
    """Answers a scorer's questions with fixed regression predictions."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def predict(self, X: Any) -> np.ndarray:
        return self.values[:, 0] if self.values.shape[1] == 1 else self.values


def blend_estimator(blend: np.ndarray, task: str) -> BaseEstimator:
    """A fitted stand-in estimator whose predictions are ``blend`` (n_rows, n_outputs)."""
    if task == "classification":
        proba = np.column_stack([1.0 - blend[:, 0], blend[:, 0]]) if blend.shape[1] == 1 else blend
        return _BlendClassifier(proba)
    return _BlendRegressor(blend)


class ScorerKernel:
    """Scores candidate blends with a scikit-learn scorer (loss = -score)."""

    def __init__(self, P: np.ndarray, prep: Prepared, scorer: Callable[..., float]) -> None:
        self.P = P
        self.prep = prep
        self.scorer = scorer
        if prep.task == "classification":
            self.y = prep.y_codes
        else:
            self.y = prep.y_values[:, 0] if P.shape[2] == 1 else prep.y_values
        self.X = np.zeros((P.shape[1], 1))
        self.S = np.zeros(P.shape[1:])
        self.k = 0

    def reset(self) -> None:
        self.S[...] = 0.0
        self.k = 0

    def add(self, m: int) -> None:
        self.S += self.P[m]
        self.k += 1

    def score(self, candidates: np.ndarray) -> np.ndarray:
        c = self.k + 1.0
        kwargs = {} if self.prep.sample_weight is None else {"sample_weight": self.prep.w}
        out = np.empty(len(candidates))
        for j, m in enumerate(candidates):
            est = blend_estimator((self.S + self.P[m]) / c, self.prep.task)
            value = float(self.scorer(est, self.X, self.y, **kwargs))
            if not np.isfinite(value):
                raise ValueError(f"the metric returned {value} for the blend with model {m}")
            out[j] = -value
        return out
