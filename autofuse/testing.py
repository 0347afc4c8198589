"""Conformance checks for plugin authors: run them in your plugin's own tests.

    from autofuse.testing import check_combiner, check_learner

    def test_my_learner():
        check_learner(MY_SPEC)

``check_learner(spec)`` fits the learner on small real tables (scikit-learn's bundled
breast cancer, wine and diabetes data, with a text column, a boolean column and missing
values added) for every task it claims, samples its search space, fits its portfolio,
checks its predictions, pickling and determinism under a seed, and finally runs it through
``autofuse.fit`` in worker processes, as a real run does. ``check_combiner(spec)`` gives the
combiner a library view of real models for each task (either contract: a fusion, or
weights only) and checks its output, its determinism, pickling, its score on a held-out
fold, and a run through ``autofuse.fit``. Each failure raises an
``AssertionError`` that names the learner or combiner, the task and the step.
"""

from __future__ import annotations

import json
import pickle
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import optuna
import pandas as pd

from autofuse.combiners import CombinerSpec
from autofuse.learners import LearnerSpec

__all__ = ["check_combiner", "check_installed_learner", "check_learner", "example_data"]

#: Configurations sampled from a learner's search space.
N_SAMPLES = 5


def example_data(task: str, n_rows: int = 300, random_state: int = 0
                 ) -> tuple[pd.DataFrame, np.ndarray]:
    """A small real table for ``task`` ("binary": breast cancer, "multiclass": wine,
    "regression": diabetes) with a text column, a boolean column and missing values."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    loader = {"binary": load_breast_cancer, "multiclass": load_wine,
              "regression": load_diabetes}.get(task)
    if loader is None:
        raise ValueError(f"task must be binary, multiclass or regression, got {task!r}")
    bunch = loader(as_frame=True)
    X, y = bunch.data.iloc[:, :8].copy(), bunch.target.to_numpy()
    rng = np.random.default_rng(random_state)
    rows = rng.permutation(len(X))[:n_rows]
    X, y = X.iloc[rows].reset_index(drop=True), y[rows]
    first = X.columns[0]
    X["group"] = np.where(X[first] > X[first].median(), "high", "low")
    X.loc[rng.random(len(X)) < 0.1, "group"] = None
    X["flag"] = rng.random(len(X)) < 0.5
    X.loc[rng.random(len(X)) < 0.05, X.columns[1]] = np.nan
    if task != "regression":
        names = np.array(["alpha", "beta", "gamma"])
        y = names[y]
    return X, y


def _fail(who: str, task: str, step: str, detail: Any) -> AssertionError:
    return AssertionError(f"{who} [{task}]: {step}: {detail}")


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------- learners

def check_learner(spec: LearnerSpec, *, tasks: Any = None, run: bool = True,
                  random_state: int = 0) -> None:
    """Check that ``spec`` works as autofuse uses it; raise ``AssertionError`` if not.

    tasks : the tasks to check (default: every task the spec claims).
    run : also run it through ``autofuse.fit`` (worker processes, a few trials).
    """
    if not isinstance(spec, LearnerSpec):
        raise AssertionError(f"check_learner takes an autofuse.learners.LearnerSpec, got "
                             f"{type(spec).__name__}")
    who = f"learner {spec.name!r}"
    try:
        clone = pickle.loads(pickle.dumps(spec))
    except Exception as exc:
        raise _fail(who, "all", "the spec must pickle (trials run in worker processes; "
                    "space and build must be module-level functions)", _error(exc)) from exc
    if clone.name != spec.name:
        raise _fail(who, "all", "pickling", "the unpickled spec has another name")
    unused: dict[int, set[str]] | None = None
    for task in sorted(spec.tasks if tasks is None else set(tasks)):
        if task not in spec.tasks:
            raise _fail(who, task, "tasks", f"the spec claims only {sorted(spec.tasks)}")
        with _one_thread():
            dropped = _check_learner_task(spec, task, run, random_state)
        unused = dropped if unused is None else {i: unused[i] & dropped[i] for i in dropped}
    for i, keys in (unused or {}).items():
        if keys:
            raise _fail(who, "all checked tasks", f"portfolio[{i}] {spec.portfolio[i]}",
                        f"space() never suggests {sorted(keys)}, so a run drops them: every "
                        "key must be a parameter space() suggests")


@contextmanager
def _one_thread() -> Iterator[None]:
    """In-process fits on these small tables get one thread, as in a run (one thread per
    10,000 rows): OpenMP pools spin-waiting on a busy machine made them 10-40x slower."""
    from threadpoolctl import threadpool_limits

    from autofuse.learners._spec import threads_for_trial

    with threadpool_limits(limits=1), threads_for_trial(1):
        yield


def _check_learner_task(spec: LearnerSpec, task: str, run: bool, random_state: int
                        ) -> dict[int, set[str]]:
    """One task's checks; returns, per portfolio entry, the keys space() did not suggest."""
    from autofuse._cv import _predict, cross_fit, make_folds
    from autofuse._data import describe
    from autofuse._scoring import run_metric
    from autofuse.search._study import LearnerTrial

    who = f"learner {spec.name!r}"
    X, y = example_data(task, random_state=random_state)
    frame, target, data = describe(X, y, task=task)
    if not spec.supports(data):
        raise _fail(who, task, "supports", f"the spec does not accept a {data.n_rows}-row "
                    f"{task} table (max_rows={spec.max_rows})")
    folds = make_folds(target, data, 3, random_state=random_state)

    # The search space: sampled configurations must be plain values that build.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=random_state))
    configs: list[tuple[str, dict[str, Any]]] = [("the default ({})", {})]
    configs += [(f"portfolio[{i}] {p}", dict(p)) for i, p in enumerate(spec.portfolio)]
    for i in range(N_SAMPLES):
        trial = study.ask()
        try:
            params = spec.space(LearnerTrial(trial, spec.name), data)
        except Exception as exc:
            raise _fail(who, task, f"space() sample {i}", _error(exc)) from exc
        if not isinstance(params, dict):
            raise _fail(who, task, "space()", f"must return a dict, got {type(params).__name__}")
        params = {k: v for k, v in params.items() if v is not None}
        try:
            json.dumps({k: v.item() if isinstance(v, np.generic) else v
                        for k, v in params.items()})
        except TypeError as exc:
            raise _fail(who, task, f"space() sample {i}", "parameters must be JSON values "
                        f"(numbers, strings, booleans; they are stored in the study): "
                        f"{params}") from exc
        for name in params:
            if f"{spec.name}.{name}" not in trial.params:
                raise _fail(who, task, "space()", f"parameter {name!r} was not suggested "
                            "through the trial (use trial.suggest_*)")
        configs.append((f"sampled {params}", params))

    # Portfolio entries reach the learner through space() in a run: every key must be
    # suggested (for some task), with a value inside the space, or a run drops it silently.
    dropped: dict[int, set[str]] = {}
    for i, entry in enumerate(spec.portfolio):
        study.enqueue_trial({f"{spec.name}.{k}": v for k, v in entry.items()})
        trial = study.ask()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Optuna warns on a value outside a distribution
            try:
                got = spec.space(LearnerTrial(trial, spec.name, dict(entry)), data)
            except Exception as exc:
                raise _fail(who, task, f"portfolio[{i}] {entry}", "not a point of the search "
                            f"space: {_error(exc)}") from exc
        got = {k: v for k, v in (got or {}).items() if v is not None}
        changed = {k for k in got if k in entry and got[k] != entry[k]}
        if changed:
            raise _fail(who, task, f"portfolio[{i}] {entry}", f"space() turns it into {got}")
        dropped[i] = set(entry) - set(got)

    # Fits: predictions of the right shape and kind; the default beats a constant.
    metric = run_metric(None, task)
    for label, params in configs:
        try:
            result = cross_fit(spec, params, frame, target, data, folds, seed=random_state)
        except Exception as exc:
            raise _fail(who, task, f"fitting {label}", _error(exc)) from exc
        _check_predictions(who, task, label, result.oof, data)
        if label.startswith("the default"):
            default = result
    constant = _constant_prediction(target, data, folds)
    mine, base = metric.score(default.oof, target), metric.score(constant, target)
    if not metric.better(mine, base):
        raise _fail(who, task, "quality", f"the default configuration scores {metric.name} "
                    f"{mine:.4g} out of fold, no better than a constant prediction ({base:.4g})")

    # Determinism under a seed, and pickling of fitted models.
    train, valid = folds[0]
    preds = []
    for _ in range(2):
        model = spec.estimator({}, data, random_state)
        model.fit(frame.iloc[train], target[train])
        preds.append(_predict(model, frame.iloc[valid], data))
    if not np.allclose(preds[0], preds[1], rtol=1e-6, atol=1e-9):
        raise _fail(who, task, "determinism", "two fits with the same seed predict differently: "
                    "set every source of randomness from the estimator's random_state "
                    "(left at None in build, autofuse sets it)")
    try:
        again = pickle.loads(pickle.dumps(model))
    except Exception as exc:
        raise _fail(who, task, "pickling a fitted model", _error(exc)) from exc
    if not np.allclose(_predict(again, frame.iloc[valid], data), preds[1]):
        raise _fail(who, task, "pickling a fitted model", "the unpickled model predicts "
                    "differently")

    if run:
        _check_run(who, task, X, y, learners=[spec], combiner="caruana",
                   expect_learner=spec.name, random_state=random_state)
    return dropped


