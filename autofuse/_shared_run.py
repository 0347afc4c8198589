"""A run shared by many workers: what its study records, and how a worker joins it.

The process that starts a run in a server database (``fit(..., storage="postgresql://...")``
or ``autofuse fit --storage postgresql://...``) records the run in its study, as the user
attribute ``autofuse_run`` (plain JSON, so optuna-dashboard shows it too):

* ``versions``: Python, autofuse, its main dependencies and the plugins whose learners the
  run searches. A worker with another autofuse or another version of one of those plugins
  is refused (``check_versions``): its trials would not be comparable, and its fold models
  might not load where the run is fused.
* ``artifacts``: the shared store (a folder's absolute path, or a URL), and ``context``:
  the artifact holding the run's table, target, folds, column description, learners and
  metric (a pickle), with its SHA-256. Workers start from it, so every worker fits the
  same rows with the same folds.
* ``table``: the table's fingerprint (and, from the command line, its path): a worker given
  a table of its own (``--data``) checks it against this before its first trial.
* ``deadline`` (Unix time: the machines' clocks must agree) and ``trial_limit`` (the trials
  all workers may start together, counted in the study), renewed by each call that resumes
  the run.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
import optuna
import pandas as pd

from autofuse._artifacts import get_file, location_of, new_id, open_store, put_file

#: The study's user attribute that holds the run's record.
RUN_ATTR = "autofuse_run"
#: Version of that record's layout.
RUN_FORMAT = 1
#: Distributions a worker must have in the same versions as the run's starter (besides the
#: plugins that registered the run's learners).
SAME_VERSIONS = ("autofuse",)


def table_hash(frame: pd.DataFrame, target: np.ndarray) -> str:
    """The fingerprint of a described table and its encoded target."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    h.update("\x1f".join(map(str, frame.columns)).encode())
    h.update(np.ascontiguousarray(target).tobytes())
    return h.hexdigest()


def run_versions(learners: Any) -> tuple[dict[str, str], list[str]]:
    """(the versions a run records, the plugin distributions among them)."""
    from autofuse import plugins
    from autofuse._model import BASE_DISTRIBUTIONS, _versions

    dists = list(plugins.distributions_of(learners=learners))
    return _versions((*BASE_DISTRIBUTIONS, *dists)), dists


