"""autofuse-lightgbm: LightGBM as an autofuse learner (``lightgbm``).

The estimator is a Pipeline: autofuse's ordinal preprocessing (categorical columns as codes,
unknown and missing as -1), then ``LightGBMClassifier`` / ``LightGBMRegressor``, small
wrappers around ``lightgbm.train`` that hold out part of the training rows (stratified for
classification), boost up to ``max_rounds`` rounds with early stopping on that holdout, and
keep the early-stopped booster. Categorical columns use LightGBM's native categorical
splits. The search space and portfolio follow AutoGluon's / TabArena's LightGBM (see
README.md), scaled down for short budgets on few cores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
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

__all__ = ["LIGHTGBM", "LightGBMClassifier", "LightGBMRegressor", "autofuse_register_learners"]

TASKS = frozenset({"binary", "multiclass", "regression"})
#: Rounds a fit may boost at most (AutoGluon's cap); early stopping ends it long before.
MAX_ROUNDS = 10_000
#: What a parameter is when the configuration does not set it: LightGBM's defaults, except
#: the learning rate (AutoGluon's 0.05, as rounds are early-stopped, not fixed).
DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 20, "feature_fraction": 1.0,
    "bagging_fraction": 1.0, "extra_trees": False, "lambda_l1": 0.0, "lambda_l2": 0.0,
    "min_data_per_group": 100, "cat_l2": 10.0, "cat_smooth": 10.0, "max_cat_to_onehot": 4,
}


# ----------------------------------------------------------------- the estimators

class _LightGBM(BaseEstimator):
    """LightGBM boosted with early stopping on a holdout of the training rows.

    params : LightGBM parameters (canonical names), on top of the objective.
    categorical : names of the input columns that hold category codes (negative = missing).
    max_rounds, validation_fraction, patience : early stopping (patience None: by size).
    refit : after early stopping, refit on all rows with the best number of rounds
        (False keeps the early-stopped booster; see README.md).
    n_jobs : LightGBM's threads. random_state : seeds the holdout and LightGBM.
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

    def _matrix(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)

    def _objective(self, n_classes: int) -> dict[str, Any]:
        if not self._classifier:
            return {"objective": "regression", "metric": "rmse"}
        if n_classes == 2:
            return {"objective": "binary", "metric": "binary_logloss"}
        return {"objective": "multiclass", "num_class": n_classes, "metric": "multi_logloss"}

    def fit(self, X: Any, y: Any) -> _LightGBM:
        import lightgbm as lgb

        columns = list(getattr(X, "columns", []))
        self.categorical_indices_ = [columns.index(c) for c in self.categorical if c in columns]
        self.n_features_in_ = np.shape(X)[1]
        X, y = self._matrix(X), np.asarray(y)
        if self._classifier:
            self.classes_, y = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:  # nothing to learn: predict the one class
                self.booster_, self.best_rounds_ = None, 0
                return self
        else:
            y = y.astype(np.float64)
        rng, seed = seeds(self.random_state)
        train, valid = holdout(y, self.validation_fraction, self._classifier, rng)
        params = {**self._objective(len(getattr(self, "classes_", ()))), "bagging_freq": 1,
                  **(self.params or {}), "num_threads": int(self.n_jobs), "seed": seed,
                  "verbosity": -1, "deterministic": True, "force_row_wise": True}

        def dataset(rows: np.ndarray, **kw: Any) -> lgb.Dataset:
            return lgb.Dataset(X[rows], y[rows], categorical_feature=self.categorical_indices_,
                               params={"verbosity": -1}, free_raw_data=True, **kw)

        if len(valid) == 0:  # too few rows to hold any out: a fixed, modest number of rounds
            self.booster_ = lgb.train(params, dataset(train), num_boost_round=100)
            self.best_rounds_ = 100
            return self
        dtrain = dataset(train)
        stop = lgb.early_stopping(self.patience or patience(len(train)), verbose=False,
                                  min_delta=min_delta(y[train], y[valid], self._classifier))
        booster = lgb.train(params, dtrain, num_boost_round=int(self.max_rounds),
                            valid_sets=[dataset(valid, reference=dtrain)], callbacks=[stop])
        # lgb.train returns the booster cut to its best round.
        self.best_rounds_ = max(1, booster.best_iteration or booster.current_iteration())
        if self.refit:
            booster = lgb.train(params, dataset(np.arange(len(y))),
                                num_boost_round=self.best_rounds_)
        self.booster_ = booster
        return self

    def _raw(self, X: Any) -> np.ndarray:
        return self.booster_.predict(self._matrix(X), num_iteration=self.best_rounds_,
                                     num_threads=int(self.n_jobs))


class LightGBMClassifier(ProbabilityMixin, ClassifierMixin, _LightGBM):
    __doc__ = _LightGBM.__doc__
    _classifier = True

    def _proba(self, X: Any) -> np.ndarray:
        return self._raw(X)


class LightGBMRegressor(RegressorMixin, _LightGBM):
    __doc__ = _LightGBM.__doc__

    def predict(self, X: Any) -> np.ndarray:
        return self._raw(X)


# ----------------------------------------------------------------- space, build, spec

def _space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 1, 64, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.7, 1.0),
        "extra_trees": trial.suggest_categorical("extra_trees", [False, True]),
        "lambda_l1": trial.suggest_float("lambda_l1", 1e-4, 1.0, log=True),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-4, 2.0, log=True),
    }
    if data.columns_of("categorical"):  # only tables with categorical columns tune these
        params.update(
            min_data_per_group=trial.suggest_int("min_data_per_group", 2, 100, log=True),
            cat_l2=trial.suggest_float("cat_l2", 5e-3, 2.0, log=True),
            cat_smooth=trial.suggest_float("cat_smooth", 1e-3, 100.0, log=True),
            max_cat_to_onehot=trial.suggest_int("max_cat_to_onehot", 8, 100, log=True),
        )
    return params


def _build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    # Pandas output keeps column names, so the model finds its categorical columns by name.
    prepare = preprocessor(data, encode="ordinal", scale=False).set_output(transform="pandas")
    cls = LightGBMRegressor if data.task == "regression" else LightGBMClassifier
    model = cls(params={k: params.get(k, v) for k, v in DEFAULTS.items()},
                categorical=[f"categorical__{c}" for c in data.columns_of("categorical")],
                n_jobs=trial_threads())
    return Pipeline([("prepare", prepare), ("model", model)])


LIGHTGBM = LearnerSpec(
    "lightgbm", TASKS, _space, _build,
    portfolio=(
        {},  # the defaults above
        {"extra_trees": True},  # AutoGluon's "LightGBMXT"
        {"learning_rate": 0.0179, "num_leaves": 39, "min_data_in_leaf": 3,  # AutoGluon's
         "feature_fraction": 0.462, "bagging_fraction": 0.877, "extra_trees": True,  # 2025
         "lambda_l1": 0.238, "lambda_l2": 0.355, "min_data_per_group": 9,  # CPU portfolio,
         "cat_l2": 0.342, "cat_smooth": 15.4, "max_cat_to_onehot": 16},  # "GBM_r177"
    ),
    cost=1.0,
)


@autofuse.hookimpl
def autofuse_register_learners(register: Callable[[LearnerSpec], None]) -> None:
    register(LIGHTGBM)
