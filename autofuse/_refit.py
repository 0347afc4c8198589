"""``refit_full``: refit the blend's members on all rows, in a worker, within the budget."""

from __future__ import annotations

import logging
from multiprocessing.connection import wait
from typing import TYPE_CHECKING

from autofuse import _workers
from autofuse._core._greedy import default_threads
from autofuse._fold_models import read_models

if TYPE_CHECKING:
    from autofuse._budget import Budget
    from autofuse._member import Member
    from autofuse.search._runner import SearchContext

log = logging.getLogger("autofuse")

#: A refit on all rows is expected to take this many times one fold's fit.
REFIT_FACTOR = 1.5


def refit_members(members: list[Member], ctx: SearchContext, budget: Budget) -> None:
    """Replace each member's fold models by one model fitted on every row, in the order
    given, skipping (with a warning) any whose expected time exceeds what is left."""
    worker = _workers.POOL.acquire(1)[0]
    n_folds = len(ctx.folds)
    try:
        for member in members:
            entry = ctx.library.entries[member.trial]
            expected = REFIT_FACTOR * entry.fit_seconds / n_folds
            left = budget.left() - 0.5
            if expected > left:
                log.warning("refit of %s#%d skipped: expected %.1f s, %.1f s left; it keeps "
                            "its fold models", member.learner, member.trial, expected, left)
                continue
            path = ctx.library.path(f"trial-{member.trial}.refit.pkl")
            job = {"learner": member.learner, "params": member.params,
                   "threads": default_threads(), "seed": ctx.seed, "path": path,
                   "memory_limit": ctx.memory_limit}
            if worker.token != ctx.token:
                worker.conn.send(("data", ctx.token, ctx.payload()))
                worker.token = ctx.token
            worker.conn.send(("refit", ctx.token, job))
            message: tuple = ("started",)
            while message[0] == "started":
                if not wait([worker.conn], timeout=max(0.0, budget.left() - 0.5)):
                    message = ("timeout",)
                    break
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    worker = _workers.replace(worker)
                    message = ("error", "the worker process died", "")
            if message[0] == "timeout":
                worker = _workers.replace(worker)
                log.warning("refit of %s#%d stopped at the time limit; it keeps its fold "
                            "models", member.learner, member.trial)
                continue
            if message[0] != "done":
                log.warning("refit of %s#%d failed (%s); it keeps its fold models",
                            member.learner, member.trial, message[1])
                continue
            member.models = read_models(path)
    finally:
        _workers.POOL.release([worker])

