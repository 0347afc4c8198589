"""The fault-injection runs, timed: each faulty learner of ``tests/_faults.py`` beside two
working ones (linear, hist_gradient_boosting), then all of them together, each a
``time_limit=15`` fit with ``memory_limit=1`` GB on a 600-row table.

For each run: the wall time over the budget (the promise is at most 1.05), the faulty
trials and their first reason, and the working learners' finished trials.

    python benchmarks/bench_faults.py
    python benchmarks/bench_faults.py --time-limit 30 --faults hangs,allocates
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from sklearn.datasets import make_classification, make_regression

import autofuse
from autofuse import plugins

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from _faults import CLASSIFICATION_FAULTS, REGRESSION_FAULTS, FaultPlugin  # noqa: E402

WORKING = ["linear", "hist_gradient_boosting"]


def run(task: str, faults: list[str], time_limit: float) -> dict:
    if task == "regression":
        X, y = make_regression(600, 8, noise=1.0, random_state=0)
    else:
        X, y = make_classification(600, 8, random_state=0)
    t = time.perf_counter()
    model = autofuse.fit(X, y, time_limit=time_limit, learners=[*faults, *WORKING],
                         memory_limit=1.0, random_state=0, verbose=0)
    wall = time.perf_counter() - t
    board = model.leaderboard()
    trials = board[board["kind"] == "trial"]
    faulty = trials[trials["learner"].isin(faults)]
    ran = faulty[~faulty["reason"].str.startswith("not run")]
    working = trials[trials["learner"].isin(WORKING)]
    return {"wall": wall, "ratio": wall / time_limit, "faulty_failed": int(
        (ran["status"] == "failed").sum()), "faulty_ran": len(ran),
        "reason": ran["reason"].iloc[0][:90] if len(ran) else "",
        "working_done": int((working["status"] == "done").sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time-limit", type=float, default=15.0)
    parser.add_argument("--faults", help="comma-separated (default: every fault)")
    args = parser.parse_args()
    plugins.register(FaultPlugin(), name="faults")
    chosen = args.faults.split(",") if args.faults else None
    print(f"# autofuse {autofuse.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, time_limit={args.time_limit:g}")
    print("| task | faults | wall s | wall / budget | faulty trials failed / run | first "
          "reason | working trials done |")
    print("|---|---|---|---|---|---|---|")
    runs = []
    for task, faults in (("binary", CLASSIFICATION_FAULTS), ("regression", REGRESSION_FAULTS)):
        faults = [f for f in faults if chosen is None or f in chosen]
        runs += [(task, [f]) for f in faults] + [(task, faults)]
    worst = 0.0
    for task, faults in runs:
        r = run(task, faults, args.time_limit)
        worst = max(worst, r["ratio"])
        name = faults[0] if len(faults) == 1 else f"all {len(faults)}"
        print(f"| {task} | {name} | {r['wall']:.1f} | {r['ratio']:.3f} | "
              f"{r['faulty_failed']} / {r['faulty_ran']} | {r['reason']} | "
              f"{r['working_done']} |", flush=True)
    print(f"\nlargest wall / budget: {worst:.3f}")


if __name__ == "__main__":
    main()
