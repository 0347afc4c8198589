"""Faulty learners for the fault-injection suite (tests/test_faults.py), and a plugin that
registers them. Each fails in one way a third-party learner can: it raises, hangs,
allocates without bound, kills its process, returns NaN, returns the wrong shape in
either direction, or has a search space that blocks. Module level, so the worker
processes can import them."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
from sklearn.base import BaseEstimator

import autofuse
from autofuse.learners import LearnerSpec

TASKS = frozenset({"binary", "multiclass", "regression"})


class Faulty(BaseEstimator):
    """Fits like a constant model, except for its ``fault``."""

    def __init__(self, fault: str = "none", x: float = 0.5) -> None:
        self.fault = fault
        self.x = x

    def fit(self, X, y):
        if self.fault == "raises":
            raise RuntimeError("boom: this learner always fails")
        if self.fault == "hangs":
            time.sleep(1000)
        if self.fault == "allocates":  # grows until something stops it
            held = []
            for _ in range(10_000):
                held.append(np.ones(2**24))  # 128 MB, touched
        if self.fault == "dies":
            os.kill(os.getpid(), signal.SIGKILL)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.mean_ = float(np.mean(y)) if y.dtype.kind == "f" else 0.0
        return self

    def _rows(self, X) -> int:
        n = len(X)
        return {"extra_row": n + 1, "missing_row": n - 1, "twice_the_rows": 2 * n}.get(
            self.fault, n)

    def predict(self, X):
        out = np.full(self._rows(X), self.mean_)
        if self.fault == "nan":
            out[:] = np.nan
        return out

    def predict_proba(self, X):
        k = len(self.classes_)
        if self.fault == "one_d":
            return np.full(len(X), 1.0 / k)
        out = np.full((self._rows(X), k), 1.0 / k)
        if self.fault == "nan":
            out[::2] = np.nan
        return out


def _space(trial, data):
    return {"x": trial.suggest_float("x", 0.0, 1.0)}


def _space_blocks(trial, data):
    time.sleep(60)  # a plugin's space() that waits on something that never comes
    return {}


def _builder(fault):
    def build(params, data):
        return Faulty(fault, params.get("x", 0.5))
    build.__name__ = build.__qualname__ = f"build_{fault}"
    globals()[build.__name__] = build  # module level, so workers can import it
    return build


#: fault name -> what the reason of its failed trials says.
FAULTS = {
    "raises": "RuntimeError: boom",
    "hangs": "half of the search time|time limit",
    "allocates": r"out of memory \(limit 1 GB\)",
    "dies": "worker process died",
    "nan": "NaN or infinity",
    "extra_row": r"returned an array of shape \(\d+,(?: 2)?\) for \d+ rows; expected shape",
    "missing_row": r"returned an array of shape \(\d+,(?: 2)?\) for \d+ rows; expected shape",
    "one_d": r"predict_proba returned an array of shape \(\d+,\) .*expected shape \(\d+, 2\)",
    "twice_the_rows": r"predict returned an array of shape \(\d+,\) for \d+ rows",
    "slow_space": r"space\(\) of learner 'slow_space' took more than",
}
CLASSIFICATION_FAULTS = ("raises", "hangs", "allocates", "dies", "nan", "extra_row",
                         "missing_row", "one_d", "slow_space")
REGRESSION_FAULTS = ("raises", "allocates", "dies", "nan", "twice_the_rows", "missing_row",
                     "slow_space")

LEARNERS = {
    fault: LearnerSpec(fault, TASKS, _space_blocks if fault == "slow_space" else _space,
                       _builder("none" if fault == "slow_space" else fault),
                       portfolio=({"x": 0.5},), cost=0.01)
    for fault in FAULTS
}


def build_flaky(params, data):
    """Works for its portfolio configuration (x=0.05), raises for most others (x >= 0.2)."""
    return Faulty("raises" if params.get("x", 0.5) >= 0.2 else "none")


#: A learner that finishes once and then keeps failing: it is never disabled.
FLAKY = LearnerSpec("flaky", TASKS, _space, build_flaky, portfolio=({"x": 0.05},), cost=0.01)


class FaultPlugin:
    """Registers every faulty learner, as an installed plugin would."""

    @staticmethod
    @autofuse.hookimpl
    def autofuse_register_learners(register):
        for spec in LEARNERS.values():
            register(spec)
