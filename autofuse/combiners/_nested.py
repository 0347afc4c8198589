"""Honest scores for a combiner: nested cross-validation over the out-of-fold predictions.

A combiner scored on the rows it was fitted on flatters itself (stacking most of all). The
outer score fits the combiner on the view of k-1 folds and predicts the held-out fold, fold
after fold; the held-out predictions together are scored once. The in-sample score (the
fusion fitted on every row, scored on those rows) is reported beside it, labelled so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from autofuse.combiners._base import Combiner, CrossFitted
from autofuse.combiners._fusion import Fusion
from autofuse.combiners._view import LibraryView

#: Outer folds made when the view has fewer than two folds (a holdout split).
OUTER_FOLDS = 5
#: Probabilities this far from a distribution are a combiner's bug, not rounding.
PROBABILITY_TOLERANCE = 1e-6


@dataclass
class Assessment:
    """A combiner tried on a view: its fusion (fitted on every row) and both scores."""

    name: str
    fusion: Fusion | None = None
    in_sample: float = float("nan")  # the fusion's score on the rows it was fitted on
    outer: float = float("nan")  # nested cross-validation: rows it was not fitted on
    outer_by_fold: np.ndarray | None = field(default=None, repr=False)  # each held-out fold
    seconds: float = 0.0  # fitting it and its nested fits
    error: str = ""  # why it failed, when it did
    exception: BaseException | None = field(default=None, repr=False)
    reason: str = ""  # why it was chosen or not (auto)
    # The outer (held-out) predictions of the view's rows, and the fusions of the outer
    # folds that made them (fold k's fitted without fold k's rows; None for a
    # cross-fitted combiner): what a student needs of its teacher.
    held_out: np.ndarray | None = field(default=None, repr=False)
    fold_fusions: list[Fusion] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.fusion is not None and not self.error


def outer_folds(view: LibraryView) -> list[tuple[np.ndarray, np.ndarray]]:
    """The view's folds, or (a holdout view) ``OUTER_FOLDS`` seeded folds of its rows."""
    if len(view.folds) >= 2:
        return view.folds
    from sklearn.model_selection import KFold, StratifiedKFold

    seed = view.random_state or 0
    splitter = (KFold(OUTER_FOLDS, shuffle=True, random_state=seed)
                if view.task == "regression" else
                StratifiedKFold(OUTER_FOLDS, shuffle=True, random_state=seed))
    return [(np.asarray(a), np.asarray(b))
            for a, b in splitter.split(np.zeros((view.n_rows, 1)), view.target)]


def predict_view(fusion: Fusion, view: LibraryView, who: str = "the combiner") -> np.ndarray:
    """The fusion's prediction of the view's rows from their out-of-fold predictions,
    checked: the right shape, finite, and a probability for classification."""
    missing = [t for t in fusion.uses if t not in view.trials]
    if missing:
        raise ValueError(f"{who}'s fusion uses trials {missing[:5]} that are not candidates")
    X = view.frame() if fusion.needs_table else None
    out = np.asarray(fusion.predict(view.outputs(fusion.uses), X), dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    if out.shape != (view.n_rows, view.n_outputs):
        raise ValueError(f"{who}'s fusion predicted shape {out.shape}; expected "
                         f"({view.n_rows}, {view.n_outputs})")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{who}'s fusion predicted NaN or infinite values")
    if view.task != "regression":
        tol = PROBABILITY_TOLERANCE
        if out.min() < -tol or out.max() > 1 + tol or not np.allclose(out.sum(1), 1, atol=1e-4):
            raise ValueError(f"{who}'s fusion must predict probabilities in [0, 1] whose rows "
                             "sum to 1")
    return out


def outer_predictions(combiner: Combiner, view: LibraryView, who: str = "the combiner",
                      folds: list[tuple[np.ndarray, np.ndarray]] | None = None,
                      fusions: list[Fusion] | None = None) -> np.ndarray:
    """Nested cross-validation: each outer fold's rows (``folds``, default
    ``outer_folds(view)``) predicted by the combiner fitted on the other folds' rows (those
    fusions appended to ``fusions`` when given)."""
    out = np.full((view.n_rows, view.n_outputs), np.nan)
    for train, valid in outer_folds(view) if folds is None else folds:
        inner = combiner.fuse(view.subset(train))
        out[valid] = predict_view(inner, view.subset(valid), who)
        if fusions is not None:
            fusions.append(inner)
    return out


def check_held_out(out: np.ndarray, view: LibraryView, who: str) -> np.ndarray:
    """A cross-fitted combiner's out-of-fold predictions, checked as ``predict_view``
    checks a fusion's."""
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    if out.shape != (view.n_rows, view.n_outputs) or not np.all(np.isfinite(out)):
        raise ValueError(f"{who}'s out-of-fold predictions must be finite, of shape "
                         f"({view.n_rows}, {view.n_outputs}); got {out.shape}")
    return out


def assess(name: str, combiner: Combiner, view: LibraryView, *, nested: bool = True
           ) -> Assessment:
    """Fit ``combiner`` on ``view`` and score it in sample and (``nested``) out of sample.
    An exception of the combiner is caught and recorded: a combiner never takes a run
    down."""
    result = Assessment(name)
    start = time.perf_counter()
    who = f"combiner {name!r}"
    try:
        folds = outer_folds(view)
        if isinstance(combiner, CrossFitted):
            fusion, held_out = combiner.cross_fit(view)
            result.held_out = check_held_out(held_out, view, who)
        elif nested:
            result.fold_fusions = []
            result.held_out = outer_predictions(combiner, view, who, folds,
                                                result.fold_fusions)
            fusion = combiner.fuse(view)
        else:
            fusion = combiner.fuse(view)
        held_out = result.held_out
        if held_out is not None:
            result.outer = view.metric.score(held_out, view.target)
            result.outer_by_fold = np.array([
                view.metric.score(held_out[valid], view.target[valid]) for _, valid in folds])
        result.fusion = fusion
        result.in_sample = view.metric.score(predict_view(result.fusion, view, who),
                                             view.target)
    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
        result.fusion = None
        result.error = f"{type(exc).__name__}: {exc}"
        result.exception = exc
    result.seconds = time.perf_counter() - start
    return result


def clearly_better(view: LibraryView, a: Assessment, b: Assessment) -> bool:
    """Whether ``a``'s outer score beats ``b``'s by more than one standard error of their
    paired differences over the outer folds (the noise of comparing them on these rows)."""
    if not better(view, a.outer, b.outer) or a.outer_by_fold is None \
            or b.outer_by_fold is None or len(a.outer_by_fold) < 2:
        return False
    sign = 1.0 if view.metric.greater_is_better else -1.0
    diffs = sign * (a.outer_by_fold - b.outer_by_fold)
    if not np.all(np.isfinite(diffs)):
        return False
    se = diffs.std(ddof=1) / np.sqrt(len(diffs))
    return bool(diffs.mean() > se)


def better(view: LibraryView, a: float, b: float) -> bool:
    """Whether score ``a`` beats ``b`` in the metric's direction (NaN never does)."""
    if np.isnan(a):
        return False
    return bool(np.isnan(b) or view.metric.better(a, b))
