"""``autofuse fit DATA --target COL``: a hands-off run into a run folder, and its resume.

A new run records its configuration in ``run.json`` before the search starts. Running
``autofuse fit`` again on the same folder continues it: options that define the run (the
target, task, metric, seed, learners, folds, storage) are taken from ``run.json`` and may
not change; ``--time-limit``, ``--trials``, ``--jobs``, ``--memory-limit``,
``--max-disk``, ``--combiner`` and
``--combiner-option`` (they change only the fusion), ``--refit-full`` and the verbosity
apply to the new call. The data must be the same table (its fingerprint is
checked); finished trials are kept, not refitted.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, TextIO

from autofuse._cli import _combiner_options
from autofuse._errors import InputError, input_errors
from autofuse._progress import PROGRESS
from autofuse._run_folder import RunFolder
from autofuse._tables import fingerprint, read_table
from autofuse.search._study import STUDY_NAME

log = logging.getLogger("autofuse")

#: Options that define a run: a resumed run keeps them (a different value is refused).
FIXED = ("target", "task", "metric", "seed", "learners", "cv", "storage", "study")
#: Every option's value when neither the command nor the run folder gives one.
DEFAULTS: dict[str, Any] = {"target": None, "task": None, "metric": None, "seed": None,
                            "learners": None, "cv": 5, "storage": None, "study": None,
                            "artifacts": None, "time_limit": 60.0,
                            "trials": None, "jobs": -1, "memory_limit": None,
                            "max_disk": None, "combiner": "auto",
                            "combiner_options": None, "refit_full": False}
_FLAGS = {name: "--" + name.replace("_", "-") for name in DEFAULTS}
_FLAGS["seed"] = "--seed"
_FLAGS["combiner_options"] = "--combiner-option"


def default_out(data: str) -> str:
    """``train.csv`` (or ``.csv.gz``, ``.parquet``) -> ``./train.autofuse``."""
    name = os.path.basename(data.rstrip("/"))
    for suffix in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        name = name.removesuffix(suffix)
    return os.path.splitext(name)[0] + ".autofuse"


def now() -> str:
    """The time now, UTC, as ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve_config(args: argparse.Namespace, saved: dict[str, Any] | None) -> dict[str, Any]:
    """The call's configuration: the command's options, then the saved run's, then the
    defaults. A resumed run's defining options may not change."""
    given = {name: getattr(args, name) for name in DEFAULTS if getattr(args, name) is not None}
    if saved is None:
        if given.get("target") is None:
            raise InputError("give --target, the column to predict")
        return {**DEFAULTS, **given}
    for name in FIXED:
        if name in given and given[name] != saved.get(name):
            was = (f"with {_FLAGS[name]} {_show(saved[name])}" if saved.get(name) is not None
                   else f"without {_FLAGS[name]}")
            raise InputError(f"this run folder was made {was}; it cannot change to "
                             f"{_FLAGS[name]} {_show(given[name])} when resuming. Give a new "
                             "--out for a new run")
    return {**DEFAULTS, **{k: saved[k] for k in FIXED if k in saved},
            **{k: v for k, v in given.items() if k not in FIXED}}


def _show(value: Any) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


def _check_same_data(saved: dict[str, Any], now: dict[str, Any], path: str) -> None:
    if saved["sha256"] == now["sha256"]:
        return
    if saved["schema"] != now["schema"]:
        old = {(c["name"], c["dtype"]) for c in saved["schema"]}
        new = {(c["name"], c["dtype"]) for c in now["schema"]}
        diff = sorted({n for n, _ in old ^ new})
        detail = f"its columns differ ({', '.join(repr(d) for d in diff[:5])})"
    elif saved["rows"] != now["rows"]:
        detail = f"it has {now['rows']} rows, the run's data had {saved['rows']}"
    else:
        detail = "its values differ"
    raise InputError(f"{path} is not the data this run was fit on: {detail}. Resume with the "
                     f"same data (fingerprint {saved['sha256'][:12]}), or give a new --out")


def _split(frame: Any, target: str, path: str) -> tuple[Any, Any]:
    if target not in frame.columns:
        shown = ", ".join(repr(c) for c in list(frame.columns)[:10])
        more = f" and {frame.shape[1] - 10} more" if frame.shape[1] > 10 else ""
        raise InputError(f"{path} has no column {target!r} (--target); its columns: "
                         f"{shown}{more}")
    if frame.shape[1] == 1:
        raise InputError(f"{path} has only the target column {target!r}: nothing to learn from")
    return frame.drop(columns=[target]), frame[target]


