# Compiler directives are set once, in setup.py.
"""Fused metric kernels for greedy ensemble selection (the compiled backend).

``Kernel`` holds the running sum of the members chosen so far and scores every candidate
blend ``(sum + p_m) / (k + 1)`` in one call. The loop over candidates releases the GIL and
runs in parallel over ``n_threads`` (OpenMP); each candidate's loss is a sequential sum
over rows written into a preallocated slot, so nothing is allocated per candidate and the
result does not depend on the number of threads.

The representations below (which array is summed, how the blend is compared with a
threshold) are mirrored exactly by ``_reference.ReferenceKernel``; change both together.
"""

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport log, sqrt, fabs, INFINITY
from libc.stdlib cimport qsort

import numpy as np

cdef extern from "_omp.h":
    int af_openmp_enabled() noexcept nogil
    int af_max_threads() noexcept nogil

# Keep in sync with _metrics.py.
cdef enum:
    LOG_LOSS = 0
    ACCURACY = 1
    BALANCED_ACCURACY = 2
    ROC_AUC = 3
    F1 = 4
    MSE = 5
    RMSE = 6
    MAE = 7
    R2 = 8

# Buckets of at most this many rows are resolved by comparing pairs, larger ones by sorting.
cdef Py_ssize_t PAIRWISE_MAX = 16

ctypedef struct Entry:
    double v
    double w
    int pos


def openmp_enabled():
    """Whether the core was compiled with OpenMP (else every loop runs on one thread)."""
    return bool(af_openmp_enabled())


def max_threads():
    """OpenMP's default thread count (1 without OpenMP)."""
    return af_max_threads()


cdef int _entry_cmp(const void* a, const void* b) noexcept nogil:
    cdef double x = (<const Entry*> a).v
    cdef double y = (<const Entry*> b).v
    return (x > y) - (x < y)


# ---------------------------------------------------------------- per-candidate kernels

cdef double _log_loss(const floating[:, ::1] Q, Py_ssize_t m, const double[::1] S,
                      const double[::1] a, const double[::1] b, const double[::1] w,
                      double c, double eps) noexcept nogil:
    # Probability of the true class: a + b * blend, with (a, b) = (0, 1), or (1, -1) for the
    # negative rows of a one-column binary problem.
    cdef Py_ssize_t i, n = Q.shape[1]
    cdef double v, hi = 1.0 - eps, acc = 0.0
    for i in range(n):
        v = a[i] + b[i] * ((S[i] + Q[m, i]) / c)
        v = eps if v < eps else v
        v = hi if v > hi else v
        acc = acc - w[i] * log(v)
    return acc


cdef double _correct_multi(const floating[:, :, ::1] P, Py_ssize_t m, const double[:, ::1] S,
                           const Py_ssize_t[::1] y, const double[::1] w, double* per_class,
                           int balanced) noexcept nogil:
    # Row i is right when argmax_j (S[i, j] + P[m, i, j]) == y[i], ties to the lowest j.
    cdef Py_ssize_t i, j, yi, n = P.shape[1], C = P.shape[2]
    cdef double vy, acc = 0.0
    cdef int ok
    for i in range(n):
        yi = y[i]
        vy = S[i, yi] + P[m, i, yi]
        ok = 1
        for j in range(yi):
            ok = ok & ((S[i, j] + P[m, i, j]) < vy)
        for j in range(yi + 1, C):
            ok = ok & ((S[i, j] + P[m, i, j]) <= vy)
        if ok:
            if balanced:
                per_class[yi] += w[i]
            else:
                acc = acc + w[i]
    return acc


cdef double _correct_binary(const floating[:, :, ::1] P, Py_ssize_t m, const double[:, ::1] S,
                            const Py_ssize_t[::1] y, const double[::1] w, double half_c,
                            double* per_class, int balanced) noexcept nogil:
    # One column holding P(class 1): predict 1 when the blend exceeds 1/2.
    cdef Py_ssize_t i, n = P.shape[1]
    cdef Py_ssize_t pred
    cdef double acc = 0.0
    for i in range(n):
        pred = (S[i, 0] + P[m, i, 0]) > half_c
        if pred == y[i]:
            if balanced:
                per_class[y[i]] += w[i]
            else:
                acc = acc + w[i]
    return acc


