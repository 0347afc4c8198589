"""Degenerate inputs select sensibly; bad inputs fail early with a message naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

from _problems import classification, regression
from autofuse._core import select
from autofuse.combiners import CaruanaSelection

ALL = ["log_loss", "accuracy", "balanced_accuracy", "roc_auc", "f1", "rmse", "mse", "mae", "r2"]


def _data(metric, rng, n_models=5):
    if metric in ("rmse", "mse", "mae", "r2"):
        return regression(rng, n_models=n_models, n_rows=60)
    return classification(rng, n_models=n_models, n_rows=60, n_classes=2)


@pytest.mark.parametrize("metric", ALL)
def test_one_model_gets_all_the_weight(metric, backends):
    P, y = _data(metric, np.random.default_rng(0), n_models=1)
    for b in backends:
        r = select(P, y, metric=metric, ensemble_size=5, backend=b)
        assert r.weights.tolist() == [1.0]
        assert r.n_rounds[0] == 1  # adding the same model again changes nothing: keep 1 round
        np.testing.assert_allclose(r.trajectory, r.trajectory[0, 0], rtol=1e-12)


@pytest.mark.parametrize("metric", ALL)
def test_all_candidates_tied_picks_the_lowest_index(metric, backends):
    P, y = _data(metric, np.random.default_rng(1), n_models=1)
    P = np.repeat(P, 4, axis=0)
    for b in backends:
        r = select(P, y, metric=metric, ensemble_size=6, init_size=0, backend=b)
        assert r.indices.tolist() == [0]
        assert r.weights.tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("metric", ALL)
def test_constant_predictions(metric, backends):
    rng = np.random.default_rng(2)
    P, y = _data(metric, rng, n_models=3)
    P[:] = 0.5 if metric not in ("rmse", "mse", "mae", "r2") else 1.0
    for b in backends:
        r = select(P, y, metric=metric, ensemble_size=4, backend=b)
        assert r.indices.tolist() == [0]
        assert np.isfinite(r.score)
    if metric == "roc_auc":
        assert r.score == 0.5


def test_class_absent_from_y(backends):
    P, y = classification(np.random.default_rng(3), n_models=6, n_rows=90, n_classes=4)
    y = np.where(y == 2, 0, y)  # class 2 never occurs
    for metric in ("log_loss", "accuracy", "balanced_accuracy", "roc_auc"):
        for b in backends:
            r = select(P, y, metric=metric, ensemble_size=8, backend=b)
            assert np.isfinite(r.score)
    # balanced accuracy and macro roc_auc average over the classes present in y
    from sklearn.metrics import balanced_accuracy_score

    sel = CaruanaSelection("balanced_accuracy", ensemble_size=5).fit(P, y)
    with pytest.warns(UserWarning):  # scikit-learn warns about the predicted absent class
        want = balanced_accuracy_score(y, sel.predict(P).argmax(axis=1))
    assert sel.score_ == pytest.approx(want)


def test_probabilities_of_exactly_zero_and_one(backends):
    y = np.array([0, 1, 1, 0, 1, 0])
    P = np.array([
        [[1.0], [0.0], [1.0], [0.0], [1.0], [0.0]],  # confidently wrong twice
        [[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]],  # perfect
        [[0.5], [0.5], [0.5], [0.5], [0.5], [0.5]],
    ])
    for b in backends:
        r = select(P, y, metric="log_loss", ensemble_size=5, backend=b)
        assert r.indices.tolist() == [1]
        assert 0 <= r.score < 1e-14  # clipped at eps, not log(0)
        wrong = select(P[:1], y, metric="log_loss", ensemble_size=1, backend=b)
        # two rows at eps: -log(2.2e-16) = 36.04 each, over six rows
        assert wrong.score == pytest.approx(2 * -np.log(np.finfo(float).eps) / 6)


def test_prefix_is_cut_to_the_best_round():
    P, y = classification(np.random.default_rng(4), n_models=10, n_rows=200, n_classes=3)
    sel = CaruanaSelection("log_loss", ensemble_size=40).fit(P, y)
    best = int(np.argmin(sel.trajectory_)) + 1
    assert sel.n_rounds_ <= best
    assert sel.trajectory_[sel.n_rounds_ - 1] == pytest.approx(sel.trajectory_.min(), rel=1e-12)
    assert len(sel.indices_) == sel.n_rounds_
    assert sel.score_ == sel.trajectory_[sel.n_rounds_ - 1]


# ------------------------------------------------------------------ bad input


def _binary(n_models=3, n_rows=20):
    return classification(np.random.default_rng(5), n_models=n_models, n_rows=n_rows, n_classes=2)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda P, y: (P[:, :-1], y), "y has 20 rows but predictions have 19"),
        (lambda P, y: (P, y[:-1]), "y has 19 rows but predictions have 20"),
        (lambda P, y: (P[0, :, 0], y), "shape"),
        (lambda P, y: (P[None], y), "shape"),
        (lambda P, y: (P[:0], y), "empty"),
        (lambda P, y: (P.astype(str), y), "numeric"),
        (lambda P, y: (np.where(np.arange(P.size).reshape(P.shape) == 7, np.nan, P), y),
         "nan at model 0, row 3, output 1"),
        (lambda P, y: (np.where(np.arange(P.size).reshape(P.shape) == 41, np.inf, P), y),
         "inf at model 1, row 0, output 1"),
        (lambda P, y: (P * 2, y), "probabilities in [0, 1]"),
        (lambda P, y: (P, np.where(np.arange(len(y)) == 4, np.nan, y)), "NaN or infinity (row 4)"),
        (lambda P, y: (P, np.where(np.arange(len(y)) == 2, np.inf, y)), "NaN or infinity (row 2)"),
        (lambda P, y: (P, y + 0.5), "integer class codes"),
        (lambda P, y: (P, np.where(np.arange(len(y)) == 6, 2, y)), "class 2 at row 6"),
        (lambda P, y: (P, np.array(["a"] * len(y))), "y must be numeric"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(mutate, message, backends):
    P, y = _binary()
    P, y = mutate(P, y)
    for b in backends:
        with pytest.raises(ValueError) as err:
            select(P, y, metric="log_loss", backend=b)
        assert message.lower() in str(err.value).lower()


def test_unknown_metric_lists_the_known_ones():
    P, y = _binary()
    with pytest.raises(ValueError, match="unknown metric 'logloss'") as err:
        CaruanaSelection("logloss").fit(P, y)
    for name in ("log_loss", "accuracy", "roc_auc", "rmse", "r2", "get_scorer_names"):
        assert name in str(err.value)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"sample_weight": np.ones(3)}, "sample_weight must have shape (20,)"),
        ({"sample_weight": -np.ones(20)}, "non-negative"),
        ({"sample_weight": np.zeros(20)}, "sums to zero"),
        ({"sample_weight": np.full(20, np.nan)}, "NaN"),
        ({"ensemble_size": 0}, "ensemble_size must be an integer >= 1"),
        ({"ensemble_size": 2.5}, "ensemble_size"),
        ({"init_size": 5, "ensemble_size": 3}, "init_size (5) cannot exceed ensemble_size"),
        ({"init_size": 4, "ensemble_size": 10}, "number of models (3)"),
        ({"n_bags": 0}, "n_bags"),
        ({"bag_fraction": 0.0}, "bag_fraction"),
        ({"bag_fraction": 1.5}, "bag_fraction"),
        ({"n_threads": 0}, "n_threads"),
    ],
)
def test_bad_options(kwargs, message):
    P, y = _binary()
    with pytest.raises(ValueError) as err:
        select(P, y, metric="log_loss", **kwargs)
    assert message in str(err.value)


def test_metric_that_does_not_fit_the_task():
    P, y = classification(np.random.default_rng(6), n_models=3, n_rows=30, n_classes=3)
    with pytest.raises(ValueError, match="f1 is for binary problems; predictions have 3 classes"):
        select(P, y, metric="f1")
    with pytest.raises(ValueError, match="roc_auc needs at least two classes"):
        select(P, np.zeros(30, dtype=int), metric="roc_auc")
    Pr, yr = regression(np.random.default_rng(6), n_models=3, n_rows=30)
    with pytest.raises(ValueError, match="integer class codes"):
        select(np.clip(Pr, 0, 1), yr, metric="accuracy")
    with pytest.raises(ValueError, match=r"shape \(30,\) or \(30, 1\)"):
        select(Pr, np.c_[yr, yr], metric="rmse")


def test_predict_checks_the_layout():
    P, y = _binary()
    sel = CaruanaSelection("accuracy", ensemble_size=3).fit(P, y)
    with pytest.raises(ValueError, match="fitted on 3 models and 2 outputs"):
        sel.predict(P[:2])
    with pytest.raises(ValueError, match="nan"):
        sel.predict(np.where(P > 0.9, np.nan, P))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CaruanaSelection("accuracy").predict(P)


# ----------------------------------------------------------------- input holes of fit

def _fit_table(n=60, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["u", "v"], n)})
    return X, (X["a"] > 0).astype(int).to_numpy()


def _refused(match, X=None, y=None, **kwargs):
    """fit(...) raises InputError matching ``match`` before any trial: well inside its
    time limit."""
    import time

    import autofuse
    from autofuse._errors import InputError

    if X is None:
        X, y = _fit_table()
    options = {"time_limit": 30, "learners": ["linear"], "verbose": 0, **kwargs}
    t = time.perf_counter()
    with pytest.raises(InputError, match=match):
        autofuse.fit(X, y, **options)
    assert time.perf_counter() - t < 5


@pytest.mark.parametrize("limit", [float("inf"), float("nan")])
def test_an_infinite_or_nan_time_limit_is_refused(limit):
    _refused(r"time_limit must be a positive, finite number of seconds, got (inf|nan); "
             r"use time_limit=None for no limit", time_limit=limit, n_trials=2)


def test_no_trials_without_a_storage_is_refused():
    _refused(r"n_trials=0 runs no trial: it only fuses again the finished trials a storage "
             r"holds", n_trials=0)


@pytest.mark.parametrize("storage, cause", [
    ("nosuchdb://x", r"storage 'nosuchdb://x' could not be opened: NoSuchModuleError: "
                     r"Can't load plugin: sqlalchemy.dialects:nosuchdb"),
    ("sqlite:////nonexistent/dir/run.db", r"storage 'sqlite:////nonexistent/dir/run.db' could "
                                          r"not be opened: OperationalError: .*unable to open"),
    ("postgresql://me:secret@localhost:1/db", r"storage 'postgresql://me:\*\*\*@localhost:1/db' "
                                              r"could not be opened"),
    (5, r"storage must be None, an Optuna storage URL .*; got int 5"),
])
def test_a_storage_that_cannot_be_opened_is_named(storage, cause):
    _refused(cause, storage=storage, n_trials=2)


@pytest.mark.parametrize("metric, match", [
    (lambda y: 0.0, r"metric '<lambda>' takes \(y\), but a scorer callable is called as "
                    r"scorer\(estimator, X, y, sample_weight=None\)"),
    ("accuracy_score", r"metric 'accuracy_score' takes \(y_true, y_pred.*make_scorer"),
    (3.5, r"metric must be a metric name or a scorer callable scorer\(estimator, X, y, "
          r"sample_weight=None\) -> float, higher is better; got float 3.5"),
])
def test_a_metric_with_the_wrong_signature_is_refused(metric, match):
    if metric == "accuracy_score":
        from sklearn.metrics import accuracy_score as metric
    _refused(match, metric=metric, n_trials=2)


def test_groups_of_another_length_or_with_missing_values_are_refused():
    X, y = _fit_table()
    _refused(r"groups has 59 values but X has 60 rows", X, y, groups=np.arange(59) % 6,
             n_trials=2)
    groups = (np.arange(60) % 6).astype(float)
    groups[[7, 9]] = np.nan
    _refused(r"groups has 2 missing value\(s\), first at row 7; give every row a group", X, y,
             groups=groups, n_trials=2)


def test_refit_full_must_be_true_or_false():
    _refused(r"refit_full must be True or False, got 'yes'", refit_full="yes", n_trials=2)


def test_a_sparse_matrix_is_made_dense_or_refused_by_its_size():
    import scipy.sparse

    import autofuse

    rng = np.random.default_rng(0)
    dense = rng.normal(size=(60, 4)) * (rng.random((60, 4)) < 0.5)
    y = (dense[:, 0] > 0).astype(int)
    model = autofuse.fit(scipy.sparse.csr_matrix(dense), y, n_trials=2, cv=3,
                         learners=["linear"], random_state=0, verbose=0)
    np.testing.assert_allclose(model.predict_proba(scipy.sparse.csr_matrix(dense[:5])),
                               model.predict_proba(dense[:5]))
    huge = scipy.sparse.csr_matrix((200_000, 1_000))  # 1.5 GB dense
    _refused(r"X is a scipy sparse matrix of shape \(200000, 1000\), which would take 1.5 GB "
             r"dense \(at most 1 GB is converted\)", huge, np.arange(200_000) % 2, n_trials=2)


def test_a_metric_for_one_kind_of_task_implies_it(caplog):
    import logging

    import pandas as pd

    import autofuse

    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(26), 6)  # 26 integer classes: inferred as a regression
    X = pd.DataFrame({"a": codes + rng.normal(scale=0.3, size=len(codes))})
    caplog.set_level(logging.INFO, logger="autofuse")
    model = autofuse.fit(X, codes, metric="log_loss", n_trials=1, cv=3, learners=["linear"],
                         random_state=0, verbose=2)
    assert model.task_ == "multiclass" and len(model.classes_) == 26
    assert "metric 'log_loss' implies a classification task" in caplog.text
    # ... and a regression metric makes a count of a few values a regression.
    counts = np.arange(60) % 5
    model = autofuse.fit(pd.DataFrame({"a": counts + rng.normal(scale=0.1, size=60)}), counts,
                         metric="neg_mean_absolute_error", n_trials=1, cv=3,
                         learners=["linear"], verbose=0)
    assert model.task_ == "regression"
    # An explicit task still wins, and a metric that does not fit it is refused.
    _refused(r"metric 'log_loss' is for classification but this is a regression problem",
             X, codes, metric="log_loss", task="regression", n_trials=1)
