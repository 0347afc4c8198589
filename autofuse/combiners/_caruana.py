"""``caruana``: Caruana-style greedy ensemble selection, on arrays (``CaruanaSelection``,
an estimator) and as a combiner of the fusion contract (``Caruana``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from autofuse._core import select
from autofuse._core._greedy import check_options
from autofuse._core._prepare import check_finite_predictions, check_predictions
from autofuse.combiners._base import Combiner
from autofuse.combiners._fusion import Fusion, WeightedFusion
from autofuse.combiners._view import LibraryView


class CaruanaSelection(BaseEstimator):
    """Greedy forward selection of an ensemble, with replacement (Caruana et al., 2004).

    Each round adds the model whose addition makes the best blend, the blend being the
    plain average of the members chosen so far; a model can be chosen again, which raises
    its weight. The selection is cut to its best-scoring prefix of rounds.

    Parameters
    ----------
    metric : str or callable
        What the blend is scored with. These have a fused, compiled kernel:
        ``"log_loss"``, ``"accuracy"``, ``"balanced_accuracy"``, ``"roc_auc"`` (binary, or
        macro one-vs-rest over the classes present in ``y`` for multiclass), ``"f1"``
        (binary, class 1 positive), ``"rmse"``, ``"mse"``, ``"mae"``, ``"r2"`` (several
        outputs are averaged uniformly, as scikit-learn does). Any other scikit-learn scorer
        name, or a scorer callable ``scorer(estimator, X, y, sample_weight=None)`` such as
        ``make_scorer(...)`` returns, runs the same algorithm through a slower NumPy path.
    ensemble_size : int, default=50
        Number of rounds (members chosen, counting repeats and the initial ones).
    init_size : int, default=0
        Sorted initialisation: start from this many best single models, each once.
    n_bags : int, default=1
        Bagged selection when > 1: each bag runs the selection on a random subset of the
        models, and the weights are averaged over bags.
    bag_fraction : float, default=0.5
        Share of the models in each bag (rounded up); ignored when ``n_bags == 1``.
    random_state : int, RandomState or None
        Seeds the bags.
    n_threads : int or None
        Threads that score candidates in parallel; ``None`` or -1 uses every core available.
        The result does not depend on it.

    Attributes
    ----------
    weights_ : ndarray of shape (n_models,)
        Normalised weights, summing to 1 (the mean over bags when bagged).
    indices_ : ndarray of int
        Selection order of the kept rounds (bag after bag when bagged).
    counts_ : ndarray of int, shape (n_models,)
        Times each model was chosen in the kept rounds (summed over bags).
    trajectory_ : ndarray
        The metric after every round, shape (ensemble_size,), or (n_bags, ensemble_size)
        when bagged.
    n_rounds_ : int or ndarray
        Rounds kept (the best prefix); one per bag when bagged.
    score_ : float
        The metric of the final blend on the data it was fitted on.
    n_models_, n_outputs_ : int
        Shape of the predictions seen in ``fit``.

    Notes
    -----
    Classification predictions are class probabilities, ``(n_models, n_rows, n_classes)``
    with ``y`` holding class codes ``0..n_classes-1``; a binary problem may come as one
    column holding P(class 1). Regression predictions are ``(n_models, n_rows,
    n_outputs)``; 2-D input ``(n_models, n_rows)`` means one output.

    With a scikit-learn scorer the task is inferred: classification when ``y`` holds class
    codes that index the prediction columns and the predictions are probabilities (rows
    summing to 1), regression otherwise.

    Ties: candidate losses within a relative 1e-12 of the round's best count as tied and
    the lowest model index wins, so runs are deterministic. ``log_loss`` clips the
    probability of the true class to ``[eps, 1 - eps]`` with eps the float64 machine
    epsilon (2.2e-16), whatever the input dtype; all arithmetic is in float64.
    """

    def __init__(
        self,
        metric: Any,
        ensemble_size: int = 50,
        init_size: int = 0,
        n_bags: int = 1,
        bag_fraction: float = 0.5,
        random_state: Any = None,
        n_threads: int | None = None,
    ) -> None:
        self.metric = metric
        self.ensemble_size = ensemble_size
        self.init_size = init_size
        self.n_bags = n_bags
        self.bag_fraction = bag_fraction
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, predictions: Any, y: Any, sample_weight: Any = None) -> CaruanaSelection:
        """Select the ensemble from out-of-fold ``predictions`` of every model for ``y``."""
        result = select(predictions, y, sample_weight=sample_weight, **self.get_params())
        P_shape = np.shape(predictions)
        bagged = self.n_bags > 1
        self.weights_ = result.weights
        self.indices_ = result.indices
        self.counts_ = result.counts
        self.trajectory_ = result.trajectory if bagged else result.trajectory[0]
        self.n_rounds_ = result.n_rounds if bagged else int(result.n_rounds[0])
        self.score_ = result.score
        self.n_models_ = P_shape[0]
        self.n_outputs_ = P_shape[2] if len(P_shape) == 3 else 1
        self._squeeze = len(P_shape) == 2
        return self

    def predict(self, predictions: Any) -> np.ndarray:
        """The blend: weighted average of ``predictions`` (same layout as in ``fit``).

        Returns shape (n_rows, n_outputs), or (n_rows,) when ``fit`` was given 2-D input.
        """
        check_is_fitted(self, "weights_")
        P = check_predictions(predictions)
        if P.shape[0] != self.n_models_ or P.shape[2] != self.n_outputs_:
            raise ValueError(
                f"predictions have {P.shape[0]} models and {P.shape[2]} outputs; this "
                f"selection was fitted on {self.n_models_} models and {self.n_outputs_} outputs"
            )
        check_finite_predictions(P, probabilities=False)
        used = np.flatnonzero(self.weights_)
        blend = np.tensordot(self.weights_[used], P[used], axes=1)
        return blend[:, 0] if self._squeeze else blend


class Caruana(Combiner):
    """``caruana``: greedy ensemble selection (``CaruanaSelection``) over the candidates,
    as a combiner of the fusion contract.

    Parameters: ``ensemble_size`` (rounds, default 50), ``init_size`` (sorted
    initialisation), ``n_bags`` and ``bag_fraction`` (bagged selection), as in
    ``CaruanaSelection``; the run's metric, seed and threads come from the view.
    """

    def __init__(self, ensemble_size: int = 50, init_size: int = 0, n_bags: int = 1,
                 bag_fraction: float = 0.5) -> None:
        self.ensemble_size = ensemble_size
        self.init_size = init_size
        self.n_bags = n_bags
        self.bag_fraction = bag_fraction
        check_options(ensemble_size, init_size, n_bags, bag_fraction)  # before long work

    def fuse(self, view: LibraryView) -> Fusion:
        selection = CaruanaSelection(
            view.metric.selection, ensemble_size=self.ensemble_size,
            init_size=min(self.init_size, view.n_candidates), n_bags=self.n_bags,
            bag_fraction=self.bag_fraction, random_state=view.random_state,
            n_threads=view.n_threads).fit(view.predictions, view.target)
        rounds = selection.n_rounds_
        return WeightedFusion({t: w for t, w in zip(view.trials, selection.weights_) if w},
                              {"rounds": int(np.sum(rounds))})
