"""CombinerSpec: how a way of combining the model library reaches a run."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from autofuse.combiners._base import Combiner
    from autofuse.metrics import Metric


@dataclass(frozen=True)
class CombinerSpec:
    """A combiner a plugin (or autofuse itself) registers.

    Parameters
    ----------
    name : unique name; ``autofuse.fit(..., combiner=name)`` selects it.
    build : ``build(metric, random_state, n_threads, **options) -> combiner``: a new,
        unfitted combiner for a run judged by ``metric`` (an ``autofuse.metrics.Metric``:
        ``name``, ``greater_is_better``, ``task``, ``score(predictions, target)``, and
        ``selection``, what ``CaruanaSelection(metric=...)`` accepts). ``random_state``
        is the run's seed (an int or None); ``n_threads`` the cores it may use;
        ``options`` are what the user passed as ``combiner_options`` (a build that
        takes none is given none, and options for it are refused by name). ``build``
        checks its options and raises ``ValueError`` for a bad one: it is called before
        the search starts.
    description : one line for ``autofuse plugins`` and the docs.

    The combiner it returns follows one of two contracts (``autofuse.testing.check_combiner``
    checks both):

    * **the fusion contract**: an ``autofuse.combiners.Combiner`` whose ``fuse(view)``
      takes an ``autofuse.combiners.LibraryView`` and returns an
      ``autofuse.combiners.Fusion`` (a ``WeightedFusion``, or one of its own);
    * **weights only** (the original contract): ``fit(predictions, target)`` with
      ``predictions`` of shape ``(n_models, n_rows, n_outputs)`` (out-of-fold class
      probabilities, or values) and ``target`` the class codes ``0..n_classes-1`` (or
      values), setting ``weights_``, shape ``(n_models,)``: the blend is
      ``sum_m weights_[m] * P[m]``; for classification non-negative and summing to 1.

    Either way autofuse scores the result honestly (nested cross-validation over the
    out-of-fold predictions) and leaves out members a fusion does not use.
    """

    name: str
    build: Callable[..., Any]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a CombinerSpec needs a non-empty string name")
        if not callable(self.build):
            raise ValueError(f"combiner {self.name!r}: build must be a callable "
                             "build(metric, random_state, n_threads, **options) -> combiner")

    def options(self) -> list[str] | None:
        """The option names ``build`` takes (None: any, it has ``**options``)."""
        try:
            params = list(inspect.signature(self.build).parameters.values())[3:]
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            return []
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return [p.name for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def make(self, metric: Metric, random_state: Any, n_threads: Any,
             options: dict[str, Any] | None = None) -> Combiner:
        """Build the combiner with ``options``, as a ``Combiner`` of the fusion contract (a
        weights-only one wrapped). An unknown option is a ValueError naming it and the
        options there are."""
        from autofuse.combiners._base import as_combiner

        options = dict(options or {})
        known = self.options()
        if known is not None:
            unknown = sorted(set(options) - set(known))
            if unknown:
                takes = (f"it takes {', '.join(known)}" if known else "it takes none")
                raise ValueError(f"combiner {self.name!r} has no option "
                                 f"{', '.join(map(repr, unknown))}; {takes}")
        try:
            built = self.build(metric, random_state, n_threads, **options)
        except TypeError as exc:
            if options:
                raise ValueError(f"combiner {self.name!r}: bad options {options}: {exc}") from exc
            raise
        return as_combiner(built)
