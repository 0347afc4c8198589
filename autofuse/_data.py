"""Validate a table and its target, infer the task, and describe every column.

``describe(X, y)`` is the first step of a fit: it raises a ``ValueError`` that names the
problem before any learner runs (wrong lengths, empty data, a target with NaN or infinity,
one class only, labels mixing text and numbers), and returns the table as a DataFrame, the
encoded target and a ``DataSpec`` that says what every column is and what will be done
with it. High-cardinality text (ids, names, free text) is dropped, and the spec says so.

Tables come as they are read: numbers stored as text (a CSV column with ``?`` for missing
values, a frame made with ``astype(object)``) are read as numbers, with the markers in
``MISSING_MARKERS`` as missing values; dates (a datetime column, or text in ISO 8601 form
such as ``2023-01-05`` or ``2023-01-05 13:45``) become numeric features (``DATE_PARTS``
and the timestamp). ``conform`` reads new rows the same way at prediction time.
"""

from __future__ import annotations

import re
import warnings
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
#: Cells read as missing in a column of numbers or dates stored as text, compared after
#: stripping whitespace and ignoring case. (pandas' CSV reader reads most of these as
#: missing already; not ``?``, ``-``, ``--`` or ``.``.)
MISSING_MARKERS = frozenset({"", "?", "na", "n/a", "#n/a", "nan", "null", "none", "-", "--", "."})
#: A text column is first tried on this many of its present values, so a column of text is
#: passed over quickly: as numbers, and as dates only when they all (markers aside) look
#: like ISO 8601 dates (``2023-01-05``, ``2023-01-05 13:45``, ``2023-01-05T13:45:10Z``).
SAMPLE_ROWS = 200
_ISO_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
                       r"\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?", re.IGNORECASE)
#: The calendar features a date column becomes, each kept when it varies in the training
#: rows, as ``<column>.<part>``; ``<column>.timestamp`` (seconds since 1970-01-01) always.
#: Times with a time zone are taken in UTC; times without one as they are.
DATE_PARTS = ("year", "month", "day", "day_of_week", "hour")
#: A scipy sparse X is made dense when that takes at most this many bytes (float64).
MAX_DENSE_BYTES = 2**30


@dataclass(frozen=True)
class ColumnInfo:
    """One input column: its kind, and what the learners will get of it."""

    name: str
    kind: str  # "numeric", "boolean", "categorical", "datetime", "text"
    n_unique: int
    n_missing: int
    action: str  # "keep" or "drop"
    reason: str = ""  # why it is dropped, or how a kept column was read
    derived: tuple[str, ...] = ()  # a datetime column's numeric features

    @property
    def features(self) -> tuple[str, ...]:
        """The columns the learners get of it: none when dropped, its derived features for
        a datetime column, else itself."""
        if self.action != "keep":
            return ()
        return self.derived or (self.name,)


@dataclass(frozen=True)
class DataSpec:
    """What ``describe`` found: the task, the classes, and every column."""

    task: str
    n_rows: int
    classes: np.ndarray | None  # original labels, in the order of the encoded codes
    columns: tuple[ColumnInfo, ...]

    @property
    def inputs(self) -> list[str]:
        """The input columns the model reads: new rows must hold them."""
        return [c.name for c in self.columns if c.action == "keep"]

    @property
    def kept(self) -> list[str]:
        """The columns of the table the learners get (``describe``'s frame): every kept
        input column, a datetime column replaced by its derived features."""
        return [f for c in self.columns for f in c.features]

    def columns_of(self, kind: str) -> list[str]:
        """The learners' columns of one kind: "numeric" (a datetime column's derived
        features among them), "boolean" or "categorical"."""
        return [f for c in self.columns for f in c.features
                if (kind == "numeric" if c.derived else c.kind == kind)]


def _dense(X: Any) -> Any:
    """A scipy sparse matrix as a dense array, when that takes at most ``MAX_DENSE_BYTES``;
    anything else as it is."""
    import scipy.sparse

    if not scipy.sparse.issparse(X):
        return X
    rows, cols = X.shape
    size = rows * cols * 8
    if size > MAX_DENSE_BYTES:
        raise ValueError(f"X is a scipy sparse matrix of shape {X.shape}, which would take "
                         f"{size / 2**30:.1f} GB dense (at most {MAX_DENSE_BYTES / 2**30:g} GB "
                         "is converted): autofuse's learners take dense tables; select "
                         "columns or reduce it (e.g. TruncatedSVD) first")
    return X.toarray()


