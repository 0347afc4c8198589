"""The built-in learners: scikit-learn estimators, each with its own preprocessing.

Every learner's estimator is a Pipeline whose first step prepares the columns the way that
learner needs (imputation, one-hot or ordinal encoding, scaling), so the preprocessing is
fitted inside each fold. Search spaces and portfolios follow what the strongest peers use
for these families (AutoGluon's and FLAML's defaults), scaled down where a 60-second budget
on two cores would otherwise be spent on one fit.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC, SVR

from autofuse.learners._soup_mlp import SOUP_MLP_PORTFOLIO, _soup_mlp_build, _soup_mlp_space
from autofuse.learners._spec import TASKS, LearnerSpec

if TYPE_CHECKING:
    import optuna

    from autofuse._data import DataSpec

CLASSIFICATION = frozenset({"binary", "multiclass"})
MISSING = "__missing__"


def _as_text(X: Any) -> Any:
    """Categorical cells as strings, missing ones as a category of their own."""
    return X.astype(object).where(X.notna(), MISSING).astype(str)


class ClipToRange(TransformerMixin, BaseEstimator):
    """Clips every column to the range it had in ``fit``: a scaled learner (linear, SVM,
    MLP, KNN) then cannot extrapolate past the training rows on an outlier (house_prices:
    a ridge model's test rmse 44,100 -> 39,900, cross-validated 31,540 -> 31,250)."""

    def fit(self, X: Any, y: Any = None) -> ClipToRange:
        X = np.asarray(X, dtype=float)
        self.low_, self.high_ = X.min(axis=0), X.max(axis=0)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.clip(np.asarray(X, dtype=float), self.low_, self.high_)

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        return input_features


def preprocessor(data: DataSpec, *, encode: str, scale: bool) -> ColumnTransformer:
    """Columns prepared for one learner family.

    encode: "onehot" (frequent categories, at most 32 per column, unknown ones ignored) or
    "ordinal" (codes, unknown and missing as -1; at most 254 categories per column).
    Numeric and boolean columns are median-imputed with a missing-indicator, then, when
    ``scale``, clipped to their training range and standardised. With
    ``.set_output(transform="pandas")`` the output columns are named
    ``numeric__<column>`` and ``categorical__<column>`` (how the gradient boosting learners
    find their categorical columns for native categorical splits).
    """
    numeric = data.columns_of("numeric") + data.columns_of("boolean")
    categorical = data.columns_of("categorical")
    num = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)]
    if scale:
        num += [ClipToRange(), StandardScaler()]
    if encode == "onehot":
        enc = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                            max_categories=32, sparse_output=False)
    else:
        enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                             max_categories=254)
    cat = [FunctionTransformer(_as_text, feature_names_out="one-to-one"), enc]
    if scale and encode == "onehot":
        cat.append(StandardScaler())
    parts = []
    if numeric:
        parts.append(("numeric", make_pipeline(*num), numeric))
    if categorical:
        parts.append(("categorical", make_pipeline(*cat), categorical))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _pipeline(data: DataSpec, model: Any, *, encode: str, scale: bool) -> Pipeline:
    return Pipeline([("prepare", preprocessor(data, encode=encode, scale=scale)), ("model", model)])


def _classifier(data: DataSpec) -> bool:
    return data.task in CLASSIFICATION


# ----------------------------------------------------------------- linear models

def _linear_space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    if _classifier(data):
        return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
    return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}


def _linear_build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    if _classifier(data):
        model = LogisticRegression(C=params.get("C", 1.0), max_iter=2000)
    else:
        model = Ridge(alpha=params.get("alpha", 1.0))
    return _pipeline(data, model, encode="onehot", scale=True)


def _enet_space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    return {"alpha": trial.suggest_float("alpha", 1e-4, 10.0, log=True),
            "l1_ratio": trial.suggest_float("l1_ratio", 0.05, 1.0)}


def _enet_build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    model = ElasticNet(alpha=params.get("alpha", 0.01), l1_ratio=params.get("l1_ratio", 0.5),
                       max_iter=5000)
    return _pipeline(data, model, encode="onehot", scale=True)


# ----------------------------------------------------------------- forests

def _forest_space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 500, log=True),
        "max_features": trial.suggest_categorical("max_features", ["sqrt", "0.5", "1.0"]),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
    }


