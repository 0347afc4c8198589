"""Tables on disk: reading CSV and Parquet files with pandas, with errors that name the
problem, and a fingerprint that tells whether two tables are the same data."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pandas as pd

from autofuse._errors import InputError

#: Suffixes read as Parquet (through pyarrow, the ``parquet`` extra); anything else is CSV
#: (compressed CSV such as ``.csv.gz`` included).
PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet(path: str) -> bool:
    return str(path).lower().endswith(PARQUET_SUFFIXES)


def read_table(path: str) -> pd.DataFrame:
    """The table in ``path`` (CSV, or Parquet by its suffix)."""
    if not os.path.exists(path):
        raise InputError(f"no such file: {path}")
    if os.path.isdir(path):
        raise InputError(f"{path} is a directory, not a data file (CSV or Parquet)")
    if is_parquet(path):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("reading Parquet needs pyarrow: pip install 'autofuse[parquet]'") from None
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:
            raise InputError(f"could not read {path} as Parquet: {_one_line(exc)}") from exc
    else:
        try:
            frame = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            raise InputError(f"{path} is empty") from None
        except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
            raise InputError(f"could not read {path} as CSV: {_one_line(exc)}") from exc
    if frame.shape[0] == 0:
        raise InputError(f"{path} has a header but no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def write_table(frame: pd.DataFrame, path: str) -> None:
    """Write ``frame`` to ``path`` (Parquet by its suffix, else CSV) through a temporary
    file, so a reader never sees half a file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        if is_parquet(path):
            try:
                frame.to_parquet(tmp, index=False)
            except ImportError:
                raise InputError("writing Parquet needs pyarrow: pip install 'autofuse[parquet]'") from None
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fingerprint(frame: pd.DataFrame) -> dict[str, Any]:
    """What identifies a table: a SHA-256 of its values, column names and types, and its
    schema (rows, and every column's name and pandas type)."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    schema = [{"name": str(c), "dtype": str(t)} for c, t in frame.dtypes.items()]
    h.update(repr([(c["name"], c["dtype"]) for c in schema]).encode())
    return {"sha256": h.hexdigest(), "rows": int(frame.shape[0]),
            "columns": int(frame.shape[1]), "schema": schema}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
