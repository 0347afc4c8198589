"""Progress of a run: a tqdm bar on the terminal (trials, best score, time left) and
messages through the ``autofuse`` logger."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from optuna.trial import TrialState

log = logging.getLogger("autofuse")


class Progress:
    """Counts finished trials; shows a bar when ``verbose >= 1``."""

    def __init__(self, verbose: int, n_trials: int | None, deadline: float | None,
                 metric: Any) -> None:
        self.verbose, self.deadline, self.metric = verbose, deadline, metric
        self.best: float | None = None
        self.counts = {state: 0 for state in TrialState}
        self.bar = None
        if verbose >= 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n_trials, unit="trial", desc="autofuse", file=sys.stderr,
                            dynamic_ncols=True, leave=verbose >= 2 or None)

    def __call__(self, trial: Any) -> None:
        self.counts[trial.state] += 1
        if trial.state == TrialState.COMPLETE and (
                self.best is None or self.metric.better(trial.value, self.best)):
            self.best = trial.value
            log.info("trial %d (%s): new best %s %.5g", trial.number,
                     trial.user_attrs.get("learner"), self.metric.name, trial.value)
        if self.bar is not None:
            post = {}
            if self.best is not None:
                post["best"] = f"{self.best:.5g}"
            if self.deadline is not None:
                post["left"] = f"{max(0.0, self.deadline - time.monotonic()):.0f}s"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
