/* Hand-written inner loops of the selection core that must vectorise (not generated code).
 *
 * Each loop maps rows to terms in blocks of AF_BLOCK (an elementwise loop the compiler
 * vectorises) and adds the terms into four fixed lanes, so the order of additions depends
 * neither on the data, nor on the thread count, nor on the vector width the CPU offers.
 * On x86-64 Linux with GCC, each loop is also compiled for AVX2 (with FMA, x86-64-v3, on
 * GCC >= 12) and the best version is picked when the module loads (target_clones);
 * elsewhere the baseline build is used.
 */
#ifndef AUTOFUSE_SIMD_H
#define AUTOFUSE_SIMD_H

#include <stddef.h>
#include <math.h>
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#if __GNUC__ >= 12
#define AF_CLONES __attribute__((target_clones("arch=x86-64-v3", "default"))) /* AVX2 + FMA */
#else
#define AF_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#else
#define AF_CLONES
#endif

#define AF_BLOCK 256

#if defined(__GNUC__) || defined(__clang__)
#define af_prefetch(p) __builtin_prefetch((p), 0, 1)
#else
#define af_prefetch(p) ((void)(p))
#endif

typedef union {
    double d;
    uint64_t u;
} af_bits;

/* The logarithm and the log-loss loop may fuse a*b+c into one rounding (FMA) where the CPU
 * has it: the NumPy reference computes its logarithm differently anyway, while every other
 * loop here keeps -ffp-contract=off, so that it matches the reference to the bit. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
#endif
/* Natural logarithm of a positive normal double; relative error below 3e-16.
 * x = 2^k z with z in [sqrt(1/2), sqrt(2)) found with integer arithmetic only (after
 * musl's log), then log(z) = 2 atanh(f), f = (z-1)/(z+1), |f| <= 0.1716, as an odd series
 * to f^21. No branches and no table, so loops over it vectorise. */
static inline double af_log(double x) {
    const double ln2_hi = 6.93147180369123816490e-01; /* exact in 32 bits */
    const double ln2_lo = 1.90821492927058770002e-10;
    af_bits xb, kb, zb;
    double z, k, f, f2, p;
    uint64_t t;
    xb.d = x;
    t = xb.u - 0x3FE6A09E667F3BCDULL + (1024ULL << 52); /* (k + 1024) in the top bits */
    kb.u = (t >> 52) | 0x4330000000000000ULL;            /* 2^52 + k + 1024 as a double */
    k = kb.d - (4503599627370496.0 + 1024.0);
    zb.u = xb.u - ((t & (0xFFFULL << 52)) - (1024ULL << 52));
    z = zb.d;
    f = (z - 1.0) / (z + 1.0); /* z - 1 is exact (Sterbenz) */
    f2 = f * f;
    p = 1.0 / 21.0;
    p = p * f2 + 1.0 / 19.0;
    p = p * f2 + 1.0 / 17.0;
    p = p * f2 + 1.0 / 15.0;
    p = p * f2 + 1.0 / 13.0;
    p = p * f2 + 1.0 / 11.0;
    p = p * f2 + 1.0 / 9.0;
    p = p * f2 + 1.0 / 7.0;
    p = p * f2 + 1.0 / 5.0;
    p = p * f2 + 1.0 / 3.0;
    return k * ln2_hi + (2.0 * f + (2.0 * f * f2 * p + k * ln2_lo));
}

/* Blocked sum of TERM(i) over i in [0, n): terms of a block go to tmp (vectorised map),
 * then into four lanes in a fixed order. */
#define AF_BLOCKED_SUM(n, TERM)                                                   \
    double tmp_[AF_BLOCK];                                                        \
    double l0_ = 0.0, l1_ = 0.0, l2_ = 0.0, l3_ = 0.0;                            \
    for (ptrdiff_t b0_ = 0; b0_ < (n); b0_ += AF_BLOCK) {                         \
        ptrdiff_t len_ = (n) - b0_ < AF_BLOCK ? (n) - b0_ : AF_BLOCK, j_;         \
        for (j_ = 0; j_ < len_; j_++) {                                           \
            const ptrdiff_t i = b0_ + j_;                                         \
            tmp_[j_] = (TERM);                                                    \
        }                                                                         \
        for (j_ = 0; j_ + 4 <= len_; j_ += 4) {                                   \
            l0_ += tmp_[j_];                                                      \
            l1_ += tmp_[j_ + 1];                                                  \
            l2_ += tmp_[j_ + 2];                                                  \
            l3_ += tmp_[j_ + 3];                                                  \
        }                                                                         \
        for (; j_ < len_; j_++) l0_ += tmp_[j_];                                  \
    }                                                                             \
    return (l0_ + l1_) + (l2_ + l3_);

