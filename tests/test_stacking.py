"""The ``stacking`` combiner: a level-2 model on the members' out-of-fold predictions."""

from __future__ import annotations

import json
import pickle
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pytest

from _problems import classification, regression
from autofuse._scoring import run_metric
from autofuse.combiners._nested import Assessment, assess, predict_view
from autofuse.combiners._stacking import FLOOR, Stacking, StackedFusion
from autofuse.combiners._view import LibraryView
from autofuse.testing import _constant_prediction, _library, _one_thread, example_data

TASKS = ("binary", "multiclass", "regression")
KINDS = {"linear": {}, "gbm": {"level2": "gbm"}, "levels2": {"levels": 2}}


@lru_cache(maxsize=None)
def library(task: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, Any, list]:
    """Out-of-fold predictions of six real models on the example table (as
    ``autofuse.testing._library`` makes them), with that table and its folds."""
    from autofuse._cv import make_folds
    from autofuse._data import describe

    with _one_thread():
        P, target, data = _library(task, 0)
    frame, again, _ = describe(*example_data(task, random_state=0), task=task)
    assert np.array_equal(again, target)
    return P, target, frame, data, make_folds(target, data, 3, random_state=0)


def view_of(task: str, metric: str | None = None, **kwargs: Any) -> LibraryView:
    P, target, frame, data, folds = library(task)
    return LibraryView.from_arrays(P, target, run_metric(metric, task), folds=folds,
                                   frame=frame, data=data, random_state=0, **kwargs)


def assessed(view: LibraryView, **options: Any) -> Assessment:
    """``assess`` of a Stacking with ``options``, checked to have worked."""
    with _one_thread():
        result = assess("stacking", Stacking(**options), view)
    assert result.ok, result.error
    assert np.isfinite(result.in_sample) and np.isfinite(result.outer)
    return result


def predicted(fusion: Any, view: LibraryView) -> np.ndarray:
    return predict_view(fusion, view)


# ----------------------------------------------------------------- every task and kind

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("task", TASKS)
def test_fuses_every_task(task: str, kind: str) -> None:
    """Both scores are finite, predictions are probabilities (or values), the fusion uses
    candidates only, its shares are non-negative and sum to 1, its summary is JSON, and it
    pickles into one that predicts the same."""
    view = view_of(task)
    result = assessed(view, **KINDS[kind])
    fusion = result.fusion
    assert isinstance(fusion, StackedFusion)
    out = predicted(fusion, view)
    if task != "regression":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-9)
        assert out.min() >= 0.0 and out.max() <= 1.0
    assert fusion.uses and set(fusion.uses) <= set(view.trials)
    shares = fusion.weights
    assert set(shares) == set(fusion.uses)
    assert min(shares.values()) > 0 and sum(shares.values()) == pytest.approx(1.0)
    summary = fusion.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["levels"] == (2 if kind == "levels2" else 1)
    assert summary["members"] == len(fusion.uses) and not summary["passthrough"]
    again = pickle.loads(pickle.dumps(fusion))
    np.testing.assert_array_equal(predicted(again, view), out)


@pytest.mark.parametrize("task", TASKS)
def test_linear_coefficients_are_non_negative_and_only_used_members_are_kept(task: str
                                                                               ) -> None:
    """The linear model's coefficients are >= 0; exactly the members with a positive one
    are in ``uses``, and its shares are its normalised coefficients."""
    view = view_of(task)
    fusion = assessed(view).fusion
    coefficients = {int(t): w for t, w in fusion.summary()["coefficients"].items()}
    assert all(w > 0 for w in coefficients.values())
    assert set(coefficients) == set(fusion.uses)
    total = sum(coefficients.values())
    assert fusion.weights == pytest.approx({t: w / total for t, w in coefficients.items()})


def test_a_member_that_does_not_help_gets_weight_zero_and_is_not_used() -> None:
    """A member predicting the reverse of the best one is left out, and the fusion
    predicts without its predictions."""
    P, target, *_ = library("binary")
    reverse = P[:1, :, ::-1]
    view = LibraryView.from_arrays(np.concatenate([P, reverse]), target,
                                   run_metric(None, "binary"), random_state=0)
    fusion = Stacking().fuse(view)
    assert len(P) not in fusion.uses
    outputs = view.outputs(fusion.uses)
    assert fusion.predict(outputs).shape == (len(target), 2)


def test_linear_binary_pool_is_the_logistic_regression_on_log_odds() -> None:
    """One member and no penalty: the pool is a logistic regression on the member's
    log-odds, as scikit-learn fits it."""
    from sklearn.linear_model import LogisticRegression

    P, y = classification(np.random.default_rng(0), n_models=1, n_rows=400, n_classes=2)
    view = LibraryView.from_arrays(P, y, run_metric("log_loss", "binary"))
    fusion = Stacking(l2=0.0).fuse(view)
    logit = np.log(P[0, :, 1] / P[0, :, 0]).astype(np.float64)[:, None]
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(logit, y)
    layer = fusion.layer[0]
    assert layer.coef[0] == pytest.approx(reference.coef_[0, 0], rel=1e-4)
    assert layer.intercept[1] == pytest.approx(reference.intercept_[0], rel=1e-4, abs=1e-5)
    np.testing.assert_allclose(fusion.predict(view.outputs(fusion.uses)),
                               reference.predict_proba(logit), atol=1e-5)


