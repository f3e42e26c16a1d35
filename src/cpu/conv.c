/* CPU kernels of conv2d: direct loops for depthwise convs; Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions
 * with >= 8 channels in and out (forward, grad input, grad weight; FRUGAL_CONV_NO_WINOGRAD=1 turns it off for
 * comparisons), else im2col + fr_sgemm per sample (forward, grad input via col2im, grad weight); the
 * per-channel sum for bias gradients. Scratch slots: 0 column buffers and Winograd tiles, 1 the transformed
 * filter (forward, grad input) or the weight gradient's dU / partial sums (never needed at once). */
#include "cpu/conv_internal.h"
#include "cpu/gemm.h"

#include <stdlib.h>

static void geom(struct conv_geom *g, const struct fr_tensor *x, const struct fr_tensor *w,
                 const struct fr_tensor *node)
{
    g->n = x->ne[0], g->c = x->ne[1], g->h = x->ne[2], g->w = x->ne[3];
    g->o = w->ne[0], g->kh = w->ne[2], g->kw = w->ne[3];
    g->sh = node->params[P_SH].i, g->sw = node->params[P_SW].i;
    g->ph = node->params[P_PH].i, g->pw = node->params[P_PW].i;
    g->dh = node->params[P_DH].i, g->dw = node->params[P_DW].i;
    g->groups = node->params[P_GROUPS].i;
    g->oh = (g->h + 2 * g->ph - g->dh * (g->kh - 1) - 1) / g->sh + 1;
    g->ow = (g->w + 2 * g->pw - g->dw * (g->kw - 1) - 1) / g->sw + 1;
    g->cg = g->c / g->groups, g->og = g->o / g->groups;
    g->kg = g->cg * g->kh * g->kw;
    g->ohw = g->oh * g->ow;
    g->direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* col[(c·KH + i)·KW + j][oh·OW + ow] = x[c][oh·sh − ph + i·dh][ow·sw − pw + j·dw] (0 outside) for the cg
 * channels starting at x */
static void im2col(const struct conv_geom *g, const float *x, float *col)
{
    for (int64_t c = 0; c < g->cg; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                float *row = col + ((c * g->kh + i) * g->kw + j) * g->ohw;
                const float *xc = x + c * g->h * g->w;
                int64_t x0 = j * g->dw - g->pw;
                /* output columns whose source column is inside [0, w) */
                int64_t lo = x0 >= 0 ? 0 : (-x0 + g->sw - 1) / g->sw;
                int64_t hi = g->w - x0 <= 0 ? 0 : (g->w - x0 - 1) / g->sw + 1;
                hi = FR_MIN(hi, g->ow);
                lo = FR_MIN(lo, hi);
                for (int64_t oy = 0; oy < g->oh; oy++, row += g->ow) {
                    int64_t iy = oy * g->sh - g->ph + i * g->dh;
                    if (iy < 0 || iy >= g->h) {
                        memset(row, 0, (size_t)g->ow * sizeof *row);
                        continue;
                    }
                    const float *src = xc + iy * g->w + x0;
                    for (int64_t ox = 0; ox < lo; ox++)
                        row[ox] = 0.0f;
                    if (g->sw == 1) /* rows are short (a feature map's width): a loop beats a memcpy call */
                        for (int64_t ox = lo; ox < hi; ox++)
                            row[ox] = src[ox];
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            row[ox] = src[ox * g->sw];
                    for (int64_t ox = hi; ox < g->ow; ox++)
                        row[ox] = 0.0f;
                }
            }
}

/* dx[c][...] += col[...]: the adjoint of im2col (dx must be zeroed first) */
static void col2im(const struct conv_geom *g, const float *col, float *dx)
{
    for (int64_t c = 0; c < g->cg; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                const float *row = col + ((c * g->kh + i) * g->kw + j) * g->ohw;
                float *xc = dx + c * g->h * g->w;
                int64_t x0 = j * g->dw - g->pw;
                int64_t lo = x0 >= 0 ? 0 : (-x0 + g->sw - 1) / g->sw;
                int64_t hi = g->w - x0 <= 0 ? 0 : (g->w - x0 - 1) / g->sw + 1;
                hi = FR_MIN(hi, g->ow);
                lo = FR_MIN(lo, hi);
                for (int64_t oy = 0; oy < g->oh; oy++, row += g->ow) {
                    int64_t iy = oy * g->sh - g->ph + i * g->dh;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    float *dst = xc + iy * g->w + x0;
                    if (g->sw == 1)
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox] += row[ox];
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox * g->sw] += row[ox];
                }
            }
}


