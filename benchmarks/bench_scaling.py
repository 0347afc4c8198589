"""Trials per minute with 1, 2, 4, ... workers sharing one study in PostgreSQL.

For each worker count K: one `autofuse fit DATA --storage URL --study NAME --jobs 1
--trials N` (the run's starter, which runs trials like any worker) and K - 1 `autofuse
worker` processes on this machine, on a fixed, cheap configuration set so trials are
comparable (default: the `linear` learner only, its portfolio then TPE over C), every
process one trial at a time. From the study afterwards:

* trials per minute: trials started / (last trial's end - first trial's start);
* speed-up: that rate over the rate with one worker, measured in the same run;
* the database's share: each process records its seconds in storage calls in the study
  (``worker:HOST:PID``); reported per trial and as a share of the trials' wall time.

PostgreSQL: ``--storage URL`` (a database the benchmark may create studies in), else a
throwaway cluster started as the tests start theirs (tests/_postgres.py: PostgreSQL's
programs and ``autofuse[postgres]`` installed).

    python benchmarks/bench_scaling.py --workers 1,2,4 --trials 40
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Iterator

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

import autofuse

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "datasets")


def table(name: str | None) -> tuple[pd.DataFrame, str]:
    """A shared dataset by name (``../shared/datasets``), or the bundled breast-cancer
    table."""
    if name:
        manifest = pd.read_csv(os.path.join(SHARED, "manifest.csv"))
        row = manifest[manifest["name"] == name].iloc[0]
        return pd.read_csv(os.path.join(SHARED, row["file"])), row["target"]
    from autofuse.testing import example_data

    X, y = example_data("binary", n_rows=569)
    return X.assign(target=y), "target"


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    import _postgres

    cluster = _postgres._Cluster(*_postgres._check_available())
    try:
        cluster.create()
        server = _postgres.PostgresServer(_postgres.HOST, cluster.start(), _postgres.USER, 0,
                                          cluster.folder)
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with contextlib.closing(server.connect()) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        yield server.url(name)
    finally:
        cluster.remove()


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autofuse", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_once(url: str, data: str, target: str, k: int, n_trials: int, learners: str,
             scratch: str) -> dict[str, Any]:
    study_name = f"scaling-{k}-{uuid.uuid4().hex[:6]}"
    artifacts = os.path.join(scratch, "artifacts")
    starter = _cli("fit", data, "--target", target, "--storage", url, "--study", study_name,
                   "--artifacts", artifacts, "--trials", str(n_trials), "--jobs", "1",
                   "--time-limit", "3600", "--learners", learners, "--combiner", "best",
                   "--seed", "0", "--out", os.path.join(scratch, study_name), "--quiet")
    while True:
        try:
            if "autofuse_run" in optuna.load_study(study_name=study_name,
                                                   storage=url).user_attrs:
                break
        except KeyError:
            pass
        if starter.poll() is not None:
            raise RuntimeError(starter.communicate()[1])
        time.sleep(0.1)
    workers = [_cli("worker", "--storage", url, "--study", study_name, "--quiet")
               for _ in range(k - 1)]
    for p in [starter, *workers]:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(err)
    study = optuna.load_study(study_name=study_name, storage=url)
    trials = [t for t in study.get_trials(deepcopy=False)
              if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    span = (end - start).total_seconds()
    busy = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
    tallies = [v for key, v in study.user_attrs.items() if key.startswith("worker:")]
    storage = sum(v["storage_seconds"] for v in tallies)
    return {"workers": k, "trials": len(trials), "span_seconds": span,
            "trials_per_minute": 60 * len(trials) / span,
            "mean_trial_seconds": busy / len(trials),
            "storage_seconds_per_trial": storage / len(trials),
            "storage_share": storage / sum(v["seconds"] for v in tallies),
            "storage_calls_per_trial": sum(v["storage_calls"] for v in tallies) / len(trials),
            "processes": len(tallies),
            "states": {s: sum(t.state.name == s for t in trials)
                       for s in ("COMPLETE", "PRUNED", "FAIL")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    parser.add_argument("--trials", type=int, default=40, help="trials per run (default 40)")
    parser.add_argument("--learners", default="linear", help="default: linear")
    parser.add_argument("--dataset", help="a shared dataset's name (default: the bundled "
                        "breast-cancer table)")
    parser.add_argument("--storage", help="a PostgreSQL URL (default: a throwaway server)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per worker count")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    frame, target = table(args.dataset)
    counts = [int(k) for k in args.workers.split(",")]
    print(f"# autofuse {autofuse.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; {len(frame)} rows, learners {args.learners}, "
          f"{args.trials} trials per run", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as scratch, \
            database(args.storage) as url:
        data = os.path.join(scratch, "train.csv")
        frame.to_csv(data, index=False)
        for _ in range(args.repeats):
            for k in counts:  # interleaved, so a noisy minute touches every count alike
                r = run_once(url, data, target, k, args.trials, args.learners, scratch)
                results.append(r)
                print(json.dumps(r), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    base = np.median([r["trials_per_minute"] for r in results if r["workers"] == counts[0]])
    print("\n| workers | trials/min | speed-up vs 1 | mean trial s | storage s/trial | "
          "storage share | storage calls/trial |")
    print("|---|---|---|---|---|---|---|")
    for k in counts:
        rs = [r for r in results if r["workers"] == k]
        rate = float(np.median([r["trials_per_minute"] for r in rs]))
        print(f"| {k} | {rate:.1f} | {rate / base:.2f}x | "
              f"{np.median([r['mean_trial_seconds'] for r in rs]):.2f} | "
              f"{np.median([r['storage_seconds_per_trial'] for r in rs]):.3f} | "
              f"{100 * np.median([r['storage_share'] for r in rs]):.1f}% | "
              f"{np.median([r['storage_calls_per_trial'] for r in rs]):.0f} |")


if __name__ == "__main__":
    main()
