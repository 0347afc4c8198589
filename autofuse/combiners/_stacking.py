"""``stacking``: a level-2 model trained on the members' out-of-fold predictions.

The level-2 model sees only what a ``LibraryView`` holds: every member's prediction of a
row comes from a model that was not fitted on that row, so the level-2 model learns how
the members err on unseen rows. Its own optimism (it is fitted on the rows it is scored
on) is what the host's nested cross-validation measures. One leak remains there, which
no combiner can close: the out-of-fold predictions of the rows a level-2 model is fitted
on in an outer fold were made by models that saw that outer fold's labels. A flexible
level-2 model can exploit it (see ``Boosted``), so the gbm here is kept monotone.

Level-2 models:

* ``linear`` (the default). Classification: a log-linear pool, a multinomial logistic
  model on the members' log-probabilities with one non-negative coefficient per member,
  ``z_c = b_c + sum_m w_m log(max(p_mc, 1e-6))``, ``p = softmax(z)``, fitted by L-BFGS-B
  on the mean log loss plus ``l2 * sum_m w_m ** 2`` (in the spirit of H2O's non-negative
  GLM metalearner). It is calibrated (a free intercept per class, and the sum of the
  coefficients acts as a temperature) and sparse (a member that does not help gets 0 and
  is never loaded). Regression: non-negative least squares on the members' predictions
  with a free intercept. The coefficients are shared by every class (every output): a
  member is trusted or not as a whole, which keeps the model small and hard to overfit
  with many correlated members; per-class intercepts still re-calibrate class priors.
* ``gbm``: small scikit-learn histogram gradient boosting models, one per predicted
  column (P(class 1) for binary, one-vs-rest per class for multiclass, each output of a
  regression), on the members' predictions of that column, non-decreasing in each of
  them; optionally with the table's own columns (``passthrough``).

With ``levels=2`` one model of each kind is cross-fitted on the view's folds, and a
non-negative linear level-3 model (the ``linear`` one above) combines their out-of-fold
predictions; for prediction both level-2 models are refitted on every row of the view.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from autofuse.combiners._base import Combiner
from autofuse.combiners._fusion import Fusion
from autofuse.combiners._view import LibraryView

#: Probabilities are clipped to at least this before their log is taken.
EPS = 1e-6
#: A member whose coefficient is below this share of their sum (or below ``ZERO``) is
#: left out and the others refitted: the L2 penalty's pull vanishes near 0, so L-BFGS-B
#: leaves a member that carries nothing (a duplicate's twin, a constant) at a small
#: positive value rather than at 0.
MIN_SHARE = 1e-3
ZERO = 1e-6
#: When no member earns a positive coefficient, the best one is kept at this one.
FLOOR = 1e-5
#: A categorical passthrough column with more distinct values than this is dropped.
MAX_CATEGORIES = 255
LEVEL2 = ("linear", "gbm")


class Stacking(Combiner):
    """A level-2 model on the members' out-of-fold predictions.

    Parameters
    ----------
    level2 : "linear" or "gbm", default="linear"
        The level-2 model (see the module docstring). Not used when ``levels=2``, which
        fits one of each.
    passthrough : bool, default=False
        The ``gbm`` level-2 model also sees the table's columns (numeric and boolean ones
        as numbers, categorical ones as category codes; a categorical column with more
        than 255 values is left out). Needs ``level2="gbm"`` or ``levels=2``.
    levels : 1 or 2, default=1
        2: a linear and a gbm level-2 model, cross-fitted on the view's folds, combined
        by a non-negative linear level-3 model.
    max_inputs : int, default=25
        The level-2 model sees at most this many of the best candidates.
    l2 : float, default=1e-3
        Ridge penalty of the linear classification model on its coefficients (added to
        the mean log loss, so it does not grow with the rows). Regression's non-negative
        least squares has none.

    ``fuse`` raises ``RuntimeError`` when ``passthrough`` is on and the view has no table.
    The run's deadline is not consulted (a linear fit takes a fraction of a second).
    """

    def __init__(self, level2: str = "linear", passthrough: bool = False, levels: int = 1,
                 max_inputs: int = 25, l2: float = 1e-3) -> None:
        if level2 not in LEVEL2:
            raise ValueError(f"stacking: level2 must be 'linear' or 'gbm', got {level2!r}")
        if not isinstance(passthrough, (bool, np.bool_)):
            raise ValueError(f"stacking: passthrough must be True or False, got "
                             f"{passthrough!r}")
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) \
                or levels not in (1, 2):
            raise ValueError(f"stacking: levels must be 1 or 2, got {levels!r}")
        if isinstance(max_inputs, bool) or not isinstance(max_inputs, (int, np.integer)) \
                or max_inputs < 1:
            raise ValueError(f"stacking: max_inputs must be a positive integer, got "
                             f"{max_inputs!r}")
        if isinstance(l2, bool) or not isinstance(l2, (int, float, np.floating)) \
                or not np.isfinite(l2) or l2 < 0:
            raise ValueError(f"stacking: l2 must be a finite number >= 0, got {l2!r}")
        if passthrough and level2 == "linear" and levels == 1:
            raise ValueError("stacking: passthrough=True needs level2='gbm' (or levels=2): "
                             "the linear level-2 model sees the members' predictions only")
        self.level2 = level2
        self.passthrough = bool(passthrough)
        self.levels = int(levels)
        self.max_inputs = int(max_inputs)
        self.l2 = float(l2)

    def fuse(self, view: LibraryView) -> Fusion:
        from threadpoolctl import threadpool_limits

        if view.task != "regression" and view.n_outputs < 2:
            raise ValueError("stacking needs one probability column per class")
        inputs = view.order()[:self.max_inputs]
        trials = tuple(view.trials[i] for i in inputs)
        P = view.predictions[inputs]
        y = view.target
        table = view.frame() if self.passthrough else None
        threads = int(view.n_threads) if view.n_threads and view.n_threads > 0 else None
        with threadpool_limits(limits=threads):
            if self.levels == 1:
                model = self._level2(self.level2, view).fit(P, y, table)
                layer, top = [_bind(model, trials)], None
            else:
                layer, top = self._two_levels(view, P, y, table, trials)
        return StackedFusion(view.task, layer, top, {
            "level2": "linear+gbm" if self.levels == 2 else self.level2,
            "passthrough": self.passthrough, "levels": self.levels, "inputs": len(trials)})

    def _level2(self, kind: str, view: LibraryView) -> Level2:
        if kind == "linear":
            return LinearPool(view.task, self.l2)
        return Boosted(view.task, view.n_outputs, view.random_state or 0, self.passthrough)

    def _two_levels(self, view: LibraryView, P: np.ndarray, y: np.ndarray,
                    table: pd.DataFrame | None, trials: tuple[int, ...]
                    ) -> tuple[list[Level2], LinearPool]:
        """Each level-2 kind cross-fitted on the view's folds (its out-of-fold predictions
        train the level-3 model) and refitted on every row (for prediction)."""
        from autofuse.combiners._nested import outer_folds

        kinds = LEVEL2
        oof = np.zeros((len(kinds), view.n_rows, view.n_outputs))
        for train, valid in outer_folds(view):
            part = None if table is None else table.iloc[train]
            rest = None if table is None else table.iloc[valid]
            for k, kind in enumerate(kinds):
                model = self._level2(kind, view).fit(P[:, train], y[train], part)
                oof[k, valid] = model.predict(P[:, valid], rest)
        scores = np.array([view.metric.score(o, y) for o in oof])
        sign = -1.0 if view.metric.greater_is_better else 1.0
        order = np.lexsort((np.arange(len(kinds)), sign * scores))
        top = LinearPool(view.task, self.l2).fit(oof[order], y)
        keep = [int(order[i]) for i in np.flatnonzero(top.coef)]
        top.restrict(np.flatnonzero(top.coef))
        layer = [_bind(self._level2(kinds[k], view).fit(P, y, table), trials) for k in keep]
        return layer, top


class Level2:
    """A level-2 model: ``fit(P, y, table)`` on stacked member predictions
    ``(n_members, n_rows, n_outputs)``, ``predict(P, table)``. ``trials`` (set by
    ``_bind``) are the members it reads, in the order of ``P``."""

    kind = ""
    needs_table = False
    trials: tuple[int, ...] = ()

    def fit(self, P: np.ndarray, y: np.ndarray, table: Any = None) -> Level2:
        raise NotImplementedError

    def predict(self, P: np.ndarray, table: Any = None) -> np.ndarray:
        raise NotImplementedError

    def shares(self) -> np.ndarray:
        """Each member's share (summing to 1)."""
        return np.full(len(self.trials), 1.0 / len(self.trials))

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind}


