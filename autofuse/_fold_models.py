"""The file of one trial's fold models: written one model at a time, read back the same way.

A forest's fold models run to gigabytes. Written as one pickled list, the worker holds all
of them until the end and a reader holds them twice (unpickling keeps everything it read
until the end of a pickle). Written as one pickle per model, each is written as soon as it
is fitted and read back on its own.
"""

from __future__ import annotations

import os
import pickle
from typing import Any


class ModelFile:
    """Fold models written to ``path`` one pickle each, as they are fitted, so neither the
    worker nor a reader ever holds a second copy of all of them (a forest's fold models
    run to gigabytes, and unpickling keeps everything it read until the end of a pickle).
    The file appears under its name only when complete."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp = f"{path}.tmp{os.getpid()}"
        self.file = open(self.tmp, "wb")

    def add(self, model: Any) -> None:
        pickle.dump(model, self.file, protocol=pickle.HIGHEST_PROTOCOL)

    def close(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.file.close()
        try:
            os.remove(self.tmp)
        except FileNotFoundError:  # pragma: no cover
            pass


def read_models(path: str) -> list[Any]:
    """The fold models ``ModelFile`` wrote to ``path`` (a file holding one pickled list,
    as written before, is read too)."""
    models: list[Any] = []
    with open(path, "rb") as f:
        while True:
            try:
                item = pickle.load(f)
            except EOFError:
                return models
            if isinstance(item, list):
                models.extend(item)
            else:
                models.append(item)
