/* Area under the ROC curve of one blend column, in expected O(n) (not generated code).
 *
 * The statistic is the weighted Mann-Whitney U: over pairs of a positive row a and a
 * negative row b, sum wp_a * wn_b * ([v_a > v_b] + [v_a == v_b] / 2), divided by
 * (sum wp) * (sum wn). That is exactly the trapezoidal area scikit-learn computes.
 *
 * Rows are put in buckets by value with a monotone map (so buckets are ordered and equal
 * values share one). Pairs in different buckets are counted from per-bucket weight sums;
 * only buckets holding several rows of both classes are gathered and resolved inside, by
 * comparing their pairs, or by sorting when a bucket is large.
 */
#ifndef AUTOFUSE_AUC_H
#define AUTOFUSE_AUC_H

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

typedef struct {
    double v, wp, wn;
} af_entry;

typedef struct {
    double pos, neg;
    ptrdiff_t cnt;
} af_bucket;

/* Buckets of at most this many rows are resolved by comparing pairs, larger ones by sorting. */
#define AF_PAIRWISE_MAX 16

static int af_entry_cmp(const void *a, const void *b) {
    const double x = ((const af_entry *)a)->v, y = ((const af_entry *)b)->v;
    return (x > y) - (x < y);
}

/* Pairs inside one bucket: ent[0..len). */
static double af_auc_inside(af_entry *ent, ptrdiff_t len) {
    double inner = 0.0;
    if (len <= AF_PAIRWISE_MAX) {
        for (ptrdiff_t a = 0; a < len; a++) {
            if (ent[a].wp == 0.0) continue;
            for (ptrdiff_t b = 0; b < len; b++) {
                const double d = ent[a].v - ent[b].v;
                const double h = (double)(d > 0.0) + 0.5 * (double)(d == 0.0); /* no branch */
                inner += ent[a].wp * ent[b].wn * h;
            }
        }
        return inner;
    }
    qsort(ent, (size_t)len, sizeof(af_entry), af_entry_cmp);
    double below = 0.0;
    for (ptrdiff_t a = 0; a < len;) {
        double gp = 0.0, gn = 0.0;
        ptrdiff_t b = a;
        for (; b < len && ent[b].v == ent[a].v; b++) {
            gp += ent[b].wp;
            gn += ent[b].wn;
        }
        inner += gp * (below + 0.5 * gn);
        below += gn;
        a = b;
    }
    return inner;
}

/* Scratch, overwritten: vals, bidx, mixed_at: n each; ent: n + 1 entries; bk: n buckets.
 * The blend column is s[i * stride] + p[i * stride]. */
