"""Time greedy ensemble selection side by side, in one run.

For every case (models x rows x outputs, metric), 50 rounds, no sorted initialisation, no
bagging:

- autofuse's compiled core on one thread and on every thread;
- autofuse's NumPy reference (the fallback);
- AutoGluon's ``EnsembleSelection`` when ``autogluon.core`` is importable (install it in a
  separate benchmark environment, never as a dependency of autofuse);
- the floor of any exact greedy selection: one pass over the whole prediction array per
  round (``numpy.sum`` of the array, best of several runs, times the number of rounds).

Timings of autofuse and the floor are the best of ``--repeat`` runs (one thread and all
threads alternating); AutoGluon and the reference run once (they take minutes). The blends' scores are compared too: AutoGluon
breaks ties at random and rounds scores, so weights may differ where scores tie.

    python benchmarks/bench_selection.py --out docs/_bench_selection.md
    python benchmarks/bench_selection.py --cases 200,20000,10,accuracy --data random

Data: ``oof`` (default) imitates out-of-fold predictions of a model library: correlated
models of varied skill around a shared per-row difficulty; ``random`` draws every
probability independently (the worst case for autofuse's pruning of decided rows).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np

import autofuse
from autofuse._core import backend, openmp_enabled, select
from autofuse._core._greedy import default_threads

DEFAULT_CASES = [
    f"{size},{metric}"
    for size in ("100,10000,1", "200,20000,10", "500,50000,1")
    for metric in ("log_loss", "accuracy", "roc_auc", "rmse")
]


def make_data(kind: str, n_models: int, n_rows: int, n_outputs: int, metric: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if metric == "rmse":
        y = rng.normal(size=(n_rows, n_outputs))
        if kind == "random":
            P = rng.normal(size=(n_models, n_rows, n_outputs))
        else:
            shared = rng.normal(scale=0.5, size=(n_rows, n_outputs))
            scale = rng.uniform(0.3, 1.5, size=(n_models, 1, 1))
            P = y[None] + shared[None] + scale * rng.normal(size=(n_models, n_rows, n_outputs))
        return np.ascontiguousarray(P), (y[:, 0] if n_outputs == 1 else y)
    n_classes = max(n_outputs, 2)
    y = rng.integers(0, n_classes, n_rows)
    P = np.empty((n_models, n_rows, n_classes))
    if kind == "random":
        P[:] = rng.random((n_models, n_rows, n_classes))
        P /= P.sum(axis=2, keepdims=True)
    else:
        shared = rng.normal(size=(n_rows, n_classes))
        onehot = np.eye(n_classes)[y]
        for m in range(n_models):
            z = rng.uniform(0.75, 3.0) * onehot + shared + rng.normal(size=(n_rows, n_classes))
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            P[m] = e / e.sum(axis=1, keepdims=True)
    if n_outputs == 1:
        P = np.ascontiguousarray(P[:, :, 1:])
    return P, y


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def autogluon_selection(P, y, metric: str, rounds: int):
    """Fit AutoGluon's EnsembleSelection; returns (seconds, weights) or None if unsupported."""
    try:
        from autogluon.core import metrics
        from autogluon.core.models.greedy_ensemble.ensemble_selection import EnsembleSelection
    except ImportError:
        return None
    n_outputs = P.shape[2]
    if metric == "rmse":
        if n_outputs > 1:
            return None  # AutoGluon has no multi-output regression
        problem, preds, scorer = "regression", [p[:, 0] for p in P], metrics.root_mean_squared_error
    elif n_outputs == 1:
        problem, preds = "binary", [p[:, 0] for p in P]
        scorer = {"log_loss": metrics.log_loss, "accuracy": metrics.accuracy,
                  "roc_auc": metrics.roc_auc}[metric]
    else:
        problem, preds = "multiclass", list(P)
        scorer = {"log_loss": metrics.log_loss, "accuracy": metrics.accuracy,
                  "roc_auc": getattr(metrics, "roc_auc_ovr", None)}[metric]  # macro one-vs-rest
        if scorer is None:
            return None
    es = EnsembleSelection(ensemble_size=rounds, problem_type=problem, metric=scorer,
                           random_state=np.random.RandomState(0))
    t = time.perf_counter()
    es.fit(preds, y)
    return time.perf_counter() - t, np.asarray(es.weights_, dtype=float)


def blend_score(P, y, weights, metric):
    blend = np.tensordot(weights / weights.sum(), P, axes=1)[None]
    return select(blend, y, metric=metric, ensemble_size=1, n_threads=1).score


