"""How parallel trials scale: the same fixed set of trials with n_jobs = 1, 2, 4, ...

Every run searches the same dataset for the same number of trials with the same seed, so
the first trials (the portfolio) are identical; the wall time of ``autofuse.fit`` is
compared side by side, alternating the settings over the repeats. Workers are started
once before timing (they are reused by every fit of an interpreter).

    python benchmarks/bench_parallel.py --dataset phoneme --trials 24 --jobs 1,2
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd

import autofuse

HERE = os.path.dirname(os.path.abspath(__file__))
DATASETS = os.path.join(HERE, "..", "..", "shared", "datasets")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="phoneme")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--learners", default="linear,hist_gradient_boosting,extra_trees,knn,mlp")
    args = parser.parse_args()
    manifest = pd.read_csv(os.path.join(DATASETS, "manifest.csv")).set_index("name")
    row = manifest.loc[args.dataset]
    frame = pd.read_csv(os.path.join(DATASETS, row["file"]))
    y = frame.pop(row["target"])
    jobs = [int(j) for j in args.jobs.split(",")]
    learners = args.learners.split(",")
    # Start as many workers as the largest setting needs, outside the timings.
    autofuse.fit(frame.iloc[:200], y.iloc[:200], n_trials=max(jobs), n_jobs=max(jobs),
                 learners=["linear"], time_limit=None, verbose=0)
    print(f"# {args.dataset}: {len(frame)} rows, {args.trials} trials, learners {learners}, "
          f"{os.cpu_count()} CPUs")
    walls: dict[int, list[float]] = {j: [] for j in jobs}
    for _ in range(args.repeat):
        for j in jobs:
            t = time.perf_counter()
            model = autofuse.fit(frame, y, n_trials=args.trials, n_jobs=j, time_limit=None,
                                 learners=learners, random_state=0, verbose=0)
            walls[j].append(time.perf_counter() - t)
            print(f"n_jobs={j}: {walls[j][-1]:.1f} s, cv {model.metric_} {model.cv_score_:.4f}",
                  flush=True)
    base = min(walls[jobs[0]])
    print("\n| n_jobs | best wall s | speed-up vs n_jobs=%d |" % jobs[0])
    print("|---|---|---|")
    for j in jobs:
        print(f"| {j} | {min(walls[j]):.1f} | {base / min(walls[j]):.2f}x |")


if __name__ == "__main__":
    main()