def test_linear_regression_is_non_negative_least_squares_with_an_intercept() -> None:
    """Targets that are a non-negative combination of two members plus a constant are
    recovered exactly; a member pointing the wrong way gets 0."""
    rng = np.random.default_rng(1)
    P = rng.normal(size=(3, 200, 1))
    y = 2.0 * P[0, :, 0] + 0.5 * P[1, :, 0] + 3.0
    P[2] = -P[0] + rng.normal(scale=0.1, size=(200, 1))
    view = LibraryView.from_arrays(P, y, run_metric(None, "regression"))
    fusion = Stacking().fuse(view)
    assert fusion.summary()["coefficients"] == pytest.approx({"0": 2.0, "1": 0.5}, rel=1e-4)
    assert fusion.summary()["intercept"] == pytest.approx([3.0], rel=1e-4)
    assert fusion.uses == (0, 1)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_members_that_carry_nothing_leave_one_member_and_the_prior(task: str) -> None:
    """Members that predict a constant carry nothing: the linear model still reads one
    (so it knows the rows it predicts), at a negligible coefficient (least squares gives
    0 to all, and the best is kept at ``FLOOR``), and predicts the prior."""
    rng = np.random.default_rng(2)
    n = 300
    if task == "regression":
        y = rng.normal(size=n)
        P = np.broadcast_to(np.array([0.5, -1.0, 2.0])[:, None, None], (3, n, 1))
    else:
        y = rng.integers(0, 3, n)
        P = np.broadcast_to(rng.dirichlet(np.ones(3), size=3)[:, None], (3, n, 3))
    view = LibraryView.from_arrays(P, y, run_metric(None, task))
    fusion = Stacking().fuse(view)
    coefficients = fusion.summary()["coefficients"]
    assert len(fusion.uses) == 1 and 0 < sum(coefficients.values()) < 1e-3
    if task == "regression":
        assert coefficients == {str(view.trials[view.order()[0]]): FLOOR}
    prior = y.mean() if task == "regression" else np.bincount(y) / n
    np.testing.assert_allclose(predicted(fusion, view), np.tile(prior, (n, 1)), atol=1e-3)


def test_duplicate_members_share_a_coefficient() -> None:
    """A member repeated: the ridge penalty splits its coefficient evenly between the
    copies, and the pool predicts about as with one copy (the split copy pays half the
    penalty, so not exactly)."""
    P, target, *_ = library("binary")
    once = LibraryView.from_arrays(P, target, run_metric(None, "binary"), random_state=0)
    twice = LibraryView.from_arrays(np.concatenate([P, P[:1]]), target,
                                    run_metric(None, "binary"), random_state=0)
    one, two = Stacking().fuse(once), Stacking().fuse(twice)
    assert 0 in one.uses
    w = two.summary()["coefficients"]
    assert w["0"] == pytest.approx(w[str(len(P))], rel=1e-3)
    np.testing.assert_allclose(predicted(two, twice), predicted(one, once), atol=5e-3)


@pytest.mark.parametrize("kind", ["linear", "gbm"])
def test_multi_output_regression(kind: str) -> None:
    P, y = regression(np.random.default_rng(3), n_models=4, n_rows=150, n_outputs=2)
    view = LibraryView.from_arrays(P, y, run_metric(None, "regression"), random_state=0)
    result = assessed(view, **KINDS[kind])
    assert predicted(result.fusion, view).shape == (150, 2)


def test_max_inputs_keeps_the_best_candidates() -> None:
    view = view_of("multiclass")
    best = {view.trials[i] for i in view.order()[:2]}
    for options in ({"max_inputs": 2}, {"max_inputs": 2, "level2": "gbm"}):
        fusion = Stacking(**options).fuse(view)
        assert set(fusion.uses) <= best and fusion.summary()["inputs"] == 2


def test_same_seed_same_fusion_for_gbm() -> None:
    view = view_of("binary")
    first, second = (Stacking(levels=2).fuse(view) for _ in range(2))
    np.testing.assert_array_equal(predicted(first, view), predicted(second, view))


# ----------------------------------------------------------------- passthrough

@pytest.mark.parametrize("task", ["binary", "regression"])
def test_passthrough_reads_the_table(task: str) -> None:
    """The gbm sees the table's columns (numbers, booleans, text with missing values), so
    the fusion needs the table; pickled, it predicts the same."""
    view = view_of(task)
    result = assessed(view, level2="gbm", passthrough=True)
    fusion = result.fusion
    assert fusion.needs_table
    summary = fusion.summary()
    assert summary["passthrough"] and summary["table_columns"] == view.frame().shape[1]
    out = predicted(fusion, view)
    again = pickle.loads(pickle.dumps(fusion))
    np.testing.assert_array_equal(predicted(again, view), out)


