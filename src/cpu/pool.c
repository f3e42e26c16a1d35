/* CPU kernels of max-pool2d, avg-pool2d (padding, ceil_mode), adaptive avg-pool2d and their gradients, parallel
 * over (sample, channel) planes; window formulas shared with cl/pool.cl in cl/nn_math.h. */
#include "cpu/cpu.h"

#include <math.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "nn_math.h"

struct pool_job {
    const float *x, *gy;
    float *y;
    const int32_t *idx_in; /* a stored argmax (forward gather, backward scatter) */
    int32_t *idx;          /* MAXPOOL2D_INDEX's output */
    int64_t h, w, oh, ow;
    int k, s, p;
    bool exclude_pad;
};

static void setup(struct pool_job *j, const struct fr_tensor *big, const struct fr_tensor *small,
                  const struct fr_tensor *node)
{
    j->h = big->ne[2], j->w = big->ne[3], j->oh = small->ne[2], j->ow = small->ne[3];
    j->k = node->params[0].i, j->s = node->params[1].i, j->p = node->params[2].i;
    j->exclude_pad = node->params[4].i != 0;
}

/* disjoint 2x2 windows that all lie inside the input: the vectorised paths */
static bool pool2x2(const struct pool_job *j)
{
    return j->k == 2 && j->s == 2 && j->p == 0 && 2 * j->oh <= j->h && 2 * j->ow <= j->w;
}

/* the window of output (oy, ox) clipped to the input: rows [y0, y1), columns [x0, x1); span = its size
 * within the padded input (the divisor with count_include_pad) */
#define WINDOW(j, oy, ox)                                                                        \
    int y0, y1, x0, x1;                                                                          \
    int span = fr_pool_window((int)(oy), (j)->k, (j)->s, (j)->p, (int)(j)->h, &y0, &y1) *        \
               fr_pool_window((int)(ox), (j)->k, (j)->s, (j)->p, (int)(j)->w, &x0, &x1);         \
    (void)span

/* index of the first maximum in the window (row-major), as PyTorch; NaN wins so it propagates. Selects
 * instead of branches (which value wins is random); a window holding a NaN is walked again for its first NaN. */
static int64_t argmax(const struct pool_job *j, const float *x, int64_t oy, int64_t ox)
{
    WINDOW(j, oy, ox);
    int64_t best = y0 * j->w + x0;
    float m = x[best];
    bool nan = false;
    for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = x0; ix < x1; ix++) {
            float v = x[iy * j->w + ix];
            int64_t idx = iy * j->w + ix;
            best = v > m ? idx : best;
            m = v > m ? v : m;
            nan |= v != v;
        }
    if (nan)
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++)
                if (isnan(x[iy * j->w + ix]))
                    return iy * j->w + ix;
    return best;
}

/* the stored argmax of every window */
static void max_index(void *p, int64_t b, int64_t e)
{
    const struct pool_job *j = p;
    for (int64_t pl = b; pl < e; pl++) {
        const float *x = j->x + pl * j->h * j->w;
        int32_t *ix = j->idx + pl * j->oh * j->ow;
        for (int64_t oy = 0; oy < j->oh; oy++)
            for (int64_t ox = 0; ox < j->ow; ox++)
                ix[oy * j->ow + ox] = (int32_t)argmax(j, x, oy, ox);
    }
}

static void max_fwd(void *p, int64_t b, int64_t e)
{
    const struct pool_job *j = p;
    for (int64_t pl = b; pl < e; pl++) {
        const float *x = j->x + pl * j->h * j->w;
        float *y = j->y + pl * j->oh * j->ow;
        if (j->idx_in) { /* the values at the stored argmax */
            const int32_t *ix = j->idx_in + pl * j->oh * j->ow;
            for (int64_t q = 0; q < j->oh * j->ow; q++)
                y[q] = x[ix[q]];
            continue;
        }
        if (pool2x2(j)) { /* the common case, without the generic window walk */
            for (int64_t oy = 0; oy < j->oh; oy++)
                for (int64_t ox = 0; ox < j->ow; ox++) {
                    const float *r = x + 2 * oy * j->w + 2 * ox;
                    float m = r[0];
                    m = r[1] > m ? r[1] : m;
                    m = r[j->w] > m ? r[j->w] : m;
                    m = r[j->w + 1] > m ? r[j->w + 1] : m;
                    if (isnan(r[0]) || isnan(r[1]) || isnan(r[j->w]) || isnan(r[j->w + 1]))
                        m = NAN;
                    y[oy * j->ow + ox] = m;
                }
            continue;
        }
        /* the maximum itself (no index): NaN wins, as in argmax */
        for (int64_t oy = 0; oy < j->oh; oy++)
            for (int64_t ox = 0; ox < j->ow; ox++) {
                WINDOW(j, oy, ox);
                float m = -INFINITY;
                bool nan = false;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        float v = x[iy * j->w + ix];
                        m = v > m ? v : m;
                        nan |= v != v;
                    }
                y[oy * j->ow + ox] = nan ? NAN : m;
            }
    }
}

