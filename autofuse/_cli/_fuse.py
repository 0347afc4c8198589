"""``autofuse fuse RUN --combiner NAME``: fuse a run's model library again, no new search.

The run's model (model.pkl) is fused anew from the library its fit kept in the run folder
(``FusedModel.fuse``): the same finished trials, another combiner or other options. The
new model replaces model.pkl and leaderboard.csv (whole, as ``autofuse fit`` writes them),
run.json's result describes it, and the call is recorded among the run's calls. The study
is left as it is: a later ``autofuse fit`` on the folder resumes the search and fuses again
with its own ``--combiner``.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any, Callable, TextIO

from autofuse._cli import _combiner_options
from autofuse._cli._fit import (DEFAULTS, Logs, begin_call, blend_line, end_call,
                               record_failure, result_of, write_outputs)
from autofuse._errors import InputError, input_errors
from autofuse._run_folder import RunFolder

log = logging.getLogger("autofuse")

#: The combiner ``autofuse fuse`` uses unless told otherwise: fit's.
DEFAULT_COMBINER = DEFAULTS["combiner"]


def _run_fuse(args: argparse.Namespace, out: TextIO) -> int:
    if args.storage:  # a shared run: its study's finished trials, into a run folder
        from autofuse._cli._shared import _study, fuse_to_folder

        if args.run:
            raise InputError("give either RUN (a run folder) or --storage (a shared run), "
                             "not both; --out names the run folder a shared run is fused into")
        fuse_to_folder(args, args.out or f"{_study(args)}.autofuse", out)
        return 0
    if not args.run:
        raise InputError("give RUN (a run folder) or --storage URL --study NAME (a shared run)")
    if args.study or args.artifacts or args.out:
        raise InputError("--study, --artifacts and --out go with --storage (a shared run)")
    folder = RunFolder(args.run)
    folder.require_run()
    folder.lock()
    try:
        return _fuse_locked(args, out, folder)
    finally:
        folder.unlock()


def _fuse_locked(args: argparse.Namespace, out: TextIO, folder: RunFolder) -> int:
    from autofuse._cli._predict import load_model

    record = folder.read()
    model = load_model(folder.path)
    name = args.combiner or DEFAULT_COMBINER
    options = args.combiner_options or {}

    def make() -> Any:
        log.info("fusing the model library of %s again with %r%s", folder.path, name,
                 f", options {options}" if options else "")
        with input_errors():  # an unknown combiner or option, a library not kept
            fused = model.fuse(name, library=folder.library_dir, **options)
        if getattr(fused, "target_name_", None) is None:
            # predict names its column, and leaves DATA's target out, by the target's name
            fused.target_name_ = getattr(model, "target_name_", None)
        return fused

    fuse_call(folder, record, args, make, out, combiner=name,
              combiner_options=options or None)
    return 0


def fuse_call(folder: RunFolder, record: dict[str, Any], args: argparse.Namespace,
              make: Callable[[], Any], out: TextIO | None, **options: Any) -> Any:
    """One ``fuse`` call on a locked run folder: recorded in run.json (``options`` with it)
    and run.log, the model ``make()`` returns written (model.pkl, leaderboard.csv) and
    described in run.json's result; a failure recorded, and raised. Returns the model."""
    call = begin_call(folder, record, "fuse", **options)
    logs = Logs(folder, 0 if getattr(args, "quiet", False) else
                2 if getattr(args, "verbose", False) else 1)
    start = time.monotonic()
    try:
        fused = make()
        write_outputs(folder, fused)
    except BaseException as exc:
        record_failure(folder, record, call, start, exc, logs, "the fusion failed")
        raise
    finally:
        logs.close()
    end_call(call, start)
    result = record["result"] = result_of(fused)
    record["versions"] = fused.versions_
    folder.write(record)
    if out is not None:
        out.write(f"run folder: {folder.path}\n{blend_line(result)}"
                  f"model: {folder.model_path}\n")
    return fused


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        "fuse", help="fuse a run's models again with another combiner, without searching",
        description="Fuse the finished trials of a run folder again, with another combiner "
        "or other options, without searching again: replaces the run's model.pkl and "
        "leaderboard.csv. Needs the model library its fit kept in the folder. With --storage "
        "URL --study NAME instead of RUN: fuse every finished trial of a shared run, "
        "whichever worker ran it, into the run folder --out.")
    p.add_argument("run", metavar="RUN", nargs="?", help="run folder")
    from autofuse._cli._shared import add_storage_arguments

    add_storage_arguments(p)
    p.add_argument("--out", metavar="DIR", help="with --storage: the run folder to write "
                   "(default ./STUDY.autofuse; an earlier fuse of the same run is replaced)")
    _combiner_options.add_arguments(p, default=DEFAULT_COMBINER)
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--quiet", action="store_true", help="errors only on stderr")
    noise.add_argument("--verbose", action="store_true", help="every message on stderr")
    p.set_defaults(handler=_run_fuse)
