"""The search loop: ask the study, run trials in workers, tell the study, fill the library.

The parent process does the bookkeeping (Optuna's ask/tell, scoring each fold, pruning,
the deadline); workers only fit and predict. After each fold the parent decides whether
the trial goes on: it stops a trial the pruner finds hopeless, and one whose projected
time would run past the search deadline. At the deadline any trial still running is
killed with its worker, so no learner can hold the run past its budget.

Nothing a learner does takes the run down. Its predictions are checked in the worker
(shape, type, finite values, probabilities) and, again, before they touch the run; a trial
runs under a memory limit (``SearchContext.memory_limit``: the worker's data limit, and its
resident memory watched from here) and fails "out of memory" past it; a learner's search
space runs in a thread and may take ``SPACE_SECONDS``. A learner whose trials failed
``MAX_LEARNER_FAILURES`` times with none finished, or whose search space overran, is
disabled for the rest of the run (``LearnerFilter``), and the reason of its last trial
says so.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import socket
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import optuna
from optuna.trial import TrialState

from autofuse import _workers
from autofuse._library import Entry, ModelLibrary
from autofuse.search._heartbeat import (Heartbeats, has_heartbeats, requeue,
                                        started_trials, uncount)
from autofuse.search._sampler import LearnerFilter
from autofuse.search._study import release_session, sample

if TYPE_CHECKING:
    import pandas as pd

    from autofuse._data import DataSpec
    from autofuse._scoring import RunMetric
    from autofuse.learners import LearnerSpec

log = logging.getLogger("autofuse")

#: Most of the search time one trial may take.
TRIAL_SHARE = 0.5
#: The search stops after this many trials in a row could not start.
MAX_START_FAILURES = 50
#: A learner is disabled for the rest of the run once this many of its trials failed while
#: none finished (failures the run itself caused, a stop at the deadline, do not count).
MAX_LEARNER_FAILURES = 3
#: Seconds a learner's ``space()`` may take to sample one configuration (it runs in this
#: process); one that overruns is disabled for the run.
SPACE_SECONDS = 2.0
#: How often (seconds) the run's starter looks whether other workers still run trials.
OTHERS_POLL_SECONDS = 0.5
#: How often (seconds) the resident memory of running trials is checked.
MEMORY_POLL_SECONDS = 0.2
#: A worker that dies after its resident memory reached this share of the limit is taken to
#: have run out of memory (an allocation in native code can abort instead of raising).
NEAR_LIMIT = 0.8


@dataclass
class _Running:
    trial: optuna.Trial
    learner: str
    params: dict[str, Any]
    started: float  # when it was sent; reset when the worker starts it
    oof: np.ndarray
    begun: bool = False  # the worker said it started (the per-trial cap runs from there)
    resident: int = 0  # the worker's largest resident memory seen, bytes
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    folds_done: int = 0
    stopping: str | None = field(default=None)  # reason, once told to stop


@dataclass
class SearchContext:
    """Everything a search needs, fixed for one fit."""

    frame: pd.DataFrame
    target: np.ndarray
    data: DataSpec
    folds: list[tuple[np.ndarray, np.ndarray]]
    learners: dict[str, LearnerSpec]
    metric: RunMetric
    library: ModelLibrary
    threads: int  # per trial
    seed: int | None = None  # random_state of the learners' estimators
    memory_limit: int | None = None  # bytes per trial (None: no limit)
    #: A shared run's limit on the trials its workers start, all together (counted in the
    #: study: ``started_trials``); None: no limit beyond this call's ``n_trials``.
    trial_limit: int | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def payload(self) -> bytes:
        hint = ("learners run in worker processes, so their space and build functions must "
                "be importable: define them at module level in a module, not as lambdas or "
                "in the main script")
        for spec in self.learners.values():
            for fn in (spec.space, spec.build):
                if getattr(getattr(fn, "func", fn), "__module__", None) == "__main__":
                    raise ValueError(f"learner {spec.name!r} is defined in __main__; {hint}")
        try:
            return pickle.dumps({"frame": self.frame, "target": self.target, "data": self.data,
                                 "folds": self.folds, "learners": self.learners},
                                protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise ValueError(f"a learner cannot be sent to the workers ({exc}); {hint}") from exc


def worker_name() -> str:
    """This process, as a trial's ``worker`` attribute names it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _json(value: Any) -> Any:
    """Parameters as plain JSON values (numpy scalars to Python)."""
    return value.item() if isinstance(value, np.generic) else value