def _bind(model: Level2, trials: tuple[int, ...]) -> Level2:
    """Name the members ``model`` reads; a linear model forgets those at coefficient 0."""
    if isinstance(model, LinearPool):
        kept = np.flatnonzero(model.coef)
        model.restrict(kept)
        model.trials = tuple(trials[i] for i in kept)
    else:
        model.trials = tuple(trials)
    return model


# ----------------------------------------------------------------- linear

class LinearPool(Level2):
    """Non-negative linear level-2 model: a log-linear pool of class probabilities, or
    non-negative least squares with an intercept (see the module docstring)."""

    kind = "linear"

    def __init__(self, task: str, l2: float = 1e-3) -> None:
        self.task = task
        self.l2 = l2
        self.coef = np.zeros(0)
        self.intercept = np.zeros(0)
        self.iterations = 0

    def fit(self, P: np.ndarray, y: np.ndarray, table: Any = None) -> LinearPool:
        """Fit on ``P`` (members best first: when none earns a positive coefficient, the
        first is kept at ``FLOOR``, so the model always reads at least one member)."""
        P = np.asarray(P, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64 if self.task == "regression" else np.int64)
        lower = np.zeros(len(P))
        coef, intercept = self._solve(P, y, lower, None)
        if not np.any(coef >= ZERO):
            lower[0] = FLOOR
            coef, intercept = self._solve(P, y, lower, None)
        kept = (coef >= max(ZERO, MIN_SHARE * coef.sum())) | (lower > 0)
        if not kept.all():  # refit without the members at (about) 0
            sub, polished = self._solve(P[kept], y, lower[kept], (coef[kept], intercept))
            if sub.any():
                coef, intercept = np.zeros(len(P)), polished
                coef[kept] = sub
            else:
                coef = np.where(kept, coef, 0.0)
        self.coef, self.intercept = coef, intercept
        return self

    def _solve(self, P: np.ndarray, y: np.ndarray, lower: np.ndarray,
               start: tuple[np.ndarray, np.ndarray] | None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(coefficients >= ``lower``, intercepts) of the fit on ``P``."""
        if self.task == "regression":
            return self._fit_nnls(P, y, lower)
        return self._fit_pool(P, y, lower, start)

    def _fit_nnls(self, P: np.ndarray, y: np.ndarray, lower: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        from scipy.optimize import nnls

        m, n, k = P.shape
        Y = y.reshape(n, -1)
        means = P.mean(axis=1)  # (m, k)
        A = (P - means[:, None]).transpose(1, 2, 0).reshape(n * k, m)
        t = (Y - Y.mean(axis=0)).ravel()
        v, _ = nnls(A, t - A @ lower, maxiter=50 * max(m, 10))
        coef = v + lower
        return coef, Y.mean(axis=0) - coef @ means

    def _fit_pool(self, P: np.ndarray, y: np.ndarray, lower: np.ndarray,
                  start: tuple[np.ndarray, np.ndarray] | None
                  ) -> tuple[np.ndarray, np.ndarray]:
        from scipy.optimize import minimize

        m, n, k = P.shape
        X = _log_ratios(P)  # (m, n * (k - 1))
        onehot = np.zeros((n, k))
        onehot[np.arange(n), y] = 1.0
        Y = onehot[:, 1:]
        l2 = self.l2

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:m], theta[m:]
            z = (w @ X).reshape(n, k - 1) + b
            top = np.maximum(z.max(axis=1), 0.0)
            ez = np.exp(z - top[:, None])
            total = np.exp(-top) + ez.sum(axis=1)
            lse = top + np.log(total)
            value = np.mean(lse) - np.sum(z * Y) / n + l2 * (w @ w)
            r = (ez / total[:, None] - Y) / n
            grad = np.concatenate([X @ r.ravel() + 2.0 * l2 * w, r.sum(axis=0)])
            return float(value), grad

        if start is None:
            prior = np.log((onehot.sum(axis=0) + 1.0) / (n + k))
            theta = np.concatenate([np.maximum(lower, 1.0 / m), prior[1:] - prior[0]])
        else:
            theta = np.concatenate([start[0], start[1][1:]])
        bounds = [(lo, None) for lo in lower] + [(None, None)] * (k - 1)
        # Stop on the projected gradient only: L-BFGS-B's default relative-reduction test
        # stopped it early on correlated members (a reversed member kept 0.0016).
        result = minimize(loss, theta, jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": 1000, "ftol": 0.0, "gtol": 1e-6})
        self.iterations += int(result.nit)
        return np.asarray(result.x[:m]), np.concatenate([[0.0], result.x[m:]])

    def restrict(self, kept: np.ndarray) -> None:
        """Keep the coefficients of members ``kept`` (positions) only."""
        self.coef = self.coef[kept]

    def predict(self, P: np.ndarray, table: Any = None) -> np.ndarray:
        P = np.asarray(P, dtype=np.float64)
        if self.task == "regression":
            return np.tensordot(self.coef, P, axes=1) + self.intercept
        m, n, k = P.shape
        z = np.zeros((n, k))
        z[:, 1:] = (self.coef @ _log_ratios(P)).reshape(n, k - 1)
        z += self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def shares(self) -> np.ndarray:
        return self.coef / self.coef.sum()

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind,
                "coefficients": {str(t): float(w) for t, w in zip(self.trials, self.coef)},
                "intercept": [float(b) for b in self.intercept]}


def _log_ratios(P: np.ndarray) -> np.ndarray:
    """``log p_c - log p_0`` for classes ``c >= 1``, ``(n_members, n_rows * (k - 1))``:
    the softmax of a pool only depends on these (class 0's logit is fixed at 0)."""
    m, n, k = P.shape
    L = np.log(np.clip(P, EPS, None))
    return (L[:, :, 1:] - L[:, :, :1]).reshape(m, n * (k - 1))


# ----------------------------------------------------------------- gradient boosting

class Boosted(Level2):
    """A small histogram gradient boosting level-2 model, non-decreasing in every member's
    prediction.

    One model per predicted column: P(class 1) for binary, one-vs-rest P(class c) for each
    class of a multiclass problem (normalised to sum to 1), each output of a regression.
    The model of column ``c`` sees every member's column ``c`` (and, with ``passthrough``,
    the table's columns after them), and is constrained to be non-decreasing in each
    member's prediction (``monotonic_cst``; the table's columns are free). The constraint
    is a sound prior (a member predicting a class more likely never makes the stack
    predict it less likely) and it matters: the out-of-fold predictions of the rows a
    level-2 model is fitted on were made by models that saw the labels of the outer fold
    it is scored on, and an unconstrained gbm learned to exploit that (on permuted labels
    its nested outer AUC averaged 0.54, 0.58 with passthrough, over 16 seeds; 0.50 with the
    constraint).
    """

    kind = "gbm"

    def __init__(self, task: str, n_outputs: int, random_state: int,
                 passthrough: bool = False) -> None:
        self.task = task
        self.n_outputs = n_outputs
        self.random_state = random_state
        self.needs_table = passthrough
        self.encoder: TableCodes | None = None
        self.models: list[Any] = []  # one per column of ``columns``: a model or a constant

    @property
    def columns(self) -> list[int]:
        """The predicted columns a model is fitted for."""
        return [1] if self.task == "binary" else list(range(self.n_outputs))

    def _features(self, P: np.ndarray, column: int, codes: np.ndarray | None) -> np.ndarray:
        cols = np.asarray(P[:, :, column], dtype=np.float64).T
        return cols if codes is None else np.hstack([cols, codes])

    def _estimator(self, y: np.ndarray, n_members: int) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        n = len(y)
        if self.task == "regression":
            cls, early = HistGradientBoostingRegressor, n >= 50
        else:
            cls, early = HistGradientBoostingClassifier, n >= 50 and min(
                int(y.sum()), n - int(y.sum())) >= 2
        n_table = 0 if self.encoder is None else len(self.encoder.columns)
        categorical = [False] * n_members + ([] if self.encoder is None
                                             else list(self.encoder.categorical))
        return cls(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                   early_stopping=bool(early), validation_fraction=0.1, n_iter_no_change=10,
                   monotonic_cst=[1] * n_members + [0] * n_table,
                   categorical_features=categorical if any(categorical) else None,
                   random_state=self.random_state)

    def fit(self, P: np.ndarray, y: np.ndarray, table: Any = None) -> Boosted:
        if self.needs_table:
            self.encoder = TableCodes().fit(table)
        codes = None if self.encoder is None else self.encoder.transform(table)
        if self.task == "regression":
            Y = np.asarray(y, dtype=np.float64).reshape(P.shape[1], -1)
        else:  # one 0/1 column per class
            Y = (np.asarray(y, dtype=np.int64)[:, None] == np.arange(self.n_outputs))
            Y = Y.astype(np.int64)
        self.models = []
        for c in self.columns:
            target = Y[:, c]
            if self.task != "regression" and target.min() == target.max():
                self.models.append(float(target[0]))  # one label only: a constant
                continue
            F = self._features(P, c, codes)
            self.models.append(self._estimator(target, P.shape[0]).fit(F, target))
        return self

    def predict(self, P: np.ndarray, table: Any = None) -> np.ndarray:
        codes = None if self.encoder is None else self.encoder.transform(table)
        n = P.shape[1]
        out = np.zeros((n, len(self.columns)))
        for j, (c, model) in enumerate(zip(self.columns, self.models)):
            if isinstance(model, float):
                out[:, j] = model
            elif self.task == "regression":
                out[:, j] = model.predict(self._features(P, c, codes))
            else:
                out[:, j] = model.predict_proba(self._features(P, c, codes))[:, 1]
        if self.task == "regression":
            return out
        if self.task == "binary":
            return np.column_stack([1.0 - out[:, 0], out[:, 0]])
        total = out.sum(axis=1, keepdims=True)
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / out.shape[1])

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind,
                "iterations": [0 if isinstance(m, float) else int(m.n_iter_)
                               for m in self.models],
                "table_columns": 0 if self.encoder is None else len(self.encoder.columns)}


