"""LibraryView: what a combiner sees of the model library.

A view holds the candidates' out-of-fold predictions on some rows, the target on those rows,
the folds (as positions in the view), each candidate's learner, parameters and costs, the
run's metric, seed, threads and deadline. On request it gives the training table's rows,
the candidates' fitted fold models and their measured prediction latency. ``subset`` makes
the view of a part of the rows: nested cross-validation fits a combiner on the view of k-1
folds and scores it on the held-out fold, so a combiner never knows whether it sees the
whole library or part of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from autofuse._scoring import RunMetric

#: Batch sizes at which ``LibraryView.latency`` measures a member's prediction time.
LATENCY_BATCHES = (1, 10_000)
#: A batch of one row is timed this many times (the median is kept).
LATENCY_REPEATS = 5


def latency_batches(table: pd.DataFrame) -> Iterator[tuple[int, pd.DataFrame, int]]:
    """For each of ``LATENCY_BATCHES``: (its size, that many rows drawn from ``table``
    with a fixed seed, how many times to time it: ``LATENCY_REPEATS`` for one row)."""
    rng = np.random.default_rng(0)
    for batch in LATENCY_BATCHES:
        yield (batch, table.iloc[rng.integers(0, len(table), size=batch)],
               LATENCY_REPEATS if batch == 1 else 1)


def median_seconds(call: Callable[[], Any], repeats: int) -> float:
    """The median wall time of ``call()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


class _Source:
    """Where the table and the fold models come from (shared by a view and its subsets;
    measured latencies are cached here, since they do not depend on the rows)."""

    def __init__(self, frame: Callable[[], pd.DataFrame] | pd.DataFrame | None = None,
                 models: Callable[[int], list[Any]] | None = None, data: Any = None,
                 folds: list[tuple[np.ndarray, np.ndarray]] | None = None,
                 memory_limit: int | None = None, n_workers: int = 1) -> None:
        self._frame = frame
        self._models = models
        self.data = data
        self.latencies: dict[int, dict[int, float]] = {}
        self.folds = folds  # the library's folds, as rows of the training table
        self.memory_limit = memory_limit  # bytes per fit run in a worker
        self.n_workers = max(1, int(n_workers))

    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            raise RuntimeError("this library view has no training table")
        if callable(self._frame):
            self._frame = self._frame()
        return self._frame

    def models(self, trial: int) -> list[Any]:
        if self._models is None:
            raise RuntimeError("this library view has no fitted models")
        return self._models(trial)