class _SpaceTimeout(Exception):
    """A learner's search space did not return in time."""


class _Search:
    def __init__(self, study: optuna.Study, ctx: SearchContext, n_trials: int | None,
                 deadline: float | None, n_jobs: int,
                 on_trial: Callable[[optuna.trial.FrozenTrial | None], None],
                 wait_for_others: bool = False) -> None:
        self.study, self.ctx = study, ctx
        # A shared study (heartbeats on): beat for this process's trials, reap everyone's
        # stale ones; the run's starter waits for the other workers' trials.
        self.beats = Heartbeats(study) if has_heartbeats(study._storage) else None
        self.wait_for_others = wait_for_others and self.beats is not None
        self.worker = worker_name()
        self.n_trials, self.deadline = n_trials, deadline
        self.n_jobs = n_jobs
        self.on_trial = on_trial
        self.dispatched = 0
        self.failed_to_start = 0  # in a row
        self.running: dict[int, _Running] = {}  # by worker index
        self.workers: list[_workers.Worker] = []
        self.blob = ctx.payload()
        self.load_reserve = ctx.library.load_seconds(ctx.metric.greater_is_better)
        # No single trial may take more than this share of the search: one stuck in its
        # first fold (before any projection is possible) must leave time for the others.
        self.trial_cap = None if deadline is None else TRIAL_SHARE * (deadline - time.monotonic())
        self.failures: dict[str, int] = {}
        self.finished: set[str] = set()
        self.disabled: dict[str, str] = {}  # learner -> why
        for t in study.get_trials(deepcopy=False):  # a resumed study's earlier calls
            learner = t.user_attrs.get("learner")
            if t.state == TrialState.COMPLETE:
                self.finished.add(learner)
            elif t.state == TrialState.FAIL and t.user_attrs.get("learner_fault"):
                self.failures[learner] = self.failures.get(learner, 0) + 1

    # ------------------------------------------------------------- bookkeeping
    def _time_left(self) -> float:
        return np.inf if self.deadline is None else self._deadline() - time.monotonic()

    def _deadline(self) -> float:
        """The search deadline, moved earlier by the time fusion will need to load the
        likely members' fold models."""
        return self.deadline - self.load_reserve

    def _want_more(self) -> bool:
        if self.n_trials is not None and self.dispatched >= self.n_trials:
            return False
        if len(self.disabled) >= len(self.ctx.learners):
            return False
        if self._time_left() <= 0:
            return False
        limit = self.ctx.trial_limit
        return limit is None or started_trials(self.study) < limit

    def _send_data(self, i: int) -> None:
        w = self.workers[i]
        if w.token != self.ctx.token:
            w.conn.send(("data", self.ctx.token, self.blob))
            w.token = self.ctx.token

    def _finish(self, run: _Running, state: TrialState, value: float | None = None,
                reason: str = "", counts: bool = True,
                artifacts: dict[str, Any] | None = None) -> None:
        """Tell the study how ``run`` ended (a finished trial with the ``artifacts`` it
        published to a shared store). A failure the learner caused (``counts``) may
        disable it; its reason then says so."""
        t = run.trial
        if state == TrialState.COMPLETE:
            self.finished.add(run.learner)
        elif state == TrialState.FAIL and counts and run.learner in self.ctx.learners:
            t.set_user_attr("learner_fault", True)  # counted again when the run resumes
            self.failures[run.learner] = self.failures.get(run.learner, 0) + 1
            if (self.failures[run.learner] >= MAX_LEARNER_FAILURES
                    and run.learner not in self.finished):
                reason += self._disable(run.learner, f"{self.failures[run.learner]} of its "
                                                     "trials failed and none finished")
        try:
            t.set_user_attr("fit_seconds", run.fit_seconds)
            t.set_user_attr("predict_seconds", run.predict_seconds)
            t.set_user_attr("folds_done", run.folds_done)
            if reason:
                t.set_user_attr("reason", reason)
            if artifacts:
                t.set_user_attr("artifacts", artifacts)
            frozen = self.study.tell(t, value if state == TrialState.COMPLETE else None,
                                     state=state)
        except optuna.exceptions.UpdateFinishedTrialError:
            # A shared study: another worker found this process silent for longer than the
            # grace period, failed the trial and queued it again. Its outcome is dropped.
            log.warning("trial %d (%s) was failed by another worker (no heartbeat in time); "
                        "its result is dropped", t.number, run.learner)
            self.ctx.library.entries.pop(t.number, None)
            self.ctx.library.discard_files(t.number)
            self.ctx.library.unpublish(artifacts)
            self.on_trial(None)
            return
        if state == TrialState.FAIL:
            log.warning("trial %d (%s) failed: %s", t.number, run.learner, reason)
        elif state == TrialState.PRUNED:
            log.info("trial %d (%s) stopped: %s", t.number, run.learner, reason)
        if state != TrialState.COMPLETE:
            self.ctx.library.discard_files(t.number)
        self.on_trial(frozen)

    def _disable(self, learner: str, why: str) -> str:
        """Stop sampling ``learner``; the text to add to the reason of its last trial (the
        warning that trial's failure logs is the one notice)."""
        if learner in self.disabled:
            return ""
        self.disabled[learner] = why
        return f"; learner {learner!r} disabled for the rest of the run: {why}"

    # ------------------------------------------------------------- dispatch
    def _sample(self, trial: optuna.Trial) -> tuple[Any, dict[str, Any]]:
        """``sample`` in a thread that may take ``SPACE_SECONDS`` (a plugin's ``space()``
        runs in this process: one that blocks must not hold the run)."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = sample(trial, self.ctx.learners, self.ctx.data)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box["error"] = exc

        thread = threading.Thread(target=target, name="autofuse-space", daemon=True)
        thread.start()
        thread.join(max(0.05, min(SPACE_SECONDS, self._time_left())))
        if thread.is_alive():
            raise _SpaceTimeout()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _dispatch(self, i: int) -> None:
        with warnings.catch_warnings():
            # Optuna warns that heartbeats go with study.optimize: this loop beats itself.
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = self.study.ask()
        self.dispatched += 1
        if self.beats is not None:
            self.beats.start(trial)
            trial.set_user_attr("worker", self.worker)
        try:
            spec, params = self._sample(trial)
        except Exception as exc:  # a plugin's search space that raises, or hangs
            learner = trial.params.get("learner", "?")
            run = _Running(trial, learner, {}, time.monotonic(), np.empty((0, 0)))
            self.failed_to_start += 1
            if isinstance(exc, _SpaceTimeout):
                reason = f"sampling failed: space() of learner {learner!r} took more than "
                reason += f"{SPACE_SECONDS:g} s"
                if learner in self.ctx.learners:
                    reason += self._disable(learner, f"its space() took more than "
                                                     f"{SPACE_SECONDS:g} s")
                self._finish(run, TrialState.FAIL, reason=reason, counts=False)
            else:
                self._finish(run, TrialState.FAIL,
                             reason=f"sampling failed: {type(exc).__name__}: {exc}")
            return
        if spec.name in self.disabled:  # a queued configuration of a disabled learner
            self.dispatched -= 1
            run = _Running(trial, spec.name, params, time.monotonic(), np.empty((0, 0)))
            self._finish(run, TrialState.FAIL, counts=False, reason=(
                f"not run: learner {spec.name!r} is disabled ({self.disabled[spec.name]})"))
            return
        self.failed_to_start = 0
        if self._over_limit(trial):
            return
        trial.set_user_attr("learner", spec.name)
        trial.set_user_attr("params", {k: _json(v) for k, v in params.items()})
        n_out = 1 if self.ctx.data.task == "regression" else len(self.ctx.data.classes)
        oof = np.full((len(self.ctx.target), n_out), np.nan, dtype=np.float32)
        run = _Running(trial, spec.name, params, time.monotonic(), oof)
        job = {"learner": spec.name, "params": params, "threads": self.ctx.threads,
               "seed": self.ctx.seed, "memory_limit": self.ctx.memory_limit,
               "path": self.ctx.library.models_path(trial.number)}
        try:
            self._send_data(i)
            self.workers[i].conn.send(("trial", self.ctx.token, job))
        except (BrokenPipeError, OSError) as exc:
            self._worker_died(i, run, f"could not reach the worker process: {exc}")
            return
        self.running[i] = run

    def _over_limit(self, trial: optuna.Trial) -> bool:
        """In a shared run, whether ``trial`` is past the run's trial limit (workers that
        asked at the same moment each saw room for one more): then it is given back, not
        run, and does not count; a retry of a dead worker's trial always runs."""
        limit = self.ctx.trial_limit
        if limit is None or "retry_of" in trial.user_attrs or started_trials(
                self.study) <= limit:
            return False
        self.dispatched -= 1
        uncount(self.study, trial.number, "given back past the trial limit")
        trial.set_user_attr("surplus", True)
        trial.set_user_attr("reason", f"not run: other workers started the run's last "
                                      f"trials at the same moment (its limit: {limit})")
        self.on_trial(self.study.tell(trial, state=TrialState.FAIL))
        time.sleep(random.uniform(0.05, 0.5))  # so the next ask is not at the same moment
        return True

    def _worker_died(self, i: int, run: _Running | None, reason: str) -> None:
        self.workers[i] = _workers.replace(self.workers[i])
        self.running.pop(i, None)
        limit = self.ctx.memory_limit
        if run is not None and limit and run.resident >= NEAR_LIMIT * limit:
            reason = (f"{_workers.out_of_memory(limit)}: {reason}, its resident memory at "
                      f"{run.resident / 2**30:.2f} GB")
        if run is not None and run.stopping is None:
            self._finish(run, TrialState.FAIL, reason=reason)

    # ------------------------------------------------------------- messages
    def _on_fold(self, i: int, run: _Running, k: int, pred: np.ndarray, fit_s: float,
                 predict_s: float) -> None:
        ctx = self.ctx
        valid = ctx.folds[k][1]
        conn = self.workers[i].conn
        # The worker checked them; a learner's output is still checked again before it
        # touches the run, so nothing it returns can end the search.
        expected = (len(valid), run.oof.shape[1])
        if not isinstance(pred, np.ndarray) or pred.shape != expected or not np.all(
                np.isfinite(pred)):
            run.stopping = (f"learner {run.learner!r} returned "
                            f"{getattr(pred, 'shape', type(pred).__name__)} predictions on "
                            f"fold {k + 1}; expected finite numbers of shape {expected}")
            conn.send("stop")
            self._finish(run, TrialState.FAIL, reason=run.stopping)
            return
        run.oof[valid] = pred
        run.fit_seconds += fit_s
        run.predict_seconds += predict_s
        run.folds_done = k + 1
        last = k + 1 == len(ctx.folds)
        try:
            fold_score = ctx.metric.score(pred, ctx.target[valid])
        except ValueError:
            fold_score = None  # e.g. a fold holding one class for roc_auc
        if fold_score is not None and np.isfinite(fold_score):
            run.trial.report(fold_score, k)
        if not last:
            reason = None
            if fold_score is not None and run.trial.should_prune():
                reason = (f"pruned after fold {k + 1}/{len(ctx.folds)}: {ctx.metric.name} "
                          f"{fold_score:.5g} is in the worst quarter of finished trials")
            elif self.deadline is not None:
                elapsed = time.monotonic() - run.started
                projected = elapsed * len(ctx.folds) / (k + 1)
                left = self._deadline() - run.started
                if projected > left:
                    reason = (f"stopped after fold {k + 1}/{len(ctx.folds)}: projected "
                              f"{projected:.1f} s, only {left:.1f} s were left in the budget")
            if reason is not None:
                run.stopping = reason
                conn.send("stop")
                self._finish(run, TrialState.PRUNED, reason=reason)
                return
        conn.send("go")

    def _on_done(self, i: int, run: _Running, path: str) -> None:
        ctx = self.ctx
        covered = ~np.isnan(run.oof[:, 0])
        try:
            score = ctx.metric.score(run.oof[covered], ctx.target[covered])
        except ValueError as exc:
            self._finish(run, TrialState.FAIL, reason=f"could not score: {exc}")
            return
        number = run.trial.number
        try:  # a shared run: its files go to the shared store before the trial is told
            artifacts = ctx.library.publish(number, run.oof)
        except Exception as exc:  # noqa: BLE001 - a store that refuses fails the trial
            self._finish(run, TrialState.FAIL, counts=False, reason=(
                f"could not write its outputs to the artifact store: "
                f"{type(exc).__name__}: {exc}"))
            return
        ctx.library.add(Entry(number, run.learner, run.params, score, run.oof,
                              os.path.basename(ctx.library.models_path(number)),
                              run.fit_seconds, run.predict_seconds))
        self.load_reserve = ctx.library.load_seconds(ctx.metric.greater_is_better)
        self._finish(run, TrialState.COMPLETE, value=score, artifacts=artifacts)

    def _receive(self, i: int) -> None:
        run = self.running.get(i)
        try:
            message = self.workers[i].conn.recv()
        except (EOFError, OSError):
            code = self.workers[i].exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else (
                f"exit code {code}")
            self._worker_died(i, run, f"the worker process died ({how}): out of memory or "
                                      "a crash in native code")
            return
        kind = message[0]
        if run is None:  # pragma: no cover - nothing should arrive from an idle worker
            return
        if kind == "started":
            run.started, run.begun = time.monotonic(), True
            return
        if kind == "fold":
            if run.stopping is None:
                try:
                    self._on_fold(i, run, *message[1:])
                except optuna.exceptions.UpdateFinishedTrialError:
                    # Another worker of a shared study failed it as stale (this process
                    # was silent past the grace period) and queued it again: stop it.
                    run.stopping = "failed by another worker"
                    self.workers[i].conn.send("stop")
                    log.warning("trial %d (%s) was failed by another worker (no heartbeat "
                                "in time); stopped here", run.trial.number, run.learner)
            else:  # pragma: no cover - stop already sent
                self.workers[i].conn.send("stop")
            return
        self.running.pop(i)
        if kind == "done" and run.stopping is None:
            self._on_done(i, run, message[1])
        elif kind == "error" and run.stopping is None:
            log.debug("trial %d traceback:\n%s", run.trial.number, message[2])
            self._finish(run, TrialState.FAIL, reason=message[1])

    # ------------------------------------------------------------- the loop
    def run(self) -> None:
        self.workers = _workers.POOL.acquire(self.n_jobs)
        sampler = self.study.sampler
        self.study.sampler = LearnerFilter(sampler, self.disabled)
        try:
            while True:
                for i in range(self.n_jobs):
                    # A trial that fails before it reaches a worker (its search space
                    # raised) leaves the worker free: ask for the next one at once.
                    while i not in self.running and self._want_more() and (
                            self.failed_to_start < MAX_START_FAILURES):
                        self._dispatch(i)
                if self.failed_to_start >= MAX_START_FAILURES and not self.running:
                    log.error("stopping the search: %d trials in a row failed before they "
                              "started", self.failed_to_start)
                    break
                if len(self.disabled) >= len(self.ctx.learners) and not self.running:
                    log.error("stopping the search: every learner was disabled")
                    break
                left = self._time_left()
                if not self.running:
                    if left > 0 and self._others_running():
                        self.beats.tick([])  # reaps the trials of workers that died
                        time.sleep(min(left, OTHERS_POLL_SECONDS))
                        continue
                    break
                if left <= 0:
                    self._stop_all("stopped at the time limit")
                    break
                if self.beats is not None:
                    self.beats.tick([run.trial for run in self.running.values()])
                conns = {self.workers[i].conn: i for i in self.running}
                poll = MEMORY_POLL_SECONDS if self.ctx.memory_limit else 1.0
                for conn in wait(list(conns), timeout=min(left, self._until_cap(), poll)):
                    self._receive(conns[conn])
                self._stop_overlong()
                self._watch_memory()
        except BaseException as exc:
            # An interruption (Ctrl-C, SIGTERM) may have cut a query short; an error keeps
            # its frames' variables, for a debugger.
            release_session(self.study, None if isinstance(exc, Exception) else exc)
            self._stop_all("the run was interrupted", give_back=True)
            raise
        finally:
            self.study.sampler = sampler
            _workers.POOL.release(self.workers)

    def _others_running(self) -> bool:
        """Whether the run's starter should wait: other workers of the shared study still
        run trials (a dead one's are reaped by the heartbeats, and may be run here)."""
        if not self.wait_for_others:
            return False
        storage = self.study._storage
        return storage.get_n_trials(self.study._study_id, TrialState.RUNNING) > 0

    def _watch_memory(self) -> None:
        """Fail the trials whose worker holds more than the memory limit."""
        limit = self.ctx.memory_limit
        if not limit:
            return
        for i, run in list(self.running.items()):
            rss = self.workers[i].resident_bytes()
            if rss is None:
                continue
            run.resident = max(run.resident, rss)
            if rss > limit and run.stopping is None:
                self.workers[i] = _workers.replace(self.workers[i])
                self.running.pop(i)
                self._finish(run, TrialState.FAIL, reason=(
                    f"{_workers.out_of_memory(limit)}: its worker's resident memory reached "
                    f"{rss / 2**30:.2f} GB"))

    def _until_cap(self) -> float:
        """Seconds until the first running trial reaches the per-trial cap."""
        begun = [run.started for run in self.running.values() if run.begun]
        if self.trial_cap is None or not begun:
            return np.inf
        first = min(begun)
        return max(0.0, first + self.trial_cap - time.monotonic())

    def _stop_overlong(self) -> None:
        if self.trial_cap is None:
            return
        now = time.monotonic()
        for i, run in list(self.running.items()):
            if run.stopping is None and run.begun and now - run.started > self.trial_cap:
                self.workers[i] = _workers.replace(self.workers[i])
                self.running.pop(i)
                self._finish(run, TrialState.FAIL, reason=(
                    f"stopped after {now - run.started:.1f} s: a trial may take at most half "
                    f"of the search time ({self.trial_cap:.1f} s)"))

    def _stop_all(self, reason: str, give_back: bool = False) -> None:
        """Kill every running trial's worker, then record its trial as failed. No fresh
        worker replaces them now: starting one (an interpreter importing scikit-learn)
        would take CPU from fusion; the pool starts them when the next fit needs them.

        With ``give_back`` (this process was interrupted), each trial of a shared study is
        queued again for another worker, and does not count against the run's trial
        limit; and a storage that refuses the records (an interruption that cut a query
        short may leave a lock behind) does not turn the interruption into a storage
        error: the trials stay marked running, and the run's next call marks them failed
        ("interrupted") when it resumes (in a shared study, the other workers find them
        silent and queue them again)."""
        stopped = [self.running[i] for i in sorted(self.running)]
        for i in list(self.running):
            self.workers[i].kill()
            self.running.pop(i)
        shared = give_back and self.beats is not None
        for run in stopped:
            if run.stopping is not None:
                continue
            try:
                self._finish(run, TrialState.FAIL, counts=False, reason=reason + (
                    "; queued again for another worker" if shared else ""))
            except optuna.exceptions.StorageInternalError as exc:
                if not give_back:
                    raise
                log.warning("the interrupted trials could not be recorded (%s): they are "
                            "marked failed when the run resumes", exc.__cause__ or exc)
                return
            if shared:
                self._give_back(run.trial)

    def _give_back(self, trial: optuna.Trial) -> None:
        """Queue an interrupted trial of a shared study again (best effort: an interruption
        may have cut the database connection)."""
        try:
            frozen = self.study._storage.get_trial(trial._trial_id)
            if requeue(self.study, frozen):
                uncount(self.study, frozen.number, "its worker was interrupted")
        except Exception as exc:  # noqa: BLE001 - the heartbeats reap what is left
            log.warning("trial %d could not be queued again: %s", trial.number, exc)


def run_search(study: optuna.Study, ctx: SearchContext, *, n_trials: int | None,
               deadline: float | None, n_jobs: int,
               on_trial: Callable[[Any], None] = lambda t: None,
               wait_for_others: bool = False) -> None:
    """Run trials until ``n_trials`` more were started (or, in a shared run, the study holds
    ``ctx.trial_limit``) or ``deadline`` (a ``time.monotonic()`` value) passed; finished ones
    go to ``ctx.library``. With ``wait_for_others`` (the starter of a shared run), then wait
    until no other worker runs a trial, or the deadline."""
    _Search(study, ctx, n_trials, deadline, n_jobs, on_trial, wait_for_others).run()
