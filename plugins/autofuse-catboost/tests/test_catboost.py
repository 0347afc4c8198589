"""The catboost learner: autofuse's conformance checks, then what this plugin promises
(early stopping, threads, native categorical features, silence and no files
written, the entry point)."""

from __future__ import annotations

import importlib.metadata
import pickle

import numpy as np
import pandas as pd
import pytest

import autofuse_catboost
from autofuse._data import describe
from autofuse.learners._spec import threads_for_trial
from autofuse.testing import check_installed_learner, check_learner
from autofuse_catboost import CATBOOST, CatBoostClassifier, CatBoostRegressor


def _noisy(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two informative columns, three of noise, labels 30% flipped: boosting overfits fast."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"x{i}" for i in range(5)])
    y = (X["x0"] + X["x1"] > 0).to_numpy().astype(int)
    flip = rng.random(n) < 0.3
    return X, np.where(flip, 1 - y, y)


def _nominal(n: int = 800, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """The label is a scattered (non-ordinal) function of a 12-level categorical column,
    10% of labels flipped."""
    rng = np.random.default_rng(seed)
    levels = np.array([f"level{i:02d}" for i in range(12)])
    cat = rng.integers(0, 12, n)
    X = pd.DataFrame({"city": levels[cat], "x0": rng.normal(size=n)})
    y = np.isin(cat, [1, 4, 5, 9, 10]).astype(int)
    return X, np.where(rng.random(n) < 0.1, 1 - y, y)


def test_check_learner():
    check_learner(CATBOOST)


def test_registers_one_spec_and_the_entry_point_resolves_to_the_module():
    registered = []
    autofuse_catboost.autofuse_register_learners(register=registered.append)
    assert [s.name for s in registered] == ["catboost"]
    assert registered[0].tasks == {"binary", "multiclass", "regression"}
    eps = [ep for ep in importlib.metadata.entry_points(group="autofuse") if ep.name == "catboost"]
    assert len(eps) == 1 and eps[0].value == "autofuse_catboost"
    assert eps[0].load() is autofuse_catboost


def test_early_stopping_stops_early():
    X, y = _noisy()
    model = CatBoostClassifier(params={"learning_rate": 0.3}, patience=20, random_state=0)
    model.fit(X, y)
    assert 1 <= model.best_rounds_ < 200
    # Training stopped `patience` rounds after the best, far from max_rounds; the kept
    # model is cut to the best round.
    trained = len(model.model_.get_evals_result()["validation"]["Logloss"])
    assert model.best_rounds_ < trained <= model.best_rounds_ + 20
    assert model.model_.tree_count_ == model.best_rounds_
    refit = CatBoostClassifier(params={"learning_rate": 0.3}, patience=20, refit=True,
                               random_state=0).fit(X, y)
    assert refit.model_.tree_count_ == refit.best_rounds_ == model.best_rounds_


def test_threads_follow_trial_threads():
    X, y = _noisy(200)
    frame, target, data = describe(X, y, task="binary")
    for threads in (1, 2):
        with threads_for_trial(threads):
            pipe = CATBOOST.estimator({}, data, 0)
        assert pipe[-1].n_jobs == threads
        pipe.fit(frame, target)
        assert pipe[-1].model_.get_params()["thread_count"] == threads


def test_native_categorical_splits_are_used():
    X, y = _nominal()
    frame, target, data = describe(X, y, task="binary")
    pipe = CATBOOST.estimator({}, data, 0).fit(frame, target)
    model = pipe[-1]
    assert model.categorical == ["categorical__city"]
    index = list(pipe[0].get_feature_names_out()).index("categorical__city")
    assert model.categorical_indices_ == [index]
    assert model.model_.get_cat_feature_indices() == [index]  # a cat_feature for CatBoost
    importance = model.model_.get_feature_importance()
    assert np.argmax(importance) == index
    # Splits on sets of levels recover the scattered rule (90% is the noise ceiling).
    assert (pipe.predict(frame) == target).mean() > 0.85


def test_classes_missing_from_training_and_tiny_tables():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = np.repeat([0, 2, 3], 40)  # class 1 is absent from this training fold
    model = CatBoostClassifier(random_state=0).fit(X, y)
    assert list(model.classes_) == [0, 2, 3]
    proba = model.predict_proba(X)
    assert proba.shape == (120, 3) and np.allclose(proba.sum(1), 1)
    tiny = CatBoostRegressor(random_state=0).fit(X[:12], rng.normal(size=12))  # no holdout
    assert tiny.predict(X).shape == (120,)
    again = pickle.loads(pickle.dumps(model))
    assert np.allclose(again.predict_proba(X), proba)


def test_silent_and_writes_no_files(capfd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = _nominal(300)
    frame, target, data = describe(X, y, task="binary")
    CATBOOST.estimator({}, data, 0).fit(frame, target)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert list(tmp_path.iterdir()) == []  # no catboost_info/


@pytest.mark.parametrize("config", CATBOOST.portfolio)
def test_portfolio_entries_are_in_the_search_space(config):
    """A portfolio entry only takes effect through the space (autofuse enqueues it as fixed
    values of the suggested parameters), so every key must be a parameter the space samples
    and every value must lie inside its range."""
    import optuna

    from autofuse.search._study import LearnerTrial

    X, y = _nominal(100)
    _, _, data = describe(X, y, task="binary")
    study = optuna.create_study()
    study.enqueue_trial({f"catboost.{k}": v for k, v in config.items()})
    trial = study.ask()
    params = CATBOOST.space(LearnerTrial(trial, "catboost", config), data)
    assert {k: v for k, v in params.items() if v is not None} == config
    for name, value in trial.params.items():
        dist = trial.distributions[name]
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            assert value in dist.choices, name
        else:
            assert dist.low <= value <= dist.high, name


def test_installed_plugin_is_searched_by_a_plain_fit():
    """pip install is all it takes: a fresh interpreter's autofuse.fit(X, y) searches it."""
    check_installed_learner("catboost")
