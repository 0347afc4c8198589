"""The model library: out-of-fold predictions and fold models of every finished trial.

The search only adds to it, the combiners only read it. Predictions live in memory (and,
for a persistent run, as ``.npy`` files) and fold models on disk (pickles written by the
worker that fitted them), so a large library never has to fit in memory and a run that
stops can pick them up again. The library directory of a persistent study sits beside
it: ``run.db`` keeps its library in ``run.db.library/``.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Entry:
    """One finished trial in the library."""

    trial: int
    learner: str
    params: dict[str, Any]
    score: float
    oof: np.ndarray = field(repr=False)  # (n_rows, n_outputs) float32; NaN where uncovered
    models_file: str = ""  # file name inside the library directory
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0


class ModelLibrary:
    """Entries by trial number, stored in ``directory`` (a temporary one when None)."""

    def __init__(self, directory: str | None = None) -> None:
        self.persistent = directory is not None
        if directory is None:
            directory = tempfile.mkdtemp(prefix="autofuse-library-")
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.entries: dict[int, Entry] = {}

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def models_path(self, trial: int) -> str:
        return self.path(f"trial-{trial}.models.pkl")

    def add(self, entry: Entry) -> None:
        if self.persistent:
            tmp = self.path(f"trial-{entry.trial}.oof.tmp.npy")
            np.save(tmp, entry.oof)
            os.replace(tmp, self.path(f"trial-{entry.trial}.oof.npy"))
        self.entries[entry.trial] = entry

    def restore(self, trial: int, learner: str, params: dict[str, Any], score: float,
                attrs: dict[str, Any]) -> bool:
        """Bring back a trial finished by an earlier call; False if its files are gone."""
        oof_path = self.path(f"trial-{trial}.oof.npy")
        models_file = os.path.basename(self.models_path(trial))
        if not (os.path.exists(oof_path) and os.path.exists(self.path(models_file))):
            return False
        self.entries[trial] = Entry(trial, learner, params, score, np.load(oof_path),
                                    models_file, attrs.get("fit_seconds", 0.0),
                                    attrs.get("predict_seconds", 0.0))
        return True

    def load_models(self, trial: int) -> list[Any]:
        with open(self.path(self.entries[trial].models_file), "rb") as f:
            return pickle.load(f)

    def discard_files(self, trial: int) -> None:
        """Remove files a stopped or failed trial may have left."""
        for name in (f"trial-{trial}.models.pkl", f"trial-{trial}.oof.npy"):
            try:
                os.remove(self.path(name))
            except FileNotFoundError:
                pass

    def close(self) -> None:
        """Delete a temporary library's directory (a persistent one stays)."""
        if not self.persistent:
            shutil.rmtree(self.directory, ignore_errors=True)