/* ---- forward ---- */

/* ---- depthwise (one input and one output channel per group: MobileNet, EfficientNet): direct loops over
 * each (sample, channel) plane; im2col + a one-row GEMM per plane spent most of its time packing ---- */

static bool depthwise(const struct conv_geom *g) { return g->groups > 1 && g->cg == 1 && g->og == 1; }

struct dw_job {
    struct conv_geom g;
    const float *x, *w, *b, *gy;
    float *y;
    bool relu;
};

/* output columns [lo, hi) whose input column ox·s − p + j·d lies inside [0, w) */
static void dw_cols(const struct conv_geom *g, int64_t j, int64_t *lo, int64_t *hi)
{
    int64_t x0 = j * g->dw - g->pw;
    *lo = x0 >= 0 ? 0 : (-x0 + g->sw - 1) / g->sw;
    *hi = g->w - x0 <= 0 ? 0 : FR_MIN(g->ow, (g->w - x0 - 1) / g->sw + 1);
    *lo = FR_MIN(*lo, *hi);
}

FR_CONV_CLONES static void dw_fwd(void *p, int64_t b, int64_t e)
{
    const struct dw_job *jb = p;
    const struct conv_geom *g = &jb->g;
    for (int64_t pl = b; pl < e; pl++) {
        int64_t c = pl % g->c;
        const float *x = jb->x + pl * g->h * g->w, *w = jb->w + c * g->kh * g->kw;
        float *y = jb->y + pl * g->ohw, bias = jb->b ? jb->b[c] : 0.0f;
        for (int64_t q = 0; q < g->ohw; q++)
            y[q] = bias;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            float *yr = y + oy * g->ow;
            for (int64_t i = 0; i < g->kh; i++) {
                int64_t iy = oy * g->sh - g->ph + i * g->dh;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t lo, hi;
                    dw_cols(g, j, &lo, &hi);
                    const float *xr = x + iy * g->w + j * g->dw - g->pw;
                    float wv = w[i * g->kw + j];
                    if (g->sw == 1)
                        for (int64_t ox = lo; ox < hi; ox++)
                            yr[ox] += wv * xr[ox];
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            yr[ox] += wv * xr[ox * g->sw];
                }
            }
        }
        if (jb->relu)
            for (int64_t q = 0; q < g->ohw; q++)
                y[q] = y[q] > 0.0f ? y[q] : 0.0f;
    }
}

/* dx: each output's gradient scattered back through the taps (the adjoint of dw_fwd) */
FR_CONV_CLONES static void dw_bwd_input(void *p, int64_t b, int64_t e)
{
    const struct dw_job *jb = p;
    const struct conv_geom *g = &jb->g;
    for (int64_t pl = b; pl < e; pl++) {
        int64_t c = pl % g->c;
        const float *gy = jb->gy + pl * g->ohw, *w = jb->w + c * g->kh * g->kw;
        float *dx = jb->y + pl * g->h * g->w;
        memset(dx, 0, (size_t)(g->h * g->w) * sizeof *dx);
        for (int64_t oy = 0; oy < g->oh; oy++) {
            const float *gr = gy + oy * g->ow;
            for (int64_t i = 0; i < g->kh; i++) {
                int64_t iy = oy * g->sh - g->ph + i * g->dh;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t lo, hi;
                    dw_cols(g, j, &lo, &hi);
                    float *dr = dx + iy * g->w + j * g->dw - g->pw, wv = w[i * g->kw + j];
                    if (g->sw == 1)
                        for (int64_t ox = lo; ox < hi; ox++)
                            dr[ox] += wv * gr[ox];
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            dr[ox * g->sw] += wv * gr[ox];
                }
            }
        }
    }
}

