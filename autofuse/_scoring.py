"""The metric of a run: defaults per task, checks against the task, and scoring predictions.

A run is judged by one metric: a name with a fused kernel in the core (``log_loss``,
``roc_auc``, ``rmse``...), any scikit-learn scorer name, or a scorer callable. Trials, the
pruner, the blend and the leaderboard all use it, through ``RunMetric.score``, which is
the selection core scoring one model, so a trial's score and the blend's are computed by
the same code.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from autofuse._core._greedy import select
from autofuse._core._metrics import CORE_METRICS
from autofuse._core._prepare import ResolvedMetric, resolve_metric

#: Probabilities this far outside [0, 1] are rounding errors of a blend, and are clipped.
ROUNDING = 1e-9

#: The metric used when none is given.
DEFAULT_METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


@dataclass(frozen=True)
class RunMetric:
    """The run's metric, resolved and checked against the task.

    Combiners receive it (``autofuse.metrics.Metric``): ``name``, ``greater_is_better``,
    ``task``, ``score(predictions, target)`` and ``selection`` (what
    ``CaruanaSelection(metric=...)`` takes).
    """

    resolved: ResolvedMetric
    task: str  # "binary", "multiclass", "regression"
    #: The scorer returns the metric negated (a lower-is-better plugin metric).
    negated: bool = False

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def greater_is_better(self) -> bool:
        core = self.resolved.core
        return (not self.negated) if core is None else core.greater_is_better

    @property
    def direction(self) -> str:
        """The Optuna study direction."""
        return "maximize" if self.greater_is_better else "minimize"

    @property
    def selection(self) -> Any:
        """The metric as the selection core takes it: a kernel name or a scorer."""
        return self.resolved.core.name if self.resolved.core else self.resolved.scorer

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b``."""
        return a > b if self.greater_is_better else a < b

    def reported(self, selection_score: float) -> float:
        """The metric's value for a score the selection core reports."""
        return -selection_score if self.negated else selection_score

    def score(self, predictions: np.ndarray, target: np.ndarray) -> float:
        """The metric's value for one model's predictions ``(n_rows, n_outputs)``
        (class probabilities, or values) against ``target`` (class codes, or values)."""
        P = np.asarray(predictions)
        if P.ndim == 1:
            P = P[:, None]
        if self.task != "regression":
            # A weighted average of probabilities can leave [0, 1] by a rounding error
            # (weights 7/50 + ... summing to 1 + 2e-16 over models that all predict 1.0).
            P = np.where((P > 1.0) & (P <= 1.0 + ROUNDING), 1.0,
                         np.where((P < 0.0) & (P >= -ROUNDING), 0.0, P))
        core_task = "regression" if self.task == "regression" else "classification"
        result = select(P[None], target, metric=self.selection, ensemble_size=1, n_threads=1,
                        task=core_task)
        return self.reported(float(result.score))


#: How a scorer callable is called (``sample_weight`` only when weights are given).
SCORER_SIGNATURE = "scorer(estimator, X, y, sample_weight=None) -> float, higher is better"


def check_scorer(metric: Any) -> None:
    """Refuse a ``metric`` that is neither a name nor a callable taking
    ``(estimator, X, y)``, naming what was given and what is expected."""
    if not callable(metric):
        raise ValueError(f"metric must be a metric name or a scorer callable {SCORER_SIGNATURE}; "
                         f"got {type(metric).__name__} {metric!r}")
    try:
        signature = inspect.signature(metric)
    except (TypeError, ValueError):  # a builtin or extension callable: its signature is unknown
        return
    try:
        signature.bind(None, None, None)
    except TypeError:
        name = getattr(metric, "__name__", None) or type(metric).__name__
        raise ValueError(
            f"metric {name!r} takes {signature}, but a scorer callable is called as "
            f"{SCORER_SIGNATURE}; a score(y_true, y_pred) function can be wrapped with "
            "sklearn.metrics.make_scorer") from None