/* One row of disjoint 2x2 windows: every dx value of the two input rows is written (gy at the window's
 * first maximum, 0 elsewhere), with selects instead of branches so the loop vectorises; which value wins
 * is random, and mispredicted branches made this the slowest op of a training step. Returns false when
 * the rows hold a NaN (or inf − inf), for the generic path to redo them. */
static bool max_bwd_row2(const float *r0, const float *r1, const float *gy, float *d0, float *d1, int64_t ow)
{
    float nan_probe = 0.0f;
    int64_t ox = 0;
#if defined(__SSE2__)
    /* four windows at a time: even/odd columns split, the same tournament on lanes, interleaved back */
    __m128 probe = _mm_setzero_ps();
    for (; ox + 4 <= ow; ox += 4) {
        __m128 p0 = _mm_loadu_ps(r0 + 2 * ox), p1 = _mm_loadu_ps(r0 + 2 * ox + 4);
        __m128 q0 = _mm_loadu_ps(r1 + 2 * ox), q1 = _mm_loadu_ps(r1 + 2 * ox + 4);
        __m128 a = _mm_shuffle_ps(p0, p1, _MM_SHUFFLE(2, 0, 2, 0)), b = _mm_shuffle_ps(p0, p1, _MM_SHUFFLE(3, 1, 3, 1));
        __m128 c = _mm_shuffle_ps(q0, q1, _MM_SHUFFLE(2, 0, 2, 0)), d = _mm_shuffle_ps(q0, q1, _MM_SHUFFLE(3, 1, 3, 1));
        __m128 g = _mm_loadu_ps(gy + ox);
        probe = _mm_add_ps(probe, _mm_add_ps(_mm_add_ps(a, b), _mm_add_ps(c, d)));
        __m128 gb = _mm_cmpgt_ps(b, a), gd = _mm_cmpgt_ps(d, c);
        __m128 late = _mm_cmpgt_ps(_mm_max_ps(c, d), _mm_max_ps(a, b));
        __m128 wa = _mm_andnot_ps(late, _mm_andnot_ps(gb, g)), wb = _mm_andnot_ps(late, _mm_and_ps(gb, g));
        __m128 wc = _mm_and_ps(late, _mm_andnot_ps(gd, g)), wd = _mm_and_ps(late, _mm_and_ps(gd, g));
        _mm_storeu_ps(d0 + 2 * ox, _mm_unpacklo_ps(wa, wb));
        _mm_storeu_ps(d0 + 2 * ox + 4, _mm_unpackhi_ps(wa, wb));
        _mm_storeu_ps(d1 + 2 * ox, _mm_unpacklo_ps(wc, wd));
        _mm_storeu_ps(d1 + 2 * ox + 4, _mm_unpackhi_ps(wc, wd));
    }
    float pr[4];
    _mm_storeu_ps(pr, probe);
    nan_probe = (pr[0] + pr[1]) + (pr[2] + pr[3]);
#endif
    for (; ox < ow; ox++) {
        float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1], g = gy[ox];
        nan_probe += (a + b) + (c + d);
        /* a tournament keeps the first maximum: a later value wins only when strictly greater. Masks
         * from the comparisons select g by bitwise and, which compilers keep free of branches. */
        float m01 = b > a ? b : a, m23 = d > c ? d : c;
        uint32_t gb = 0u - (uint32_t)(b > a), gd = 0u - (uint32_t)(d > c), late = 0u - (uint32_t)(m23 > m01);
        uint32_t gbits;
        memcpy(&gbits, &g, sizeof g);
        uint32_t o[4] = {gbits & ~late & ~gb, gbits & ~late & gb, gbits & late & ~gd, gbits & late & gd};
        memcpy(d0 + 2 * ox, o, 2 * sizeof(float));
        memcpy(d1 + 2 * ox, o + 2, 2 * sizeof(float));
    }
    return !isnan(nan_probe);
}

