"""CombinerSpec: how a way of combining the model library reaches a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from autofuse.metrics import Metric


@dataclass(frozen=True)
class CombinerSpec:
    """A combiner a plugin (or autofuse itself) registers.

    Parameters
    ----------
    name : unique name; ``autofuse.fit(..., combiner=name)`` selects it.
    build : ``build(metric, random_state, n_threads) -> combiner``: a new, unfitted
        combiner for a run judged by ``metric`` (an ``autofuse.metrics.Metric``: ``name``,
        ``greater_is_better``, ``task``, ``score(predictions, target)``, and ``selection``,
        what ``CaruanaSelection(metric=...)`` accepts). ``random_state`` is the run's seed
        (an int or None); ``n_threads`` the cores it may use.
    description : one line for ``autofuse plugins`` and the docs.

    The combiner's contract (``autofuse.testing.check_combiner`` checks it):
    ``combiner.fit(predictions, target)`` with ``predictions`` of shape
    ``(n_models, n_rows, n_outputs)`` (out-of-fold class probabilities, or values) and
    ``target`` the class codes ``0..n_classes-1`` (or values); it returns the combiner and
    sets ``weights_``, shape ``(n_models,)``: the blend is ``sum_m weights_[m] * P[m]``.
    For classification the weights must be non-negative and sum to 1, so the blend is a
    probability. ``score_``, the blend's metric on the data it was fitted on, is optional.
    A model whose weight is 0 is left out of the fused model.
    """

    name: str
    build: Callable[[Metric, Any, Any], Any]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a CombinerSpec needs a non-empty string name")
        if not callable(self.build):
            raise ValueError(f"combiner {self.name!r}: build must be a callable "
                             "build(metric, random_state, n_threads) -> combiner")
