# Compiler directives are set once, in setup.py.
"""Fused metric kernels for greedy ensemble selection (the compiled backend).

``Kernel`` holds the running sum of the members chosen so far and scores every candidate
blend ``(sum + p_m) / (k + 1)`` in one call. The loop over candidates releases the GIL and
runs in parallel over ``n_threads`` (OpenMP); each candidate's loss is computed by one
thread (sums in the fixed lanes of ``_simd.h``) into a preallocated slot, so nothing is
allocated per candidate and the result does not depend on the number of threads.

The representations below (which array is summed, how the blend is compared with a
threshold) are mirrored exactly by ``_reference.ReferenceKernel``; change both together.
"""

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.float cimport DBL_EPSILON as DBL_EPS
from libc.math cimport sqrt, fabs, INFINITY

import numpy as np

cdef extern from "_omp.h":
    int af_openmp_enabled() noexcept nogil

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

# Rows ahead to prefetch when the label kernels walk the scattered undecided rows.
cdef Py_ssize_t PREFETCH_AHEAD = 8

cdef extern from "_auc.h":
    ctypedef struct af_entry:
        pass
    ctypedef struct af_bucket:
        pass
    double af_auc_d(const double* s, const double* p, Py_ssize_t stride, Py_ssize_t n,
                    const double* wp, const double* wn, double wpos, double wneg, double* vals,
                    Py_ssize_t* bidx, Py_ssize_t* mixed_at, af_entry* ent,
                    af_bucket* bk) noexcept nogil
    double af_auc_f(const double* s, const float* p, Py_ssize_t stride, Py_ssize_t n,
                    const double* wp, const double* wn, double wpos, double wneg, double* vals,
                    Py_ssize_t* bidx, Py_ssize_t* mixed_at, af_entry* ent,
                    af_bucket* bk) noexcept nogil

cdef extern from "_simd.h":
    void af_prefetch(const void* p) noexcept nogil
    void af_right_rows_d(const double* S, const double* p, const Py_ssize_t* y, const double* w,
                         const Py_ssize_t* rows, Py_ssize_t n_rows, Py_ssize_t C,
                         int per_class, double* conf) noexcept nogil
    void af_right_rows_f(const double* S, const float* p, const Py_ssize_t* y, const double* w,
                         const Py_ssize_t* rows, Py_ssize_t n_rows, Py_ssize_t C,
                         int per_class, double* conf) noexcept nogil
    double af_log_sum_d(const double* A, const double* B, const double* q, const double* w,
                        Py_ssize_t n, double inv_c, double eps) noexcept nogil
    double af_log_sum_f(const double* A, const double* B, const float* q, const double* w,
                        Py_ssize_t n, double inv_c, double eps) noexcept nogil
    double af_sq_sum_d(const double* t, const double* p, const double* w, Py_ssize_t n) noexcept nogil
    double af_sq_sum_f(const double* t, const float* p, const double* w, Py_ssize_t n) noexcept nogil
    double af_abs_sum_d(const double* t, const double* p, const double* w, Py_ssize_t n) noexcept nogil
    double af_abs_sum_f(const double* t, const float* p, const double* w, Py_ssize_t n) noexcept nogil


def openmp_enabled():
    """Whether the core was compiled with OpenMP (else every loop runs on one thread)."""
    return bool(af_openmp_enabled())


# ---------------------------------------------------------------- per-candidate kernels

cdef double _log_loss(const floating[:, ::1] Q, Py_ssize_t m, const double[::1] A,
                      const double[::1] b, const double[::1] w, bint unweighted, double c,
                      double eps) noexcept nogil:
    # Probability of the true class is (A + b * q) / c (see Kernel.score); vectorised in
    # _simd.h.
    cdef Py_ssize_t n = Q.shape[1]
    cdef const double* wp = NULL if unweighted else &w[0]
    if floating is double:
        return -af_log_sum_d(&A[0], &b[0], &Q[m, 0], wp, n, 1.0 / c, eps)
    else:
        return -af_log_sum_f(&A[0], &b[0], &Q[m, 0], wp, n, 1.0 / c, eps)