/* dw[c] = Σ over samples and outputs of gy · x at each tap; one channel per task, samples in order (the
 * result does not depend on the thread count) */
FR_CONV_CLONES static void dw_bwd_weight(void *p, int64_t b, int64_t e)
{
    const struct dw_job *jb = p;
    const struct conv_geom *g = &jb->g;
    for (int64_t c = b; c < e; c++) {
        float *dw = jb->y + c * g->kh * g->kw;
        for (int64_t t = 0; t < g->kh * g->kw; t++) {
            int64_t i = t / g->kw, j = t % g->kw, lo, hi;
            dw_cols(g, j, &lo, &hi);
            double s = 0.0;
            for (int64_t n = 0; n < g->n; n++) {
                const float *x = jb->x + (n * g->c + c) * g->h * g->w, *gy = jb->gy + (n * g->c + c) * g->ohw;
                float acc[8] = {0};
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->sh - g->ph + i * g->dh;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    const float *xr = x + iy * g->w + j * g->dw - g->pw, *gr = gy + oy * g->ow;
                    int64_t ox = lo;
                    if (g->sw == 1)
                        for (; ox + 8 <= hi; ox += 8)
                            for (int u = 0; u < 8; u++)
                                acc[u] += gr[ox + u] * xr[ox + u];
                    for (; ox < hi; ox++)
                        acc[0] += gr[ox] * xr[ox * g->sw];
                }
                s += (double)(((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
            }
            dw[t] = (float)s;
        }
    }
}

static enum fr_status dw_run(struct fr_cpu_kctx *k, struct dw_job *j, fr_range_fn fn, int64_t n)
{
    fr_cpu_parallel_for(k, n, 1, fn, j);
    return FR_STATUS_OK;
}

struct fwd_job {
    struct conv_geom g;
    const float *x, *w, *b;
    float *y;
    float *col; /* per-thread column buffers of kg·ohw floats */
    struct fr_threadpool *gemm_pool; /* non-NULL when samples run one after another */
    bool relu;
};

static void fwd_sample(const struct fwd_job *j, int64_t n, float *col)
{
    const struct conv_geom *g = &j->g;
    float *y = j->y + n * g->o * g->ohw;
    for (int gi = 0; gi < g->groups; gi++) {
        const float *x = j->x + (n * g->c + gi * g->cg) * g->h * g->w;
        const float *b = x;
        if (!g->direct) {
            im2col(g, x, col);
            b = col;
        }
        fr_sgemm(j->gemm_pool, false, false, g->og, g->ohw, g->kg, 1.0f, j->w + gi * g->og * g->kg, g->kg, b, g->ohw,
                 0.0f, y + gi * g->og * g->ohw, g->ohw);
    }
    if (j->b || j->relu)
        for (int64_t o = 0; o < g->o; o++) {
            float bo = j->b ? j->b[o] : 0.0f, *r = y + o * g->ohw;
            if (j->relu)
                for (int64_t i = 0; i < g->ohw; i++) {
                    float v = r[i] + bo;
                    r[i] = v > 0.0f ? v : 0.0f;
                }
            else
                for (int64_t i = 0; i < g->ohw; i++)
                    r[i] += bo;
        }
}

static void fwd_task(void *p, int64_t n, int thread)
{
    const struct fwd_job *j = p;
    fwd_sample(j, n, j->col + (size_t)thread * (size_t)(j->g.kg * j->g.ohw));
}

/* Samples in parallel with one-thread GEMMs when the batch fills the pool; else threaded GEMMs. */
static bool per_sample_threads(struct fr_cpu_kctx *k, int64_t n) { return n >= fr_threadpool_size(k->pool) && n > 1; }

enum fr_status fr_cpu_conv2d(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct fwd_job j = {.x = fr_f32(dst->src[0]), .w = fr_f32(dst->src[1]),
                        .b = dst->src[2] ? fr_f32(dst->src[2]) : NULL, .y = fr_f32(dst),
                        .relu = dst->params[P_RELU].i != 0};
    geom(&j.g, dst->src[0], dst->src[1], dst);
    if (depthwise(&j.g)) {
        struct dw_job d = {.g = j.g, .x = j.x, .w = j.w, .b = j.b, .y = j.y, .relu = j.relu};
        return dw_run(k, &d, dw_fwd, j.g.n * j.g.c);
    }
    if (fr_cpu_wino_fits(&j.g)) {
        const struct conv_geom *g = &j.g;
        float *u = fr_cpu_scratch(k, 1, (size_t)(16 * g->o * g->c) * sizeof(float));
        struct wino_job wj = {.x = j.x, .u = u, .bias = j.b, .y = j.y, .n = g->n, .cin = g->c, .h = g->h,
                              .w = g->w, .cout = g->o, .oh = g->oh, .ow = g->ow, .ph = g->ph, .pw = g->pw,
                              .relu = j.relu};
        if (!u)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d '%s': no memory for the transformed filter", dst->name);
        fr_cpu_wino_filter(j.w, g->o, g->c, false, u);
        if (!fr_cpu_wino_run(k, &wj))
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d '%s': no memory for the Winograd tiles", dst->name);
        return FR_STATUS_OK;
    }
    int nt = fr_threadpool_size(k->pool);
    bool par = per_sample_threads(k, j.g.n);
    size_t per = j.g.direct ? 0 : (size_t)(j.g.kg * j.g.ohw);
    j.col = fr_cpu_scratch(k, 0, (per * (size_t)(par ? nt : 1) + 16) * sizeof(float));
    if (!j.col)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d '%s': no memory for the column buffer", dst->name);
    if (par) {
        fr_threadpool_run(k->pool, j.g.n, fwd_task, &j);
    } else {
        j.gemm_pool = k->pool;
        for (int64_t n = 0; n < j.g.n; n++)
            fwd_sample(&j, n, j.col);
    }
    return FR_STATUS_OK;
}

/* ---- grad input: dcol = Wᵀ·gy, then col2im ---- */

struct bwdx_job {
    struct conv_geom g;
    const float *w, *gy;
    float *dx, *col;
    struct fr_threadpool *gemm_pool;
};

static void bwdx_sample(const struct bwdx_job *j, int64_t n, float *col)
{
    const struct conv_geom *g = &j->g;
    for (int gi = 0; gi < g->groups; gi++) {
        float *dx = j->dx + (n * g->c + gi * g->cg) * g->h * g->w;
        const float *gy = j->gy + (n * g->o + gi * g->og) * g->ohw;
        const float *w = j->w + gi * g->og * g->kg;
        if (g->direct) {
            fr_sgemm(j->gemm_pool, true, false, g->kg, g->ohw, g->og, 1.0f, w, g->kg, gy, g->ohw, 0.0f, dx, g->ohw);
            continue;
        }
        fr_sgemm(j->gemm_pool, true, false, g->kg, g->ohw, g->og, 1.0f, w, g->kg, gy, g->ohw, 0.0f, col, g->ohw);
        memset(dx, 0, (size_t)(g->cg * g->h * g->w) * sizeof *dx);
        col2im(g, col, dx);
    }
}

static void bwdx_task(void *p, int64_t n, int thread)
{
    const struct bwdx_job *j = p;
    bwdx_sample(j, n, j->col + (size_t)thread * (size_t)(j->g.kg * j->g.ohw));
}

enum fr_status fr_cpu_conv2d_bwd_input(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct bwdx_job j = {.w = fr_f32(dst->src[0]), .gy = fr_f32(dst->src[1]), .dx = fr_f32(dst)};
    geom(&j.g, dst, dst->src[0], dst);
    if (depthwise(&j.g)) {
        struct dw_job d = {.g = j.g, .w = j.w, .gy = j.gy, .y = j.dx};
        return dw_run(k, &d, dw_bwd_input, j.g.n * j.g.c);
    }
    if (fr_cpu_wino_fits(&j.g)) {
        /* dx = gy convolved with the rotated, transposed filter, padded by 2 - p: a forward 3x3 stride-1 conv */
        const struct conv_geom *g = &j.g;
        float *u = fr_cpu_scratch(k, 1, (size_t)(16 * g->o * g->c) * sizeof(float));
        struct wino_job wj = {.x = j.gy, .u = u, .y = j.dx, .n = g->n, .cin = g->o, .h = g->oh, .w = g->ow,
                              .cout = g->c, .oh = g->h, .ow = g->w, .ph = 2 - g->ph, .pw = 2 - g->pw};
        if (!u)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d_bwd_input '%s': no memory for the transformed filter",
                            dst->name);
        fr_cpu_wino_filter(j.w, g->o, g->c, true, u);
        if (!fr_cpu_wino_run(k, &wj))
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d_bwd_input '%s': no memory for the Winograd tiles",
                            dst->name);
        return FR_STATUS_OK;
    }
    int nt = fr_threadpool_size(k->pool);
    bool par = per_sample_threads(k, j.g.n);
    size_t per = j.g.direct ? 0 : (size_t)(j.g.kg * j.g.ohw);
    j.col = fr_cpu_scratch(k, 0, (per * (size_t)(par ? nt : 1) + 16) * sizeof(float));
    if (!j.col)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d_bwd_input '%s': no memory for the column buffer", dst->name);
    if (par) {
        fr_threadpool_run(k->pool, j.g.n, bwdx_task, &j);
    } else {
        j.gemm_pool = k->pool;
        for (int64_t n = 0; n < j.g.n; n++)
            bwdx_sample(&j, n, j.col);
    }
    return FR_STATUS_OK;
}

