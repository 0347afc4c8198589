"""Tests of the autofuse-cmaes combiner. Run from the repository root:

    .venv/bin/python -m pytest -q plugins/autofuse-cmaes/tests
"""

from __future__ import annotations

import math
from importlib.metadata import entry_points

import numpy as np
import pytest
from sklearn.base import clone
from threadpoolctl import threadpool_limits

import autofuse
from autofuse._scoring import run_metric
from autofuse.testing import check_combiner, example_data
from autofuse_cmaes import (
    SPEC,
    CMAESEnsemble,
    build,
    ges_round,
    normalize_weights,
    softmax_weights,
)

# ---------------------------------------------------------------- the contract


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_check_combiner(task):
    # default metrics: roc_auc (binary), log_loss (multiclass), rmse (regression). The run
    # through autofuse.fit is test_autofuse_fit_uses_cmaes (same check, one run); one BLAS
    # and OpenMP thread because the library's models are tiny and the machine is shared.
    with threadpool_limits(limits=1):
        check_combiner(SPEC, tasks=(task,), run=False)


# ---------------------------------------------------------------- normalisation


def test_softmax_by_hand():
    # exp: 6, 3, 0.6, 0.4 and an exact 0 (whose exp(0) == 1 the paper's code sets to 0)
    x = np.log([6.0, 3.0, 0.6, 0.4, 1.0])
    x[-1] = 0.0
    np.testing.assert_allclose(softmax_weights(x), [0.6, 0.3, 0.06, 0.04, 0.0])
    # the one-hot start vector of the single best model stays one-hot
    np.testing.assert_array_equal(softmax_weights([0.0, 1.0, 0.0]), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(softmax_weights([0.0, 0.0]), [0.5, 0.5])
    # stable for large entries
    np.testing.assert_allclose(softmax_weights([1000.0, 1000.0]), [0.5, 0.5])


def test_ges_round_by_hand():
    # trim (<= 0.5/n), round to counts, counts already sum to n = 10
    np.testing.assert_allclose(ges_round([0.6, 0.3, 0.06, 0.04, 0.0], 10),
                               [0.6, 0.3, 0.1, 0.0, 0.0])
    # n = 4: counts round(1.5, 1.5, 1.0) = (2, 2, 1) sum 5 > 4: the smallest non-zero
    # count gives one up -> (2, 2, 0)
    np.testing.assert_array_equal(ges_round([0.375, 0.375, 0.25], 4), [0.5, 0.5, 0.0])
    # n = 8: 0.0625 <= 1/16 is trimmed; round(5.0, 2.5) = (5, 2) (half to even) sum 7 < 8:
    # the missing count goes to the largest -> (6, 2, 0)
    np.testing.assert_array_equal(ges_round([0.625, 0.3125, 0.0625], 8), [0.75, 0.25, 0.0])
    # n = 4: eight weights of 1/16 are trimmed; (1, 1) misses 2: one more each
    w = [0.25, 0.25] + [0.0625] * 8
    np.testing.assert_array_equal(ges_round(w, 4), [0.5, 0.5] + [0.0] * 8)
    # everything trimmed: uniform (as the paper's code)
    np.testing.assert_array_equal(ges_round(np.full(100, 0.01), 50), np.full(100, 0.01))


def test_normalize_weights_pipeline():
    x = np.log([6.0, 3.0, 0.6, 0.4, 1.0])
    x[-1] = 0.0
    np.testing.assert_allclose(normalize_weights(x, "ges", 10), [0.6, 0.3, 0.1, 0.0, 0.0])
    np.testing.assert_allclose(normalize_weights(x, "softmax"), [0.6, 0.3, 0.06, 0.04, 0.0])
    np.testing.assert_array_equal(normalize_weights([-1.0, 2.0], "none"), [-1.0, 2.0])
    np.testing.assert_array_equal(normalize_weights([0.0, 1.0, 0.0], "ges"), [0, 1, 0])
    rng = np.random.default_rng(0)
    for _ in range(200):  # always on the simplex, in multiples of 1/50
        w = normalize_weights(rng.normal(scale=3, size=rng.integers(2, 120)), "ges", 50)
        assert w.min() >= 0 and math.isclose(w.sum(), 1.0)
        np.testing.assert_allclose(w * 50, np.rint(w * 50), atol=1e-9)
    with pytest.raises(ValueError):
        normalize_weights([1.0, 2.0], "l1")


# ---------------------------------------------------------------- the search


def _complementary(task, n=600, seed=0):
    """Two models, each good on one half of the rows and noise on the other half: their
    average beats both."""
    rng = np.random.default_rng(seed)
    half = np.arange(n) < n // 2
    if task == "regression":
        y = rng.normal(size=n)
        e = rng.normal(size=n)
        return np.stack([y + e, y - e])[:, :, None], y  # errors cancel in the average
    y = rng.integers(0, 2, n)
    signal = np.where(y == 1, 0.75, 0.25) + rng.normal(scale=0.1, size=n)
    noise = rng.random((2, n))
    p1 = np.where(half, signal, noise[0]).clip(0, 1)
    p2 = np.where(half, noise[1], signal).clip(0, 1)
    return np.stack([p1, p2])[:, :, None], y


@pytest.mark.parametrize("task,metric", [("binary", "roc_auc"), ("regression", "rmse")])
def test_beats_best_single_on_complementary_models(task, metric):
    P, y = _complementary(task)
    m = run_metric(metric, task)
    sel = build(m, 0, 1).fit(P, y)
    singles = [m.score(p, y) for p in P]
    best = max(singles) if m.greater_is_better else min(singles)
    assert m.better(sel.score_, best), (sel.score_, singles, sel.weights_)
    assert np.all(sel.weights_ > 0)
    assert math.isclose(sel.score_, m.score(sel.predict(P), y), rel_tol=1e-12)
    assert math.isclose(sel.weights_.sum(), 1.0, rel_tol=1e-9)
    assert sel.single_best_score_ == best and sel.n_evaluations_ >= len(P)


def test_never_worse_than_single_best_and_budget():
    # one good model among noise: the blend may not be worse than it
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    P = rng.random((8, 400, 1))
    P[3, :, 0] = (np.where(y == 1, 0.7, 0.3) + rng.normal(scale=0.15, size=400)).clip(0, 1)
    m = run_metric("roc_auc", "binary")
    sel = CMAESEnsemble(m, n_generations=5, random_state=0).fit(P, y)
    assert sel.single_best_ == 3
    assert sel.score_ >= m.score(P[3], y)
    assert sel.n_generations_ <= 5 and len(sel.trajectory_) == sel.n_generations_ + 1
    assert np.all(np.diff(sel.trajectory_) >= 0)  # best so far, never worse
    # the paper's budget caps the generations: ensemble_size * n_models evaluations
    small = CMAESEnsemble(m, n_generations=1000, ensemble_size=5, random_state=0).fit(P, y)
    popsize = 4 + int(3 * math.log(8))
    assert small.n_generations_ <= (5 * 8 - 8) // popsize


def test_deterministic_and_clonable():
    P, y = _complementary("binary", seed=3)
    P = np.concatenate([P, np.random.default_rng(3).random((4, P.shape[1], 1))])
    m = run_metric("roc_auc", "binary")
    a = CMAESEnsemble(m, n_generations=20, random_state=7).fit(P, y)
    b = clone(a).fit(P, y)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    assert a.score_ == b.score_ and a.n_evaluations_ == b.n_evaluations_


def test_one_model_2d_input_and_none_normalization():
    y = np.linspace(0, 1, 50)
    m = run_metric("rmse", "regression")
    sel = CMAESEnsemble(m, random_state=0).fit(y[None] + 0.1, y)  # 2-D, one model
    np.testing.assert_array_equal(sel.weights_, [1.0])
    assert sel.predict(y[None]).shape == (50,)
    # raw weights for regression: a scaled-down model is best blended with weight > 1
    P = np.stack([0.5 * y, np.zeros_like(y)])
    raw = CMAESEnsemble(m, normalization="none", random_state=0).fit(P, y)
    assert raw.score_ < m.score(P[0], y) and raw.weights_[0] > 1
    with pytest.raises(ValueError, match="regression"):
        CMAESEnsemble(run_metric("roc_auc", "binary"), normalization="none").fit(
            P[:, :, None], (y > 0.5).astype(int))


# ---------------------------------------------------------------- the plugin


def test_entry_point_resolves():
    (ep,) = [e for e in entry_points(group="autofuse") if e.name == "cmaes"]
    module = ep.load()
    assert module.SPEC is SPEC and hasattr(module, "autofuse_register_combiners")
    assert autofuse.plugins.combiners()["cmaes"].build is build


def test_autofuse_fit_uses_cmaes():
    X, y = example_data("binary", n_rows=200)
    model = autofuse.fit(X, y, combiner="cmaes", n_trials=6, cv=3, time_limit=120,
                         learners=["linear", "knn", "naive_bayes"], random_state=0,
                         verbose=0)
    row = model.leaderboard().iloc[0]
    assert row["learner"] == "cmaes" and not row["reason"], row.to_dict()
    assert len(model.predict(X.head(5))) == 5