cdef double _f1(const floating[:, :, ::1] P, Py_ssize_t m, const double[:, ::1] S,
                const Py_ssize_t[::1] y, const double[::1] w, double half_c) noexcept nogil:
    cdef Py_ssize_t i, n = P.shape[1], C = P.shape[2]
    cdef int pred
    cdef double tp = 0.0, fp = 0.0, fn = 0.0, denom
    for i in range(n):
        if C == 1:
            pred = (S[i, 0] + P[m, i, 0]) > half_c
        else:
            pred = (S[i, 1] + P[m, i, 1]) > (S[i, 0] + P[m, i, 0])
        if pred:
            if y[i] == 1:
                tp = tp + w[i]
            else:
                fp = fp + w[i]
        elif y[i] == 1:
            fn = fn + w[i]
    denom = 2.0 * tp + fp + fn
    return 0.0 if denom == 0.0 else -(2.0 * tp / denom)


cdef double _auc(const floating[:, :, ::1] P, Py_ssize_t m, const double[:, ::1] S,
                 Py_ssize_t col, Py_ssize_t target, const Py_ssize_t[::1] y, const double[::1] w,
                 double* vals, Entry* ent, Py_ssize_t* cnt) noexcept nogil:
    # Weighted Mann-Whitney statistic of column `col` of the blend for rows y == target
    # against the rest, ties counting one half: exactly the area under the ROC curve.
    # Rows are bucketed by value (a monotone map, so buckets are ordered and equal values
    # share a bucket); pairs across buckets are counted in bulk, pairs inside a bucket by
    # comparison, or by sorting when the bucket is large. Expected O(n) per candidate.
    cdef Py_ssize_t i, j, k, n = P.shape[1], nb = n, bk, start, end
    cdef double v, lo = INFINITY, hi = -INFINITY, scale
    cdef double wpos = 0.0, wneg = 0.0, neg_below = 0.0, s = 0.0
    cdef double bp, bn, gp, gn, inner, below
    for i in range(n):
        v = S[i, col] + P[m, i, col]
        vals[i] = v
        lo = v if v < lo else lo
        hi = v if v > hi else hi
        if y[i] == target:
            wpos = wpos + w[i]
        else:
            wneg = wneg + w[i]
    if wpos == 0.0 or wneg == 0.0:
        return 0.5
    if not (hi > lo):
        return 0.5
    scale = nb / (hi - lo)
    if not (scale < 1e300):
        nb = 1
        scale = 0.0
    for k in range(nb + 1):
        cnt[k] = 0
    for i in range(n):
        bk = <Py_ssize_t> ((vals[i] - lo) * scale)
        bk = nb - 1 if bk >= nb else bk
        cnt[bk + 1] += 1
    for k in range(1, nb + 1):
        cnt[k] += cnt[k - 1]
    for i in range(n):
        bk = <Py_ssize_t> ((vals[i] - lo) * scale)
        bk = nb - 1 if bk >= nb else bk
        j = cnt[bk]
        ent[j].v = vals[i]
        ent[j].w = w[i]
        ent[j].pos = y[i] == target
        cnt[bk] = j + 1
    start = 0
    for k in range(nb):
        end = cnt[k]
        if end == start:
            continue
        bp = 0.0
        bn = 0.0
        for i in range(start, end):
            if ent[i].pos:
                bp = bp + ent[i].w
            else:
                bn = bn + ent[i].w
        s = s + bp * neg_below
        if end - start > 1 and bp > 0.0 and bn > 0.0:
            inner = 0.0
            if end - start <= PAIRWISE_MAX:
                for i in range(start, end):
                    if ent[i].pos:
                        for j in range(start, end):
                            if not ent[j].pos:
                                if ent[i].v > ent[j].v:
                                    inner = inner + ent[i].w * ent[j].w
                                elif ent[i].v == ent[j].v:
                                    inner = inner + 0.5 * ent[i].w * ent[j].w
            else:
                qsort(&ent[start], end - start, sizeof(Entry), _entry_cmp)
                below = 0.0
                i = start
                while i < end:
                    gp = 0.0
                    gn = 0.0
                    j = i
                    while j < end and ent[j].v == ent[i].v:
                        if ent[j].pos:
                            gp = gp + ent[j].w
                        else:
                            gn = gn + ent[j].w
                        j = j + 1
                    inner = inner + gp * (below + 0.5 * gn)
                    below = below + gn
                    i = j
            s = s + inner
        neg_below = neg_below + bn
        start = end
    return s / (wpos * wneg)


