"""Fault injection: plugin learners that fail in every way we know of, run beside working
learners with ``time_limit=15``. Every run must end within its budget (+5%) with each
faulty learner's trials failed, their reasons in the leaderboard, the learner disabled
once it keeps failing, and no finished trial lost."""

from __future__ import annotations

import time

import numpy as np
import pytest
from optuna.trial import TrialState
from sklearn.datasets import make_classification, make_regression

import autofuse
from autofuse import plugins

from _faults import CLASSIFICATION_FAULTS, FAULTS, REGRESSION_FAULTS, FaultPlugin

LIMIT = 15.0


@pytest.fixture
def fault_plugin():
    name = plugins.register(FaultPlugin(), name="faults")
    yield
    plugins.unregister(name)


def _run(X, y, faults, working):
    t = time.perf_counter()
    model = autofuse.fit(X, y, time_limit=LIMIT, learners=[*faults, *working],
                         memory_limit=1.0, random_state=0, verbose=0)
    return model, time.perf_counter() - t


def _check(model, wall, faults, working):
    assert wall <= 1.05 * LIMIT, f"the fit took {wall:.1f} s for a {LIMIT:g} s budget"
    board = model.leaderboard()
    trials = board[board["kind"] == "trial"]
    for fault in faults:
        rows = trials[trials["learner"] == fault]
        assert len(rows), f"{fault}: never tried"
        assert (rows["status"] == "failed").all(), f"{fault}: {rows['status'].tolist()}"
        # A trial not run (its learner was disabled) or cut off by the run's own deadline
        # says so instead.
        ran = rows[~rows["reason"].str.startswith(("not run", "stopped at the time limit"))]
        assert ran["reason"].str.contains(FAULTS[fault]).all(), (
            f"{fault}: {ran['reason'].tolist()}")
    # The failing learners stopped being tried: none ran more than the rule allows (plus
    # the trials already running in parallel when it was disabled).
    faulty = trials[trials["learner"].isin(faults)]
    ran = faulty[~faulty["reason"].str.startswith(("not run", "stopped at the time limit"))]
    assert (ran.groupby("learner").size() <= 3 + 1).all(), ran.groupby("learner").size()
    # No finished trial is lost: every one the study holds is in the leaderboard, done.
    done = {t.number for t in model.study_.get_trials(states=(TrialState.COMPLETE,))}
    assert done and done == set(trials.loc[trials["status"] == "done", "trial"])
    assert set(trials.loc[trials["status"] == "done", "learner"]) <= set(working)
    assert set(model.weights_.index.str.split("#").str[0]) <= set(working)


def test_every_fault_fails_its_trials_and_the_classification_run_keeps_its_budget(
        fault_plugin):
    X, y = make_classification(600, 8, random_state=0)
    model, wall = _run(X, y, CLASSIFICATION_FAULTS, ["linear", "hist_gradient_boosting"])
    _check(model, wall, CLASSIFICATION_FAULTS, ["linear", "hist_gradient_boosting"])
    assert model.predict_proba(X).shape == (600, 2)


def test_every_fault_fails_its_trials_and_the_regression_run_keeps_its_budget(fault_plugin):
    X, y = make_regression(600, 8, noise=1.0, random_state=0)
    model, wall = _run(X, y, REGRESSION_FAULTS, ["linear", "hist_gradient_boosting"])
    _check(model, wall, REGRESSION_FAULTS, ["linear", "hist_gradient_boosting"])
    assert np.isfinite(model.predict(X)).all()