def run_case(case: str, data: str, rounds: int, repeat: int, reference: bool, threads: int,
             autogluon: bool = True):
    M, N, C, metric = case.split(",")
    M, N, C = int(M), int(N), int(C)
    P, y = make_data(data, M, N, C, metric)
    floor, _ = best_of(lambda: P.sum(), max(repeat, 3))
    floor *= rounds
    opts = dict(metric=metric, ensemble_size=rounds)
    # One thread and all threads alternate, so a busy spell of the machine hits both alike.
    t1 = tn = np.inf
    for _ in range(repeat):
        d, r1 = best_of(lambda: select(P, y, n_threads=1, **opts), 1)
        t1 = min(t1, d)
        d, rn = best_of(lambda: select(P, y, n_threads=threads, **opts), 1)
        tn = min(tn, d)
    assert np.array_equal(r1.indices, rn.indices)
    row = dict(case=f"{M} x {N:,} x {C}", metric=metric, t1=t1, tn=tn, floor=floor,
               score=r1.score, ref=None, ag=None, ag_score=None, same_as_ref=None)
    if reference:
        row["ref"], rr = best_of(lambda: select(P, y, backend="numpy", **opts), 1)
        row["same_as_ref"] = bool(np.array_equal(rr.indices, r1.indices))
    ag = autogluon_selection(P, y, metric, rounds) if autogluon else None
    if ag is not None:
        row["ag"], weights = ag
        row["ag_score"] = blend_score(P, y, weights, metric)
    return row


def fmt(x, spec=".2f", suffix=" s"):
    return "n/a" if x is None else f"{x:{spec}}{suffix}"


def table(rows, threads) -> str:
    head = (f"| size (models x rows x outputs) | metric | autofuse 1 thread | autofuse {threads} threads "
            "| NumPy reference | AutoGluon | one-pass floor | AutoGluon / autofuse (1 thread) "
            f"| autofuse / floor | 1 / {threads} threads | score autofuse | score AutoGluon "
            "| same selection as reference |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ratio_ag = None if r["ag"] is None else r["ag"] / r["t1"]
        lines.append(
            f"| {r['case']} | {r['metric']} | {fmt(r['t1'])} | {fmt(r['tn'])} | {fmt(r['ref'])} "
            f"| {fmt(r['ag'])} | {fmt(r['floor'])} | {fmt(ratio_ag, '.1f', 'x')} "
            f"| {fmt(r['t1'] / r['floor'], '.2f', 'x')} | {fmt(r['t1'] / r['tn'], '.2f', 'x')} "
            f"| {r['score']:.6g} | {'n/a' if r['ag_score'] is None else format(r['ag_score'], '.6g')} "
            f"| {'n/a' if r['same_as_ref'] is None else ('yes' if r['same_as_ref'] else 'NO')} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import autogluon.core as agc
        ag = f"autogluon.core {agc.__version__}"
    except ImportError:
        ag = "autogluon.core not installed"
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores visible, "
            f"{default_threads()} usable; Python {platform.python_version()}, numpy {np.__version__}, "
            f"autofuse {autofuse.__version__} ({backend()} core, OpenMP {'on' if openmp_enabled() else 'off'}), {ag}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES,
                        help="models,rows,outputs,metric (outputs 1 = binary or one-target regression)")
    parser.add_argument("--data", nargs="+", default=["oof"], choices=["oof", "random"])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--no-autogluon", action="store_true")
    parser.add_argument("--out", help="also write the tables (markdown) to this file")
    args = parser.parse_args(argv)
    if backend() != "cython":
        sys.exit("the compiled core is not in use (AUTOFUSE_PUREPYTHON set, or not built)")
    out = [f"Command: `python benchmarks/bench_selection.py {' '.join(argv or sys.argv[1:])}`",
           f"Date: {datetime.date.today().isoformat()}", f"Machine: {machine()}", ""]
    print("\n".join(out), flush=True)
    for data in args.data:
        rows = []
        for case in args.cases:
            rows.append(run_case(case, data, args.rounds, args.repeat, not args.no_reference,
                                 args.threads, not args.no_autogluon))
            print(f"[{data}] {case}: done", file=sys.stderr, flush=True)
        block = f"Data: `{data}`\n\n{table(rows, args.threads)}\n"
        print(block, flush=True)
        out.append(block)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(out))


if __name__ == "__main__":
    main()
