"""The search: one Optuna study over learners and their parameters, run in killable workers.

``open_study`` creates or reopens the study (TPE sampler, percentile pruner, any Optuna
storage); ``enqueue_portfolio`` queues the learners' known-good configurations, cheap ones
first; ``run_search`` asks the study for trials, cross-fits them in worker processes,
prunes hopeless ones after their first folds, stops any that would overrun the budget, and
adds every finished trial to the model library.
"""

from autofuse.search._runner import run_search
from autofuse.search._study import enqueue_portfolio, open_study, sample

__all__ = ["enqueue_portfolio", "open_study", "run_search", "sample"]
