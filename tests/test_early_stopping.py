"""autofuse.learners.early_stopping: the holdout, patience and tolerance the boosting
plugins share."""

from __future__ import annotations

import numpy as np
import pytest

from autofuse.learners.early_stopping import TOLERANCE, holdout, min_delta, patience, seeds


def test_holdout_is_stratified_disjoint_and_complete():
    y = np.repeat([0, 1, 2], [500, 300, 200])
    train, valid = holdout(y, 0.1, True, np.random.default_rng(0))
    assert len(np.intersect1d(train, valid)) == 0
    assert np.array_equal(np.sort(np.r_[train, valid]), np.arange(len(y)))
    assert np.bincount(y[valid]).tolist() == [50, 30, 20]


def test_holdout_keeps_every_class_in_training_and_small_tables_whole():
    y = np.r_[np.zeros(60, dtype=int), [1]]  # a class of one row stays in training
    train, valid = holdout(y, 0.1, True, np.random.default_rng(0))
    assert 1 in y[train] and 1 not in y[valid]
    assert len(valid) == round(0.2 * 60)  # at least 20% (or 50 rows) of a small table
    train, valid = holdout(np.arange(29), 0.1, False, np.random.default_rng(0))
    assert len(valid) == 0 and len(train) == 29


def test_holdout_is_seeded():
    y = np.arange(1000) % 2
    a = holdout(y, 0.1, True, seeds(3)[0])[1]
    assert np.array_equal(a, holdout(y, 0.1, True, seeds(3)[0])[1])
    assert not np.array_equal(a, holdout(y, 0.1, True, seeds(4)[0])[1])
    assert seeds(3)[1] == seeds(3)[1]


@pytest.mark.parametrize("rows, want", [(100, 50), (10_000, 50), (20_000, 25),
                                        (1_000_000, 20)])
def test_patience_shrinks_with_rows(rows, want):
    assert patience(rows) == want


def test_min_delta_is_a_share_of_the_constant_prediction_loss():
    y_train, y_valid = np.array([0, 0, 0, 1]), np.array([0, 1])
    constant = -np.mean(np.log([0.75, 0.25]))
    assert min_delta(y_train, y_valid, True) == pytest.approx(TOLERANCE * constant)
    r_train, r_valid = np.array([1.0, 3.0]), np.array([0.0, 4.0])
    assert min_delta(r_train, r_valid, False) == pytest.approx(TOLERANCE * 2.0)