cdef void _confusion(const floating[:, :, ::1] P, Py_ssize_t m, const double[:, ::1] S,
                     const Py_ssize_t[::1] y, const double[::1] w,
                     const Py_ssize_t[::1] undecided, const Py_ssize_t[::1] cont_ptr,
                     const Py_ssize_t[::1] cont, double half_c, int per_class,
                     double* conf) noexcept nogil:
    # Adds the rows whose predicted class this candidate can still change. C <= 2: the 2x2
    # table conf[2 * y + pred]; C > 2: the weight of right answers per class, conf[y], where
    # row i is right when argmax_j (S[i, j] + P[m, i, j]) == y[i] (ties to the lowest j),
    # checked against the classes that could still beat y[i] (cont[cont_ptr[u]:...]).
    cdef Py_ssize_t u, i, j, q, yi, C = P.shape[2]
    cdef Py_ssize_t pred
    cdef double vy, v
    cdef int ok
    if C == 1:
        for u in range(undecided.shape[0]):
            i = undecided[u]
            pred = (S[i, 0] + P[m, i, 0]) > half_c
            conf[2 * y[i] + pred] += w[i]
    elif C == 2:
        for u in range(undecided.shape[0]):
            i = undecided[u]
            pred = (S[i, 1] + P[m, i, 1]) > (S[i, 0] + P[m, i, 0])
            conf[2 * y[i] + pred] += w[i]
    elif cont_ptr[undecided.shape[0]] * 4 >= undecided.shape[0] * (C - 1) * 3:
        # Most classes are contenders: compare whole rows, which is cheaper than the lists.
        if floating is double:
            af_right_rows_d(&S[0, 0], &P[m, 0, 0], &y[0], &w[0], &undecided[0],
                            undecided.shape[0], C, per_class, conf)
        else:
            af_right_rows_f(&S[0, 0], &P[m, 0, 0], &y[0], &w[0], &undecided[0],
                            undecided.shape[0], C, per_class, conf)
    else:
        for u in range(undecided.shape[0]):
            i = undecided[u]
            if u + PREFETCH_AHEAD < undecided.shape[0]:
                af_prefetch(&P[m, undecided[u + PREFETCH_AHEAD], 0])
            yi = y[i]
            vy = S[i, yi] + P[m, i, yi]
            ok = 1
            for q in range(cont_ptr[u], cont_ptr[u + 1]):
                j = cont[q]
                v = S[i, j] + P[m, i, j]
                ok = ok & ((v < vy) | ((v == vy) & (j > yi)))
            if ok:
                conf[yi] += w[i]


cdef double _label_loss(int metric, Py_ssize_t C, const double* conf, const double[::1] class_w,
                        double sumw) noexcept nogil:
    cdef Py_ssize_t k, n_cls = 0
    cdef double right = 0.0, tot = 0.0, denom
    if metric == F1:
        # conf[3] = true positives, conf[1] = false positives, conf[2] = false negatives
        denom = 2.0 * conf[3] + conf[1] + conf[2]
        return 0.0 if denom == 0.0 else -(2.0 * conf[3] / denom)
    for k in range(class_w.shape[0]):
        right = conf[3 * k] if C <= 2 else conf[k]
        if metric == ACCURACY:
            tot = tot + right
        elif class_w[k] > 0.0:
            tot = tot + right / class_w[k]
            n_cls = n_cls + 1
    return -tot / sumw if metric == ACCURACY else -tot / n_cls


