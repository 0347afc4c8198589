"""The fitted model ``autofuse.fit`` returns, and ``load`` for saved ones."""

from __future__ import annotations

import pickle
import platform
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from autofuse._cv import _predict
from autofuse._data import conform

if TYPE_CHECKING:
    import optuna

    from autofuse._data import DataSpec
    from autofuse._scoring import RunMetric

SAVE_FORMAT = 1


@dataclass
class Member:
    """One model of the blend: a finished trial's fold models (or its refit on all rows)."""

    trial: int
    learner: str
    params: dict[str, Any]
    weight: float
    models: list[Any]

    def predict(self, frame: pd.DataFrame, data: DataSpec) -> np.ndarray:
        out = _predict(self.models[0], frame, data)
        for model in self.models[1:]:
            out += _predict(model, frame, data)
        return out / len(self.models)


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
    """A fitted autofuse model: the blend of the search's best models.

    Made by :func:`autofuse.fit`. Attributes: ``weights_`` (blend weight of each member,
    by ``"learner#trial"``), ``study_`` (the Optuna study), ``classes_`` (classification),
    ``task_``, ``metric_`` (its name), ``feature_names_in_``, ``best_single_`` (trial
    number of the best single model), ``cv_score_`` (the blend's out-of-fold score).
    """

    def __init__(self, *, data: DataSpec, metric: RunMetric, members: list[Member],
                 best_single: Member, cv_score: float, study: optuna.Study,
                 leaderboard: pd.DataFrame, refit_full: bool, fit_seconds: float,
                 plugin_distributions: tuple[str, ...] = ()) -> None:
        self._data = data
        self._metric = metric
        self._members = members
        self._best = best_single
        self._leaderboard = leaderboard
        self.study_ = study
        self.cv_score_ = cv_score
        self.refit_full = refit_full
        self.fit_seconds_ = fit_seconds
        self.task_ = data.task
        self.metric_ = metric.name
        self.classes_ = data.classes
        self.feature_names_in_ = np.array([c.name for c in data.columns], dtype=object)
        self.best_single_ = best_single.trial
        self.weights_ = pd.Series({f"{m.learner}#{m.trial}": m.weight for m in members},
                                  name="weight").sort_values(ascending=False)
        self.versions_ = _versions(BASE_DISTRIBUTIONS + tuple(plugin_distributions))

    # ------------------------------------------------------------- prediction
    def _blend(self, X: Any, members: list[Member] | None = None) -> np.ndarray:
        frame = conform(X, self._data)
        members = self._members if members is None else members
        out = None
        for m in members:
            part = m.weight * m.predict(frame, self._data)
            out = part if out is None else out + part
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_rows, n_classes), columns in ``classes_`` order."""
        if self.task_ == "regression":
            raise AttributeError("predict_proba is for classification; this model does regression")
        proba = self._blend(X)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (classification) or values (regression)."""
        blend = self._blend(X)
        if self.task_ == "regression":
            return blend[:, 0]
        return self.classes_[np.argmax(blend, axis=1)]

    def predict_best_single(self, X: Any) -> np.ndarray:
        """Predictions of the best single model (probabilities for classification), to
        compare with what the blend gives."""
        best = Member(self._best.trial, self._best.learner, self._best.params, 1.0,
                      self._best.models)
        out = self._blend(X, [best])
        return out[:, 0] if self.task_ == "regression" else out

    def score(self, X: Any, y: Any) -> float:
        """The run's metric (``metric_``) of the blend on ``X``, ``y``, in its natural
        direction (a loss for log_loss or rmse, higher-is-better for roc_auc)."""
        blend = self._blend(X)
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

    # ------------------------------------------------------------- reporting
    def leaderboard(self) -> pd.DataFrame:
        """Every trial of the study (learner, parameters, cross-validated score, fit and
        predict seconds, blend weight, status, failure reason), with rows for the blend and
        the best single model first."""
        return self._leaderboard.copy()

    def data_summary(self) -> pd.DataFrame:
        """Every input column: its kind, distinct and missing counts, kept or dropped and why."""
        return pd.DataFrame([c.__dict__ for c in self._data.columns])

    def __repr__(self) -> str:
        return (f"FusedModel(task={self.task_!r}, metric={self.metric_!r}, "
                f"cv_score={self.cv_score_:.5g}, members={len(self._members)})")

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

    def save(self, path: str) -> None:
        """Write the model to ``path`` (a pickle with the package versions it was made
        with; only load files you trust)."""
        with open(path, "wb") as f:
            pickle.dump({"format": SAVE_FORMAT, "versions": self.versions_}, f,
                        protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: str) -> FusedModel:
    """Load a model written by ``FusedModel.save``.

    The versions it was saved with are compared with the running ones; any difference is
    reported in a warning (or in the error, if the model cannot be read back).
    """
    with open(path, "rb") as f:
        try:
            header = pickle.load(f)
        except Exception as exc:
            raise ValueError(f"{path} is not an autofuse model file: {exc}") from exc
        if not isinstance(header, dict) or "versions" not in header:
            raise ValueError(f"{path} is not an autofuse model file")
        if header.get("format") != SAVE_FORMAT:
            raise ValueError(f"{path} has model format {header.get('format')}; this autofuse "
                             f"reads format {SAVE_FORMAT}")
        now = _versions(header["versions"])
        diff = [f"{k} {v} (now {now.get(k)})" for k, v in header["versions"].items()
                if now.get(k) != v]
        try:
            model = pickle.load(f)
        except Exception as exc:
            detail = f"; it was saved with {', '.join(diff)}" if diff else ""
            raise ValueError(f"could not load {path}: {type(exc).__name__}: {exc}{detail}") from exc
    if diff:
        warnings.warn(f"{path} was saved with other package versions: {', '.join(diff)}. "
                      "Predictions may differ or fail; refit with the current versions "
                      "to be sure", UserWarning, stacklevel=2)
    return model
