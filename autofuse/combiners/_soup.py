"""``soup``: one model whose parameters are the average of several models' (Wortsman et
al. 2022, "Model soups").

Averaging parameters only works for models that share an architecture and a starting
point. Two families of the library qualify:

* **linear** models (``linear``; for regression also ``elastic_net``): within one fold
  every trial's pipeline prepares the columns identically (it is fitted on the same rows),
  so averaging coefficients is exactly averaging logits (or predictions);
* **mlp_soup**: within each fold its trials fine-tune copies of one shared base network
  (``autofuse.learners._soup_mlp``).

The soup is built fold by fold, so its score is honest: fold ``k``'s soup averages the
ingredients' fold-``k`` models and predicts fold ``k``'s rows, which none of them saw.
``greedy`` (the default): ingredients in decreasing order of out-of-fold score, each kept
only if the soup's out-of-fold score does not drop; ``uniform``: every ingredient of the
family. The outer score repeats the greedy choice without each outer fold's rows and
scores that soup on them. The fused model keeps one soup per fold and averages them, as a
member averages its fold models: one ingredient's cost to predict. ``merge=True`` (linear
soups) merges the fold soups into one model whose logits are their mean, exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autofuse.combiners._averaging import average_models, compatible, merge_folds, soup_family
from autofuse.combiners._base import CrossFitted
from autofuse.combiners._nested import outer_folds
from autofuse.combiners._own_model import OwnModelFusion
from autofuse.combiners._view import LibraryView
from autofuse.learners import SOUP_LEARNERS

METHODS = ("greedy", "uniform")
#: Rows of the table on which ingredients' preprocessing is compared.
PROBE_ROWS = 256


class Soup(CrossFitted):
    """Average the parameters of compatible models of the library.

    Parameters
    ----------
    method : "greedy" or "uniform".
    merge : merge the fold soups into one model (linear soups only).
    max_ingredients : most ingredients considered per family (the best by out-of-fold
        score).
    """

    #: The library view includes the best trials of these learners, even past the 100 best.
    wants_learners = SOUP_LEARNERS

    def __init__(self, method: str = "greedy", merge: bool = False,
                 max_ingredients: int = 25) -> None:
        if method not in METHODS:
            raise ValueError(f"soup: method must be 'greedy' or 'uniform', got {method!r}")
        if not isinstance(merge, (bool, np.bool_)):
            raise ValueError(f"soup: merge must be True or False, got {merge!r}")
        if isinstance(max_ingredients, bool) or not isinstance(
                max_ingredients, (int, np.integer)) or max_ingredients < 2:
            raise ValueError(f"soup: max_ingredients must be an integer >= 2, got "
                             f"{max_ingredients!r}")
        self.method = method
        self.merge = bool(merge)
        self.max_ingredients = int(max_ingredients)

    def cross_fit(self, view: LibraryView) -> tuple[OwnModelFusion, np.ndarray]:
        if not view.has_models or view._source.data is None:
            raise RuntimeError("soup needs the members' fold models and the training table")
        kitchen = _Kitchen(view)
        families = kitchen.families(self.max_ingredients)
        if not families:
            there = sorted(set(view.learners))
            raise ValueError(
                "soup: no compatible ingredients: a soup averages the parameters of at "
                "least two models of one family, and the learners that make them are "
                f"{', '.join(SOUP_LEARNERS)} (elastic_net for regression); this library "
                f"has {', '.join(there)}. Search one of them, e.g. "
                "fit(..., learners=[..., 'mlp_soup'])")
        everything = np.ones(view.n_rows, dtype=bool)
        # The family whose soup scores best out of fold.
        best = None
        for family, ingredients in families.items():
            chosen = self._choose(kitchen, ingredients, everything)
            score = kitchen.score(chosen, everything)
            if best is None or view.metric.better(score, best[2]):
                best = (family, ingredients, score, chosen)
        family, ingredients, score, chosen = best
        held_out = np.full((view.n_rows, view.n_outputs), np.nan)
        for _, valid in outer_folds(view):
            rest = np.ones(view.n_rows, dtype=bool)
            rest[valid] = False
            picked = self._choose(kitchen, ingredients, rest)
            held_out[valid] = kitchen.predict(picked, valid)
        fold_soups = [kitchen.soup(chosen, k) for k in kitchen.folds_used()]
        solo = {i: kitchen.score([i], everything) for i in ingredients}
        sign = -1.0 if view.metric.greater_is_better else 1.0
        top = min(ingredients, key=lambda i: (sign * solo[i], i))
        details = {"family": family, "method": self.method,
                   "ingredients": [int(view.trials[i]) for i in chosen],
                   "candidates": len(ingredients),
                   "best_ingredient": {"trial": int(view.trials[top]), "score": solo[top]},
                   "soup_score": float(score), "merged": False}
        if self.merge:
            if not family.startswith("linear"):
                raise ValueError(f"soup: merge=True needs a linear soup; this one is "
                                 f"{family!r} (its fold soups are kept, one per fold)")
            models = [merge_folds(fold_soups)]
            details["merged"] = True
        else:
            models = fold_soups
        fusion = OwnModelFusion(models, view._source.data, details, "the soup")
        fusion.measure(view)
        return fusion, held_out

    def _choose(self, kitchen: _Kitchen, ingredients: list[int], rows: np.ndarray
                ) -> list[int]:
        """The ingredients of the soup chosen on ``rows`` (a mask of the view's rows)."""
        if self.method == "uniform":
            return list(ingredients)
        metric = kitchen.view.metric
        scores = {i: kitchen.score([i], rows) for i in ingredients}
        sign = -1.0 if metric.greater_is_better else 1.0
        order = sorted(ingredients, key=lambda i: (sign * scores[i], i))
        soup, current = [order[0]], scores[order[0]]
        for i in order[1:]:
            score = kitchen.score(soup + [i], rows)
            if not metric.better(current, score):  # kept unless the score drops
                soup, current = soup + [i], score
        return soup


class _Kitchen:
    """Fold soups of a view's candidates and their out-of-fold predictions, cached."""

    def __init__(self, view: LibraryView) -> None:
        self.view = view
        self.fold_of = view.model_folds()
        # Each fold model's rows: positions of the view's rows it did not see.
        self.rows_of = {int(k): np.flatnonzero(self.fold_of == k)
                        for k in np.unique(self.fold_of) if k >= 0}
        self.table = view.frame()
        self._models: dict[int, list[Any]] = {}
        self._soups: dict[tuple[frozenset[int], int], Any] = {}
        self._preds: dict[tuple[frozenset[int], int], np.ndarray] = {}

    def models(self, i: int) -> list[Any]:
        if i not in self._models:
            self._models[i] = self.view.models(self.view.trials[i])
        return self._models[i]

    def folds_used(self) -> list[int]:
        return sorted(self.rows_of)

    def families(self, most: int) -> dict[str, list[int]]:
        """Soup families among the candidates (positions, best first), each with the
        ingredients compatible with its best one in every fold; families of one dropped."""
        view = self.view
        probe = self.table.iloc[:PROBE_ROWS]
        found: dict[str, list[int]] = {}
        for i in view.order():
            i = int(i)
            if view.learners[i] not in SOUP_LEARNERS:
                continue
            models = self.models(i)
            family = soup_family(models[0])
            if family is None or len(found.get(family, [])) >= most:
                continue
            head = found.setdefault(family, [i])[0]
            if head != i and len(models) == len(self.models(head)) and all(
                    compatible([a, b], probe) for a, b in zip(self.models(head), models)):
                found[family].append(i)
        return {f: ings for f, ings in found.items() if len(ings) >= 2}

    def soup(self, ingredients: list[int], k: int) -> Any:
        key = (frozenset(ingredients), k)
        if key not in self._soups:
            self._soups[key] = average_models([self.models(i)[k] for i in ingredients])
        return self._soups[key]

    def predict(self, ingredients: list[int], rows: np.ndarray) -> np.ndarray:
        """Out-of-fold predictions of ``rows`` (positions): each by its fold's soup."""
        from autofuse._cv import _predict

        out = np.empty((len(rows), self.view.n_outputs))
        for k in np.unique(self.fold_of[rows]):
            key, mine = (frozenset(ingredients), int(k)), self.rows_of[int(k)]
            if key not in self._preds:
                self._preds[key] = _predict(self.soup(ingredients, int(k)),
                                            self.table.iloc[mine], self.view._source.data,
                                            "the soup")
            here = self.fold_of[rows] == k
            out[here] = self._preds[key][np.searchsorted(mine, rows[here])]
        return out

    def score(self, ingredients: list[int], rows: np.ndarray) -> float:
        """The metric of the soup's out-of-fold predictions on ``rows`` (a mask)."""
        positions = np.flatnonzero(rows)
        return float(self.view.metric.score(self.predict(ingredients, positions),
                                            self.view.target[positions]))
