"""CaruanaSelection through its public API."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import log_loss, make_scorer, mean_squared_error, roc_auc_score

from _problems import classification, regression
from autofuse.combiners import CaruanaSelection


def naive_greedy(P, y, loss, rounds):
    """Caruana's selection written the obvious way, scoring every blend with scikit-learn."""
    chosen, trajectory = [], []
    for _ in range(rounds):
        scores = [loss(y, P[chosen + [m]].mean(axis=0)) for m in range(len(P))]
        best = int(np.argmin(scores))
        chosen.append(best)
        trajectory.append(scores[best])
    return chosen, trajectory


@pytest.mark.parametrize("seed", range(5))
def test_matches_a_naive_greedy_loop_over_sklearn(seed):
    P, y = classification(np.random.default_rng(seed), n_models=7, n_rows=120, n_classes=3)
    chosen, trajectory = naive_greedy(P, y, lambda t, p: log_loss(t, p, labels=[0, 1, 2]), 15)
    sel = CaruanaSelection("log_loss", ensemble_size=15).fit(P, y)
    np.testing.assert_allclose(sel.trajectory_, trajectory, rtol=1e-9)
    assert sel.indices_.tolist() == chosen[: sel.n_rounds_]
    counts = np.bincount(chosen[: sel.n_rounds_], minlength=7)
    np.testing.assert_array_equal(sel.counts_, counts)
    np.testing.assert_allclose(sel.weights_, counts / counts.sum())


def test_weights_sum_to_one_and_predict_blends():
    P, y = classification(np.random.default_rng(0), n_models=9, n_rows=100, n_classes=4)
    sel = CaruanaSelection("log_loss", ensemble_size=25).fit(P, y)
    assert sel.weights_.shape == (9,)
    assert sel.weights_.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(sel.predict(P), np.tensordot(sel.weights_, P, axes=1))
    assert sel.n_models_ == 9 and sel.n_outputs_ == 4
    assert sel.score_ == pytest.approx(log_loss(y, sel.predict(P)))


def test_two_dimensional_input_is_one_output():
    P, y = regression(np.random.default_rng(1), n_models=5, n_rows=50)
    sel = CaruanaSelection("rmse", ensemble_size=10).fit(P[:, :, 0], y)
    assert sel.predict(P[:, :, 0]).shape == (50,)
    same = CaruanaSelection("rmse", ensemble_size=10).fit(P, y)
    np.testing.assert_array_equal(sel.weights_, same.weights_)
    assert same.predict(P).shape == (50, 1)


def test_sorted_initialisation_starts_from_the_best_single_models():
    P, y = classification(np.random.default_rng(2), n_models=8, n_rows=150, n_classes=3)
    singles = [log_loss(y, P[m]) for m in range(8)]
    sel = CaruanaSelection("log_loss", ensemble_size=12, init_size=3).fit(P, y)
    assert sel.indices_[:3].tolist() == list(np.argsort(singles)[:3])
    assert len(set(sel.indices_[:3])) == 3


def test_bagging_is_seeded_and_averages_bags():
    P, y = classification(np.random.default_rng(3), n_models=10, n_rows=150, n_classes=2)
    a = CaruanaSelection("roc_auc", n_bags=5, bag_fraction=0.4, random_state=7,
                         ensemble_size=10).fit(P, y)
    b = CaruanaSelection("roc_auc", n_bags=5, bag_fraction=0.4, random_state=7,
                         ensemble_size=10).fit(P, y)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    assert a.trajectory_.shape == (5, 10)
    assert a.n_rounds_.shape == (5,)
    assert a.weights_.sum() == pytest.approx(1.0)
    assert a.score_ == pytest.approx(roc_auc_score(y, a.predict(P)[:, 1]))
    c = CaruanaSelection("roc_auc", n_bags=5, bag_fraction=0.4, random_state=8,
                         ensemble_size=10).fit(P, y)
    assert not np.array_equal(a.weights_, c.weights_)
    # each bag chose among 4 of the 10 models
    bag_models = np.split(a.indices_, np.cumsum(a.n_rounds_)[:-1])
    assert all(len(set(m)) <= 4 for m in bag_models)


def test_scikit_learn_scorer_names_and_callables():
    P, y = classification(np.random.default_rng(4), n_models=6, n_rows=120, n_classes=3)
    core = CaruanaSelection("log_loss", ensemble_size=8).fit(P, y)
    by_name = CaruanaSelection("neg_log_loss", ensemble_size=8).fit(P, y)
    assert by_name.indices_.tolist() == core.indices_.tolist()
    assert by_name.score_ == pytest.approx(-core.score_)
    scorer = make_scorer(log_loss, greater_is_better=False, response_method="predict_proba")
    by_callable = CaruanaSelection(scorer, ensemble_size=8).fit(P, y)
    assert by_callable.indices_.tolist() == core.indices_.tolist()

    Pr, yr = regression(np.random.default_rng(4), n_models=6, n_rows=80)
    mse = CaruanaSelection("mse", ensemble_size=8).fit(Pr, yr)
    neg = CaruanaSelection(make_scorer(mean_squared_error, greater_is_better=False),
                           ensemble_size=8).fit(Pr, yr)
    assert neg.indices_.tolist() == mse.indices_.tolist()
    assert neg.score_ == pytest.approx(-mse.score_)


def test_estimator_conventions():
    sel = CaruanaSelection("accuracy", ensemble_size=7, n_threads=1)
    assert sel.get_params()["ensemble_size"] == 7
    twin = clone(sel).set_params(ensemble_size=3)
    assert twin.ensemble_size == 3 and sel.ensemble_size == 7
    P, y = classification(np.random.default_rng(5), n_models=4, n_rows=50, n_classes=2)
    assert sel.fit(P, y) is sel
    restored = pickle.loads(pickle.dumps(sel))
    np.testing.assert_array_equal(restored.predict(P), sel.predict(P))
