"""What the report says about a run, read from its run.json and leaderboard.csv and checked
in one place, so that the plots only draw and the page only lays out."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from autofuse._errors import InputError
from autofuse._run_folder import RunFolder

#: The leaderboard's first two rows, which are not trials.
SUMMARY_ROWS = ("blend", "best single")


@dataclass(frozen=True)
class Member:
    """One model of the blend."""

    model: str  # "learner#trial"
    learner: str
    weight: float
    predict_seconds: float  # NaN where the leaderboard has no row for it


@dataclass(frozen=True)
class RunFacts:
    """One run, as the report shows it.

    ``trials`` holds the finished trials (status "done" with a score), in trial order, with
    columns ``trial``, ``model``, ``learner``, ``score``, ``fit_seconds`` and
    ``predict_seconds``. ``learners`` lists the learners that finished a trial, best
    first. ``gain`` is what fusion bought: the blend's score less the best single model's,
    signed so that positive is better whichever way the metric goes.
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
    blend_predict_seconds: float
    best_model: str
    best_score: float
    gain: float
    members: list[Member]
    members_from: str  # "run.json", "leaderboard.csv" or "" when neither names them
    trials: pd.DataFrame
    learners: list[str]

    @property
    def result(self) -> dict[str, Any]:
        return self.record["result"]

    @property
    def direction(self) -> str:
        return "higher is better" if self.greater_is_better else "lower is better"


def read_facts(folder: RunFolder) -> RunFacts:
    """The facts of the run in ``folder``; an ``InputError`` if it is not a run folder or
    its first fit has not finished."""
    from autofuse._cli._views import read_leaderboard

    folder.require_run()
    record = folder.read()
    result = record.get("result")
    if not isinstance(result, dict):
        raise InputError(f"{folder.path} has no result yet: its first fit has not finished")
    board, metric = read_leaderboard(folder)
    greater = bool(result.get("greater_is_better", True))
    rows = board[~board["model"].isin(SUMMARY_ROWS)]
    trials = _finished(rows, metric)
    blend = board[board["model"] == "blend"]
    best = result.get("best_single") or {}
    members, members_from = _members(result, rows)
    blend_score = float(result["cv_score"])
    best_score = float(best.get("score", math.nan))
    if members and all(math.isfinite(m.predict_seconds) for m in members):
        blend_predict = float(sum(m.predict_seconds for m in members))
    else:
        blend_predict = float(blend["predict_seconds"].iloc[0]) if len(blend) else math.nan
    return RunFacts(
        name=os.path.basename(folder.path), path=folder.path, record=record, board=board,
        metric=metric, greater_is_better=greater, task=str(result.get("task", "")),
        combiner=str(result.get("combiner") or (blend["learner"].iloc[0] if len(blend)
                                                else "blend")),
        combiner_note=str(result.get("combiner_note") or ""),
        blend_score=blend_score, blend_predict_seconds=blend_predict,
        best_model=str(best.get("model", "")), best_score=best_score,
        gain=gain(blend_score, best_score, greater), members=members,
        members_from=members_from, trials=trials,
        learners=_learners_best_first(trials, greater))


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


def _finished(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    done = rows[(rows["status"] == "done")].copy()
    done["score"] = pd.to_numeric(done[metric], errors="coerce")
    done = done[np.isfinite(done["score"])]
    columns = ["trial", "model", "learner", "score", "fit_seconds", "predict_seconds"]
    done = done[columns].sort_values("trial", kind="stable").reset_index(drop=True)
    done["learner"] = done["learner"].astype(str)
    return done


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
