"""Caruana's greedy ensemble selection: the loop, written once for every backend.

Each round adds, with replacement, the model whose addition gives the blend with the lowest
loss; the blend is the plain average of the members chosen so far. Options follow Caruana
et al. (2004): sorted initialisation (start from the ``init_size`` best single models) and
bagged selection (run the selection on ``n_bags`` random subsets of the models and average
the resulting weights). The selection is cut to its best-scoring prefix of rounds.

**Ties.** Losses within ``TIE_RTOL`` (relative) of the round's best count as tied, and the
lowest model index wins, so runs are deterministic and the compiled and NumPy backends make
the same choices even where their sums differ in the last bits. The best prefix is likewise
the shortest one within ``TIE_RTOL`` of the best loss.

Scoring the candidates is the kernel's job (``_kernels.Kernel`` compiled,
``_reference.ReferenceKernel`` in NumPy, ``_scorer.ScorerKernel`` for scikit-learn scorers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from autofuse._core._prepare import (
    ResolvedMetric,
    check_predictions,
    prepare,
    resolve_metric,
)

#: Relative tolerance under which two candidate losses count as a tie.
TIE_RTOL = 1e-12


@dataclass
class SelectionResult:
    """What one selection produced (all arrays index models by their position)."""

    weights: np.ndarray  # (n_models,) normalised weights, summing to 1
    counts: np.ndarray  # (n_models,) times each model was chosen in the kept rounds (all bags)
    indices: np.ndarray  # kept selection order, bag after bag
    trajectory: np.ndarray  # (n_bags, ensemble_size) metric value after every round
    n_rounds: np.ndarray  # (n_bags,) kept rounds per bag (the best prefix)
    bags: list[np.ndarray]  # the models each bag could choose from
    score: float  # metric value of the final blend
    metric: ResolvedMetric
    task: str
    backend: str


def pick(losses: np.ndarray) -> int:
    """Index of the best loss, ties (within TIE_RTOL) broken to the lowest index."""
    best = losses.min()
    return int(np.flatnonzero(losses <= best + TIE_RTOL * abs(best))[0])


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_options(ensemble_size: Any, init_size: Any, n_bags: Any, bag_fraction: Any
                  ) -> tuple[int, int, int]:
    """The selection's options checked (a ValueError naming a bad one): ``ensemble_size``,
    ``init_size`` and ``n_bags`` as ints."""
    ensemble_size = _check_int("ensemble_size", ensemble_size, 1)
    init_size = _check_int("init_size", init_size, 0)
    n_bags = _check_int("n_bags", n_bags, 1)
    if init_size > ensemble_size:
        raise ValueError(f"init_size ({init_size}) cannot exceed ensemble_size ({ensemble_size})")
    if not (isinstance(bag_fraction, (float, int)) and 0.0 < bag_fraction <= 1.0):
        raise ValueError(f"bag_fraction must be in (0, 1], got {bag_fraction!r}")
    return ensemble_size, init_size, n_bags


def _make_kernel(P: np.ndarray, prep: Any, metric: ResolvedMetric, backend: str, n_threads: int):
    if metric.scorer is not None:
        from autofuse._core._scorer import ScorerKernel

        return ScorerKernel(P, prep, metric.scorer)
    if backend == "cython":
        from autofuse._core._kernels import Kernel

        return Kernel(P, prep, n_threads)
    from autofuse._core._reference import ReferenceKernel

    return ReferenceKernel(P, prep)


def _greedy(kernel: Any, candidates: np.ndarray, rounds: int, init_size: int):
    """One greedy selection over ``candidates`` (sorted model indices)."""
    kernel.reset()
    order = np.empty(rounds, dtype=np.intp)
    losses = np.empty(rounds)
    r = 0
    if init_size:
        single = kernel.score(candidates)
        remaining = np.ones(candidates.size, dtype=bool)
        for r in range(min(init_size, candidates.size)):
            pool = np.flatnonzero(remaining)
            j = pool[pick(single[pool])]
            remaining[j] = False
            m = int(candidates[j])
            losses[r] = kernel.score(np.array([m]))[0]
            order[r] = m
            kernel.add(m)
        r += 1
    for r in range(r, rounds):
        scores = kernel.score(candidates)
        j = pick(scores)
        order[r] = candidates[j]
        losses[r] = scores[j]
        kernel.add(int(candidates[j]))
    return order, losses


def select(
    predictions: Any,
    y: Any,
    *,
    metric: Any,
    ensemble_size: int = 50,
    init_size: int = 0,
    n_bags: int = 1,
    bag_fraction: float = 0.5,
    random_state: Any = None,
    n_threads: int | None = None,
    sample_weight: Any = None,
    task: str | None = None,
    backend: str | None = None,
) -> SelectionResult:
    """Run greedy ensemble selection; see ``autofuse.combiners.CaruanaSelection``."""
    from autofuse._core import backend as active_backend

    resolved = resolve_metric(metric)
    ensemble_size, init_size, n_bags = check_options(ensemble_size, init_size, n_bags,
                                                     bag_fraction)
    if n_threads is None or n_threads == -1:
        n_threads = default_threads()
    n_threads = _check_int("n_threads", n_threads, 1)
    backend = backend or active_backend()
    if backend not in ("cython", "numpy"):
        raise ValueError(f"backend must be 'cython' or 'numpy', got {backend!r}")
    if backend == "cython" and active_backend() != "cython":
        raise RuntimeError("the compiled core is not available in this installation")

    P = check_predictions(predictions)
    n_models = P.shape[0]
    if init_size > n_models:
        raise ValueError(f"init_size ({init_size}) cannot exceed the number of models ({n_models})")
    prep = prepare(P, y, sample_weight, resolved, task)
    kernel = _make_kernel(P, prep, resolved, backend, n_threads)

    rng = check_random_state(random_state)
    bag_size = max(1, int(np.ceil(bag_fraction * n_models)))
    bags, kept, trajectories, n_rounds = [], [], [], []
    weights = np.zeros(n_models)
    for _ in range(n_bags):
        if n_bags == 1:
            bag = np.arange(n_models, dtype=np.intp)
        else:
            bag = np.sort(rng.choice(n_models, size=bag_size, replace=False)).astype(np.intp)
        order, losses = _greedy(kernel, bag, ensemble_size, init_size)
        best = pick(losses) + 1
        counts = np.bincount(order[:best], minlength=n_models)
        weights += counts / best
        bags.append(bag)
        kept.append(order[:best])
        trajectories.append([resolved.score(v) for v in losses])
        n_rounds.append(best)
    weights /= n_bags

    if n_bags == 1:
        score = trajectories[0][n_rounds[0] - 1]
    else:
        blend = np.tensordot(weights, P, axes=1)[None]
        final = _make_kernel(np.ascontiguousarray(blend), prep, resolved, backend, 1)
        score = resolved.score(float(final.score(np.array([0]))[0]))
    indices = np.concatenate(kept)
    return SelectionResult(
        weights=weights,
        counts=np.bincount(indices, minlength=n_models),
        indices=indices,
        trajectory=np.asarray(trajectories, dtype=float),
        n_rounds=np.asarray(n_rounds),
        bags=bags,
        score=float(score),
        metric=resolved,
        task=prep.task,
        backend="numpy" if resolved.scorer is not None else backend,
    )
