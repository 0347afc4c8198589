"""Validate a table and its target, infer the task, and describe every column.

``describe(X, y)`` is the first step of a fit: it raises a ``ValueError`` that names the
problem before any learner runs (wrong lengths, empty data, a target with NaN or infinity,
one class only, labels mixing text and numbers), and returns the table as a DataFrame, the
encoded target and a ``DataSpec`` that says what every column is and what will be done
with it. High-cardinality text (ids, names, free text) is dropped, and the spec says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

TASKS = ("binary", "multiclass", "regression")

#: A numeric target with more distinct integer values than this is taken as regression.
MAX_INTEGER_CLASSES = 20
#: A text column with at least this many distinct values, and at least half its rows
#: distinct, is an identifier or free text: it is dropped rather than encoded.
MIN_ID_UNIQUE = 50


@dataclass(frozen=True)
class ColumnInfo:
    """One input column: its kind, and what the learners will get of it."""

    name: str
    kind: str  # "numeric", "boolean", "categorical", "text"
    n_unique: int
    n_missing: int
    action: str  # "keep" or "drop"
    reason: str = ""


@dataclass(frozen=True)
class DataSpec:
    """What ``describe`` found: the task, the classes, and every column."""

    task: str
    n_rows: int
    classes: np.ndarray | None  # original labels, in the order of the encoded codes
    columns: tuple[ColumnInfo, ...]

    @property
    def kept(self) -> list[str]:
        return [c.name for c in self.columns if c.action == "keep"]

    def columns_of(self, kind: str) -> list[str]:
        return [c.name for c in self.columns if c.action == "keep" and c.kind == kind]


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        frame = X.copy()
        frame.columns = [str(c) for c in frame.columns]
        if frame.columns.duplicated().any():
            dup = frame.columns[frame.columns.duplicated()][0]
            raise ValueError(f"X has the column name {dup!r} more than once")
        return frame
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D (rows x columns); got an array of shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])]).infer_objects()


def _describe_column(name: str, col: pd.Series) -> ColumnInfo:
    n_missing = int(col.isna().sum())
    present = col.dropna()
    n_unique = int(present.nunique())
    if len(present) == 0:
        return ColumnInfo(name, "numeric", 0, n_missing, "drop", "every value is missing")
    if pd.api.types.is_bool_dtype(col):
        kind = "boolean"
    elif pd.api.types.is_numeric_dtype(col):
        kind = "numeric"
    elif isinstance(col.dtype, pd.CategoricalDtype):
        kind = "categorical"
    else:
        kind = "categorical"
        if n_unique >= MIN_ID_UNIQUE and n_unique >= 0.5 * len(present):
            return ColumnInfo(name, "text", n_unique, n_missing, "drop",
                              f"high-cardinality text ({n_unique} distinct values in "
                              f"{len(present)} rows): an identifier or free text")
    if n_unique == 1 and n_missing == 0:
        return ColumnInfo(name, kind, n_unique, n_missing, "drop", "constant")
    return ColumnInfo(name, kind, n_unique, n_missing, "keep")


def _infer_task(y: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "binary" if y.nunique() == 2 else "multiclass"
    values = y.to_numpy(dtype=float)
    n_unique = len(np.unique(values))
    if n_unique == 2:
        return "binary"
    if np.all(values == np.round(values)) and n_unique <= MAX_INTEGER_CLASSES:
        return "multiclass"
    return "regression"


def describe(X: Any, y: Any, *, task: str | None = None):
    """Check ``X`` and ``y`` and describe them.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_columns) or DataFrame
    y : array-like of shape (n_rows,), Series or list; labels may be strings
    task : "binary", "multiclass", "regression", "classification" or None (inferred: a
        numeric target with at most 20 distinct integer values is a classification)

    Returns
    -------
    frame : DataFrame with the kept columns (infinite numbers become missing)
    target : ndarray, class codes 0..n_classes-1 or float regression targets
    spec : DataSpec
    """
    frame = _as_frame(X)
    if np.ndim(y) != 1:
        raise ValueError(f"y must be 1-D (one value per row); got shape {np.shape(y)}")
    y_series = pd.Series(y).reset_index(drop=True).infer_objects()
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"X is empty: {frame.shape[0]} rows and {frame.shape[1]} columns")
    if len(y_series) != frame.shape[0]:
        raise ValueError(f"X has {frame.shape[0]} rows but y has {len(y_series)}")
    missing = y_series.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(y_series) and not pd.api.types.is_bool_dtype(y_series):
        missing = missing | ~np.isfinite(y_series.to_numpy(dtype=float))
    if missing.any():
        rows = np.flatnonzero(missing)
        raise ValueError(f"y has {len(rows)} missing or infinite value(s), first at row {rows[0]}; "
                         "drop those rows or fill them")
    if task == "classification":
        task = "binary" if y_series.nunique() == 2 else "multiclass"
    if task is None:
        task = _infer_task(y_series)
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or 'classification', got {task!r}")

    classes = None
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(y_series) or pd.api.types.is_bool_dtype(y_series):
            raise ValueError(f"task='regression' needs a numeric target; y has dtype {y_series.dtype}")
        target = y_series.to_numpy(dtype=float)
    else:
        try:
            classes, target = np.unique(y_series.to_numpy(), return_inverse=True)
        except TypeError:
            kinds = sorted({type(v).__name__ for v in y_series})
            raise ValueError(f"y mixes label types ({', '.join(kinds)}); give labels of one "
                             "type, e.g. all strings") from None
        if len(classes) < 2:
            raise ValueError(f"y holds one class only ({classes[0]!r}): there is nothing to learn")
        if task == "binary" and len(classes) > 2:
            raise ValueError(f"task='binary' but y holds {len(classes)} classes")

    columns = tuple(_describe_column(name, frame[name]) for name in frame.columns)
    kept = frame[[c.name for c in columns if c.action == "keep"]]
    numeric = [c.name for c in columns if c.action == "keep" and c.kind == "numeric"]
    if numeric:
        values = kept[numeric].astype(float)
        kept = kept.assign(**{name: values[name].where(np.isfinite(values[name])) for name in numeric})
    spec = DataSpec(task=task, n_rows=frame.shape[0], classes=classes, columns=columns)
    return kept, target, spec


def conform(X: Any, spec: DataSpec) -> pd.DataFrame:
    """New rows for prediction, checked against the table ``spec`` was made from.

    A missing column is an error naming it; a column that was numeric at fit time but holds
    text now is an error; extra columns (and columns dropped at fit time) are ignored with a
    warning; unseen categories are left to the learners (they treat them as unknown).
    """
    import warnings

    if not isinstance(X, pd.DataFrame):
        arr = np.asarray(X)
        n_fit = len(spec.columns)
        if arr.ndim != 2 or arr.shape[1] != n_fit:
            raise ValueError(f"X must have shape (n_rows, {n_fit}) like the training data; "
                             f"got {arr.shape}")
    frame = _as_frame(X)
    kept = spec.kept
    missing = [c for c in kept if c not in frame.columns]
    if missing:
        raise ValueError(f"X lacks {len(missing)} column(s) the model was trained with: "
                         f"{', '.join(repr(c) for c in missing[:10])}")
    known = {c.name for c in spec.columns}
    extra = [c for c in frame.columns if c not in known]
    if extra:
        warnings.warn(f"X has {len(extra)} column(s) unseen at fit time, ignored: "
                      f"{', '.join(repr(c) for c in extra[:10])}", UserWarning, stacklevel=3)
    frame = frame[kept]
    numeric = spec.columns_of("numeric")
    for name in numeric:
        col = frame[name]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            converted = pd.to_numeric(col, errors="coerce")
            bad = converted.isna() & col.notna()
            if bad.any():
                raise ValueError(f"column {name!r} was numeric at fit time but holds "
                                 f"{col[bad].iloc[0]!r} (row {int(np.flatnonzero(bad)[0])})")
            frame = frame.assign(**{name: converted})
    if numeric:
        values = frame[numeric].astype(float)
        frame = frame.assign(**{n: values[n].where(np.isfinite(values[n])) for n in numeric})
    return frame
