"""Progress of a run. On a terminal (or in a notebook), a tqdm bar: trials, best score,
time left. Otherwise (a log file, a pipe, a CI job), plain timestamped lines through the
``autofuse`` logger: one at every new best score and at least every ``LINE_EVERY``
seconds, at the ``PROGRESS`` level. Every finished trial is also logged at INFO level."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from optuna.trial import TrialState

log = logging.getLogger("autofuse")

#: Level of the progress lines (between INFO and WARNING: shown at ``verbose=1``, where
#: info messages are not).
PROGRESS = 25
logging.addLevelName(PROGRESS, "PROGRESS")
#: Without a terminal, a progress line at least this often (seconds) while trials finish.
LINE_EVERY = 10.0

_STATES = {TrialState.COMPLETE: "done", TrialState.PRUNED: "stopped",
           TrialState.FAIL: "failed"}


def interactive() -> bool:
    """Whether a person watches the output: stderr is a terminal that has a width (a
    pseudo-terminal of width 0 shows no bar), or an IPython kernel (a notebook) runs
    this code."""
    try:
        if sys.stderr.isatty():
            return os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):
        return False
    shell = sys.modules.get("IPython")
    ip = getattr(shell, "get_ipython", lambda: None)() if shell else None
    return type(ip).__name__ == "ZMQInteractiveShell"


class Progress:
    """Counts finished trials; shows a bar or progress lines when ``verbose >= 1``."""

    def __init__(self, verbose: int, n_trials: int | None, deadline: float | None,
                 metric: Any, earlier: int = 0, best: float | None = None,
                 bar: bool | None = None) -> None:
        self.verbose, self.deadline, self.metric = verbose, deadline, metric
        self.n_trials, self.earlier = n_trials, earlier  # earlier: trials finished before
        self.best = best
        self.counts = {state: 0 for state in TrialState}
        self.last_line, self.lined = time.monotonic(), -1  # when, and after how many trials
        self.bar = None
        if verbose >= 1 and (interactive() if bar is None else bar):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n_trials, unit="trial", desc="autofuse", file=sys.stderr,
                            dynamic_ncols=True, leave=verbose >= 2 or None)

    def _left(self) -> str:
        if self.deadline is None:
            return ""
        return f"{max(0.0, self.deadline - time.monotonic()):.0f} s left"

    def __call__(self, trial: Any) -> None:
        self.counts[trial.state] += 1
        new_best = trial.state == TrialState.COMPLETE and (
            self.best is None or self.metric.better(trial.value, self.best))
        if new_best:
            self.best = trial.value
        if trial.state == TrialState.COMPLETE:  # the search logs the others, with reasons
            log.info("trial %d (%s) done: %s %.5g%s", trial.number,
                     trial.user_attrs.get("learner"), self.metric.name, trial.value,
                     "; new best" if new_best else "")
        if self.bar is not None:
            post = {}
            if self.best is not None:
                post["best"] = f"{self.best:.5g}"
            if self.deadline is not None:
                post["left"] = f"{max(0.0, self.deadline - time.monotonic()):.0f}s"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
        elif self.verbose >= 1 and (new_best or time.monotonic() - self.last_line >= LINE_EVERY):
            self.line()

    def summary(self) -> str:
        n = self._finished()
        total = f"/{self.n_trials}" if self.n_trials is not None else ""
        plural = "s" if (self.n_trials or n) != 1 else ""
        parts = [f"{n}{total} trial{plural} ({self.counts[TrialState.COMPLETE]} done, "
                 f"{self.counts[TrialState.PRUNED]} stopped, "
                 f"{self.counts[TrialState.FAIL]} failed)"]
        if self.earlier:
            parts[0] += f" (and {self.earlier} finished before)"
        if self.best is not None:
            parts.append(f"best {self.metric.name} {self.best:.5g}")
        if self._left():
            parts.append(self._left())
        return ", ".join(parts)

    def _finished(self) -> int:
        return sum(self.counts[s] for s in _STATES)

    def line(self) -> None:
        self.last_line, self.lined = time.monotonic(), self._finished()
        log.log(PROGRESS, "%s", self.summary())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.verbose >= 1 and self.lined != self._finished():
            self.line()
