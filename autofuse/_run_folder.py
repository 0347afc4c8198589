"""The run folder of ``autofuse fit``: everything one hands-off run leaves behind.

::

    DIR/
      run.json         configuration, data fingerprint and schema, versions, result, and
                       one record per call (start, end, seconds, status)
      study.db         the Optuna study (SQLite), unless --storage put it elsewhere
      library/         out-of-fold predictions and fold models of every finished trial
      model.pkl        the fitted model (autofuse.load)
      leaderboard.csv  every trial, with the blend and the best single model on top
      run.log          timestamped log of every call
      report.html      written by ``autofuse report``

Every file is replaced whole (written to a temporary name, then renamed), so a run killed
at any moment leaves the previous version, never half a file. A lock held while a fit
runs keeps a second ``autofuse fit`` out of the same folder.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from autofuse._errors import InputError

if TYPE_CHECKING:
    import pandas as pd

#: Version of run.json's layout.
RUN_FORMAT = 1
#: The kinds of leaderboard rows (its ``kind`` column), in the order they come.
ROW_KINDS = ("blend", "best single", "combiner", "trial")


class RunFolder:
    """Paths and records of one run folder."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._lock_file = None

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def record_path(self) -> str:
        return self.file("run.json")

    @property
    def model_path(self) -> str:
        return self.file("model.pkl")

    @property
    def leaderboard_path(self) -> str:
        return self.file("leaderboard.csv")

    @property
    def log_path(self) -> str:
        return self.file("run.log")

    @property
    def library_dir(self) -> str:
        return self.file("library")

    @property
    def storage_url(self) -> str:
        """The embedded store: the study in SQLite inside the folder."""
        return "sqlite:///" + self.file("study.db")

    def is_run(self) -> bool:
        return os.path.isfile(self.record_path)

    def require_run(self) -> None:
        """Refuse a path that is not a run folder."""
        if not os.path.isdir(self.path):
            raise InputError(f"no such run folder: {self.path}")
        if not self.is_run():
            raise InputError(f"{self.path} is not an autofuse run folder (it has no run.json)")

    def create(self) -> None:
        """Make the folder for a new run, refusing a path that holds something else."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise InputError(f"--out {self.path} is a file, not a folder")
        if os.path.isdir(self.path) and not self.is_run() and os.listdir(self.path):
            raise InputError(f"--out {self.path} is a folder that holds other files and no "
                             "run.json; give a new or empty folder")
        os.makedirs(self.path, exist_ok=True)

    def lock(self) -> None:
        """Hold the folder for this process (released when it exits, even by kill -9)."""
        import fcntl

        f = open(self.file(".lock"), "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise InputError(f"{self.path} is in use by another autofuse fit ({holder}); "
                             "wait for it to end or give another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        self._lock_file = f

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def read(self) -> dict[str, Any]:
        try:
            with open(self.record_path) as f:
                record = json.load(f)
        except (OSError, ValueError) as exc:
            raise InputError(f"could not read {self.record_path}: {exc}") from exc
        if record.get("format") != RUN_FORMAT:
            raise InputError(f"{self.record_path} has format {record.get('format')}; this "
                             f"autofuse reads format {RUN_FORMAT}")
        return record

    def write(self, record: dict[str, Any]) -> None:
        replace_file(self.record_path, json.dumps({"format": RUN_FORMAT, **record}, indent=2,
                                                  default=_json_default).encode() + b"\n")


def read_leaderboard(folder: RunFolder) -> tuple[pd.DataFrame, str]:
    """The run's leaderboard.csv, with a ``kind`` column (see ``row_kinds``), and the name
    of its score column. An ``InputError`` if ``folder`` is not a run folder or its first
    fit has not finished. The command line and the report both read it here."""
    import pandas as pd

    folder.require_run()
    if not os.path.isfile(folder.leaderboard_path):
        raise InputError(f"{folder.path} has no leaderboard.csv yet: its first fit has not "
                         "finished")
    board = pd.read_csv(folder.leaderboard_path, dtype={"reason": str, "model": str,
                                                        "learner": str, "kind": str})
    board["reason"] = board["reason"].fillna("")
    board["kind"] = row_kinds(board)
    metric = folder.read().get("result", {}).get("metric")
    if metric not in board.columns:
        raise InputError(f"{folder.leaderboard_path} has no score column {metric!r}")
    return board, metric


def row_kinds(board: pd.DataFrame) -> pd.Series:
    """Each row's kind: "blend", "best single", "combiner" (``model`` "fusion:NAME") or
    "trial". From the ``kind`` column, or, in a leaderboard written before it had one,
    from ``model``."""
    if "kind" in board.columns:
        return board["kind"].astype(str)
    model = board["model"].astype(str)
    kinds = model.where(model.isin(ROW_KINDS[:2]), "trial")
    return kinds.mask(model.str.startswith("fusion:"), "combiner")


def replace_file(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` whole: a temporary file, flushed, then renamed."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
