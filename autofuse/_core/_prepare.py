"""Input validation and the per-fit arrays every kernel reads.

Everything a user can get wrong is checked here, before any selection work starts, with a
message that names the problem: the shape, the row, the model, the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from autofuse._core._metrics import CORE_METRICS, LOG_LOSS, LOG_LOSS_EPS, ROC_AUC, CoreMetric

_TASKS = ("classification", "regression")


@dataclass
class Prepared:
    """Validated inputs and the derived arrays the kernels share (read-only)."""

    metric: int  # kernel id, or -1 for a scikit-learn scorer
    task: str
    n_classes: int
    y_codes: np.ndarray  # (n_rows,) intp class codes; zeros for regression
    y_values: np.ndarray  # (n_rows, n_outputs) float64 targets; (0, 0) for classification
    w: np.ndarray  # (n_rows,) float64 sample weights (ones when none were given)
    sumw: float
    a: np.ndarray  # log_loss: probability of the true class is a + b * blend, b = +-1
    b: np.ndarray
    class_w: np.ndarray  # total weight of each class (classification)
    auc_classes: np.ndarray  # classes scored by multiclass roc_auc (present, not alone)
    sstot: np.ndarray  # r2: weighted total sum of squares per output
    eps: float = LOG_LOSS_EPS
    sample_weight: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class ResolvedMetric:
    """A metric name or callable, resolved to a core kernel or a scikit-learn scorer."""

    name: str
    core: CoreMetric | None
    scorer: Callable[..., float] | None

    def score(self, loss: float) -> float:
        """The metric's value for a loss (scorers are maximised, so loss = -score)."""
        return self.core.score(loss) if self.core is not None else -loss


def resolve_metric(metric: Any) -> ResolvedMetric:
    """Map ``metric`` to a core kernel, a scikit-learn scorer name, or a scorer callable."""
    if isinstance(metric, str):
        if metric in CORE_METRICS:
            return ResolvedMetric(metric, CORE_METRICS[metric], None)
        from sklearn.metrics import get_scorer, get_scorer_names

        if metric in get_scorer_names():
            return ResolvedMetric(metric, None, get_scorer(metric))
        raise ValueError(
            f"unknown metric {metric!r}. Metrics with a fused kernel: "
            f"{', '.join(sorted(CORE_METRICS))}; also accepted: any scikit-learn scorer name "
            "(sklearn.metrics.get_scorer_names()) or a scorer callable "
            "scorer(estimator, X, y, sample_weight=None), e.g. from sklearn.metrics.make_scorer."
        )
    if callable(metric):
        name = getattr(metric, "__name__", None) or type(metric).__name__
        return ResolvedMetric(name, None, metric)
    raise TypeError(f"metric must be a string or a scorer callable, not {type(metric).__name__}")


def check_predictions(predictions: Any) -> np.ndarray:
    """Return predictions as a C-contiguous float32/float64 ``(n_models, n_rows, n_outputs)``
    array; 2-D input ``(n_models, n_rows)`` means one output."""
    P = np.asarray(predictions)
    if P.dtype == object or not (np.issubdtype(P.dtype, np.number) or P.dtype == bool):
        raise ValueError(f"predictions must be numeric, got dtype {P.dtype}")
    if P.ndim not in (2, 3):
        raise ValueError(
            "predictions must have shape (n_models, n_rows, n_outputs) or (n_models, n_rows); "
            f"got an array of shape {P.shape}"
        )
    if P.ndim == 2:
        P = P[:, :, None]
    if 0 in P.shape:
        raise ValueError(
            f"predictions are empty: shape {P.shape} (n_models, n_rows, n_outputs) "
            "needs at least one model, one row and one output"
        )
    if P.dtype not in (np.float32, np.float64):
        P = P.astype(np.float64)
    return np.ascontiguousarray(P)


def first_bad_value(P: np.ndarray, lo: float = -np.inf, hi: float = np.inf) -> int:
    """Flat index of the first NaN, infinity or value outside ``[lo, hi]``; -1 if none."""
    from autofuse._core import backend

    if backend() == "cython":
        from autofuse._core._kernels import first_bad_value as fast

        return int(fast(P, lo, hi))
    flat = P.reshape(-1)
    bad = ~np.isfinite(flat) | (flat < lo) | (flat > hi)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else -1


def check_finite_predictions(P: np.ndarray, probabilities: bool) -> None:
    lo, hi = (0.0, 1.0) if probabilities else (-np.inf, np.inf)
    i = first_bad_value(P, lo, hi)
    if i < 0:
        return
    m, r, o = np.unravel_index(i, P.shape)
    v = P[m, r, o]
    where = f"model {m}, row {r}, output {o}"
    if not np.isfinite(v):
        raise ValueError(f"predictions contain {v} at {where}; NaN and infinity are not allowed")
    raise ValueError(
        f"classification predictions must be probabilities in [0, 1]; found {v} at {where}"
    )