def record_run(study: optuna.Study, store: Any, location: Any, ctx: Any, *,
               deadline: float | None, n_trials: int | None,
               table_path: str | None = None, target_name: Any = None) -> dict[str, Any]:
    """Record (or, for a resumed run, renew) the run in ``study``: the context artifact is
    written once, the deadline (``time.monotonic()`` value) and the trial limit for this
    call. Returns the record, after setting ``ctx.trial_limit``."""
    from autofuse.search._heartbeat import started_trials

    run = study.user_attrs.get(RUN_ATTR)
    if run is None:
        versions, dists = run_versions(list(ctx.learners))
        try:
            blob = pickle.dumps({"frame": ctx.frame, "target": ctx.target, "folds": ctx.folds,
                                 "data": ctx.data, "learners": ctx.learners,
                                 "metric": ctx.metric, "seed": ctx.seed},
                                protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise ValueError(f"a shared run sends its learners and metric to every worker, "
                             f"and this one cannot be sent ({type(exc).__name__}: {exc}): "
                             "use registered learners and metrics, or define them at module "
                             "level in an installed module") from exc
        key = new_id(f"{study.study_name}-context", ".pkl")
        with tempfile.NamedTemporaryFile(prefix="autofuse-context-", delete=False) as f:
            f.write(blob)
        try:
            size, sha = put_file(store, key, f.name)
        finally:
            os.remove(f.name)
        run = {"format": RUN_FORMAT, "created": _now(), "versions": versions,
               "plugins": dists, "artifacts": location_of(location),
               "context": {"id": key, "sha256": sha, "bytes": size},
               "table": {"sha256": table_hash(ctx.frame, ctx.target), "path": table_path,
                         "target": None if target_name is None else str(target_name),
                         "rows": int(len(ctx.frame)), "task": ctx.data.task},
               "learners": sorted(ctx.learners), "metric": ctx.metric.name,
               "greater_is_better": bool(ctx.metric.greater_is_better),
               "threads": int(ctx.threads)}
    elif sorted(ctx.learners) != run["learners"]:
        raise ValueError(f"this shared run searches the learners {run['learners']}; a call "
                         f"that resumes it must search the same, not {sorted(ctx.learners)} "
                         "(its workers fit the run's)")
    run = dict(run)
    run["deadline"] = None if deadline is None else time.time() + (deadline - time.monotonic())
    run["trial_limit"] = None if n_trials is None else started_trials(study) + int(n_trials)
    run["call_started"] = _now()
    study.set_user_attr(RUN_ATTR, run)
    ctx.trial_limit = run["trial_limit"]
    return run


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_run(study: optuna.Study, where: str) -> dict[str, Any]:
    """The run ``study`` records; a ValueError when it records none (a study not started
    by autofuse as a shared run) or one of a newer layout."""
    run = study.user_attrs.get(RUN_ATTR)
    if run is None:
        raise ValueError(f"study {study.study_name!r} in {where} is not a shared autofuse run: "
                         "start it with autofuse fit --storage postgresql://... --study NAME "
                         "(or autofuse.fit(..., storage='postgresql://...', study_name=NAME))")
    if run.get("format", 0) > RUN_FORMAT:
        raise ValueError(f"study {study.study_name!r} was started by a newer autofuse (run "
                         f"format {run['format']}); this one reads format {RUN_FORMAT}")
    return run


def check_versions(run: dict[str, Any]) -> list[str]:
    """Refuse (ValueError) a process whose autofuse or plugin versions differ from the run
    starter's; the other differences (scikit-learn, NumPy, ...), for a warning."""
    from autofuse._model import _versions

    recorded = run.get("versions", {})
    here = _versions(recorded)
    must = set(SAME_VERSIONS) | set(run.get("plugins", []))
    refused, noted = [], []
    for dist, wanted in sorted(recorded.items()):
        if here.get(dist) != wanted:
            (refused if dist in must else noted).append(f"{dist} {wanted} (here: {here[dist]})")
    if refused:
        raise ValueError(f"this process cannot join the run: it was started with "
                         f"{', '.join(refused)}. Install the same versions on every worker "
                         f"(pip install {' '.join(_pins(recorded, must))})")
    return noted


def _pins(recorded: dict[str, str], names: set[str]) -> list[str]:
    return [f"'{d}=={v}'" for d, v in sorted(recorded.items()) if d in names]


def load_context(run: dict[str, Any], store: Any, cache_dir: str) -> dict[str, Any]:
    """The run's context (table, target, folds, column description, learners, metric),
    read from the store and checked against the run's record."""
    meta = run["context"]
    path = os.path.join(cache_dir, "context-shared.pkl")
    try:
        get_file(store, meta["id"], path, meta["sha256"])
    except Exception as exc:
        if isinstance(exc, ValueError):
            raise
        raise ValueError(f"the run's context ({meta['id']}) could not be read from its "
                         f"artifact store {run.get('artifacts')}: {type(exc).__name__}: "
                         f"{exc}") from exc
    with open(path, "rb") as f:
        try:
            context = pickle.load(f)
        except (ModuleNotFoundError, AttributeError) as exc:
            raise ValueError(f"the run's learners or metric need code this process lacks "
                             f"({exc}): install the plugins the run uses "
                             f"({', '.join(run.get('plugins', [])) or 'none recorded'})") from exc
    os.remove(path)
    if table_hash(context["frame"], context["target"]) != run["table"]["sha256"]:
        raise ValueError("the run's context does not match the table its study records")
    return context


def check_table(run: dict[str, Any], X: Any, y: Any, source: str) -> None:
    """Refuse a worker's own table (``X``, ``y``, read from ``source``) unless it is the
    run's, read the way the run read it."""
    from autofuse._data import describe

    table = run["table"]
    try:
        frame, target, _ = describe(X, y, task=table["task"])
        same = table_hash(frame, target) == table["sha256"]
    except ValueError:
        same, frame = False, None
    if not same:
        rows = "" if frame is None or len(frame) == table["rows"] else (
            f" ({len(frame)} rows; the run's has {table['rows']})")
        shown = f" ({table['path']})" if table.get("path") else ""
        raise ValueError(f"{source} is not the table this run was started on{shown}{rows}: "
                         f"its fingerprint differs from the run's "
                         f"{table['sha256'][:12]}. Give the run's table, or none (the "
                         "worker then reads it from the run's artifact store)")


def open_shared(storage: Any, study_name: str, *, artifacts: Any = None, wait: float = 0.0,
                sampler: Any = None, pruner: Any = None) -> tuple[optuna.Study, dict[str, Any],
                                                                   Any]:
    """(the study, its run record, its artifact store), once the study exists and records
    a run (waiting up to ``wait`` seconds for the starter to record it), with the versions
    checked."""
    import logging

    from autofuse.search._study import _shown, storage_of

    log = logging.getLogger("autofuse")
    backend = storage_of(storage)
    where = _shown(storage)
    give_up = time.monotonic() + wait
    announced = False
    while True:
        try:
            study = optuna.load_study(study_name=study_name, storage=backend, sampler=sampler,
                                      pruner=pruner)
            if RUN_ATTR in study.user_attrs or time.monotonic() >= give_up:
                break
        except KeyError:
            if time.monotonic() >= give_up:
                names = optuna.get_all_study_names(backend)
                raise ValueError(f"no study {study_name!r} in {where} (it holds "
                                 f"{', '.join(map(repr, names)) or 'none'}): start the run "
                                 "first (autofuse fit ... --storage URL --study NAME)") from None
        if not announced:
            log.info("waiting for study %r in %s", study_name, where)
            announced = True
        time.sleep(1.0)
    run = read_run(study, where)
    noted = check_versions(run)
    if noted:
        log.warning("this process has other versions than the run's starter: %s",
                    ", ".join(noted))
    location = artifacts if artifacts is not None else run.get("artifacts")
    if location is None:
        raise ValueError("the run's artifact store was given as an object; give it to this "
                         "process too (artifacts=)")
    return study, run, open_store(location)


class StorageClock:
    """Seconds this process spends in the storage's calls (the database's share of the
    search), by wrapping the public methods of one storage object."""

    def __init__(self, storage: Any) -> None:
        self.seconds = 0.0
        self.calls = 0
        for name in dir(type(storage)):
            if name.startswith("_") and name != "_get_stale_trial_ids":
                continue
            method = getattr(storage, name, None)
            if callable(method) and not isinstance(method, type):
                setattr(storage, name, self._timed(method))

    def _timed(self, method: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1
        return timed


class WorkerTally:
    """What one process did in a shared run (its trials by outcome, its seconds, its
    seconds in storage calls): counted as trials end (it is the search's ``on_trial``), and
    recorded in the study as the user attribute ``worker:HOST:PID`` when it stops."""

    STATES = {"COMPLETE": "done", "PRUNED": "stopped", "FAIL": "failed"}

    def __init__(self, study: optuna.Study, then: Any = None) -> None:
        from autofuse.search._runner import worker_name

        self.study = study
        self.then = then
        self.name = worker_name()
        self.clock = StorageClock(study._storage)
        self.counts = {"done": 0, "stopped": 0, "failed": 0}
        self.start = time.monotonic()

    def __call__(self, frozen: Any) -> None:
        if frozen is not None and frozen.state.name in self.STATES:
            self.counts[self.STATES[frozen.state.name]] += 1
        if self.then is not None:
            self.then(frozen)

    def finish(self) -> dict[str, Any]:
        """Record and return the tally: ``{"worker", "trials": {"done", "stopped",
        "failed"}, "seconds", "storage_seconds", "storage_calls"}``."""
        import logging

        from autofuse._progress import PROGRESS

        report = {"worker": self.name, "trials": dict(self.counts),
                  "seconds": round(time.monotonic() - self.start, 3),
                  "storage_seconds": round(self.clock.seconds, 3),
                  "storage_calls": self.clock.calls}
        try:
            self.study.set_user_attr(f"worker:{self.name}", {**report, "ended": _now()})
        except Exception as exc:  # noqa: BLE001 - a lost database must not hide the tally
            logging.getLogger("autofuse").warning("could not record worker %s in the study: %s",
                                                  self.name, exc)
        c = self.counts
        logging.getLogger("autofuse").log(
            PROGRESS, "worker %s: %d trials done, %d stopped, %d failed in %.1f s; %.2f s in "
            "%d storage calls", self.name, c["done"], c["stopped"], c["failed"],
            report["seconds"], report["storage_seconds"], report["storage_calls"])
        return report