def _check_predictions(who: str, task: str, label: str, oof: np.ndarray, data: Any) -> None:
    step = f"predictions of {label}"
    if not np.all(np.isfinite(oof)):
        raise _fail(who, task, step, "NaN or infinite values")
    if task != "regression":
        if oof.shape[1] != len(data.classes):
            raise _fail(who, task, step, f"{oof.shape[1]} probability columns for "
                        f"{len(data.classes)} classes")
        if oof.min() < -1e-6 or oof.max() > 1 + 1e-6 or not np.allclose(oof.sum(1), 1, atol=1e-4):
            raise _fail(who, task, step, "predict_proba must return probabilities in [0, 1] "
                        "whose rows sum to 1")


def _constant_prediction(target: np.ndarray, data: Any, folds: list) -> np.ndarray:
    """Out of fold, the training folds' class frequencies (or mean)."""
    n_out = 1 if data.task == "regression" else len(data.classes)
    out = np.zeros((len(target), n_out))
    for train, valid in folds:
        if data.task == "regression":
            out[valid] = target[train].mean()
        else:
            out[valid] = np.bincount(target[train], minlength=n_out) / len(train)
    return out


def _check_run(who: str, task: str, X: pd.DataFrame, y: np.ndarray, *, learners: Any,
               combiner: Any, expect_learner: str | None, random_state: int,
               combiner_options: dict[str, Any] | None = None) -> Any:
    import autofuse

    try:
        model = autofuse.fit(X, y, task=task, n_trials=4, time_limit=120, cv=3,
                             learners=learners, combiner=combiner,
                             combiner_options=combiner_options,
                             random_state=random_state, verbose=0)
    except Exception as exc:
        raise _fail(who, task, "autofuse.fit", _error(exc)) from exc
    board = model.leaderboard()
    trials = board[board["kind"] == "trial"]
    if expect_learner is not None:
        mine = trials[trials["learner"] == expect_learner]
        if not (mine["status"] == "done").any():
            reasons = "; ".join(mine["reason"].astype(str).head(3)) or "no trial ran"
            raise _fail(who, task, "autofuse.fit", f"no trial finished: {reasons}")
    pred = model.predict(X.head(20))
    if len(pred) != 20:
        raise _fail(who, task, "autofuse.fit", f"predict returned {len(pred)} rows for 20")
    return model


