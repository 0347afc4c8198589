"""Learners for tests: one that raises in fit, one that hangs. Module-level functions, so
the worker processes can import them."""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from autofuse.learners import LearnerSpec


class Raises(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise RuntimeError("boom: this learner always fails")


class Hangs(ClassifierMixin, BaseEstimator):
    """Sleeps far past any budget, like a native fit that ignores signals."""

    def fit(self, X, y):
        time.sleep(1000)
        return self

    def predict_proba(self, X):  # pragma: no cover - never reached
        return np.full((len(X), 2), 0.5)


def _space(trial, data):
    return {"x": trial.suggest_float("x", 0.0, 1.0)}


def _build_raises(params, data):
    return Raises()


def _build_hangs(params, data):
    return Hangs()


RAISES = LearnerSpec("raises", frozenset({"binary", "multiclass"}), _space, _build_raises,
                     portfolio=({"x": 0.5},), cost=0.01)
HANGS = LearnerSpec("hangs", frozenset({"binary", "multiclass"}), _space, _build_hangs,
                    portfolio=({"x": 0.5},), cost=5.0)  # after linear's portfolio


def _space_raises(trial, data):
    raise ValueError("bad space: this search space always fails")


BAD_SPACE = LearnerSpec("bad_space", frozenset({"binary", "multiclass"}), _space_raises,
                        _build_raises, portfolio=({"x": 0.5},), cost=0.01)
