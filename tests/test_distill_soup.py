"""Distillation into one student and model soups, through the public API: on each task,
honest scores, the student's targets, greedy soups against their best ingredient, linear
soups against logit averaging, the error without ingredients, the budget, pickling."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

import autofuse
from autofuse import plugins
from autofuse._data import conform
from autofuse._library import ModelLibrary
from autofuse.combiners import Combiner, CombinerSpec, WeightedFusion
from autofuse.learners import LearnerSpec, preprocessor
from autofuse.testing import example_data

from _checks import check_predictions

TASKS = ("binary", "multiclass", "regression")
LEARNERS = ["linear", "hist_gradient_boosting", "knn", "mlp_soup"]


@pytest.fixture(scope="module", params=TASKS)
def kept(request, tmp_path_factory):
    task = request.param
    X, y = example_data(task)
    db = tmp_path_factory.mktemp(task) / "run.db"
    model = autofuse.fit(X, y, task=task, n_trials=14, time_limit=None, cv=3,
                         learners=LEARNERS, storage=f"sqlite:///{db}", random_state=0,
                         n_jobs=2, verbose=0)
    return task, X, y, model


def _own_model_row(fused):
    blend = fused.leaderboard().iloc[0]
    assert blend["kind"] == "blend" and blend["members"] == 0
    assert fused.fusion_.uses == () and len(fused.weights_) == 0
    assert blend["bytes"] > 0 and blend["predict_seconds_per_1000"] > 0
    seconds = blend["params"]["predict_seconds_per_row"]
    assert set(seconds) == {"1", "10000"} and min(seconds.values()) > 0
    assert np.isfinite(fused.outer_score_) and np.isfinite(fused.cv_score_)
    assert blend["outer_score"] == pytest.approx(fused.outer_score_)
    return blend["params"]


def test_distill_on_each_task(kept, tmp_path):
    task, X, y, model = kept
    fused = model.fuse("distill")
    assert fused.combiner_ == "distill"
    params = _own_model_row(fused)
    assert params["student"] == "hist_gradient_boosting"
    # Beside the teacher's outer score and the same learner trained on the labels alone.
    assert np.isfinite(params["teacher"]["outer_score"]) and params["teacher"]["members"] >= 1
    board = fused.leaderboard()
    alone = params["labels_alone"]
    row = board[(board["kind"] == "trial") & (board["trial"] == alone["trial"])].iloc[0]
    assert row["learner"] == "hist_gradient_boosting"
    assert alone["score"] == pytest.approx(row[fused.metric_], rel=1e-5)
    assert params["params_from"] == f"trial {alone['trial']}"
    assert params["augmented_rows"] == len(X)  # one synthetic row per training row
    check_predictions(fused, task, X)
    # Saved and loaded, it predicts the same.
    path = tmp_path / "student.autofuse"
    fused.save(str(path))
    again = autofuse.load(str(path))
    np.testing.assert_allclose(_raw(again, task, X), _raw(fused, task, X))


def test_soup_on_each_task(kept, tmp_path):
    task, X, y, model = kept
    fused = model.fuse("soup")
    assert fused.combiner_ == "soup"
    params = _own_model_row(fused)
    assert len(params["ingredients"]) >= 1 and params["candidates"] >= 2
    # Greedy: never below its best ingredient out of fold (it starts from it).
    better = fused.metric_ not in ("log_loss", "rmse", "mse", "mae")
    best = params["best_ingredient"]["score"]
    assert params["soup_score"] >= best if better else params["soup_score"] <= best
    assert params["ingredients"][0] == params["best_ingredient"]["trial"]
    check_predictions(fused, task, X)
    path = tmp_path / "soup.autofuse"
    fused.save(str(path))
    np.testing.assert_allclose(_raw(autofuse.load(str(path)), task, X), _raw(fused, task, X))


def _raw(model, task, X):
    return model.predict(X) if task == "regression" else model.predict_proba(X)


class _Pick(Combiner):
    def __init__(self, trial):
        self.trial = trial

    def fuse(self, view):
        return WeightedFusion({self.trial: 1.0})


def _fold_models(model, trial):
    spec = CombinerSpec(f"pick{trial}", lambda metric, seed, threads: _Pick(trial))
    return model.fuse(spec).members[0].models


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_linear_soup_is_logit_averaging(task, tmp_path):
    X, y = example_data(task)
    model = autofuse.fit(X, y, task=task, n_trials=5, time_limit=None, cv=3,
                         learners=["linear"], storage=f"sqlite:///{tmp_path / 'run.db'}",
                         random_state=0, n_jobs=1, verbose=0)
    fused = model.fuse("soup", method="uniform")
    soups = fused.fusion_.models
    ingredients = fused.leaderboard().iloc[0]["params"]["ingredients"]
    assert len(ingredients) == 5 and len(soups) == 3
    folds = [_fold_models(model, t) for t in ingredients]
    frame = conform(X, model._data)
    for k, soup in enumerate(soups):
        method = "predict" if task == "regression" else "decision_function"
        expected = np.mean([getattr(f[k], method)(frame) for f in folds], axis=0)
        np.testing.assert_allclose(getattr(soup, method)(frame), expected, rtol=0, atol=1e-10)
    # Merged into one model: its logits are the mean of the fold soups', exactly.
    merged = model.fuse("soup", method="uniform", merge=True)
    (one,) = merged.fusion_.models
    method = "predict" if task == "regression" else "decision_function"
    expected = np.mean([getattr(s, method)(frame) for s in soups], axis=0)
    np.testing.assert_allclose(getattr(one, method)(frame), expected, rtol=0, atol=1e-10)
    check_predictions(merged, task, X)


def test_no_ingredients_is_a_clear_error(tmp_path):
    X, y = example_data("binary")
    model = autofuse.fit(X, y, n_trials=4, time_limit=None, cv=3, learners=["knn", "naive_bayes"],
                         storage=f"sqlite:///{tmp_path / 'run.db'}", random_state=0, n_jobs=1,
                         verbose=0)
    with pytest.raises(ValueError, match="no compatible ingredients") as caught:
        model.fuse("soup")
    assert "mlp_soup" in str(caught.value) and "linear" in str(caught.value)


# ----------------------------------------------------------------- the student's targets

def _one_nn_build(params, data):
    return Pipeline([("prepare", preprocessor(data, encode="onehot", scale=True)),
                     ("model", KNeighborsClassifier(n_neighbors=1))])


def _tree_build(params, data):
    return Pipeline([("prepare", preprocessor(data, encode="ordinal", scale=False)),
                     ("model", DecisionTreeClassifier(min_samples_leaf=1))])


def _no_space(trial, data):
    return {}


ONE_NN = LearnerSpec("one_nn", frozenset({"binary"}), _no_space, _one_nn_build,
                     portfolio=({},), cost=0.1)
TREE = LearnerSpec("memorizer", frozenset({"binary"}), _no_space, _tree_build, portfolio=({},),
                   cost=0.1)


class _TargetPlugin:
    @staticmethod
    @autofuse.hookimpl
    def autofuse_register_learners(register):
        register(ONE_NN)
        register(TREE)


@pytest.mark.parametrize("augment", [0, 1.0])
@pytest.mark.parametrize("label_weight", [0.0, 0.5])
def test_the_student_learns_out_of_fold_targets_never_in_sample_ones(augment, label_weight,
                                                                     tmp_path):
    # The member is a 1-nearest-neighbour model: in sample it predicts every training row's
    # own label, out of fold its neighbour's. The student is a fully grown tree, which
    # reproduces the targets it was fitted on: its predictions of the training rows are
    # those targets, label_weight x the label + the rest x the teacher's out-of-fold
    # prediction (in-sample targets would be the labels alone).
    name = plugins.register(_TargetPlugin(), name="targets")
    try:
        X, y = example_data("binary")
        model = autofuse.fit(X, y, n_trials=1, time_limit=None, cv=3, learners=["one_nn"],
                             storage=f"sqlite:///{tmp_path / 'run.db'}", random_state=0,
                             n_jobs=1, verbose=0)
        codes = _codes(model, y)
        oof_accuracy = np.mean(np.argmax(_oof(model), axis=1) == codes)
        assert 0.6 < oof_accuracy < 0.99
        fused = model.fuse("distill", teacher="best", student="memorizer", augment=augment,
                           label_weight=label_weight)
        expected = label_weight * np.eye(2)[codes] + (1 - label_weight) * _oof(model)
        np.testing.assert_allclose(fused.predict_proba(X), expected, atol=1e-9)
        if label_weight == 0:
            assert np.mean(fused.predict(X) == y) == pytest.approx(oof_accuracy)  # not 1.0
    finally:
        plugins.unregister(name)


def _oof(model):
    """The library's out-of-fold predictions of its one trial, rows in the table's order."""
    trial = model.best_single_
    library = ModelLibrary(model._library_dir)
    library.restore_trial(model.study_.trials[trial])
    return library.entries[trial].oof.astype(float)


def _codes(model, y):
    return np.searchsorted(model.classes_, y)


# ----------------------------------------------------------------- from fit, in the budget

@pytest.mark.parametrize("combiner", ["distill", "soup"])
def test_from_fit_within_the_budget(combiner):
    X, y = example_data("binary")
    start = time.perf_counter()
    model = autofuse.fit(X, y, time_limit=20, combiner=combiner, cv=3,
                         learners=["linear", "hist_gradient_boosting", "knn"], random_state=0,
                         verbose=0)
    wall = time.perf_counter() - start
    assert wall <= 1.05 * 20, wall
    assert model.combiner_ == combiner, model.leaderboard().iloc[0]["reason"]
    assert model.fusion_.uses == ()
    check_predictions(model, "binary", X)


def test_bad_distill_options_are_refused_before_the_search():
    X, y = example_data("binary")
    for options, message in (({"student": "nope"}, "unknown student"),
                             ({"teacher": "soup"}, "teacher must name"),
                             ({"augment": -1}, "augment"),
                             ({"label_weight": 2}, "label_weight")):
        with pytest.raises(ValueError, match=message):
            autofuse.fit(X, y, n_trials=1, combiner="distill", combiner_options=options,
                         verbose=0)


def test_students_are_fitted_in_killable_workers_within_the_deadline(tmp_path):
    from autofuse._workers import FitFailed

    from _faults import FaultPlugin

    name = plugins.register(FaultPlugin(), name="faults")
    try:
        X, y = example_data("regression")
        model = autofuse.fit(X, y, task="regression", n_trials=4, time_limit=None, cv=3,
                             learners=["linear", "knn"], random_state=0, n_jobs=1, verbose=0,
                             storage=f"sqlite:///{tmp_path / 'run.db'}")
        with pytest.raises(FitFailed, match="the worker process died"):
            model.fuse("distill", student="dies")
        start = time.perf_counter()
        with pytest.raises(FitFailed, match="stopped at the time limit"):
            model.fuse("distill", student="hangs", time_limit=5)
        assert time.perf_counter() - start < 5 * 1.05 + 0.5
        # The workers are replaced: the next distillation runs.
        assert model.fuse("distill", augment=0).combiner_ == "distill"
    finally:
        plugins.unregister(name)