def infer_task(P: np.ndarray, y: np.ndarray) -> str:
    """Guess the task for a scorer metric: classification when y holds class codes that
    index the prediction columns and the predictions look like probabilities."""
    if y.ndim != 1 or not np.all(np.isfinite(y)) or not np.all(np.equal(np.mod(y, 1), 0)):
        return "regression"
    n_classes = max(P.shape[2], 2)
    if y.min() < 0 or y.max() >= n_classes or P.min() < 0 or P.max() > 1:
        return "regression"
    if P.shape[2] > 1 and not np.allclose(P.sum(axis=2), 1.0, atol=1e-6):
        return "regression"
    return "classification"


def _check_weights(sample_weight: Any, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},) like the rows; got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinity")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero")
    return np.ascontiguousarray(w)


def _check_targets(y_in: Any, P: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    n, C = P.shape[1], P.shape[2]
    y = np.asarray(y_in)
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise ValueError(
            f"y must be numeric (class codes 0..n_classes-1, or regression targets); got {y.dtype}"
        )
    y = y.astype(float)
    if y.ndim == 2 and y.shape[1] == 1 and C == 1:
        y = y[:, 0]
    if y.shape[0:1] != (n,):
        raise ValueError(f"y has {y.shape[0] if y.ndim else 0} rows but predictions have {n}")
    if not np.all(np.isfinite(y)):
        row = int(np.flatnonzero(~np.isfinite(y).reshape(n, -1).all(axis=1))[0])
        raise ValueError(f"y contains NaN or infinity (row {row})")
    if task == "regression":
        if y.ndim == 1:
            y = y[:, None]
        if y.shape != (n, C):
            raise ValueError(
                f"regression targets must have shape ({n},) or ({n}, {C}) to match "
                f"{C} prediction output(s); got {y.shape}"
            )
        return np.zeros(n, dtype=np.intp), np.ascontiguousarray(y)
    if y.ndim != 1:
        raise ValueError(f"classification targets must be 1-D class codes; got shape {y.shape}")
    if not np.all(y == np.round(y)):
        raise ValueError("classification targets must be integer class codes 0..n_classes-1")
    n_classes = max(C, 2)
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        cols = "one column holding P(class 1), so classes 0 and 1" if C == 1 else (
            f"{C} columns, so classes 0..{C - 1}")
        raise ValueError(f"y holds class {y[row]:g} at row {row}, but predictions have {cols}")
    return y.astype(np.intp), np.zeros((0, 0))


def prepare(
    P: np.ndarray,
    y: Any,
    sample_weight: Any,
    metric: ResolvedMetric,
    task: str | None = None,
) -> Prepared:
    """Validate ``y``, ``sample_weight`` and the predictions' values for ``metric``."""
    n, C = P.shape[1], P.shape[2]
    if task is not None and task not in _TASKS:
        raise ValueError(f"task must be one of {_TASKS}, got {task!r}")
    if metric.core is not None:
        if task is not None and task != metric.core.task:
            raise ValueError(f"metric {metric.name!r} is for {metric.core.task}, not {task}")
        task = metric.core.task
    elif task is None:
        y_arr = np.asarray(y)
        task = infer_task(P, y_arr.astype(float)) if np.issubdtype(
            y_arr.dtype, np.number) else "regression"
    w = _check_weights(sample_weight, n)
    y_codes, y_values = _check_targets(y, P, task)
    check_finite_predictions(P, probabilities=metric.core is not None and task == "classification")
    n_classes = max(C, 2) if task == "classification" else 0
    kernel = metric.core.kernel if metric.core is not None else -1
    if metric.core is not None and metric.core.binary_only and C > 2:
        raise ValueError(f"{metric.name} is for binary problems; predictions have {C} classes")
    a, b = np.zeros(n), np.ones(n)
    if kernel == LOG_LOSS and C == 1:
        neg = y_codes == 0
        a[neg], b[neg] = 1.0, -1.0
    class_w = np.bincount(y_codes, weights=w, minlength=n_classes) if n_classes else np.zeros(0)
    auc_classes = np.zeros(0, dtype=np.intp)
    if kernel == ROC_AUC:
        present = np.flatnonzero(class_w > 0)
        if present.size < 2:
            raise ValueError(
                "roc_auc needs at least two classes with positive weight in y; "
                f"found only {present.tolist()}"
            )
        auc_classes = present.astype(np.intp)
    sstot = np.zeros(C)
    if task == "regression":
        mean = (w[:, None] * y_values).sum(axis=0) / w.sum()
        sstot = (w[:, None] * (y_values - mean) ** 2).sum(axis=0)
    return Prepared(
        metric=kernel,
        task=task,
        n_classes=n_classes,
        y_codes=np.ascontiguousarray(y_codes),
        y_values=y_values,
        w=w,
        sumw=float(w.sum()),
        a=a,
        b=b,
        class_w=np.ascontiguousarray(class_w, dtype=float),
        auc_classes=auc_classes,
        sstot=sstot,
        sample_weight=sample_weight,
    )
