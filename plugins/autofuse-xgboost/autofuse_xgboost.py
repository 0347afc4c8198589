"""autofuse-xgboost: XGBoost as an autofuse learner (``xgboost``).

The estimator is a Pipeline: autofuse's ordinal preprocessing (categorical columns as codes,
unknown and missing as -1), then ``XGBoostClassifier`` / ``XGBoostRegressor``, small
wrappers around ``xgboost.train`` that hold out part of the training rows (stratified for
classification), boost up to ``max_rounds`` rounds with early stopping on that holdout, and
keep the early-stopped booster. Categorical columns reach XGBoost as pandas categories
(``enable_categorical``, ``tree_method="hist"``): native categorical splits. The search
space and portfolio follow AutoGluon's / TabArena's XGBoost (see README.md), scaled down for
short budgets on few cores.
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

__all__ = ["XGBOOST", "XGBoostClassifier", "XGBoostRegressor", "autofuse_register_learners"]

TASKS = frozenset({"binary", "multiclass", "regression"})
#: Rounds a fit may boost at most (AutoGluon's cap); early stopping ends it long before.
MAX_ROUNDS = 10_000
#: What a parameter is when the configuration does not set it: XGBoost's defaults, with
#: AutoGluon's learning rate (0.1; XGBoost's own is 0.3).
DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.1, "max_depth": 6, "min_child_weight": 1.0, "subsample": 1.0,
    "colsample_bytree": 1.0, "reg_alpha": 0.0, "reg_lambda": 1.0, "grow_policy": "depthwise",
    "max_leaves": 0, "max_cat_to_onehot": 4,
}


# ----------------------------------------------------------------- the estimators

class _XGBoost(BaseEstimator):
    """XGBoost boosted with early stopping on a holdout of the training rows.

    params : XGBoost booster parameters, on top of the objective.
    categorical : names of the input columns that hold category codes (negative = missing);
        they become pandas categories for XGBoost's native categorical splits.
    max_rounds, validation_fraction, patience : early stopping (patience None: by size).
    refit : after early stopping, refit on all rows with the best number of rounds
        (False keeps the early-stopped booster; see README.md).
    n_jobs : XGBoost's threads. random_state : seeds the holdout and XGBoost.
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

    def _frame(self, X: Any) -> pd.DataFrame:
        """Numeric columns as float, categorical ones as pandas categories with the codes
        seen in training as their categories (same every call); names f0, f1, ..."""
        values = np.asarray(X, dtype=np.float64)
        frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])])
        for i, n_categories in self.categories_.items():
            codes = values[:, i]
            codes = np.where((codes >= 0) & (codes < n_categories), codes, -1).astype(int)
            frame[f"f{i}"] = pd.Categorical.from_codes(codes, categories=range(n_categories))
        return frame

    def _matrix(self, X: Any, y: np.ndarray | None = None) -> Any:
        import xgboost as xgb

        return xgb.DMatrix(self._frame(X), label=y, enable_categorical=True,
                           nthread=int(self.n_jobs))

    def _objective(self, n_classes: int) -> dict[str, Any]:
        if not self._classifier:
            return {"objective": "reg:squarederror", "eval_metric": "rmse"}
        if n_classes == 2:
            return {"objective": "binary:logistic", "eval_metric": "logloss"}
        return {"objective": "multi:softprob", "num_class": n_classes, "eval_metric": "mlogloss"}

    def fit(self, X: Any, y: Any) -> _XGBoost:
        import xgboost as xgb

        columns = list(getattr(X, "columns", []))
        self.n_features_in_ = np.shape(X)[1]
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        self.categories_ = {columns.index(c): int(max(np.nanmax(X[:, columns.index(c)]), -1)) + 1
                            for c in self.categorical if c in columns}
        if self._classifier:
            self.classes_, y = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:  # nothing to learn: predict the one class
                self.booster_ = None
                return self
        else:
            y = y.astype(np.float64)
        rng, seed = seeds(self.random_state)
        train, valid = holdout(y, self.validation_fraction, self._classifier, rng)
        params = {**self._objective(len(getattr(self, "classes_", ()))), "tree_method": "hist",
                  **(self.params or {}), "nthread": int(self.n_jobs), "seed": seed,
                  "verbosity": 0}
        if len(valid) == 0:  # too few rows to hold any out: a fixed, modest number of rounds
            self.booster_ = xgb.train(params, self._matrix(X[train], y[train]), 100)
            self.best_rounds_ = 100
            return self
        dtrain = self._matrix(X[train], y[train])
        stop = xgb.callback.EarlyStopping(
            rounds=self.patience or patience(len(train)),
            min_delta=min_delta(y[train], y[valid], self._classifier))
        booster = xgb.train(params, dtrain, int(self.max_rounds),
                            evals=[(self._matrix(X[valid], y[valid]), "valid")],
                            callbacks=[stop], verbose_eval=False)
        self.best_rounds_ = booster.best_iteration + 1
        if self.refit:
            booster = xgb.train(params, self._matrix(X, y), self.best_rounds_)
        else:
            booster = booster[: self.best_rounds_]  # drop the rounds past the best
        self.booster_ = booster
        return self

    def _raw(self, X: Any) -> np.ndarray:
        self.booster_.set_param({"nthread": int(self.n_jobs)})
        return self.booster_.predict(self._matrix(X))


class XGBoostClassifier(ProbabilityMixin, ClassifierMixin, _XGBoost):
    __doc__ = _XGBoost.__doc__
    _classifier = True

    def _proba(self, X: Any) -> np.ndarray:
        return self._raw(X)


class XGBoostRegressor(RegressorMixin, _XGBoost):
    __doc__ = _XGBoost.__doc__

    def predict(self, X: Any) -> np.ndarray:
        return self._raw(X)


# ----------------------------------------------------------------- space, build, spec

def _space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "max_depth": trial.suggest_int("max_depth", 3, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 1e-3, 5.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-4, 5.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-4, 5.0, log=True),
        "grow_policy": trial.suggest_categorical("grow_policy", ["depthwise", "lossguide"]),
        "max_leaves": trial.suggest_int("max_leaves", 8, 1024, log=True),
    }
    if data.columns_of("categorical"):  # only tables with categorical columns tune this
        params["max_cat_to_onehot"] = trial.suggest_int("max_cat_to_onehot", 8, 100, log=True)
    return params


def _build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    # Pandas output keeps column names, so the model finds its categorical columns by name.
    prepare = preprocessor(data, encode="ordinal", scale=False).set_output(transform="pandas")
    cls = XGBoostRegressor if data.task == "regression" else XGBoostClassifier
    model = cls(params={k: params.get(k, v) for k, v in DEFAULTS.items()},
                categorical=[f"categorical__{c}" for c in data.columns_of("categorical")],
                n_jobs=trial_threads())
    return Pipeline([("prepare", prepare), ("model", model)])


XGBOOST = LearnerSpec(
    "xgboost", TASKS, _space, _build,
    portfolio=(
        {},  # the defaults above
        {"learning_rate": 0.0878, "max_depth": 5, "min_child_weight": 0.629,  # AutoGluon's
         "colsample_bytree": 0.663},  # zero-shot portfolio (2023), "XGBoost_r89"
        {"learning_rate": 0.0929, "max_depth": 7, "min_child_weight": 0.804,  # ... and
         "colsample_bytree": 0.909},  # "XGBoost_r194" (native categorical splits)
    ),
    cost=1.5,
)


@autofuse.hookimpl
def autofuse_register_learners(register: Callable[[LearnerSpec], None]) -> None:
    register(XGBOOST)
