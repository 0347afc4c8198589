"""A fusion that predicts from the table with models of its own (a distilled student, a
soup) instead of through the members: its size and latency are measured, not estimated
from the members' timings."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from autofuse.combiners._fusion import Fusion
from autofuse.combiners._view import LibraryView, latency_batches, median_seconds


class OwnModelFusion(Fusion):
    """Predicts the average of ``models``' predictions of the table (one model, or one per
    fold as a member does); ``uses`` is empty, so the fused model loads no member.

    ``details`` is what the leaderboard shows (``summary``); ``measure`` records the pickled
    size and the seconds per row at batch sizes 1 and 10,000 (``costs``).
    """

    needs_table = True

    def __init__(self, models: list[Any], data: Any, details: dict[str, Any],
                 name: str = "the fusion") -> None:
        self.models = list(models)
        self.data = data
        self.details = dict(details)
        self.name = name
        self.uses = ()
        self._costs: dict[str, Any] | None = None

    def predict(self, outputs: dict[int, np.ndarray], X: Any = None) -> np.ndarray:
        from autofuse._member import predict_models

        return predict_models(self.models, X, self.data, self.name)

    def measure(self, view: LibraryView) -> None:
        """Pickled bytes and seconds per row at each of ``LATENCY_BATCHES`` (rows drawn
        from the view's table; the batch of one row is timed ``LATENCY_REPEATS`` times and
        the median kept)."""
        seconds = {batch: median_seconds(lambda: self.predict({}, X), repeats) / batch
                   for batch, X, repeats in latency_batches(view.frame())}
        self._costs = {"bytes": len(pickle.dumps(self.models, protocol=pickle.HIGHEST_PROTOCOL)),
                       "seconds_per_row": seconds}

    def costs(self) -> dict[str, Any] | None:
        return self._costs

    def summary(self) -> dict[str, Any]:
        out = dict(self.details)
        if self._costs is not None:
            out["bytes"] = self._costs["bytes"]
            out["predict_seconds_per_row"] = {str(b): s for b, s in
                                              self._costs["seconds_per_row"].items()}
        return out