cdef void _regression(const floating[:, :, ::1] P, Py_ssize_t m, const double[:, ::1] T,
                      const double[::1] w, int kind, double* acc) noexcept nogil:
    # T = S - c * y, so T + p_m is (k + 1) times the residual of the candidate blend.
    # Writes sum_i w_i d^2 (or w_i |d| for MAE) per output into acc.
    cdef Py_ssize_t i, o, n = P.shape[1], C = P.shape[2]
    cdef double d
    if C == 1:
        if floating is double:
            if kind == MAE:
                acc[0] = af_abs_sum_d(&T[0, 0], &P[m, 0, 0], &w[0], n)
            else:
                acc[0] = af_sq_sum_d(&T[0, 0], &P[m, 0, 0], &w[0], n)
        else:
            if kind == MAE:
                acc[0] = af_abs_sum_f(&T[0, 0], &P[m, 0, 0], &w[0], n)
            else:
                acc[0] = af_sq_sum_f(&T[0, 0], &P[m, 0, 0], &w[0], n)
        return
    for o in range(C):
        acc[o] = 0.0
    for i in range(n):
        for o in range(C):
            d = T[i, o] + P[m, i, o]
            if kind == MAE:
                acc[o] += w[i] * fabs(d)
            else:
                acc[o] += w[i] * (d * d)


# ---------------------------------------------------------------- scoring all candidates

cdef void _score_all(const floating[:, :, ::1] P, const floating[:, ::1] Q,
                     const Py_ssize_t[::1] cand, double[::1] out,
                     int metric, double c, double sumw, double eps, bint unweighted,
                     const double[:, ::1] S, const double[:, ::1] T,
                     const Py_ssize_t[::1] y, const double[::1] w,
                     const double[::1] A, const double[::1] b,
                     const double[::1] class_w, const Py_ssize_t[::1] undecided,
                     const Py_ssize_t[::1] cont_ptr, const Py_ssize_t[::1] cont,
                     const double[::1] conf0,
                     const Py_ssize_t[::1] auc_cols, const double[:, ::1] auc_wp,
                     const double[:, ::1] auc_wn, const double[::1] auc_pos,
                     const double[::1] auc_neg, const double[::1] sstot,
                     double[:, ::1] scratch, unsigned char[:, ::1] ent_buf,
                     Py_ssize_t[:, ::1] cnt_buf, int n_threads) noexcept nogil:
    cdef Py_ssize_t j, m, k, o, t, C = P.shape[2], n = P.shape[1], n_cand = cand.shape[0]
    cdef Py_ssize_t n_auc = auc_cols.shape[0]
    cdef double r, tot
    cdef double* sc
    for j in prange(n_cand, nogil=True, num_threads=n_threads, schedule="static"):
        m = cand[j]
        t = threadid()
        sc = &scratch[t, 0]
        if metric == LOG_LOSS:
            r = _log_loss(Q, m, A, b, w, unweighted, c, eps) / sumw
        elif metric == ACCURACY or metric == BALANCED_ACCURACY or metric == F1:
            for k in range(conf0.shape[0]):
                sc[k] = conf0[k]
            _confusion(P, m, S, y, w, undecided, cont_ptr, cont, 0.5 * c,
                       metric == BALANCED_ACCURACY, sc)
            r = _label_loss(metric, C, sc, class_w, sumw)
        elif metric == ROC_AUC:
            tot = 0.0
            for k in range(n_auc):
                if floating is double:
                    tot = tot + af_auc_d(&S[0, auc_cols[k]], &P[m, 0, auc_cols[k]], C, n,
                                         &auc_wp[k, 0], &auc_wn[k, 0], auc_pos[k], auc_neg[k],
                                         sc, &cnt_buf[t, 0], &cnt_buf[t, n],
                                         <af_entry*> &ent_buf[t, 0],
                                         <af_bucket*> &ent_buf[t, (n + 1) * sizeof(af_entry)])
                else:
                    tot = tot + af_auc_f(&S[0, auc_cols[k]], &P[m, 0, auc_cols[k]], C, n,
                                         &auc_wp[k, 0], &auc_wn[k, 0], auc_pos[k], auc_neg[k],
                                         sc, &cnt_buf[t, 0], &cnt_buf[t, n],
                                         <af_entry*> &ent_buf[t, 0],
                                         <af_bucket*> &ent_buf[t, (n + 1) * sizeof(af_entry)])
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


