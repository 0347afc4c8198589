"""``autofuse.fit``: the one-call AutoML run, from a table to a fused model."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from autofuse import plugins
from autofuse._artifacts import safe_name

from autofuse._budget import Budget
from autofuse._core._greedy import default_threads
from autofuse._cv import make_folds
from autofuse._data import describe
from autofuse._errors import input_errors
from autofuse._library import ModelLibrary
from autofuse._model import FusedModel, build_model, save_context
from autofuse._progress import PROGRESS, Progress, interactive
from autofuse._refit import refit_members
from autofuse._resources import max_disk_bytes, memory_limit_bytes
from autofuse._scoring import metric_task, run_metric
from autofuse.combiners._fuse import fuse_view, library_view, make_combiner
from autofuse.learners import SOUP_LEARNERS, LearnerSpec
from autofuse.search import enqueue_portfolio, open_study, run_search
from autofuse.search._heartbeat import has_heartbeats, reap_stale
from autofuse.search._runner import SearchContext
from autofuse.search._study import STUDY_NAME

log = logging.getLogger("autofuse")

#: A trial gets one more thread (up to its share of the cores) per this many rows.
ROWS_PER_THREAD = 10_000
#: The combiner a run uses unless told otherwise: on the 14 shared tables its test score
#: was at least caruana's on 13 and the best single model's on 12 (docs/benchmarks.md).
DEFAULT_COMBINER = "auto"
#: The combiner a run falls back to when the one asked for fails.
FALLBACK_COMBINER = "caruana"
#: A shared run's artifact store unless ``artifacts=`` names one (in the working folder).
SHARED_ARTIFACTS = "autofuse-artifacts"


def _resolve_learners(learners: Any, data: Any) -> dict[str, LearnerSpec]:
    known = plugins.learners()
    if learners is None:
        chosen = list(known.values())
    else:
        if isinstance(learners, (str, LearnerSpec)):
            learners = [learners]
        chosen = []
        for item in learners:
            if isinstance(item, LearnerSpec):
                chosen.append(item)
            elif isinstance(item, str) and item in known:
                chosen.append(known[item])
            else:
                raise ValueError(f"unknown learner {item!r}; available: {', '.join(sorted(known))}"
                                 " (installed plugins add more: autofuse plugins)")
        names = [s.name for s in chosen]
        if len(set(names)) != len(names):
            raise ValueError(f"learner names must be unique; got {names}")
    usable = {s.name: s for s in chosen if s.supports(data)}
    if not usable:
        raise ValueError(f"none of the learners {[s.name for s in chosen]} handles a "
                         f"{data.task} task with {data.n_rows} rows")
    return usable


def _check_args(time_limit: Any, n_trials: Any, n_jobs: Any, verbose: Any,
                storage: Any = None, refit_full: Any = False) -> None:
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(
            time_limit, (int, float)) or not time_limit > 0 or time_limit == float("inf")):
        raise ValueError(f"time_limit must be a positive, finite number of seconds, got "
                         f"{time_limit!r}; use time_limit=None for no limit")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(
            n_trials, (int, np.integer)) or n_trials < 0):
        raise ValueError(f"n_trials must be a non-negative integer or None, got {n_trials!r}")
    if time_limit is None and n_trials is None:
        raise ValueError("give time_limit, n_trials or both: the run needs a way to end")
    if n_trials == 0 and storage is None:
        raise ValueError("n_trials=0 runs no trial: it only fuses again the finished trials "
                         "a storage holds (storage='sqlite:///run.db' of an earlier run); "
                         "without a storage give n_trials >= 1 or None")
    if not isinstance(refit_full, (bool, np.bool_)):
        raise ValueError(f"refit_full must be True or False, got {refit_full!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or not (
            n_jobs >= 1 or n_jobs == -1):
        raise ValueError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}")
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")


def _check_shared(storage: Any, study_name: Any, artifacts: Any) -> None:
    if not isinstance(study_name, str) or not study_name.strip():
        raise ValueError(f"study_name must be a non-empty string, got {study_name!r}")
    if artifacts is not None and storage is None:
        raise ValueError("artifacts= is the store of a run shared by workers; give a database "
                         "server's storage too (storage='postgresql://...')")


def _fingerprint(frame: pd.DataFrame, target: np.ndarray, data: Any, metric: Any,
                 folds: list) -> str:
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    h.update(",".join(frame.columns).encode())
    h.update(np.ascontiguousarray(target).tobytes())
    h.update(f"{data.task}|{metric.name}".encode())
    for _, valid in folds:
        h.update(np.asarray(valid, dtype=np.int64).tobytes())
    return h.hexdigest()


def _library_dir(storage: Any, study_name: str = STUDY_NAME) -> str | None:
    """Where a persistent run keeps its model library: beside a SQLite file
    (``run.db.library/``, ``run.db.NAME.library/`` for a study not named the default),
    else in the working folder, named after the storage and the study."""
    if storage is None:
        return None
    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    if isinstance(url, str) and url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        return path + (".library" if study_name == STUDY_NAME else
                       f".{safe_name(study_name)}.library")
    key = hashlib.sha256(f"{url or id(storage)}\x1f{study_name}".encode()).hexdigest()[:12]
    return os.path.abspath(f"autofuse-library-{key}")


@contextmanager
def _logging(verbose: int) -> Iterator[None]:
    """Messages of the ``autofuse`` logger for one call. Unless the application configured
    logging itself, they go to stderr (with a timestamp when it is not a terminal), at the
    level ``verbose`` asks for; a level set on the ``autofuse`` logger is left alone."""
    optuna_level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    handler = None
    if verbose >= 1 and not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(
            "autofuse: %(message)s" if interactive() else
            "%(asctime)s autofuse: %(message)s", "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
    level = log.level
    if level == logging.NOTSET:
        log.setLevel(logging.INFO if verbose >= 2 else PROGRESS if verbose else logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(optuna_level)
        log.setLevel(level)
        if handler is not None:
            log.removeHandler(handler)


def fit(X: Any, y: Any, *, time_limit: float | None = 60, n_trials: int | None = None,
        metric: Any = None, task: str | None = None, cv: Any = 5, groups: Any = None,
        learners: Any = None, combiner: Any = DEFAULT_COMBINER,
        combiner_options: dict[str, Any] | None = None, storage: Any = None,
        study_name: str = STUDY_NAME, artifacts: Any = None,
        n_jobs: int = -1, memory_limit: float | None = None, max_disk: float | None = None,
        refit_full: bool = False, random_state: int | None = None,
        verbose: int = 1) -> FusedModel:
    """Search many learners on ``X``, ``y`` and fuse the best into one model.

    Parameters
    ----------
    X : DataFrame or 2-D array (a scipy sparse matrix is made dense, up to 1 GB); numeric,
        categorical, text, bool and datetime columns (dates become year, month, day,
        day of week, hour and timestamp features), numbers stored as text ("?", "NA"
        and other markers read as missing; ``data_summary()`` says what was read how),
        missing values.
    y : array, Series or list; labels may be strings.
    time_limit : seconds for the whole call (search, fusion, refit); None for no limit.
        The call returns within ``time_limit`` plus 5%.
    n_trials : most trials to start in this call; None for as many as time allows.
    metric : a registered metric (the built-ins ``"roc_auc"``, ``"log_loss"``,
        ``"accuracy"``, ``"rmse"``, ...; plugins add others), any scikit-learn scorer name,
        or a scorer callable. Default: roc_auc (binary), log_loss (multiclass), rmse
        (regression).
    task : "binary", "multiclass", "regression", "classification" or None (inferred).
    cv : number of folds (stratified for classification), or a scikit-learn splitter or
        iterable of splits; above 200,000 rows an integer becomes a holdout split.
    groups : group labels kept within one fold.
    learners : names of registered learners (built-in or from plugins) and/or
        ``LearnerSpec`` objects; None for all that handle the task.
    combiner : how the library is fused: a registered combiner's name or a
        ``CombinerSpec``. Built in: ``"auto"`` (the default: caruana, unless best,
        average or stacking is clearly better out of sample), ``"caruana"``, ``"best"``,
        ``"average"``, ``"stacking"`` and ``"prune"`` (needs a budget in
        ``combiner_options``); plugins add others. Every combiner is
        scored in sample and by nested cross-validation (``outer_score_``). A combiner
        that fails falls back to ``"caruana"`` with a warning, noted in the leaderboard.
    combiner_options : the combiner's options, e.g. ``{"infer_limit": 1e-4}`` for
        ``"prune"``, ``{"level2": "gbm"}`` for ``"stacking"`` (docs/fit.md lists them);
        checked before the search starts.
    storage : None (the study in memory), or an Optuna storage URL such as
        ``"sqlite:///run.db"``: the study and the model library (``run.db.library/``)
        persist, and a later call with the same storage and data resumes the run. A
        database server's URL (``"postgresql://user@host/db"``, driver: ``pip install
        'autofuse[postgres]'``) starts a run that workers on other machines join
        (``autofuse.worker``, ``autofuse worker``): their trials go to the same study and
        the shared ``artifacts`` store, and this call fuses every finished trial,
        whichever worker ran it (docs/distributed.md).
    study_name : the study's name inside ``storage`` (several runs may share a database).
    artifacts : a shared run's artifact store, where every worker writes its trials' fold
        models and predictions: a folder every machine mounts (default:
        ``./autofuse-artifacts``, made if missing), an ``s3://bucket/prefix`` URL
        (``pip install 'autofuse[s3]'``) or an Optuna artifact store. Only for a storage in
        a database server.
    n_jobs : trials run in parallel worker processes; -1 (the default): one per core.
        Each trial's libraries get ``cores // n_jobs`` threads (one on small tables), so
        trials x threads stay within the cores.
    memory_limit : GB each trial may use (its worker process: the table, the learner's
        fit, its fold models); a trial past it fails "out of memory (limit X GB)" and the
        run goes on. Default: 60% of the memory available at the start, shared by the
        ``n_jobs`` trials, at least 1 GB.
    max_disk : GB the model library's fold models may take on disk; past it the worst
        trials lose theirs (they stay in the leaderboard, but cannot be members). Default:
        half the free space where the library lives, at most 10 GB. Only the 100 best
        trials keep fold models in any case.
    refit_full : refit the blend's members on all rows (instead of averaging their fold
        models) if the time left allows.
    random_state : seeds the folds (0 when None), the sampler and the learners (every
        ``random_state`` they leave unset), so a run with a given seed is reproducible.
    verbose : 0 silent, 1 a progress bar and warnings, 2 also info messages.
    """
    return run(X, y, time_limit=time_limit, n_trials=n_trials, metric=metric, task=task,
               cv=cv, groups=groups, learners=learners, combiner=combiner,
               combiner_options=combiner_options, storage=storage,
               n_jobs=n_jobs, memory_limit=memory_limit, max_disk=max_disk,
               refit_full=refit_full, random_state=random_state,
               verbose=verbose, library_dir=_library_dir(storage, study_name),
               study_name=study_name,
               artifacts=artifacts)


def run(X: Any, y: Any, *, time_limit: float | None, n_trials: int | None, metric: Any,
        task: str | None, cv: Any, groups: Any, learners: Any, combiner: Any,
        combiner_options: dict[str, Any] | None, storage: Any,
        n_jobs: int, refit_full: bool, random_state: int | None, verbose: int,
        library_dir: str | None, memory_limit: float | None = None,
        max_disk: float | None = None, saves_model: bool = False,
        study_name: str = STUDY_NAME, artifacts: Any = None,
        table_path: str | None = None) -> FusedModel:
    """``fit`` with the model library in ``library_dir`` (a temporary directory when None):
    the command line keeps it in the run folder, and saves the model within the budget
    (``saves_model``: the search leaves time to write the members too; ``table_path``: the
    table's file, which a shared run records). Bad input raises ``InputError`` before any
    trial starts."""
    budget = Budget(time_limit, refit_full=bool(refit_full))
    with input_errors():
        _check_args(time_limit, n_trials, n_jobs, verbose, storage, refit_full)
        _check_shared(storage, study_name, artifacts)
    verbose = int(verbose)
    with _logging(verbose):
        return _fit(X, y, budget=budget, n_trials=n_trials, metric=metric, task=task, cv=cv,
                    groups=groups, learners=learners, combiner=combiner,
                    combiner_options=combiner_options, storage=storage,
                    n_jobs=n_jobs, memory_limit=memory_limit, max_disk=max_disk,
                    refit_full=refit_full, random_state=random_state,
                    verbose=verbose, library_dir=library_dir, saves_model=saves_model,
                    study_name=study_name, artifacts=artifacts, table_path=table_path)


def _warn_rare_classes(target: np.ndarray, data: Any, cv: Any) -> None:
    """A class rarer than the folds is kept: folds that lack it predict it with
    probability 0 for their rows, which the metric and the blend take as they are."""
    if data.task == "regression" or not isinstance(cv, (int, np.integer)):
        return
    counts = np.bincount(target, minlength=len(data.classes))
    rare = np.flatnonzero(counts < cv)
    if rare.size:
        shown = ", ".join(f"{data.classes[k]!r} ({counts[k]} rows)" for k in rare[:5])
        log.warning("%d class(es) have fewer rows than the %d folds: %s; some folds train "
                    "without them", rare.size, cv, shown)


def _fit(X: Any, y: Any, *, budget: Budget, n_trials: int | None, metric: Any,
         task: str | None, cv: Any, groups: Any, learners: Any, combiner: Any,
         combiner_options: dict[str, Any] | None, storage: Any,
         n_jobs: int, memory_limit: float | None, max_disk: float | None, refit_full: bool,
         random_state: int | None, verbose: int, library_dir: str | None,
         saves_model: bool = False, study_name: str = STUDY_NAME, artifacts: Any = None,
         table_path: str | None = None) -> FusedModel:
    with input_errors():
        implied = None if task is not None else metric_task(metric, plugins.metrics())
        frame, target, data = describe(X, y, task=task, metric_task=implied)
        if implied is not None and (data.task == "regression") == (implied == "regression"):
            log.info("metric %r implies a %s task", metric, implied)
        run_metric_ = run_metric(metric, data.task, plugins.metrics())
        specs = _resolve_learners(learners, data)
        folds = make_folds(target, data, cv, groups,
                           random_state if random_state is not None else 0)
    for col in data.columns:
        if col.action == "drop":
            log.warning("column %r dropped: %s", col.name, col.reason)
    _warn_rare_classes(target, data, cv)
    cores = default_threads()
    n_jobs = cores if n_jobs == -1 else int(n_jobs)
    # Thread pools only pay off on larger tables: on a few thousand rows OpenMP's
    # synchronisation costs more than a second thread gives (HistGradientBoosting on 455 rows:
    # 0.18 s with one thread, 0.32 s with two), so small tables get one thread per trial.
    threads = max(1, min(cores // n_jobs, -(-data.n_rows // ROWS_PER_THREAD)))
    with input_errors():
        combiner_built = make_combiner(combiner, combiner_options, plugins.combiners(),
                                       run_metric_, random_state, cores)
        trial_memory = memory_limit_bytes(memory_limit, n_jobs)
        disk = max_disk_bytes(max_disk, os.path.dirname(os.path.abspath(library_dir))
                              if library_dir else tempfile.gettempdir())
    budget.fusion_share = float(getattr(combiner_built[1], "time_share", 0.0) or 0.0)

    with input_errors():
        study, resumed = open_study(storage, run_metric_,
                                    _fingerprint(frame, target, data, run_metric_, folds),
                                    random_state, n_jobs, study_name)
        shared = has_heartbeats(study._storage)
        if artifacts is not None and not shared:
            raise ValueError("artifacts= is the store of a run shared by workers; give a "
                             "database server's storage too (storage='postgresql://...')")
        store = location = None
        if shared:
            from autofuse._artifacts import open_store

            # A resumed run's store is the one its study records, unless told otherwise.
            recorded = study.user_attrs.get("autofuse_run", {}).get("artifacts")
            location = artifacts if artifacts is not None else recorded or os.path.abspath(
                SHARED_ARTIFACTS)
            store = open_store(location, create=True)
    library = ModelLibrary(library_dir, greater_is_better=run_metric_.greater_is_better,
                           keep_learners=SOUP_LEARNERS,
                           max_bytes=disk, saves_model=saves_model, store=store,
                           prefix=study.study_name)
    try:
        if resumed:
            _resume(study, library)
        ctx = SearchContext(frame, target, data, folds, specs, run_metric_, library, threads,
                            seed=random_state, memory_limit=trial_memory)
        if shared and n_trials != 0:  # (a call that only fuses leaves the run's budget be)
            from autofuse._shared_run import record_run

            with input_errors():
                record_run(study, store, location, ctx, deadline=budget.search_deadline,
                           n_trials=n_trials, table_path=table_path,
                           target_name=getattr(y, "name", None))
        if n_trials != 0:  # a call that only fuses again queues nothing
            enqueue_portfolio(study, specs)
        earlier = [t.value for t in study.get_trials(deepcopy=False,
                                                     states=(TrialState.COMPLETE,))]
        progress = Progress(verbose, n_trials, budget.search_deadline, run_metric_,
                            earlier=len(earlier), best=(
                                max if run_metric_.greater_is_better else min)(earlier)
                            if earlier else None)
        on_trial: Any = progress
        if shared:  # the starter's share of the trials and of the storage time
            from autofuse._shared_run import WorkerTally

            on_trial = WorkerTally(study, then=progress)
        try:
            if n_trials != 0:
                run_search(study, ctx, n_trials=None if shared else n_trials,
                           deadline=budget.search_deadline, n_jobs=n_jobs, on_trial=on_trial,
                           wait_for_others=shared)
        finally:
            progress.close()
            if shared and n_trials != 0:
                on_trial.finish()
        if shared:  # every trial the other workers finished
            library.sync(study)
        if library.persistent:
            save_context(library.directory, frame, target, folds)
        model = _fuse(study, ctx, budget, combiner_built, refit_full, random_state, cores,
                      library_dir, n_jobs)
        model.target_name_ = getattr(y, "name", None)
        return model
    finally:
        library.close()


def _resume(study: optuna.Study, library: ModelLibrary) -> None:
    """Reuse the finished trials of an earlier call. A trial still marked running was cut
    off when that call stopped (killed, interrupted): it is marked failed, the files it may
    have left are removed, and its configuration is queued once more (once: a trial that was
    itself such a retry is not retried again, in case it is what killed the run).

    In a shared study (heartbeats on) a running trial may be another worker's live one: only
    those whose heartbeats stopped are failed and queued again (``reap_stale``)."""
    from autofuse.search._heartbeat import requeue

    restored = retried = 0
    if has_heartbeats(study._storage):
        retried = len(reap_stale(study))
        restored = library.sync(study)
        log.info("joined a shared study of %d trials; %d finished trials reused, %d trials "
                 "of dead workers queued again", len(study.trials), restored, retried)
        return
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING:
            study._storage.set_trial_user_attr(
                t._trial_id, "reason", "interrupted: the run stopped while it was running")
            study.tell(t.number, state=TrialState.FAIL)
            library.discard_files(t.number)
            retried += requeue(study, t)
        elif t.state == TrialState.COMPLETE:
            restored += library.restore_trial(t)
    log.info("resumed a study of %d trials; %d finished trials reused, %d interrupted "
             "trials queued again", len(study.trials), restored, retried)


def _fuse(study: optuna.Study, ctx: SearchContext, budget: Budget, combiner: tuple[str, Any],
          refit_full: bool, random_state: int | None, cores: int,
          library_dir: str | None, n_jobs: int = 1) -> FusedModel:
    library = ctx.library
    if not library.entries:
        reasons = [f"trial {t.number} ({t.user_attrs.get('learner')}): "
                   f"{t.user_attrs.get('reason', t.state.name.lower())}"
                   for t in study.get_trials(deepcopy=False)
                   if t.state in (TrialState.FAIL, TrialState.PRUNED)][:5]
        detail = "; ".join(reasons) if reasons else "no trial could start"
        raise RuntimeError(f"no trial finished within the budget ({detail}). "
                           "Give a larger time_limit or other learners")
    # Fusion must leave time to load the members it picks (forests run to gigabytes): past
    # this deadline auto tries no more combiners and prune stops measuring.
    deadline = None if budget.deadline is None else (
        budget.deadline - library.load_seconds(ctx.metric.greater_is_better))
    view = library_view(library, ctx.target, ctx.folds, ctx.metric, frame=ctx.frame,
                        data=ctx.data, random_state=random_state, n_threads=cores,
                        deadline=deadline, memory_limit=ctx.memory_limit,
                        n_workers=n_jobs, extra_learners=getattr(combiner[1], "wants_learners", ()))
    name, built = combiner

    def fallback() -> tuple[str, Any]:
        return make_combiner(FALLBACK_COMBINER, None, plugins.combiners(), ctx.metric,
                             random_state, cores)

    outcome = fuse_view(view, name, built, fallback if name != FALLBACK_COMBINER else None)
    model = build_model(study=study, library=library, view=view, outcome=outcome,
                        data=ctx.data, metric=ctx.metric, fit_seconds=0.0,
                        random_state=random_state,
                        library_dir=library_dir if library.persistent else None,
                        refit_full=refit_full)
    if refit_full:  # heaviest members first; the best single model too, to compare
        order = list(model.members)
        if not any(m is model._best for m in order):
            order.append(model._best)
        refit_members(order, ctx, budget)
    model.fit_seconds_ = budget.elapsed()
    return model
