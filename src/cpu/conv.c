/* CPU kernels of conv2d: im2col + fr_sgemm per sample (forward, grad input via col2im, grad weight) and the
 * per-channel sum used for bias gradients. */
#include "cpu/cpu.h"
#include "cpu/gemm.h"

enum { P_SH, P_SW, P_PH, P_PW, P_DH, P_DW, P_GROUPS, P_RELU };

struct conv_geom {
    int64_t n, c, h, w;     /* input */
    int64_t o, kh, kw;      /* weight */
    int64_t oh, ow;         /* output */
    int sh, sw, ph, pw, dh, dw, groups;
    int64_t cg, og, kg;     /* channels, outputs and GEMM depth per group */
    int64_t ohw;
    bool direct;            /* 1x1, stride 1, no padding: the input already is the column matrix */
};

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
    j.trans = j.g.kg < 16 && j.g.og > j.g.kg;
    int nt = fr_threadpool_size(k->pool);
    bool par = per_sample_threads(k, j.g.n);
    size_t per = j.g.direct ? 0 : (size_t)(j.g.kg * j.g.ohw), wsize = (size_t)(j.g.o * j.g.kg);
    int64_t tasks = par ? nt : 1;
    j.chunk = (j.g.n + tasks - 1) / tasks;
    tasks = (j.g.n + j.chunk - 1) / j.chunk;
    j.col = fr_cpu_scratch(k, 0, (per * (size_t)(par ? nt : 1) + 16) * sizeof(float));
    j.part = fr_cpu_scratch(k, 1, (size_t)tasks * wsize * sizeof(float));
    if (!j.col || !j.part)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d_bwd_weight '%s': no memory for the column buffer", dst->name);
    if (tasks > 1) {
        fr_threadpool_run(k->pool, tasks, bwdw_task, &j);
    } else {
        j.gemm_pool = k->pool;
        bwdw_range(&j, 0, j.g.n, j.col, j.part);
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
static float row_sum(const float *r, int64_t len)
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
    for (int64_t ch = c0; ch < c1; ch++) {
        double s = 0.0; /* long sums over the batch: keep them accurate */
        for (int64_t i = 0; i < j->n; i++)
            s += row_sum(j->x + (i * j->c + ch) * j->inner, j->inner);
        j->y[ch] = (float)s;
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
