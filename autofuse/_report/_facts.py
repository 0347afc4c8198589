"""What the report says about a run, read from its run.json and leaderboard.csv and checked
in one place, so that the plots only draw and the page only lays out."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from autofuse._errors import InputError
from autofuse._run_folder import RunFolder, read_leaderboard


@dataclass(frozen=True)
class Member:
    """One model of the blend."""

    model: str  # "learner#trial"
    learner: str
    weight: float
    predict_seconds: float  # NaN where the leaderboard has no row for it


@dataclass(frozen=True)
class Combiner:
    """One combiner tried on the run's library (a ``fusion:NAME`` row of the leaderboard).

    ``score`` is in sample (the fusion fitted and scored on the same out-of-fold
    predictions), ``outer`` from nested cross-validation (rows it was not fitted on).
    ``chosen`` marks the one the model predicts with.
    """

    name: str
    score: float
    outer: float
    members: float
    bytes: float
    per_1000: float  # seconds to predict 1,000 rows
    fit_seconds: float
    status: str
    reason: str
    params: dict[str, Any]
    chosen: bool


@dataclass(frozen=True)
class FrontPoint:
    """A blend on prune's Pareto front: its members (trials), in-sample score, seconds to
    predict 1,000 rows on the leaderboard's scale (its members' figures summed, so it sits
    with the trials and combiners; NaN when one is missing) and bytes."""

    members: tuple[int, ...]
    score: float
    per_1000: float
    bytes: float


@dataclass(frozen=True)
class RunFacts:
    """One run, as the report shows it.

    ``trials`` holds the finished trials (status "done" with a score), in trial order, with
    columns ``trial``, ``model``, ``learner``, ``score``, ``fit_seconds``,
    ``predict_seconds`` (the out-of-fold rows) and ``per_1000`` (seconds to predict 1,000
    rows; NaN where the leaderboard has no such time). ``learners`` lists the learners
    that finished a trial, best first. ``blend_score`` is the blend's in-sample score
    (run.json's ``cv_score``: its combiner fitted and scored on the same out-of-fold
    predictions), ``blend_outer`` its outer score (nested cross-validation; NaN for a run
    written before autofuse recorded it). ``gain`` is what fusion bought: the blend's
    outer score (its in-sample one when there is none) less the best single model's
    cross-validated score, signed so that positive is better whichever way the metric
    goes. ``combiners`` are the leaderboard's combiner rows (see ``Combiner``); ``front``
    is prune's Pareto front when prune was tried.
    """

    name: str
    path: str
    record: dict[str, Any]
    board: pd.DataFrame
    metric: str
    greater_is_better: bool
    task: str
    combiner: str
    combiner_note: str
    blend_score: float
    blend_outer: float
    blend_per_1000: float  # seconds to predict 1,000 rows
    best_model: str
    best_score: float
    gain: float
    members: list[Member]
    members_from: str  # "run.json", "leaderboard.csv" or "" when neither names them
    trials: pd.DataFrame
    learners: list[str]
    combiners: list[Combiner]
    front: list[FrontPoint]

    @property
    def blend_compared(self) -> float:
        """The blend's score set beside the trials' (and used for ``gain``): its outer
        score, or its in-sample one when run.json has no outer score."""
        return self.blend_outer if math.isfinite(self.blend_outer) else self.blend_score

    @property
    def compared_as(self) -> str:
        """What ``blend_compared`` is: "outer" or "in sample"."""
        return "outer" if math.isfinite(self.blend_outer) else "in sample"

    @property
    def result(self) -> dict[str, Any]:
        return self.record["result"]

    @property
    def direction(self) -> str:
        return "higher is better" if self.greater_is_better else "lower is better"


def read_facts(folder: RunFolder) -> RunFacts:
    """The facts of the run in ``folder``; an ``InputError`` if it is not a run folder or
    its first fit has not finished."""
    folder.require_run()
    record = folder.read()
    result = record.get("result")
    if not isinstance(result, dict):
        raise InputError(f"{folder.path} has no result yet: its first fit has not finished")
    board, metric = read_leaderboard(folder)
    greater = bool(result.get("greater_is_better", True))
    rows = board[board["kind"] == "trial"]
    trials = _finished(rows, metric, _rows_per_fold(record))
    blend = board[board["kind"] == "blend"]
    best = result.get("best_single") or {}
    members, members_from = _members(result, rows)
    blend_score = float(result["cv_score"])
    blend_outer = _number(result.get("outer_score", _cell(blend, "outer_score")))
    best_score = float(best.get("score", math.nan))
    combiner = str(result.get("combiner") or (blend["learner"].iloc[0] if len(blend)
                                              else "blend"))
    blend_per_1000 = _number(_cell(blend, "predict_seconds_per_1000"))
    if not math.isfinite(blend_per_1000) and members:  # an older leaderboard
        by_model = trials.set_index("model")["per_1000"]
        blend_per_1000 = float(sum(by_model.get(m.model, math.nan) for m in members))
    combiners = _combiners(board, metric, combiner)
    compared = blend_outer if math.isfinite(blend_outer) else blend_score  # blend_compared
    return RunFacts(
        name=os.path.basename(folder.path), path=folder.path, record=record, board=board,
        metric=metric, greater_is_better=greater, task=str(result.get("task", "")),
        combiner=combiner, combiner_note=str(result.get("combiner_note") or ""),
        blend_score=blend_score, blend_outer=blend_outer, blend_per_1000=blend_per_1000,
        best_model=str(best.get("model", "")), best_score=best_score,
        gain=gain(compared, best_score, greater), members=members,
        members_from=members_from, trials=trials,
        learners=_learners_best_first(trials, greater),
        combiners=combiners, front=_front(combiners, blend, combiner, trials))


def pareto(points: Any, greater_is_better: bool) -> np.ndarray:
    """The indices of the points ``(seconds, score)`` that no other point dominates (as
    fast or faster and as good or better, one of them strictly), fastest first. Points
    with a missing value are left out."""
    values = np.asarray(points, dtype=float).reshape(-1, 2)
    keep = np.flatnonzero(np.isfinite(values).all(axis=1))
    sign = 1.0 if greater_is_better else -1.0
    # Fastest first; among equal times the best score first, so it is the one kept.
    order = keep[np.lexsort((-sign * values[keep, 1], values[keep, 0]))]
    front: list[int] = []
    best = -math.inf
    for i in order:
        if sign * values[i, 1] > best:
            front.append(int(i))
            best = sign * values[i, 1]
    return np.array(front, dtype=int)


def gain(blend: float, best: float, greater_is_better: bool) -> float:
    """The blend's score less the best single model's, positive when the blend is better."""
    return blend - best if greater_is_better else best - blend


def running_best(scores: Any, greater_is_better: bool) -> np.ndarray:
    """The best score so far at each position (missing scores do not count)."""
    values = np.asarray(scores, dtype=float)
    if values.size == 0:
        return values
    step = np.fmax if greater_is_better else np.fmin  # fmax/fmin pass over NaN
    return step.accumulate(values)


def _finished(rows: pd.DataFrame, metric: str, rows_per_fold: float) -> pd.DataFrame:
    done = rows[(rows["status"] == "done")].copy()
    done["score"] = pd.to_numeric(done[metric], errors="coerce")
    done = done[np.isfinite(done["score"])]
    if "predict_seconds_per_1000" in done.columns:
        done["per_1000"] = pd.to_numeric(done["predict_seconds_per_1000"], errors="coerce")
    else:  # an older leaderboard: estimated from the seconds to predict the folds
        done["per_1000"] = 1000.0 * pd.to_numeric(done["predict_seconds"],
                                                  errors="coerce") / rows_per_fold
    columns = ["trial", "model", "learner", "score", "fit_seconds", "predict_seconds",
               "per_1000"]
    done = done[columns].sort_values("trial", kind="stable").reset_index(drop=True)
    done["learner"] = done["learner"].astype(str)
    return done


def _rows_per_fold(record: dict[str, Any]) -> float:
    """Rows a fold model predicted, on average: each trial predicts every row once over
    its folds, so this many per fold (NaN when run.json does not say)."""
    rows = record.get("data", {}).get("rows")
    folds = record.get("config", {}).get("cv")
    if isinstance(rows, int) and isinstance(folds, int) and rows > 0 and folds > 0:
        return rows / folds
    return math.nan


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _cell(rows: pd.DataFrame, column: str) -> Any:
    """The first row's value in ``column``; NaN when there is no row or no column."""
    return rows[column].iloc[0] if len(rows) and column in rows.columns else math.nan


