"""Each core metric agrees with scikit-learn on the blend it scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from _problems import classification, regression
from autofuse._core import select
from autofuse.combiners import CaruanaSelection


def _labels(blend):
    return (blend[:, 0] > 0.5).astype(int) if blend.shape[1] == 1 else blend.argmax(axis=1)


def sklearn_score(metric, y, blend, w, n_classes):
    """scikit-learn's value of ``metric`` for a blend of shape (n_rows, n_outputs)."""
    kw = {"sample_weight": w}
    if metric == "log_loss":
        proba = blend[:, 0] if blend.shape[1] == 1 else blend
        return skm.log_loss(y, proba, labels=np.arange(n_classes), **kw)
    if metric == "accuracy":
        return skm.accuracy_score(y, _labels(blend), **kw)
    if metric == "balanced_accuracy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a predicted class absent from y
            return skm.balanced_accuracy_score(y, _labels(blend), **kw)
    if metric == "f1":
        return skm.f1_score(y, _labels(blend), zero_division=0.0, **kw)
    if metric == "roc_auc":
        if blend.shape[1] <= 2:
            return skm.roc_auc_score(y, blend[:, -1], **kw)
        return skm.roc_auc_score(y, blend, multi_class="ovr", average="macro", **kw)
    fn = {"rmse": skm.root_mean_squared_error, "mse": skm.mean_squared_error,
          "mae": skm.mean_absolute_error, "r2": skm.r2_score}[metric]
    return fn(y, blend[:, 0] if blend.shape[1] == 1 else blend, **kw)


CASES = [
    (metric, shape, weighted)
    for metric, shapes in [
        ("log_loss", ["binary1", "binary2", "multiclass"]),
        ("accuracy", ["binary1", "binary2", "multiclass"]),
        ("balanced_accuracy", ["binary1", "binary2", "multiclass"]),
        ("roc_auc", ["binary1", "binary2", "multiclass"]),
        ("f1", ["binary1", "binary2"]),
        ("rmse", ["single", "multi"]),
        ("mse", ["single", "multi"]),
        ("mae", ["single", "multi"]),
        ("r2", ["single", "multi"]),
    ]
    for shape in shapes
    for weighted in (False, True)
]


def _problem(shape, seed):
    rng = np.random.default_rng(seed)
    if shape in ("single", "multi"):
        P, y = regression(rng, n_models=8, n_rows=150, n_outputs=1 if shape == "single" else 3)
        return P, y, 0
    n_classes = 4 if shape == "multiclass" else 2
    P, y = classification(rng, n_models=8, n_rows=150, n_classes=n_classes,
                          one_column=shape == "binary1")
    return P, y, n_classes


@pytest.mark.parametrize("metric,shape,weighted", CASES)
def test_single_model_score_matches_sklearn(metric, shape, weighted, backends):
    for seed in range(5):
        P, y, n_classes = _problem(shape, seed)
        w = np.random.default_rng(seed).uniform(0.1, 2.0, len(y)) if weighted else None
        for b in backends:
            for m in range(3):
                got = select(P[m:m + 1], y, metric=metric, ensemble_size=1, sample_weight=w,
                             backend=b).score
                want = sklearn_score(metric, y, P[m].astype(float), w, n_classes)
                assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (b, m, seed)


@pytest.mark.parametrize("metric,shape,weighted", CASES)
def test_selected_blend_score_matches_sklearn(metric, shape, weighted):
    P, y, n_classes = _problem(shape, 7)
    w = np.random.default_rng(7).uniform(0.1, 2.0, len(y)) if weighted else None
    sel = CaruanaSelection(metric, ensemble_size=12, init_size=2).fit(P, y, sample_weight=w)
    blend = sel.predict(P)
    blend = blend[:, None] if blend.ndim == 1 else blend
    assert sel.score_ == pytest.approx(sklearn_score(metric, y, blend, w, n_classes),
                                       rel=1e-9, abs=1e-12)
    # the blend is never worse than the best single model (round 1 is a candidate prefix)
    singles = [sklearn_score(metric, y, P[m], w, n_classes) for m in range(len(P))]
    better = max if metric in ("accuracy", "balanced_accuracy", "roc_auc", "f1", "r2") else min
    assert better(sel.score_, better(singles)) == pytest.approx(sel.score_)


def test_float32_predictions_score_like_float64():
    P, y = classification(np.random.default_rng(3), n_models=6, n_rows=200, n_classes=3)
    P32 = P.astype(np.float32)
    a = CaruanaSelection("log_loss", ensemble_size=10).fit(P32, y)
    want = skm.log_loss(y, a.predict(P32.astype(float)), labels=[0, 1, 2])
    assert a.score_ == pytest.approx(want, rel=1e-9)
