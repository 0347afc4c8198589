"""The fusion step of a run: the candidates' view of the library, the chosen combiner (or
``auto``'s choice) fitted and scored honestly, and a fallback when a combiner fails."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from autofuse._library import KEEP_MODELS, KEEP_PER_LEARNER
from autofuse.combiners._auto import Auto
from autofuse.combiners._base import Combiner
from autofuse.combiners._nested import Assessment, assess
from autofuse.combiners._view import LibraryView, _Source, fold_positions

if TYPE_CHECKING:
    import pandas as pd

    from autofuse._library import ModelLibrary
    from autofuse._scoring import RunMetric

log = logging.getLogger("autofuse")

#: The combiners are given at most this many of the best finished trials (those that keep
#: their fold models in the library).
MAX_CANDIDATES = KEEP_MODELS
#: Below this many predictions (candidates x rows) combiners get one thread: OpenMP's
#: start-up and spin-waiting cost more than a second thread gives on small libraries
#: (Caruana on 8 candidates x 300 rows: 1 ms on one thread, up to 1 s on two threads of a
#: busy 2-core machine).
CELLS_PER_THREAD = 2_000_000


@dataclass
class FuseOutcome:
    """What the fusion step produced: the chosen assessment and every one tried."""

    chosen: Assessment
    tried: list[Assessment] = field(default_factory=list)
    note: str = ""  # set when the combiner asked for failed and another replaced it


def library_view(library: ModelLibrary, target: np.ndarray,
                 folds: list[tuple[np.ndarray, np.ndarray]], metric: RunMetric, *,
                 frame: pd.DataFrame | Callable[[], pd.DataFrame] | None, data: Any,
                 random_state: int | None, n_threads: int, deadline: float | None,
                 max_candidates: int = MAX_CANDIDATES, memory_limit: int | None = None,
                 n_workers: int = 1, extra_learners: Any = ()) -> LibraryView:
    """The view of the ``max_candidates`` best finished trials, and of the
    ``KEEP_PER_LEARNER`` best of each learner in ``extra_learners`` (a soup's ingredients),
    on the rows they all predicted out of fold (every row, but for a holdout split)."""
    entries = [e for e in library.entries.values() if e.has_models]
    if not entries:
        raise RuntimeError("the model library holds no finished trial with its fold models")
    sign = -1.0 if metric.greater_is_better else 1.0
    entries.sort(key=lambda e: (sign * e.score, e.trial))
    chosen = entries[:max_candidates]
    if extra_learners:
        extra = set(extra_learners)
        counts = {n: sum(e.learner == n for e in chosen) for n in extra}
        for e in entries[max_candidates:]:
            if e.learner in extra and counts[e.learner] < KEEP_PER_LEARNER:
                counts[e.learner] += 1
                chosen.append(e)
    covered = ~np.isnan(chosen[0].oof[:, 0])
    rows = np.flatnonzero(covered)
    n_workers = max(1, min(n_workers, n_threads))
    n_threads = max(1, min(n_threads, len(chosen) * len(rows) // CELLS_PER_THREAD))
    return LibraryView(
        predictions=np.stack([e.oof[rows] for e in chosen]),
        target=target[rows], folds=fold_positions(folds, rows, len(covered)),
        trials=tuple(e.trial for e in chosen), learners=tuple(e.learner for e in chosen),
        params=tuple(e.params for e in chosen),
        fit_seconds=np.array([e.fit_seconds for e in chosen], dtype=float),
        predict_seconds=np.array([e.predict_seconds for e in chosen], dtype=float),
        model_bytes=np.array([e.models_bytes for e in chosen], dtype=float),
        metric=metric, random_state=random_state, n_threads=n_threads, deadline=deadline,
        rows=rows, n_folds_fitted=len(folds),
        _source=_Source(frame, library.load_models, data, folds, memory_limit, n_workers))


def fuse_view(view: LibraryView, name: str, combiner: Combiner,
              fallback: Callable[[], tuple[str, Combiner]] | None = None) -> FuseOutcome:
    """Fit ``combiner`` on ``view`` with its in-sample and outer scores (``auto``: every
    combiner it compares, keeping the best outer score). If it fails, ``fallback()`` gives
    the combiner to use instead, and the note says why; without one the error is raised."""
    if isinstance(combiner, Auto):
        try:
            chosen, tried = combiner.assess_all(view)
            return FuseOutcome(chosen, tried)
        except RuntimeError as exc:
            if fallback is None:
                raise
            failure = str(exc)
            tried = []
    else:
        result = assess(name, combiner, view)
        if result.ok:
            return FuseOutcome(result, [result])
        if fallback is None and result.exception is not None:
            raise result.exception  # as the combiner raised it (prune's budget: ValueError)
        failure = result.error
        tried = [result]
    if fallback is None:
        raise RuntimeError(f"combiner {name!r} failed: {failure}")
    other_name, other = fallback()
    note = f"combiner {name!r} failed ({failure}); fell back to {other_name!r}"
    log.warning(note)
    result = assess(other_name, other, view)
    if not result.ok:
        raise RuntimeError(f"{note}, which failed too: {result.error}")
    result.reason = note
    return FuseOutcome(result, tried + [result], note)


def make_combiner(combiner: Any, options: Any, registry: dict[str, Any], metric: RunMetric,
                  random_state: int | None, n_threads: int) -> tuple[str, Combiner]:
    """The combiner asked for (a registered name or a ``CombinerSpec``) built with
    ``options``: (its name, the combiner). Bad names and options are ValueErrors that say
    what there is."""
    from autofuse.combiners._spec import CombinerSpec

    if options is not None and not isinstance(options, dict):
        raise ValueError(f"combiner_options must be a dict of option names to values, got "
                         f"{type(options).__name__}")
    if isinstance(combiner, CombinerSpec):
        spec = combiner
    elif isinstance(combiner, str) and combiner in registry:
        spec = registry[combiner]
    else:
        raise ValueError(f"unknown combiner {combiner!r}; available: "
                         f"{', '.join(sorted(registry))} (installed plugins add more: "
                         "autofuse plugins)")
    return spec.name, spec.make(metric, random_state, n_threads, options)
