"""The NumPy twin of ``_kernels.Kernel``: the fallback backend and the test oracle.

It scores candidate blends with the same representations as the Cython kernels (the
running sum ``S`` of the chosen members, thresholds compared against ``S + p`` rather
than against a divided blend, regression residuals as ``S - c * y + p``), so the two agree
to rounding. It is written for clarity, not speed: one candidate at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from autofuse._core._metrics import (
    ACCURACY,
    BALANCED_ACCURACY,
    F1,
    LOG_LOSS,
    MAE,
    MSE,
    R2,
    RMSE,
    ROC_AUC,
)

if TYPE_CHECKING:
    from autofuse._core._prepare import Prepared


def weighted_auc(scores: np.ndarray, positive: np.ndarray, w: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the ``positive`` rows, ties counting 1/2."""
    wpos = w[positive].sum()
    wneg = w[~positive].sum()
    if wpos == 0.0 or wneg == 0.0:
        return 0.5
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    wp = np.where(positive, w, 0.0)[order]
    wn = np.where(positive, 0.0, w)[order]
    starts = np.concatenate(([0], np.flatnonzero(s[1:] != s[:-1]) + 1))
    gp = np.add.reduceat(wp, starts)
    gn = np.add.reduceat(wn, starts)
    below = np.cumsum(gn) - gn
    return float(np.sum(gp * (below + 0.5 * gn)) / (wpos * wneg))


class ReferenceKernel:
    """Scores candidate blends for one metric; same interface as ``_kernels.Kernel``."""

    def __init__(self, P: np.ndarray, prep: Prepared, n_threads: int = 1) -> None:
        self.P = P
        self.prep = prep
        n, C = P.shape[1], P.shape[2]
        if prep.metric == LOG_LOSS:
            if C == 1:
                self.Q = P[:, :, 0]
            else:
                self.Q = np.take_along_axis(P, prep.y_codes[None, :, None], axis=2)[:, :, 0]
        self.S = np.zeros((n, C))
        self.S1 = np.zeros(n)
        self.k = 0

    def reset(self) -> None:
        self.S[...] = 0.0
        self.S1[...] = 0.0
        self.k = 0

    def add(self, m: int) -> None:
        if self.prep.metric == LOG_LOSS:
            self.S1 += self.Q[m]
        else:
            self.S += self.P[m]
        self.k += 1

    def score(self, candidates: np.ndarray) -> np.ndarray:
        c = self.k + 1.0
        return np.array([self._loss(int(m), c) for m in candidates], dtype=float)

    def _loss(self, m: int, c: float) -> float:
        p = self.prep
        P, S, y, w = self.P, self.S, p.y_codes, p.w
        C = P.shape[2]
        if p.metric == LOG_LOSS:
            # (A + b q) / c: b is +1 or -1, so A + b q is one exactly rounded addition
            A = p.a * c + p.b * self.S1
            v = np.clip((A + p.b * self.Q[m]) * (1.0 / c), p.eps, 1.0 - p.eps)
            return float(-(w * np.log(v)).sum() / p.sumw)
        if p.metric in (ACCURACY, BALANCED_ACCURACY, F1):
            pred = self._predicted_class(m, c)
            if p.metric == F1:
                tp = w[(pred == 1) & (y == 1)].sum()
                fp = w[(pred == 1) & (y != 1)].sum()
                fn = w[(pred != 1) & (y == 1)].sum()
                denom = 2.0 * tp + fp + fn
                return 0.0 if denom == 0.0 else float(-(2.0 * tp / denom))
            right = pred == y
            if p.metric == ACCURACY:
                return float(-w[right].sum() / p.sumw)
            per_class = np.bincount(y, weights=np.where(right, w, 0.0), minlength=p.class_w.size)
            keep = p.class_w > 0
            return float(-np.mean(per_class[keep] / p.class_w[keep]))
        if p.metric == ROC_AUC:
            V = S + P[m]
            if C <= 2:
                return -weighted_auc(V[:, C - 1], y == 1, w)
            aucs = [weighted_auc(V[:, k], y == k, w) for k in p.auc_classes]
            return float(-np.sum(aucs) / len(aucs))
        T = S - c * p.y_values
        D = T + P[m]
        acc = (w[:, None] * (np.abs(D) if p.metric == MAE else D * D)).sum(axis=0)
        if p.metric == MSE:
            per_output = acc / (p.sumw * c * c)
        elif p.metric == RMSE:
            per_output = np.sqrt(acc / p.sumw) / c
        elif p.metric == MAE:
            per_output = acc / (p.sumw * c)
        else:
            assert p.metric == R2
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = acc / (c * c * p.sstot)
            per_output = np.where(p.sstot > 0, ratio, (acc > 0).astype(float))
        return float(per_output.sum() / C)

    def _predicted_class(self, m: int, c: float) -> np.ndarray:
        V = self.S + self.P[m]
        if V.shape[1] == 1:
            return (V[:, 0] > 0.5 * c).astype(np.intp)
        return V.argmax(axis=1)