cdef double _regression(const floating[:, :, ::1] P, Py_ssize_t m, const double[:, ::1] T,
                        const double[::1] w, int kind, double* acc) noexcept nogil:
    # T = S - c * y, so T + p_m is (k + 1) times the residual of the candidate blend.
    # Writes sum_i w_i d^2 (or w_i |d|) per output into acc.
    cdef Py_ssize_t i, o, n = P.shape[1], C = P.shape[2]
    cdef double d, a0 = 0.0
    if C == 1:
        if kind == MAE:
            for i in range(n):
                a0 = a0 + w[i] * fabs(T[i, 0] + P[m, i, 0])
        else:
            for i in range(n):
                d = T[i, 0] + P[m, i, 0]
                a0 = a0 + w[i] * (d * d)
        acc[0] = a0
        return 0.0
    for o in range(C):
        acc[o] = 0.0
    for i in range(n):
        for o in range(C):
            d = T[i, o] + P[m, i, o]
            if kind == MAE:
                acc[o] += w[i] * fabs(d)
            else:
                acc[o] += w[i] * (d * d)
    return 0.0


# ---------------------------------------------------------------- scoring all candidates

cdef void _score_all(const floating[:, :, ::1] P, const floating[:, ::1] Q,
                     const Py_ssize_t[::1] cand, double[::1] out,
                     int metric, double c, double sumw, double eps,
                     const double[:, ::1] S, const double[::1] S1, const double[:, ::1] T,
                     const Py_ssize_t[::1] y, const double[::1] w,
                     const double[::1] a, const double[::1] b,
                     const double[::1] class_w, const Py_ssize_t[::1] auc_classes,
                     const double[::1] sstot,
                     double[:, ::1] scratch, unsigned char[:, ::1] ent_buf,
                     Py_ssize_t[:, ::1] cnt_buf, int n_threads) noexcept nogil:
    cdef Py_ssize_t j, m, k, o, t, C = P.shape[2], n_cand = cand.shape[0]
    cdef Py_ssize_t n_auc = auc_classes.shape[0]
    cdef double r, tot
    cdef double* sc
    for j in prange(n_cand, nogil=True, num_threads=n_threads, schedule="static"):
        m = cand[j]
        t = threadid()
        sc = &scratch[t, 0]
        if metric == LOG_LOSS:
            r = _log_loss(Q, m, S1, a, b, w, c, eps) / sumw
        elif metric == ACCURACY:
            if C == 1:
                r = -_correct_binary(P, m, S, y, w, 0.5 * c, sc, 0) / sumw
            else:
                r = -_correct_multi(P, m, S, y, w, sc, 0) / sumw
        elif metric == BALANCED_ACCURACY:
            for k in range(class_w.shape[0]):
                sc[k] = 0.0
            if C == 1:
                _correct_binary(P, m, S, y, w, 0.5 * c, sc, 1)
            else:
                _correct_multi(P, m, S, y, w, sc, 1)
            tot = 0.0
            o = 0
            for k in range(class_w.shape[0]):
                if class_w[k] > 0.0:
                    tot = tot + sc[k] / class_w[k]
                    o = o + 1
            r = -tot / o
        elif metric == F1:
            r = _f1(P, m, S, y, w, 0.5 * c)
        elif metric == ROC_AUC:
            if C == 1:
                r = -_auc(P, m, S, 0, 1, y, w, sc, <Entry*> &ent_buf[t, 0], &cnt_buf[t, 0])
            elif C == 2:
                r = -_auc(P, m, S, 1, 1, y, w, sc, <Entry*> &ent_buf[t, 0], &cnt_buf[t, 0])
            else:
                tot = 0.0
                for k in range(n_auc):
                    tot = tot + _auc(P, m, S, auc_classes[k], auc_classes[k], y, w, sc,
                                     <Entry*> &ent_buf[t, 0], &cnt_buf[t, 0])
                r = -tot / n_auc
        else:
            _regression(P, m, T, w, metric, sc)
            tot = 0.0
            for o in range(C):
                if metric == MSE:
                    tot = tot + sc[o] / (sumw * c * c)
                elif metric == RMSE:
                    tot = tot + sqrt(sc[o] / sumw) / c
                elif metric == MAE:
                    tot = tot + sc[o] / (sumw * c)
                elif sstot[o] > 0.0:
                    tot = tot + sc[o] / (c * c * sstot[o])
                elif sc[o] > 0.0:
                    tot = tot + 1.0
            r = tot / C
        out[j] = r


