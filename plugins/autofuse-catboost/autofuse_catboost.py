"""autofuse-catboost: CatBoost as an autofuse learner (``catboost``).

The estimator is a Pipeline: autofuse's ordinal preprocessing (categorical columns as codes,
unknown and missing as -1), then ``CatBoostClassifier`` / ``CatBoostRegressor`` (this
module's, not CatBoost's), small wrappers around ``catboost.CatBoost`` that hold out part of
the training rows (stratified for classification), boost up to ``max_rounds`` rounds with
early stopping on that holdout, and keep the early-stopped model. Categorical columns reach
CatBoost as integer ``cat_features`` (its ordered target statistics and feature
combinations). The search space and portfolio follow AutoGluon's / TabArena's CatBoost
(see README.md), scaled down for short budgets on few cores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.pipeline import Pipeline

import autofuse
from autofuse.learners import LearnerSpec, preprocessor, trial_threads
from autofuse.learners.early_stopping import (
    ProbabilityMixin,
    holdout,
    min_delta,
    patience,
    seeds,
)

if TYPE_CHECKING:
    import optuna

    from autofuse._data import DataSpec

__all__ = ["CATBOOST", "CatBoostClassifier", "CatBoostRegressor", "EarlyStopping",
           "autofuse_register_learners"]

TASKS = frozenset({"binary", "multiclass", "regression"})
#: Rounds a fit may boost at most (AutoGluon's cap); early stopping ends it long before.
MAX_ROUNDS = 10_000
#: What a parameter is when the configuration does not set it: CatBoost's defaults, with
#: FLAML's starting learning rate (0.1; AutoGluon's 0.05 took 1.4x as long, 13 s for one
#: fit on 10,000 rows on one core) and plain boosting (TabArena's; CatBoost would pick the
#: slower ordered boosting on small tables). None: CatBoost's own default.
DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.1, "depth": 6, "l2_leaf_reg": 3.0, "grow_policy": "SymmetricTree",
    "subsample": None, "colsample_bylevel": None, "one_hot_max_size": None,
    "max_ctr_complexity": None,
}


class EarlyStopping:
    """CatBoost callback: stop once the holdout loss has not improved by more than
    ``min_delta`` for ``patience`` rounds (CatBoost's own detector has no tolerance)."""

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best, self.best_round = np.inf, 0

    def after_iteration(self, info: Any) -> bool:
        loss = next(iter(info.metrics["validation"].values()))[-1]
        if loss < self.best - self.min_delta:
            self.best, self.best_round = loss, info.iteration
        return info.iteration - self.best_round < self.patience  # False stops


# ----------------------------------------------------------------- the estimators

class _CatBoost(BaseEstimator):
    """CatBoost boosted with early stopping on a holdout of the training rows.

    params : CatBoost parameters (None values: CatBoost's default), on top of the loss.
    categorical : names of the input columns that hold category codes (negative = unknown);
        they reach CatBoost as integer ``cat_features``.
    max_rounds, validation_fraction, patience : early stopping (patience None: by size).
    refit : after early stopping, refit on all rows with the best number of rounds
        (False keeps the early-stopped model; see README.md).
    n_jobs : CatBoost's ``thread_count`` (CatBoost runs its own pool, not OpenMP's).
    random_state : seeds the holdout and CatBoost.
    """

    _classifier = False

    def __init__(self, params: dict[str, Any] | None = None, categorical: Any = (),
                 max_rounds: int = MAX_ROUNDS, validation_fraction: float = 0.1,
                 patience: int | None = None, refit: bool = False, n_jobs: int = 1,
                 random_state: Any = None) -> None:
        self.params = params
        self.categorical = categorical
        self.max_rounds = max_rounds
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.refit = refit
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _pool(self, X: Any, y: np.ndarray | None = None) -> Any:
        """Numeric columns as float, categorical ones as integer codes (CatBoost refuses
        float categories); names f0, f1, ..."""
        from catboost import Pool

        values = np.asarray(X, dtype=np.float64)
        frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])])
        for i in self.categorical_indices_:
            frame[f"f{i}"] = np.nan_to_num(values[:, i], nan=-1).astype(np.int64)
        return Pool(frame, label=y, cat_features=self.categorical_indices_ or None,
                    thread_count=int(self.n_jobs))

    def _model(self, n_classes: int, seed: int, rounds: int) -> Any:
        from catboost import CatBoost

        loss = "RMSE" if not self._classifier else "Logloss" if n_classes == 2 else "MultiClass"
        params = {k: v for k, v in (self.params or {}).items() if v is not None}
        if "subsample" in params:  # subsampling rows needs a bootstrap that takes it
            params.setdefault("bootstrap_type", "Bernoulli")
        return CatBoost({"loss_function": loss, "iterations": int(rounds),
                         "boosting_type": "Plain", **params, "thread_count": int(self.n_jobs),
                         "random_seed": seed, "logging_level": "Silent",
                         "allow_writing_files": False})

    def fit(self, X: Any, y: Any) -> _CatBoost:
        columns = list(getattr(X, "columns", []))
        self.categorical_indices_ = [columns.index(c) for c in self.categorical if c in columns]
        self.n_features_in_ = np.shape(X)[1]
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        n_classes = 0
        if self._classifier:
            self.classes_, y = np.unique(y, return_inverse=True)
            n_classes = len(self.classes_)
            if n_classes < 2:  # nothing to learn: predict the one class
                self.model_ = None
                return self
        else:
            y = y.astype(np.float64)
        rng, seed = seeds(self.random_state)
        train, valid = holdout(y, self.validation_fraction, self._classifier, rng)
        if len(valid) == 0:  # too few rows to hold any out: a fixed, modest number of rounds
            self.model_ = self._model(n_classes, seed, 100).fit(self._pool(X, y))
            self.best_rounds_ = 100
            return self
        model = self._model(n_classes, seed, self.max_rounds)
        stop = EarlyStopping(self.patience or patience(len(train)),
                             min_delta(y[train], y[valid], self._classifier))
        model.fit(self._pool(X[train], y[train]), eval_set=self._pool(X[valid], y[valid]),
                  callbacks=[stop], use_best_model=True)  # shrinks it to its best round
        self.best_rounds_ = model.tree_count_
        if self.refit:
            model = self._model(n_classes, seed, self.best_rounds_).fit(self._pool(X, y))
        self.model_ = model
        return self


