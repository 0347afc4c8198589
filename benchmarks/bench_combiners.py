"""Every combiner on every dataset of ../shared/datasets: test score, honest (outer) and
in-sample scores, members, bytes and prediction latency; ``prune`` under a latency budget
beside AutoGluon's rule.

For each dataset: a fixed 25% test split (seed 0, stratified for classification), one
``autofuse.fit(train, time_limit=60, random_state=0)`` whose library is kept (SQLite in a
temporary folder), then ``model.fuse(name)`` for each of best, average, caruana, stacking
and auto, from the same library. Each fused model is scored on the test rows with
scikit-learn's metric functions (not autofuse's own code), and its latency is measured by
predicting a batch of 10,000 test rows (drawn with replacement; median of 3).

``distill`` (teacher ``auto``, student hist_gradient_boosting, ``time_limit`` 40% of
the run's, as ``fit(combiner="distill")`` leaves it) is compared with its teacher, with the
Caruana blend's latency and with the same learner trained on the labels alone: one model
with the student's parameters fitted on every training row (and, for reference, the
library's trial of it: its 5 fold models averaged). ``soup`` (greedy) is compared with its
best ingredient (that trial alone, as a member: its fold models averaged).

Then ``prune`` with ``infer_limit`` a fifth of the full (caruana) blend's measured latency
per row at batch 10,000, greedy and ``method="drop_worst"`` (AutoGluon's rule: drop the
lowest-scoring member until the limit is met); its measured latency is checked against
the limit + 10%, and its test score against the full blend's.

    python benchmarks/bench_combiners.py                     # all datasets, 60 s each
    python benchmarks/bench_combiners.py --datasets mpg,car --time-limit 20
    python benchmarks/bench_combiners.py --out combiners.json
    python benchmarks/bench_combiners.py --summary combiners.json   # tables from a file
    python benchmarks/bench_combiners.py --combiners caruana,auto,distill,soup --no-prune
    python benchmarks/bench_combiners.py --combiners distill --distill-time 120  # more time
    python benchmarks/bench_combiners.py --workdir runs/   # keep the runs' studies and libraries;
                       # run again with the same --workdir to fuse them again without a search
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_suite import datasets, score, split, use_plugins  # noqa: E402

import autofuse  # noqa: E402
from autofuse.combiners import Combiner, CombinerSpec, WeightedFusion  # noqa: E402

COMBINERS = ("best", "average", "caruana", "stacking", "auto", "distill", "soup")
#: Share of the run's time limit given to distill (as ``fit(combiner="distill")`` keeps).
DISTILL_SHARE = 0.4
#: Rows per latency batch, and the number of timed batches (the median is kept).
BATCH, REPEATS = 10_000, 3


def latency(model: autofuse.FusedModel, X: pd.DataFrame) -> float:
    """Seconds per row to predict a batch of ``BATCH`` rows drawn from ``X``."""
    batch = X.iloc[np.random.default_rng(0).integers(0, len(X), size=BATCH)]
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        model.predict(batch)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) / BATCH


def predictions(model: autofuse.FusedModel, X: pd.DataFrame, task: str) -> np.ndarray:
    return model.predict(X) if task == "regression" else model.predict_proba(X)


def describe(model: autofuse.FusedModel, row: pd.Series, X_te: pd.DataFrame, y_te: np.ndarray,
             classes: np.ndarray | None, seconds: float) -> dict:
    blend = model.leaderboard().iloc[0]
    return {"combiner": model.combiner_,
            "test": score(row["metric"], y_te, predictions(model, X_te, row["task"]), classes),
            "outer": float(model.outer_score_), "in_sample": float(model.cv_score_),
            "members": int(blend["members"]), "bytes": int(blend["bytes"]),
            "latency": latency(model, X_te), "fuse_seconds": seconds}


class _Pick(Combiner):
    """One trial alone (the student's learner on the labels, a soup's best ingredient)."""

    def __init__(self, trial: int) -> None:
        self.trial = trial

    def fuse(self, view):
        return WeightedFusion({self.trial: 1.0})


def pick(model: autofuse.FusedModel, trial: int) -> autofuse.FusedModel:
    return model.fuse(CombinerSpec(f"trial {trial}", lambda m, r, n: _Pick(trial)))


def single_model(model: autofuse.FusedModel, learner: str, params: dict, row: pd.Series,
                 X_tr: pd.DataFrame, y_tr: np.ndarray, X_te: pd.DataFrame, y_te: np.ndarray,
                 classes: np.ndarray | None) -> dict:
    """The student's learner with the student's parameters, fitted once on every training
    row with the labels alone: what the student is, without the teacher."""
    from autofuse._data import conform

    spec = autofuse.plugins.learners()[learner]
    estimator = spec.estimator(params, model._data, 0)
    target = y_tr.astype(float) if classes is None else np.searchsorted(model.classes_, y_tr)
    t = time.perf_counter()
    estimator.fit(conform(X_tr, model._data), target)
    seconds = time.perf_counter() - t
    test = conform(X_te, model._data)
    pred = estimator.predict(test) if classes is None else estimator.predict_proba(test)
    batch = conform(X_te.iloc[np.random.default_rng(0).integers(0, len(X_te), size=BATCH)],
                    model._data)
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        estimator.predict(batch)
        times.append(time.perf_counter() - t0)
    return {"test": score(row["metric"], y_te, pred, classes), "fit_seconds": seconds,
            "latency": float(np.median(times)) / BATCH}


def run_one(row: pd.Series, time_limit: float, workdir: str, combiners: tuple[str, ...],
            prune: bool, distill_time: float | None = None) -> dict:
    X_tr, X_te, y_tr, y_te, classes, n_rows = split(row)
    task = row["task"]

    db = os.path.join(workdir, f"{row['name']}.db")
    kept = os.path.exists(db)  # fuse the kept library again: n_trials=0, no search
    t = time.perf_counter()
    model = autofuse.fit(X_tr, y_tr, time_limit=time_limit, metric=row["metric"], task=task,
                         random_state=0, verbose=0, combiner="caruana",
                         n_trials=0 if kept else None, storage=f"sqlite:///{db}")
    # distill as a run's fusion step would: in the time a 60 s run leaves it (or
    # --distill-time seconds).
    if distill_time is None:
        distill_time = DISTILL_SHARE * time_limit
    out = {"searched": not kept, "dataset": row["name"], "task": task, "metric": row["metric"],
           "rows": n_rows, "fit_seconds": time.perf_counter() - t,
           "distill_time": distill_time, "combiners": {}}
    for name in combiners:
        t = time.perf_counter()
        try:
            fused = model.fuse(name, **({"time_limit": distill_time}
                                        if name == "distill" else {}))
        except Exception as exc:  # reported in the table; the others go on
            out["combiners"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        out["combiners"][name] = describe(fused, row, X_te, y_te, classes,
                                          time.perf_counter() - t)
        if name == "auto":
            rows = fused.leaderboard().query("kind == 'combiner'")
            out["nested_seconds"] = float(rows["fit_seconds"].sum())
        params = fused.leaderboard().iloc[0]["params"]
        if name in ("distill", "soup"):
            out["combiners"][name]["params"] = params
        # The student's learner trained on the labels alone; the soup's best ingredient.
        other = (params.get("labels_alone", {}).get("trial") if name == "distill" else
                 params.get("best_ingredient", {}).get("trial") if name == "soup" else None)
        if other is not None:
            key = "labels_alone" if name == "distill" else "best_ingredient"
            out["combiners"][key] = describe(pick(model, int(other)), row, X_te, y_te,
                                             classes, 0.0)
        if name == "distill":
            out["combiners"]["labels_alone_single"] = single_model(
                model, params["student"], params["params"], row, X_tr, y_tr, X_te, y_te,
                classes)
    full = out["combiners"].get("caruana", {})
    if prune and "latency" in full:
        limit = full["latency"] / 5
        out["infer_limit"] = limit
        for method in ("greedy", "drop_worst"):
            key = "prune" if method == "greedy" else "prune_drop_worst"
            t = time.perf_counter()
            try:
                fused = model.fuse("prune", infer_limit=limit, method=method)
            except Exception as exc:  # an impossible budget names the fastest blend
                out["combiners"][key] = {"error": str(exc)}
                continue
            out["combiners"][key] = describe(fused, row, X_te, y_te, classes,
                                             time.perf_counter() - t)
    return out


def _lower(metric: str) -> bool:
    return metric != "roc_auc"


def at_least(a: float, b: float, metric: str) -> bool:
    """``a`` at least as good as ``b`` (up to rounding)."""
    tol = 1e-9 * max(1.0, abs(b))
    return a <= b + tol if _lower(metric) else a >= b - tol


def relative_loss(a: float, full: float, metric: str) -> float:
    """How much worse ``a`` is than ``full``, relative to ``full`` (negative: better)."""
    return ((a - full) if _lower(metric) else (full - a)) / abs(full)


def summarise(results: list[dict]) -> None:
    ok = [r for r in results if "error" not in r]
    if all(n in r["combiners"] for r in ok for n in COMBINERS[:5]):
        summarise_fusion(ok)
    summarise_one_model(ok)


def _cell(x: dict, key: str = "test") -> str:
    return f"{x[key]:.4f}" if key in x else "error"


def summarise_one_model(ok: list[dict]) -> None:
    """The distilled student against its teacher (auto), the Caruana blend's latency and
    the same learner trained on the labels; the soup against its best ingredient."""
    print("\ndistill (student hist_gradient_boosting, teacher auto)")
    print("| dataset | metric | teacher test | student test | loss vs teacher | labels alone, "
          "one model | student beats it | labels alone, 5 fold models | caruana ms/1,000 | "
          "student ms/1,000 | speed-up | student MB | synthetic rows |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    losses, beats, fast, n_distill = [], 0, 0, 0
    for r in ok:
        c, m = r["combiners"], r["metric"]
        d, t, a5, b = (c.get(k, {}) for k in ("distill", "auto", "labels_alone", "caruana"))
        a = c.get("labels_alone_single", a5)
        if "test" not in d:
            print(f"| {r['dataset']} | {m} | {_cell(t)} | error: {d.get('error', '')[:80]} |"
                  + " |" * 10)
            continue
        n_distill += 1
        loss = relative_loss(d["test"], t["test"], m) if "test" in t else float("nan")
        losses.append(loss)
        won = "test" in a and at_least(d["test"], a["test"], m) and d["test"] != a["test"]
        beats += won
        speed = b["latency"] / d["latency"] if "latency" in b else float("nan")
        fast += speed >= 10
        print(f"| {r['dataset']} | {m} | {_cell(t)} | {d['test']:.4f} | {100 * loss:+.2f}% | "
              f"{_cell(a)} | {'yes' if won else 'no'} | {_cell(a5)} | "
              f"{1e6 * b.get('latency', np.nan):.1f} | "
              f"{1e6 * d['latency']:.1f} | {speed:.1f}x | {d['bytes'] / 1e6:.2f} | "
              f"{d['params'].get('augmented_rows', '-')} |")
    if n_distill:
        print(f"student >= 10x faster than caruana on {fast}/{n_distill}; median relative "
              f"test loss vs teacher {100 * np.median(losses):.2f}%; beats the same learner "
              f"on labels alone (one model, same parameters) on {beats}/{n_distill} "
              f"(of {len(ok)} datasets)")
    print("\nsoup (greedy)")
    print("| dataset | metric | family | ingredients / candidates | best ingredient test | "
          "soup test | soup >= best ingredient | ingredient ms/1,000 | soup ms/1,000 | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ge, within, n_soup = 0, 0, 0
    for r in ok:
        c, m = r["combiners"], r["metric"]
        s, i = c.get("soup", {}), c.get("best_ingredient", {})
        if "test" not in s:
            print(f"| {r['dataset']} | {m} | error: {s.get('error', '')[:100]} |" + " |" * 7)
            continue
        n_soup += 1
        p = s["params"]
        ok_ge = "test" in i and at_least(s["test"], i["test"], m)
        ge += ok_ge
        ratio = s["latency"] / i["latency"] if "latency" in i else float("nan")
        within += ratio <= 1.2
        print(f"| {r['dataset']} | {m} | {p['family']} | {len(p['ingredients'])} / "
              f"{p['candidates']} | {_cell(i)} | {s['test']:.4f} | {'yes' if ok_ge else 'no'} "
              f"| {1e6 * i.get('latency', np.nan):.1f} | {1e6 * s['latency']:.1f} | "
              f"{ratio:.2f} |")
    if n_soup:
        print(f"soup >= its best ingredient on test on {ge}/{n_soup} datasets where it ran "
              f"(of {len(ok)}); "
              f"predict time within 1.2x of the ingredient's on {within}/{n_soup}")


def summarise_fusion(ok: list[dict]) -> None:
    COMBINERS = ("best", "average", "caruana", "stacking", "auto")  # noqa: N806
    print("\n| dataset | metric | " + " | ".join(COMBINERS) +
          " | auto chose | nested s (auto) |")
    print("|---|---|" + "---|" * (len(COMBINERS) + 2))
    for r in ok:
        c = r["combiners"]
        cells = [f"{c[n]['test']:.4f}" if "test" in c[n] else "error" for n in COMBINERS]
        chose = c["auto"].get("combiner", "-")
        print(f"| {r['dataset']} | {r['metric']} | " + " | ".join(cells) +
              f" | {chose} | {r.get('nested_seconds', float('nan')):.2f} |")
    print("\nPer combiner: outer / in-sample score, members, MB, ms per 1,000 rows "
          "(batch 10,000)")
    print("| dataset | " + " | ".join(COMBINERS) + " |")
    print("|---|" + "---|" * len(COMBINERS))
    for r in ok:
        cells = []
        for n in COMBINERS:
            x = r["combiners"][n]
            cells.append("error" if "error" in x else
                         f"{x['outer']:.4f} / {x['in_sample']:.4f}, {x['members']}, "
                         f"{x['bytes'] / 1e6:.1f}, {1e6 * x['latency']:.0f}")
        print(f"| {r['dataset']} | " + " | ".join(cells) + " |")
    print("\nprune at a fifth of the full blend's latency (greedy vs drop-worst)")
    print("| dataset | limit ms/1,000 | full: test, ms | greedy: test, ms, members, loss | "
          "drop-worst: test, ms, members, loss | greedy within limit+10% |")
    print("|---|---|---|---|---|---|")
    losses, dw_losses, within, feasible = [], [], 0, 0
    for r in ok:
        c, m = r["combiners"], r["metric"]
        full = c["caruana"]
        if "infer_limit" not in r:
            continue
        cells = []
        for key in ("prune", "prune_drop_worst"):
            x = c.get(key, {"error": "not run"})
            if "error" in x:
                cells.append(f"error: {x['error'][:90]}")
                continue
            loss = relative_loss(x["test"], full["test"], m)
            (losses if key == "prune" else dw_losses).append(loss)
            cells.append(f"{x['test']:.4f}, {1e6 * x['latency']:.1f}, {x['members']}, "
                         f"{100 * loss:+.2f}%")
        ok_limit = "-"
        if "test" in c.get("prune", {}):
            feasible += 1
            hit = c["prune"]["latency"] <= 1.1 * r["infer_limit"]
            within += hit
            ok_limit = "yes" if hit else "no"
        print(f"| {r['dataset']} | {1e6 * r['infer_limit']:.1f} | {full['test']:.4f}, "
              f"{1e6 * full['latency']:.1f} | " + " | ".join(cells) + f" | {ok_limit} |")
    n = len(ok)
    auto_ge_caruana = sum(at_least(r["combiners"]["auto"]["test"],
                                   r["combiners"]["caruana"]["test"], r["metric"])
                          for r in ok if "test" in r["combiners"]["auto"])
    auto_ge_best = sum(at_least(r["combiners"]["auto"]["test"], r["combiners"]["best"]["test"],
                                r["metric"]) for r in ok if "test" in r["combiners"]["auto"])
    wins = {name: 0 for name in COMBINERS if name != "auto"}
    for r in ok:
        tests = {k: r["combiners"][k]["test"] for k in wins if "test" in r["combiners"][k]}
        pick = (min if _lower(r["metric"]) else max)(tests, key=tests.get)
        wins[pick] += 1
    largest = max(ok, key=lambda r: r["rows"], default=None)
    print(f"\nauto >= caruana on test: {auto_ge_caruana}/{n}; auto >= best: {auto_ge_best}/{n}")
    print("best test score (ties to the first listed): " +
          ", ".join(f"{k} {v}" for k, v in wins.items()))
    if losses:
        print(f"prune (greedy): within limit + 10% on {within}/{feasible} datasets where it "
              f"found a blend; median relative test loss {100 * np.median(losses):.2f}% "
              f"(drop-worst {100 * np.median(dw_losses) if dw_losses else float('nan'):.2f}%)")
    if largest is not None:
        print(f"nested selection on the largest dataset ({largest['dataset']}, "
              f"{largest['rows']} rows): {largest.get('nested_seconds', float('nan')):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", help="comma-separated names (default: all)")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--summary", help="print the tables of an --out file and exit")
    parser.add_argument("--workdir", help="keep each run (study and library) here; a run "
                        "already there is fused again without a search")
    parser.add_argument("--plugins", help="comma-separated installed plugins to load "
                        "(default: none, built-in learners only)")
    parser.add_argument("--combiners", help=f"comma-separated (default: {','.join(COMBINERS)})")
    parser.add_argument("--no-prune", action="store_true", help="skip prune")
    parser.add_argument("--distill-time", type=float, help="seconds given to distill "
                        f"(default: {DISTILL_SHARE:g} of --time-limit, what a run leaves it)")
    args = parser.parse_args()
    if args.summary:
        with open(args.summary) as f:
            summarise(json.load(f))
        return
    use_plugins(args.plugins)
    manifest = datasets(args.datasets)
    print(f"# autofuse {autofuse.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, time_limit={args.time_limit:g}", flush=True)
    combiners = tuple(args.combiners.split(",")) if args.combiners else COMBINERS
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-combiners-") as scratch:
        workdir = args.workdir or scratch
        os.makedirs(workdir, exist_ok=True)
        for _, row in manifest.iterrows():
            try:
                r = run_one(row, args.time_limit, workdir, combiners, not args.no_prune,
                            args.distill_time)
            except Exception as exc:  # one dataset must not hide the others
                r = {"dataset": row["name"], "error": f"{type(exc).__name__}: {exc}"}
            results.append(r)
            print(json.dumps(r), flush=True)
            if args.out:
                with open(args.out, "w") as f:
                    json.dump(results, f, indent=1)
    summarise(results)


if __name__ == "__main__":
    main()
