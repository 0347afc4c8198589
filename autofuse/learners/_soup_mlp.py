"""A soup-ready MLP: every trial fine-tunes the same base network.

A model soup (Wortsman et al. 2022) averages the *weights* of networks that share an
architecture and a starting point. ``SoupMLPClassifier`` and ``SoupMLPRegressor`` make that
starting point shared: ``fit`` first trains a *base network* whose seed (``base_seed``) is
not the trial's ``random_state``, so every trial of a run fitted on the same rows starts
from the very same weights; it then fine-tunes a copy with the trial's learning rate,
weight decay, batch size and epochs, shuffling with ``random_state``. Base networks are
cached per process (``BASE_CACHE_SIZE`` of them, least recently used dropped first), so a
worker that fits several trials on one fold trains the base once.

In scikit-learn 1.9 a ``warm_start=True`` fit of an MLP keeps ``coefs_`` and
``intercepts_`` (it initialises only on the first fit) and builds a fresh Adam optimizer
with the current ``learning_rate_init`` (``_fit_stochastic`` does so on every fit that is not
a ``partial_fit``); its no-improvement counter carries over from the base fit, which is why
the fine-tuning turns that stopping rule off and runs exactly ``epochs`` epochs.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import warnings
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

if TYPE_CHECKING:
    import optuna
    from sklearn.pipeline import Pipeline

    from autofuse._data import DataSpec

#: Base networks kept per process.
BASE_CACHE_SIZE = 8
#: The architecture and base training every trial of ``mlp_soup`` shares (not searched:
#: networks of different shapes or starting points cannot be averaged).
WIDTH, DEPTH, BASE_EPOCHS = 128, 2, 30
#: ``n_iter_no_change`` while fine-tuning: the stopping rule never fires.
_NEVER = 2**31 - 1

_BASES: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()


def _digest(network: type, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None,
            width: int, depth: int, base_epochs: int, base_seed: int) -> str:
    """A hash of everything the base network depends on."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((network.__name__, X.shape, X.dtype.str, y.shape, y.dtype.str, width, depth,
                   base_epochs, base_seed, sample_weight is None)).encode())
    for a in (X, y) if sample_weight is None else (X, y, sample_weight):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def base_network(network: type, X: np.ndarray, y: np.ndarray,
                 sample_weight: np.ndarray | None, *, width: int, depth: int,
                 base_epochs: int, base_seed: int) -> tuple[str, Any]:
    """``(key, net)``: a copy of the base network for these rows and settings, trained
    once per process and then taken from the cache; ``key`` names its starting point.

    ``X`` is a float array, ``y`` the targets as the network gets them (a numeric or
    string array), ``network`` ``MLPClassifier`` or ``MLPRegressor``.
    """
    y_key = y.astype(str) if y.dtype == object else y
    key = _digest(network, X, y_key, sample_weight, width, depth, base_epochs, base_seed)
    with _LOCK:
        net = _BASES.get(key)
        if net is not None:
            _BASES.move_to_end(key)
    if net is None:
        net = network(hidden_layer_sizes=(width,) * depth, solver="adam",
                      learning_rate_init=1e-3, alpha=1e-4, batch_size=min(200, len(X)),
                      max_iter=base_epochs, early_stopping=False, random_state=base_seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(X, y, sample_weight=sample_weight)
        with _LOCK:
            _BASES[key] = net
            while len(_BASES) > BASE_CACHE_SIZE:
                _BASES.popitem(last=False)
    return key, copy.deepcopy(net)


class _SoupMLP(BaseEstimator):
    """What the classifier and the regressor share; ``_network`` is the sklearn MLP."""

    _network: type = MLPRegressor

    def __init__(self, width: int = 128, depth: int = 2, base_epochs: int = 30,
                 learning_rate_init: float = 1e-3, alpha: float = 1e-4, epochs: int = 10,
                 batch_size: int = 128, base_seed: int = 0, random_state: int | None = None):
        self.width = width
        self.depth = depth
        self.base_epochs = base_epochs
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.epochs = epochs
        self.batch_size = batch_size
        self.base_seed = base_seed
        self.random_state = random_state

    def _fit_network(self, X: np.ndarray, y: np.ndarray, sample_weight: Any) -> None:
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        self.base_key_, net = base_network(
            self._network, X, y, sample_weight, width=self.width, depth=self.depth,
            base_epochs=self.base_epochs, base_seed=self.base_seed)
        # None would shuffle from the global RNG: the fit stays deterministic instead.
        seed = self.base_seed if self.random_state is None else self.random_state
        net.set_params(warm_start=True, learning_rate_init=self.learning_rate_init,
                       alpha=self.alpha, batch_size=max(1, min(self.batch_size, len(X))),
                       max_iter=self.epochs, n_iter_no_change=_NEVER, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(X, y, sample_weight=sample_weight)
        self.network_ = net


class SoupMLPClassifier(ClassifierMixin, _SoupMLP):
    """An MLP classifier fine-tuned from a base network shared by every trial fitted on
    the same rows (see the module docstring). ``network_`` is the fitted
    ``MLPClassifier``; ``base_key_`` names its starting point (equal keys: same base)."""

    _network = MLPClassifier

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SoupMLPClassifier:
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self._fit_network(X, y, sample_weight)
        self.classes_ = self.network_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.network_.predict(validate_data(self, X, dtype=np.float64, reset=False))

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.network_.predict_proba(
            validate_data(self, X, dtype=np.float64, reset=False))


class SoupMLPRegressor(RegressorMixin, _SoupMLP):
    """An MLP regressor fine-tuned from a base network shared by every trial fitted on
    the same rows (see the module docstring). The network learns the standardised target
    (``(y - y_mean_) / y_scale_``), so its scale does not depend on the target's units.
    ``network_`` is the fitted ``MLPRegressor``; ``base_key_`` names its starting point."""

    _network = MLPRegressor

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SoupMLPRegressor:
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self.y_mean_ = float(y.mean())
        std = float(y.std())
        self.y_scale_ = std if std > 0 else 1.0
        self._fit_network(X, (y - self.y_mean_) / self.y_scale_, sample_weight)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.network_.predict(X) * self.y_scale_ + self.y_mean_


# ----------------------------------------------------------------- the learner

def _soup_mlp_space(trial: optuna.trial.BaseTrial, data: DataSpec) -> dict[str, Any]:
    return {
        "learning_rate_init": trial.suggest_float("learning_rate_init", 1e-4, 1e-2, log=True),
        "alpha": trial.suggest_float("alpha", 1e-6, 1e-2, log=True),
        "epochs": trial.suggest_int("epochs", 5, 40, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
    }


def _soup_mlp_build(params: dict[str, Any], data: DataSpec) -> Pipeline:
    from autofuse.learners._sklearn import _classifier, _pipeline

    cls = SoupMLPClassifier if _classifier(data) else SoupMLPRegressor
    model = cls(width=WIDTH, depth=DEPTH, base_epochs=BASE_EPOCHS,
                learning_rate_init=params.get("learning_rate_init", 1e-3),
                alpha=params.get("alpha", 1e-4), epochs=params.get("epochs", 10),
                batch_size=params.get("batch_size", 128))
    return _pipeline(data, model, encode="onehot", scale=True)


#: Three fine-tunings of the shared base, far enough apart to be worth averaging.
SOUP_MLP_PORTFOLIO: tuple[dict[str, Any], ...] = (
    {"learning_rate_init": 1e-3, "alpha": 1e-4, "epochs": 10},
    {"learning_rate_init": 3e-4, "alpha": 1e-3, "epochs": 20},
    {"learning_rate_init": 3e-3, "alpha": 1e-5, "epochs": 5},
)
