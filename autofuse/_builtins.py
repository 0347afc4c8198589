"""The built-in plugin: autofuse's own learners, combiners and metrics, registered through
the same hooks as any installed plugin's (so the built-ins prove the mechanism)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from autofuse._core._metrics import CORE_METRICS
from autofuse._core._prepare import resolve_metric
from autofuse._scoring import RunMetric
from autofuse.combiners import Combiner, CombinerSpec
from autofuse.hookspecs import hookimpl
from autofuse.learners import BUILTIN_LEARNERS, LearnerSpec
from autofuse.metrics import MetricSpec

#: Rounds of greedy selection (with replacement) for the blend.
ENSEMBLE_SIZE = 50


@hookimpl
def autofuse_register_learners(register: Callable[[LearnerSpec], None]) -> None:
    for spec in BUILTIN_LEARNERS:
        register(spec)


def _caruana(metric: Any, random_state: Any, n_threads: Any, ensemble_size: int = ENSEMBLE_SIZE,
             init_size: int = 0, n_bags: int = 1, bag_fraction: float = 0.5) -> Combiner:
    from autofuse.combiners._caruana import Caruana

    return Caruana(ensemble_size, init_size, n_bags, bag_fraction)


def _best(metric: Any, random_state: Any, n_threads: Any) -> Combiner:
    from autofuse.combiners._best import BestSingle

    return BestSingle()


def _average(metric: Any, random_state: Any, n_threads: Any, k: int | None = None,
             max_k: int = 25) -> Combiner:
    from autofuse.combiners._average import TopKAverage

    return TopKAverage(k, max_k)


def _stacking(metric: Any, random_state: Any, n_threads: Any, **options: Any) -> Combiner:
    from autofuse.combiners._stacking import Stacking

    return Stacking(**options)


def _prune(metric: Any, random_state: Any, n_threads: Any, **options: Any) -> Combiner:
    from autofuse.combiners._prune import Prune

    return Prune(**options)


def _auto(metric: Any, random_state: Any, n_threads: Any, candidates: Any = None,
          prefer: Any = "default") -> Combiner:
    """``auto`` compares registered combiners (plugins' too), each built with its
    defaults; ``prefer`` (default caruana, when it is a candidate) is kept unless another
    is clearly better out of sample; None: the best outer score."""
    from autofuse import plugins
    from autofuse.combiners._auto import AUTO_CANDIDATES, AUTO_PREFER, Auto

    names = list(AUTO_CANDIDATES if candidates is None else
                 [candidates] if isinstance(candidates, str) else candidates)
    known = plugins.combiners()
    unknown = [n for n in names if n not in known or n == "auto"]
    if not names or unknown:
        raise ValueError(f"auto: candidates must name registered combiners other than auto; "
                         f"unknown: {unknown or 'none given'}; available: "
                         f"{', '.join(sorted(set(known) - {'auto'}))}")
    if prefer == "default":
        prefer = AUTO_PREFER if AUTO_PREFER in names else None
    return Auto({n: known[n].make(metric, random_state, n_threads) for n in names}, prefer)


def _distill(metric: Any, random_state: Any, n_threads: Any, teacher: str = "auto",
             teacher_options: dict[str, Any] | None = None,
             student: str = "hist_gradient_boosting", params: dict[str, Any] | None = None,
             augment: float | None = None, max_augmented: int | None = None,
             label_weight: float | None = None) -> Combiner:
    """``distill``: the ``teacher`` combiner (built with ``teacher_options``) distilled into
    the registered learner ``student``."""
    from autofuse import plugins
    from autofuse.combiners._distill import AUGMENT, LABEL_WEIGHT, MAX_AUGMENTED, Distill

    known = plugins.combiners()
    if not isinstance(teacher, str) or teacher not in known or teacher in ("distill", "soup"):
        raise ValueError(f"distill: teacher must name a registered combiner of the members' "
                         f"predictions, got {teacher!r}; available: "
                         f"{', '.join(sorted(set(known) - {'distill', 'soup'}))}")
    learners = plugins.learners()
    if not isinstance(student, str) or student not in learners:
        raise ValueError(f"distill: unknown student learner {student!r}; available: "
                         f"{', '.join(sorted(learners))}")
    if metric.task not in learners[student].tasks:
        raise ValueError(f"distill: student {student!r} does not handle {metric.task} tasks")
    built = known[teacher].make(metric, random_state, n_threads, teacher_options)
    return Distill(built, teacher, learners[student], params,
                   AUGMENT if augment is None else augment,
                   MAX_AUGMENTED if max_augmented is None else max_augmented,
                   LABEL_WEIGHT if label_weight is None else label_weight)


def _soup(metric: Any, random_state: Any, n_threads: Any, method: str = "greedy",
          merge: bool = False, max_ingredients: int = 25) -> Combiner:
    from autofuse.combiners._soup import Soup

    return Soup(method, merge, max_ingredients)


@hookimpl
def autofuse_register_combiners(register: Callable[[CombinerSpec], None]) -> None:
    register(CombinerSpec("best", _best, "the single best model by out-of-fold score"))
    register(CombinerSpec("average", _average, "uniform average of the k best models "
                          "(k chosen on out-of-fold score); soft voting"))
    register(CombinerSpec("caruana", _caruana,
                          f"greedy ensemble selection with replacement, {ENSEMBLE_SIZE} rounds "
                          "(Caruana et al., 2004); compiled core"))
    register(CombinerSpec("stacking", _stacking, "a level-2 model on the members' "
                          "out-of-fold predictions (non-negative linear by default)"))
    register(CombinerSpec("prune", _prune, "the best blend within a budget of members, "
                          "bytes or seconds per row; reports the Pareto front"))
    register(CombinerSpec("auto", _auto, "caruana, unless best, average or stacking is "
                          "clearly better out of sample (nested cross-validation)"))
    register(CombinerSpec("distill", _distill, "one fast student learner trained on a "
                          "teacher fusion's out-of-fold probabilities and synthetic rows"))
    register(CombinerSpec("soup", _soup, "one model whose parameters average compatible "
                          "models' (linear, mlp_soup); greedy or uniform, fold by fold"))


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