static void max_bwd(void *p, int64_t b, int64_t e)
{
    const struct pool_job *j = p;
    for (int64_t pl = b; pl < e; pl++) {
        const float *gy = j->gy + pl * j->oh * j->ow;
        float *dx = j->y + pl * j->h * j->w;
        if (j->idx_in) { /* scattered through the stored argmax */
            const int32_t *ix = j->idx_in + pl * j->oh * j->ow;
            memset(dx, 0, (size_t)(j->h * j->w) * sizeof *dx);
            for (int64_t q = 0; q < j->oh * j->ow; q++)
                dx[ix[q]] += gy[q];
            continue;
        }
        const float *x = j->x + pl * j->h * j->w;
        bool done = false;
        if (pool2x2(j)) { /* model s's pools: disjoint 2x2 windows */
            done = true;
            for (int64_t oy = 0; oy < j->oh; oy++) {
                const float *r0 = x + 2 * oy * j->w;
                float *d0 = dx + 2 * oy * j->w;
                done &= max_bwd_row2(r0, r0 + j->w, gy + oy * j->ow, d0, d0 + j->w, j->ow);
                for (int64_t ix = 2 * j->ow; ix < j->w; ix++) /* an odd last column no window reads */
                    d0[ix] = d0[j->w + ix] = 0.0f;
            }
            /* an odd last row no window reads */
            memset(dx + 2 * j->oh * j->w, 0, (size_t)((j->h - 2 * j->oh) * j->w) * sizeof *dx);
            if (done)
                continue;
        }
        memset(dx, 0, (size_t)(j->h * j->w) * sizeof *dx);
        for (int64_t oy = 0; oy < j->oh; oy++)
            for (int64_t ox = 0; ox < j->ow; ox++)
                dx[argmax(j, x, oy, ox)] += gy[oy * j->ow + ox];
    }
}

/* 1 / the divisor of a window: its size in the padded input, or only its input elements (exclude_pad) */
static float avg_inv(const struct pool_job *j, int span, int y0, int y1, int x0, int x1)
{
    return 1.0f / (float)(j->exclude_pad ? (y1 - y0) * (x1 - x0) : span);
}

static void avg_fwd(void *p, int64_t b, int64_t e)
{
    const struct pool_job *j = p;
    for (int64_t pl = b; pl < e; pl++) {
        const float *x = j->x + pl * j->h * j->w;
        float *y = j->y + pl * j->oh * j->ow;
        for (int64_t oy = 0; oy < j->oh; oy++)
            for (int64_t ox = 0; ox < j->ow; ox++) {
                WINDOW(j, oy, ox);
                float s = 0.0f;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++)
                        s += x[iy * j->w + ix];
                y[oy * j->ow + ox] = s * avg_inv(j, span, y0, y1, x0, x1);
            }
    }
}

static void avg_bwd(void *p, int64_t b, int64_t e)
{
    const struct pool_job *j = p;
    for (int64_t pl = b; pl < e; pl++) {
        const float *gy = j->gy + pl * j->oh * j->ow;
        float *dx = j->y + pl * j->h * j->w;
        memset(dx, 0, (size_t)(j->h * j->w) * sizeof *dx);
        for (int64_t oy = 0; oy < j->oh; oy++)
            for (int64_t ox = 0; ox < j->ow; ox++) {
                WINDOW(j, oy, ox);
                float g = gy[oy * j->ow + ox] * avg_inv(j, span, y0, y1, x0, x1);
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++)
                        dx[iy * j->w + ix] += g;
            }
    }
}

