"""Worker processes that run trials and can be stopped at any moment.

A learner may hang inside native code (a boosting library's C++ loop ignores Python
signals), so trials run in separate processes that the run can kill when its time is up.
Workers are fresh interpreters (no inherited OpenMP state, no fork-after-threads deadlocks,
no re-import of the user's script), kept for the life of the interpreter and reused by
later fits: a fit sends its table once per worker (with cloudpickle, so learners defined in
a script or notebook travel too), then trial after trial.

Each worker caps the thread pools of the libraries it runs (OpenMP, BLAS) with
threadpoolctl to the threads the run gives it, so parallel trials never oversubscribe the
cores, and starts with ``OMP_WAIT_POLICY=PASSIVE`` so idle OpenMP threads sleep instead
of spinning on a busy machine.

Protocol, over one duplex pipe per worker (parent -> worker, then worker -> parent):

* ``("data", token, payload)``: the table, target, DataSpec, folds and learner specs.
* ``("trial", token, job)``: cross-fit one configuration. After each fold the worker sends
  ``("fold", k, predictions, fit_seconds, predict_seconds)`` and waits for ``"go"`` or
  ``"stop"`` (pruned, or projected past the budget); after the last fold it saves the fold
  models and sends ``("done", path)``.
* ``("refit", token, job)``: fit one configuration on every row; ``("done", path)``.
* Any exception: ``("error", "Type: message", traceback)``, and the worker stays usable.
"""

from __future__ import annotations

import atexit
import os
import pickle
import socket
import subprocess
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

#: Environment every worker starts with (read by OpenMP runtimes when they load).
WORKER_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


# ----------------------------------------------------------------- the worker side

def _save(models: Any, path: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(models, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def _run_trial(conn: Connection, payload: dict[str, Any], job: dict[str, Any]) -> None:
    from autofuse._cv import fit_folds

    spec = payload["learners"][job["learner"]]
    models = []
    for k, model, pred, fit_s, predict_s in fit_folds(
            spec, job["params"], payload["frame"], payload["target"], payload["data"],
            payload["folds"], job.get("seed")):
        models.append(model)
        conn.send(("fold", k, pred, fit_s, predict_s))
        if conn.recv() == "stop":
            conn.send(("stopped",))
            return
    _save(models, job["path"])
    conn.send(("done", job["path"]))


def _run_refit(conn: Connection, payload: dict[str, Any], job: dict[str, Any]) -> None:
    frame, target, data = payload["frame"], payload["target"], payload["data"]
    model = payload["learners"][job["learner"]].estimator(job["params"], data, job.get("seed"))
    model.fit(frame, target)
    _save([model], job["path"])
    conn.send(("done", job["path"]))


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the worker process
    from threadpoolctl import threadpool_limits

    from autofuse.learners._spec import threads_for_trial

    payloads: dict[str, Any] = {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == "exit":
            return
        if kind == "data":
            payloads = {message[1]: pickle.loads(message[2])}
            continue
        _, token, job = message
        try:
            with threadpool_limits(limits=job["threads"]), threads_for_trial(job["threads"]):
                (_run_trial if kind == "trial" else _run_refit)(conn, payloads[token], job)
        except BaseException as exc:  # noqa: BLE001 - any failure is the trial's, not ours
            reason = f"{type(exc).__name__}: {exc}".strip()
            try:
                conn.send(("error", reason, traceback.format_exc(limit=8)))
            except (BrokenPipeError, OSError):
                return


# ----------------------------------------------------------------- the parent side

def main(fd: int) -> None:  # pragma: no cover - the worker process's entry point
    """Serve trials on the connection ``fd`` (run as ``python -c``)."""
    import warnings

    warnings.simplefilter("ignore")  # learners' warnings are noise here; failures are sent
    _die_with_parent()
    _serve(Connection(fd))


def _die_with_parent() -> None:  # pragma: no cover - runs in the worker process
    """On Linux, have the kernel kill this worker when the parent dies (even by SIGKILL),
    so no fit outlives its run."""
    if sys.platform != "linux":
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Worker:
    """One worker process and the parent's end of its pipe."""

    process: subprocess.Popen
    conn: Connection
    token: str | None = None  # which fit's data the worker holds

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    def kill(self) -> None:
        try:
            self.conn.close()
        except OSError:  # pragma: no cover
            pass
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


def _start_worker() -> Worker:
    """A fresh interpreter (not a fork, and not ``multiprocessing`` spawn, which would
    re-import the user's main script), with the parent's import path."""
    parent, child = socket.socketpair()
    env = {**os.environ, **WORKER_ENV,
           "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-c", f"from autofuse._workers import main; main({child.fileno()})"],
        pass_fds=[child.fileno()], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)
    child.close()
    return Worker(process, Connection(parent.detach()))


class WorkerPool:
    """Reusable workers shared by the fits of one interpreter."""

    def __init__(self) -> None:
        self._idle: list[Worker] = []

    def acquire(self, n: int) -> list[Worker]:
        """``n`` live workers (reused where possible); give them back with ``release``."""
        workers = [w for w in self._idle if w.alive]
        for w in self._idle:
            if not w.alive:
                w.kill()
        self._idle = workers[n:]
        workers = workers[:n]
        while len(workers) < n:
            workers.append(_start_worker())
        return workers

    def release(self, workers: list[Worker]) -> None:
        self._idle.extend(w for w in workers if w.alive)

    def shutdown(self) -> None:
        for w in self._idle:
            try:
                w.conn.send(("exit",))
            except (BrokenPipeError, OSError):
                pass
            w.kill()
        self._idle = []


POOL = WorkerPool()
atexit.register(POOL.shutdown)


def replace(worker: Worker) -> Worker:
    """Kill ``worker`` (stuck or dead) and start a fresh one in its place."""
    worker.kill()
    return _start_worker()
