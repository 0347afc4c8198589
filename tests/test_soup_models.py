"""Model soups' arithmetic on real fitted pipelines: averaging linear models is averaging
their logits, merged fold models predict the mean of the folds' logits, and soup MLPs
start from one shared, deterministic base network."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, softmax
from sklearn.model_selection import KFold

from autofuse._data import describe
from autofuse.combiners._averaging import average_models, compatible, merge_folds, soup_family
from autofuse.learners import _soup_mlp
from autofuse.learners._soup_mlp import SoupMLPClassifier, SoupMLPRegressor
from autofuse.plugins import learners

TASKS = ("binary", "multiclass", "regression")
COLORS = ["red", "green", "blue", "teal", "rare3", "rare6", "rare8", "once", None]
COLOR_COUNTS = [0, 0, 0, 0, 3, 6, 8, 1, 12]  # the frequent four fill the rest


def _splits(n):
    return KFold(5, shuffle=True, random_state=0).split(np.arange(n))


def _table(task, n=300, seed=0):
    """Numbers with missing values, a boolean with missing values, a categorical column
    with rare categories (infrequent in some folds, not in others) and one without; the
    numbers "sparse" are present in only two rows, both held out by the first of
    ``_splits``, so that fold's imputer sees an empty column."""
    rng = np.random.default_rng(seed)
    rare = [c for c, k in zip(COLORS, COLOR_COUNTS) for _ in range(k)]
    color = np.array(rare + list(rng.choice(COLORS[:4], n - len(rare))), dtype=object)
    rng.shuffle(color)
    X = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.normal(size=n) * 10,
        "flag": np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.3).astype(object),
        "color": color,
        "size": rng.choice(["S", "M", "L"], n),
    })
    X.loc[rng.random(n) < 0.15, "a"] = np.nan
    X["sparse"] = np.nan
    X.loc[next(_splits(n))[1][:2], "sparse"] = [-1.0, 2.0]
    signal = (X["a"].fillna(0) + 0.1 * X["b"] + (X["color"] == "red") * 1.5
              + (X["size"] == "L") + rng.normal(scale=0.5, size=n))
    if task == "regression":
        return X, 100 * signal.to_numpy()
    if task == "binary":
        return X, np.where(signal > signal.median(), "yes", "no")
    return X, np.digitize(signal, np.quantile(signal, [0.33, 0.66]))


def _unusual(frame):
    """Rows that stress the folded preparation: unseen categories, values far outside
    every fold's range, missing cells in every column."""
    test = frame.copy()
    idx = test.index
    test.loc[idx[0:5], "color"] = "purple"
    test.loc[idx[5:10], "size"] = "XL"  # unseen, and "size" has no infrequent category
    test.loc[idx[10:15], "b"] = 1e4
    test.loc[idx[15:20], "b"] = -1e4
    test.loc[idx[20:25], ["a", "b", "flag", "color", "sparse"]] = np.nan
    test.loc[idx[25:30], "sparse"] = [-5.0, 0.0, 0.5, 3.0, 1e3]
    return test


def _logits(model, X, task):
    return model.predict(X) if task == "regression" else model.decision_function(X)


@pytest.fixture(scope="module", params=TASKS)
def folds(request):
    """A task, its table and five KFold fold models of the linear learner, each the soup
    of two configurations fitted on that fold's training rows."""
    task = request.param
    frame, target, data = describe(*_table(task))
    spec = learners()["linear"]
    models = []
    for train, _ in _splits(len(frame)):
        pair = [spec.estimator(p, data, 0).fit(frame.iloc[train], target[train])
                for p in spec.portfolio]
        models.append((pair, average_models(pair, [0.3, 0.7])))
    return task, frame, target, data, models


def test_linear_average_equals_weighted_mean_of_logits(folds):
    task, frame, target, data, models = folds
    pair = models[0][0]
    if task == "regression":  # Ridge and ElasticNet are one family
        specs = [("linear", {"alpha": 0.1}), ("linear", {"alpha": 10.0}), ("elastic_net", {})]
        pair = [learners()[name].estimator(params, data, 0).fit(frame.iloc[:240], target[:240])
                for name, params in specs]
    weights = np.arange(1.0, len(pair) + 1)
    soup = average_models(pair, weights)
    test = _unusual(frame)
    expected = np.tensordot(weights / weights.sum(), [_logits(m, test, task) for m in pair], 1)
    np.testing.assert_allclose(_logits(soup, test, task), expected, rtol=0, atol=1e-10)
    assert compatible(pair, test)
    if task != "regression":
        proba = soup.predict_proba(test)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert list(soup.classes_) == list(pair[0].classes_)


