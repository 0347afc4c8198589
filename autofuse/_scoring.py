"""The metric of a run: defaults per task, checks against the task, and scoring predictions.

A run is judged by one metric: a name with a fused kernel in the core (``log_loss``,
``roc_auc``, ``rmse``...), any scikit-learn scorer name, or a scorer callable. Trials, the
pruner, the blend and the leaderboard all use it, through ``RunMetric.evaluate``, which is
the selection core scoring one model, so a trial's score and the blend's are computed by
the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from autofuse._core._greedy import select
from autofuse._core._prepare import ResolvedMetric, resolve_metric

#: The metric used when none is given.
DEFAULT_METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


@dataclass(frozen=True)
class RunMetric:
    """The run's metric, resolved and checked against the task."""

    resolved: ResolvedMetric
    task: str  # "binary", "multiclass", "regression"

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def greater_is_better(self) -> bool:
        core = self.resolved.core
        return True if core is None else core.greater_is_better

    @property
    def direction(self) -> str:
        """The Optuna study direction."""
        return "maximize" if self.greater_is_better else "minimize"

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b``."""
        return a > b if self.greater_is_better else a < b

    def evaluate(self, predictions: np.ndarray, target: np.ndarray) -> float:
        """The metric's value for one model's predictions ``(n_rows, n_outputs)``."""
        P = np.asarray(predictions)[None]
        core_task = "regression" if self.task == "regression" else "classification"
        result = select(P, target, metric=self.resolved.core.name if self.resolved.core
                        else self.resolved.scorer, ensemble_size=1, n_threads=1, task=core_task)
        return float(result.score)


def run_metric(metric: Any, task: str) -> RunMetric:
    """Resolve ``metric`` (None picks the task's default) and check it fits ``task``."""
    if metric is None:
        metric = DEFAULT_METRICS[task]
    resolved = resolve_metric(metric)
    core = resolved.core
    if core is not None:
        wanted = "regression" if task == "regression" else "classification"
        if core.task != wanted:
            raise ValueError(f"metric {core.name!r} is for {core.task} but this is a {task} "
                             f"problem; for {task} the default is {DEFAULT_METRICS[task]!r}")
        if core.binary_only and task != "binary":
            raise ValueError(f"metric {core.name!r} is for binary problems; this one is {task}")
    return RunMetric(resolved, task)
