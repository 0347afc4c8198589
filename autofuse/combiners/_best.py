"""``best``: the single best model by out-of-fold score, the baseline every other
combiner is judged against."""

from __future__ import annotations

from autofuse.combiners._base import Combiner
from autofuse.combiners._fusion import Fusion, WeightedFusion
from autofuse.combiners._view import LibraryView


class BestSingle(Combiner):
    """The candidate with the best score on the view's rows (ties: the earlier one)."""

    def fuse(self, view: LibraryView) -> Fusion:
        best = int(view.order()[0])
        return WeightedFusion({view.trials[best]: 1.0})