cdef void _gather(const floating[:, :, ::1] P, const Py_ssize_t[::1] y, floating[:, ::1] Q,
                  int n_threads) noexcept nogil:
    cdef Py_ssize_t m, i
    for m in prange(P.shape[0], nogil=True, num_threads=n_threads, schedule="static"):
        for i in range(P.shape[1]):
            Q[m, i] = P[m, i, y[i]]


cdef void _add_row(const floating[:, :, ::1] P, Py_ssize_t m, double[:, ::1] S) noexcept nogil:
    cdef Py_ssize_t i, o
    for i in range(P.shape[1]):
        for o in range(P.shape[2]):
            S[i, o] += P[m, i, o]


cdef void _add_row1(const floating[:, ::1] Q, Py_ssize_t m, double[::1] S1) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(Q.shape[1]):
        S1[i] += Q[m, i]


cdef Py_ssize_t _first_bad(const floating[:, :, ::1] P, double lo, double hi) noexcept nogil:
    # Flat index of the first value that is not finite or outside [lo, hi]; -1 if none.
    cdef Py_ssize_t i, n = P.shape[0] * P.shape[1] * P.shape[2]
    cdef const floating* p = &P[0, 0, 0]
    cdef double v
    for i in range(n):
        v = p[i]
        if not (v >= lo and v <= hi):
            return i
    return -1


def first_bad_value(P, double lo=-INFINITY, double hi=INFINITY):
    """Flat index of the first NaN, infinity or value outside ``[lo, hi]`` in ``P``; -1 if none.

    Infinities count as bad even with infinite bounds.
    """
    cdef const float[:, :, ::1] p32
    cdef const double[:, :, ::1] p64
    cdef Py_ssize_t r
    if lo == -INFINITY:
        lo = -1.7976931348623157e308
    if hi == INFINITY:
        hi = 1.7976931348623157e308
    if P.size == 0:
        return -1
    if P.dtype == np.float32:
        p32 = P
        with nogil:
            r = _first_bad(p32, lo, hi)
    else:
        p64 = P
        with nogil:
            r = _first_bad(p64, lo, hi)
    return r


