"""Fusion through the public API: every built-in combiner on each task, options reaching
them from fit and the estimators, honest scores, fusing a kept library again, pickling."""

from __future__ import annotations

import numpy as np
import pytest

import autofuse
from autofuse import AutoFuseClassifier, AutoFuseRegressor
from autofuse.testing import example_data

from _checks import check_predictions

TASKS = ("binary", "multiclass", "regression")
LEARNERS = {"binary": ["linear", "knn", "naive_bayes", "extra_trees"],
            "multiclass": ["linear", "knn", "naive_bayes", "extra_trees"],
            "regression": ["linear", "knn", "extra_trees"]}
#: Each built-in combiner with options that make it do something on a small library.
COMBINERS = {"best": {}, "average": {}, "caruana": {}, "stacking": {},
             "prune": {"max_members": 2}, "auto": {}}


@pytest.fixture(scope="module", params=TASKS)
def kept(request, tmp_path_factory):
    """A short run whose library is kept (SQLite storage), and its table."""
    task = request.param
    X, y = example_data(task)
    db = tmp_path_factory.mktemp(task) / "run.db"
    model = autofuse.fit(X, y, task=task, n_trials=10, cv=3, learners=LEARNERS[task],
                         storage=f"sqlite:///{db}", random_state=0, verbose=0)
    return task, X, y, model


def _fusion_rows(model):
    board = model.leaderboard()
    return board[board["kind"] == "combiner"]


@pytest.mark.parametrize("name", list(COMBINERS))
def test_every_combiner_fuses_the_kept_library(kept, name, tmp_path):
    task, X, y, model = kept
    fused = model.fuse(name, **COMBINERS[name])
    assert fused is not model and fused.study_ is model.study_
    board = fused.leaderboard()
    blend = board.iloc[0]
    assert blend["model"] == "blend" and blend["kind"] == "blend"
    expected = fused.combiner_ if name == "auto" else name
    assert blend["learner"] == expected
    rows = _fusion_rows(fused)
    assert set(rows["learner"]) >= {expected}
    assert np.isfinite(fused.outer_score_) and np.isfinite(fused.cv_score_)
    assert blend["outer_score"] == pytest.approx(fused.outer_score_)
    assert blend["members"] == len(fused.fusion_.uses) >= 1
    assert blend["bytes"] > 0 and blend["predict_seconds_per_1000"] > 0
    check_predictions(fused, task, X)
    # The fusion pickles inside the model and predicts the same after autofuse.load.
    path = tmp_path / "model.af"
    fused.save(str(path))
    again = autofuse.load(str(path))
    np.testing.assert_allclose(again.predict(X) if task == "regression" else
                               again.predict_proba(X),
                               fused.predict(X) if task == "regression" else
                               fused.predict_proba(X))
    assert again.combiner_ == fused.combiner_


def test_best_is_the_best_single_model(kept):
    task, X, y, model = kept
    best = model.fuse("best")
    assert list(best.fusion_.uses) == [best.best_single_]
    single = best.predict_best_single(X)
    got = best.predict(X) if task == "regression" else best.predict_proba(X)
    np.testing.assert_allclose(got, single)


def _chosen_and_others(model):
    rows = _fusion_rows(model)
    done = rows[rows["status"] == "done"]
    return done[done["learner"] == model.combiner_].iloc[0], done[
        done["learner"] != model.combiner_]


def test_auto_keeps_caruana_unless_another_is_better_out_of_sample(kept):
    task, X, y, model = kept
    auto = model.fuse("auto")
    rows = _fusion_rows(auto)
    assert list(rows["learner"]) == ["caruana", "best", "average", "stacking"]
    chosen, others = _chosen_and_others(auto)
    assert chosen["reason"].startswith("chosen by auto")
    assert all(r.startswith("not chosen by auto") for r in others["reason"])
    caruana = rows[rows["learner"] == "caruana"].iloc[0]
    if auto.combiner_ != "caruana":  # only for an outer score better than caruana's
        assert auto._metric.better(chosen["outer_score"], caruana["outer_score"])


def test_auto_without_a_preference_takes_the_best_outer_score(kept):
    task, X, y, model = kept
    auto = model.fuse("auto", prefer=None, candidates=["best", "average", "caruana"])
    chosen, others = _chosen_and_others(auto)
    scores = list(others["outer_score"]) + [chosen["outer_score"]]
    best = max(scores) if auto._metric.greater_is_better else min(scores)
    assert chosen["outer_score"] == best and "best outer" in chosen["reason"]


