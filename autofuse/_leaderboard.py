"""The leaderboard: every trial of the study, and the blend and best single model above."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from optuna.trial import TrialState

if TYPE_CHECKING:
    import optuna

    from autofuse._scoring import RunMetric

_STATUS = {TrialState.COMPLETE: "done", TrialState.PRUNED: "stopped",
           TrialState.FAIL: "failed", TrialState.RUNNING: "running",
           TrialState.WAITING: "waiting"}


def build_leaderboard(study: optuna.Study, metric: RunMetric, weights: dict[int, float],
                      blend_score: float, best_trial: int, combiner: str,
                      blend_params: dict[str, Any], blend_note: str = "") -> pd.DataFrame:
    """One row per trial (finished ones best first, then stopped and failed ones), with
    ``model`` "blend" and "best single" rows on top. The score column is named after the
    metric and holds cross-validated (out-of-fold) values. The blend row's ``learner`` is
    the combiner that made it; its ``reason`` says why, if it is not the one asked for."""
    rows: list[dict[str, Any]] = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING:
            continue
        rows.append({
            "model": f"{t.user_attrs.get('learner', t.params.get('learner', '?'))}#{t.number}",
            "trial": t.number,
            "learner": t.user_attrs.get("learner", t.params.get("learner")),
            "params": t.user_attrs.get("params", {}),
            metric.name: t.value if t.state == TrialState.COMPLETE else np.nan,
            "fit_seconds": t.user_attrs.get("fit_seconds", np.nan),
            "predict_seconds": t.user_attrs.get("predict_seconds", np.nan),
            "weight": weights.get(t.number, 0.0),
            "status": _STATUS.get(t.state, t.state.name.lower()),
            "reason": t.user_attrs.get("reason", ""),
        })
    trials = pd.DataFrame(rows)
    done = trials[trials["status"] == "done"].sort_values(
        metric.name, ascending=not metric.greater_is_better, kind="stable")
    rest = trials[trials["status"] != "done"]
    members = done[done["trial"].isin(list(weights))]
    best = done[done["trial"] == best_trial].iloc[0]
    top = pd.DataFrame([
        {"model": "blend", "trial": -1, "learner": combiner,
         "params": {"members": len(members), **blend_params},
         metric.name: blend_score, "fit_seconds": members["fit_seconds"].sum(),
         "predict_seconds": members["predict_seconds"].sum(), "weight": 1.0,
         "status": "done", "reason": blend_note},
        {**best.to_dict(), "model": "best single", "weight": np.nan},
    ])
    board = pd.concat([top, done, rest], ignore_index=True)
    board["trial"] = board["trial"].astype(int)
    return board
