"""``AutoFuseClassifier`` and ``AutoFuseRegressor``: ``autofuse.fit`` as scikit-learn estimators.

They follow the scikit-learn contract (``__init__`` only stores its arguments, ``fit``
returns ``self``, fitted attributes end in ``_``), so they clone, take ``set_params``, sit
at the end of a ``Pipeline`` and work with ``cross_val_score`` and ``GridSearchCV``.

Input handling: a pandas DataFrame goes to ``autofuse.fit`` unchanged (autofuse handles
numeric, categorical, text and bool columns and missing values itself); anything else goes
through ``check_array`` (any dtype, NaN allowed, no sparse matrices). ``n_features_in_``
and, for a DataFrame with string column names, ``feature_names_in_`` are recorded as
scikit-learn does, and prediction checks new data against them the same way: a DataFrame
must have the columns seen at fit time, in the same order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted
from sklearn.utils.validation import column_or_1d, validate_data

from autofuse import _api

if TYPE_CHECKING:
    from sklearn.utils import Tags

    from autofuse._model import FusedModel


class _AutoFuseEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, input checks, fit."""

    _task = ""  # the ``task`` passed to ``autofuse.fit``

    def __init__(self, time_limit: float | None = 60, n_trials: int | None = None,
                 metric: Any = None, cv: Any = 5, learners: Any = None,
                 combiner: Any = _api.DEFAULT_COMBINER, combiner_options: Any = None,
                 storage: Any = None, n_jobs: int = -1, memory_limit: float | None = None,
                 max_disk: float | None = None, refit_full: bool = False,
                 random_state: int | None = None, verbose: int = 0) -> None:
        self.time_limit = time_limit
        self.n_trials = n_trials
        self.metric = metric
        self.cv = cv
        self.learners = learners
        self.combiner = combiner
        self.combiner_options = combiner_options
        self.storage = storage
        self.n_jobs = n_jobs
        self.memory_limit = memory_limit
        self.max_disk = max_disk
        self.refit_full = refit_full
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        # A search that stops on the clock, or runs trials in parallel, can end on other
        # trials from one fit to the next.
        tags.non_deterministic = self.n_trials is None or self.n_jobs != 1
        return tags

    # ------------------------------------------------------------- input checks
    def _check_X(self, X: Any, y: Any = "no_validation", *, reset: bool) -> Any:
        """Validate ``X``, record (``reset``) or check its features, and return it: a
        DataFrame unchanged, anything else as a checked 2-D array."""
        if sp.issparse(X):
            raise ValueError(f"{type(self).__name__} does not accept sparse input (got a "
                             f"{type(X).__name__}); convert it with X.toarray() or pass a "
                             "DataFrame")
        if not isinstance(X, pd.DataFrame):
            X = check_array(X, dtype=None, ensure_all_finite="allow-nan", input_name="X",
                            estimator=self)
        # Only bookkeeping here: n_features_in_, feature_names_in_, and y is not None.
        validate_data(self, X, y, reset=reset, skip_check_array=True)
        return X

    def _check_y(self, y: Any) -> np.ndarray:  # pragma: no cover - each subclass has one
        raise NotImplementedError

    def _to_model(self, X: Any) -> Any:
        """``X`` (already checked against the fit) as the fitted ``model_`` expects it."""
        names = self.model_.feature_names_in_
        if isinstance(X, pd.DataFrame):
            if [str(c) for c in X.columns] == names.tolist():
                return X
            # validate_data checked string names against the fit's; any other names (or a
            # fit without them) mean columns match by position, as in scikit-learn.
            return X.set_axis(names, axis=1)
        return pd.DataFrame(X, columns=names).infer_objects()

    # ------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any) -> _AutoFuseEstimator:
        """Search learners on ``X``, ``y`` and fuse the best into ``model_``.

        Parameters
        ----------
        X : DataFrame (passed to autofuse unchanged) or 2-D array-like.
        y : array-like of shape (n_samples,).

        Returns
        -------
        self
        """
        X = self._check_X(X, y, reset=True)
        y = self._check_y(y)
        check_consistent_length(X, y)
        self.model_: FusedModel = _api.fit(
            X, y, task=self._task, time_limit=self.time_limit, n_trials=self.n_trials,
            metric=self.metric, cv=self.cv, learners=self.learners, combiner=self.combiner,
            combiner_options=self.combiner_options, storage=self.storage,
            n_jobs=self.n_jobs, memory_limit=self.memory_limit, max_disk=self.max_disk,
            refit_full=self.refit_full, random_state=self.random_state, verbose=self.verbose)
        if self.model_.classes_ is not None:
            self.classes_ = self.model_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (classifier) or values (regressor) of the fused model."""
        check_is_fitted(self)
        return self.model_.predict(self._to_model(self._check_X(X, reset=False)))

    def leaderboard(self) -> pd.DataFrame:
        """Every trial of the search, with the blend and the best single model first (see
        ``FusedModel.leaderboard``)."""
        check_is_fitted(self)
        return self.model_.leaderboard()


class AutoFuseClassifier(ClassifierMixin, _AutoFuseEstimator):
    """AutoML classifier: searches scikit-learn learners with Optuna over cross-validation
    and blends the best with Caruana's greedy ensemble selection (``autofuse.fit``).

    Parameters
    ----------
    time_limit : seconds for the whole fit (search, fusion, refit); None for no limit.
    n_trials : most trials to run; None for as many as ``time_limit`` allows.
    metric : the metric the search and the blend optimise: ``"roc_auc"``,
        ``"log_loss"``, ``"accuracy"``, any scikit-learn scorer name or a scorer
        callable. Default (None): roc_auc for two classes, log_loss for more.
    cv : number of stratified folds, or a scikit-learn splitter or iterable of splits.
    learners : names of built-in learners and/or ``LearnerSpec`` objects; None for all.
    combiner : how the library is fused, as in ``autofuse.fit`` (``"auto"``, the default,
        ``"caruana"``, ``"best"``, ``"average"``, ``"stacking"``, ``"prune"``, a plugin's).
    combiner_options : dict of the combiner's options (``{"max_members": 5}``), or None.
    storage : None, or an Optuna storage URL (``"sqlite:///run.db"``) to persist and
        resume the search.
    n_jobs : trials run in parallel worker processes (-1, the default: one per core).
    memory_limit : GB each trial may use; default from the available memory and ``n_jobs``.
    max_disk : GB the model library's fold models may take; default from the free space.
    refit_full : refit the blend's members on all rows if the time left allows.
    random_state : seeds the folds and the sampler.
    verbose : 0 silent, 1 a progress bar and warnings, 2 also info messages.

    Attributes
    ----------
    model_ : FusedModel, the fitted fusion (``combiner_``, ``weights_``, ``outer_score_``,
        ``study_``, ...).
    classes_ : ndarray, the class labels, in the order of ``predict_proba``'s columns.
    n_features_in_ : int, the number of columns seen in ``fit``.
    feature_names_in_ : ndarray of str, the column names seen in ``fit``; only set when
        ``X`` was a DataFrame with string column names.

    Notes
    -----
    ``score`` is scikit-learn's accuracy, not the search metric; ``model_.score`` gives
    the latter. A search with ``n_trials=None`` (it stops on the clock) or ``n_jobs != 1``
    is not reproducible from one fit to the next and is tagged non-deterministic.

    A class with fewer rows than the folds is kept (with a warning): folds that lack it
    predict it with probability 0.
    """

    _task = "classification"

    def _check_y(self, y: Any) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        if y.dtype.kind == "O":  # sklearn would only say "Unknown label type: unknown"
            missing = np.flatnonzero(pd.isna(y))
            if len(missing):
                raise ValueError(f"y has {len(missing)} missing label(s) (None or NaN), first "
                                 f"at row {missing[0]}; drop those rows or fill them")
        else:  # NaN or infinity, in sklearn's words
            check_array(y, ensure_2d=False, dtype=None, input_name="y", estimator=self)
        check_classification_targets(y)
        return y

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self)
        return self.model_.predict_proba(self._to_model(self._check_X(X, reset=False)))


class AutoFuseRegressor(RegressorMixin, _AutoFuseEstimator):
    """AutoML regressor: searches scikit-learn learners with Optuna over cross-validation
    and blends the best with Caruana's greedy ensemble selection (``autofuse.fit``).

    Parameters
    ----------
    time_limit : seconds for the whole fit (search, fusion, refit); None for no limit.
    n_trials : most trials to run; None for as many as ``time_limit`` allows.
    metric : the metric the search and the blend optimise: ``"rmse"``, ``"mae"``,
        ``"r2"``, any scikit-learn scorer name or a scorer callable. Default (None): rmse.
    cv : number of (shuffled) folds, or a scikit-learn splitter or iterable of splits.
    learners : names of built-in learners and/or ``LearnerSpec`` objects; None for all.
    combiner : how the library is fused, as in ``autofuse.fit`` (``"auto"``, the default,
        ``"caruana"``, ``"best"``, ``"average"``, ``"stacking"``, ``"prune"``, a plugin's).
    combiner_options : dict of the combiner's options (``{"max_members": 5}``), or None.
    storage : None, or an Optuna storage URL (``"sqlite:///run.db"``) to persist and
        resume the search.
    n_jobs : trials run in parallel worker processes (-1, the default: one per core).
    memory_limit : GB each trial may use; default from the available memory and ``n_jobs``.
    max_disk : GB the model library's fold models may take; default from the free space.
    refit_full : refit the blend's members on all rows if the time left allows.
    random_state : seeds the folds and the sampler.
    verbose : 0 silent, 1 a progress bar and warnings, 2 also info messages.

    Attributes
    ----------
    model_ : FusedModel, the fitted fusion (``combiner_``, ``weights_``, ``outer_score_``,
        ``study_``, ...).
    n_features_in_ : int, the number of columns seen in ``fit``.
    feature_names_in_ : ndarray of str, the column names seen in ``fit``; only set when
        ``X`` was a DataFrame with string column names.

    Notes
    -----
    ``score`` is scikit-learn's R², not the search metric; ``model_.score`` gives the
    latter. A search with ``n_trials=None`` or ``n_jobs != 1`` is tagged non-deterministic.
    """

    _task = "regression"

    def _check_y(self, y: Any) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        if y.dtype.kind in "OUS":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"AutoFuseRegressor needs a numeric target ({exc}); for "
                                 "class labels use AutoFuseClassifier") from exc
        return check_array(y, ensure_2d=False, dtype=np.float64, input_name="y",
                           estimator=self)
