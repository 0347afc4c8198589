"""A member of a fused model: one finished trial's fitted models, and how it predicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from autofuse._cv import _predict

if TYPE_CHECKING:
    import pandas as pd

    from autofuse._data import DataSpec


@dataclass
class Member:
    """A finished trial's fold models (averaged when it predicts), or its refit on all rows."""

    trial: int
    learner: str
    params: dict[str, Any]
    models: list[Any]

    def predict(self, frame: pd.DataFrame, data: DataSpec) -> np.ndarray:
        """Class probabilities or values, ``(n_rows, n_outputs)`` float64."""
        return predict_models(self.models, frame, data, f"member {self.learner}#{self.trial}")


def predict_models(models: list[Any], frame: pd.DataFrame, data: DataSpec,
                   name: str = "the model") -> np.ndarray:
    """The average of ``models``' predictions on ``frame`` (``name`` says whose, in the
    error a wrong output gets)."""
    out = _predict(models[0], frame, data, name)
    for model in models[1:]:
        out += _predict(model, frame, data, name)
    return out / len(models)
