"""Parameter averaging of fitted pipelines: the arithmetic of model soups.

A soup averages the *parameters* of models, not their predictions. Two cases are exact:

* models of one fold (the same rows, so identical "prepare" steps) whose final estimators
  are linear, or soup MLPs fine-tuned from the same base network: ``average_models``
  averages their ``coef_``/``intercept_`` (or the network's ``coefs_``/``intercepts_``).
  For linear models the result's logits are the weighted mean of the models' logits;
  for networks it is a new network (Wortsman et al. 2022), whose output is not the mean.
* the k fold models of one linear soup (different rows, so each fold has its own imputer
  medians, clip ranges, scalers and categories): ``merge_folds`` folds every fold's
  per-column preprocessing into terms of the raw columns and returns one ``MergedLinear``
  whose logits are the mean of the fold models' logits.

Every model is a built-in learner's pipeline ``[("prepare", ColumnTransformer), ("model",
estimator)]`` (``autofuse.learners._sklearn``).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit, softmax
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from autofuse.learners._sklearn import ClipToRange, _as_text
from autofuse.learners._soup_mlp import SoupMLPClassifier, SoupMLPRegressor

LINEAR = (LogisticRegression, Ridge, ElasticNet)
SOUP_MLP = (SoupMLPClassifier, SoupMLPRegressor)
#: Rows predicted at once by ``MergedLinear`` (bounds its (rows, folds, columns) buffer).
CHUNK_CELLS = 4_000_000


def _parts(model: Any) -> tuple[Any, Any] | None:
    """``(prepare, estimator)`` of a ``[("prepare", ...), ("model", ...)]`` pipeline."""
    if not isinstance(model, Pipeline) or [n for n, _ in model.steps] != ["prepare", "model"]:
        return None
    return model.named_steps["prepare"], model.named_steps["model"]


def soup_family(model: Any) -> str | None:
    """The family of a fitted pipeline's final estimator: models of one family and one
    fold can be averaged. ``"linear"`` (``LogisticRegression``, ``Ridge``, ``ElasticNet``),
    ``"mlp_soup:{width}x{depth}"`` (``SoupMLPClassifier``/``SoupMLPRegressor``), or None
    (any other estimator, a plain MLP among them: its networks start from different random
    points; or a model that is not a prepare/model pipeline)."""
    parts = _parts(model)
    if parts is None:
        return None
    est = parts[1]
    if isinstance(est, LINEAR):
        return "linear"
    if isinstance(est, SOUP_MLP):
        return f"mlp_soup:{est.width}x{est.depth}"
    return None


def _arrays(est: Any) -> list[np.ndarray]:
    """The averaged parameters of a final estimator."""
    if isinstance(est, SOUP_MLP):
        return [np.asarray(a) for a in est.network_.coefs_ + est.network_.intercepts_]
    return [np.asarray(est.coef_), np.asarray(est.intercept_)]


def _set_arrays(est: Any, arrays: list[np.ndarray]) -> None:
    if isinstance(est, SOUP_MLP):
        n = len(est.network_.coefs_)
        est.network_.coefs_, est.network_.intercepts_ = arrays[:n], arrays[n:]
    else:
        coef, intercept = arrays
        est.coef_ = coef
        est.intercept_ = intercept if isinstance(est.intercept_, np.ndarray) else float(intercept)


def _incompatibility(models: Sequence[Any], probe: pd.DataFrame | None) -> str | None:
    """Why ``models`` cannot be averaged, or None when they can (the prepare steps are
    compared only when ``probe`` is given)."""
    if len(models) == 0:
        return "no models to average"
    families = [soup_family(m) for m in models]
    if families[0] is None:
        return (f"{type(models[0]).__name__} has no soup family: averaging needs prepare/model "
                "pipelines of a linear model or a soup MLP")
    if len(set(families)) > 1:
        return f"models of different families: {sorted(set(map(str, families)))}"
    ests = [_parts(m)[1] for m in models]
    shapes = [[a.shape for a in _arrays(e)] for e in ests]
    if any(s != shapes[0] for s in shapes):
        return "parameters of different shapes (different columns, classes or outputs)"
    classes = [getattr(e, "classes_", None) for e in ests]
    if any((c is None) != (classes[0] is None) or (c is not None and not np.array_equal(
            c, classes[0])) for c in classes):
        return "classifiers with different classes_"
    if isinstance(ests[0], SOUP_MLP):
        first = ests[0]
        for e in ests[1:]:
            if type(e) is not type(first) or e.base_key_ != first.base_key_:
                return ("soup MLPs fine-tuned from different base networks (other rows or "
                        "base settings)")
            if isinstance(e, SoupMLPRegressor) and (e.y_mean_, e.y_scale_) != (
                    first.y_mean_, first.y_scale_):
                return "soup MLP regressors with different target scaling"
    if probe is not None:
        first = np.asarray(_parts(models[0])[0].transform(probe), dtype=float)
        for m in models[1:]:
            if not np.array_equal(np.asarray(_parts(m)[0].transform(probe), dtype=float),
                                  first, equal_nan=True):
                return ("their prepare steps differ (fitted on different rows?): fold models "
                        "are merged with merge_folds")
    return None


def compatible(models: Sequence[Any], probe: pd.DataFrame) -> bool:
    """Whether ``models`` can be averaged: one soup family, parameters of identical shapes
    (and the same ``classes_``), soup MLPs from the same base network, and "prepare" steps
    that transform ``probe`` (rows of the table) to identical arrays."""
    return _incompatibility(models, probe) is None


def _weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be {n} finite non-negative numbers with a positive "
                         f"sum; got {weights!r}")
    return w / w.sum()


def average_models(models: Sequence[Any], weights: Sequence[float] | None = None, *,
                   probe: pd.DataFrame | None = None) -> Pipeline:
    """A new fitted pipeline: a deep copy of ``models[0]`` whose final estimator holds the
    weighted average of the models' parameters (weights normalised to sum to 1; None:
    uniform). For linear models its ``decision_function`` (or ``predict``) is the weighted
    mean of the models'.

    Raises ValueError when the models cannot be averaged (see ``compatible``). Without
    ``probe`` the prepare steps are not compared: the caller vouches that the models were
    fitted on the same rows (soup MLPs are checked anyway, by their base network).
    """
    reason = _incompatibility(models, probe)
    if reason is not None:
        raise ValueError(f"cannot average these models: {reason}")
    w = _weights(weights, len(models))
    params = [_arrays(_parts(m)[1]) for m in models]
    mean = [sum(wi * p[i] for wi, p in zip(w, params)) for i in range(len(params[0]))]
    soup = copy.deepcopy(models[0])
    _set_arrays(soup.named_steps["model"], [np.asarray(a, dtype=np.float64) for a in mean])
    return soup


# ----------------------------------------------------------------- merging fold models

_NEEDS = "merging fold models needs the built-in linear learners' pipelines"
_UNSEEN = "\x00autofuse:unseen"  # a category no table holds: the probe for unknown values


def _steps(pipe: Any, types: tuple[type, ...]) -> list[Any]:
    """The steps of ``pipe`` when they are instances of ``types`` in order; else raises."""
    steps = [s for _, s in getattr(pipe, "steps", [])]
    if len(steps) != len(types) or not all(isinstance(s, t) for s, t in zip(steps, types)):
        raise ValueError(f"{_NEEDS}: unexpected column preparation {pipe!r}")
    return steps


def _centre_scale(scaler: StandardScaler, n: int) -> tuple[np.ndarray, np.ndarray]:
    centre = scaler.mean_ if scaler.with_mean else np.zeros(n)
    scale = scaler.scale_ if scaler.with_std else np.ones(n)
    return np.asarray(centre, dtype=float), np.asarray(scale, dtype=float)


def _numeric_terms(pipe: Any, W: np.ndarray) -> dict[str, np.ndarray]:
    """One fold's numeric block as raw-column terms. ``W`` (block columns, K): the model's
    weights on the block's outputs (imputed columns, then missing indicators).

    A present value x adds ``W_j (clip(x, lo_j, hi_j) - centre_j) / scale_j + present_j``;
    a missing one adds ``missing_j``, the imputed value's and the indicator's terms.
    """
    imputer, clip, scaler = _steps(pipe, (SimpleImputer, ClipToRange, StandardScaler))
    if not (imputer.keep_empty_features and isinstance(imputer.missing_values, float)
            and np.isnan(imputer.missing_values)):
        raise ValueError(f"{_NEEDS}: the imputer must take NaN as missing and keep empty "
                         "columns")
    stat = np.asarray(imputer.statistics_, dtype=float)
    p = stat.size
    flagged = [] if imputer.indicator_ is None else list(imputer.indicator_.features_)
    width = p + len(flagged)
    if W.shape[0] != width or clip.low_.shape != (width,):
        raise ValueError(f"{_NEEDS}: the numeric block has an unexpected width")
    lo, hi = np.asarray(clip.low_, dtype=float), np.asarray(clip.high_, dtype=float)
    centre, scale = _centre_scale(scaler, width)

    def term(values: np.ndarray, cols: np.ndarray) -> np.ndarray:  # (len(cols), K)
        z = (np.clip(values, lo[cols], hi[cols]) - centre[cols]) / scale[cols]
        return z[:, None] * W[cols]

    present = np.zeros((p, W.shape[1]))
    missing = term(stat, np.arange(p))
    if flagged:
        cols = p + np.arange(len(flagged))
        present[flagged] += term(np.zeros(len(flagged)), cols)
        missing[flagged] += term(np.ones(len(flagged)), cols)
    return {"lo": lo[:p], "hi": hi[:p], "centre": centre[:p], "scale": scale[:p],
            "weight": W[:p], "present": present, "missing": missing}


def _category_terms(pipe: Any, W: np.ndarray) -> list[dict[str, np.ndarray]]:
    """One fold's categorical block as, for each column, ``cats`` (the categories the
    fold saw, as text) and ``terms`` (len(cats) + 1, K): what each adds to the logits, the
    last row being what any other value adds (with ``handle_unknown="infrequent_if_exist"``
    the infrequent column's term when the encoder has one, else that of an all-zero
    encoding). Found by encoding a probe with the fitted encoder, so infrequent and unknown
    categories go where the encoder puts them."""
    text, encoder, scaler = _steps(pipe, (FunctionTransformer, OneHotEncoder, StandardScaler))
    if text.func is not _as_text or encoder.drop is not None or encoder.handle_unknown not in (
            "infrequent_if_exist", "ignore"):
        raise ValueError(f"{_NEEDS}: unexpected categorical encoding")
    cats = [np.asarray(c, dtype=object) for c in encoder.categories_]
    infrequent = getattr(encoder, "infrequent_categories_", [None] * len(cats))
    outs = [len(c) - (0 if f is None else len(f) - 1) for c, f in zip(cats, infrequent)]
    if (list(getattr(encoder, "_n_features_outs", outs)) != outs or sum(outs) != W.shape[0]
            or any(_UNSEEN in c for c in cats)):
        raise ValueError(f"{_NEEDS}: the one-hot encoder's layout is not the expected one")
    rows = max(len(c) for c in cats) + 1
    probe = pd.DataFrame({
        name: list(c) + [_UNSEEN] + [c[0]] * (rows - len(c) - 1)
        for name, c in zip(encoder.feature_names_in_, cats)}, dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onehot = np.asarray(encoder.transform(probe), dtype=float)
    centre, scale = _centre_scale(scaler, W.shape[0])
    z = (onehot - centre) / scale
    start, out = 0, []
    for c, n in zip(cats, outs):
        block = slice(start, start + n)
        out.append({"cats": c, "terms": z[: len(c) + 1, block] @ W[block]})
        start += n
    return out


def _fold_terms(model: Any) -> dict[str, Any]:
    """One fold model as raw-column terms (see ``_numeric_terms``, ``_category_terms``)."""
    parts = _parts(model)
    if parts is None or soup_family(model) != "linear":
        raise ValueError(f"{_NEEDS}; got {type(model if parts is None else parts[1]).__name__}")
    prepare, est = parts
    if not isinstance(prepare, ColumnTransformer) or getattr(prepare, "sparse_output_", False):
        raise ValueError(f"{_NEEDS}: the prepare step is not a dense ColumnTransformer")
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=float))
    W = coef.T  # (prepared columns, K)
    folded: dict[str, Any] = {"intercept": np.broadcast_to(
        np.asarray(est.intercept_, dtype=float), (W.shape[1],)).copy(),
        "classes": getattr(est, "classes_", None), "numeric": None, "categorical": None}
    width = 0
    for name, trans, cols in prepare.transformers_:
        block = prepare.output_indices_[name]
        if block.stop == block.start:  # dropped columns, the remainder among them
            continue
        cols = list(cols)
        width += block.stop - block.start
        if isinstance(trans, Pipeline) and isinstance(trans.steps[0][1], SimpleImputer):
            kind, terms = "numeric", _numeric_terms(trans, W[block])
        else:
            kind, terms = "categorical", _category_terms(trans, W[block])
        if folded[kind] is not None:
            raise ValueError(f"{_NEEDS}: more than one {kind} block")
        folded[kind] = (cols, terms, trans)
    if width != W.shape[0]:
        raise ValueError(f"{_NEEDS}: the prepared columns do not match the model's weights")
    return folded


def merge_folds(fold_models: Sequence[Any]) -> MergedLinear:
    """One ``MergedLinear`` whose logits are the mean of the fold models' logits (their
    ``decision_function``; a regressor's ``predict``), for fold models of one linear soup
    fitted on different rows, each with its own preparation (built-in ``linear`` or
    ``elastic_net`` pipelines, or their ``average_models``). Its probabilities are the
    sigmoid (binary) or softmax (multiclass) of the mean logits: not the mean of the fold
    models' probabilities.

    Raises ValueError when a model is not a built-in linear pipeline, or the folds differ
    in columns, classes or outputs.
    """
    if len(fold_models) == 0:
        raise ValueError("merge_folds needs at least one fold model")
    folds = [_fold_terms(m) for m in fold_models]
    first = folds[0]
    K = first["intercept"].size
    for f in folds[1:]:
        if f["intercept"].size != K or (f["classes"] is None) != (first["classes"] is None) or (
                f["classes"] is not None and not np.array_equal(f["classes"], first["classes"])):
            raise ValueError("merge_folds: the fold models differ in classes or outputs")
        for kind in ("numeric", "categorical"):
            if (f[kind] is None) != (first[kind] is None) or (
                    f[kind] is not None and f[kind][0] != first[kind][0]):
                raise ValueError(f"merge_folds: the fold models read different {kind} columns")
    numeric = None
    if first["numeric"] is not None:
        terms = [f["numeric"][1] for f in folds]
        stack = {k: np.stack([t[k] for t in terms]) for k in terms[0]}
        numeric = _NumericPart(first["numeric"][0], stack["lo"], stack["hi"], stack["centre"],
                               stack["scale"], stack["weight"], stack["present"].sum(axis=0),
                               stack["missing"].sum(axis=0))
    categorical = None
    if first["categorical"] is not None:
        columns = []
        for i, name in enumerate(first["categorical"][0]):
            per_fold = [f["categorical"][1][i] for f in folds]
            cats = pd.Index(sorted(set().union(*(t["cats"].tolist() for t in per_fold))),
                            dtype=object)
            table = np.zeros((len(cats) + 1, K))
            for t in per_fold:
                at = pd.Index(t["cats"], dtype=object).get_indexer(cats)  # -1: unseen there
                table[:-1] += t["terms"][at]  # the -1 rows take the unknown term
                table[-1] += t["terms"][-1]
            columns.append((name, cats, table))
        categorical = _CategoricalPart(first["categorical"][2].steps[0][1], columns)
    intercept = sum(f["intercept"] for f in folds)
    return MergedLinear(numeric, categorical, intercept, len(folds), first["classes"])


class _NumericPart:
    """The numeric columns' terms of every fold: arrays (folds, columns[, K]); ``present``
    and ``missing`` (columns, K) summed over the folds."""

    def __init__(self, columns: list[str], lo: np.ndarray, hi: np.ndarray, centre: np.ndarray,
                 scale: np.ndarray, weight: np.ndarray, present: np.ndarray,
                 missing: np.ndarray) -> None:
        self.columns = columns
        self.lo, self.hi, self.centre, self.scale = lo, hi, centre, scale
        self.weight = weight.reshape(-1, weight.shape[-1])  # (folds * columns, K)
        self.constant = present.sum(axis=0)
        self.missing = missing - present  # what a missing cell changes

    def logits(self, X: pd.DataFrame) -> np.ndarray:
        values = X[self.columns].to_numpy(dtype=np.float64, na_value=np.nan)
        absent = np.isnan(values)
        n, (folds, p) = len(values), self.lo.shape
        out = np.empty((n, self.weight.shape[1]))
        step = max(1, CHUNK_CELLS // max(1, folds * p))
        for s in range(0, n, step):
            z = np.maximum(values[s:s + step, None, :], self.lo)
            np.minimum(z, self.hi, out=z)
            z -= self.centre
            z /= self.scale
            np.copyto(z, 0.0, where=absent[s:s + step, None, :])
            out[s:s + step] = z.reshape(len(z), -1) @ self.weight
        return out + self.constant + absent.astype(np.float64) @ self.missing


class _CategoricalPart:
    """The categorical columns' lookup tables: ``(column, categories, table)`` with table
    (len(categories) + 1, K) summed over the folds, its last row for any other value."""

    def __init__(self, as_text: FunctionTransformer, columns: list[tuple[str, Any, Any]]):
        self.as_text = as_text
        self.columns = columns

    def logits(self, X: pd.DataFrame) -> np.ndarray:
        text = self.as_text.transform(X[[c for c, _, _ in self.columns]])
        out = np.zeros((len(X), self.columns[0][2].shape[1]))
        for name, cats, table in self.columns:
            out += table[cats.get_indexer(text[name].to_numpy(dtype=object))]
        return out


class MergedLinear:
    """k linear fold models merged into one model (``merge_folds``): it predicts a table
    (a DataFrame with the columns the fold models read) with a few numpy operations.

    ``decision_function`` is the mean of the fold models' logits: shape (n,) for a binary
    classifier or a single-output regressor, (n, K) otherwise. ``predict_proba`` (a
    classifier's) is their sigmoid or softmax, columns in ``classes_`` order; ``predict``
    is the class of highest probability, or a regressor's mean prediction. ``classes_`` is
    None for a regressor.
    """

    def __init__(self, numeric: _NumericPart | None, categorical: _CategoricalPart | None,
                 intercept: np.ndarray, n_folds: int, classes: np.ndarray | None) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.intercept = intercept
        self.n_folds = n_folds
        self.classes_ = classes

    @property
    def columns(self) -> list[str]:
        """The input columns it reads."""
        num = self.numeric.columns if self.numeric is not None else []
        cat = [c for c, _, _ in self.categorical.columns] if self.categorical is not None else []
        return list(num) + cat

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):
            raise ValueError("MergedLinear predicts a DataFrame with the table's columns")
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"MergedLinear: X lacks the columns {missing}")
        total = np.broadcast_to(self.intercept, (len(X), self.intercept.size)).copy()
        for part in (self.numeric, self.categorical):
            if part is not None:
                total += part.logits(X)
        total /= self.n_folds
        return total[:, 0] if total.shape[1] == 1 else total

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.classes_ is None:
            raise AttributeError("a merged regressor has no predict_proba")
        logits = self.decision_function(X)
        if logits.ndim == 1:
            p = expit(logits)
            return np.column_stack([1.0 - p, p])
        return softmax(logits, axis=1)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.classes_ is None:
            return self.decision_function(X)
        logits = self.decision_function(X)
        if logits.ndim == 1:
            return self.classes_[(logits > 0).astype(int)]
        return self.classes_[np.argmax(logits, axis=1)]
