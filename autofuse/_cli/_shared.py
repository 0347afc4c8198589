"""The command line of a shared run: ``autofuse worker``, and ``fuse``, ``leaderboard`` and
``report`` on a study in a database (``--storage URL --study NAME``) instead of a run
folder.

``autofuse worker --storage URL --study NAME`` joins a run that ``autofuse fit DATA
--storage URL --study NAME`` started, and runs its trials until its deadline or trial
limit; run the same command on as many machines as you like. ``autofuse fuse --storage
URL --study NAME --out DIR`` fuses every finished trial into the run folder DIR (made if
needed: model.pkl, leaderboard.csv, run.json, and the trials' files in DIR/library).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from autofuse._errors import InputError, input_errors
from autofuse._run_folder import RunFolder

#: Seconds ``autofuse worker`` waits for the run's study by default.
WAIT_SECONDS = 60.0


def add_storage_arguments(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--storage", metavar="URL", required=required,
                   help="the shared run's database, e.g. postgresql://user@host/db")
    p.add_argument("--study", metavar="NAME", help="the run's study in it (default autofuse)")
    p.add_argument("--artifacts", metavar="DIR",
                   help="where this machine reaches the run's artifact store (default: where "
                   "the run's starter had it, as the study records)")


def _study(args: argparse.Namespace) -> str:
    from autofuse.search._study import STUDY_NAME

    return args.study or STUDY_NAME


# ----------------------------------------------------------------- autofuse worker

def _run_worker(args: argparse.Namespace, out: TextIO) -> int:
    from autofuse._distributed import worker

    X = y = None
    if args.data:
        X, y = _own_table(args)
    from autofuse._cli._fit import _catch_sigterm, _release_sigterm

    verbose = 0 if args.quiet else 2 if args.verbose else 1
    _catch_sigterm()  # SIGTERM (a scheduler) stops it as Ctrl-C does: its trials go back
    try:
        report = worker(args.storage, _study(args), artifacts=args.artifacts, X=X, y=y,
                        n_jobs=args.jobs, memory_limit=args.memory_limit,
                        max_disk=args.max_disk, wait=args.wait, verbose=verbose)
    finally:
        _release_sigterm()
    t = report["trials"]
    out.write(f"worker {report['worker']}: {t['done']} trials done, {t['stopped']} stopped, "
              f"{t['failed']} failed in {report['seconds']:.1f} s; "
              f"{report['storage_seconds']:.2f} s in {report['storage_calls']} storage calls\n")
    return 0


def _own_table(args: argparse.Namespace) -> tuple[Any, Any]:
    """The worker's ``--data`` table, split by the run's target column."""
    from autofuse._shared_run import open_shared
    from autofuse._tables import read_table

    with input_errors():
        study, run, _ = open_shared(args.storage, _study(args), artifacts=args.artifacts,
                                    wait=args.wait)
    target = run["table"].get("target")
    frame = read_table(args.data)
    if target is None:
        raise InputError("the run's target has no column name (it was started from Python "
                         "with an unnamed y): start the worker without --data")
    if target not in frame.columns:
        raise InputError(f"{args.data} is not the table this run was started on: it has no "
                         f"column {target!r} (the run's target)")
    return frame.drop(columns=[target]), frame[target]


# ----------------------------------------------------------------- fuse, leaderboard, report

def fuse_to_folder(args: argparse.Namespace, out_dir: str, out: TextIO | None) -> RunFolder:
    """Fuse the shared study's finished trials into the run folder ``out_dir``."""
    from autofuse._cli._fit import DEFAULTS, now
    from autofuse._cli._fuse import fuse_call
    from autofuse._distributed import fuse

    folder = RunFolder(out_dir)
    study = _study(args)
    config = {**DEFAULTS, "storage": args.storage, "study": study,
              "combiner": args.combiner or DEFAULTS["combiner"],
              "combiner_options": args.combiner_options}
    if folder.is_run():
        record = folder.read()
        was = record.get("config", {})
        if (was.get("storage"), was.get("study")) != (args.storage, study):
            raise InputError(f"{folder.path} is the run folder of another run (storage "
                             f"{was.get('storage')!r}, study {was.get('study')!r}); give "
                             "another --out")
    else:
        folder.create()
        record = {"created": now(), "config": config, "data": {}, "runs": []}
    folder.lock()
    try:
        model = fuse_call(
            folder, record, args, lambda: fuse(
                args.storage, study, combiner=config["combiner"],
                combiner_options=config["combiner_options"], artifacts=args.artifacts,
                library=folder.library_dir),
            None, storage=args.storage, study=study, combiner=config["combiner"],
            combiner_options=config["combiner_options"] or None)
        table = model.study_.user_attrs.get("autofuse_run", {}).get("table", {})
        record["data"] = {"file": table.get("path"), "sha256": table.get("sha256"),
                          "rows": table.get("rows")}
        folder.write(record)
    finally:
        folder.unlock()
    if out is not None:
        from autofuse._cli._fit import blend_line

        out.write(f"run folder: {folder.path}\n{blend_line(record['result'])}"
                  f"model: {folder.model_path}\n")
    return folder


