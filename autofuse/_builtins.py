"""The built-in plugin: autofuse's own learners, combiner and metrics, registered through
the same hooks as any installed plugin's (so the built-ins prove the mechanism)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from autofuse._core._metrics import CORE_METRICS
from autofuse._core._prepare import resolve_metric
from autofuse._scoring import RunMetric
from autofuse.combiners import CaruanaSelection, CombinerSpec
from autofuse.hookspecs import hookimpl
from autofuse.learners import BUILTIN_LEARNERS, LearnerSpec
from autofuse.metrics import MetricSpec

#: Rounds of greedy selection (with replacement) for the blend.
ENSEMBLE_SIZE = 50


@hookimpl
def autofuse_register_learners(register: Callable[[LearnerSpec], None]) -> None:
    for spec in BUILTIN_LEARNERS:
        register(spec)


def _caruana(metric: Any, random_state: Any, n_threads: Any) -> CaruanaSelection:
    return CaruanaSelection(metric.selection, ensemble_size=ENSEMBLE_SIZE,
                            random_state=random_state, n_threads=n_threads)


@hookimpl
def autofuse_register_combiners(register: Callable[[CombinerSpec], None]) -> None:
    register(CombinerSpec("caruana", _caruana,
                          f"greedy ensemble selection with replacement, {ENSEMBLE_SIZE} rounds "
                          "(Caruana et al., 2004); compiled core"))


class KernelScore:
    """A core metric as a ``MetricSpec.score`` function: ``RunMetric.score``, the selection
    core's kernel scoring one prediction, so it agrees exactly with what a run computes."""

    def __init__(self, name: str) -> None:
        task = "regression" if CORE_METRICS[name].task == "regression" else "multiclass"
        self.metric = RunMetric(resolve_metric(name), task)

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        P = np.asarray(y_pred, dtype=float)
        return self.metric.score(P.reshape(len(P), -1), y_true)


@hookimpl
def autofuse_register_metrics(register: Callable[[MetricSpec], None]) -> None:
    for name, core in CORE_METRICS.items():
        if core.task == "regression":
            tasks = {"regression"}
        else:
            tasks = {"binary"} if core.binary_only else {"binary", "multiclass"}
        register(MetricSpec(name, KernelScore(name), core.greater_is_better, frozenset(tasks)))
