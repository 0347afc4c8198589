"""LearnerSpec: everything the search needs to know about one kind of model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import optuna
    from sklearn.base import BaseEstimator

    from autofuse._data import DataSpec

TASKS = frozenset({"binary", "multiclass", "regression"})


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

    def supports(self, data: DataSpec) -> bool:
        """Whether this learner applies to the table described by ``data``."""
        return data.task in self.tasks and (self.max_rows is None or data.n_rows <= self.max_rows)
