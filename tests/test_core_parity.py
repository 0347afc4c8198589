"""The compiled core makes the same selections as its NumPy reference (property tests).

Run ``HYPOTHESIS_PROFILE=thorough pytest tests/test_core_parity.py`` for 2,000 examples per
property. Selections must be identical and scores equal to 1e-9 relative, for float64 and
float32 input alike: the core computes in float64 whatever the input dtype, and candidate
losses within a relative 1e-12 count as ties (lowest model index wins) in both backends.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autofuse._core import backend, select

pytestmark = pytest.mark.skipif(backend() != "cython", reason="needs the compiled core")

CLASSIFICATION = ["log_loss", "accuracy", "balanced_accuracy", "roc_auc", "f1"]
REGRESSION = ["rmse", "mse", "mae", "r2"]


@st.composite
def problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_models = draw(st.integers(1, 12))
    n_rows = draw(st.integers(1, 120))
    task = draw(st.sampled_from(["binary1", "binary2", "multiclass", "regression"]))
    if task == "regression":
        metric = draw(st.sampled_from(REGRESSION))
        n_out = draw(st.integers(1, 3))
        y = rng.normal(size=(n_rows, n_out)) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
        P = y[None] + rng.normal(size=(n_models, n_rows, n_out)) * np.abs(y).mean()
        if n_out == 1:
            y = y[:, 0]
    else:
        metric = draw(st.sampled_from(CLASSIFICATION if task != "multiclass" else CLASSIFICATION[:4]))
        n_classes = 2 if task != "multiclass" else draw(st.integers(3, 6))
        y = rng.integers(0, n_classes, n_rows)
        logits = 2.0 * np.eye(n_classes)[y] * draw(st.floats(0, 2)) + rng.normal(
            size=(n_models, n_rows, n_classes))
        P = np.exp(logits)
        P /= P.sum(axis=2, keepdims=True)
        if draw(st.booleans()):  # exact zeros and ones
            hard = rng.random((n_models, n_rows)) < 0.2
            P[hard] = np.eye(n_classes)[rng.integers(0, n_classes, hard.sum())]
        if task == "binary1":
            P = P[:, :, 1:]
        if draw(st.booleans()):  # a class absent from y
            y = np.where(y == n_classes - 1, 0, y)
    decimals = draw(st.sampled_from([None, 1, 2, 3]))  # coarse values make ties
    if decimals is not None:
        P = np.round(P, decimals)
    if draw(st.booleans()) and n_models > 1:  # duplicated models tie exactly
        P[-1] = P[0]
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    P = np.ascontiguousarray(P, dtype=dtype)
    weights = None
    if draw(st.booleans()):
        weights = rng.uniform(0.0, 3.0, n_rows)
        if draw(st.booleans()):
            weights = np.round(weights)
        if weights.sum() == 0:
            weights[0] = 1.0
    ensemble_size = draw(st.integers(1, 15))
    options = dict(
        metric=metric,
        ensemble_size=ensemble_size,
        init_size=draw(st.integers(0, min(n_models, ensemble_size))),
        sample_weight=weights,
    )
    if draw(st.booleans()):
        options.update(n_bags=draw(st.integers(2, 4)), bag_fraction=draw(st.sampled_from([0.3, 0.5, 1.0])),
                       random_state=draw(st.integers(0, 100)))
    return P, y, options


def _run(P, y, options, backend, n_threads):
    try:
        return select(P, y, backend=backend, n_threads=n_threads, **options)
    except ValueError as exc:  # e.g. roc_auc when y holds one class: both must refuse
        return str(exc)


@given(problems(), st.sampled_from([1, 2, 3]))
def test_compiled_and_numpy_make_identical_selections(problem, n_threads):
    P, y, options = problem
    fast = _run(P, y, options, "cython", n_threads)
    ref = _run(P, y, options, "numpy", 1)
    if isinstance(ref, str):
        assert fast == ref
        return
    assert not isinstance(fast, str), fast
    np.testing.assert_array_equal(fast.indices, ref.indices)
    np.testing.assert_array_equal(fast.n_rounds, ref.n_rounds)
    np.testing.assert_allclose(fast.trajectory, ref.trajectory, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(fast.score, ref.score, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(fast.weights, ref.weights, rtol=0, atol=0)


@given(problems())
def test_thread_count_does_not_change_the_result(problem):
    P, y, options = problem
    one = _run(P, y, options, "cython", 1)
    if isinstance(one, str):
        return
    many = _run(P, y, options, "cython", 4)
    np.testing.assert_array_equal(one.indices, many.indices)
    np.testing.assert_array_equal(one.trajectory, many.trajectory)