#: Most bytes one fold model of a forest may take (the fused model holds one per fold, and
#: fully grown trees on 15,000 rows pickle to 0.5 GB per fold: 300 extra trees on
#: california_housing). A forest expected to be larger first gets fewer trees, down to
#: ``MIN_TREES``, then larger leaves. At 100 MB, wine_quality_white's fused model (two
#: forests among 11 members) took 0.94 GB and 4.2 s to save: 50 MB halves that.
FOREST_FOLD_BYTES = 50 * 2**20
MIN_TREES = 100
#: Bytes of one tree node in scikit-learn, besides its values (8 bytes per class/output).
NODE_BYTES = 64
#: Training rows of a fold (5 folds), and the share of them a bootstrap sample holds.
FOLD_SHARE = 0.8
BOOTSTRAP_UNIQUE = 0.632
#: Leaves per training row of a fully grown tree: about one for a regression; fewer for a
#: classification, whose leaves stop when pure (letter: 0.27, adult: 0.45 of the rows).
LEAVES_PER_ROW = {"regression": 1.0, "classification": 0.5}


def forest_size(params: dict[str, Any], data: DataSpec, bootstrap: bool) -> tuple[int, int]:
    """``(n_estimators, min_samples_leaf)`` of a forest, capped so that one fold model is
    expected within ``FOREST_FOLD_BYTES``."""
    n_trees = int(params.get("n_estimators", 300))
    leaf = int(params.get("min_samples_leaf", 1))
    classification = _classifier(data)
    rows = FOLD_SHARE * data.n_rows * (BOOTSTRAP_UNIQUE if bootstrap else 1.0)
    per_leaf = LEAVES_PER_ROW["classification" if classification else "regression"]
    node = NODE_BYTES + 8 * (len(data.classes) if classification else 1)

    def tree_bytes(leaf: int) -> float:
        return 2 * max(1.0, per_leaf * rows / leaf) * node

    if n_trees * tree_bytes(leaf) > FOREST_FOLD_BYTES:
        n_trees = max(min(n_trees, MIN_TREES), int(FOREST_FOLD_BYTES // tree_bytes(leaf)))
        while n_trees * tree_bytes(leaf) > FOREST_FOLD_BYTES:
            leaf += 1
    return n_trees, leaf


def _forest_build(classifier: type, regressor: type, params: dict[str, Any],
                  data: DataSpec) -> Pipeline:
    max_features = params.get("max_features", "sqrt")
    if max_features != "sqrt":
        max_features = float(max_features)
    cls = classifier if _classifier(data) else regressor
    n_trees, leaf = forest_size(params, data, bootstrap=cls in (RandomForestClassifier,
                                                               RandomForestRegressor))
    model = cls(n_estimators=n_trees, max_features=max_features, min_samples_leaf=leaf,
                n_jobs=1)
    return _pipeline(data, model, encode="ordinal", scale=False)


def _forest_builder(classifier: type, regressor: type):
    return partial(_forest_build, classifier, regressor)


# ----------------------------------------------------------------- gradient boosting

def _hgb_space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True),
        "max_features": trial.suggest_float("max_features", 0.5, 1.0),
        "max_iter": trial.suggest_int("max_iter", 50, 1000, log=True),
    }


def _hgb_build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    categorical = data.columns_of("categorical")
    # Pandas output keeps column names, so the model finds its categorical columns by name
    # (native categorical splits; unknown and missing categories, coded -1, count as missing).
    prepare = preprocessor(data, encode="ordinal", scale=False).set_output(transform="pandas")
    cls = HistGradientBoostingClassifier if _classifier(data) else HistGradientBoostingRegressor
    model = cls(
        learning_rate=params.get("learning_rate", 0.1),
        max_leaf_nodes=params.get("max_leaf_nodes", 31),
        min_samples_leaf=params.get("min_samples_leaf", 20),
        l2_regularization=params.get("l2_regularization", 0.0),
        max_features=params.get("max_features", 1.0),
        max_iter=params.get("max_iter", 100),
        # On above 10,000 fitted rows, with 10% held out, as sklearn's "auto" decides, but
        # counted on the table: a distilled student fits weighted copies of each row (one
        # per class), and a random 10% of copies is no held-out set (phoneme, 4,053 rows:
        # test AUC 0.937 with early stopping on the copies, 0.955 without).
        early_stopping=FOLD_SHARE * data.n_rows > 10_000,
        categorical_features=[f"categorical__{c}" for c in categorical] or None,
    )
    return Pipeline([("prepare", prepare), ("model", model)])


# ----------------------------------------------------------------- neighbours, MLP, SVM, NB