class Logs:
    """The call's log: every message to ``run.log`` with a timestamp, and to stderr at the
    level the verbosity asks for (with a timestamp when stderr is not a terminal)."""

    def __init__(self, folder: RunFolder, verbose: int) -> None:
        from autofuse._progress import interactive

        self.file = logging.FileHandler(folder.log_path, encoding="utf-8")
        self.file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                                 "%Y-%m-%d %H:%M:%S"))
        self.stderr = logging.StreamHandler(sys.stderr)
        self.stderr.setLevel(logging.INFO if verbose >= 2 else PROGRESS if verbose
                             else logging.ERROR)
        self.stderr.setFormatter(logging.Formatter(
            "autofuse: %(message)s" if interactive() else "%(asctime)s autofuse: %(message)s",
            "%Y-%m-%d %H:%M:%S"))
        self.saved = (log.level, log.propagate)
        log.setLevel(logging.INFO)
        log.propagate = False
        log.addHandler(self.file)
        log.addHandler(self.stderr)

    def traceback(self, what: str = "the fit failed") -> None:
        """The current exception's traceback, in the log file only."""
        self.file.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, what, None,
                                        sys.exc_info()))

    def close(self) -> None:
        for handler in (self.file, self.stderr):
            log.removeHandler(handler)
            handler.close()
        log.setLevel(self.saved[0])
        log.propagate = self.saved[1]


def _count(board: Any) -> dict[str, int]:
    trials = board[board["kind"] == "trial"]
    return {status: int((trials["status"] == status).sum())
            for status in ("done", "stopped", "failed")}


def _finite(value: Any) -> float | None:
    """``value`` as a float, or None (JSON null) where it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None


def result_of(model: Any) -> dict[str, Any]:
    """What run.json records of a fitted (or fused) model: its task and metric, the
    fusion's combiner, in-sample (``cv_score``) and outer (nested cross-validation)
    scores, members and weights, the best single model, the trial counts, the data
    summary."""
    board = model.leaderboard()
    metric = model.metric_
    blend = board[board["kind"] == "blend"].iloc[0]
    best = board[board["kind"] == "best single"].iloc[0]
    return {
        "task": model.task_, "metric": metric,
        "greater_is_better": bool(model._metric.greater_is_better),
        "classes": None if model.classes_ is None else model.classes_.tolist(),
        "cv_score": float(model.cv_score_), "outer_score": _finite(model.outer_score_),
        "combiner": model.combiner_, "combiner_note": blend["reason"],
        "best_single": {"model": f"{best['learner']}#{best['trial']}", "learner": best["learner"],
                        "score": float(best[metric])},
        "members": [{"model": k, "weight": float(w)} for k, w in model.weights_.items()],
        "trials": _count(board),
        "columns": model.data_summary().to_dict(orient="records"),
        "fit_seconds": round(float(model.fit_seconds_), 3),
    }


def write_outputs(folder: RunFolder, model: Any) -> None:
    """model.pkl and leaderboard.csv of ``model``, each replaced whole."""
    import json

    from autofuse._tables import write_table

    tmp = f"{folder.model_path}.tmp-{os.getpid()}"
    model.save(tmp)
    os.replace(tmp, folder.model_path)
    board = model.leaderboard()
    board["params"] = board["params"].map(lambda p: json.dumps(p, default=str))
    write_table(board, folder.leaderboard_path)


def _remove_new(folder: RunFolder, made_dir: bool) -> None:
    """Undo a new run refused for bad input: nothing of value was made yet."""
    if made_dir:
        shutil.rmtree(folder.path, ignore_errors=True)
        return
    for name in ("run.json", "run.log", "study.db", ".lock"):
        try:
            os.remove(folder.file(name))
        except FileNotFoundError:
            pass
    shutil.rmtree(folder.library_dir, ignore_errors=True)


def _run_fit(args: argparse.Namespace, out: TextIO) -> int:
    folder = RunFolder(args.out or default_out(args.data))
    made_dir = not os.path.exists(folder.path)
    folder.create()
    folder.lock()
    resumed = folder.is_run()
    try:
        return _fit_locked(args, out, folder, resumed)
    except InputError:
        if not resumed:  # nothing of value was made yet: leave no half-made run folder
            _remove_new(folder, made_dir)
        raise
    finally:
        folder.unlock()


def _fit_locked(args: argparse.Namespace, out: TextIO, folder: RunFolder,
                resumed: bool) -> int:
    from autofuse import _api

    record = folder.read() if resumed else None
    config = resolve_config(args, record["config"] if record else None)
    frame = read_table(args.data)
    data = fingerprint(frame)
    if record:
        _check_same_data(record["data"], data, args.data)
    X, y = _split(frame, config["target"], args.data)
    if record is None:
        record = {"created": now(), "config": config,
                  "data": {"file": os.path.abspath(args.data), **data}, "runs": []}
    verbose = 0 if args.quiet else 2 if args.verbose else 1
    record["config"] = config  # the latest call's; the defining options never change
    call = begin_call(folder, record, "fit", data=os.path.abspath(args.data),
                      **{k: config.get(k) for k in ("time_limit", "trials", "jobs",
                                                    "memory_limit", "max_disk", "combiner",
                                                    "combiner_options", "refit_full")})
    logs = Logs(folder, verbose)
    start = time.monotonic()
    try:
        log.info("%s %s: %d rows, %d columns, target %r; run folder %s",
                 "resuming" if resumed else "fitting", args.data, data["rows"],
                 data["columns"], config["target"], folder.path)
        with input_errors(X=args.data, y=f"the target column {config['target']!r}"):
            model = _api.run(
                X, y, time_limit=config["time_limit"], n_trials=config["trials"],
                metric=config["metric"], task=config["task"], cv=config["cv"], groups=None,
                learners=config["learners"], combiner=config["combiner"],
                combiner_options=config.get("combiner_options"),
                storage=config["storage"] or folder.storage_url, n_jobs=config["jobs"],
                memory_limit=config.get("memory_limit"), max_disk=config.get("max_disk"),
                refit_full=config["refit_full"], random_state=config["seed"],
                verbose=verbose, library_dir=folder.library_dir, saves_model=True,
                study_name=config.get("study") or STUDY_NAME,
                artifacts=config.get("artifacts"), table_path=os.path.abspath(args.data))
        write_outputs(folder, model)
    except BaseException as exc:
        record_failure(folder, record, call, start, exc, logs)
        raise
    finally:
        logs.close()
    end_call(call, start)
    record["result"] = result_of(model)
    record["versions"] = model.versions_
    folder.write(record)
    _summary(out, folder, record["result"])
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler stopping the job) during a call: raised in the main
    thread and handled as Ctrl-C is (the search stops its trials, the run folder stays
    resumable, exit code 143), but recorded as "terminated"."""


