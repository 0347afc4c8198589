"""Shared folds and out-of-fold predictions of one configuration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss
from sklearn.model_selection import PredefinedSplit, cross_val_predict

import autofuse._cv as cvmod
from autofuse._cv import cross_fit, make_folds
from autofuse._data import describe
from autofuse.combiners import CaruanaSelection
from autofuse.learners import BUILTIN_LEARNERS

SPECS = {s.name: s for s in BUILTIN_LEARNERS}


def _classification(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "c": rng.choice(["x", "y", "z"], n)})
    y = np.digitize(X["a"] + (X["c"] == "x") + rng.normal(scale=0.5, size=n), [-0.5, 0.7])
    return describe(X, y)


def test_folds_are_stratified_and_cover_every_row_once():
    frame, target, data = _classification()
    folds = make_folds(target, data, cv=5)
    assert len(folds) == 5
    seen = np.concatenate([va for _, va in folds])
    assert np.array_equal(np.sort(seen), np.arange(len(target)))
    for train, valid in folds:
        assert np.intersect1d(train, valid).size == 0
        assert set(target[valid]) == set(target)
    assert [v.tolist() for _, v in make_folds(target, data, cv=5)] == [v.tolist() for _, v in folds]


def test_groups_custom_splitters_and_holdout(monkeypatch):
    frame, target, data = _classification()
    groups = np.arange(len(target)) // 10
    for train, valid in make_folds(target, data, cv=4, groups=groups):
        assert np.intersect1d(groups[train], groups[valid]).size == 0
    split = PredefinedSplit(np.arange(len(target)) % 3)
    assert len(make_folds(target, data, cv=split)) == 3
    with pytest.raises(ValueError, match="at least 2 folds"):
        make_folds(target, data, cv=1)
    monkeypatch.setattr(cvmod, "HOLDOUT_ROWS", 100)
    (train, valid), = make_folds(target, data, cv=5)
    assert len(valid) == 60 and len(train) == 240


def test_cross_fit_matches_cross_val_predict():
    frame, target, data = _classification()
    folds = make_folds(target, data, cv=5)
    spec = SPECS["linear"]
    fit = cross_fit(spec, spec.portfolio[0], frame, target, data, folds)
    assert fit.oof.dtype == np.float32 and fit.oof.shape == (300, 3)
    assert fit.covered.all() and len(fit.models) == 5 and fit.fit_seconds > 0
    want = cross_val_predict(spec.build(spec.portfolio[0], data), frame, target, cv=folds,
                             method="predict_proba")
    np.testing.assert_allclose(fit.oof, want, rtol=1e-5, atol=1e-6)


def test_a_fold_without_a_class_keeps_columns_in_place():
    frame, target, data = _classification()
    test_fold = np.where(target == 2, 0, np.arange(len(target)) % 2)  # class 2 only in fold 0
    folds = make_folds(target, data, cv=PredefinedSplit(test_fold))
    spec = SPECS["naive_bayes"]
    fit = cross_fit(spec, {}, frame, target, data, folds)
    fold0 = folds[0][1]
    assert np.all(fit.oof[fold0, 2] == 0.0)  # its model never saw class 2
    np.testing.assert_allclose(fit.oof.sum(axis=1), 1.0, rtol=1e-5)


def test_learner_errors_propagate():
    frame, target, data = _classification()
    spec = SPECS["linear"]
    with pytest.raises(ValueError):
        cross_fit(spec, {"C": -1.0}, frame, target, data, make_folds(target, data, cv=3))


@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")  # float32 rows
def test_out_of_fold_library_fuses():
    frame, target, data = _classification(n=400, seed=1)
    folds = make_folds(target, data, cv=5)
    oof = np.stack([cross_fit(SPECS[name], SPECS[name].portfolio[0], frame, target, data,
                              folds).oof
                    for name in ("linear", "knn", "hist_gradient_boosting", "naive_bayes")])
    sel = CaruanaSelection("log_loss", ensemble_size=20).fit(oof, target)
    singles = [log_loss(target, p) for p in oof.astype(float)]
    assert sel.score_ <= min(singles) + 1e-12