def _scorer_task(scorer: Any) -> str | None:
    """The task family of a scikit-learn scorer, from the module of its score function."""
    module = getattr(getattr(scorer, "_score_func", None), "__module__", "") or ""
    if module.endswith(("._classification", "._ranking")):
        return "classification"
    if module.endswith("._regression"):
        return "regression"
    return None


def metric_task(metric: Any, registered: Mapping[str, Any] | None = None) -> str | None:
    """The task family ``metric`` implies: "classification" or "regression" for a metric
    made for one of them only (a core metric, a registered metric, a scikit-learn scorer
    name or ``make_scorer`` object), None when it does not say (None, a clustering scorer,
    any other callable, an unknown name: ``run_metric`` names the problem)."""
    if metric is None:
        return None
    if isinstance(metric, str):
        if metric in CORE_METRICS:
            return CORE_METRICS[metric].task
        if registered and metric in registered:
            tasks = set(registered[metric].tasks)
            if tasks <= {"binary", "multiclass"}:
                return "classification"
            return "regression" if tasks == {"regression"} else None
        from sklearn.metrics import get_scorer, get_scorer_names

        return _scorer_task(get_scorer(metric)) if metric in get_scorer_names() else None
    return _scorer_task(metric)


def run_metric(metric: Any, task: str, registered: Mapping[str, Any] | None = None) -> RunMetric:
    """Resolve ``metric`` (None picks the task's default) and check it fits ``task``.

    ``registered`` maps names to ``MetricSpec`` objects registered through the plugin hook;
    a registered name that is also a core kernel (the built-ins) uses the kernel. A
    callable must take ``(estimator, X, y)`` (``SCORER_SIGNATURE``).
    """
    if metric is None:
        metric = DEFAULT_METRICS[task]
    if not isinstance(metric, str):
        check_scorer(metric)
    if isinstance(metric, str) and registered and metric in registered \
            and metric not in CORE_METRICS:
        return _plugin_metric(registered[metric], task)
    try:
        resolved = resolve_metric(metric)
    except ValueError:
        if isinstance(metric, str) and registered:
            raise ValueError(
                f"unknown metric {metric!r}. Registered metrics: {', '.join(sorted(registered))}; "
                "also accepted: any scikit-learn scorer name (sklearn.metrics.get_scorer_names()) "
                "or a scorer callable scorer(estimator, X, y, sample_weight=None)") from None
        raise
    core = resolved.core
    if core is not None:
        wanted = "regression" if task == "regression" else "classification"
        if core.task != wanted:
            raise ValueError(f"metric {core.name!r} is for {core.task} but this is a {task} "
                             f"problem; for {task} the default is {DEFAULT_METRICS[task]!r}")
        if core.binary_only and task != "binary":
            raise ValueError(f"metric {core.name!r} is for binary problems; this one is {task}")
    return RunMetric(resolved, task)


class SpecScorer:
    """A plugin's metric (an ``autofuse.metrics.MetricSpec``) as a scikit-learn style
    scorer, higher always better (the core's generic path maximises a scorer):
    ``scorer(estimator, X, y, sample_weight=None)``. It is pickled with the models of a run
    judged by that metric."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.__name__ = spec.name

    def __call__(self, estimator: Any, X: Any, y: Any, sample_weight: Any = None) -> float:
        if sample_weight is not None:
            raise ValueError(f"metric {self.spec.name!r} does not take sample weights")
        if hasattr(estimator, "predict_proba"):
            pred = estimator.predict_proba(X)
        else:
            pred = estimator.predict(X)
        value = float(self.spec.score(np.asarray(y), np.asarray(pred)))
        return value if self.spec.greater_is_better else -value


def _plugin_metric(spec: Any, task: str) -> RunMetric:
    if task not in spec.tasks:
        raise ValueError(f"metric {spec.name!r} is for {', '.join(sorted(spec.tasks))} "
                         f"problems; this one is {task}")
    return RunMetric(ResolvedMetric(spec.name, None, SpecScorer(spec)), task,
                     negated=not spec.greater_is_better)