/* ---- grad weight: dW += gy·colᵀ over samples; one partial sum per chunk of samples, added in a fixed
 * order (the result does not depend on which thread ran which chunk) ---- */

#define BWDW_CHUNKS 16 /* partial sums of dW at most: the most threads this op uses, 16 copies of dW in memory */

struct bwdw_job {
    struct conv_geom g;
    const float *x, *gy;
    float *dw, *col, *part;
    int64_t chunk;
    bool trans; /* accumulate dWᵀ = col·gyᵀ: far faster when kg is below a GEMM register tile (conv1: 9) */
    struct fr_threadpool *gemm_pool;
};

static void bwdw_range(const struct bwdw_job *j, int64_t n0, int64_t n1, float *col, float *dw)
{
    const struct conv_geom *g = &j->g;
    for (int64_t n = n0; n < n1; n++)
        for (int gi = 0; gi < g->groups; gi++) {
            const float *x = j->x + (n * g->c + gi * g->cg) * g->h * g->w;
            const float *b = x, *gy = j->gy + (n * g->o + gi * g->og) * g->ohw;
            if (!g->direct) {
                im2col(g, x, col);
                b = col;
            }
            float beta = n == n0 ? 0.0f : 1.0f, *d = dw + gi * g->og * g->kg;
            if (j->trans)
                fr_sgemm(j->gemm_pool, false, true, g->kg, g->og, g->ohw, 1.0f, b, g->ohw, gy, g->ohw, beta, d, g->og);
            else
                fr_sgemm(j->gemm_pool, false, true, g->og, g->kg, g->ohw, 1.0f, gy, g->ohw, b, g->ohw, beta, d, g->kg);
        }
}