def study_board(args: argparse.Namespace) -> tuple[Any, str]:
    """The shared study's trials as they stand (no fusion): a leaderboard's trial rows."""
    import optuna
    import pandas as pd
    from optuna.trial import TrialState

    from autofuse._leaderboard import best_first, trial_row
    from autofuse._shared_run import read_run
    from autofuse.search._study import _shown, storage_of

    with input_errors():
        try:
            study = optuna.load_study(study_name=_study(args),
                                      storage=storage_of(args.storage))
        except KeyError:
            raise ValueError(f"no study {_study(args)!r} in {_shown(args.storage)}") from None
        run = read_run(study, _shown(args.storage))
    metric = run["metric"]
    trials = study.get_trials(deepcopy=False)
    board = pd.DataFrame([trial_row(t, metric) for t in trials
                          if t.state != TrialState.WAITING],
                         columns=list(trial_row(optuna.trial.create_trial(value=0.0),
                                                metric)))
    done, rest = best_first(board, metric, run["greater_is_better"])
    return pd.concat([done, rest], ignore_index=True), metric


def report_of_study(args: argparse.Namespace) -> str:
    """Fuse the shared study into a temporary run folder and write its report."""
    import shutil
    import tempfile

    from autofuse._report import write_report

    scratch = tempfile.mkdtemp(prefix="autofuse-report-")
    try:
        args.combiner, args.combiner_options = None, None
        folder = fuse_to_folder(args, os.path.join(scratch, "run"), None)
        target = args.out or os.path.abspath(f"{_study(args)}-report.html")
        return write_report(folder, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def add_parser(commands: Any) -> None:
    from autofuse._cli._fit import _positive

    p = commands.add_parser(
        "worker", help="join a shared run and run its trials (many machines, one study)",
        description="Join the run that `autofuse fit DATA --storage URL --study NAME` started "
        "in a database server, and run its trials until the run's deadline or trial limit. "
        "Run the same command on every machine: they share the study (and Optuna's sampler "
        "sees every worker's results) and the artifact store. The run's table, folds and "
        "learners come from the study; this machine needs the same autofuse and plugin "
        "versions (checked).")
    add_storage_arguments(p, required=True)
    p.add_argument("--data", metavar="DATA", help="this machine's copy of the run's table "
                   "(checked against the run's fingerprint; default: read from the store)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="trials in parallel in this worker (default 1; -1: one per core)")
    p.add_argument("--memory-limit", type=_positive(float), metavar="GB",
                   help="memory each trial may use (default as autofuse fit)")
    p.add_argument("--max-disk", type=_positive(float), metavar="GB",
                   help="disk this worker's cache of fold models may take")
    p.add_argument("--wait", type=float, default=WAIT_SECONDS, metavar="SECONDS",
                   help=f"wait this long for the run to start (default {WAIT_SECONDS:g})")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--quiet", action="store_true", help="errors only on stderr")
    noise.add_argument("--verbose", action="store_true", help="every trial on stderr")
    p.set_defaults(handler=_run_worker)