cdef void _row_bounds(const floating[:, :, ::1] P, const Py_ssize_t[::1] y, double[:, ::1] lo,
                      double[:, ::1] hi, int n_threads) noexcept nogil:
    # C <= 2: lo / hi are the least / greatest prediction any model makes for each row and
    # class. C > 2: the least / greatest margin p_j - p_y any model gives class j over the
    # true class y of the row (correlated models make these much tighter than lo / hi).
    cdef Py_ssize_t m, i, j, b, i0, i1, n = P.shape[1], C = P.shape[2]
    cdef Py_ssize_t n_blocks = (n + 1023) // 1024
    cdef double v, py
    for b in prange(n_blocks, nogil=True, num_threads=n_threads, schedule="static"):
        i0 = b * 1024
        i1 = min(n, i0 + 1024)
        for m in range(P.shape[0]):
            for i in range(i0, i1):
                py = P[m, i, y[i]] if C > 2 else 0.0
                for j in range(C):
                    v = P[m, i, j] - py
                    if m == 0:
                        lo[i, j] = v
                        hi[i, j] = v
                    else:
                        lo[i, j] = v if v < lo[i, j] else lo[i, j]
                        hi[i, j] = v if v > hi[i, j] else hi[i, j]


cdef Py_ssize_t _decide(const double[:, ::1] S, const double[:, ::1] lo, const double[:, ::1] hi,
                        const Py_ssize_t[::1] y, const double[::1] w, double half_c,
                        Py_ssize_t[::1] undecided, Py_ssize_t[::1] cont_ptr, Py_ssize_t[::1] cont,
                        double[::1] conf0) noexcept nogil:
    # Rows whose predicted class no candidate can change go into conf0 once per round; the
    # others are listed in `undecided`, with (C > 2) the classes that could still beat or tie
    # the true class. Exact. C <= 2: every candidate's prediction lies in [lo, hi] of its
    # row and rounding is monotone, so fl(S + lo) <= fl(S + p) <= fl(S + hi). C > 2: lo / hi
    # bound every candidate's margin p_j - p_y, and a slack covers the rounding (below).
    # Returns the number of undecided rows.
    cdef Py_ssize_t i, j, yi, nu = 0, nc = 0, n = S.shape[0], C = S.shape[1]
    cdef int sure_wrong, pred
    cdef double sy, sj, slack
    for j in range(conf0.shape[0]):
        conf0[j] = 0.0
    cont_ptr[0] = 0
    for i in range(n):
        yi = y[i]
        if C <= 2:
            pred = -1
            if C == 1:
                if S[i, 0] + lo[i, 0] > half_c:
                    pred = 1
                elif S[i, 0] + hi[i, 0] <= half_c:
                    pred = 0
            else:
                if S[i, 1] + lo[i, 1] > S[i, 0] + hi[i, 0]:
                    pred = 1
                elif S[i, 1] + hi[i, 1] <= S[i, 0] + lo[i, 0]:
                    pred = 0
            if pred < 0:
                undecided[nu] = i
                nu = nu + 1
            else:
                conf0[2 * yi + pred] += w[i]
            continue
        sy = S[i, yi]
        sure_wrong = 0
        cont_ptr[nu + 1] = nc
        for j in range(C):
            if j == yi:
                continue
            # Margins: exact reals bound p_j - p_y in [lo, hi] up to rounding; `slack`
            # covers every rounding in S + p and in the bounds, so a row is only called
            # decided when no candidate's floating-point blend can say otherwise.
            sj = S[i, j]
            slack = 4.0 * DBL_EPS * (sy + sj + 2.0)
            if (sj - sy) + lo[i, j] > slack:
                sure_wrong = 1
                break
            if (sy - sj) - hi[i, j] <= slack:
                cont[nc] = j
                nc = nc + 1
        if sure_wrong:
            nc = cont_ptr[nu]
        elif nc == cont_ptr[nu]:
            conf0[yi] += w[i]  # no class can reach the true one: right for every candidate
        else:
            undecided[nu] = i
            nu = nu + 1
            cont_ptr[nu] = nc
    return nu


