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
* ``("trial", token, job)``: cross-fit one configuration. The worker sends ``("started",)``
  when it begins (the trial's clock starts there, not while a fresh worker imports), then
  after each fold ``("fold", k, predictions, fit_seconds, predict_seconds)``, and waits for
  ``"go"`` or ``"stop"`` (pruned, or projected past the budget); each fold model is
  appended to the trial's model file as it is fitted, and after the last fold the file is
  put in place and ``("done", path)`` sent.
* ``("refit", token, job)``: fit one configuration on every row; ``("done", path)``.
* Any exception: ``("error", "Type: message", traceback)``, and the worker stays usable.

A job may carry ``memory_limit`` (bytes): the worker runs it under that data limit
(``memory_cap``), and the parent also watches its resident memory (``resident_bytes``).
"""

from __future__ import annotations

import atexit
import os
import pickle
import socket
import subprocess
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Iterator

from autofuse._fold_models import ModelFile

#: Environment every worker starts with (read by OpenMP runtimes when they load).
WORKER_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


# ----------------------------------------------------------------- the worker side

def out_of_memory(limit: int | None) -> str:
    """The reason of a trial stopped by its memory limit."""
    return f"out of memory (limit {limit / 2**30:.3g} GB)" if limit else "out of memory"


def data_bytes() -> int | None:
    """The data segment this process holds now (``VmData`` from ``/proc``: heap, private
    writable mappings, thread stacks), the quantity ``RLIMIT_DATA`` limits; None where it
    cannot be read."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@contextmanager
def memory_cap(limit: int | None) -> Iterator[None]:
    """Within the block, this process cannot allocate more than ``limit`` bytes of data
    beyond what it holds on entry (``RLIMIT_DATA``, Linux: heap and private mappings, thread
    stacks included): an allocation past it raises ``MemoryError`` instead of growing until
    the kernel's out-of-memory killer picks a process. The limit counts from what the worker
    already holds (its interpreter, libraries, thread pools and the run's table), which
    depends on the machine (thread pools sized by its cores) and on the fits it served
    before; the parent's watch of resident memory bounds the whole worker at ``limit``. The
    previous limit is restored after."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        yield
        return
    held = data_bytes()
    if not limit or held is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = held + int(limit)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    except (ValueError, OSError):  # pragma: no cover - a platform that refuses it
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _run_trial(conn: Connection, payload: dict[str, Any], job: dict[str, Any]) -> None:
    from autofuse._cv import fit_folds

    spec = payload["learners"][job["learner"]]
    conn.send(("started",))
    out = ModelFile(job["path"])
    try:
        for k, model, pred, fit_s, predict_s in fit_folds(
                spec, job["params"], payload["frame"], payload["target"], payload["data"],
                payload["folds"], job.get("seed")):
            out.add(model)
            del model
            conn.send(("fold", k, pred, fit_s, predict_s))
            if conn.recv() == "stop":
                out.discard()
                conn.send(("stopped",))
                return
    except BaseException:
        out.discard()
        raise
    out.close()
    conn.send(("done", job["path"]))


def _run_refit(conn: Connection, payload: dict[str, Any], job: dict[str, Any]) -> None:
    """One configuration of the run fitted on every row of its table."""
    _run_fit(conn, {**job, "spec": payload["learners"][job["learner"]],
                    "data": payload["data"], "X": payload["frame"], "y": payload["target"]})


def fit_arguments(model: Any, sample_weight: Any) -> dict[str, Any]:
    """Keyword arguments that pass ``sample_weight`` to ``model``'s fit (a Pipeline routes
    it to its last step), or ValueError when its final estimator takes none."""
    import inspect

    if sample_weight is None:
        return {}
    final, prefix = model, ""
    steps = getattr(model, "steps", None)
    if steps:
        final, prefix = steps[-1][1], f"{steps[-1][0]}__"
    try:
        takes = "sample_weight" in inspect.signature(final.fit).parameters
    except (TypeError, ValueError):  # pragma: no cover
        takes = False
    if not takes:
        raise ValueError(f"{type(final).__name__}.fit takes no sample_weight")
    return {f"{prefix}sample_weight": sample_weight}


def _run_fit(conn: Connection, job: dict[str, Any]) -> None:
    """One model fitted on the rows the job carries (a distilled student, a refit)."""
    conn.send(("started",))
    model = job["spec"].estimator(job["params"], job["data"], job.get("seed"))
    model.fit(job["X"], job["y"], **fit_arguments(model, job.get("sample_weight")))
    out = ModelFile(job["path"])
    out.add(model)
    out.close()
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
        limit = job.get("memory_limit")
        try:
            with memory_cap(limit), threadpool_limits(limits=job["threads"]), \
                    threads_for_trial(job["threads"]):
                if kind == "fit":
                    _run_fit(conn, job)
                else:
                    (_run_trial if kind == "trial" else _run_refit)(conn, payloads[token], job)
        except BaseException as exc:  # noqa: BLE001 - any failure is the trial's, not ours
            if isinstance(exc, MemoryError):
                reason = f"{out_of_memory(limit)}: MemoryError {exc}".strip()
            else:
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
    # What every trial needs, imported before the first one arrives (a second or two on a
    # small machine), so no trial is charged for the worker's start-up.
    import autofuse._cv  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import threadpoolctl  # noqa: F401
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
        """The exit code (negative: the signal that killed it), waiting up to a second for a
        process whose pipe just closed to be gone; None while it runs."""
        try:
            return self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return None

    def resident_bytes(self) -> int | None:
        """The worker's resident memory now (Linux; None where it cannot be read)."""
        return resident_bytes(self.process.pid)

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


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` from ``/proc`` (None where there is none)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


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


# ----------------------------------------------------------------- fits of the fusion step

#: How often ``run_fits`` reads its workers' resident memory (seconds).
WATCH_SECONDS = 0.2


class FitFailed(RuntimeError):
    """A fit run by ``run_fits`` failed, died, ran out of memory or out of time."""


def run_fits(jobs: list[dict[str, Any]], *, deadline: float | None, n_workers: int,
             memory_limit: int | None) -> list[Any]:
    """Fit each job's model in a worker (``("fit", None, job)``: ``spec``, ``params``,
    ``data``, ``X``, ``y``, ``sample_weight``, ``seed``, ``threads``), up to ``n_workers``
    at once, each under ``memory_limit`` bytes, all by ``deadline`` (``time.monotonic()``;
    None: none). Returns the fitted models in the jobs' order; the first failure kills the
    fits still running and raises ``FitFailed`` with its reason (a fit still running at
    the deadline: "stopped at the time limit")."""
    import shutil
    import tempfile
    import time
    from multiprocessing.connection import wait

    from autofuse._fold_models import read_models

    folder = tempfile.mkdtemp(prefix="autofuse-fits-")
    workers = POOL.acquire(max(1, min(n_workers, len(jobs))))
    results: list[Any] = [None] * len(jobs)
    running: dict[int, tuple[Worker, int]] = {}  # worker index -> (worker, job index)
    queue = list(range(len(jobs)))
    idle = list(range(len(workers)))
    failure = ""
    try:
        while (queue or running) and not failure:
            while queue and idle:
                w, j = idle.pop(), queue.pop(0)
                job = {**jobs[j], "path": os.path.join(folder, f"fit-{j}.pkl"),
                       "memory_limit": memory_limit}
                workers[w].conn.send(("fit", None, job))
                running[w] = (workers[w], j)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                failure = "stopped at the time limit"
                break
            ready = wait([r[0].conn for r in running.values()],
                         timeout=WATCH_SECONDS if left is None else min(WATCH_SECONDS, left))
            if memory_limit:
                over = [w for w, (worker, _) in running.items()
                        if (worker.resident_bytes() or 0) > memory_limit]
                if over:
                    failure = out_of_memory(memory_limit)
                    break
            for w, (worker, j) in list(running.items()):
                if worker.conn not in ready:
                    continue
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    message = ("error", "the worker process died")
                if message[0] == "started":
                    continue
                del running[w]
                if message[0] == "done":
                    results[j] = read_models(message[1])[0]
                    idle.append(w)
                else:
                    failure = message[1]
                    if not worker.alive or message[1] == "the worker process died":
                        workers[w] = replace(worker)
                    idle.append(w)
        if failure:
            for w, (worker, _) in running.items():
                workers[w] = replace(worker)
            raise FitFailed(failure)
    finally:
        POOL.release(workers)
        shutil.rmtree(folder, ignore_errors=True)
    return results
