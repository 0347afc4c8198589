"""``average``: the uniform average of the k best models, k chosen on out-of-fold score
(soft voting for class probabilities)."""

from __future__ import annotations

import numpy as np

from autofuse.combiners._base import Combiner
from autofuse.combiners._fusion import Fusion, WeightedFusion
from autofuse.combiners._view import LibraryView


class TopKAverage(Combiner):
    """The plain average of the ``k`` best candidates by score on the view's rows.

    Parameters
    ----------
    k : int or None, default=None
        How many to average; None chooses k in ``1..max_k`` by the average's score on the
        view's rows (out-of-fold predictions, so every base model is honest; the choice of
        k itself is judged by the nested outer score).
    max_k : int, default=25
        Largest k tried when ``k`` is None.
    """

    def __init__(self, k: int | None = None, max_k: int = 25) -> None:
        for name, value in (("k", k), ("max_k", max_k)):
            if value is not None and (isinstance(value, bool) or not isinstance(
                    value, (int, np.integer)) or value < 1):
                raise ValueError(f"average: {name} must be a positive integer, got {value!r}")
        self.k = k
        self.max_k = max_k

    def fuse(self, view: LibraryView) -> Fusion:
        order = view.order()
        if self.k is not None:
            chosen = min(int(self.k), view.n_candidates)
            ks = {"k": chosen}
        else:
            total = np.zeros(view.predictions.shape[1:], dtype=np.float64)
            best_k, best_score = 1, np.nan
            for i, m in enumerate(order[:min(self.max_k, view.n_candidates)]):
                total += view.predictions[m]
                score = view.metric.score(total / (i + 1), view.target)
                if np.isnan(best_score) or view.metric.better(score, best_score):
                    best_k, best_score = i + 1, score
            chosen = best_k
            ks = {"k": chosen, "k_chosen_from": f"1..{min(self.max_k, view.n_candidates)}"}
        return WeightedFusion({view.trials[m]: 1.0 / chosen for m in order[:chosen]}, ks)