cdef class Kernel:
    """Scores candidate blends for one metric over one array of predictions.

    ``reset()`` empties the ensemble, ``add(m)`` adds model ``m`` to it, and
    ``score(candidates)`` returns the loss of the blend with each candidate added. Inputs
    are validated and prepared by ``autofuse._core._prepare``; ``_reference.ReferenceKernel``
    is the same interface in NumPy.
    """

    cdef const float[:, :, ::1] P32
    cdef const double[:, :, ::1] P64
    cdef const float[:, ::1] Q32
    cdef const double[:, ::1] Q64
    cdef bint is32
    cdef bint unweighted
    cdef int metric
    cdef int n_threads
    cdef Py_ssize_t k
    cdef double sumw, eps
    cdef double[:, ::1] S
    cdef double[:, ::1] S1
    cdef double[:, ::1] T
    cdef double[::1] A
    cdef const double[:, ::1] Yf
    cdef const Py_ssize_t[::1] y
    cdef const double[::1] w
    cdef const double[::1] a
    cdef const double[::1] b
    cdef const double[::1] class_w
    cdef Py_ssize_t[::1] undecided
    cdef Py_ssize_t[::1] cont_ptr
    cdef Py_ssize_t[::1] cont
    cdef double[:, ::1] lo
    cdef double[:, ::1] hi
    cdef double[::1] conf0
    cdef const Py_ssize_t[::1] auc_cols
    cdef const double[:, ::1] auc_wp
    cdef const double[:, ::1] auc_wn
    cdef const double[::1] auc_pos
    cdef const double[::1] auc_neg
    cdef const double[::1] sstot
    cdef double[:, ::1] scratch
    cdef unsigned char[:, ::1] ent_buf
    cdef Py_ssize_t[:, ::1] cnt_buf

    def __init__(self, P, prep, int n_threads):
        cdef Py_ssize_t M = P.shape[0], n = P.shape[1], C = P.shape[2]
        cdef int nt = max(1, n_threads)
        cdef bint labels = prep.metric in (ACCURACY, BALANCED_ACCURACY, F1)
        self.is32 = P.dtype == np.float32
        # Every memoryview gets a value, so a debug build (initializedcheck) passes too.
        self.P32 = P if self.is32 else np.zeros((0, 0, 0), dtype=np.float32)
        self.P64 = np.zeros((0, 0, 0)) if self.is32 else P
        self.Q32 = np.zeros((0, 0), dtype=np.float32)
        self.Q64 = np.zeros((0, 0))
        self.metric = prep.metric
        self.unweighted = prep.sample_weight is None
        self.n_threads = nt
        self.sumw = prep.sumw
        self.eps = prep.eps
        self.y = prep.y_codes
        self.w = prep.w
        self.a = prep.a
        self.b = prep.b
        self.class_w = prep.class_w
        self.sstot = prep.sstot
        self.Yf = prep.y_values
        shape = P.shape  # Python ints, for the buffers below
        log_loss = prep.metric == LOG_LOSS
        self.S = np.zeros((0, 0) if log_loss else shape[1:])  # log_loss sums into S1
        self.S1 = np.zeros((1, shape[1]) if log_loss else (0, 0))
        self.A = np.zeros(shape[1] if log_loss else 0)
        self.T = np.zeros(shape[1:] if prep.task == "regression" else (0, 0))
        self.undecided = np.zeros(shape[1] if labels else 0, dtype=np.intp)
        self.cont_ptr = np.zeros(shape[1] + 1 if labels else 0, dtype=np.intp)
        self.cont = np.zeros(shape[1] * shape[2] if labels else 0, dtype=np.intp)
        self.lo = np.zeros(shape[1:] if labels else (0, 0))
        self.hi = np.zeros(shape[1:] if labels else (0, 0))
        if labels:
            if self.is32:
                _row_bounds[float](self.P32, self.y, self.lo, self.hi, nt)
            else:
                _row_bounds[double](self.P64, self.y, self.lo, self.hi, nt)
        self.conf0 = np.zeros(max(4, shape[2]) if labels else 0)
        self.auc_cols = np.zeros(0, dtype=np.intp)
        self.auc_wp = np.zeros((0, 0))
        self.auc_wn = np.zeros((0, 0))
        self.auc_pos = np.zeros(0)
        self.auc_neg = np.zeros(0)
        if prep.metric == ROC_AUC:
            targets = prep.auc_classes if C > 2 else np.array([1])
            self.auc_cols = np.asarray(targets if C > 2 else [C - 1], dtype=np.intp)
            wp = np.stack([np.where(prep.y_codes == t, prep.w, 0.0) for t in targets])
            wn = np.stack([np.where(prep.y_codes == t, 0.0, prep.w) for t in targets])
            self.auc_wp = wp
            self.auc_wn = wn
            self.auc_pos = wp.sum(axis=1)
            self.auc_neg = wn.sum(axis=1)
            self.ent_buf = np.zeros((nt, (n + 1) * sizeof(af_entry) + n * sizeof(af_bucket)),
                                    dtype=np.uint8)
            self.cnt_buf = np.zeros((nt, 2 * n), dtype=np.intp)
        else:
            self.ent_buf = np.zeros((nt, 1), dtype=np.uint8)
            self.cnt_buf = np.zeros((nt, 1), dtype=np.intp)
        self.scratch = np.zeros((nt, max(n, C, 4, prep.class_w.shape[0])))
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
        self.S1[...] = 0.0
        self.k = 0

    def add(self, Py_ssize_t m):
        """Add model ``m`` to the ensemble (the running sum)."""
        with nogil:
            if self.metric == LOG_LOSS:
                if self.is32:
                    _add_row1(self.Q32, m, self.S1[0])
                else:
                    _add_row1(self.Q64, m, self.S1[0])
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
        cdef Py_ssize_t i, o, nu = 0
        cdef int nt = min(self.n_threads, max(1, cand.shape[0]))
        with nogil:
            if self.metric == LOG_LOSS:
                for i in range(self.A.shape[0]):
                    self.A[i] = self.a[i] * c + self.b[i] * self.S1[0, i]
            for i in range(self.T.shape[0]):
                for o in range(self.T.shape[1]):
                    self.T[i, o] = self.S[i, o] - c * self.Yf[i, o]
            if self.undecided.shape[0] > 0:
                nu = _decide(self.S, self.lo, self.hi, self.y, self.w, 0.5 * c, self.undecided,
                             self.cont_ptr, self.cont, self.conf0)
            if self.is32:
                _score_all(self.P32, self.Q32, cand, out, self.metric, c, self.sumw, self.eps,
                           self.unweighted,
                           self.S, self.T, self.y, self.w, self.A, self.b, self.class_w,
                           self.undecided[:nu], self.cont_ptr, self.cont, self.conf0, self.auc_cols, self.auc_wp,
                           self.auc_wn, self.auc_pos, self.auc_neg, self.sstot, self.scratch,
                           self.ent_buf, self.cnt_buf, nt)
            else:
                _score_all(self.P64, self.Q64, cand, out, self.metric, c, self.sumw, self.eps,
                           self.unweighted,
                           self.S, self.T, self.y, self.w, self.A, self.b, self.class_w,
                           self.undecided[:nu], self.cont_ptr, self.cont, self.conf0, self.auc_cols, self.auc_wp,
                           self.auc_wn, self.auc_pos, self.auc_neg, self.sstot, self.scratch,
                           self.ent_buf, self.cnt_buf, nt)
        return out_arr
