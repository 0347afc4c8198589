"""Metrics a run can be judged by: ``MetricSpec`` describes one for the plugin hook.

The built-in metrics (``log_loss``, ``roc_auc``, ``rmse``...) have fused kernels in the
selection core and register through the same hook as a plugin's (the built-in plugin,
``autofuse._builtins``). A plugin's metric runs through the core's generic path: slower
than a kernel, but every part of a run (trial scores, pruning, the blend, the leaderboard)
uses it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from autofuse._scoring import RunMetric as Metric
from autofuse._scoring import SpecScorer  # noqa: F401  (models pickled before it moved)
from autofuse.learners._spec import TASKS

__all__ = ["Metric", "MetricSpec"]


@dataclass(frozen=True)
class MetricSpec:
    """A metric a plugin registers.

    Parameters
    ----------
    name : unique name; ``autofuse.fit(..., metric=name)`` selects it.
    score : ``score(y_true, y_pred) -> float``. For classification ``y_true`` holds class
        codes ``0..n_classes-1`` (the order of ``FusedModel.classes_``) and ``y_pred`` the
        class probabilities, shape ``(n_rows, n_classes)``; for regression both are
        ``(n_rows,)`` values. Must be a module-level function (it is pickled with models).
    greater_is_better : whether higher values are better; scores are reported as the
        function returns them either way.
    tasks : the tasks it applies to, a subset of {"binary", "multiclass", "regression"}.
    """

    name: str
    score: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool
    tasks: frozenset[str]

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a MetricSpec needs a non-empty string name")
        if not callable(self.score):
            raise ValueError(f"metric {self.name!r}: score must be a callable "
                             "score(y_true, y_pred) -> float")
        unknown = set(self.tasks) - TASKS
        if not self.tasks or unknown:
            raise ValueError(f"metric {self.name!r}: tasks must be a non-empty subset of "
                             f"{sorted(TASKS)}; got {sorted(self.tasks)}")
        object.__setattr__(self, "tasks", frozenset(self.tasks))

