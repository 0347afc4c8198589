"""The leaderboard: the fusion, the best single model and every combiner tried on top, then
every trial of the study."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from optuna.trial import TrialState

if TYPE_CHECKING:
    import optuna

    from autofuse._scoring import RunMetric
    from autofuse.combiners import LibraryView
    from autofuse.combiners._fuse import FuseOutcome
    from autofuse.combiners._nested import Assessment

def trial_row(t: optuna.trial.FrozenTrial, metric: str, **middle: Any) -> dict[str, Any]:
    """A trial's leaderboard row (``middle``: the columns between its timings and its
    status)."""
    learner = t.user_attrs.get("learner", t.params.get("learner"))
    return {"model": f"{learner or '?'}#{t.number}", "kind": "trial", "trial": t.number,
            "learner": learner, "params": t.user_attrs.get("params", {}),
            metric: t.value if t.state == TrialState.COMPLETE else np.nan,
            "outer_score": np.nan,
            "fit_seconds": t.user_attrs.get("fit_seconds", np.nan),
            "predict_seconds": t.user_attrs.get("predict_seconds", np.nan),
            **middle,
            "status": _STATUS.get(t.state, t.state.name.lower()),
            "reason": t.user_attrs.get("reason", ""),
            "worker": t.user_attrs.get("worker", "")}  # a shared run's: host:pid


def best_first(trials: pd.DataFrame, metric: str, greater_is_better: bool
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the finished trials, best first; the others, in trial order)."""
    done = trials["status"] == "done"
    return (trials[done].sort_values(metric, ascending=not greater_is_better, kind="stable"),
            trials[~done])


_STATUS = {TrialState.COMPLETE: "done", TrialState.PRUNED: "stopped",
           TrialState.FAIL: "failed", TrialState.RUNNING: "running",
           TrialState.WAITING: "waiting"}


def _costs(view: LibraryView, uses: tuple[int, ...]) -> dict[str, Any]:
    """Members, bytes of their pickled models, and seconds to predict 1,000 rows with all
    of them, estimated from the search's timings for every row alike (so rows compare; a
    combiner's own measurements, such as prune's, are in its params)."""
    positions = [view.index(t) for t in uses]
    return {"members": len(uses),
            "bytes": int(view.model_bytes[positions].sum()) if positions else 0,
            "predict_seconds_per_1000": 1000.0 * view.n_folds_fitted
            * float(view.predict_seconds[positions].sum()) / max(1, view.n_rows)}


def _jsonable(value: Any) -> Any:
    """A fusion's summary with NumPy scalars as Python ones (leaderboard.csv holds JSON)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _fusion_row(model: str, a: Assessment, view: LibraryView, metric: RunMetric,
                reason: str) -> dict[str, Any]:
    uses = a.fusion.uses if a.fusion is not None else ()
    costs = _costs(view, uses)
    own = a.fusion.costs() if a.fusion is not None else None
    if own is not None:  # a student or a soup: its own model, measured
        costs = {"members": 0, "bytes": int(own["bytes"]), "predict_seconds_per_1000":
                 1000.0 * float(own["seconds_per_row"][max(own["seconds_per_row"])])}
    return {"model": model, "kind": "combiner", "trial": -1, "learner": a.name,
            "params": _jsonable(a.fusion.summary()) if a.fusion is not None else {},
            metric.name: a.in_sample, "outer_score": a.outer, "fit_seconds": a.seconds,
            "predict_seconds": np.nan, **costs, "weight": np.nan,
            "status": "done" if a.ok else "failed", "reason": reason}


def build_leaderboard(study: optuna.Study, metric: RunMetric, view: LibraryView,
                      outcome: FuseOutcome, best_trial: int) -> pd.DataFrame:
    """Rows, top down (``kind``): ``blend`` (the fusion the model predicts with), ``best
    single``, ``combiner`` rows (``model`` "fusion:NAME") for every combiner tried
    (in-sample and outer scores; why it was chosen or not), then ``trial`` rows, one per
    trial (finished ones best first, then stopped and failed ones). The metric's column
    holds out-of-fold values: honest for a trial, in sample for a combiner
    (``outer_score`` is its honest one)."""
    chosen = outcome.chosen
    weights = chosen.fusion.weights
    rows = [trial_row(t, metric.name, **(
        _costs(view, (t.number,)) if t.state == TrialState.COMPLETE and t.number in view.trials
        else {"members": np.nan, "bytes": np.nan, "predict_seconds_per_1000": np.nan}),
        weight=weights.get(t.number, 0.0))
        for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    done, rest = best_first(pd.DataFrame(rows), metric.name, metric.greater_is_better)
    blend = _fusion_row("blend", chosen, view, metric, outcome.note or chosen.reason)
    blend["params"] = {"candidates": view.n_candidates, **blend["params"]}
    blend["kind"] = "blend"
    blend["weight"] = 1.0
    best = {**done[done["trial"] == best_trial].iloc[0].to_dict(), "model": "best single",
            "kind": "best single", "weight": np.nan}
    tried = [_fusion_row(f"fusion:{a.name}", a, view, metric,
                         a.reason or (f"failed: {a.error}" if a.error else ""))
             for a in outcome.tried]
    board = pd.concat([pd.DataFrame([blend, best, *tried]), done, rest], ignore_index=True)
    board["trial"] = board["trial"].astype(int)
    return board
