"""Fusion: what a combiner returns, and what the fused model keeps and predicts through.

A fusion turns the predictions of the library's models into one prediction. A weighted
blend is one kind (``WeightedFusion``); a level-2 model trained on the members' outputs is
another; a student or a soup, which predicts from the table alone, is a third (its
``uses`` is empty). The fused model loads and runs only the members a fusion ``uses``,
and hands their predictions to ``predict``.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np


class Fusion(abc.ABC):
    """A fitted way of combining members' predictions into one (pickled with the model).

    Subclasses set ``uses``, the trial numbers whose predictions ``predict`` needs (in a
    fixed order; ``()`` for a fusion that predicts from the table alone), and implement
    ``predict``. ``needs_table`` says whether ``predict`` reads ``X`` (stacking with the
    original features passed through, a student, a soup); when False, ``X`` may be None.
    """

    uses: tuple[int, ...] = ()
    needs_table: bool = False

    @abc.abstractmethod
    def predict(self, outputs: dict[int, np.ndarray], X: Any = None) -> np.ndarray:
        """The fused prediction, shape ``(n_rows, n_outputs)``: class probabilities (rows
        summing to 1) or values. ``outputs[t]`` holds trial ``t``'s prediction on the same
        rows, ``(n_rows, n_outputs)``, for every ``t`` in ``uses``; ``X`` is the table
        (conformed to the training schema), or None when ``needs_table`` is False."""

    @property
    def weights(self) -> dict[int, float]:
        """Each used member's share of the fusion (for the leaderboard and ``weights_``):
        the blend weights of a weighted blend, normalised absolute coefficients of a
        level-2 linear model, an equal share otherwise."""
        return {t: 1.0 / len(self.uses) for t in self.uses} if self.uses else {}

    def summary(self) -> dict[str, Any]:
        """What the leaderboard and the report show of it: JSON-able values."""
        return {}

    def costs(self) -> dict[str, Any] | None:
        """Measured costs of a fusion that predicts with models of its own (a student, a
        soup): ``{"bytes": pickled size, "seconds_per_row": {batch size: seconds}}``; None
        for one that predicts through members, whose costs are theirs."""
        return None


class WeightedFusion(Fusion):
    """The weighted sum of members' predictions: ``sum_t weights[t] * outputs[t]``.

    Made by ``best``, ``average``, ``caruana``, ``prune`` and by every plugin combiner
    that only sets ``weights_``. Members at weight 0 are left out (never loaded, never
    predicted). For classification the weights are non-negative and sum to 1.
    """

    def __init__(self, weights: dict[int, float], details: dict[str, Any] | None = None
                 ) -> None:
        kept = {int(t): float(w) for t, w in weights.items() if w != 0}
        if not kept:
            raise ValueError("a weighted fusion needs at least one non-zero weight")
        self._weights = kept
        self.uses = tuple(sorted(kept, key=lambda t: (-abs(kept[t]), t)))
        self.details = dict(details or {})

    @property
    def weights(self) -> dict[int, float]:
        return dict(self._weights)

    def predict(self, outputs: dict[int, np.ndarray], X: Any = None) -> np.ndarray:
        out = None
        for t in self.uses:
            part = self._weights[t] * np.asarray(outputs[t], dtype=np.float64)
            out = part if out is None else out + part
        return out

    def summary(self) -> dict[str, Any]:
        return {"members": len(self.uses), **self.details}

    def __repr__(self) -> str:
        shown = ", ".join(f"{t}: {w:.3g}" for t, w in list(self._weights.items())[:6])
        return f"WeightedFusion({{{shown}{', ...' if len(self._weights) > 6 else ''}}})"