static void bwdw_task(void *p, int64_t t, int thread)
{
    const struct bwdw_job *j = p;
    int64_t n0 = t * j->chunk, n1 = FR_MIN(j->g.n, n0 + j->chunk);
    size_t wsize = (size_t)(j->g.o * j->g.kg);
    bwdw_range(j, n0, n1, j->col + (size_t)thread * (size_t)(j->g.kg * j->g.ohw), j->part + (size_t)t * wsize);
}

enum fr_status fr_cpu_conv2d_bwd_weight(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct bwdw_job j = {.x = fr_f32(dst->src[0]), .gy = fr_f32(dst->src[1]), .dw = fr_f32(dst)};
    geom(&j.g, dst->src[0], dst, dst);
    if (depthwise(&j.g)) {
        struct dw_job d = {.g = j.g, .x = j.x, .gy = j.gy, .y = j.dw};
        return dw_run(k, &d, dw_bwd_weight, j.g.c);
    }
    if (fr_cpu_wino_fits(&j.g))
        return fr_cpu_wino_bwd_weight(k, &j.g, j.x, j.gy, j.dw, dst->name);
    j.trans = j.g.kg < 16 && j.g.og > j.g.kg;
    int nt = fr_threadpool_size(k->pool);
    size_t per = j.g.direct ? 0 : (size_t)(j.g.kg * j.g.ohw), wsize = (size_t)(j.g.o * j.g.kg);
    /* the chunks depend on the batch alone, not on the thread count: the same sums in the same order at any
       --threads, so a seed gives the same weights on 1 or 16 threads */
    int64_t tasks = FR_MIN(j.g.n, BWDW_CHUNKS);
    j.chunk = (j.g.n + tasks - 1) / tasks;
    tasks = (j.g.n + j.chunk - 1) / j.chunk;
    bool par = tasks > 1 && nt > 1;
    j.col = fr_cpu_scratch(k, 0, (per * (size_t)(par ? nt : 1) + 16) * sizeof(float));
    j.part = fr_cpu_scratch(k, 1, (size_t)tasks * wsize * sizeof(float));
    if (!j.col || !j.part)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d_bwd_weight '%s': no memory for the column buffer", dst->name);
    if (par) {
        fr_threadpool_run(k->pool, tasks, bwdw_task, &j);
    } else {
        j.gemm_pool = k->pool;
        for (int64_t t = 0; t < tasks; t++) /* the same chunks in turn, one column buffer */
            bwdw_task(&j, t, 0);
    }
    /* dw = Σ_t part_t, in chunk order; transposed parts hold [kg, og] per group */
    const struct conv_geom *g = &j.g;
    for (int gi = 0; gi < g->groups; gi++)
        for (int64_t o = 0; o < g->og; o++)
            for (int64_t q = 0; q < g->kg; q++) {
                size_t at = (size_t)(gi * g->og * g->kg) + (size_t)(j.trans ? q * g->og + o : o * g->kg + q);
                float s = j.part[at];
                for (int64_t t = 1; t < tasks; t++)
                    s += j.part[(size_t)t * wsize + at];
                j.dw[(gi * g->og + o) * g->kg + q] = s;
            }
    return FR_STATUS_OK;
}