def _params(value: Any) -> dict[str, Any]:
    if not isinstance(value, str) or not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _combiners(board: pd.DataFrame, metric: str, chosen: str) -> list[Combiner]:
    """The combiner rows, in the leaderboard's order; the chosen one is the first done row
    named like the blend's combiner."""
    out = []
    marked = False
    for _, r in board[board["kind"] == "combiner"].iterrows():
        name = str(r["learner"]) if isinstance(r["learner"], str) else \
            str(r["model"]).removeprefix("fusion:")
        status = str(r["status"])
        is_chosen = not marked and name == chosen and status == "done"
        marked = marked or is_chosen
        out.append(Combiner(
            name=name, score=_number(r[metric]), outer=_number(r.get("outer_score")),
            members=_number(r.get("members")), bytes=_number(r.get("bytes")),
            per_1000=_number(r.get("predict_seconds_per_1000")),
            fit_seconds=_number(r.get("fit_seconds")), status=status,
            reason=str(r["reason"]), params=_params(r.get("params")), chosen=is_chosen))
    return out


def _front(combiners: list[Combiner], blend: pd.DataFrame, chosen: str,
           trials: pd.DataFrame) -> list[FrontPoint]:
    """Prune's Pareto front: from its combiner row, or the blend's params when the blend is
    prune's and no combiner row was written. Each point's time is its members' times in
    the leaderboard summed (prune's own measurements are at another scale: batches of
    10,000 rows, where the leaderboard estimates from the search's timings)."""
    params = next((c.params for c in combiners if c.name == "prune"), None)
    if params is None and chosen == "prune" and len(blend):
        params = _params(blend["params"].iloc[0])
    points = []
    for p in (params or {}).get("front") or []:
        if not isinstance(p, dict):
            continue
        members = tuple(int(t) for t in p.get("members") or ())
        by_trial = dict(zip(trials["trial"], trials["per_1000"])) if len(trials) else {}
        per_1000 = float(sum(by_trial.get(t, math.nan) for t in members))
        points.append(FrontPoint(members, _number(p.get("score")), per_1000,
                                 _number(p.get("bytes"))))
    return points