def fold_positions(folds: list[tuple[np.ndarray, np.ndarray]], positions: np.ndarray,
                   n_rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``folds`` (rows among ``n_rows``) restricted to the rows at sorted ``positions``,
    renumbered as positions in them; a fold left with no validation row is dropped."""
    where = np.full(n_rows, -1, dtype=np.int64)
    where[positions] = np.arange(len(positions))
    out = []
    for train, valid in folds:
        tr, va = where[train], where[valid]
        if (va >= 0).any():
            out.append((tr[tr >= 0], va[va >= 0]))
    return out


@dataclass
class LibraryView:
    """The candidates of a model library, as a combiner sees them.

    Attributes
    ----------
    predictions : (n_candidates, n_rows, n_outputs) float32 out-of-fold predictions (class
        probabilities in ``classes`` order, or values), best candidate first.
    target : (n_rows,) class codes ``0..n_classes-1``, or values.
    folds : (train, valid) positions of ``predictions``' rows: every row is in exactly one
        ``valid``; a candidate's prediction of a row comes from its model of that fold.
    trials, learners, params : each candidate's trial number, learner name, parameters.
    fit_seconds, predict_seconds, model_bytes : each candidate's costs in the search (fit
        and predict seconds summed over folds, size of its pickled fold models).
    metric : the run's ``autofuse.metrics.Metric``; ``random_state``; ``n_threads``.
    deadline : ``time.monotonic()`` value by which fusion must end, or None.
    rows : positions of the view's rows in the training table.
    n_folds_fitted : fold models per member (1 after a refit on all rows).
    library_rows : rows of the whole library view (a subset keeps its parent's number).
    """

    predictions: np.ndarray
    target: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    trials: tuple[int, ...]
    learners: tuple[str, ...]
    params: tuple[dict[str, Any], ...]
    fit_seconds: np.ndarray
    predict_seconds: np.ndarray
    model_bytes: np.ndarray
    metric: RunMetric
    random_state: int | None = None
    n_threads: int = 1
    deadline: float | None = None
    rows: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    n_folds_fitted: int = 0
    library_rows: int = 0
    _source: _Source = field(default_factory=_Source, repr=False)
    _scores: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.rows is None:
            self.rows = np.arange(self.predictions.shape[1])
        if not self.n_folds_fitted:
            self.n_folds_fitted = max(1, len(self.folds))
        if not self.library_rows:
            self.library_rows = self.n_rows

    # ------------------------------------------------------------- shape
    @property
    def task(self) -> str:
        return self.metric.task

    @property
    def n_candidates(self) -> int:
        return self.predictions.shape[0]

    @property
    def n_rows(self) -> int:
        return self.predictions.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.predictions.shape[2]

    @property
    def scores(self) -> np.ndarray:
        """Each candidate's metric on the view's rows."""
        if self._scores is None:
            self._scores = np.array([self.metric.score(p, self.target)
                                     for p in self.predictions])
        return self._scores

    def order(self) -> np.ndarray:
        """Candidate positions, best score on the view's rows first (ties: earlier first)."""
        sign = -1.0 if self.metric.greater_is_better else 1.0
        return np.lexsort((np.arange(self.n_candidates), sign * self.scores))

    def index(self, trial: int) -> int:
        """The position of ``trial`` among the candidates."""
        return self.trials.index(trial)

    def outputs(self, uses: tuple[int, ...] | list[int]) -> dict[int, np.ndarray]:
        """The candidates' out-of-fold predictions by trial, as ``Fusion.predict`` takes
        them: the fusion's prediction of the view's rows is honest for each base model."""
        return {t: self.predictions[self.index(t)] for t in uses}

    def time_left(self) -> float:
        return np.inf if self.deadline is None else self.deadline - time.monotonic()

    # ------------------------------------------------------------- on request
    def frame(self) -> pd.DataFrame:
        """The training table's rows of this view (as the learners saw them)."""
        return self._source.frame().iloc[self.rows]

    def models(self, trial: int) -> list[Any]:
        """Trial ``trial``'s fitted models (one per fold, or one refit on all rows). Fold
        ``k``'s model was fitted without the rows of fold ``k``."""
        return self._source.models(trial)

    def model_folds(self) -> np.ndarray:
        """For each of the view's rows, the library fold that held it out: fold model ``k``
        of a candidate (``models(trial)[k]``) was fitted without the rows of fold ``k``, so
        it predicts them (and rows made from them) out of fold."""
        folds = self._source.folds
        if folds is None:
            raise RuntimeError("this library view does not know its library's folds")
        n = max(int(np.max(v)) for _, v in folds) + 1 if folds else 0
        fold_of = np.full(max(n, int(self.rows.max()) + 1), -1, dtype=np.int64)
        for k, (_, valid) in enumerate(folds):
            fold_of[valid] = k
        return fold_of[self.rows]

    def fit(self, jobs: list[dict[str, Any]]) -> list[Any]:
        """Fit models in the run's killable worker processes, in parallel, each under the
        run's memory limit per trial and all by the view's deadline. Each job is a dict
        with ``spec`` (a ``LearnerSpec``), ``params``, ``X`` (a frame like the view's
        table), ``y`` and optionally ``sample_weight``; the models come back fitted, in
        the jobs' order. A failure raises ``autofuse._workers.FitFailed`` with its
        reason."""
        from autofuse._core._greedy import default_threads
        from autofuse._workers import run_fits

        source = self._source
        threads = max(1, default_threads() // source.n_workers)
        full = [{"data": source.data, "seed": self.random_state, "threads": threads, **job}
                for job in jobs]
        return run_fits(full, deadline=self.deadline, n_workers=source.n_workers,
                        memory_limit=source.memory_limit)

    @property
    def has_models(self) -> bool:
        return self._source._models is not None and self._source._frame is not None

    def latency(self, trial: int) -> dict[int, float]:
        """Seconds per row that candidate ``trial`` takes to predict, as a member of the
        fused model (every fold model, averaged), at each batch size of
        ``LATENCY_BATCHES``, measured now on this machine (once per run, then cached; the
        batch of 10,000 through one fold model, times their number).
        Without fitted models in the view it is estimated from the search's timings."""
        cached = self._source.latencies.get(trial)
        if cached is not None:
            return cached
        if not self.has_models:
            i = self.index(trial)
            # The search predicted every library row once, each with one fold model.
            per_row = float(self.predict_seconds[i]) * self.n_folds_fitted / max(
                1, self.library_rows)
            return {b: per_row for b in LATENCY_BATCHES}
        from autofuse._member import predict_models

        models, data = self._source.models(trial), self._source.data
        out = {}
        for batch, X, repeats in latency_batches(self._source.frame()):
            # A large batch is timed on one fold model and scaled by their number (fold
            # models share learner and parameters; 10,000 rows through five 300-tree
            # forests took seconds per member); a row alone through all of them.
            timed = models if batch == 1 else models[:1]
            seconds = median_seconds(lambda: predict_models(timed, X, data), repeats)
            out[batch] = seconds * len(models) / len(timed) / batch
        self._source.latencies[trial] = out
        return out

    # ------------------------------------------------------------- nested views
    def subset(self, positions: np.ndarray) -> LibraryView:
        """The view of some of its rows (positions in this view): the folds keep those rows
        (a fold left with no row is dropped); costs, models and the source stay shared."""
        positions = np.sort(np.asarray(positions, dtype=np.int64))
        return replace(self, predictions=self.predictions[:, positions],
                       target=self.target[positions],
                       folds=fold_positions(self.folds, positions, self.n_rows),
                       rows=self.rows[positions], _scores=None)

    def restrict(self, positions: np.ndarray | list[int]) -> LibraryView:
        """The view of some of its candidates (positions), in the order given."""
        positions = list(positions)
        pick = np.asarray(positions, dtype=np.int64)
        return replace(self, predictions=self.predictions[pick],
                       trials=tuple(self.trials[i] for i in positions),
                       learners=tuple(self.learners[i] for i in positions),
                       params=tuple(self.params[i] for i in positions),
                       fit_seconds=self.fit_seconds[pick],
                       predict_seconds=self.predict_seconds[pick],
                       model_bytes=self.model_bytes[pick],
                       _scores=None if self._scores is None else self._scores[pick])

    # ------------------------------------------------------------- building
    @classmethod
    def from_arrays(cls, predictions: Any, target: Any, metric: RunMetric, *,
                    folds: list | None = None, n_folds: int = 5, trials: Any = None,
                    learners: Any = None, params: Any = None, fit_seconds: Any = None,
                    predict_seconds: Any = None, model_bytes: Any = None,
                    random_state: int | None = None, n_threads: int = 1,
                    deadline: float | None = None, frame: Any = None,
                    models: Callable[[int], list[Any]] | None = None,
                    data: Any = None, memory_limit: int | None = None,
                    n_workers: int = 1) -> LibraryView:
        """A view of plain arrays (tests, plugin authors): ``predictions`` of shape
        ``(n_models, n_rows, n_outputs)``; ``folds`` default to ``n_folds`` seeded
        (stratified for classification) folds of the rows."""
        P = np.asarray(predictions, dtype=np.float32)
        if P.ndim == 2:
            P = P[:, :, None]
        y = np.asarray(target)
        m = P.shape[0]
        if folds is None:
            from sklearn.model_selection import KFold, StratifiedKFold

            splitter = (KFold(n_folds, shuffle=True, random_state=random_state or 0)
                        if metric.task == "regression" else
                        StratifiedKFold(n_folds, shuffle=True, random_state=random_state or 0))
            folds = [(np.asarray(a), np.asarray(b))
                     for a, b in splitter.split(np.zeros((len(y), 1)), y)]

        def col(values: Any, default: float) -> np.ndarray:
            return np.full(m, default) if values is None else np.asarray(values, dtype=float)

        return cls(P, y, list(folds),
                   tuple(range(m)) if trials is None else tuple(int(t) for t in trials),
                   tuple(["model"] * m) if learners is None else tuple(learners),
                   tuple({} for _ in range(m)) if params is None else tuple(params),
                   col(fit_seconds, 0.0), col(predict_seconds, 0.0), col(model_bytes, 0.0),
                   metric, random_state, n_threads, deadline,
                   _source=_Source(frame, models, data, list(folds), memory_limit,
                                   n_workers))
