"""AutoFuseClassifier / AutoFuseRegressor follow the scikit-learn estimator contract.

Every fit here is a real (small) autofuse run: two cheap learners, three trials, three
folds, so one fit costs well under a second once the worker processes are up.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from autofuse import _api
from autofuse._estimators import AutoFuseClassifier, AutoFuseRegressor

# One worker and a fixed number of trials: a deterministic search, so scikit-learn's
# determinism checks run (the default, n_jobs=-1, is tagged non-deterministic).
FAST_CLF = dict(time_limit=30, n_trials=3, learners=["linear", "naive_bayes"], cv=3,
                random_state=0, n_jobs=1)
FAST_REG = dict(time_limit=30, n_trials=3, learners=["linear"], cv=3, random_state=0,
                n_jobs=1)

@parametrize_with_checks([AutoFuseClassifier(**FAST_CLF), AutoFuseRegressor(**FAST_REG)])
def test_sklearn_compatible(estimator, check):
    # Several checks use classes of one or two rows, fewer than the folds: autofuse keeps
    # such classes (folds without them predict them with probability 0) and warns.
    check(estimator)


@pytest.mark.parametrize("estimator", [AutoFuseClassifier(**FAST_CLF),
                                       AutoFuseRegressor(**FAST_REG)], ids=repr)
def test_dataframe_column_names_consistency(estimator):
    # Not among parametrize_with_checks' checks, but what feature_names_in_ promises.
    estimator_checks.check_dataframe_column_names_consistency(type(estimator).__name__,
                                                              estimator)


# ----------------------------------------------------------------- data and fitted models

def _table(n: int = 90, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric, string and missing values; string labels decided mostly by ``a`` and
    ``color``."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.normal(size=n),
        "color": rng.choice(["red", "green", "blue"], size=n).astype(object),
    })
    X.loc[rng.choice(n, 8, replace=False), "b"] = np.nan
    X.loc[rng.choice(n, 6, replace=False), "color"] = None
    y = np.where(X["a"] > 0.3, "dog", np.where(X["color"] == "red", "fish", "cat"))
    return X, pd.Series(y, name="animal")


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, pd.Series]:
    return _table()


@pytest.fixture(scope="module")
def fitted(table):
    """A classifier fitted on ``table``, and the arguments ``autofuse.fit`` received."""
    X, y = table
    calls = []

    def spy(X, y, **kwargs):
        calls.append((X, y, kwargs))
        return real_fit(X, y, **kwargs)

    real_fit = _api.fit
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_api, "fit", spy)
        clf = AutoFuseClassifier(**FAST_CLF).fit(X, y)
    return clf, calls


# ----------------------------------------------------------------- parameters and cloning

def test_get_params_clone_round_trip():
    clf = AutoFuseClassifier()
    assert clf.get_params() == dict(time_limit=60, n_trials=None, metric=None, cv=5,
                                    learners=None, combiner="auto", combiner_options=None,
                                    storage=None, n_jobs=-1, memory_limit=None,
                                    max_disk=None, refit_full=False,
                                    random_state=None, verbose=0)
    assert AutoFuseRegressor().get_params() == clf.get_params()

    learners = ["linear", "knn"]
    clf.set_params(learners=learners, cv=StratifiedKFold(4), metric="accuracy")
    assert clf.learners is learners  # stored unmodified
    twin = clone(clf)
    assert type(twin) is AutoFuseClassifier and twin is not clf
    params, twin_params = clf.get_params(), twin.get_params()
    assert twin_params["learners"] == learners
    assert twin_params["cv"].get_n_splits() == 4
    assert {k: v for k, v in twin_params.items() if k != "cv"} == \
        {k: v for k, v in params.items() if k != "cv"}
    assert clone(twin).get_params()["learners"] == learners


def test_clone_of_a_fitted_estimator_is_unfitted(fitted):
    clf, _ = fitted
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    assert not hasattr(twin, "model_") and not hasattr(twin, "classes_")
    with pytest.raises(NotFittedError):
        twin.predict(pd.DataFrame({"a": [0.0], "b": [0.0], "color": ["red"]}))


# ----------------------------------------------------------------- fitting and predicting

def test_dataframe_goes_to_autofuse_unchanged(fitted, table):
    clf, calls = fitted
    X, y = table
    assert len(calls) == 1
    X_seen, y_seen, kwargs = calls[0]
    assert X_seen is X
    assert list(y_seen) == list(y)
    assert kwargs == dict(task="classification", time_limit=30, n_trials=3, metric=None,
                          cv=3, learners=["linear", "naive_bayes"], combiner="auto",
                          combiner_options=None, storage=None, n_jobs=1,
                          memory_limit=None, max_disk=None,
                          refit_full=False, random_state=0, verbose=0)


def test_classes_with_string_labels(fitted, table):
    clf, _ = fitted
    X, y = table
    assert clf.classes_.tolist() == ["cat", "dog", "fish"]
    assert set(clf.predict(X)) <= {"cat", "dog", "fish"}
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) > 0.7  # sklearn's accuracy
    assert clf.score(X, y) == pytest.approx(np.mean(clf.predict(X) == y))


def test_feature_names_and_n_features(fitted, table):
    clf, _ = fitted
    X, y = table
    assert clf.n_features_in_ == 3
    assert clf.feature_names_in_.tolist() == ["a", "b", "color"]
    numeric = X[["a", "b"]]
    from_array = AutoFuseRegressor(**FAST_REG).fit(numeric.to_numpy(), numeric["a"] * 2)
    assert from_array.n_features_in_ == 2 and not hasattr(from_array, "feature_names_in_")
    from_ints = AutoFuseClassifier(**FAST_CLF).fit(X.set_axis([0, 1, 2], axis=1), y)
    assert from_ints.n_features_in_ == 3 and not hasattr(from_ints, "feature_names_in_")
    np.testing.assert_array_equal(from_ints.predict(X.set_axis([0, 1, 2], axis=1)),
                                  clf.predict(X))


def test_predict_with_a_missing_column_names_it(fitted, table):
    clf, _ = fitted
    X, _ = table
    with pytest.raises(ValueError, match=r"missing:\n- color"):
        clf.predict(X.drop(columns="color"))
    with pytest.raises(ValueError, match=r"missing:\n- b"):
        clf.predict_proba(X.drop(columns="b"))
    with pytest.raises(ValueError, match="unseen at fit time:\n- extra"):
        clf.predict(X.assign(extra=1.0))


def test_array_rows_predict_like_the_dataframe(fitted, table):
    clf, _ = fitted
    X, _ = table
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_array = clf.predict(X.to_numpy())
    np.testing.assert_array_equal(from_array, clf.predict(X))


def test_leaderboard_delegates(fitted):
    clf, _ = fitted
    board = clf.leaderboard()
    pd.testing.assert_frame_equal(board, clf.model_.leaderboard())
    assert board["model"].iloc[0] == "blend"
    with pytest.raises(NotFittedError):
        AutoFuseRegressor().leaderboard()


def test_in_a_pipeline_with_strings_and_missing_values(table):
    X, y = table
    pipe = Pipeline([("identity", FunctionTransformer()),  # passes the DataFrame through
                     ("model", AutoFuseClassifier(**FAST_CLF))])
    pipe.fit(X, y)
    model = pipe.named_steps["model"]
    assert model.feature_names_in_.tolist() == ["a", "b", "color"]
    assert model.model_.data_summary().set_index("name").loc["color", "kind"] == "categorical"
    assert pipe.predict(X.iloc[:5]).tolist() == model.predict(X.iloc[:5]).tolist()
    assert pipe.score(X, y) > 0.7
    pipe.set_params(model__n_trials=2)
    assert pipe.named_steps["model"].n_trials == 2


def test_cross_val_score(table):
    X, y = table
    scores = cross_val_score(AutoFuseClassifier(**FAST_CLF), X, y, cv=3)
    assert scores.shape == (3,) and np.isfinite(scores).all() and scores.mean() > 0.6
    Xn = X[["a", "b"]].to_numpy()
    scores = cross_val_score(AutoFuseRegressor(**FAST_REG), Xn, 3 * Xn[:, 0] + 1, cv=3)
    assert np.isfinite(scores).all() and scores.mean() > 0.9  # r2


# ----------------------------------------------------------------- errors before fitting

@pytest.fixture
def no_fit(monkeypatch):
    """Fails the test if autofuse.fit is reached."""
    def refuse(*args, **kwargs):
        raise AssertionError("autofuse.fit was called")

    monkeypatch.setattr(_api, "fit", refuse)


X_OK = np.arange(40.0).reshape(20, 2)
Y_LABELS = np.array(["a", "b"] * 10)


@pytest.mark.parametrize("estimator, X, y, match", [
    (AutoFuseClassifier(), sp.csr_matrix(X_OK), Y_LABELS, "does not accept sparse input"),
    (AutoFuseRegressor(), sp.csr_array(X_OK), np.arange(20.0), "does not accept sparse input"),
    (AutoFuseClassifier(), X_OK[:, 0], Y_LABELS, "Expected 2D array"),
    (AutoFuseClassifier(), X_OK, None, "requires y to be passed"),
    (AutoFuseClassifier(), X_OK, Y_LABELS[:-1], "inconsistent numbers of samples"),
    (AutoFuseClassifier(), X_OK, np.linspace(0, 1, 20), "Unknown label type: continuous"),
    (AutoFuseClassifier(), X_OK, np.r_[np.nan, np.ones(19)], "Input y contains NaN"),
    (AutoFuseClassifier(), X_OK, np.r_[None, Y_LABELS[1:]], "1 missing label.*row 0"),
    (AutoFuseClassifier(), X_OK, np.c_[Y_LABELS, Y_LABELS], "y should be a 1d array"),
    (AutoFuseRegressor(), X_OK, Y_LABELS, "needs a numeric target"),
    (AutoFuseRegressor(), X_OK, np.r_[np.inf, np.ones(19)], "Input y contains infinity"),
    (AutoFuseRegressor(), X_OK[:0], np.arange(0.0), "0 sample"),
    (AutoFuseRegressor(), X_OK + 1j, np.arange(20.0), "Complex data not supported"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input_is_a_value_error_before_fitting(no_fit, estimator, X, y, match):
    with pytest.raises(ValueError, match=match):
        estimator.fit(X, y)


def test_bad_parameters_are_value_errors_before_any_trial(table):
    X, y = table
    for params, match in [({"time_limit": -1}, "time_limit"), ({"n_jobs": 0}, "n_jobs"),
                          ({"learners": ["nope"]}, "unknown learner"),
                          ({"metric": "nope"}, "unknown metric"), ({"cv": 40}, "lower cv")]:
        with pytest.raises(ValueError, match=match):
            AutoFuseClassifier(**{**FAST_CLF, **params}).fit(X, y)


def test_unfitted_estimators_raise_not_fitted():
    X = pd.DataFrame({"a": [1.0]})
    for method in ("predict", "predict_proba"):
        with pytest.raises(NotFittedError):
            getattr(AutoFuseClassifier(), method)(X)
    assert not hasattr(AutoFuseRegressor(), "predict_proba")


def test_positional_columns_when_names_do_not_apply(table):
    X, y = table
    Xn = X[["a", "b"]]
    reg = AutoFuseRegressor(**FAST_REG).fit(Xn.to_numpy(), Xn["a"] * 2)
    with pytest.warns(UserWarning, match="fitted without feature names"):
        from_frame = reg.predict(Xn.set_axis(["p", "q"], axis=1))
    np.testing.assert_allclose(from_frame, reg.predict(Xn.to_numpy()))
    reg.fit(Xn, Xn["a"] * 2)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_ints = reg.predict(Xn.set_axis([0, 1], axis=1))
    np.testing.assert_allclose(from_ints, reg.predict(Xn))
