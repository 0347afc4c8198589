"""Combiner: the contract every way of fusing the library follows, and the adapter that
lets a combiner written for the older weights-only contract keep working unchanged."""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from autofuse.combiners._fusion import Fusion, WeightedFusion
from autofuse.combiners._view import LibraryView


class Combiner(abc.ABC):
    """A way to fuse a model library: ``fuse(view)`` returns a fitted ``Fusion``.

    ``__init__`` only stores options (as a scikit-learn estimator does); ``fuse`` keeps no
    state between calls, because nested cross-validation calls it once per outer fold on
    a view of part of the rows, and once more on the whole view. The fusion it returns is
    judged honestly by the host: its predictions of rows it was not fitted on.
    """

    @abc.abstractmethod
    def fuse(self, view: LibraryView) -> Fusion:
        """Fit on ``view`` (out-of-fold predictions only, unless the view's table or
        models are asked for) and return the fusion."""


class CrossFitted(Combiner):
    """A combiner that fits its own model on the table (a student, a soup) and makes its
    honest out-of-fold predictions itself, fold by fold on the view's folds (the folds of
    every trial), instead of being refitted by the host's nested cross-validation.

    ``cross_fit(view)`` returns the fusion fitted on every row of the view and its
    out-of-fold predictions of the view's rows, ``(n_rows, n_outputs)``: the prediction
    of each row of ``outer_folds(view)``'s fold ``k`` from a fit that did not see those
    rows' labels. The host scores those as the combiner's outer score.
    """

    @abc.abstractmethod
    def cross_fit(self, view: LibraryView) -> tuple[Fusion, np.ndarray]:
        """(the fusion fitted on every row, its out-of-fold predictions)."""

    def fuse(self, view: LibraryView) -> Fusion:
        return self.cross_fit(view)[0]


class WeightsOnly(Combiner):
    """A combiner of the weights-only contract (``fit(predictions, target)`` setting
    ``weights_``, one per model), as a ``Combiner`` making a ``WeightedFusion``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def fuse(self, view: LibraryView) -> Fusion:
        P = view.predictions.astype(np.float64)
        self.inner.fit(P, view.target)
        raw = getattr(self.inner, "weights_", None)
        weights = check_weights(raw, view.n_candidates, view.task)
        return WeightedFusion({t: w for t, w in zip(view.trials, weights) if w != 0})


class WeightsError(ValueError):
    """A weights-only combiner's ``weights_`` break the contract."""


def check_weights(raw: Any, n_models: int, task: str) -> np.ndarray:
    """``weights_`` as the weights-only contract defines them, or a ``WeightsError`` saying
    why not."""
    try:
        weights = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        weights = np.asarray([np.nan])
    if weights.shape != (n_models,) or not np.all(np.isfinite(weights)):
        raise WeightsError(f"weights_ must be {n_models} finite numbers, one per model; "
                         f"got {np.asarray(raw)!r:.200}")
    if not np.any(weights):
        raise WeightsError("every weight is 0")
    if task != "regression" and (np.any(weights < 0)
                                 or not np.isclose(weights.sum(), 1.0, atol=1e-6)):
        raise WeightsError("classification weights must be non-negative and sum to 1 (the "
                         f"blend must be a probability); got sum {weights.sum():.6g}, "
                         f"min {weights.min():.6g}")
    return weights


def as_combiner(obj: Any) -> Combiner:
    """What a ``CombinerSpec.build`` returned, as a ``Combiner``: one of the fusion
    contract as it is, one of the weights-only contract wrapped."""
    if isinstance(obj, Combiner) or callable(getattr(obj, "fuse", None)):
        return obj
    if callable(getattr(obj, "fit", None)):
        return WeightsOnly(obj)
    raise TypeError(f"a combiner must have fuse(view) (the fusion contract) or "
                    f"fit(predictions, target) setting weights_; got {type(obj).__name__}")