class TableCodes:
    """The table's columns as numbers for gradient boosting: numeric and boolean columns
    as floats, categorical ones (text, category, object) as codes ``0..k-1`` by falling
    frequency (missing and unseen values as NaN); a categorical column with more than
    ``MAX_CATEGORIES`` values, or none, is left out."""

    def fit(self, table: pd.DataFrame) -> TableCodes:
        self.columns: list[str] = []
        self.categorical: list[bool] = []
        self.codes: dict[str, dict[str, int]] = {}
        for name in table.columns:
            col = table[name]
            if _is_number(col):
                self.columns.append(name)
                self.categorical.append(False)
                continue
            counts = col[col.notna()].astype(str).value_counts()
            if not 0 < len(counts) <= MAX_CATEGORIES:
                continue
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.codes[name] = {value: i for i, (value, _) in enumerate(ranked)}
            self.columns.append(name)
            self.categorical.append(True)
        return self

    def transform(self, table: pd.DataFrame) -> np.ndarray:
        out = np.full((len(table), len(self.columns)), np.nan)
        for j, name in enumerate(self.columns):
            col = table[name]
            if name in self.codes:
                mapped = col.astype(str).map(self.codes[name]).where(col.notna())
                out[:, j] = mapped.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan)
        return out


def _is_number(col: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col)


