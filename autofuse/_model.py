"""The fitted model ``autofuse.fit`` returns, and ``load`` for saved ones."""

from __future__ import annotations

import os
import pickle
import platform
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from autofuse._data import conform
from autofuse._member import Member

if TYPE_CHECKING:
    import optuna

    from autofuse._data import DataSpec
    from autofuse._scoring import RunMetric
    from autofuse.combiners import Fusion

#: Version of the saved-model layout (2: the fused model predicts through a Fusion; 3: in
#: a checked envelope, ``autofuse._model_file``).
SAVE_FORMAT = 3
#: The file in a kept model library that lets a model be fused again: the table, the
#: target and the folds the library was built on.
CONTEXT_FILE = "context.pkl"


#: Distributions whose versions a saved model records (plus those of the plugins it uses).
BASE_DISTRIBUTIONS = ("autofuse", "scikit-learn", "numpy", "scipy", "pandas", "optuna")


def _versions(distributions: Any = BASE_DISTRIBUTIONS) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in distributions:
        if dist == "python":
            continue
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover
            out[dist] = "not installed"
    return out


class FusedModel:
    """A fitted autofuse model: the fusion of the search's best models.

    Made by :func:`autofuse.fit` (or :meth:`fuse`, from the same library). Attributes:
    ``combiner_`` (the combiner that made the fusion), ``fusion_`` (the fitted
    ``autofuse.combiners.Fusion``), ``weights_`` (each member's share of the fusion, by
    ``"learner#trial"``), ``cv_score_`` (the fusion's score on the out-of-fold predictions
    it was fitted on: in sample for the combiner), ``outer_score_`` (its score from nested
    cross-validation over those predictions: rows the combiner was not fitted on),
    ``study_`` (the Optuna study), ``classes_`` (classification), ``task_``, ``metric_``
    (its name), ``feature_names_in_``, ``best_single_`` (trial number of the best single
    model).
    """

    def __init__(self, *, data: DataSpec, metric: RunMetric, fusion: Fusion, combiner: str,
                 members: list[Member], best_single: Member, cv_score: float,
                 outer_score: float, study: optuna.Study, leaderboard: pd.DataFrame,
                 refit_full: bool, fit_seconds: float, random_state: int | None = None,
                 library_dir: str | None = None,
                 plugin_distributions: tuple[str, ...] = ()) -> None:
        self._data = data
        self._metric = metric
        self._members = {m.trial: m for m in members}
        self._best = best_single
        self._leaderboard = leaderboard
        self._random_state = random_state
        self._library_dir = library_dir
        self.fusion_ = fusion
        self.combiner_ = combiner
        self.study_ = study
        self.cv_score_ = cv_score
        self.outer_score_ = outer_score
        self.refit_full = refit_full
        self.fit_seconds_ = fit_seconds
        self.task_ = data.task
        self.metric_ = metric.name
        self.classes_ = data.classes
        self.feature_names_in_ = np.array([c.name for c in data.columns], dtype=object)
        self.best_single_ = best_single.trial
        self.weights_ = pd.Series({f"{self._members[t].learner}#{t}": w
                                   for t, w in fusion.weights.items()},
                                  name="weight", dtype=float).sort_values(ascending=False)
        self.versions_ = _versions(BASE_DISTRIBUTIONS + tuple(plugin_distributions))

    @property
    def members(self) -> list[Member]:
        """The members the fusion uses, heaviest first."""
        return [self._members[t] for t in self.fusion_.uses]

    # ------------------------------------------------------------- prediction
    def _blend(self, X: Any) -> np.ndarray:
        """The fusion's output on ``X``, ``(n_rows, n_outputs)``: class probabilities (not
        yet normalized) or values in one column. A table of no rows gives no rows (the
        learners' imputers refuse empty input, so they are not asked)."""
        frame = conform(X, self._data)
        if len(frame) == 0:
            width = 1 if self.task_ == "regression" else len(self.classes_)
            return np.empty((0, width), dtype=np.float64)
        outputs = {t: self._members[t].predict(frame, self._data) for t in self.fusion_.uses}
        out = np.asarray(self.fusion_.predict(outputs, frame), dtype=np.float64)
        return out[:, None] if out.ndim == 1 else out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_rows, n_classes), columns in ``classes_`` order
        (no rows for a table of none)."""
        if self.task_ == "regression":
            raise AttributeError("predict_proba is for classification; this model does regression")
        proba = self._blend(X)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (classification, of ``classes_``' dtype) or values
        (regression), one per row of ``X`` (none for a table of no rows)."""
        blend = self._blend(X)
        if self.task_ == "regression":
            return blend[:, 0]
        return self.classes_[np.argmax(blend, axis=1)]

    def predict_best_single(self, X: Any) -> np.ndarray:
        """Predictions of the best single model (probabilities for classification), to
        compare with what the blend gives (no rows for a table of none)."""
        frame = conform(X, self._data)
        # no rows: the blend's empty output has the same columns
        out = self._best.predict(frame, self._data) if len(frame) else self._blend(X)
        return out[:, 0] if self.task_ == "regression" else out

    def score(self, X: Any, y: Any) -> float:
        """The run's metric (``metric_``) of the blend on ``X``, ``y``, in its natural
        direction (a loss for log_loss or rmse, higher-is-better for roc_auc). A table of
        no rows has no score: a ``ValueError``."""
        blend = self._blend(X)
        if len(blend) == 0:
            raise ValueError("X has no rows: there is nothing to score")
        y = np.asarray(y)
        if self.task_ == "regression":
            target = y.astype(float)
        else:
            index = {label: k for k, label in enumerate(self.classes_.tolist())}
            unknown = [v for v in pd.unique(y) if v not in index]
            if unknown:
                raise ValueError(f"y holds labels unseen at fit time: {unknown[:5]}")
            target = np.array([index[v] for v in y.tolist()])
        return self._metric.score(blend, target)

    # ------------------------------------------------------------- fusing again
    def fuse(self, combiner: Any = "auto", *, library: str | None = None,
             n_threads: int | None = None, time_limit: float | None = None,
             **options: Any) -> FusedModel:
        """A new fitted model fused from this run's model library by ``combiner`` (a
        registered name, e.g. ``"stacking"``, ``"prune"``, ``"auto"``, or a
        ``CombinerSpec``) with ``options`` (``model.fuse("prune", infer_limit=1e-4)``),
        without running the search again. This model is left as it is.

        Members predict by averaging their fold models (a ``refit_full`` model's refits
        are not reused). The library must have been kept: ``fit(...,
        storage="sqlite:///run.db")`` keeps it beside the database (``run.db.library/``),
        and ``autofuse fit`` in its run folder; ``library`` points to it if it moved. A
        combiner that fails raises (no fallback). ``time_limit`` (seconds, None for none)
        bounds what a combiner checks against its deadline (auto's comparisons, prune's
        measurements, distill's students).
        """
        from optuna.trial import TrialState

        from autofuse import plugins
        from autofuse._core._greedy import default_threads
        from autofuse._library import ModelLibrary
        from autofuse._resources import memory_limit_bytes
        from autofuse.combiners._fuse import fuse_view, library_view, make_combiner

        directory = library or self._library_dir
        context = os.path.join(directory, CONTEXT_FILE) if directory else None
        if context is None or not os.path.exists(context):
            where = f" ({directory} has no {CONTEXT_FILE})" if directory else ""
            raise ValueError(
                f"this model's library was not kept{where}, so it cannot be fused again: fit "
                "with storage='sqlite:///run.db' (the library stays in run.db.library/), or "
                "use the command line (autofuse fit keeps it in the run folder; autofuse "
                "fuse RUN --combiner NAME), or pass library= where it is now")
        threads = default_threads() if n_threads is None else int(n_threads)
        name, built = make_combiner(combiner, options, plugins.combiners(), self._metric,
                                    self._random_state, threads)
        with open(context, "rb") as f:
            saved = pickle.load(f)
        store = ModelLibrary(directory, store=_shared_store(self.study_))
        for t in self.study_.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            store.restore_trial(t)
        start = time.monotonic()
        view = library_view(store, saved["target"], saved["folds"], self._metric,
                            frame=saved["frame"], data=self._data,
                            random_state=self._random_state, n_threads=threads,
                            deadline=None if time_limit is None else start + time_limit,
                            extra_learners=getattr(built, "wants_learners", ()),
                            memory_limit=memory_limit_bytes(None, threads),
                            n_workers=threads)
        outcome = fuse_view(view, name, built)
        model = build_model(study=self.study_, library=store, view=view, outcome=outcome,
                            data=self._data, metric=self._metric,
                            fit_seconds=time.monotonic() - start,
                            random_state=self._random_state, library_dir=directory)
        model.target_name_ = getattr(self, "target_name_", None)
        return model

    # ------------------------------------------------------------- reporting
    def leaderboard(self) -> pd.DataFrame:
        """The fusion (``model`` "blend"), the best single model, one row per combiner
        tried (``model`` "fusion:NAME"), then every trial of the study (best first, then
        stopped and failed ones).

        Columns: ``kind`` ("blend", "best single", "combiner", "trial": select trials with
        ``board[board["kind"] == "trial"]``), ``learner`` (the combiner, for the fusion
        rows), ``params``, the metric (out-of-fold: honest for a trial, in sample for a
        combiner, which was fitted on those predictions), ``outer_score`` (a combiner's
        score from nested cross-validation: rows it was not fitted on), ``fit_seconds``
        (for a combiner: its fits, nested ones included), ``predict_seconds`` (a trial's,
        summed over folds), ``members``, ``bytes`` (pickled models it needs),
        ``predict_seconds_per_1000`` (rows, as the fused model predicts; estimated from the
        search's timings for every row alike; prune's measurements are in its
        ``params``; a student's or a soup's are measured on its own model, batch 10,000,
        with batch 1 in its ``params``), ``weight`` (share in the fusion), ``status`` and ``reason`` (why a
        trial failed, why a combiner was chosen or not)."""
        return self._leaderboard.copy()

    def data_summary(self) -> pd.DataFrame:
        """Every input column: its kind, distinct and missing counts, kept or dropped and why."""
        return pd.DataFrame([c.__dict__ for c in self._data.columns])

    def __repr__(self) -> str:
        return (f"FusedModel(task={self.task_!r}, metric={self.metric_!r}, "
                f"combiner={self.combiner_!r}, outer_score={self.outer_score_:.5g}, "
                f"members={len(self.fusion_.uses)})")

    # ------------------------------------------------------------- persistence
    def __getstate__(self) -> dict[str, Any]:
        """A pickled model carries its study in memory, not a link to a database that may
        not exist where it is loaded."""
        import optuna

        state = self.__dict__.copy()
        study = state["study_"]
        if not isinstance(study._storage, optuna.storages.InMemoryStorage):
            level = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            copy = optuna.create_study(directions=study.directions,
                                       study_name=study.study_name)
            for key, value in study.user_attrs.items():
                copy.set_user_attr(key, value)
            copy.add_trials(study.get_trials(deepcopy=False))
            optuna.logging.set_verbosity(level)
            state["study_"] = copy
        return state

    def save(self, path: str, key: str | bytes | None = None) -> None:
        """Write the model to ``path``: the pickled model behind a plain-JSON header with
        the package versions it was made with, its length and SHA-256 checksum, which
        ``load`` checks before unpickling (see ``autofuse._model_file``).

        With a ``key`` (str or bytes; default: the ``AUTOFUSE_MODEL_KEY`` environment
        variable, if set) the file is also signed (HMAC-SHA256), and ``load`` with the
        same key refuses a file changed since. The key is not written to the file.

        The file holds what the members hold: k-nearest-neighbours (``knn``) and SVM
        (``svm``) members keep training rows, so a model with them contains training data.
        """
        from autofuse import _model_file

        payload = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        _model_file.write(path, payload, {"format": SAVE_FORMAT, "versions": self.versions_},
                          key)