def _learners_best_first(trials: pd.DataFrame, greater_is_better: bool) -> list[str]:
    if trials.empty:
        return []
    best = trials.groupby("learner")["score"].agg("max" if greater_is_better else "min")
    ordered = sorted(best.items(), key=lambda kv: (-kv[1] if greater_is_better else kv[1],
                                                   kv[0]))
    return [name for name, _ in ordered]


def _members(result: dict[str, Any], rows: pd.DataFrame) -> tuple[list[Member], str]:
    """The blend's members from run.json, or else from the leaderboard's ``weight``
    column (a run.json written without ``members``), heaviest first."""
    by_model = rows.set_index("model")
    named = result.get("members")
    if isinstance(named, list) and named:
        pairs = [(str(m["model"]), float(m["weight"])) for m in named]
        source = "run.json"
    else:
        weighted = rows[pd.to_numeric(rows["weight"], errors="coerce").fillna(0) > 0]
        pairs = [(str(r.model), float(r.weight)) for r in weighted.itertuples()]
        source = "leaderboard.csv" if pairs else ""
    members = []
    for model, weight in pairs:
        row = by_model.loc[model] if model in by_model.index else None
        if isinstance(row, pd.DataFrame):  # a repeated name: take the first
            row = row.iloc[0]
        learner = str(row["learner"]) if row is not None else model.rsplit("#", 1)[0]
        seconds = float(row["predict_seconds"]) if row is not None else math.nan
        members.append(Member(model, learner, weight, seconds))
    members.sort(key=lambda m: -m.weight)
    return members, source
