"""LearnerSpec: everything the search needs to know about one kind of model."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from autofuse._core._greedy import default_threads

if TYPE_CHECKING:
    import optuna
    from sklearn.base import BaseEstimator

    from autofuse._data import DataSpec

TASKS = frozenset({"binary", "multiclass", "regression"})

_THREADS: ContextVar[int | None] = ContextVar("autofuse_trial_threads", default=None)


def trial_threads() -> int:
    """Threads the current trial may use: what a learner passes to a library that runs
    its own thread pool (LightGBM's ``n_jobs``, CatBoost's ``thread_count``...).

    autofuse sets it around every fit so that parallel trials never oversubscribe the cores
    (``cores // n_jobs``, fewer on small tables); outside a run it is the machine's cores.
    """
    value = _THREADS.get()
    return default_threads() if value is None else value


@contextmanager
def threads_for_trial(threads: int) -> Iterator[None]:
    """Within the block, ``trial_threads()`` is ``threads``."""
    token = _THREADS.set(max(1, int(threads)))
    try:
        yield
    finally:
        _THREADS.reset(token)


@dataclass(frozen=True)
class LearnerSpec:
    """A learner the search can tune.

    Parameters
    ----------
    name : unique name, used in the study and the leaderboard.
    tasks : the tasks it handles, a subset of {"binary", "multiclass", "regression"}.
    space : ``space(trial, data) -> params``: samples one configuration with the Optuna
        trial (parameter names are prefixed by the caller, so they stay conditional on the
        learner), ``data`` being the ``DataSpec`` of the table.
    build : ``build(params, data) -> estimator``: an unfitted scikit-learn estimator
        (a Pipeline with its own preprocessing, fitted per fold, so nothing leaks).
    portfolio : known-good configurations tried before the search samples any; each is a
        dict ``build`` accepts (cheap ones first).
    cost : relative cost of one fit, 1.0 being a default histogram gradient boosting; the
        search orders portfolio entries and guards budgets with it.
    max_rows : the learner is skipped on tables with more rows (e.g. kernel SVMs).

    Seeds and threads: every ``random_state`` parameter of the built estimator (at any depth
    of a Pipeline) that ``build`` leaves at None is set to the run's ``random_state``, so a
    seeded run is reproducible. A library with its own thread pool should take its thread
    count from ``autofuse.learners.trial_threads()`` inside ``build``.
    """

    name: str
    tasks: frozenset[str]
    space: Callable[[optuna.trial.BaseTrial, DataSpec], dict[str, Any]]
    build: Callable[[dict[str, Any], DataSpec], BaseEstimator]
    portfolio: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    cost: float = 1.0
    max_rows: int | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a LearnerSpec needs a non-empty string name")
        unknown = set(self.tasks) - TASKS
        if not self.tasks or unknown:
            raise ValueError(f"learner {self.name!r}: tasks must be a non-empty subset of "
                             f"{sorted(TASKS)}; got {sorted(self.tasks)}")
        if not callable(self.space) or not callable(self.build):
            raise ValueError(f"learner {self.name!r}: space and build must be callables")
        if self.cost <= 0:
            raise ValueError(f"learner {self.name!r}: cost must be positive")

    def estimator(self, params: dict[str, Any], data: DataSpec, seed: int | None = None
                  ) -> BaseEstimator:
        """``build(params, data)``, with every ``random_state`` left at None set to ``seed``."""
        model = self.build(params, data)
        if seed is not None and hasattr(model, "get_params"):
            unset = {k: seed for k, v in model.get_params(deep=True).items()
                     if (k == "random_state" or k.endswith("__random_state")) and v is None}
            if unset:
                model.set_params(**unset)
        return model

    def supports(self, data: DataSpec) -> bool:
        """Whether this learner applies to the table described by ``data``."""
        return data.task in self.tasks and (self.max_rows is None or data.n_rows <= self.max_rows)