/* ---- Σ over all axes but 1 (the bias gradient) ---- */

struct csum_job {
    const float *x;
    float *y;
    int64_t n, c, inner;
};

/* eight independent partial sums: the compiler may not reorder one float sum, so give it eight */
FR_CONV_CLONES static float row_sum(const float *r, int64_t len)
{
    float p[8] = {0};
    int64_t e = 0;
    for (; e + 8 <= len; e += 8)
        for (int q = 0; q < 8; q++)
            p[q] += r[e + q];
    for (; e < len; e++)
        p[0] += r[e];
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

static void csum_range(void *p, int64_t c0, int64_t c1)
{
    const struct csum_job *j = p;
    double acc[64]; /* long sums over the batch: keep them accurate */
    /* samples outermost, so each sample's block of channels is read front to back (a channel-outer walk jumps
     * a whole sample per row and ran at half the memory bandwidth) */
    for (int64_t b = c0; b < c1; b += 64) {
        int64_t e = FR_MIN(c1, b + 64);
        for (int64_t ch = b; ch < e; ch++)
            acc[ch - b] = 0.0;
        for (int64_t i = 0; i < j->n; i++)
            for (int64_t ch = b; ch < e; ch++)
                acc[ch - b] += row_sum(j->x + (i * j->c + ch) * j->inner, j->inner);
        for (int64_t ch = b; ch < e; ch++)
            j->y[ch] = (float)acc[ch - b];
    }
}

enum fr_status fr_cpu_channel_sum(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    const struct fr_tensor *a = dst->src[0];
    struct csum_job j = {.x = fr_f32(a), .y = fr_f32(dst), .n = a->ne[0], .c = a->ne[1]};
    j.inner = fr_nelements(a) / (j.n * j.c);
    fr_cpu_parallel_for(k, j.c, FR_MAX(1, 65536 / FR_MAX(1, j.n * j.inner)), csum_range, &j);
    return FR_STATUS_OK;
}
