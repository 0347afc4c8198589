"""autofuse on every dataset of ../shared/datasets/manifest.csv, against baselines.

For each dataset: a fixed 25% test split (seed 0, stratified for classification), then

* autofuse.fit(train, time_limit=...) with the manifest's metric: its blend, and its best
  single model (``FusedModel.predict_best_single``),
* scikit-learn's HistGradientBoosting with default settings and random_state=0 (above
  10,000 rows its early stopping holds out a random 10%; unseeded, its score moved by up
  to 0.8% between runs); text columns as pandas categories, so it uses its native
  categorical support, and text columns with more than 255 distinct values, which it
  cannot take, dropped;

all scored on the test rows with scikit-learn's metric functions (not autofuse's own code).

Beside the scores: the peak resident memory of the largest process (the fitting process, or
its largest worker; sampled every 0.1 s from /proc during the fit and the predictions) and
the peak size of the model library on disk during the fit (the run folder's fold models
and out-of-fold predictions), Linux only. Each dataset runs in a fresh process (as a
user's script would), so one table's memory is not counted in the next one's;
``--same-process`` runs them all in this one.

    python benchmarks/bench_suite.py                      # all datasets, 60 s each
    python benchmarks/bench_suite.py --datasets mpg,car --time-limit 20
    python benchmarks/bench_suite.py --out results.json   # also write the raw figures

Installed plugins are not used unless named: ``--plugins lightgbm,xgboost,catboost`` loads
those (``AUTOFUSE_PLUGINS``) and searches them beside the built-ins; without it plugin
autoloading is off (``AUTOFUSE_DISABLE_PLUGIN_AUTOLOAD=1``). ``--compare A.json B.json``
prints two runs' ``--out`` files side by side (built-ins only vs with plugins).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error
from sklearn.model_selection import train_test_split

import autofuse
from autofuse._workers import resident_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
DATASETS = os.path.join(HERE, "..", "..", "shared", "datasets")


def score(metric: str, y_true: np.ndarray, pred: np.ndarray, classes: np.ndarray) -> float:
    if metric == "roc_auc":
        return float(roc_auc_score(y_true == classes[1], pred[:, 1]))
    if metric == "log_loss":
        return float(log_loss(y_true, pred, labels=classes))
    if metric == "rmse":
        return float(root_mean_squared_error(y_true, pred))
    raise ValueError(metric)


def hgb_default(task: str, X_tr: pd.DataFrame, y_tr: np.ndarray, X_te: pd.DataFrame):
    cats = [c for c in X_tr.columns if not pd.api.types.is_numeric_dtype(X_tr[c])]
    both = pd.concat([X_tr, X_te])
    # HistGradientBoosting takes at most 255 categories per column: a user would drop
    # identifier-like text (titanic's Name, Ticket) before fitting it.
    wide = [c for c in cats if X_tr[c].nunique() > 255]
    both = both.drop(columns=wide)
    cats = [c for c in cats if c not in wide]
    for c in cats:
        both[c] = both[c].astype("category")
    A, B = both.iloc[:len(X_tr)], both.iloc[len(X_tr):]
    if task == "regression":
        model = HistGradientBoostingRegressor(categorical_features="from_dtype",
                                              random_state=0).fit(A, y_tr)
        return model.predict(B)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype",
                                           random_state=0).fit(A, y_tr)
    return model.predict_proba(B)


def split(row: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray,
                                   np.ndarray | None, int]:
    """The manifest row's table: (X_train, X_test, y_train, y_test, the classes or None,
    rows in all), a fixed 25% test split, seed 0, stratified for classification."""
    frame = pd.read_csv(os.path.join(DATASETS, row["file"]))
    y = frame.pop(row["target"]).to_numpy()
    classification = row["task"] != "regression"
    X_tr, X_te, y_tr, y_te = train_test_split(
        frame, y, test_size=0.25, random_state=0, stratify=y if classification else None)
    return X_tr, X_te, y_tr, y_te, np.unique(y_tr) if classification else None, len(frame)


def use_plugins(names: str | None) -> None:
    """Load only the installed plugins ``names`` (comma-separated), or none."""
    if names:
        os.environ["AUTOFUSE_PLUGINS"] = names
        os.environ.pop("AUTOFUSE_DISABLE_PLUGIN_AUTOLOAD", None)
    else:
        os.environ["AUTOFUSE_DISABLE_PLUGIN_AUTOLOAD"] = "1"


def datasets(names: str | None) -> pd.DataFrame:
    """The manifest's rows, all or those ``names`` (comma-separated) lists."""
    manifest = pd.read_csv(os.path.join(DATASETS, "manifest.csv"))
    return manifest[manifest["name"].isin(names.split(","))] if names else manifest


