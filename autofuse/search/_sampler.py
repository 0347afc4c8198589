"""``LearnerFilter``: the run's sampler, minus the learners it has given up on.

A learner that keeps failing (or whose search space hangs) is disabled for the rest of the
run. The study's ``learner`` parameter keeps every learner among its choices (Optuna
refuses a categorical whose choices change), so the filter wraps the sampler instead: when
the sampler proposes a disabled learner it is asked again, and after a few refusals the
learner is drawn uniformly among those still enabled. Everything else is the wrapped
sampler's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.samplers import BaseSampler

#: Times the wrapped sampler is asked again before the filter draws a learner itself.
REDRAWS = 8


class LearnerFilter(BaseSampler):
    """``sampler``, never proposing a learner in ``disabled`` (names, shared with the
    search that fills it)."""

    def __init__(self, sampler: BaseSampler, disabled: dict[str, str]) -> None:
        self.sampler = sampler
        self.disabled = disabled

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                        search_space: dict[str, Any]) -> dict[str, Any]:
        params = self.sampler.sample_relative(study, trial, search_space)
        if params.get("learner") in self.disabled:
            params.pop("learner")  # drawn again, independently, below
        return params

    def sample_independent(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                           param_name: str, param_distribution: Any) -> Any:
        value = self.sampler.sample_independent(study, trial, param_name, param_distribution)
        if param_name != "learner" or value not in self.disabled:
            return value
        for _ in range(REDRAWS):
            value = self.sampler.sample_independent(study, trial, param_name,
                                                    param_distribution)
            if value not in self.disabled:
                return value
        enabled = [c for c in param_distribution.choices if c not in self.disabled]
        if not enabled:
            return value
        return enabled[np.random.default_rng(trial.number).integers(len(enabled))]

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.sampler.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                    state: Any, values: Any) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()