def _as_frame(X: Any) -> pd.DataFrame:
    X = _dense(X)
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


def _text_cells(present: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Present cells as stripped strings, and which of them are missing-value markers."""
    if not isinstance(present.dtype, pd.StringDtype):
        present = present.astype(object).astype(str)
    text = present.str.strip()
    return text, text.str.lower().isin(MISSING_MARKERS)


def _all_bools(present: pd.Series) -> bool:
    """Whether an object column's present values are all booleans."""
    return present.dtype == object and not present.empty and bool(present.map(
        lambda v: isinstance(v, (bool, np.bool_))).all())


def _numbers(present: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    if present.dtype == object and present.map(
            lambda v: isinstance(v, (bool, np.bool_))).any():
        return None
    text, marker = _text_cells(present)
    if marker.all():
        return None
    values = pd.to_numeric(present.astype(object).where(~marker), errors="coerce")
    if (values.isna() & ~marker).any():
        return None
    return values.astype(float), text[marker]


def _read_numbers(col: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """A text or object column as floats, when every present value is a number (or a
    string of one) or a missing-value marker, and at least one is a number; with the
    markers found. None otherwise (booleans are not numbers here)."""
    present = col.dropna()
    if present.empty or _numbers(present.iloc[:SAMPLE_ROWS]) is None:
        return None
    found = _numbers(present)
    return None if found is None else (found[0].reindex(col.index), found[1])


def _read_dates(col: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """A text or object column as datetimes (UTC, without a time zone), when its first
    ``SAMPLE_ROWS`` present values look like ISO 8601 dates (markers aside), and every
    present value parses as one or is a missing-value marker; with the markers found.
    None otherwise."""
    present = col.dropna()
    text, marker = _text_cells(present.iloc[:SAMPLE_ROWS])
    sample = text[~marker]
    if sample.empty or not all(_ISO_DATE.fullmatch(v) for v in sample):
        return None
    text, marker = _text_cells(present)
    dates = _parse_dates(text.where(~marker))
    if (dates.isna() & ~marker).any():
        return None
    return dates.reindex(col.index), text[marker]


def _parse_dates(text: pd.Series) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dates = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    return dates.dt.tz_localize(None)


def _as_naive(col: pd.Series) -> pd.Series:
    """A datetime column without its time zone (converted to UTC first)."""
    if getattr(col.dtype, "tz", None) is not None:
        return col.dt.tz_convert("UTC").dt.tz_localize(None)
    return col


def _markers_note(markers: pd.Series) -> str:
    if markers.empty:
        return ""
    counts = markers.value_counts()
    shown = ", ".join(f"{n} {v!r}" for v, n in counts.iloc[:5].items())
    more = f" and {len(counts) - 5} other markers" if len(counts) > 5 else ""
    return f"; {shown}{more} read as missing"


def _date_features(name: str, dates: pd.Series) -> tuple[str, ...]:
    """The derived features of a date column: the ``DATE_PARTS`` that vary, and the
    timestamp."""
    parts = [p for p in DATE_PARTS if getattr(dates.dt, p).nunique() > 1]
    return tuple(f"{name}.{p}" for p in parts + ["timestamp"])


def _describe_column(name: str, col: pd.Series) -> ColumnInfo:
    kind, note, derived = None, "", ()
    if pd.api.types.is_datetime64_any_dtype(col):
        kind, col = "datetime", _as_naive(col)
    elif _all_bools(col.dropna()):
        kind = "boolean"
    elif not (pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col)
              or isinstance(col.dtype, pd.CategoricalDtype)):
        numbers = _read_numbers(col)
        if numbers is not None:
            col, markers = numbers
            kind, note = "numeric", "numbers stored as text, read as numbers" + _markers_note(
                markers)
        else:
            dates = _read_dates(col)
            if dates is not None:
                col, markers = dates
                kind, note = "datetime", "dates stored as text" + _markers_note(markers)
    n_missing = int(col.isna().sum())
    present = col.dropna()
    n_unique = int(present.nunique())
    if len(present) == 0:
        return ColumnInfo(name, kind or "numeric", 0, n_missing, "drop", "every value is missing")
    if kind is None and pd.api.types.is_bool_dtype(col):
        kind = "boolean"
    elif kind is None and pd.api.types.is_numeric_dtype(col):
        kind = "numeric"
    elif kind is None:
        kind = "categorical"
        if not isinstance(col.dtype, pd.CategoricalDtype) and n_unique >= MIN_ID_UNIQUE \
                and n_unique >= 0.5 * len(present):
            return ColumnInfo(name, "text", n_unique, n_missing, "drop",
                              f"high-cardinality text ({n_unique} distinct values in "
                              f"{len(present)} rows): an identifier or free text")
    if n_unique == 1 and n_missing == 0:
        return ColumnInfo(name, kind, n_unique, n_missing, "drop", "constant")
    if kind == "datetime":
        derived = _date_features(name, col)
        made = "made " + ", ".join(derived)
        note = f"{note}; {made}" if note else made
    return ColumnInfo(name, kind, n_unique, n_missing, "keep", note, derived)


def _first_bad(name: str, col: pd.Series, bad: pd.Series, was: str) -> ValueError:
    row = int(np.flatnonzero(bad.reindex(col.index, fill_value=False).to_numpy())[0])
    value = col.iloc[row]
    value = value.item() if isinstance(value, np.generic) else value
    return ValueError(f"column {name!r} {was} at fit time but holds {value!r} (row {row})")


def _to_numbers(name: str, col: pd.Series) -> pd.Series:
    """A numeric column's values as floats: markers and infinities missing; a value that is
    not a number is an error naming it. ``col`` has a RangeIndex."""
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        values = col.astype(float)
    else:
        present = col.dropna()
        _, marker = _text_cells(present)
        parsed = pd.to_numeric(present.astype(object).where(~marker), errors="coerce")
        bad = parsed.isna() & ~marker
        if bad.any():
            raise _first_bad(name, col, bad, "was numeric")
        values = parsed.astype(float).reindex(col.index)
    return values.where(np.isfinite(values))


def _to_booleans(name: str, col: pd.Series) -> pd.Series:
    """A boolean column as it is when its dtype is boolean, else as floats (1.0, 0.0 and
    missing); a value that is not a boolean or 0/1 is an error naming it."""
    if pd.api.types.is_bool_dtype(col):
        return col
    values = pd.to_numeric(col.astype(object), errors="coerce")
    bad = (values.isna() & col.notna()) | (values.notna() & ~values.isin([0, 1]))
    if bad.any():
        raise _first_bad(name, col, bad, "was boolean")
    return values.astype(float)


def _to_dates(name: str, col: pd.Series) -> pd.Series:
    """A datetime column's values as datetimes (UTC, without a time zone): markers
    missing; a value that is not a date is an error naming it. ``col`` has a RangeIndex."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return _as_naive(col)
    present = col.dropna()
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        if len(present):  # numbers would parse as nanoseconds since 1970
            raise _first_bad(name, col, col.notna(), "held dates")
        return pd.Series(pd.NaT, index=col.index, dtype="datetime64[us]")
    text, marker = _text_cells(present)
    dates = _parse_dates(text.where(~marker))
    bad = dates.isna() & ~marker
    if bad.any():
        raise _first_bad(name, col, bad, "held dates")
    return dates.reindex(col.index)


def _features(frame: pd.DataFrame, spec_columns: tuple[ColumnInfo, ...]) -> pd.DataFrame:
    """The table the learners get: the kept columns, numbers as floats (infinity as
    missing), a datetime column as its derived features."""
    out = {}
    for c in spec_columns:
        if c.action != "keep":
            continue
        col = frame[c.name].reset_index(drop=True)
        if c.kind == "numeric":
            out[c.name] = _to_numbers(c.name, col)
        elif c.kind == "boolean":
            out[c.name] = _to_booleans(c.name, col)
        elif c.kind == "datetime":
            dates = _to_dates(c.name, col)
            for feature in c.derived:
                part = feature[len(c.name) + 1:]
                if part == "timestamp":
                    out[feature] = (dates - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
                else:
                    out[feature] = getattr(dates.dt, part).astype(float)
        else:
            out[c.name] = col
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame))).set_axis(frame.index)


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


def _suits(y: pd.Series, family: str) -> bool:
    """Whether ``y`` can be the target of a ``family`` ("classification", "regression")
    task: labels, or integers, for classification; numbers for regression."""
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if family == "regression":
        return numeric
    if not numeric:
        return True
    values = y.to_numpy(dtype=float)
    return bool(np.all(values == np.round(values)))


def describe(X: Any, y: Any, *, task: str | None = None, metric_task: str | None = None):
    """Check ``X`` and ``y`` and describe them.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_columns), DataFrame, or a scipy sparse matrix (made
        dense when that takes at most ``MAX_DENSE_BYTES``)
    y : array-like of shape (n_rows,), Series or list; labels may be strings
    task : "binary", "multiclass", "regression", "classification" or None (inferred: a
        numeric target with at most 20 distinct integer values is a classification)
    metric_task : the task family the run's metric implies ("classification",
        "regression") or None; used when ``task`` is None and ``y`` suits it (integers or
        labels for classification, numbers for regression)

    Returns
    -------
    frame : DataFrame of the columns the learners get (``spec.kept``): the kept columns,
        numbers as floats with infinity as missing, datetime columns as their features
    target : ndarray, class codes 0..n_classes-1 or float regression targets
    spec : DataSpec

    A table none of whose columns is usable (every one dropped) is an error naming them.
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
    if task is None and metric_task is not None and _suits(y_series, metric_task):
        task = metric_task
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

    if frame.shape[0] < 2:
        raise ValueError("X has one row (n_samples=1): too few to learn from")
    columns = tuple(_describe_column(name, frame[name].reset_index(drop=True))
                    for name in frame.columns)
    if not any(c.action == "keep" for c in columns):
        shown = "; ".join(f"{c.name!r} ({c.reason})" for c in columns[:10])
        more = f"; and {len(columns) - 10} more" if len(columns) > 10 else ""
        raise ValueError(f"X has no usable column (every column was dropped): {shown}{more}")
    for c in columns:
        clash = [f for f in c.derived if f in frame.columns]
        if clash:
            raise ValueError(f"the datetime column {c.name!r} becomes the feature "
                             f"{clash[0]!r}, but X already has a column of that name; "
                             "rename one of them")
    spec = DataSpec(task=task, n_rows=frame.shape[0], classes=classes, columns=columns)
    return _features(frame, columns), target, spec


def conform(X: Any, spec: DataSpec) -> pd.DataFrame:
    """New rows for prediction, checked against the table ``spec`` was made from, as the
    learners get them (``spec.kept``).

    A missing column is an error naming it; a value of a numeric or datetime column that is
    not a number or a date is an error naming it (missing-value markers such as ``?`` are
    missing, as at fit time); extra columns (and columns dropped at fit time) are ignored
    with a warning; unseen categories are left to the learners (they treat them as
    unknown).
    """
    X = _dense(X)
    if not isinstance(X, pd.DataFrame):
        arr = np.asarray(X)
        n_fit = len(spec.columns)
        if arr.ndim != 2 or arr.shape[1] != n_fit:
            raise ValueError(f"X must have shape (n_rows, {n_fit}) like the training data; "
                             f"got {arr.shape}")
    frame = _as_frame(X)
    missing = [c for c in spec.inputs if c not in frame.columns]
    if missing:
        raise ValueError(f"X lacks {len(missing)} column(s) the model was trained with: "
                         f"{', '.join(repr(c) for c in missing[:10])}")
    known = {c.name for c in spec.columns}
    extra = [c for c in frame.columns if c not in known]
    if extra:
        warnings.warn(f"X has {len(extra)} column(s) unseen at fit time, ignored: "
                      f"{', '.join(repr(c) for c in extra[:10])}", UserWarning, stacklevel=3)
    return _features(frame, spec.columns)