_INSTALLED = """
import json, sys
import autofuse
name, task, n_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
from autofuse.testing import example_data
X, y = example_data(task)
out = {"registered": name in autofuse.plugins.learners()}
if out["registered"]:
    board = autofuse.fit(X, y, task=task, n_trials=n_trials, cv=3, time_limit=300,
                         random_state=0, verbose=0).leaderboard().query("kind == 'trial'")
    mine = board[board["learner"] == name]
    out["statuses"] = mine["status"].tolist()
    out["reasons"] = mine["reason"].astype(str).tolist()
print(json.dumps(out))
"""


def check_installed_learner(name: str, *, task: str = "binary", n_trials: int = 12) -> None:
    """Check that an installed plugin's learner ``name`` is found through its entry point
    and searched by a plain ``autofuse.fit(X, y)``, with no registration call: a fresh
    interpreter (no ``AUTOFUSE_*`` switches) runs ``n_trials`` trials on the example
    table for ``task``; the learner must be among them, and none of its trials may fail."""
    import os
    import subprocess
    import sys
    import tempfile

    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFUSE_")}
    # Run outside any source checkout, so the installed packages are what is imported.
    done = subprocess.run([sys.executable, "-c", _INSTALLED, name, task, str(n_trials)],
                          env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True,
                          timeout=600)
    who = f"learner {name!r}"
    if done.returncode != 0:
        raise _fail(who, task, "installed run", done.stderr.strip().splitlines()[-1:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if not out["registered"]:
        raise _fail(who, task, "installed run", "not registered: is the plugin installed, "
                    "with an entry point in the 'autofuse' group? (autofuse plugins)")
    if not out["statuses"]:
        raise _fail(who, task, "installed run", f"no trial of it in the first {n_trials}")
    if "failed" in out["statuses"]:
        raise _fail(who, task, "installed run", f"a trial failed: {out['reasons']}")


# ----------------------------------------------------------------- combiners

def _library(task: str, random_state: int) -> tuple[np.ndarray, np.ndarray, Any]:
    """Out-of-fold predictions of a few real, diverse models on the example table."""
    P, target, data, _ = _library_view_parts(task, random_state)
    return P, target, data


def _library_view_parts(task: str, random_state: int
                        ) -> tuple[np.ndarray, np.ndarray, Any, dict[str, Any]]:
    """The example table's library: predictions, target, DataSpec, and what a
    ``LibraryView`` takes besides (folds, frame, models, costs)."""
    from autofuse._cv import cross_fit, make_folds
    from autofuse._data import describe
    from autofuse.learners import BUILTIN_LEARNERS

    X, y = example_data(task, random_state=random_state)
    frame, target, data = describe(X, y, task=task)
    folds = make_folds(target, data, 3, random_state=random_state)
    by_name = {s.name: s for s in BUILTIN_LEARNERS}
    configs = [("linear", {}), ("linear", {"C": 0.01, "alpha": 100.0}), ("knn", {}),
               ("knn", {"n_neighbors": 30}), ("extra_trees", {"n_estimators": 50}),
               ("hist_gradient_boosting", {"max_iter": 50})]
    fits = [cross_fit(by_name[n], p, frame, target, data, folds, seed=random_state)
            for n, p in configs]
    P = np.stack([f.oof for f in fits]).astype(np.float64)
    models = {i: f.models for i, f in enumerate(fits)}
    extra = {"folds": folds, "frame": frame, "data": data, "models": models.__getitem__,
             "learners": [n for n, _ in configs], "params": [p for _, p in configs],
             "fit_seconds": [f.fit_seconds for f in fits],
             "predict_seconds": [f.predict_seconds for f in fits],
             "model_bytes": [len(pickle.dumps(f.models)) for f in fits]}
    return P, target, data, extra


def check_combiner(spec: CombinerSpec, *, tasks: Any = ("binary", "multiclass", "regression"),
                   metrics: dict[str, str] | None = None, options: dict[str, Any] | None = None,
                   run: bool = True, random_state: int = 0) -> None:
    """Check that ``spec`` works as autofuse uses it; raise ``AssertionError`` if not.

    For each task (metric: ``metrics[task]``, default roc_auc, log_loss, rmse) the combiner,
    built with ``options``, is given a ``LibraryView`` of six real models' out-of-fold
    predictions (with the table and the fitted fold models on request), under either
    contract (``fuse(view)`` returning a ``Fusion``, or weights only). Checked: a
    weights-only combiner's ``weights_`` (one finite number per model; non-negative and
    summing to 1 for classification) and that its blend is at least as good as the best
    single model on the rows it was fitted on; the fusion's predictions (shape, finite,
    probabilities); two fits with one seed agree; the fusion pickles and predicts the
    same; and **a held-out fold**: fitted on the other folds, it must score better than a
    constant prediction and no worse than the best single model chosen on the same folds
    by more than ``HELD_OUT_SLACK`` (relative), so a combiner that overfits its
    out-of-fold inputs fails. With ``run``, it also fuses a short ``autofuse.fit`` run.
    """
    from autofuse._scoring import DEFAULT_METRICS, run_metric
    from autofuse.combiners import LibraryView
    from autofuse.combiners._base import WeightsError, WeightsOnly
    from autofuse.combiners._best import BestSingle
    from autofuse.combiners._nested import outer_predictions, predict_view

    if not isinstance(spec, CombinerSpec):
        raise AssertionError(f"check_combiner takes an autofuse.combiners.CombinerSpec, got "
                             f"{type(spec).__name__}")
    who = f"combiner {spec.name!r}"
    chosen = {**DEFAULT_METRICS, **(metrics or {})}
    for task in tasks:
        metric = run_metric(chosen[task], task)
        with _one_thread():
            P, target, _, extra = _library_view_parts(task, random_state)
        view = LibraryView.from_arrays(P, target, metric, random_state=random_state, **extra)
        predictions = []
        for attempt in range(2):
            try:
                combiner = spec.make(metric, random_state, 1, options)
            except Exception as exc:
                raise _fail(who, task, f"build (options {options})", _error(exc)) from exc
            try:
                fusion = combiner.fuse(view)
            except WeightsError as exc:
                raise _fail(who, task, "weights_", _error(exc)) from exc
            except Exception as exc:
                raise _fail(who, task, f"fit ({metric.name})", _error(exc)) from exc
            try:
                predictions.append(predict_view(fusion, view, who))
            except Exception as exc:
                raise _fail(who, task, "the fusion's predictions", _error(exc)) from exc
        if not np.allclose(predictions[0], predictions[1]):
            raise _fail(who, task, "determinism", f"two fits with random_state={random_state} "
                        "predict differently")
        if isinstance(combiner, WeightsOnly):
            blend = metric.score(predictions[0], target)
            singles = [metric.score(p, target) for p in P]
            best = max(singles) if metric.greater_is_better else min(singles)
            if metric.better(best, blend) and abs(best - blend) > 1e-9 * max(1.0, abs(best)):
                raise _fail(who, task, "quality", f"the blend's {metric.name} {blend:.6g} is "
                            f"worse than the best single model's {best:.6g} on the data it "
                            "was fitted on")
        try:
            again = pickle.loads(pickle.dumps(fusion))
            same = predict_view(again, view, who)
        except Exception as exc:
            raise _fail(who, task, "pickling the fusion", _error(exc)) from exc
        if not np.allclose(same, predictions[0]):
            raise _fail(who, task, "pickling the fusion", "the unpickled fusion predicts "
                        "differently")
        _check_held_out(who, task, combiner, view, extra["data"], outer_predictions,
                        BestSingle())
        if run:
            X, y = example_data(task, random_state=random_state)
            model = _check_run(who, task, X, y, learners=["linear", "knn", "naive_bayes"]
                               if task != "regression" else ["linear", "knn"],
                               combiner=spec, combiner_options=options, expect_learner=None,
                               random_state=random_state)
            row = model.leaderboard().iloc[0]
            if row["learner"] != spec.name or row["reason"]:
                raise _fail(who, task, "autofuse.fit", f"the blend was made by "
                            f"{row['learner']!r}: {row['reason']}")


#: How much worse (relative) than the best single model a combiner may score on a
#: held-out fold before ``check_combiner`` calls it overfitted.
HELD_OUT_SLACK = 0.02


def _check_held_out(who: str, task: str, combiner: Any, view: Any, data: Any, outer: Any,
                    best: Any) -> None:
    """Fitted on all folds but one and scored on the held-out one (nested): better than a
    constant, and not much worse than the best single model chosen the same way."""
    metric, target = view.metric, view.target
    try:
        mine = metric.score(outer(combiner, view, who), target)
    except Exception as exc:
        raise _fail(who, task, "held-out fold", _error(exc)) from exc
    single = metric.score(outer(best, view, "best"), target)
    constant = metric.score(_constant_prediction(target, data, view.folds), target)
    if not metric.better(mine, constant):
        raise _fail(who, task, "held-out fold", f"{metric.name} {mine:.6g} on rows it was not "
                    f"fitted on is no better than a constant prediction ({constant:.6g})")
    limit = single - HELD_OUT_SLACK * abs(single) if metric.greater_is_better else \
        single + HELD_OUT_SLACK * abs(single)
    if metric.better(limit, mine):
        raise _fail(who, task, "held-out fold", f"{metric.name} {mine:.6g} on rows it was not "
                    f"fitted on is worse than the best single model's {single:.6g} by more "
                    f"than {HELD_OUT_SLACK:.0%}: it overfits the out-of-fold predictions")
