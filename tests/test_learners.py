"""Every built-in learner fits and predicts on a mixed table, for every task it claims."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from autofuse._data import describe
from autofuse.learners import BUILTIN_LEARNERS, LearnerSpec


def _table(task, n=160, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.normal(size=n),
        "color": rng.choice(["red", "green", "blue", None], n),
        "flag": rng.random(n) < 0.3,
    })
    X.loc[rng.random(n) < 0.1, "a"] = np.nan
    signal = X["a"].fillna(0) + (X["color"] == "red") * 1.5 + rng.normal(scale=0.3, size=n)
    if task == "regression":
        y = signal.to_numpy()
    elif task == "binary":
        y = np.where(signal > signal.median(), "yes", "no")
    else:
        y = np.digitize(signal, np.quantile(signal, [0.33, 0.66]))
    return X, y


CASES = [(spec, task) for spec in BUILTIN_LEARNERS for task in sorted(spec.tasks)]


@pytest.mark.parametrize("spec,task", CASES, ids=[f"{s.name}-{t}" for s, t in CASES])
def test_portfolio_and_sampled_configs_fit(spec, task):
    X, y = _table(task)
    frame, target, data = describe(X, y)
    assert spec.supports(data)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampled = spec.space(study.ask(), data)
    for params in (spec.portfolio[0], sampled):
        model = spec.build(params, data).fit(frame.iloc[:120], target[:120])
        test = frame.iloc[120:].copy()
        test.loc[test.index[0], "color"] = "purple"  # a category unseen in training
        if task == "regression":
            pred = model.predict(test)
            assert pred.shape == (40,) and np.all(np.isfinite(pred))
        else:
            proba = model.predict_proba(test)
            assert proba.shape == (40, len(data.classes))
            np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_hist_gradient_boosting_uses_native_categories():
    X, y = _table("binary")
    frame, target, data = describe(X, y)
    spec = next(s for s in BUILTIN_LEARNERS if s.name == "hist_gradient_boosting")
    model = spec.build({}, data).fit(frame, target)
    assert model[-1].is_categorical_.tolist().count(True) == 1


def test_spec_validation():
    def space(trial, data):
        return {}

    def build(params, data):
        return None

    with pytest.raises(ValueError, match="tasks must be"):
        LearnerSpec("x", frozenset({"ranking"}), space, build)
    with pytest.raises(ValueError, match="non-empty string name"):
        LearnerSpec("", frozenset({"binary"}), space, build)
    svm = next(s for s in BUILTIN_LEARNERS if s.name == "svm")
    big = describe(np.zeros((20_000, 1)) + np.arange(20_000)[:, None], np.arange(20_000) % 2)[2]
    assert not svm.supports(big)
    assert len({s.name for s in BUILTIN_LEARNERS}) == len(BUILTIN_LEARNERS)


def test_scaled_learners_do_not_extrapolate_past_the_training_range():
    """Numeric columns of the scaled pipelines are clipped to their training range: an
    outlier row predicts like the most extreme training row."""
    from autofuse._data import describe
    from autofuse.learners import BUILTIN_LEARNERS

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.random(200), "b": rng.random(200)})
    y = 3 * X["a"].to_numpy() + rng.normal(0, 0.01, 200)
    frame, target, data = describe(X, y, task="regression")
    ridge = {s.name: s for s in BUILTIN_LEARNERS}["linear"].build({"alpha": 1e-3}, data)
    ridge.fit(frame, target)
    edge = frame.loc[[frame["a"].idxmax()]]
    far = edge.assign(a=100.0)
    assert ridge.predict(far)[0] == pytest.approx(ridge.predict(edge)[0])
