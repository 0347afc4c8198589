"""Hands-off runs through the ``autofuse`` command, on tables of ../shared/datasets.

For each dataset (the file as it is, gzip CSV, target from manifest.csv):

1. ``autofuse fit FILE --target T --time-limit L`` in a fresh run folder: the wall time of
   the whole command (interpreter start, reading the CSV, search, fusion, writing
   model.pkl and the other files) against the time limit, and the size of model.pkl.
2. The same fit in another folder, killed with SIGKILL at ``--kill-at`` of the time limit,
   then resumed with ``autofuse fit ... --time-limit L/2``: finished trials at the kill
   (read from study.db with sqlite3), how many of them the resumed run kept, and its exit
   code and wall time.

    python benchmarks/bench_cli.py                           # a default choice of tables
    python benchmarks/bench_cli.py --datasets adult,letter --time-limit 60

Built-in learners only (plugin autoloading is off).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATASETS = os.path.join(HERE, "..", "..", "shared", "datasets")
DEFAULT = "titanic,phoneme,car,adult,letter,california_housing"


def _complete(db: str) -> dict[int, float]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return dict(conn.execute(
                "SELECT t.number, v.value FROM trials t JOIN trial_values v "
                "ON v.trial_id = t.trial_id WHERE t.state = 'COMPLETE'").fetchall())
    except sqlite3.Error:
        return {}


def _fit(args: list[str], cwd: str, env: dict[str, str]) -> tuple[int, float, str]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "autofuse", "fit", *args, "--quiet"],
                          cwd=cwd, env=env, capture_output=True, text=True)
    return done.returncode, time.monotonic() - start, done.stderr.strip()


def run(name: str, row: dict[str, str], limit: float, kill_at: float, tmp: str,
        env: dict[str, str]) -> dict:
    data = os.path.abspath(os.path.join(DATASETS, row["file"]))
    base = [data, "--target", row["target"], "--seed", "0"]
    out: dict = {"dataset": name, "rows": int(row["n_rows"])}
    folder = os.path.join(tmp, f"{name}-straight")
    code, wall, err = _fit([*base, "--time-limit", str(limit), "--out", folder], tmp, env)
    out.update(fit_exit=code, fit_wall=round(wall, 2), fit_error=err[-300:] if code else "")
    model = os.path.join(folder, "model.pkl")
    out["model_mb"] = round(os.path.getsize(model) / 1e6, 1) if os.path.exists(model) else None
    if os.path.exists(os.path.join(folder, "run.json")):
        with open(os.path.join(folder, "run.json")) as f:
            record = json.load(f)
        out["fit_seconds"] = record.get("result", {}).get("fit_seconds")
        out["trials"] = record.get("result", {}).get("trials")

    folder = os.path.join(tmp, f"{name}-killed")
    process = subprocess.Popen(
        [sys.executable, "-m", "autofuse", "fit", *base, "--time-limit", str(limit), "--out",
         folder, "--quiet"], cwd=tmp, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    time.sleep(kill_at * limit)
    process.send_signal(signal.SIGKILL)
    process.wait()
    db = os.path.join(folder, "study.db")
    before = _complete(db)
    code, wall, err = _fit([*base, "--time-limit", str(limit / 2), "--out", folder], tmp, env)
    after = _complete(db)
    kept = sum(1 for n, v in before.items() if after.get(n) == v)
    out.update(killed_finished=len(before), resumed_kept=kept, resumed_total=len(after),
               resume_exit=code, resume_wall=round(wall, 2),
               resume_error=err[-300:] if code else "")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=DEFAULT)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--kill-at", type=float, default=0.5,
                        help="kill the second fit at this share of the time limit")
    parser.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args()
    with open(os.path.join(DATASETS, "manifest.csv")) as f:
        manifest = {r["name"]: r for r in csv.DictReader(f)}
    env = {**os.environ, "AUTOFUSE_DISABLE_PLUGIN_AUTOLOAD": "1"}
    results = []
    print(f"# {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; time limit {args.time_limit:g} s, "
          f"kill at {args.kill_at:g} of it")
    print("| dataset | rows | exit | wall s | model.pkl MB | trials done/stopped/failed "
          "| finished at kill | kept on resume | resumed: exit, wall s, trials |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        for name in args.datasets.split(","):
            r = run(name, manifest[name], args.time_limit, args.kill_at, tmp, env)
            results.append(r)
            t = r.get("trials") or {}
            print(f"| {name} | {r['rows']} | {r['fit_exit']} | {r['fit_wall']} | "
                  f"{r['model_mb']} | {t.get('done')}/{t.get('stopped')}/{t.get('failed')} | "
                  f"{r['killed_finished']} | {r['resumed_kept']} | {r['resume_exit']}, "
                  f"{r['resume_wall']}, {r['resumed_total']} |", flush=True)
            for key in ("fit_error", "resume_error"):
                if r[key]:
                    print(f"  {key}: {r[key]}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
