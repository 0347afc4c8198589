"""Time CMAESEnsemble.fit (as the registered "cmaes" combiner builds it) beside GES on
synthetic model libraries. Run from the repository root:

    .venv/bin/python plugins/autofuse-cmaes/benchmarks/time_fit.py [--large]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from autofuse._scoring import run_metric
from autofuse.combiners import CaruanaSelection
from autofuse_cmaes import build


def library(task: str, m: int, n: int, k: int, rng: np.random.Generator):
    """m noisy models of a target, with an error they share and one of their own:
    values (regression) or probabilities (k classes; binary as one column, P(class 1))."""
    def noise(shape):
        shared = rng.normal(size=shape[1:])[None] * rng.uniform(0.3, 1.0, (m, 1, 1))
        return shared + rng.normal(size=shape) * rng.uniform(0.5, 1.5, (m, 1, 1))

    if task == "regression":
        y = rng.normal(size=n)
        return y[None, :, None] + noise((m, n, 1)), y
    y = rng.integers(0, k, n)
    logits = np.eye(k)[y][None] * rng.uniform(0.5, 2.5, (m, 1, 1)) + noise((m, n, k))
    logits *= rng.uniform(0.5, 2.0, (m, 1, 1))  # calibration differs between models
    P = np.exp(logits)
    P /= P.sum(-1, keepdims=True)
    return (P[:, :, 1:] if task == "binary" else P), y


CASES = [("binary", "roc_auc", 50, 10_000, 2), ("multiclass", "log_loss", 50, 5_000, 10),
         ("regression", "rmse", 50, 10_000, 1)]
LARGE = [("binary", "roc_auc", 100, 50_000, 2)]

if __name__ == "__main__":
    rng = np.random.default_rng(0)
    for task, name, m, n, k in CASES + (LARGE if "--large" in sys.argv else []):
        P, y = library(task, m, n, k, rng)
        metric = run_metric(name, task)
        start = time.perf_counter()
        sel = build(metric, 0, 1).fit(P, y)
        took = time.perf_counter() - start
        start = time.perf_counter()
        ges = CaruanaSelection(metric.selection, ensemble_size=50, n_threads=1).fit(P, y)
        ges_took = time.perf_counter() - start
        print(f"{m} models x {n} rows x {P.shape[2]} outputs, {name}: cmaes fit {took:.2f} s "
              f"({sel.n_generations_} generations, {sel.n_evaluations_} evaluations; single "
              f"best {sel.single_best_score_:.4f} -> {sel.score_:.4f}); GES {ges_took:.2f} s "
              f"({metric.score(ges.predict(P), y):.4f})", flush=True)
