"""``prune``: compression, the best blend within a budget of members, bytes or latency.

The start is the Caruana blend of the candidates that could fit the budget on their own.
``method="greedy"`` then removes members one at a time down to a single one: each step
weighs the removals (Caruana re-run on the members left) and takes the one that loses the
least score per unit of budget saved (a removal that improves the score is taken first).
With many members only the few removals that look best with the weights left as they are
get the Caruana re-run (``REFITS_PER_STEP``); after the budget is met, only one.
``method="drop_worst"`` (AutoGluon's rule) removes the member with the worst score of its
own and refits the weights, until the budget is met. Every blend on the way is recorded;
the fusion is the best-scoring one that meets the budget, and its details keep the
Pareto front of the path (score against latency, bytes and members).

A blend's cost is the sum of its members' costs: ``view.model_bytes`` (the pickled fold
models) and ``view.latency`` (seconds per row at batch sizes 1 and 10,000). Latency is
measured only for members of the Caruana blends tried, never for every candidate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from autofuse.combiners._base import Combiner
from autofuse.combiners._caruana import Caruana
from autofuse.combiners._fusion import Fusion, WeightedFusion
from autofuse.combiners._view import LATENCY_BATCHES, LibraryView

METHODS = ("greedy", "drop_worst")
#: Caruana refits while looking for a start blend whose members all fit the budget; after
#: that the start is the blend of the candidates measured and found within it.
MAX_START_REFITS = 10
#: Candidates measured besides, fastest by the search's timings first, when the refits
#: leave members too slow.
EXTRA_MEASURED = 8
#: Removals a greedy step refits with Caruana while the budget is broken (ranked first by
#: the blend left with renormalised weights); every removal when there are no more members.
REFITS_PER_STEP = 3


@dataclass(frozen=True)
class Budget:
    """The limits a blend must meet (None: no limit of that kind)."""

    max_members: int | None = None
    max_bytes: float | None = None
    infer_limit: float | None = None  # seconds per row at ``batch``
    batch: int = 10_000

    def limits(self) -> dict[str, float]:
        """Each limit given, by cost name (``members``, ``bytes``, ``latency``)."""
        given = {"members": self.max_members, "bytes": self.max_bytes,
                 "latency": self.infer_limit}
        return {k: float(v) for k, v in given.items() if v is not None}

    def exceeded(self, costs: dict[str, float]) -> list[str]:
        """The names of the limits that ``costs`` break."""
        return [k for k, limit in self.limits().items() if costs[k] > limit]

    def as_dict(self) -> dict[str, Any]:
        """The budget as given, JSON-able (the batch only with ``infer_limit``)."""
        out: dict[str, Any] = {}
        for key, kind in (("max_members", int), ("max_bytes", float), ("infer_limit", float)):
            if getattr(self, key) is not None:
                out[key] = kind(getattr(self, key))
        if self.infer_limit is not None:
            out["infer_batch_size"] = self.batch
        return out


@dataclass(frozen=True)
class Blend:
    """One blend on the path: its weights, score on the view's rows and summed costs.
    Latency is NaN when it was not measured (no latency limit and no time left)."""

    weights: dict[int, float]
    members: tuple[int, ...]  # as ``WeightedFusion.uses`` orders them
    score: float
    latency: dict[int, float]  # seconds per row, by batch size
    bytes: float

    def costs(self, batch: int) -> dict[str, float]:
        """What the budget limits: member count, bytes, latency at ``batch``."""
        return {"members": float(len(self.members)), "bytes": self.bytes,
                "latency": self.latency[batch]}

    def point(self) -> dict[str, Any]:
        """The blend as a JSON-able point of the front."""
        def value(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return {"members": list(self.members), "score": value(self.score),
                "latency_1": value(self.latency[1]),
                "latency_10000": value(self.latency[10_000]), "bytes": int(round(self.bytes))}


class _Pruning:
    """One ``fuse`` call's work: the view, the budget, blends made so far and the latencies
    measured (kept only for the call; the view caches measurements for the run)."""

    def __init__(self, view: LibraryView, budget: Budget, ensemble_size: int) -> None:
        self.view = view
        self.budget = budget
        self.caruana = Caruana(ensemble_size=ensemble_size)
        self.measure = True  # False: no latency limit, and no time left to measure it
        self.latencies: dict[int, dict[int, float]] = {}
        self.fit_seconds = 0.0  # the longest Caruana fit so far
        self._blends: dict[frozenset[int], Blend] = {}

    # ------------------------------------------------------------- costs
    def latency(self, trial: int) -> dict[int, float]:
        if trial not in self.latencies:
            if not self.measure:
                return {b: math.nan for b in LATENCY_BATCHES}
            self.latencies[trial] = self.view.latency(trial)
        return self.latencies[trial]

    def nbytes(self, trial: int) -> float:
        return float(self.view.model_bytes[self.view.index(trial)])

    def fits_alone(self, trial: int) -> bool:
        """Whether ``trial`` alone meets the bytes and latency limits (measuring it)."""
        b = self.budget
        if b.max_bytes is not None and self.nbytes(trial) > b.max_bytes:
            return False
        return b.infer_limit is None or self.latency(trial)[b.batch] <= b.infer_limit

    def meets(self, blend: Blend) -> bool:
        return not self.budget.exceeded(blend.costs(self.budget.batch))

    # ------------------------------------------------------------- blends
    def blend(self, trials: list[int] | tuple[int, ...]) -> Blend:
        """The Caruana blend of ``trials`` (its members: those at non-zero weight)."""
        key = frozenset(trials)
        if key not in self._blends:
            view = self.view
            positions = sorted(view.index(t) for t in trials)
            if len(positions) == 1:
                weights = {view.trials[positions[0]]: 1.0}
            else:
                start = time.perf_counter()
                fusion = self.caruana.fuse(view.restrict(positions))
                self.fit_seconds = max(self.fit_seconds, time.perf_counter() - start)
                weights = fusion.weights
            self._blends[key] = self._make(weights)
        return self._blends[key]

    def renormalised(self, blend: Blend, trials: list[int]) -> Blend:
        """``blend`` without the members not in ``trials``, its weights rescaled (no
        refit: a cheap guess at the Caruana blend of ``trials``)."""
        total = sum(blend.weights[t] for t in trials)
        return self._make({t: blend.weights[t] / total for t in trials})

    def _make(self, weights: dict[int, float]) -> Blend:
        view = self.view
        members = WeightedFusion(weights).uses
        if len(members) == 1:
            score = float(view.scores[view.index(members[0])])
        else:
            prediction = sum(weights[t] * view.predictions[view.index(t)].astype(np.float64)
                             for t in members)
            score = float(view.metric.score(prediction, view.target))
        latency = {b: float(sum(self.latency(t)[b] for t in members))
                   for b in LATENCY_BATCHES}
        return Blend(dict(weights), members, score, latency,
                     float(sum(self.nbytes(t) for t in members)))

    def loss(self, before: Blend, after: Blend) -> float:
        """Score lost going from ``before`` to ``after`` (negative: a gain; NaN: inf)."""
        sign = 1.0 if self.view.metric.greater_is_better else -1.0
        lost = sign * (before.score - after.score)
        return math.inf if math.isnan(lost) else lost

    def saved(self, before: Blend, after: Blend) -> float:
        """Budget saved going from ``before`` to ``after``. While limits are broken: for
        each, the cost cut up to what the limit still needs, as a share of that need (a cut
        beyond it is worth nothing, so a member barely over the need is not dropped for one
        far over it). Once every limit is met: the cost cut as a share of each limit."""
        batch = self.budget.batch
        a, b = before.costs(batch), after.costs(batch)
        limits = self.budget.limits()
        broken = self.budget.exceeded(a)
        if broken:
            return float(sum(min(np.nan_to_num(a[k] - b[k]), a[k] - limits[k])
                             / (a[k] - limits[k]) for k in broken))
        return float(sum(np.nan_to_num(a[k] - b[k]) / limits[k] for k in limits))


# ----------------------------------------------------------------- the start
def start_blend(work: _Pruning) -> Blend:
    """The Caruana blend of candidates that fit the budget alone. Candidates too big are
    left out at once; members measured too slow are left out and Caruana refitted (at
    most ``MAX_START_REFITS`` times, then only candidates measured within it are used).
    ``EXTRA_MEASURED`` more candidates, the fastest by the search's timings, are measured
    and added when they fit. Raises ValueError, naming the fastest and smallest candidate,
    when none fits."""
    view, budget = work.view, work.budget
    allowed = [t for t in view.trials
               if budget.max_bytes is None or work.nbytes(t) <= budget.max_bytes]
    for _ in range(MAX_START_REFITS + 1):
        if not allowed:
            break
        blend = work.blend(allowed)
        too_slow = [t for t in blend.members if not work.fits_alone(t)]
        if not too_slow:
            return blend
        allowed = [t for t in allowed if t not in too_slow]
        if view.time_left() <= 0:
            break
    known = [t for t in allowed if t in work.latencies and work.fits_alone(t)]
    # The search's own timings point at the likeliest fast candidates not measured yet:
    # measure a few more, so the blend is not left with the few the refits happened on.
    unmeasured = sorted((t for t in allowed if t not in work.latencies),
                        key=lambda t: (view.predict_seconds[view.index(t)], t))
    for t in unmeasured[:EXTRA_MEASURED]:
        if view.time_left() <= 0:
            break
        if work.fits_alone(t):
            known.append(t)
    if not known:
        raise ValueError(impossible(work, late=view.time_left() <= 0))
    return work.blend(known)


def impossible(work: _Pruning, late: bool = False) -> str:
    """Why no blend meets the budget: the fastest and the smallest single candidate
    known, with their figures and the limits (``late``: the deadline stopped the
    measuring)."""
    view, budget = work.view, work.budget
    parts = []
    if budget.infer_limit is not None and work.latencies:
        fastest = min(work.latencies, key=lambda t: (work.latencies[t][budget.batch], t))
        parts.append(
            f"the fastest blend possible is trial {fastest} ({view.learners[view.index(fastest)]})"
            f" alone at {work.latencies[fastest][budget.batch]:.3g} s/row at batch "
            f"{budget.batch} (infer_limit {budget.infer_limit:.3g} s/row; fastest of the "
            f"{len(work.latencies)} candidates measured)")
    if budget.max_bytes is not None:
        smallest = min(view.trials, key=lambda t: (work.nbytes(t), t))
        parts.append(f"the smallest blend possible is trial {smallest} alone at "
                     f"{work.nbytes(smallest):.4g} bytes (max_bytes {budget.max_bytes:.4g})")
    if late:
        parts.append("the deadline passed before more candidates could be measured")
    return (f"prune: no blend meets the budget {budget.as_dict()}: " + "; ".join(parts)
            + ". The budget is not relaxed: raise it, or leave out the slow or big learners.")


# ----------------------------------------------------------------- the paths
def greedy_path(work: _Pruning, start: Blend) -> tuple[list[Blend], bool]:
    """Backward elimination from ``start`` down to one member; (the path, whether the
    deadline cut it short)."""
    path, current = [start], start
    while len(current.members) > 1:
        if work.view.time_left() < work.fit_seconds * refits(work, current):
            return path, True
        current = best_removal(work, current)
        path.append(current)
    return path, False


def refits(work: _Pruning, current: Blend) -> int:
    """Removals a step of ``current`` refits with Caruana: ``REFITS_PER_STEP`` while the
    budget is broken, one once it is met (the rest of the path only draws the front)."""
    wanted = 1 if work.meets(current) else REFITS_PER_STEP
    return min(wanted, len(current.members))


def best_removal(work: _Pruning, current: Blend) -> Blend:
    """The blend after the removal that loses least score per unit of budget saved (see
    ``rank``). With more members than ``refits``, the removals are first ranked by the
    blend left with its weights renormalised (one score each), and only the best few are
    refitted with Caruana and ranked again."""
    def without(trial: int) -> list[int]:
        return [t for t in current.members if t != trial]

    members = sorted(current.members)
    n = refits(work, current)
    if len(members) > n:
        members = sorted(members, key=lambda m: rank(
            work, current, work.renormalised(current, without(m)), m))[:n]
    best = min(members, key=lambda m: rank(work, current, work.blend(without(m)), m))
    return work.blend(without(best))


def rank(work: _Pruning, before: Blend, after: Blend, trial: int
         ) -> tuple[bool, float, float, int]:
    """How good removing ``trial`` (``before`` -> ``after``) is, lowest best: a removal
    that gains score comes first (the biggest gain, then the larger saving); then the
    least score lost per unit of budget saved; ties go to the lower trial."""
    loss, saved = work.loss(before, after), work.saved(before, after)
    if loss <= 0:
        return False, loss, -saved, trial
    return True, (loss / saved if saved > 0 else math.inf), loss, trial


def drop_worst_path(work: _Pruning, start: Blend) -> tuple[list[Blend], bool]:
    """AutoGluon's rule: drop the member with the worst score of its own and refit, until
    the budget is met; (the path, whether the deadline cut it short)."""
    view = work.view
    standing = {int(view.trials[i]): r for r, i in enumerate(view.order())}
    path, current = [start], start
    while not work.meets(current):
        if view.time_left() < work.fit_seconds:
            return path, True
        worst = max(current.members, key=standing.__getitem__)
        current = work.blend([t for t in current.members if t != worst])
        path.append(current)
    return path, False


def choose(work: _Pruning, path: list[Blend]) -> Blend | None:
    """The best-scoring blend of ``path`` that meets the budget (ties: the later, smaller
    one), or None."""
    chosen = None
    for blend in path:
        if work.meets(blend) and not math.isnan(blend.score) and (
                chosen is None or not work.view.metric.better(chosen.score, blend.score)):
            chosen = blend
    return chosen


def front(path: list[Blend], greater_is_better: bool, batch: int) -> list[Blend]:
    """The blends no other blend of ``path`` dominates in score, latency at ``batch``,
    bytes and member count (in path order)."""
    sign = 1.0 if greater_is_better else -1.0

    def point(b: Blend) -> np.ndarray:
        costs = b.costs(batch)
        return np.nan_to_num([-sign * b.score, costs["latency"], costs["bytes"],
                              costs["members"]], nan=0.0)

    points = [point(b) for b in path]
    return [b for b, p in zip(path, points)
            if not any(np.all(q <= p) and np.any(q < p) for q in points)]


# ----------------------------------------------------------------- the combiner
class Prune(Combiner):
    """``prune``: the best blend within a budget (compression of the Caruana blend).

    Parameters
    ----------
    max_members : int, optional
        Most members the blend may have.
    max_bytes : float, optional
        Most bytes of the members' pickled fold models, summed (``view.model_bytes``).
    infer_limit : float, optional
        Most seconds per row the blend may take to predict: its members' measured
        latencies at ``infer_batch_size`` (``view.latency``), summed.
    infer_batch_size : {1, 10000}, default=10000
        The batch size whose latency ``infer_limit`` limits.
    method : {"greedy", "drop_worst"}, default="greedy"
        Backward elimination by score lost per budget saved, or AutoGluon's rule (drop
        the member with the worst score of its own until the budget is met).
    ensemble_size : int, default=50
        Rounds of every Caruana selection.

    At least one of ``max_members``, ``max_bytes``, ``infer_limit`` must be given; all
    those given must be met. When no blend can meet them, ``fuse`` raises ValueError
    naming the fastest (smallest) blend possible: the budget is never relaxed.
    """

    def __init__(self, max_members: int | None = None, max_bytes: float | None = None,
                 infer_limit: float | None = None, infer_batch_size: int = 10_000,
                 method: str = "greedy", ensemble_size: int = 50) -> None:
        _check_count("max_members", max_members, allow_none=True)
        _check_positive("max_bytes", max_bytes)
        _check_positive("infer_limit", infer_limit)
        if isinstance(infer_batch_size, bool) or infer_batch_size not in LATENCY_BATCHES:
            raise ValueError(f"prune: infer_batch_size must be one of {LATENCY_BATCHES} (the "
                             f"batch sizes latency is measured at), got {infer_batch_size!r}")
        if method not in METHODS:
            raise ValueError(f"prune: method must be one of {METHODS}, got {method!r}")
        _check_count("ensemble_size", ensemble_size, allow_none=False)
        if max_members is None and max_bytes is None and infer_limit is None:
            raise ValueError("prune needs a budget: give max_members, max_bytes or "
                             "infer_limit (or several)")
        self.max_members = max_members
        self.max_bytes = max_bytes
        self.infer_limit = infer_limit
        self.infer_batch_size = infer_batch_size
        self.method = method
        self.ensemble_size = ensemble_size

    @property
    def budget(self) -> Budget:
        return Budget(self.max_members, self.max_bytes, self.infer_limit,
                      int(self.infer_batch_size))

    def fuse(self, view: LibraryView) -> Fusion:
        work = _Pruning(view, self.budget, self.ensemble_size)
        if self.infer_limit is None and view.time_left() <= 0:
            work.measure = False
        start = start_blend(work)
        walk = greedy_path if self.method == "greedy" else drop_worst_path
        path, cut = walk(work, start)
        chosen = choose(work, path)
        if chosen is None:  # cut short by the deadline: the best member alone fits
            chosen = best_single(work, path[-1])
            path.append(chosen)
        return WeightedFusion(chosen.weights, self._details(work, path, chosen, start, cut))

    def _details(self, work: _Pruning, path: list[Blend], chosen: Blend, start: Blend,
                 cut: bool) -> dict[str, Any]:
        details: dict[str, Any] = {
            "method": self.method, "budget": self.budget.as_dict(), **chosen.point(),
            "caruana_members": len(start.members), "caruana_score": start.point()["score"],
            "front": [b.point() for b in front(path, work.view.metric.greater_is_better,
                                               work.budget.batch)]}
        del details["members"]
        if cut:
            details["stopped"] = "deadline"
        return details


def best_single(work: _Pruning, blend: Blend) -> Blend:
    """The best-scoring member of ``blend`` alone (every start member fits alone)."""
    view = work.view
    sign = -1.0 if view.metric.greater_is_better else 1.0
    trial = min(blend.members, key=lambda t: (sign * view.scores[view.index(t)], t))
    return work.blend([trial])


def _check_count(name: str, value: Any, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"prune: {name} must be a positive integer, got {value!r}")


def _check_positive(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(value) and value > 0):
        raise ValueError(f"prune: {name} must be a positive number, got {value!r}")