def _resident(pid: int) -> int:
    return resident_bytes(pid) or 0


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _folder_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


class Peaks:
    """Peak resident memory of this process and of its largest child, and peak bytes under
    a folder, sampled in a thread while the block runs."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.parent = self.worker = self.disk = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me, ticks = os.getpid(), 0
        while not self._stop.is_set():
            self.parent = max(self.parent, _resident(me))
            self.worker = max([self.worker] + [_resident(c) for c in _children(me)])
            if ticks % 5 == 0:
                self.disk = max(self.disk, _folder_bytes(self.folder))
            ticks += 1
            self._stop.wait(0.1)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_one(row: pd.Series, time_limit: float, n_jobs: int | None, refit_full: bool,
            cv: int = 5) -> dict:
    X_tr, X_te, y_tr, y_te, classes, n_rows = split(row)
    task = row["task"]
    classification = task != "regression"
    jobs = {} if n_jobs is None else {"n_jobs": n_jobs}

    folder = tempfile.mkdtemp(prefix="bench-suite-")
    tempfile.tempdir = folder  # the run's temporary model library goes here
    try:
        with Peaks(folder) as peaks:
            t = time.perf_counter()
            model = autofuse.fit(X_tr, y_tr, time_limit=time_limit, metric=row["metric"],
                                 task=task, refit_full=refit_full, cv=cv, random_state=0,
                                 verbose=0, **jobs)
            wall = time.perf_counter() - t
            if classification:
                blend = model.predict_proba(X_te)
                single = model.predict_best_single(X_te)
            else:
                blend = model.predict(X_te)
                single = model.predict_best_single(X_te)
    finally:
        tempfile.tempdir = None
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
    board = model.leaderboard()
    counts = board.loc[board["kind"] == "trial", "status"].value_counts()
    t = time.perf_counter()
    hgb = hgb_default(task, X_tr, y_tr, X_te)
    hgb_seconds = time.perf_counter() - t
    return {
        "dataset": row["name"], "task": task, "metric": row["metric"],
        "rows": n_rows, "blend": score(row["metric"], y_te, blend, classes),
        "best_single": score(row["metric"], y_te, single, classes),
        "hgb_default": score(row["metric"], y_te, hgb, classes),
        "best_single_learner": board.loc[1, "learner"], "members": int(len(model.weights_)),
        "trials_done": int(counts.get("done", 0)), "trials_stopped": int(counts.get("stopped", 0)),
        "trials_failed": int(counts.get("failed", 0)), "seconds": wall,
        "hgb_seconds": hgb_seconds, "cv_blend": model.cv_score_,
        "peak_parent_gb": peaks.parent / 2**30, "peak_worker_gb": peaks.worker / 2**30,
        "peak_library_gb": peaks.disk / 2**30,
        "failed_reasons": sorted(set(board.loc[(board["kind"] == "trial")
                                               & (board["status"] == "failed"), "reason"]
                                     .str.slice(0, 120))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", help="comma-separated names (default: all)")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="autofuse.fit's n_jobs (default: fit's default, -1)")
    parser.add_argument("--refit-full", action="store_true",
                        help="fit with refit_full=True (members refitted on all rows)")
    parser.add_argument("--cv", type=int, default=5, help="folds (autofuse.fit's cv)")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--plugins", help="comma-separated installed plugins to load and "
                        "search (default: none, built-in learners only)")
    parser.add_argument("--same-process", action="store_true",
                        help="run every dataset in this process (default: a fresh one each)")
    parser.add_argument("--compare", nargs=2, metavar=("BUILTINS_JSON", "PLUGINS_JSON"),
                        help="print two --out files side by side and exit")
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    use_plugins(args.plugins)
    loaded = sorted(autofuse.plugins.learners())
    manifest = datasets(args.datasets)
    print(f"# autofuse {autofuse.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, time_limit={args.time_limit:g}, "
          f"n_jobs={'default' if args.n_jobs is None else args.n_jobs}, "
          f"refit_full={args.refit_full}, cv={args.cv}; learners: {', '.join(loaded)}")
    print("| dataset | metric | blend | best single | HGB default | blend >= single | "
          "blend beats HGB | fit s | trials done/stopped/failed | peak GB (process, worker) "
          "| library GB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    results = []
    for _, row in manifest.iterrows():
        try:
            if args.same_process or len(manifest) == 1:
                r = run_one(row, args.time_limit, args.n_jobs, args.refit_full, args.cv)
            else:
                r = _in_fresh_process(row["name"], args)
        except Exception as exc:  # report and go on: one dataset must not hide the others
            print(f"| {row['name']} | {row['metric']} | error: {type(exc).__name__}: {exc} |")
            results.append({"dataset": row["name"], "error": f"{type(exc).__name__}: {exc}"})
            continue
        lower = r["metric"] != "roc_auc"
        # "At least as good" allows rounding: a blend of one member is that member.
        better = ((lambda a, b: a <= b + 1e-9 * abs(b)) if lower
                  else (lambda a, b: a >= b - 1e-9 * abs(b)))
        strictly = (lambda a, b: a < b) if lower else (lambda a, b: a > b)
        r["blend_ge_single"] = bool(better(r["blend"], r["best_single"]))
        r["blend_beats_hgb"] = bool(strictly(r["blend"], r["hgb_default"]))
        results.append(r)
        print(f"| {r['dataset']} | {r['metric']} | {r['blend']:.4f} | {r['best_single']:.4f} "
              f"({r['best_single_learner']}) | {r['hgb_default']:.4f} | "
              f"{'yes' if r['blend_ge_single'] else 'no'} | "
              f"{'yes' if r['blend_beats_hgb'] else 'no'} | {r['seconds']:.1f} | "
              f"{r['trials_done']}/{r['trials_stopped']}/{r['trials_failed']} | "
              f"{max(r['peak_parent_gb'], r['peak_worker_gb']):.2f} "
              f"({r['peak_parent_gb']:.2f}, {r['peak_worker_gb']:.2f}) | "
              f"{r['peak_library_gb']:.2f} |", flush=True)
    ok = [r for r in results if "error" not in r]
    limit = args.time_limit * 1.05
    print(f"\nblend >= best single: {sum(r['blend_ge_single'] for r in ok)}/{len(results)}; "
          f"blend beats default HGB: {sum(r['blend_beats_hgb'] for r in ok)}/{len(results)}; "
          f"within {limit:.0f} s: {sum(r['seconds'] <= limit for r in ok)}/{len(results)}; "
          f"longest fit {max((r['seconds'] for r in ok), default=0):.1f} s; largest process "
          f"{max((max(r['peak_parent_gb'], r['peak_worker_gb']) for r in ok), default=0):.2f}"
          f" GB; largest library {max((r['peak_library_gb'] for r in ok), default=0):.2f} GB")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    sys.exit(0 if len(ok) == len(results) else 1)


def _in_fresh_process(name: str, args: argparse.Namespace) -> dict:
    """``run_one`` for dataset ``name`` in a new interpreter running this script."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "one.json")
        command = [sys.executable, os.path.abspath(__file__), "--datasets", name,
                   "--time-limit", str(args.time_limit), "--cv", str(args.cv), "--out", out]
        if args.n_jobs is not None:
            command += ["--n-jobs", str(args.n_jobs)]
        if args.refit_full:
            command.append("--refit-full")
        if args.plugins:
            command += ["--plugins", args.plugins]
        done = subprocess.run(command, capture_output=True, text=True)
        if not os.path.exists(out):
            raise RuntimeError(f"the run for {name} failed: {done.stderr.strip()[-500:]}")
        with open(out) as f:
            result = json.load(f)[0]
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def compare(builtins_json: str, plugins_json: str) -> None:
    """Two runs side by side: the built-ins-only blend and the blend with plugins."""
    with open(builtins_json) as f:
        a = {r["dataset"]: r for r in json.load(f)}
    with open(plugins_json) as f:
        b = {r["dataset"]: r for r in json.load(f)}
    print("| dataset | metric | HGB default | blend, built-ins | blend, + plugins | best single, "
          "+ plugins | + plugins beats built-ins | + plugins beats HGB | fit s, + plugins |")
    print("|---|---|---|---|---|---|---|---|---|")
    wins = beats = n = 0
    for name, ra in a.items():
        rb = b.get(name)
        if rb is None or "error" in ra or "error" in rb:
            print(f"| {name} | error: {ra.get('error') or (rb or {}).get('error')} |")
            continue
        lower = ra["metric"] != "roc_auc"
        strictly = (lambda x, y: x < y) if lower else (lambda x, y: x > y)
        win, beat = strictly(rb["blend"], ra["blend"]), strictly(rb["blend"], rb["hgb_default"])
        wins, beats, n = wins + win, beats + beat, n + 1
        print(f"| {name} | {ra['metric']} | {ra['hgb_default']:.4f} | {ra['blend']:.4f} | "
              f"{rb['blend']:.4f} | {rb['best_single']:.4f} ({rb['best_single_learner']}) | "
              f"{'yes' if win else 'no'} | {'yes' if beat else 'no'} | {rb['seconds']:.1f} |")
    print(f"\n+ plugins better than built-ins: {wins}/{n}; + plugins beats HGB: {beats}/{n}; "
          f"built-ins beat HGB: {sum(r.get('blend_beats_hgb', False) for r in a.values())}/{n}")


if __name__ == "__main__":
    main()
