"""``autofuse.worker`` and ``autofuse.fuse``: joining a shared run, and fusing it.

A run started in a database server (``fit(..., storage="postgresql://...")``) is recorded
in its study (``autofuse._shared_run``). Any number of workers, on any machines that reach
the database and the run's artifact store, join it with ``worker``: each runs trials of the
one study (Optuna's sampler sees every worker's results) until the run's deadline or trial
limit, sends heartbeats for its trials, and reaps the trials of workers that died. ``fuse``
builds the fused model from every finished trial, whichever worker ran it, as the run's
starter does at its deadline.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import Any

import numpy as np
from autofuse._api import _fuse, _logging, _resolve_learners
from autofuse._budget import Budget
from autofuse._core._greedy import default_threads
from autofuse._errors import input_errors
from autofuse._library import ModelLibrary
from autofuse._model import FusedModel, save_context
from autofuse._resources import max_disk_bytes, memory_limit_bytes
from autofuse._progress import PROGRESS
from autofuse._shared_run import WorkerTally, check_table, load_context, open_shared
from autofuse.learners import SOUP_LEARNERS
from autofuse.search import run_search
from autofuse.search._heartbeat import reap_stale
from autofuse.search._runner import SearchContext, worker_name
from autofuse.search._study import STUDY_NAME, sampler_and_pruner

log = logging.getLogger("autofuse")

#: Seconds a worker waits for the run's study to appear (started before the run).
WAIT_SECONDS = 60.0


def worker(storage: str, study_name: str = STUDY_NAME, *, artifacts: Any = None,
           X: Any = None, y: Any = None, n_jobs: int = 1, memory_limit: float | None = None,
           max_disk: float | None = None, wait: float = WAIT_SECONDS,
           verbose: int = 1) -> dict[str, Any]:
    """Join the shared run in ``storage`` (a database server's URL) under ``study_name``
    and run its trials until the run's deadline or trial limit.

    The run's table, folds, learners and metric come from its study and artifact store
    (``artifacts``: where this machine reaches the store, when not where the run's starter
    did). ``X``, ``y``: this worker's own copy of the table, checked against the run's
    fingerprint (refused when it differs). ``n_jobs`` trials run at a time in this worker;
    ``memory_limit`` and ``max_disk`` (GB) as in ``fit`` (the disk is this worker's cache;
    the shared store keeps every finished trial). A worker started before the run waits
    up to ``wait`` seconds for it.

    Refused before any trial (``ValueError``): a study that is not a shared autofuse run,
    another autofuse or plugin version than the run's starter, a missing plugin, another
    table. Returns what it did: ``{"worker", "trials": {"done", "stopped", "failed"},
    "seconds", "storage_seconds", "storage_calls"}``.
    """
    with _logging(int(verbose)), input_errors():
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or not (
                n_jobs >= 1 or n_jobs == -1):
            raise ValueError(f"n_jobs must be a positive integer or -1 (all cores), got "
                             f"{n_jobs!r}")
        if (X is None) != (y is None):
            raise ValueError("give both X and y (this worker's copy of the table), or neither")
        # An unseeded sampler: a seed shared by the workers would have them all propose
        # the same configurations; the study's history steers every worker's. The constant
        # liar keeps them from proposing what others are running.
        sampler, pruner = sampler_and_pruner(None, 2)
        study, run, store = open_shared(storage, study_name, artifacts=artifacts, wait=wait,
                                        sampler=sampler, pruner=pruner)
        cache = tempfile.mkdtemp(prefix="autofuse-worker-")
        try:
            context = load_context(run, store, cache)
            if X is not None:
                check_table(run, X, y, "this worker's table")
        except BaseException:
            _remove(cache)
            raise
        cores = default_threads()
        n_jobs = cores if n_jobs == -1 else int(n_jobs)
        trial_memory = memory_limit_bytes(memory_limit, n_jobs)
        disk = max_disk_bytes(max_disk, cache)
    metric = context["metric"]
    library = ModelLibrary(cache, greater_is_better=metric.greater_is_better,
                           keep_learners=SOUP_LEARNERS, max_bytes=disk, store=store,
                           prefix=study.study_name)
    ctx = SearchContext(context["frame"], context["target"], context["data"],
                        context["folds"], context["learners"], metric, library,
                        max(1, min(run.get("threads", 1), cores // n_jobs)),
                        seed=context["seed"], memory_limit=trial_memory,
                        trial_limit=run.get("trial_limit"))
    deadline = None if run.get("deadline") is None else (
        time.monotonic() + run["deadline"] - time.time())
    tally = WorkerTally(study)
    name = worker_name()
    with _logging(int(verbose)):
        log.log(PROGRESS, "worker %s joins study %r: %d learners, %s", name,
                study.study_name, len(ctx.learners), "no deadline" if deadline is None else
                f"{deadline - time.monotonic():.0f} s left")
        try:
            reap_stale(study)
            if deadline is None or deadline > time.monotonic():
                run_search(study, ctx, n_trials=None, deadline=deadline, n_jobs=n_jobs,
                           on_trial=tally)
            else:
                log.log(PROGRESS, "the run's search ended %.0f s ago: nothing to do",
                        time.monotonic() - deadline)
        finally:
            _remove(cache)  # this worker's cache: the store keeps what it finished
        return tally.finish()


def _remove(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def fuse(storage: str, study_name: str = STUDY_NAME, *, combiner: Any = "auto",
         combiner_options: dict[str, Any] | None = None, artifacts: Any = None,
         library: str | None = None, time_limit: float | None = None,
         random_state: int | None = None, verbose: int = 1) -> FusedModel:
    """The fused model of every finished trial of the shared run in ``storage`` under
    ``study_name``, whichever worker ran it: the model the run's starter would build from
    the same trials (same table, folds, metric and ``combiner``).

    ``library``: a folder where the trials' predictions and fold models are copied from the
    artifact store (kept, so ``model.fuse(...)`` can fuse them again; default: a temporary
    one). ``time_limit`` bounds the fusion (seconds, None for none). ``random_state``
    seeds the combiner (default: the run's seed). Refused (``ValueError``) as ``worker``
    refuses."""
    with _logging(int(verbose)):
        with input_errors():
            study, run, store = open_shared(storage, study_name, artifacts=artifacts)
            directory = library or tempfile.mkdtemp(prefix="autofuse-fuse-")
            os.makedirs(directory, exist_ok=True)
            context = load_context(run, store, directory)
            metric = context["metric"]
            if random_state is None:
                random_state = context["seed"]
            cores = default_threads()
            with_name = _combiner(combiner, combiner_options, metric, random_state, cores)
        store_lib = ModelLibrary(directory, greater_is_better=metric.greater_is_better,
                                 keep_learners=SOUP_LEARNERS, store=store,
                                 prefix=study.study_name)
        try:
            store_lib.sync(study)
            log.info("fusing %d finished trials of study %r", len(store_lib.entries),
                     study.study_name)
            save_context(directory, context["frame"], context["target"], context["folds"])
            budget = Budget(time_limit)
            budget.fusion_share = float(getattr(with_name[1], "time_share", 0.0) or 0.0)
            ctx = SearchContext(context["frame"], context["target"], context["data"],
                                context["folds"], _resolve_learners(
                                    list(context["learners"].values()), context["data"]),
                                metric, store_lib, 1, seed=context["seed"],
                                memory_limit=memory_limit_bytes(None, cores))
            model = _fuse(study, ctx, budget, with_name, False, random_state, cores,
                          directory if library else None, cores)
        finally:
            if library is None:
                _remove(directory)
    return model


def _combiner(combiner: Any, options: Any, metric: Any, random_state: Any, cores: int
              ) -> tuple[str, Any]:
    from autofuse import plugins
    from autofuse.combiners._fuse import make_combiner

    return make_combiner(combiner, options, plugins.combiners(), metric, random_state, cores)