# ----------------------------------------------------------------- the fusion

class StackedFusion(Fusion):
    """A fitted stack: the level-2 models (each reading its own members' predictions, and
    the table when it passes it through) and, with two levels, the linear level-3 model
    combining their predictions."""

    def __init__(self, task: str, layer: list[Level2], top: LinearPool | None,
                 details: dict[str, Any]) -> None:
        self.task = task
        self.layer = list(layer)
        self.top = top
        self.details = dict(details)
        uses: list[int] = []
        for model in self.layer:
            uses += [t for t in model.trials if t not in uses]
        self.uses = tuple(uses)
        self.needs_table = any(model.needs_table for model in self.layer)

    def predict(self, outputs: dict[int, np.ndarray], X: Any = None) -> np.ndarray:
        parts = [model.predict(np.stack([np.asarray(outputs[t], dtype=np.float64)
                                         for t in model.trials]), X)
                 for model in self.layer]
        if self.top is None:
            return parts[0]
        return self.top.predict(np.stack(parts))

    @property
    def weights(self) -> dict[int, float]:
        """Each member's share: its level-2 share (normalised coefficient of a linear
        model, an equal share of a gbm's inputs), times its model's normalised level-3
        coefficient with two levels."""
        upper = [1.0] if self.top is None else list(self.top.shares())
        out: dict[int, float] = {}
        for weight, model in zip(upper, self.layer):
            for t, share in zip(model.trials, model.shares()):
                out[t] = out.get(t, 0.0) + float(weight * share)
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.details, "members": len(self.uses)}
        if self.top is None:
            out.update({k: v for k, v in self.layer[0].summary().items() if k != "kind"})
        else:
            out["layer"] = [{**model.summary(), "weight": float(w)}
                            for model, w in zip(self.layer, self.top.coef)]
            out["level3_intercept"] = [float(b) for b in self.top.intercept]
        return out

    def __repr__(self) -> str:
        return (f"StackedFusion({self.details.get('level2')!r}, "
                f"levels={self.details.get('levels')}, members={len(self.uses)})")