cdef class Kernel:
    """Scores candidate blends for one metric over one array of predictions.

    Parameters are prepared and validated by ``autofuse._core._greedy``; see
    ``_reference.ReferenceKernel`` for the same interface in NumPy.
    """

    cdef object P_obj
    cdef const float[:, :, ::1] P32
    cdef const double[:, :, ::1] P64
    cdef const float[:, ::1] Q32
    cdef const double[:, ::1] Q64
    cdef bint is32
    cdef int metric
    cdef int n_threads
    cdef Py_ssize_t k
    cdef double sumw, eps
    cdef double[:, ::1] S
    cdef double[::1] S1
    cdef double[:, ::1] T
    cdef const double[:, ::1] Yf
    cdef const Py_ssize_t[::1] y
    cdef const double[::1] w
    cdef const double[::1] a
    cdef const double[::1] b
    cdef const double[::1] class_w
    cdef const Py_ssize_t[::1] auc_classes
    cdef const double[::1] sstot
    cdef double[:, ::1] scratch
    cdef unsigned char[:, ::1] ent_buf
    cdef Py_ssize_t[:, ::1] cnt_buf

    def __init__(self, P, prep, int n_threads):
        cdef Py_ssize_t M = P.shape[0], n = P.shape[1], C = P.shape[2]
        cdef int nt = max(1, n_threads)
        self.P_obj = P
        self.is32 = P.dtype == np.float32
        # Every memoryview gets a value, so a debug build (initializedcheck) passes too.
        self.P32 = P if self.is32 else np.zeros((0, 0, 0), dtype=np.float32)
        self.P64 = np.zeros((0, 0, 0)) if self.is32 else P
        self.Q32 = np.zeros((0, 0), dtype=np.float32)
        self.Q64 = np.zeros((0, 0))
        self.metric = prep.metric
        self.n_threads = nt
        self.sumw = prep.sumw
        self.eps = prep.eps
        self.y = prep.y_codes
        self.w = prep.w
        self.a = prep.a
        self.b = prep.b
        self.class_w = prep.class_w
        self.auc_classes = prep.auc_classes
        self.sstot = prep.sstot
        self.Yf = prep.y_values
        self.S = np.zeros((n, C))
        self.S1 = np.zeros(n if prep.metric == LOG_LOSS else 0)
        if prep.task == "regression":
            self.T = np.zeros((n, C))
        else:
            self.T = np.zeros((0, 0))
        self.scratch = np.zeros((nt, max(n, C, prep.class_w.shape[0], 1)))
        if prep.metric == ROC_AUC:
            self.ent_buf = np.zeros((nt, n * sizeof(Entry)), dtype=np.uint8)
            self.cnt_buf = np.zeros((nt, n + 1), dtype=np.intp)
        else:
            self.ent_buf = np.zeros((nt, 1), dtype=np.uint8)
            self.cnt_buf = np.zeros((nt, 1), dtype=np.intp)
        if prep.metric == LOG_LOSS:
            if C == 1:
                Q = P[:, :, 0]
            else:
                Q = np.empty((M, n), dtype=P.dtype)
                if self.is32:
                    _gather[float](self.P32, self.y, Q, nt)
                else:
                    _gather[double](self.P64, self.y, Q, nt)
            if self.is32:
                self.Q32 = Q
            else:
                self.Q64 = Q
        self.k = 0

    def reset(self):
        """Empty the ensemble."""
        self.S[...] = 0.0
        if self.metric == LOG_LOSS:
            self.S1[...] = 0.0
        self.k = 0

    def add(self, Py_ssize_t m):
        """Add model ``m`` to the ensemble (the running sum)."""
        with nogil:
            if self.metric == LOG_LOSS:
                if self.is32:
                    _add_row1(self.Q32, m, self.S1)
                else:
                    _add_row1(self.Q64, m, self.S1)
            elif self.is32:
                _add_row(self.P32, m, self.S)
            else:
                _add_row(self.P64, m, self.S)
        self.k += 1

    def score(self, candidates):
        """Loss of the blend with each candidate added, in the order given."""
        cdef const Py_ssize_t[::1] cand = np.ascontiguousarray(candidates, dtype=np.intp)
        out_arr = np.empty(cand.shape[0])
        cdef double[::1] out = out_arr
        cdef double c = self.k + 1.0
        cdef Py_ssize_t i, o
        cdef int nt = min(self.n_threads, max(1, cand.shape[0]))
        if self.T.shape[0] > 0:
            for i in range(self.T.shape[0]):
                for o in range(self.T.shape[1]):
                    self.T[i, o] = self.S[i, o] - c * self.Yf[i, o]
        with nogil:
            if self.is32:
                _score_all(self.P32, self.Q32, cand, out, self.metric, c, self.sumw, self.eps,
                           self.S, self.S1, self.T, self.y, self.w, self.a, self.b,
                           self.class_w, self.auc_classes, self.sstot, self.scratch,
                           self.ent_buf, self.cnt_buf, nt)
            else:
                _score_all(self.P64, self.Q64, cand, out, self.metric, c, self.sumw, self.eps,
                           self.S, self.S1, self.T, self.y, self.w, self.a, self.b,
                           self.class_w, self.auc_classes, self.sstot, self.scratch,
                           self.ent_buf, self.cnt_buf, nt)
        return out_arr