#: The SIGTERM handlers ``begin_call`` replaced, for ``end_call`` to put back.
_saved_sigterm: list[Any] = []


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated("terminated by SIGTERM")


def _catch_sigterm() -> None:
    if threading.current_thread() is threading.main_thread():
        _saved_sigterm.append(signal.signal(signal.SIGTERM, _raise_terminated))


def _release_sigterm() -> None:
    if _saved_sigterm and threading.current_thread() is threading.main_thread():
        previous = _saved_sigterm.pop()  # None: one set outside Python; take the default
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def begin_call(folder: RunFolder, record: dict[str, Any], command: str, **options: Any
               ) -> dict[str, Any]:
    """Record a new call in run.json (a call still marked running never came back: it was
    killed) and return its record, for ``end_call``. Until then, SIGTERM raises
    ``Terminated`` (as Ctrl-C raises KeyboardInterrupt), so the call is recorded, not left
    running."""
    for call in record["runs"]:
        if call["status"] == "running":
            call["status"] = "killed"
    call = {"command": command, "started": now(), "status": "running", **options}
    record["runs"].append(call)
    folder.write(record)
    _catch_sigterm()
    return call


def end_call(call: dict[str, Any], start: float, exc: BaseException | None = None) -> None:
    """Record in ``call`` (one of run.json's calls) how it ended: its seconds since
    ``start`` (``time.monotonic``), its end, and its status: done, or by ``exc``, bad input,
    interrupted, terminated (SIGTERM) or failed, with the error. SIGTERM's handler goes
    back to what it was before ``begin_call``."""
    _release_sigterm()
    call["seconds"] = round(time.monotonic() - start, 3)
    call["finished"] = now()
    if exc is None:
        call["status"] = "done"
    elif isinstance(exc, InputError):
        call["status"], call["error"] = "bad input", str(exc)
    elif isinstance(exc, Terminated):
        call["status"] = "terminated"
    elif isinstance(exc, KeyboardInterrupt):
        call["status"] = "interrupted"
    else:
        call["status"], call["error"] = "failed", f"{type(exc).__name__}: {exc}"