class CatBoostClassifier(ProbabilityMixin, ClassifierMixin, _CatBoost):
    __doc__ = _CatBoost.__doc__
    _classifier = True

    def _proba(self, X: Any) -> np.ndarray:
        return self.model_.predict(self._pool(X), prediction_type="Probability")


class CatBoostRegressor(RegressorMixin, _CatBoost):
    __doc__ = _CatBoost.__doc__

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.model_.predict(self._pool(X), prediction_type="RawFormulaVal"))


# ----------------------------------------------------------------- space, build, spec

def _space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.2, log=True),
        "depth": trial.suggest_int("depth", 4, 7),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 5.0, log=True),
        "grow_policy": trial.suggest_categorical("grow_policy", ["SymmetricTree", "Depthwise"]),
        "subsample": trial.suggest_float("subsample", 0.7, 1.0),
        "colsample_bylevel": trial.suggest_float("colsample_bylevel", 0.85, 1.0),
    }
    if data.columns_of("categorical"):  # only tables with categorical columns tune these
        params.update(
            one_hot_max_size=trial.suggest_int("one_hot_max_size", 2, 100, log=True),
            max_ctr_complexity=trial.suggest_int("max_ctr_complexity", 1, 5),
        )
    return params


def _build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    # Pandas output keeps column names, so the model finds its categorical columns by name.
    prepare = preprocessor(data, encode="ordinal", scale=False).set_output(transform="pandas")
    cls = CatBoostRegressor if data.task == "regression" else CatBoostClassifier
    model = cls(params={k: params.get(k, v) for k, v in DEFAULTS.items()},
                categorical=[f"categorical__{c}" for c in data.columns_of("categorical")],
                n_jobs=trial_threads())
    return Pipeline([("prepare", prepare), ("model", model)])


CATBOOST = LearnerSpec(
    "catboost", TASKS, _space, _build,
    portfolio=(
        {},  # the defaults above
        {"depth": 5, "grow_policy": "SymmetricTree", "l2_leaf_reg": 3.75,  # AutoGluon's
         "learning_rate": 0.0933, "max_ctr_complexity": 1,  # zero-shot portfolio (2023),
         "one_hot_max_size": 2},  # "CatBoost_r163"
        {"depth": 6, "grow_policy": "SymmetricTree", "l2_leaf_reg": 2.15,  # ... and
         "learning_rate": 0.0686, "max_ctr_complexity": 4,  # "CatBoost_r177"
         "one_hot_max_size": 10},
    ),
    cost=5.0,
)


@autofuse.hookimpl
def autofuse_register_learners(register: Callable[[LearnerSpec], None]) -> None:
    register(CATBOOST)
