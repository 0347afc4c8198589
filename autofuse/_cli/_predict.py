"""``autofuse predict RUN_OR_MODEL DATA``: a fitted model's predictions for a table.

DATA is checked against the training schema (``autofuse._data.conform``): a missing
column is an error naming it, a column of the wrong type is an error, extra columns are
ignored with a warning, unseen categories are handled by the learners. A target column in
DATA (the one the model was fit on) is left out without a warning.

The model file is checked before it is unpickled (``autofuse.load``): a corrupted,
truncated or older-format file is bad input (exit 2). With a key (``--key-file``, else
the ``AUTOFUSE_MODEL_KEY`` environment variable) only a model signed with it is loaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any, TextIO

import pandas as pd

from autofuse._errors import InputError, input_errors, reword
from autofuse._run_folder import RunFolder
from autofuse._tables import read_table, write_table


def load_model(path: str, key: bytes | None = None) -> Any:
    """The model of a run folder (its model.pkl) or in a model file, checked (and with
    ``key``, or else ``AUTOFUSE_MODEL_KEY``, its signature) before it is unpickled."""
    from autofuse import load

    if os.path.isdir(path):
        folder = RunFolder(path)
        folder.require_run()
        if not os.path.isfile(folder.model_path):
            raise InputError(f"{folder.path} has no model.pkl yet: its first fit has not "
                             "finished")
        path = folder.model_path
    elif not os.path.exists(path):
        raise InputError(f"no such run folder or model file: {path}")
    with input_errors():
        return load(path, key)


def read_key(path: str) -> bytes:
    """The signing key in the file ``path``: its bytes, less trailing newlines."""
    try:
        with open(path, "rb") as f:
            key = f.read().rstrip(b"\r\n")
    except OSError as exc:
        raise InputError(f"--key-file: cannot read {path}: {exc.strerror}") from exc
    if not key:
        raise InputError(f"--key-file: {path} is empty")
    return key


def predictions(model: Any, frame: pd.DataFrame, proba: bool, source: str) -> pd.DataFrame:
    target = getattr(model, "target_name_", None)
    if target is not None and target in frame.columns:
        frame = frame.drop(columns=[target])
    name = target or "prediction"
    if proba and model.task_ == "regression":
        raise InputError("--proba is for classification; this model does regression")
    with input_errors(X=source), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if proba:
            result = pd.DataFrame(model.predict_proba(frame),
                                  columns=[str(c) for c in model.classes_])
        else:
            result = pd.DataFrame({name: model.predict(frame)})
    for w in caught:  # "X has columns unseen at fit time" -> "new.csv has ..."
        warnings.warn(reword(str(w.message), X=source), w.category, stacklevel=1)
    return result


def _run_predict(args: argparse.Namespace, out: TextIO) -> int:
    model = load_model(args.model, read_key(args.key_file) if args.key_file else None)
    frame = read_table(args.data)
    keep = args.keep or []
    absent = [c for c in keep if c not in frame.columns]
    if absent:
        raise InputError(f"--keep: {args.data} has no column {absent[0]!r}")
    result = predictions(model, frame, args.proba, args.data)
    if keep:
        result = pd.concat([frame[keep].reset_index(drop=True), result], axis=1)
    if args.out in (None, "-"):
        result.to_csv(out, index=False)
    else:
        write_table(result, args.out)
        sys.stderr.write(f"autofuse predict: {len(result)} rows to {args.out}\n")
    return 0


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        "predict", help="predict a table with a fitted run or model file",
        description="Predict DATA with the model of a run folder (or a model file). DATA "
        "must have the training columns; extra columns are ignored with a warning.")
    p.add_argument("model", metavar="RUN_OR_MODEL", help="run folder, or a model file")
    p.add_argument("data", metavar="DATA", help="table to predict: CSV or Parquet")
    p.add_argument("--out", metavar="FILE",
                   help="CSV, or Parquet by its suffix (default: CSV on stdout)")
    p.add_argument("--proba", action="store_true",
                   help="class probabilities, one column per class")
    p.add_argument("--keep", type=lambda t: [c.strip() for c in t.split(",") if c.strip()],
                   metavar="A,B", help="copy these input columns (ids) into the output")
    p.add_argument("--key-file", metavar="FILE",
                   help="the key the model was signed with (default: the "
                   "AUTOFUSE_MODEL_KEY environment variable); an unsigned or otherwise "
                   "signed model is refused")
    p.set_defaults(handler=_run_predict)