/* adaptive average pooling: windows [floor(o·n/n_out), ceil((o+1)·n/n_out)) on both axes */
static void adaptive_fwd(void *p, int64_t b, int64_t e)
{
    const struct pool_job *j = p;
    for (int64_t pl = b; pl < e; pl++) {
        const float *x = j->x + pl * j->h * j->w;
        float *y = j->y + pl * j->oh * j->ow;
        for (int oy = 0; oy < (int)j->oh; oy++) {
            int y0, y1;
            fr_adaptive_window(oy, (int)j->oh, (int)j->h, &y0, &y1);
            for (int ox = 0; ox < (int)j->ow; ox++) {
                int x0, x1;
                fr_adaptive_window(ox, (int)j->ow, (int)j->w, &x0, &x1);
                float s = 0.0f;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        s += x[iy * j->w + ix];
                y[oy * j->ow + ox] = s / (float)((y1 - y0) * (x1 - x0));
            }
        }
    }
}

static void adaptive_bwd(void *p, int64_t b, int64_t e)
{
    const struct pool_job *j = p;
    for (int64_t pl = b; pl < e; pl++) {
        const float *gy = j->gy + pl * j->oh * j->ow;
        float *dx = j->y + pl * j->h * j->w;
        memset(dx, 0, (size_t)(j->h * j->w) * sizeof *dx);
        for (int oy = 0; oy < (int)j->oh; oy++) {
            int y0, y1;
            fr_adaptive_window(oy, (int)j->oh, (int)j->h, &y0, &y1);
            for (int ox = 0; ox < (int)j->ow; ox++) {
                int x0, x1;
                fr_adaptive_window(ox, (int)j->ow, (int)j->w, &x0, &x1);
                float g = gy[oy * j->ow + ox] / (float)((y1 - y0) * (x1 - x0));
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        dx[iy * j->w + ix] += g;
            }
        }
    }
}

static int64_t planes(const struct fr_tensor *t) { return t->ne[0] * t->ne[1]; }
static int64_t grain(const struct pool_job *j) { return FR_MAX(1, 16384 / FR_MAX(1, j->h * j->w)); }

enum fr_status fr_cpu_maxpool2d_index(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct pool_job j = {.x = fr_f32(dst->src[0]), .idx = (int32_t *)fr_tensor_data(dst)};
    setup(&j, dst->src[0], dst, dst);
    fr_cpu_parallel_for(k, planes(dst), grain(&j), max_index, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_maxpool2d(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct pool_job j = {.x = fr_f32(dst->src[0]), .y = fr_f32(dst),
                         .idx_in = dst->src[1] ? (const int32_t *)fr_tensor_data(dst->src[1]) : NULL};
    setup(&j, dst->src[0], dst, dst);
    fr_cpu_parallel_for(k, planes(dst), grain(&j), max_fwd, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_maxpool2d_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    bool stored = dst->src[0]->type == FR_I32; /* (index, gy) or (x, gy) */
    struct pool_job j = {.x = stored ? NULL : fr_f32(dst->src[0]), .gy = fr_f32(dst->src[1]), .y = fr_f32(dst),
                         .idx_in = stored ? (const int32_t *)fr_tensor_data(dst->src[0]) : NULL};
    setup(&j, dst, dst->src[1], dst);
    fr_cpu_parallel_for(k, planes(dst), grain(&j), max_bwd, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_avgpool2d(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct pool_job j = {.x = fr_f32(dst->src[0]), .y = fr_f32(dst)};
    setup(&j, dst->src[0], dst, dst);
    fr_cpu_parallel_for(k, planes(dst), grain(&j), avg_fwd, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_avgpool2d_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct pool_job j = {.gy = fr_f32(dst->src[0]), .y = fr_f32(dst)};
    setup(&j, dst, dst->src[0], dst);
    fr_cpu_parallel_for(k, planes(dst), grain(&j), avg_bwd, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_adaptive_avgpool2d(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct pool_job j = {.x = fr_f32(dst->src[0]), .y = fr_f32(dst)};
    setup(&j, dst->src[0], dst, dst);
    fr_cpu_parallel_for(k, planes(dst), grain(&j), adaptive_fwd, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_adaptive_avgpool2d_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct pool_job j = {.gy = fr_f32(dst->src[0]), .y = fr_f32(dst)};
    setup(&j, dst, dst->src[0], dst);
    fr_cpu_parallel_for(k, planes(dst), grain(&j), adaptive_bwd, &j);
    return FR_STATUS_OK;
}