def record_failure(folder: RunFolder, record: dict[str, Any], call: dict[str, Any],
                   start: float, exc: BaseException, logs: Logs, what: str | None = None
                   ) -> None:
    """A call that ended by ``exc``: recorded in run.json, and a failure's traceback in
    run.log (``what`` failed), which the one-line error points to."""
    end_call(call, start, exc)
    if call["status"] == "failed":
        logs.traceback(*([what] if what else []))
        exc.autofuse_hint = f" (details in {folder.log_path})"  # type: ignore[attr-defined]
    folder.write(record)


def blend_line(result: dict[str, Any]) -> str:
    """The summary's line on the fusion: combiner, members, in-sample and outer scores."""
    outer = result.get("outer_score")
    n = len(result["members"])
    return (f"blend ({result['combiner']}, {n} model{'' if n == 1 else 's'}): "
            f"{result['metric']} {result['cv_score']:.6g} in sample, "
            f"{'-' if outer is None else f'{outer:.6g}'} outer (nested cross-validation)\n")


def _summary(out: TextIO, folder: RunFolder, result: dict[str, Any]) -> None:
    metric, t = result["metric"], result["trials"]
    best = result["best_single"]
    out.write(f"run folder: {folder.path}\n"
              f"{blend_line(result)}"
              f"best single model: {best['model']}: {metric} {best['score']:.6g} "
              "(cross-validated)\n"
              f"trials: {t['done']} done, {t['stopped']} stopped, {t['failed']} failed\n"
              f"model: {folder.model_path}\n")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value
    return parse


def count_arg(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        "fit", help="search and fuse models into a run folder (or resume one)",
        description="Search many learners on DATA and fuse the best into one model. Writes "
        "a run folder (model.pkl, leaderboard.csv, study.db, run.json, run.log); running the "
        "same command again resumes it, keeping every finished trial.")
    p.add_argument("data", metavar="DATA", help="training table: CSV, or Parquet "
                   "(.parquet, .pq; needs pip install 'autofuse[parquet]')")
    p.add_argument("--target", metavar="COL", help="the column to predict")
    p.add_argument("--task", choices=("binary", "multiclass", "regression", "classification"),
                   help="default: inferred from the target")
    p.add_argument("--metric", help="roc_auc, log_loss, accuracy, rmse, ... (default: "
                   "roc_auc binary, log_loss multiclass, rmse regression)")
    p.add_argument("--time-limit", type=_positive(float), metavar="SECONDS",
                   help="seconds for this call (default 60); a resumed run gets this much more")
    p.add_argument("--trials", type=count_arg, metavar="N",
                   help="most trials to start in this call (default: as many as time allows)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="trials in parallel (default -1: one per core)")
    p.add_argument("--memory-limit", type=_positive(float), metavar="GB",
                   help="memory each trial may use; past it the trial fails and the run goes "
                   "on (default: 60%% of the available memory shared by the parallel trials)")
    p.add_argument("--max-disk", type=_positive(float), metavar="GB",
                   help="disk the fold models in the run folder may take (default: half the "
                   "free space, at most 10 GB)")
    p.add_argument("--seed", type=int, help="seed of the folds, the search and the learners")
    p.add_argument("--learners", type=_names, metavar="A,B",
                   help="learners to search (default: every installed one; see autofuse plugins)")
    _combiner_options.add_arguments(p, default=DEFAULTS["combiner"])
    p.add_argument("--cv", type=_positive(int), metavar="K", help="folds (default 5)")
    p.add_argument("--refit-full", action="store_const", const=True,
                   help="refit the blend's models on all rows if time allows")
    p.add_argument("--out", metavar="DIR", help="run folder (default: ./NAME.autofuse for "
                   "DATA NAME.csv); an existing one is resumed")
    p.add_argument("--storage", metavar="URL", help="Optuna storage of the study (default: "
                   "SQLite in the run folder); a database server's (postgresql://user@host/"
                   "db) starts a run that `autofuse worker` joins from other machines")
    p.add_argument("--study", metavar="NAME", help="the study's name in --storage (default "
                   "autofuse)")
    p.add_argument("--artifacts", metavar="DIR", help="a shared run's artifact store: a folder "
                   "every worker mounts, or s3://bucket/prefix (default: ./autofuse-artifacts)")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--quiet", action="store_true", help="errors only on stderr")
    noise.add_argument("--verbose", action="store_true", help="every trial on stderr")
    p.set_defaults(handler=_run_fit)
