"""Cross-validation of one configuration: the folds, and the out-of-fold predictions.

Every trial of a run uses the same folds, so the out-of-fold predictions of all trials
line up row for row and can be fused. ``make_folds`` builds them; ``cross_fit`` fits one
learner configuration on each fold and returns its out-of-fold predictions (class
probabilities, or values for regression) with the fold models and their timings.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, check_cv

if TYPE_CHECKING:
    import pandas as pd

    from autofuse._data import DataSpec
    from autofuse.learners import LearnerSpec

#: Above this many rows a single holdout split replaces k-fold cross-validation.
HOLDOUT_ROWS = 200_000


def make_folds(target: np.ndarray, data: DataSpec, cv: Any = 5, groups: Any = None,
               random_state: int | None = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) row indices shared by every trial.

    ``cv`` is a number of folds (stratified for classification, shuffled and seeded), or any
    scikit-learn splitter or iterable of splits. With ``groups``, rows of one group stay in
    one fold. Past ``HOLDOUT_ROWS`` rows an integer ``cv`` becomes one 80/20 holdout split,
    whose out-of-fold predictions cover the validation rows only.
    """
    n = len(target)
    classification = data.task != "regression"
    if isinstance(cv, (int, np.integer)):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds, got {cv}")
        if n < 2 * cv and groups is None:
            raise ValueError(f"cv={cv} folds need at least {2 * cv} rows; X has {n} "
                             f"(n_samples={n}): lower cv")
        if groups is not None:
            splitter = GroupKFold(n_splits=int(cv))
        elif n > HOLDOUT_ROWS:
            rng = np.random.default_rng(random_state)
            order = rng.permutation(n)
            cut = int(0.8 * n)
            return [(np.sort(order[:cut]), np.sort(order[cut:]))]
        elif classification:
            largest = int(np.bincount(target).max())
            if largest < cv:
                raise ValueError(f"cv={cv} folds, but even the largest class has only "
                                 f"{largest} rows; lower cv")
            splitter = StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=random_state)
        else:
            splitter = KFold(n_splits=int(cv), shuffle=True, random_state=random_state)
    else:
        splitter = check_cv(cv, target, classifier=classification)
    with warnings.catch_warnings():
        # A class rarer than the folds: fit() has said so in its own words.
        warnings.filterwarnings("ignore", message="The least populated class")
        return [(np.asarray(tr), np.asarray(va))
                for tr, va in splitter.split(np.zeros((n, 1)), target, groups)]


@dataclass
class CrossFit:
    """What cross-fitting one configuration produced."""

    oof: np.ndarray  # (n_rows, n_outputs) float32; NaN on rows no fold validated
    models: list[Any] = field(default_factory=list)
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0

    @property
    def covered(self) -> np.ndarray:
        """Rows that have an out-of-fold prediction."""
        return ~np.isnan(self.oof[:, 0])


def _predict(model: Any, X: Any, data: DataSpec) -> np.ndarray:
    if data.task == "regression":
        return np.asarray(model.predict(X), dtype=float).reshape(len(X), -1)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    n_classes = len(data.classes)
    if proba.shape[1] != n_classes:  # a fold that lacked a class: put columns in place
        full = np.zeros((len(X), n_classes))
        full[:, np.asarray(model.classes_, dtype=int)] = proba
        proba = full
    return proba


def fit_folds(spec: LearnerSpec, params: dict[str, Any], frame: pd.DataFrame,
              target: np.ndarray, data: DataSpec, folds: list[tuple[np.ndarray, np.ndarray]],
              seed: int | None = None) -> Iterator[tuple[int, Any, np.ndarray, float, float]]:
    """Fit ``spec`` with ``params`` fold after fold, yielding ``(k, model, predictions on
    the fold's validation rows as float32, fit seconds, predict seconds)``.

    A generator, so the caller can stop after any fold (pruning, the time budget).
    Exceptions from the learner propagate: the search marks that trial failed.
    """
    template = spec.estimator(params, data, seed)
    for k, (train, valid) in enumerate(folds):
        model = clone(template)
        t = time.perf_counter()
        model.fit(frame.iloc[train], target[train])
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        pred = _predict(model, frame.iloc[valid], data).astype(np.float32)
        yield k, model, pred, fit_s, time.perf_counter() - t


def cross_fit(spec: LearnerSpec, params: dict[str, Any], frame: pd.DataFrame,
              target: np.ndarray, data: DataSpec,
              folds: list[tuple[np.ndarray, np.ndarray]], seed: int | None = None) -> CrossFit:
    """Fit ``spec`` with ``params`` on every fold; out-of-fold predictions as float32."""
    n_outputs = 1 if data.task == "regression" else len(data.classes)
    result = CrossFit(oof=np.full((len(target), n_outputs), np.nan, dtype=np.float32))
    for k, model, pred, fit_s, predict_s in fit_folds(spec, params, frame, target, data, folds,
                                                             seed):
        result.oof[folds[k][1]] = pred
        result.fit_seconds += fit_s
        result.predict_seconds += predict_s
        result.models.append(model)
    return result