def test_passthrough_with_two_levels() -> None:
    view = view_of("multiclass")
    fusion = assessed(view, levels=2, passthrough=True).fusion
    assert fusion.summary()["level2"] == "linear+gbm"
    assert fusion.needs_table == any(layer.kind == "gbm" for layer in fusion.layer)


def test_passthrough_takes_unseen_and_missing_categories() -> None:
    view = view_of("binary")
    fusion = Stacking(level2="gbm", passthrough=True).fuse(view)
    X = view.frame().copy()
    X["group"] = ["never seen"] * 10 + [None] * (len(X) - 10)
    out = fusion.predict(view.outputs(fusion.uses), X)
    assert np.all(np.isfinite(out)) and np.allclose(out.sum(axis=1), 1.0)


def test_passthrough_drops_a_text_column_with_too_many_values() -> None:
    P, target, frame, data, folds = library("binary")
    frame = frame.assign(code=[f"c{i % 300}" for i in range(len(frame))])
    view = LibraryView.from_arrays(P, target, run_metric(None, "binary"), folds=folds,
                                   frame=frame, random_state=0)
    fusion = Stacking(level2="gbm", passthrough=True).fuse(view)
    assert fusion.summary()["table_columns"] == frame.shape[1] - 1
    predicted(fusion, view)


# ----------------------------------------------------------------- leakage

@lru_cache(maxsize=None)
def permuted(task: str, seed: int = 0) -> tuple[LibraryView, float]:
    """Real learners cross-fitted on the example table with its labels permuted (nothing
    to learn), as a view with the table; and a constant prediction's out-of-fold score."""
    from autofuse._cv import cross_fit, make_folds
    from autofuse._data import describe
    from autofuse.learners import BUILTIN_LEARNERS

    X, y = example_data(task, n_rows=400, random_state=seed)
    frame, target, data = describe(X, y, task=task)
    target = np.random.default_rng(seed + 1000).permutation(target)
    folds = make_folds(target, data, 5, random_state=seed)
    by_name = {spec.name: spec for spec in BUILTIN_LEARNERS}
    configs = [("knn", {"n_neighbors": 5}), ("extra_trees", {"n_estimators": 30}),
               ("hist_gradient_boosting", {"max_iter": 30}),
               ("linear", {"C": 10.0, "alpha": 0.1})]
    with _one_thread():
        P = np.stack([cross_fit(by_name[name], params, frame, target, data, folds,
                                seed=seed).oof for name, params in configs])
    metric = run_metric("roc_auc" if task == "binary" else None, task)
    view = LibraryView.from_arrays(P, target, metric, folds=folds, frame=frame, data=data,
                                   random_state=seed)
    return view, metric.score(_constant_prediction(target, data, folds), target)


def test_outer_score_is_at_chance_on_permuted_labels_binary() -> None:
    """Nothing to learn: the gbm with the table passed through fits the noise in sample
    (AUC far above 0.5), but every stack's outer AUC is 0.5 within noise (the AUC of a
    random ranking of these rows has a standard deviation of about 0.03)."""
    view, _ = permuted("binary")
    n1 = int(view.target.sum())
    n0 = len(view.target) - n1
    sd = np.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1))
    for options in ({"level2": "gbm", "passthrough": True}, {"levels": 2, "passthrough": True},
                    {}):
        result = assessed(view, **options)
        assert abs(result.outer - 0.5) < 3.5 * sd, (options, result.outer)
        if options.get("level2") == "gbm":
            assert result.in_sample > 0.5 + 6 * sd, (options, result.in_sample)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_outer_score_is_no_better_than_a_constant_on_permuted_labels(task: str) -> None:
    """Nothing to learn: in sample the stack beats a constant prediction (log loss, rmse),
    out of sample it does not beat it by more than noise."""
    view, constant = permuted(task)
    result = assessed(view, level2="gbm", passthrough=True)
    assert result.in_sample < 0.95 * constant, (result.in_sample, constant)
    assert result.outer > 0.98 * constant, (result.outer, constant)


# ----------------------------------------------------------------- options

@pytest.mark.parametrize(("options", "named"), [
    ({"level2": "ridge"}, "level2"),
    ({"level2": None}, "level2"),
    ({"passthrough": "yes"}, "passthrough"),
    ({"passthrough": True}, "passthrough"),  # the linear level-2 model sees no table
    ({"levels": 3}, "levels"),
    ({"levels": True}, "levels"),
    ({"levels": 1.0}, "levels"),
    ({"max_inputs": 0}, "max_inputs"),
    ({"max_inputs": 2.5}, "max_inputs"),
    ({"l2": -1.0}, "l2"),
    ({"l2": float("nan")}, "l2"),
])
def test_bad_options_raise_value_error_naming_the_option(options: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Stacking(**options)


def test_defaults_and_options_are_stored() -> None:
    default = Stacking()
    assert (default.level2, default.passthrough, default.levels, default.max_inputs) == (
        "linear", False, 1, 25)
    chosen = Stacking(level2="gbm", passthrough=True, levels=2, max_inputs=3, l2=0.5)
    assert (chosen.level2, chosen.passthrough, chosen.levels, chosen.max_inputs,
            chosen.l2) == ("gbm", True, 2, 3, 0.5)