def _shared_store(study: Any) -> Any:
    """A shared run's artifact store, where the study records one this machine reaches
    (the fold models of trials this process never loaded are fetched from it); else None."""
    location = study.user_attrs.get("autofuse_run", {}).get("artifacts")
    if location is None:
        return None
    from autofuse._artifacts import open_store

    try:
        return open_store(location)
    except ValueError:
        return None


def save_context(directory: str, frame: pd.DataFrame, target: np.ndarray,
                 folds: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Keep, in a persistent library, what fusing it again needs besides the study."""
    path = os.path.join(directory, CONTEXT_FILE)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump({"frame": frame, "target": target, "folds": folds}, f,
                    protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def build_model(*, study: optuna.Study, library: Any, view: Any, outcome: Any,
                data: DataSpec, metric: RunMetric, fit_seconds: float,
                random_state: int | None, library_dir: str | None,
                refit_full: bool = False) -> FusedModel:
    """The fused model of a fusion step's outcome: the members its fusion uses and the
    best single model loaded from the library, and the leaderboard."""
    from autofuse import plugins
    from autofuse._leaderboard import build_leaderboard

    chosen = outcome.chosen
    fusion = chosen.fusion

    def member(trial: int) -> Member:
        entry = library.entries[trial]
        return Member(trial, entry.learner, entry.params, library.load_models(trial))

    members = [member(t) for t in fusion.uses]
    best_trial = view.trials[int(view.order()[0])]
    best = next((m for m in members if m.trial == best_trial), None) or member(best_trial)
    board = build_leaderboard(study, metric, view, outcome, best_trial)
    return FusedModel(
        data=data, metric=metric, fusion=fusion, combiner=chosen.name, members=members,
        best_single=best, cv_score=float(chosen.in_sample), outer_score=float(chosen.outer),
        study=study, leaderboard=board, refit_full=refit_full, fit_seconds=fit_seconds,
        random_state=random_state, library_dir=library_dir,
        plugin_distributions=plugins.distributions_of(
            learners={m.learner for m in members} | {best.learner},
            combiners={chosen.name}))


def load(path: str, key: str | bytes | None = None) -> FusedModel:
    """Load a model written by ``FusedModel.save``.

    Loading unpickles the model, and unpickling runs code: only load files you trust.
    Before unpickling, the file is checked: its header (plain JSON), its length and its
    SHA-256 checksum; a file that fails (corrupted, truncated, not a model file) is a
    ``ValueError`` naming it and what failed. The checksum catches corruption, not
    tampering: whoever can change the file can recompute it. A ``key`` (str or bytes;
    default: the ``AUTOFUSE_MODEL_KEY`` environment variable, if set) is what protects
    against tampering: with one, only a file signed with that key (``save`` with the
    same key) is loaded; an unsigned or otherwise signed file is refused. Without a key a
    signed file loads too (its checksum is checked).

    A model saved by autofuse before model format 3 is refused: it cannot be checked.

    The versions it was saved with are compared with the running ones; any difference is
    reported in a warning (or in the error, if the model cannot be read back).
    """
    from autofuse import _model_file

    header, payload = _model_file.read(path, key)
    if header["format"] != SAVE_FORMAT:
        newer = " (written by a newer autofuse)" if header["format"] > SAVE_FORMAT else ""
        raise ValueError(f"{path} has model format {header['format']}{newer}; this autofuse "
                         f"reads format {SAVE_FORMAT}")
    now = _versions(header["versions"])
    diff = [f"{k} {v} (now {now.get(k)})" for k, v in header["versions"].items()
            if now.get(k) != v]
    try:
        model = pickle.loads(payload)
    except Exception as exc:
        detail = f"; it was saved with {', '.join(diff)}" if diff else ""
        raise ValueError(f"could not load {path}: {type(exc).__name__}: {exc}{detail}") from exc
    if diff:
        warnings.warn(f"{path} was saved with other package versions: {', '.join(diff)}. "
                      "Predictions may differ or fail; refit with the current versions "
                      "to be sure", UserWarning, stacklevel=2)
    return model
