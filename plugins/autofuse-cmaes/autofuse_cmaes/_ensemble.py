"""CMA-ES over blend weights (Purucker & Beel, AutoML 2023), as an autofuse combiner.

The search runs on an unconstrained vector ``x`` (one entry per model); every candidate is
mapped to blend weights by the normalisation before it is scored, and the best weights
seen are kept. The normalisations follow the authors' reference code (the
``_normalize_weights_static`` of their numerical-solver base class, which they publish
with the paper and in their ``phem`` package):

* ``"softmax"``: ``w = exp(x) / sum(exp(x))``, except that an entry that is exactly 0
  gets weight 0 (the reference code sets ``exp(x) == 1`` to 0). That keeps the one-hot
  start vector of the single best model one-hot. (CMA-ES-Softmax in the paper.)
* ``"ges"``: softmax, then made to look like the result of greedy ensemble selection
  with ``n = ensemble_size`` rounds: weights ``<= 0.5 / n`` are set to 0, the rest are
  rounded to counts ``round(w * n)``, and the counts are repaired to sum to ``n``
  (too many: take one from each of the smallest non-zero counts in turn; too few: share
  the missing ones equally among the non-zero members, the remainder to the largest);
  the weights are ``counts / n``. (CMA-ES-ExplicitGES, the method the paper proposes
  against overfitting for ROC AUC.)
* ``"none"``: the raw vector is the weight vector (plain CMA-ES of the paper). Only for
  regression: autofuse needs classification weights on the simplex.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

NORMALIZATIONS = ("ges", "softmax", "none")


def softmax_weights(x: Any) -> np.ndarray:
    """Softmax of ``x`` in which entries exactly 0 get weight 0 (reference code's rule).

    Computed stably (the largest non-zero entry is subtracted first). An all-zero ``x``
    has no weight anywhere and gets the uniform vector.
    """
    x = np.asarray(x, dtype=np.float64)
    live = x != 0
    if not live.any():
        return np.full(x.shape, 1.0 / x.size)
    e = np.zeros_like(x)
    e[live] = np.exp(x[live] - x[live].max())
    return e / e.sum()


def ges_round(weights: Any, ensemble_size: int) -> np.ndarray:
    """Make simplex ``weights`` look like greedy ensemble selection with ``ensemble_size``
    rounds: trim, round to multiples of ``1 / ensemble_size``, repair the sum.

    Ties are broken by model index (stable sorts), so the result is deterministic.
    """
    n = int(ensemble_size)
    w = np.array(weights, dtype=np.float64)
    w[w <= 0.5 / n] = 0.0
    if not w.any():  # everything trimmed: the reference code falls back to uniform
        return np.full(w.shape, 1.0 / w.size)
    counts = np.rint(w * n).astype(np.int64)  # half to even, as Python's round()
    if counts.sum() == 0:  # only possible through float rounding at exactly 0.5
        counts[np.argmax(w)] = n
    excess = int(counts.sum()) - n
    if excess > 0:  # smallest non-zero counts lose one each, in turn
        order = np.argsort(counts, kind="stable")[np.count_nonzero(counts == 0):]
        counts[order[:excess]] -= 1
    missing = n - int(counts.sum())
    if missing > 0:  # shared equally among the non-zero members, remainder to the largest
        order = np.argsort(-counts, kind="stable")[:np.count_nonzero(counts)]
        q, r = divmod(missing, len(order))
        counts[order] += q
        counts[order[:r]] += 1
    return counts / n


def normalize_weights(x: Any, normalization: str = "ges", ensemble_size: int = 50
                      ) -> np.ndarray:
    """Map a raw CMA-ES vector ``x`` to blend weights (see the module docstring)."""
    if normalization == "none":
        return np.asarray(x, dtype=np.float64).copy()
    w = softmax_weights(x)
    if normalization == "softmax":
        return w
    if normalization == "ges":
        return ges_round(w, ensemble_size)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


class CMAESEnsemble(BaseEstimator):
    """Post hoc ensembling by CMA-ES over the blend weights (Purucker & Beel, 2023).

    Parameters
    ----------
    metric : autofuse metric
        What the blend is judged by: ``score(predictions, target)``, ``greater_is_better``
        and ``task`` (an ``autofuse.metrics.Metric``, as a combiner's ``build`` receives).
    n_generations : int, default=100
        At most this many CMA-ES generations (``population_size`` candidates each). The
        paper's budget, ``ensemble_size * n_models`` evaluations in all (the single models
        included), caps it too, so few models get fewer generations.
    normalization : {"ges", "softmax", "none"}, default="ges"
        How a candidate vector becomes blend weights; ``"ges"`` is the paper's proposal
        (CMA-ES-ExplicitGES). ``"none"`` is for regression only.
    ensemble_size : int, default=50
        The greedy-selection size the ``"ges"`` normalisation imitates (weights are
        multiples of ``1 / ensemble_size``), and the paper's evaluations per model.
    sigma0 : float, default=0.2
        Initial CMA-ES step size (the paper's value).
    population_size : int or None
        Candidates per generation; None is CMA-ES's default ``4 + floor(3 ln n_models)``.
    time_limit : float or None
        Optional wall-clock cap in seconds, checked after each generation. Off by default:
        a run cut by time depends on the machine's speed, so it is not reproducible.
    random_state : int, RandomState or None
        Seeds CMA-ES; an int makes ``fit`` deterministic.
    n_threads : int or None
        Accepted for the combiner contract. The evaluations run one after another in this
        process, with BLAS held to one thread (a blend is a memory-bound matrix-vector
        product; more threads only add contention).

    Attributes
    ----------
    weights_ : ndarray (n_models,)
        The blend weights: non-negative and summing to 1 unless ``normalization="none"``.
    score_ : float
        The metric of the blend on the data it was fitted on.
    single_best_ : int
        Index of the best single model (the start of the search).
    single_best_score_ : float
    n_evaluations_ : int
        Candidate vectors scored, the ``n_models`` single models included (a candidate
        whose normalised weights were already scored is not scored again).
    n_generations_ : int
        CMA-ES generations run.
    trajectory_ : ndarray
        The best score so far after the single models and after every generation.
    """

    def __init__(
        self,
        metric: Any,
        n_generations: int = 100,
        normalization: str = "ges",
        ensemble_size: int = 50,
        sigma0: float = 0.2,
        population_size: int | None = None,
        time_limit: float | None = None,
        random_state: Any = None,
        n_threads: int | None = None,
    ) -> None:
        self.metric = metric
        self.n_generations = n_generations
        self.normalization = normalization
        self.ensemble_size = ensemble_size
        self.sigma0 = sigma0
        self.population_size = population_size
        self.time_limit = time_limit
        self.random_state = random_state
        self.n_threads = n_threads

    # ------------------------------------------------------------------ fit
    def fit(self, predictions: Any, y: Any) -> CMAESEnsemble:
        """Search blend weights for out-of-fold ``predictions`` (n_models, n_rows[,
        n_outputs]) of every model against ``y``."""
        from threadpoolctl import threadpool_limits

        P = self._check_predictions(predictions)
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, "
                             f"got {self.normalization!r}")
        task = getattr(self.metric, "task", None)
        if self.normalization == "none" and task != "regression":
            raise ValueError('normalization="none" gives weights off the simplex; autofuse '
                             "accepts that only for regression")
        if int(self.ensemble_size) < 1 or int(self.n_generations) < 0 or self.sigma0 <= 0:
            raise ValueError("ensemble_size must be >= 1, n_generations >= 0, sigma0 > 0")
        self.n_models_, self.n_outputs_ = P.shape[0], P.shape[2]
        with threadpool_limits(limits=1, user_api="blas"):
            self._search(P, np.asarray(y))
        return self

    def _search(self, P: np.ndarray, y: np.ndarray) -> None:
        from cmaes import CMA

        m = P.shape[0]
        flat = P.reshape(m, -1)
        sign = -1.0 if self.metric.greater_is_better else 1.0
        cache: dict[bytes, float] = {}

        def loss(w: np.ndarray) -> float:
            key = w.tobytes()
            if key not in cache:
                used = np.flatnonzero(w)  # sparse weights: read only the members
                blend = w[used] @ flat[used] if 2 * len(used) < m else w @ flat
                blend = blend.reshape(P.shape[1], P.shape[2])
                value = sign * float(self.metric.score(blend, y))
                cache[key] = value if math.isfinite(value) else math.inf
            return cache[key]

        # The single models first (the paper's start): the best is the initial mean, and
        # the best solution so far; only a strictly better blend replaces it.
        singles = [loss(np.eye(1, m, i).ravel()) for i in range(m)]
        self.single_best_ = int(np.argmin(singles))
        self.single_best_score_ = sign * singles[self.single_best_]
        best_w, best_loss = np.eye(1, m, self.single_best_).ravel(), singles[self.single_best_]
        trajectory = [best_loss]

        generations = 0
        if m > 1:
            rng = check_random_state(self.random_state)
            popsize = self.population_size or 4 + int(3 * math.log(m))
            budget = (int(self.ensemble_size) * m - m) // popsize  # the paper's budget
            n_gen = min(int(self.n_generations), max(budget, 0))
            es = CMA(mean=best_w.copy(), sigma=float(self.sigma0), population_size=popsize,
                     seed=int(rng.randint(0, 2**31 - 1)))
            start = time.perf_counter()
            for generations in range(1, n_gen + 1):
                told = []
                for _ in range(popsize):
                    x = es.ask()
                    w = normalize_weights(x, self.normalization, self.ensemble_size)
                    value = loss(w)
                    told.append((x, value if math.isfinite(value) else 1e300))
                    if value < best_loss:
                        best_w, best_loss = w, value
                es.tell(told)
                trajectory.append(best_loss)
                if es.should_stop() or (self.time_limit is not None
                                        and time.perf_counter() - start > self.time_limit):
                    break
        self.weights_ = best_w
        self.score_ = sign * best_loss
        self.n_evaluations_ = len(cache)
        self.n_generations_ = generations
        self.trajectory_ = sign * np.asarray(trajectory)

    # -------------------------------------------------------------- predict
    def predict(self, predictions: Any) -> np.ndarray:
        """The blend ``sum_m weights_[m] * predictions[m]``: (n_rows, n_outputs), or
        (n_rows,) when ``predictions`` is 2-D."""
        check_is_fitted(self, "weights_")
        squeeze = np.ndim(predictions) == 2
        P = self._check_predictions(predictions)
        if P.shape[0] != self.n_models_ or P.shape[2] != self.n_outputs_:
            raise ValueError(f"predictions have {P.shape[0]} models and {P.shape[2]} outputs; "
                             f"fitted on {self.n_models_} models and {self.n_outputs_} outputs")
        used = np.flatnonzero(self.weights_)
        blend = np.tensordot(self.weights_[used], P[used], axes=1)
        return blend[:, 0] if squeeze else blend

    @staticmethod
    def _check_predictions(predictions: Any) -> np.ndarray:
        P = np.asarray(predictions, dtype=np.float64)
        if P.ndim == 2:
            P = P[:, :, None]
        if P.ndim != 3 or 0 in P.shape:
            raise ValueError("predictions must be (n_models, n_rows[, n_outputs]) and "
                             f"non-empty; got shape {np.shape(predictions)}")
        if not np.all(np.isfinite(P)):
            raise ValueError("predictions hold NaN or infinite values")
        return P