def test_merge_folds_equals_mean_of_fold_logits(folds):
    task, frame, target, data, models = folds
    fold_models = [soup for _, soup in models]
    merged = merge_folds(fold_models)
    test = _unusual(frame)
    mean = np.mean([_logits(m, test, task) for m in fold_models], axis=0)
    np.testing.assert_allclose(merged.decision_function(test), mean, rtol=0, atol=1e-10)
    if task == "regression":
        assert merged.classes_ is None
        np.testing.assert_allclose(merged.predict(test), mean, rtol=0, atol=1e-10)
        return
    proba = merged.predict_proba(test)
    expected = (np.column_stack([1 - expit(mean), expit(mean)]) if mean.ndim == 1
                else softmax(mean, axis=1))
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(merged.classes_, fold_models[0].classes_)
    np.testing.assert_array_equal(merged.predict(test),
                                  merged.classes_[np.argmax(proba, axis=1)])


def test_folds_really_differ(folds):
    """The fixture's folds see different categories, ranges and infrequent groups, so the
    merge test exercises every path."""
    task, frame, target, data, models = folds
    encoders = [m.named_steps["prepare"].named_transformers_["categorical"][1]
                for _, m in models]
    infrequent = [set(e.infrequent_categories_[0]) for e in encoders]
    assert len({frozenset(s) for s in infrequent}) > 1
    assert any("once" not in set(e.categories_[0]) for e in encoders)
    assert all(e.infrequent_categories_[1] is None for e in encoders)  # "size"
    imputer = models[0][1].named_steps["prepare"].named_transformers_["numeric"][0]
    assert np.isnan(frame["sparse"].iloc[next(_splits(len(frame)))[0]]).all()
    assert list(imputer.indicator_.features_) == [0, 2, 3]  # a, sparse, flag


def test_models_of_different_folds_or_families_do_not_average(folds):
    task, frame, target, data, models = folds
    (_, first), (_, second) = models[0], models[1]
    assert soup_family(first) == "linear"
    assert not compatible([first, second], frame)
    with pytest.raises(ValueError, match="prepare steps differ"):
        average_models([first, second], probe=frame)
    with pytest.raises(ValueError, match="weights"):
        average_models([first, first], [1.0, -1.0])
    hgb = learners()["hist_gradient_boosting"].estimator({"max_iter": 5}, data, 0).fit(
        frame, target)
    assert soup_family(hgb) is None
    with pytest.raises(ValueError, match="different families|no soup family"):
        average_models([first, hgb])
    with pytest.raises(ValueError, match="built-in linear"):
        merge_folds([first, hgb])
    assert soup_family(first.named_steps["model"]) is None  # not a pipeline


def test_plain_mlp_has_no_family_and_shapes_must_match():
    frame, target, data = describe(*_table("binary", n=120))
    mlp = learners()["mlp"].estimator({"width": 8, "depth": 1}, data, 0)
    mlp.set_params(model__max_iter=5)
    with pytest.warns(Warning):
        mlp.fit(frame, target)
    assert soup_family(mlp) is None
    with pytest.raises(ValueError, match="no soup family"):
        average_models([mlp, mlp])
    frame3, target3, data3 = describe(*_table("multiclass", n=120))
    binary = learners()["linear"].estimator({}, data, 0).fit(frame, target)
    multi = learners()["linear"].estimator({}, data3, 0).fit(frame3, target3)
    with pytest.raises(ValueError, match="shapes"):
        average_models([binary, multi])
    with pytest.raises(ValueError, match="classes or outputs"):
        merge_folds([binary, multi])


# ----------------------------------------------------------------- soup MLPs

def _prepared(task, n=200):
    frame, target, data = describe(*_table(task, n=n))
    prepare = learners()["linear"].build({}, data).named_steps["prepare"]
    return prepare.fit_transform(frame), target


SMALL = {"width": 16, "depth": 2, "base_epochs": 5}


def test_soup_mlp_fine_tunes_a_shared_deterministic_base():
    X, y = _prepared("binary")
    _soup_mlp._BASES.clear()
    a = SoupMLPClassifier(**SMALL, learning_rate_init=3e-3, epochs=3, random_state=1).fit(X, y)
    b = SoupMLPClassifier(**SMALL, learning_rate_init=1e-4, alpha=1e-2, epochs=2,
                          batch_size=32, random_state=2).fit(X, y)
    assert a.base_key_ == b.base_key_ and len(_soup_mlp._BASES) == 1
    assert not np.array_equal(a.network_.coefs_[0], b.network_.coefs_[0])
    # the base, trained again from scratch, is bitwise the one both started from
    cached = _soup_mlp._BASES[a.base_key_]
    _soup_mlp._BASES.clear()
    key, base = _soup_mlp.base_network(
        a._network, X, y, None, width=16, depth=2, base_epochs=5, base_seed=0)
    assert key == a.base_key_
    for w, v in zip(base.coefs_ + base.intercepts_, cached.coefs_ + cached.intercepts_):
        np.testing.assert_array_equal(w, v)
    # a negligible learning rate leaves the base's weights: fine-tuning starts from them
    still = SoupMLPClassifier(**SMALL, learning_rate_init=1e-12, epochs=1).fit(X, y)
    for w, v in zip(still.network_.coefs_, base.coefs_):
        np.testing.assert_allclose(w, v, rtol=0, atol=1e-9)
    again = SoupMLPClassifier(**SMALL, learning_rate_init=3e-3, epochs=3, random_state=1)
    _soup_mlp._BASES.clear()
    again.fit(X, y)
    for w, v in zip(a.network_.coefs_ + a.network_.intercepts_,
                    again.network_.coefs_ + again.network_.intercepts_):
        np.testing.assert_array_equal(w, v)
    other = SoupMLPClassifier(**SMALL, base_seed=1).fit(X, y)
    assert other.base_key_ != a.base_key_