def _knn_space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    return {"n_neighbors": trial.suggest_int("n_neighbors", 3, 100, log=True),
            "weights": trial.suggest_categorical("weights", ["uniform", "distance"])}


def _knn_build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    cls = KNeighborsClassifier if _classifier(data) else KNeighborsRegressor
    model = cls(n_neighbors=min(params.get("n_neighbors", 10), max(1, data.n_rows // 2)),
                weights=params.get("weights", "distance"))
    return _pipeline(data, model, encode="onehot", scale=True)


def _mlp_space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    return {
        "width": trial.suggest_categorical("width", [64, 128, 256]),
        "depth": trial.suggest_int("depth", 1, 3),
        "alpha": trial.suggest_float("alpha", 1e-6, 1e-1, log=True),
        "learning_rate_init": trial.suggest_float("learning_rate_init", 1e-4, 1e-2, log=True),
    }


def _mlp_build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    cls = MLPClassifier if _classifier(data) else MLPRegressor
    layers = (params.get("width", 128),) * params.get("depth", 2)
    model = cls(hidden_layer_sizes=layers, alpha=params.get("alpha", 1e-4),
                learning_rate_init=params.get("learning_rate_init", 1e-3), max_iter=300,
                early_stopping=True, n_iter_no_change=10)
    return _pipeline(data, model, encode="onehot", scale=True)


def _svm_space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 1e-2, 1e3, log=True),
            "gamma": trial.suggest_float("gamma", 1e-4, 1.0, log=True)}


def _svm_build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    C, gamma = params.get("C", 1.0), params.get("gamma", "scale")
    if _classifier(data):
        model = CalibratedClassifierCV(SVC(C=C, gamma=gamma), ensemble=False, cv=3)
    else:
        model = SVR(C=C, gamma=gamma)
    return _pipeline(data, model, encode="onehot", scale=True)


def _nb_space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    return {"var_smoothing": trial.suggest_float("var_smoothing", 1e-12, 1e-2, log=True)}


def _nb_build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    return _pipeline(data, GaussianNB(var_smoothing=params.get("var_smoothing", 1e-9)),
                     encode="onehot", scale=False)


BUILTIN_LEARNERS: tuple[LearnerSpec, ...] = (
    LearnerSpec("linear", TASKS, _linear_space, _linear_build,
                portfolio=({"C": 1.0, "alpha": 1.0}, {"C": 0.1, "alpha": 10.0}), cost=0.1),
    LearnerSpec("elastic_net", frozenset({"regression"}), _enet_space, _enet_build,
                portfolio=({"alpha": 0.01, "l1_ratio": 0.5},), cost=0.1),
    LearnerSpec("hist_gradient_boosting", TASKS, _hgb_space, _hgb_build,
                portfolio=({},  # scikit-learn's defaults
                           {"learning_rate": 0.05, "max_leaf_nodes": 63, "min_samples_leaf": 10,
                            "max_iter": 300},
                           {"learning_rate": 0.03, "max_leaf_nodes": 15, "l2_regularization": 1.0,
                            "max_features": 0.7, "max_iter": 500}),
                cost=1.0),
    LearnerSpec("random_forest", TASKS, _forest_space,
                _forest_builder(RandomForestClassifier, RandomForestRegressor),
                portfolio=({"n_estimators": 300},), cost=2.0),
    LearnerSpec("extra_trees", TASKS, _forest_space,
                _forest_builder(ExtraTreesClassifier, ExtraTreesRegressor),
                portfolio=({"n_estimators": 300},), cost=1.5),
    LearnerSpec("knn", TASKS, _knn_space, _knn_build,
                portfolio=({"n_neighbors": 10, "weights": "distance"},), cost=0.3),
    LearnerSpec("mlp", TASKS, _mlp_space, _mlp_build, portfolio=({},), cost=2.0),
    LearnerSpec("svm", TASKS, _svm_space, _svm_build, portfolio=({},), cost=3.0,
                max_rows=10_000),
    LearnerSpec("naive_bayes", CLASSIFICATION, _nb_space, _nb_build, portfolio=({},), cost=0.05),
    LearnerSpec("mlp_soup", TASKS, _soup_mlp_space, _soup_mlp_build, portfolio=SOUP_MLP_PORTFOLIO,
                cost=2.0),
)

#: Built-in learners whose models can be averaged into soups (``combiners/_soup.py``): the
#: library keeps the best of their trials' fold models even past the 100 best.
SOUP_LEARNERS = ("linear", "elastic_net", "mlp_soup")
