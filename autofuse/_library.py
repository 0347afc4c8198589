"""The model library: out-of-fold predictions and fold models of every finished trial.

The search only adds to it, the combiners only read it. Predictions live in memory (and,
for a persistent run, as ``.npy`` files) and fold models on disk (pickles written by the
worker that fitted them), so a large library never has to fit in memory and a run that
stops can pick them up again. The library directory of a persistent study sits beside
it: ``run.db`` keeps its library in ``run.db.library/``.

Disk is a budget: only the ``KEEP_MODELS`` best trials (the candidates fusion considers)
keep their fold models, and while those take more than ``max_bytes`` the worst of them
lose theirs too (the best one always keeps its models). A trial that lost its models keeps
its out-of-fold predictions and its place in the leaderboard, but cannot become a member.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autofuse._fold_models import read_models


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
    models_bytes: int = 0  # size of the pickled fold models

    @property
    def has_models(self) -> bool:
        """Whether its fold models are still on disk (they are dropped past the budget)."""
        return bool(self.models_file)


log = logging.getLogger("autofuse")

#: Trials that keep their fold models: fusion considers this many of the best.
KEEP_MODELS = 100
#: Besides, this many of the best trials of each learner in ``keep_learners`` (soup
#: ingredients: small models that a long run's best 100 would otherwise crowd out).
KEEP_PER_LEARNER = 25


#: Bytes per second at which the parent reads fold models back, taken low, as a reserve.
#: Written as one pickle per fold model (``_fold_models``), 416 MB of extra trees read in
#: 0.23-0.52 s (0.8-1.8 GB/s) on the 2-core VM (2026-12-01). Written as one pickled list,
#: as before, letter's 2.7 GB read at 0.18 GB/s at the end of a 60 s fit: unpickling held
#: a second copy of everything (2026-11-30).
LOAD_BYTES_PER_SECOND = 400e6
#: Bytes per second at which a fused model is saved (pickled, hashed, written): 0.94 GB in
#: 4.2 s on the 2-core VM (wine_quality_white's model, 2026-12-01); taken low.
SAVE_BYTES_PER_SECOND = 200e6
#: The blend's members are expected among this many best trials.
LIKELY_MEMBERS = 10


class ModelLibrary:
    """Entries by trial number, stored in ``directory`` (a temporary one when None).

    ``greater_is_better`` (the metric's direction) ranks the trials for the disk budget:
    when it is given, only the ``keep`` best keep their fold models, within ``max_bytes``
    (None: no byte limit), and so do the ``KEEP_PER_LEARNER`` best of each learner named
    in ``keep_learners``. ``saves_model``: the run writes its fused model within its
    budget (the command line does), so ``load_seconds`` counts the writing too."""

    def __init__(self, directory: str | None = None, *, greater_is_better: bool | None = None,
                 max_bytes: int | None = None, keep: int = KEEP_MODELS,
                 saves_model: bool = False, keep_learners: Any = (), store: Any = None,
                 prefix: str = "") -> None:
        #: A shared run's artifact store (``autofuse._artifacts``): finished trials are
        #: published to it, and trials other workers finished are fetched from it (their
        #: predictions when restored, their fold models when first loaded). The local
        #: directory is then this process's cache of it.
        self.store = store
        self.prefix = prefix
        self.remote: dict[int, tuple[str, str | None]] = {}  # trial -> (artifact, sha256)
        self.keep_learners = frozenset(keep_learners)
        self.saves_model = saves_model
        self.greater_is_better = greater_is_better
        self.max_bytes = max_bytes
        self.keep = keep
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
        entry.models_bytes = self._size(entry.models_file)
        if self.persistent:
            tmp = self.path(f"trial-{entry.trial}.oof.tmp.npy")
            np.save(tmp, entry.oof)
            os.replace(tmp, self.path(f"trial-{entry.trial}.oof.npy"))
        self.entries[entry.trial] = entry
        self._trim()

    def _trim(self) -> None:
        """Drop the fold models of the trials past ``keep`` and, worst first, of those
        past ``max_bytes`` (never the best trial's)."""
        if self.greater_is_better is None:
            return
        sign = -1.0 if self.greater_is_better else 1.0
        ranked = sorted((e for e in self.entries.values() if e.has_models),
                        key=lambda e: (sign * e.score, e.trial))
        drop, kept = ranked[self.keep:], ranked[:self.keep]
        if self.keep_learners:
            counts: dict[str, int] = {}
            for e in kept:
                counts[e.learner] = counts.get(e.learner, 0) + 1
            still = []
            for e in drop:
                if e.learner in self.keep_learners and counts.get(e.learner, 0) < KEEP_PER_LEARNER:
                    counts[e.learner] = counts.get(e.learner, 0) + 1
                    kept.append(e)
                else:
                    still.append(e)
            drop = still
            kept.sort(key=lambda e: (sign * e.score, e.trial))
        total = sum(e.models_bytes for e in kept)
        while self.max_bytes is not None and total > self.max_bytes and len(kept) > 1:
            worst = kept.pop()
            total -= worst.models_bytes
            drop.append(worst)
        for entry in drop:
            try:
                os.remove(self.path(entry.models_file))
            except FileNotFoundError:
                pass
            entry.models_file, entry.models_bytes = "", 0
            log.info("trial %d (%s) lost its fold models: it is not among the %d best within "
                     "the library's disk budget", entry.trial, entry.learner, self.keep)

    def restore(self, trial: int, learner: str, params: dict[str, Any], score: float,
                attrs: dict[str, Any]) -> bool:
        """Bring back a trial finished by an earlier call (or, in a shared run, by another
        worker); False if its predictions are gone (a trial whose fold models were dropped
        comes back without them)."""
        oof_path = self.path(f"trial-{trial}.oof.npy")
        models_file = os.path.basename(self.models_path(trial))
        shared = attrs.get("artifacts") if self.store is not None else None
        if not os.path.exists(oof_path):
            if not shared:
                return False
            from autofuse._artifacts import get_file

            get_file(self.store, shared["oof"], oof_path, shared.get("oof_sha256"))
        models_bytes = self._size(models_file)
        if not os.path.exists(self.path(models_file)):
            if shared and shared.get("models"):  # fetched when first loaded
                self.remote[trial] = (shared["models"], shared.get("models_sha256"))
                models_bytes = int(shared.get("models_bytes", 0))
            else:
                models_file = ""
        self.entries[trial] = Entry(trial, learner, params, score, np.load(oof_path),
                                    models_file, attrs.get("fit_seconds", 0.0),
                                    attrs.get("predict_seconds", 0.0), models_bytes)
        return True

    def restore_trial(self, trial: Any) -> bool:
        """Bring back a finished trial of the study (an Optuna ``FrozenTrial``); False if it
        is not a learner's trial or its files are gone."""
        attrs = trial.user_attrs
        if "learner" not in attrs:
            return False
        return self.restore(trial.number, attrs["learner"], attrs.get("params", {}),
                            trial.value, attrs)

    def sync(self, study: Any) -> int:
        """Bring in every finished trial of ``study`` this library lacks (a shared run: those
        other workers finished), in trial order; how many came in."""
        from optuna.trial import TrialState

        added = 0
        for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                        key=lambda t: t.number):
            if t.number not in self.entries and self.restore_trial(t):
                added += 1
        if added:
            self.entries = dict(sorted(self.entries.items()))
            self._trim()
        return added

    def publish(self, trial: int, oof: np.ndarray) -> dict[str, Any] | None:
        """Write a finished trial's fold models and out-of-fold predictions to the shared
        store (None without one): what the trial records as its ``artifacts``, before it is
        told finished, so no reader ever looks for a file not yet complete."""
        if self.store is None:
            return None
        from autofuse._artifacts import new_id, put_file

        out: dict[str, Any] = {}
        models = self.models_path(trial)
        if os.path.exists(models):
            key = new_id(f"{self.prefix}-trial-{trial}", ".models")
            size, sha = put_file(self.store, key, models)
            out.update(models=key, models_sha256=sha, models_bytes=size)
        tmp = self.path(f"trial-{trial}.publish.npy")
        np.save(tmp, oof)
        try:
            key = new_id(f"{self.prefix}-trial-{trial}", ".oof.npy")
            _, sha = put_file(self.store, key, tmp)
        finally:
            os.remove(tmp)
        out.update(oof=key, oof_sha256=sha)
        return out

    def _size(self, name: str) -> int:
        try:
            return os.path.getsize(self.path(name)) if name else 0
        except OSError:
            return 0

    def load_seconds(self, greater_is_better: bool) -> float:
        """Expected seconds to load the fold models of the likely members of the blend (the
        ``LIKELY_MEMBERS`` best trials): time the search must leave for fusion. Forests on
        many classes pickle to gigabytes (letter: extra trees, 26 classes). With
        ``saves_model``, also the seconds to write them into the saved model."""
        sign = -1.0 if greater_is_better else 1.0
        best = sorted(self.entries.values(), key=lambda e: sign * e.score)[:LIKELY_MEMBERS]
        rate = 1 / LOAD_BYTES_PER_SECOND + (1 / SAVE_BYTES_PER_SECOND if self.saves_model
                                            else 0.0)
        return sum(e.models_bytes for e in best) * rate

    def unpublish(self, artifacts: dict[str, Any] | None) -> None:
        """Remove what ``publish`` wrote for a trial that was not told finished after all
        (best effort: a file left behind is never read, as no trial names it)."""
        if self.store is None or not artifacts:
            return
        for key in ("models", "oof"):
            if artifacts.get(key):
                try:
                    self.store.remove(artifacts[key])
                except Exception:  # noqa: BLE001
                    pass

    def load_models(self, trial: int) -> list[Any]:
        path = self.path(self.entries[trial].models_file)
        if trial in self.remote and not os.path.exists(path):
            from autofuse._artifacts import get_file

            artifact, sha256 = self.remote[trial]
            get_file(self.store, artifact, path, sha256)
        return read_models(path)

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
