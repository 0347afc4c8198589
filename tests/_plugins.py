"""Plugin objects for tests: module-level, so worker processes can import what they
register. Each class is a plugin (pluggy registers classes and instances alike)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

import autofuse
from autofuse.combiners import Combiner, CombinerSpec, Fusion
from autofuse.learners import LearnerSpec, preprocessor
from autofuse.metrics import MetricSpec

from _learners import RAISES


def _ridge_space(trial, data):
    return {"C": trial.suggest_float("C", 0.01, 10.0, log=True)}


def _ridge_build(params, data):
    from sklearn.pipeline import Pipeline

    return Pipeline([("prepare", preprocessor(data, encode="onehot", scale=True)),
                     ("model", LogisticRegression(C=params.get("C", 1.0), max_iter=500))])


#: A working learner under a new name.
PLUGIN_LINEAR = LearnerSpec("plugin_linear", frozenset({"binary", "multiclass"}), _ridge_space,
                            _ridge_build, portfolio=({},), cost=0.05)


class LearnerPlugin:
    @staticmethod
    @autofuse.hookimpl
    def autofuse_register_learners(register):
        register(PLUGIN_LINEAR)


class DuplicatePlugin:
    """Registers a learner under a built-in's name, and one new learner."""

    @staticmethod
    @autofuse.hookimpl
    def autofuse_register_learners(register):
        register(LearnerSpec("linear", PLUGIN_LINEAR.tasks, _ridge_space, _ridge_build))
        register(PLUGIN_LINEAR)


class RaisingHookPlugin:
    @staticmethod
    @autofuse.hookimpl
    def autofuse_register_learners(register):
        register(PLUGIN_LINEAR)
        raise RuntimeError("hook exploded")


class WrongTypePlugin:
    @staticmethod
    @autofuse.hookimpl
    def autofuse_register_learners(register):
        register("not a spec")


class FailingLearnerPlugin:
    """A learner that raises in fit: its trials fail, the run goes on."""

    @staticmethod
    @autofuse.hookimpl
    def autofuse_register_learners(register):
        register(RAISES)


class MisspeltHookPlugin:
    @staticmethod
    @autofuse.hookimpl
    def autofuse_register_learner(register):  # "learner", not "learners"
        register(PLUGIN_LINEAR)


class TopTwo:
    """Averages the two best models by their own score: a small real combiner."""

    def __init__(self, metric):
        self.metric = metric

    def fit(self, predictions, y):
        scores = np.array([self.metric.score(p, y) for p in predictions])
        order = np.argsort(-scores if self.metric.greater_is_better else scores)
        self.weights_ = np.zeros(len(predictions))
        self.weights_[order[:2]] = 1.0 / min(2, len(predictions))
        return self


def _top_two(metric, random_state, n_threads):
    return TopTwo(metric)


class Broken:
    def __init__(self, metric):
        pass

    def fit(self, predictions, y):
        self.weights_ = np.full(len(predictions), -1.0)  # not a probability blend
        return self


def _broken(metric, random_state, n_threads):
    return Broken(metric)


class CombinerPlugin:
    @staticmethod
    @autofuse.hookimpl
    def autofuse_register_combiners(register):
        register(CombinerSpec("top_two", _top_two, "average of the two best models"))
        register(CombinerSpec("broken", _broken, "returns negative weights"))


def brier(y_true, y_pred):
    """Brier score of the positive class (lower is better)."""
    return brier_score_loss(y_true, y_pred[:, 1])


class MetricPlugin:
    @staticmethod
    @autofuse.hookimpl
    def autofuse_register_metrics(register):
        register(MetricSpec("brier", brier, greater_is_better=False, tasks={"binary"}))


class Noisy(LogisticRegression):
    """Predictions jittered by an unseeded generator: not deterministic under a seed."""

    def predict_proba(self, X):
        p = super().predict_proba(X) + np.random.default_rng().random((len(X), 2)) * 0.01
        return p / p.sum(axis=1, keepdims=True)


def _noisy_build(params, data):
    from sklearn.pipeline import Pipeline

    return Pipeline([("prepare", preprocessor(data, encode="onehot", scale=True)),
                     ("model", Noisy(max_iter=500))])


NOISY = LearnerSpec("noisy", frozenset({"binary"}), _ridge_space, _noisy_build)


def _sneaky_space(trial, data):
    return {"C": 0.5}  # a value the study never saw


SNEAKY = LearnerSpec("sneaky", frozenset({"binary"}), _sneaky_space, _ridge_build)


class Worst(TopTwo):
    """All weight on the worst model."""

    def fit(self, predictions, y):
        scores = np.array([self.metric.score(p, y) for p in predictions])
        self.weights_ = np.zeros(len(predictions))
        self.weights_[np.argmin(scores) if self.metric.greater_is_better
                      else np.argmax(scores)] = 1.0
        return self


def _worst(metric, random_state, n_threads):
    return Worst(metric)


#: A portfolio entry with a key the space never suggests: a run would drop it.
BAD_PORTFOLIO = LearnerSpec("bad_portfolio", frozenset({"binary"}), _ridge_space, _ridge_build,
                            portfolio=({"C": 1.0, "penalty": "l1"},))
#: A portfolio entry outside the space's range.
OUT_OF_RANGE = LearnerSpec("out_of_range", frozenset({"binary"}), _ridge_space, _ridge_build,
                           portfolio=({"C": 100.0},))


class _Lookup(Fusion):
    """Predicts the label of the nearest fitted row in prediction space."""

    def __init__(self, uses, points, labels, n_outputs):
        self.uses = tuple(uses)
        self.points, self.labels, self.n_outputs = points, labels, n_outputs

    def predict(self, outputs, X=None):
        Q = np.concatenate([outputs[t] for t in self.uses], axis=1)
        d = ((Q[:, None, :] - self.points[None, :, :]) ** 2).sum(axis=2)
        out = np.full((len(Q), self.n_outputs), 0.01 / max(1, self.n_outputs - 1))
        out[np.arange(len(Q)), self.labels[d.argmin(axis=1)]] = 0.99
        return out


class Memorizer(Combiner):
    """A fusion-contract combiner that memorises its rows: perfect in sample, overfitted."""

    def fuse(self, view):
        uses = view.trials
        points = np.concatenate(list(view.predictions), axis=1).astype(float)
        return _Lookup(uses, points, np.asarray(view.target, dtype=int), view.n_outputs)


def _memorizer(metric, random_state, n_threads):
    return Memorizer()