static inline double af_clip(double v, double lo, double hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* log_loss: sum_i w_i * log(clip((A_i + B_i * q_i) / c, eps, 1 - eps)), where A and B fold
 * the running sum and the side of a one-column binary row: B_i is +1 or -1, so A_i + B_i q_i
 * is one exactly rounded addition, with or without FMA, as in the NumPy reference; the
 * scaling by 1 / c is a lone multiplication. Only af_log itself may fuse operations.
 * w == NULL means unit weights. */
#define AF_DEFINE_LOG_SUM(NAME, T)                                                      \
    AF_CLONES static double NAME(const double *A, const double *B, const T *q,          \
                                 const double *w, ptrdiff_t n, double inv_c,            \
                                 double eps) {                                          \
        const double hi = 1.0 - eps;                                                    \
        if (w == NULL) { /* unweighted */                                               \
            AF_BLOCKED_SUM(n, af_log(af_clip((A[i] + B[i] * (double)q[i]) * inv_c, eps, hi))) \
        } else {                                                                        \
            AF_BLOCKED_SUM(n, w[i] * af_log(af_clip((A[i] + B[i] * (double)q[i]) * inv_c, eps, hi))) \
        }                                                                               \
    }
AF_DEFINE_LOG_SUM(af_log_sum_d, double)
AF_DEFINE_LOG_SUM(af_log_sum_f, float)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

/* Regression: sum_i w_i * (t_i + p_i)^2 and sum_i w_i * |t_i + p_i|. */
static inline double af_sq(double d) { return d * d; }
static inline double af_abs(double d) { return fabs(d); }

#define AF_DEFINE_RESID_SUM(NAME, T, F)                                              \
    AF_CLONES static double NAME(const double *t, const T *p, const double *w,       \
                                 ptrdiff_t n) {                                      \
        AF_BLOCKED_SUM(n, w[i] * F(t[i] + (double)p[i]))                             \
    }
AF_DEFINE_RESID_SUM(af_sq_sum_d, double, af_sq)
AF_DEFINE_RESID_SUM(af_sq_sum_f, float, af_sq)
AF_DEFINE_RESID_SUM(af_abs_sum_d, double, af_abs)
AF_DEFINE_RESID_SUM(af_abs_sum_f, float, af_abs)

/* Multiclass label kernels: conf[y_i] += w_i for each listed row i whose blend S_i + p_i has
 * its first maximum at y_i (or conf[0] += w_i for all of them when not per_class). Every
 * class of the row is compared. Blend values are sums of
 * non-negative numbers starting from +0.0, so their bit patterns order like the values:
 * row i is right iff bits(v_j) < bits(v_y) + (j >= y_i) for every class j. */
#define AF_DEFINE_RIGHT_ROWS(NAME, T)                                                    \
    AF_CLONES static void NAME(const double *restrict S, const T *restrict p,             \
                     const ptrdiff_t *restrict y, const double *restrict w,               \
                     const ptrdiff_t *restrict rows, ptrdiff_t n_rows, ptrdiff_t C,       \
                     int per_class, double *restrict conf) {                              \
        double total = 0.0, right;                                                        \
        for (ptrdiff_t u = 0; u < n_rows; u++) {                                          \
            const ptrdiff_t i = rows[u], yi = y[i];                                       \
            const double *s = S + i * C;                                                  \
            const T *q = p + i * C;                                                       \
            af_bits vy, v;                                                                \
            uint64_t bad = 0;                                                             \
            if (u + 8 < n_rows) af_prefetch(p + rows[u + 8] * C);                         \
            vy.d = s[yi] + (double)q[yi];                                                 \
            for (ptrdiff_t j = 0; j < C; j++) {                                           \
                v.d = s[j] + (double)q[j];                                                \
                bad |= (uint64_t)(v.u >= vy.u + (uint64_t)(j >= yi));                     \
            }                                                                             \
            right = (double)(bad == 0) * w[i]; /* no branch: rows are right at random */  \
            if (per_class)                                                                \
                conf[yi] += right;                                                        \
            else                                                                          \
                total += right;                                                           \
        }                                                                                 \
        conf[0] += total;                                                                 \
    }
AF_DEFINE_RIGHT_ROWS(af_right_rows_d, double)
AF_DEFINE_RIGHT_ROWS(af_right_rows_f, float)

#endif