def test_clearly_better_needs_more_than_the_noise_of_the_outer_folds():
    from autofuse._scoring import run_metric
    from autofuse.combiners import LibraryView
    from autofuse.combiners._nested import Assessment, clearly_better

    view = LibraryView.from_arrays(np.zeros((1, 10, 1)), np.zeros(10),
                                   run_metric("rmse", "regression"))
    a = Assessment("a", outer=1.0, outer_by_fold=np.array([1.0, 1.1, 0.9, 1.0, 1.0]))
    steady = Assessment("b", outer=1.2, outer_by_fold=np.array([1.2, 1.3, 1.1, 1.2, 1.2]))
    noisy = Assessment("c", outer=1.1, outer_by_fold=np.array([0.5, 1.8, 0.6, 1.6, 1.0]))
    assert clearly_better(view, a, steady) and not clearly_better(view, steady, a)
    assert not clearly_better(view, a, noisy)  # better on average, within the noise


def test_fusing_again_leaves_the_model_alone(kept):
    task, X, y, model = kept
    before = model.leaderboard()
    model.fuse("best")
    assert model.leaderboard().equals(before)


def test_unknown_combiner_or_option_for_fuse(kept):
    _, _, _, model = kept
    with pytest.raises(ValueError, match="unknown combiner 'nope'"):
        model.fuse("nope")
    with pytest.raises(ValueError, match="combiner 'average' has no option 'kk'; it takes k, max_k"):
        model.fuse("average", kk=2)
    with pytest.raises(ValueError, match="max_members"):
        model.fuse("prune", max_members=0)


def test_options_reach_the_combiner_from_fit():
    X, y = example_data("binary")
    model = autofuse.fit(X, y, n_trials=6, cv=3, learners=LEARNERS["binary"],
                         combiner="average", combiner_options={"k": 2}, random_state=0,
                         verbose=0)
    assert model.combiner_ == "average" and model.fusion_.summary()["k"] == 2
    assert len(model.weights_) == 2 and np.allclose(model.weights_, 0.5)


def test_options_reach_the_combiner_from_the_estimators():
    X, y = example_data("multiclass")
    clf = AutoFuseClassifier(n_trials=6, cv=3, learners=LEARNERS["multiclass"],
                             combiner="prune", combiner_options={"max_members": 1},
                             random_state=0).fit(X, y)
    assert clf.model_.combiner_ == "prune" and len(clf.model_.fusion_.uses) == 1
    X, y = example_data("regression")
    reg = AutoFuseRegressor(n_trials=5, cv=3, learners=LEARNERS["regression"],
                            combiner="stacking", combiner_options={"level2": "gbm"},
                            random_state=0).fit(X, y)
    assert reg.model_.combiner_ == "stacking"
    assert reg.model_.fusion_.summary()["level2"] == "gbm"


def test_bad_combiner_options_are_refused_before_the_search(tmp_path):
    X, y = example_data("binary")
    db = tmp_path / "run.db"
    for options, message in (({"nope": 1}, "has no option 'nope'"),
                             ({"k": 0}, "k must be a positive integer"),
                             ("k=2", "combiner_options must be a dict")):
        with pytest.raises(ValueError, match=message):
            autofuse.fit(X, y, n_trials=50, combiner="average", combiner_options=options,
                         storage=f"sqlite:///{db}", verbose=0)
    import optuna

    assert not optuna.get_all_study_summaries(f"sqlite:///{db}") or all(
        s.n_trials == 0 for s in optuna.get_all_study_summaries(f"sqlite:///{db}"))


def test_prune_without_a_budget_is_refused():
    X, y = example_data("binary")
    with pytest.raises(ValueError, match="prune"):
        autofuse.fit(X, y, n_trials=5, combiner="prune", verbose=0)


def test_a_library_not_kept_cannot_be_fused_again():
    X, y = example_data("binary")
    model = autofuse.fit(X, y, n_trials=3, cv=3, learners=["linear"], random_state=0,
                         verbose=0)
    with pytest.raises(ValueError, match="library was not kept.*storage='sqlite:///run.db'"):
        model.fuse("best")


def test_the_default_is_auto_and_reports_every_combiner_it_tried(kept):
    task, X, y, model = kept
    rows = _fusion_rows(model)
    assert list(rows["learner"]) == ["caruana", "best", "average", "stacking"]
    assert (rows["status"] == "done").all() and np.isfinite(rows["outer_score"]).all()
    row = rows[rows["learner"] == model.combiner_].iloc[0]
    assert np.isfinite(row["outer_score"]) and np.isfinite(row[model.metric_])
    assert row["outer_score"] == pytest.approx(model.outer_score_)
    assert row[model.metric_] == pytest.approx(model.cv_score_)