def test_base_cache_is_bounded():
    X, y = _prepared("regression", n=60)
    _soup_mlp._BASES.clear()
    for seed in range(_soup_mlp.BASE_CACHE_SIZE + 2):
        SoupMLPRegressor(width=4, depth=1, base_epochs=1, epochs=1, base_seed=seed).fit(X, y)
    assert len(_soup_mlp._BASES) == _soup_mlp.BASE_CACHE_SIZE


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_soup_of_mlp_learner_trials(task):
    frame, target, data = describe(*_table(task, n=200))
    spec = learners()["mlp_soup"]
    trials = [spec.estimator(p, data, seed) for seed, p in enumerate(spec.portfolio)]
    assert {m.get_params()["model__random_state"] for m in trials} == {0, 1, 2}
    assert {m.get_params()["model__base_seed"] for m in trials} == {0}
    train, test = frame.iloc[:150], _unusual(frame.iloc[150:])
    for m in trials:
        m.fit(train, target[:150])
    assert len({m.named_steps["model"].base_key_ for m in trials}) == 1
    assert {soup_family(m) for m in trials} == {"mlp_soup:128x2"}
    assert compatible(trials, train)
    soup = average_models(trials, [1.0, 1.0, 2.0], probe=train)
    if task == "regression":
        pred = soup.predict(test)
        assert pred.shape == (50,) and np.all(np.isfinite(pred))
        np.testing.assert_allclose(average_models(trials[:1] * 2).predict(test),
                                   trials[0].predict(test), rtol=1e-12)
    else:
        proba = soup.predict_proba(test)
        assert proba.shape == (50, 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    elsewhere = spec.estimator(spec.portfolio[0], data, 0).fit(frame.iloc[50:], target[50:])
    with pytest.raises(ValueError, match="different base networks"):
        average_models([trials[0], elsewhere])
    with pytest.raises(ValueError, match="built-in linear"):
        merge_folds(trials)


# ----------------------------------------------------------------- property

@st.composite
def _tables(draw):
    n = draw(st.integers(30, 70))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_cats = draw(st.integers(1, 9))
    weights = rng.dirichlet(np.full(n_cats, draw(st.sampled_from([0.3, 1.0, 5.0]))))
    X = pd.DataFrame({
        "x": np.where(rng.random(n) < draw(st.sampled_from([0.0, 0.2, 0.6])), np.nan,
                      rng.normal(size=n) * draw(st.sampled_from([1e-3, 1.0, 1e3]))),
        "c": rng.choice([f"k{i}" for i in range(n_cats)], n, p=weights).astype(object),
    })
    X.loc[rng.random(n) < 0.1, "c"] = None
    task = draw(st.sampled_from(["binary", "regression"]))
    signal = np.nan_to_num(X["x"].to_numpy()) + X["c"].isin(["k0", "k2"]) + rng.normal(size=n)
    y = signal if task == "regression" else (signal > np.median(signal)).astype(int)
    return X, y, task, seed


@settings(max_examples=25)
@given(_tables())
def test_merge_folds_property(case):
    X, y, task, seed = case
    frame, target, data = describe(X, y, task=task)
    spec = learners()["linear"]
    models = [spec.estimator({"C": 10.0, "alpha": 0.1}, data, 0).fit(
        frame.iloc[train], target[train])
        for train, _ in KFold(3, shuffle=True, random_state=seed % 1000).split(frame)
        if task == "regression" or len(np.unique(target[train])) == 2]
    if len(models) < 3:
        return
    test = frame.copy()
    test.loc[test.index[:3], "c"] = "never seen"
    test.loc[test.index[3:6], "x"] = [-1e6, 1e6, np.nan]
    mean = np.mean([_logits(m, test, task) for m in models], axis=0)
    np.testing.assert_allclose(merge_folds(models).decision_function(test), mean,
                               rtol=0, atol=1e-10)