#define AF_DEFINE_AUC(NAME, T)                                                           \
    static double NAME(const double *s, const T *p, ptrdiff_t stride, ptrdiff_t n,       \
                       const double *wp, const double *wn, double wpos, double wneg,     \
                       double *vals, ptrdiff_t *bidx, ptrdiff_t *mixed_at, af_entry *ent,\
                       af_bucket *bk) {                                                  \
        double lo0 = INFINITY, lo1 = INFINITY, hi0 = -INFINITY, hi1 = -INFINITY;         \
        ptrdiff_t i = 0, k, nb = n / 4 > 0 ? n / 4 : 1; /* ~4 rows a bucket: fits in L2 */\
        if (wpos == 0.0 || wneg == 0.0) return 0.5;                                      \
        for (; i + 2 <= n; i += 2) {                                                     \
            const double a = s[i * stride] + (double)p[i * stride];                      \
            const double b = s[(i + 1) * stride] + (double)p[(i + 1) * stride];          \
            vals[i] = a;                                                                 \
            vals[i + 1] = b;                                                             \
            lo0 = a < lo0 ? a : lo0;                                                     \
            hi0 = a > hi0 ? a : hi0;                                                     \
            lo1 = b < lo1 ? b : lo1;                                                     \
            hi1 = b > hi1 ? b : hi1;                                                     \
        }                                                                                \
        for (; i < n; i++) {                                                             \
            const double a = s[i * stride] + (double)p[i * stride];                      \
            vals[i] = a;                                                                 \
            lo0 = a < lo0 ? a : lo0;                                                     \
            hi0 = a > hi0 ? a : hi0;                                                     \
        }                                                                                \
        const double lo = lo0 < lo1 ? lo0 : lo1, hi = hi0 > hi1 ? hi0 : hi1;             \
        if (!(hi > lo)) return 0.5;                                                      \
        double scale = (double)nb / (hi - lo);                                           \
        if (!(scale < 1e300)) {                                                          \
            nb = 1;                                                                      \
            scale = 0.0;                                                                 \
        }                                                                                \
        for (k = 0; k < nb; k++) {                                                       \
            bk[k].pos = 0.0;                                                             \
            bk[k].neg = 0.0;                                                             \
            bk[k].cnt = 0;                                                               \
        }                                                                                \
        for (i = 0; i < n; i++) {                                                        \
            ptrdiff_t b = (ptrdiff_t)((vals[i] - lo) * scale);                           \
            b = b >= nb ? nb - 1 : b;                                                    \
            bidx[i] = b;                                                                 \
            bk[b].pos += wp[i];                                                          \
            bk[b].neg += wn[i];                                                          \
            bk[b].cnt += 1;                                                              \
        }                                                                                \
        /* Pairs across buckets: four interleaved prefix sums, for instruction-level      \
         * parallelism, then joined. */                                                  \
        const ptrdiff_t q = nb / 4;                                                      \
        double sc[4] = {0, 0, 0, 0}, below[4] = {0, 0, 0, 0}, pos[4] = {0, 0, 0, 0};     \
        for (k = 0; k < q; k++) {                                                        \
            for (int c = 0; c < 4; c++) {                                                \
                const af_bucket *u = &bk[c * q + k];                                     \
                sc[c] += u->pos * below[c];                                              \
                below[c] += u->neg;                                                      \
                pos[c] += u->pos;                                                        \
            }                                                                            \
        }                                                                                \
        for (k = 4 * q; k < nb; k++) {                                                   \
            sc[3] += bk[k].pos * below[3];                                               \
            below[3] += bk[k].neg;                                                       \
            pos[3] += bk[k].pos;                                                         \
        }                                                                                \
        double total = 0.0, offset = 0.0;                                                \
        for (int c = 0; c < 4; c++) {                                                    \
            total += sc[c] + pos[c] * offset;                                            \
            offset += below[c];                                                          \
        }                                                                                \
        /* Mixed buckets (several rows, both classes): cnt becomes the gather offset, or  \
         * -1; their indices go to mixed[] (reusing bidx would clash: use vals' tail).     \
         * Branch-free, as buckets are mixed at random. */                               \
        ptrdiff_t filled = 0, n_mixed = 0;                                               \
        for (k = 0; k < nb; k++) {                                                       \
            const ptrdiff_t c = bk[k].cnt;                                               \
            const int mixed = (c > 1) & (bk[k].pos > 0.0) & (bk[k].neg > 0.0);           \
            bk[k].cnt = mixed ? filled : -1;                                             \
            filled += mixed ? c : 0;                                                     \
            mixed_at[n_mixed] = k;                                                       \
            n_mixed += mixed;                                                            \
        }                                                                                \
        if (n_mixed > 0) {                                                               \
            for (i = 0; i < n; i++) { /* rows of other buckets land in the spare slot n */ \
                af_bucket *u = &bk[bidx[i]];                                             \
                const ptrdiff_t j = u->cnt;                                              \
                const int keep = j >= 0;                                                 \
                af_entry *e = &ent[keep ? j : n];                                        \
                u->cnt = j + keep;                                                       \
                e->v = vals[i];                                                          \
                e->wp = wp[i];                                                           \
                e->wn = wn[i];                                                           \
            }                                                                            \
            ptrdiff_t start = 0;                                                         \
            for (k = 0; k < n_mixed; k++) {                                              \
                const ptrdiff_t end = bk[mixed_at[k]].cnt;                               \
                total += af_auc_inside(ent + start, end - start);                        \
                start = end;                                                             \
            }                                                                            \
        }                                                                                \
        return total / (wpos * wneg);                                                    \
    }
AF_DEFINE_AUC(af_auc_d, double)
AF_DEFINE_AUC(af_auc_f, float)

#endif
