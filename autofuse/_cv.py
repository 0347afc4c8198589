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
    whose out-of-fold predictions cover the validation rows only. ``groups`` of another
    length than the rows, or with missing values, is an error naming it.
    """
    n = len(target)
    classification = data.task != "regression"
    if groups is not None:
        groups = _check_groups(groups, n)
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


def _check_groups(groups: Any, n: int) -> np.ndarray:
    import pandas as pd

    values = np.asarray(groups)
    if values.ndim != 1:
        raise ValueError(f"groups must be 1-D (one group label per row); got shape {values.shape}")
    if len(values) != n:
        raise ValueError(f"groups has {len(values)} values but X has {n} rows")
    missing = np.flatnonzero(pd.isna(values))
    if missing.size:
        raise ValueError(f"groups has {missing.size} missing value(s), first at row "
                         f"{missing[0]}; give every row a group")
    return values


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


#: Rows of class probabilities may sum to 1 within this (float32 learners round).
PROBA_SUM_TOLERANCE = 1e-3


class OutputError(ValueError):
    """A learner returned predictions of the wrong shape, type or values."""


def _shape(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f"an array of shape {tuple(shape)}" if shape is not None else type(value).__name__


def _predict(model: Any, X: Any, data: DataSpec, name: str = "the learner") -> np.ndarray:
    """``model``'s predictions on ``X`` as ``(n_rows, n_outputs)`` float64: values for
    regression, probabilities in ``data.classes`` order (a fold that lacked a class gets a
    zero column for it). Anything else a learner returns is an ``OutputError`` naming
    ``name``, what it returned and what was expected."""
    n = len(X)
    if data.task == "regression":
        raw = model.predict(X)
        out = _numbers(raw, name, "predict")
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != (n,):
            raise OutputError(f"{name}: predict returned {_shape(raw)} for {n} rows; "
                              f"expected shape ({n},)")
        _finite(out, name, "predict")
        return out.reshape(n, 1)
    raw = model.predict_proba(X)
    proba = _numbers(raw, name, "predict_proba")
    n_classes = len(data.classes)
    fitted = np.asarray(getattr(model, "classes_", np.arange(n_classes)))
    if proba.ndim != 2 or proba.shape != (n, len(fitted)):
        raise OutputError(f"{name}: predict_proba returned {_shape(raw)} for {n} rows; "
                          f"expected shape ({n}, {len(fitted)}), one column per class")
    _finite(proba, name, "predict_proba")
    if proba.size and (proba.min() < -PROBA_SUM_TOLERANCE or proba.max() > 1 + PROBA_SUM_TOLERANCE
                       or np.abs(proba.sum(axis=1) - 1).max() > PROBA_SUM_TOLERANCE):
        raise OutputError(f"{name}: predict_proba returned values outside [0, 1] or rows "
                          f"that do not sum to 1 (from {proba.min():.4g} to {proba.max():.4g}, "
                          f"row sums up to {proba.sum(axis=1).max():.4g}); expected "
                          "probabilities")
    if proba.shape[1] != n_classes:  # a fold that lacked a class: put columns in place
        full = np.zeros((n, n_classes))
        full[:, fitted.astype(int)] = proba
        proba = full
    return proba


def _numbers(raw: Any, name: str, method: str) -> np.ndarray:
    try:
        out = np.asarray(raw, dtype=float)
    except (TypeError, ValueError) as exc:
        raise OutputError(f"{name}: {method} returned {_shape(raw)} that is not numbers "
                          f"({exc}); expected numbers") from None
    return out


def _finite(out: np.ndarray, name: str, method: str) -> None:
    bad = ~np.isfinite(out)
    if bad.any():
        rows = int(bad.reshape(len(out), -1).any(axis=1).sum())
        raise OutputError(f"{name}: {method} returned NaN or infinity on {rows} of "
                          f"{len(out)} rows; expected finite numbers")


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
        pred = _predict(model, frame.iloc[valid], data, f"learner {spec.name!r}"
                        ).astype(np.float32)
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
