"""``autofuse leaderboard``, ``autofuse report`` and ``autofuse plugins``: looking at runs
and at what is installed."""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import asdict
from typing import Any, TextIO

import pandas as pd

from autofuse._cli._fit import count_arg
from autofuse._run_folder import RunFolder, read_leaderboard

#: Columns of the leaderboard's table view, the metric's column after ``learner`` (those a
#: leaderboard.csv written by an older autofuse lacks are left out).
TABLE_COLUMNS = ("model", "learner", "outer_score", "fit_seconds", "predict_seconds",
                 "members", "weight", "status", "reason")
#: The table view cuts reasons to this many characters (the CSV and JSON keep them whole).
REASON_WIDTH = 70


def _leaderboard(args: argparse.Namespace, out: TextIO) -> int:
    if args.storage:  # a shared run's trials, as they stand
        from autofuse._cli._shared import study_board

        _one_of(args)
        board, metric = study_board(args)
    else:
        _one_of(args)
        board, metric = read_leaderboard(RunFolder(args.run))
    if args.top is not None:
        board = top_trials(board, args.top)
    if args.format == "csv":
        board.to_csv(out, index=False)
    elif args.format == "json":
        records = json.loads(board.to_json(orient="records"))
        for r in records:
            r["params"] = json.loads(r["params"]) if r.get("params") else {}
        json.dump(records, out, indent=2)
        out.write("\n")
    else:
        columns = [c for c in TABLE_COLUMNS[2:] if c in board.columns]
        if "worker" in board.columns and board["worker"].fillna("").astype(str).str.len().any():
            columns.insert(columns.index("status"), "worker")  # a shared run's
        view = board[["model", "learner", metric, *columns]].copy()
        view["reason"] = view["reason"].astype(str).map(
            lambda r: r if len(r) <= REASON_WIDTH else r[:REASON_WIDTH - 3] + "...")
        text = _left(view, ("model", "learner", "status", "reason",
                            *(("worker",) if "worker" in view.columns else ()))).to_string(
            index=False, float_format=lambda v: f"{v:.5g}", na_rep="-")
        out.write("".join(line.rstrip() + "\n" for line in text.splitlines()))
    return 0


def _left(view: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``view`` with these text columns (and their headers) padded to align left."""
    view = view.copy()
    names = {}
    for name in columns:
        values = view[name].fillna("-").astype(str)
        width = max(int(values.str.len().max()) if len(values) else 0, len(name))
        view[name] = values.str.ljust(width)
        names[name] = name.ljust(width)
    return view.rename(columns=names)


def top_trials(board: pd.DataFrame, n: int) -> pd.DataFrame:
    """The rows that are not trials (blend, best single, combiners), then the first ``n``
    trials (the best ones: the leaderboard lists trials best first)."""
    trial = board["kind"] == "trial"
    return board[~trial | (trial.cumsum() <= n)]


def _one_of(args: argparse.Namespace) -> None:
    from autofuse._errors import InputError

    if bool(args.run) == bool(args.storage):
        raise InputError("give either RUN (a run folder) or --storage URL --study NAME (a "
                         "shared run)")


def _report(args: argparse.Namespace, out: TextIO) -> int:
    from autofuse._report import write_report

    _one_of(args)
    if args.storage:  # fused from the shared study's finished trials, then reported
        from autofuse._cli._shared import report_of_study

        out.write(f"{report_of_study(args)}\n")
        return 0
    folder = RunFolder(args.run)
    path = write_report(folder, args.out)
    out.write(f"{path}\n")
    return 0


def _plugins(args: argparse.Namespace, out: TextIO) -> int:
    from autofuse import plugins

    with warnings.catch_warnings():
        # Load errors are part of the listing; a warning on stderr would say it twice.
        warnings.simplefilter("ignore", plugins.PluginWarning)
        infos = plugins.list_plugins()
    if args.json:
        json.dump([asdict(i) for i in infos], out, indent=2)
        out.write("\n")
        return 0
    for info in infos:
        dist = f"{info.distribution} {info.version}" if info.distribution else "-"
        state = "loaded" if info.loaded else "NOT LOADED"
        out.write(f"{info.name}  ({dist}; {info.source}; {state})\n")
        for kind in ("learners", "combiners", "metrics"):
            names = getattr(info, kind)
            if names:
                out.write(f"    {kind}: {', '.join(names)}\n")
        for error in info.errors:
            out.write(f"    error: {error}\n")
    return 0


def add_parsers(commands: Any) -> None:
    from autofuse._cli._shared import add_storage_arguments

    p = commands.add_parser("leaderboard", help="print a run's combiners and trials, best first",
                            description="Print a run's leaderboard: the blend, the best "
                            "single model and every combiner tried (fusion:NAME, with its "
                            "in-sample and outer score), then every trial (finished ones "
                            "best first). With --storage URL --study NAME instead of RUN: "
                            "the trials of a shared run as they stand, with the worker that "
                            "ran each.")
    p.add_argument("run", metavar="RUN", nargs="?", help="run folder")
    add_storage_arguments(p)
    p.add_argument("--top", type=count_arg, help="show only the N best trials (after the "
                   "blend, best single and combiner rows)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(handler=_leaderboard)

    p = commands.add_parser("report", help="write a run's HTML report",
                            description="Write a self-contained HTML report of a run "
                            "(needs matplotlib: pip install 'autofuse[report]').")
    p.add_argument("run", metavar="RUN", nargs="?", help="run folder")
    add_storage_arguments(p)
    p.add_argument("--out", help="file to write (default: RUN/report.html; with --storage "
                   "./STUDY-report.html)")
    p.set_defaults(handler=_report)

    p = commands.add_parser("plugins", help="list plugins: what each registered, load errors")
    p.add_argument("--json", action="store_true", help="print the listing as JSON")
    p.set_defaults(handler=_plugins)
