/* CPU kernels of conv2d: direct loops for depthwise convs; Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions
 * with >= 8 channels in and out (forward, grad input, grad weight; FRUGAL_CONV_NO_WINOGRAD=1 turns it off for
 * comparisons), else im2col + fr_sgemm per sample (forward, grad input via col2im, grad weight); the
 * per-channel sum for bias gradients. Scratch slots: 0 column buffers and Winograd tiles, 1 the transformed
 * filter (forward, grad input) or the weight gradient's dU / partial sums (never needed at once). */
#include "cpu/cpu.h"
#include "cpu/gemm.h"

#include <stdlib.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FR_CONV_CLONES __attribute__((target_clones("avx2", "default"))) /* wider vectors, same IEEE ops */
#else
#define FR_CONV_CLONES
#endif

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

/* copies n floats; feature-map rows are short (14, 28), where a memcpy call costs more than the copy */
static inline void copy_row(float *dst, const float *src, int64_t n)
{
    int64_t q = 0;
    for (; q + 4 <= n; q += 4)
        memcpy(dst + q, src + q, 4 * sizeof *dst); /* fixed size: one vector move, no call */
    for (; q < n; q++)
        dst[q] = src[q];
}

/* ---- Winograd F(2x2, 3x3): 3x3 stride-1 convolutions (model s's conv2 and its input gradient) ----
 * Each 4x4 input tile d becomes V = Bᵀ·d·B, each 3x3 filter U = G·g·Gᵀ; the 16 positions ξ of the transformed
 * tiles are 16 independent GEMMs M_ξ = U_ξ·V_ξ ([cout x cin]·[cin x tiles]), and Aᵀ·M·A gives a 2x2 output
 * tile: 2.25x fewer multiplies than im2col + GEMM and no 9x column buffer. Several samples share one set of
 * GEMMs so the tile count (GEMM width) stays near a few hundred; groups of samples run on the threads. */

/* small channel counts make the 16 GEMMs too thin to pay for the transforms */
static bool wino_fits(const struct conv_geom *g)
{
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->groups == 1 &&
           g->ph <= 2 && g->pw <= 2 && g->c >= 8 && g->o >= 8 && !getenv("FRUGAL_CONV_NO_WINOGRAD");
}

/* U[ξ][a][b] = G·g·Gᵀ of filter g = w[a][b] (forward: a = output channel o, b = input channel c), or, for the
 * input gradient (flip), of the 180°-rotated w[b][a] so that dx is a forward convolution of gy. */
static void wino_filter(const float *w, int64_t o_ch, int64_t c_ch, bool flip, float *u)
{
    int64_t na = flip ? c_ch : o_ch, nb = flip ? o_ch : c_ch;
    for (int64_t a = 0; a < na; a++)
        for (int64_t b = 0; b < nb; b++) {
            float g[3][3], t[4][3];
            const float *src = flip ? w + (b * c_ch + a) * 9 : w + (a * c_ch + b) * 9;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    g[i][j] = flip ? src[(2 - i) * 3 + (2 - j)] : src[i * 3 + j];
            for (int j = 0; j < 3; j++) {
                t[0][j] = g[0][j];
                t[1][j] = 0.5f * ((g[0][j] + g[1][j]) + g[2][j]);
                t[2][j] = 0.5f * ((g[0][j] - g[1][j]) + g[2][j]);
                t[3][j] = g[2][j];
            }
            for (int i = 0; i < 4; i++) {
                float r[4] = {t[i][0], 0.5f * ((t[i][0] + t[i][1]) + t[i][2]), 0.5f * ((t[i][0] - t[i][1]) + t[i][2]),
                              t[i][2]};
                for (int j = 0; j < 4; j++)
                    u[((i * 4 + j) * na + a) * nb + b] = r[j];
            }
        }
}

struct wino_job {
    const float *x, *u, *bias;
    float *y, *scratch;
    int64_t n, cin, h, w, cout, oh, ow, ph, pw, th, tw, tiles, group;
    size_t per_thread;
    struct fr_threadpool *gemm_pool;
    bool relu;
};

/* The input transform runs over whole vectors of 8 tiles per tile row (a tile row of model s is 7 tiles: a
 * shorter loop ran scalar); the extra tiles land in the next row's slots, which are written after, or, at the end
 * of a row of V, in slack: WINO_SLACK floats after each ξ plane of V and after the padded image. */
#define WINO_VEC 8
#define WINO_SLACK 32
static int64_t wino_tw8(int64_t tw) { return (tw + WINO_VEC - 1) / WINO_VEC * WINO_VEC; }
static int64_t wino_vstride(int64_t cin, int64_t n_cols) { return cin * n_cols + WINO_SLACK; }
static int64_t wino_pad_floats(const struct wino_job *j) { return (2 * j->th + 2) * (2 * j->tw + 2) + WINO_SLACK; }

static size_t wino_scratch_floats(const struct wino_job *j)
{
    int64_t nt = j->group * j->tiles;
    return (size_t)(16 * wino_vstride(j->cin, nt) + 16 * j->cout * nt + wino_pad_floats(j) + 4 * j->tiles + 16);
}

/* Aᵀ·m·A of the T tiles whose 16 transformed values lie `plane` apart, plus bias (and ReLU): out holds the
 * four output positions of every tile, [2][2][T] */
FR_CONV_CLONES static void wino_out_tiles(const float *restrict m, int64_t plane, int64_t T, float bias, bool relu,
                           float *restrict out)
{
    const float *restrict m0 = m, *restrict m1 = m + plane, *restrict m2 = m + 2 * plane, *restrict m3 = m + 3 * plane;
    const float *restrict m4 = m + 4 * plane, *restrict m5 = m + 5 * plane, *restrict m6 = m + 6 * plane;
    const float *restrict m7 = m + 7 * plane, *restrict m8 = m + 8 * plane, *restrict m9 = m + 9 * plane;
    const float *restrict m10 = m + 10 * plane, *restrict m11 = m + 11 * plane, *restrict m12 = m + 12 * plane;
    const float *restrict m13 = m + 13 * plane, *restrict m14 = m + 14 * plane, *restrict m15 = m + 15 * plane;
    float *restrict y00 = out, *restrict y01 = out + T, *restrict y10 = out + 2 * T, *restrict y11 = out + 3 * T;
#define P(q) m##q[t]
#define WINO_OUT(ACT)                                                                                          \
    for (int64_t t = 0; t < T; t++) {                                                                          \
        float a0 = (P(0) + P(4)) + P(8), a1 = (P(1) + P(5)) + P(9);                                            \
        float a2 = (P(2) + P(6)) + P(10), a3 = (P(3) + P(7)) + P(11);                                          \
        float b0 = (P(4) - P(8)) - P(12), b1 = (P(5) - P(9)) - P(13);                                          \
        float b2 = (P(6) - P(10)) - P(14), b3 = (P(7) - P(11)) - P(15);                                        \
        y00[t] = ACT(((a0 + a1) + a2) + bias), y01[t] = ACT(((a1 - a2) - a3) + bias);                          \
        y10[t] = ACT(((b0 + b1) + b2) + bias), y11[t] = ACT(((b1 - b2) - b3) + bias);                          \
    }
#define RELU(v) ((v) > 0.0f ? (v) : 0.0f)
#define IDENT(v) (v)
    /* two copies of the loop: a run-time flag inside it keeps GCC from vectorising */
    if (relu)
        WINO_OUT(RELU)
    else
        WINO_OUT(IDENT)
#undef RELU
#undef IDENT
#undef WINO_OUT
#undef P
}

/* Bᵀ·d·B of the tw tiles of one tile row (4 rows of the padded plane `d`, `ld` apart); the 16 values of tile
 * tx go to v[ξ·plane + tx]. One loop over the tiles with 16 contiguous output streams, so it vectorises. */
/* noinline: inlined, GCC drops the restrict promises and gives up on vectorising */
__attribute__((noinline)) FR_CONV_CLONES static void wino_in_row(const float *restrict d, int64_t ld, int64_t tw, float *restrict v, int64_t plane)
{
#define R(r, q) d[(r) * ld + x + (q)]
#define V(q) v[(q) * plane + tx]
#pragma GCC ivdep /* the 16 output planes are `plane` apart and never overlap */
    for (int64_t tx = 0; tx < tw; tx++) {
        const int64_t x = 2 * tx;
        /* t = Bᵀ·d down the columns */
        float t00 = R(0, 0) - R(2, 0), t01 = R(0, 1) - R(2, 1), t02 = R(0, 2) - R(2, 2), t03 = R(0, 3) - R(2, 3);
        float t10 = R(1, 0) + R(2, 0), t11 = R(1, 1) + R(2, 1), t12 = R(1, 2) + R(2, 2), t13 = R(1, 3) + R(2, 3);
        float t20 = R(2, 0) - R(1, 0), t21 = R(2, 1) - R(1, 1), t22 = R(2, 2) - R(1, 2), t23 = R(2, 3) - R(1, 3);
        float t30 = R(1, 0) - R(3, 0), t31 = R(1, 1) - R(3, 1), t32 = R(1, 2) - R(3, 2), t33 = R(1, 3) - R(3, 3);
        /* then ·B along the rows */
        V(0) = t00 - t02, V(1) = t01 + t02, V(2) = t02 - t01, V(3) = t01 - t03;
        V(4) = t10 - t12, V(5) = t11 + t12, V(6) = t12 - t11, V(7) = t11 - t13;
        V(8) = t20 - t22, V(9) = t21 + t22, V(10) = t22 - t21, V(11) = t21 - t23;
        V(12) = t30 - t32, V(13) = t31 + t32, V(14) = t32 - t31, V(15) = t31 - t33;
    }
#undef R
#undef V
}

/* V[ξ][c][s·T + t] of samples s0 .. s0+ns-1 (N = ns·T columns, ξ planes wino_vstride apart), via a
 * zero-padded copy of each image plane. Channels outermost and tile rows in order, so the spill of each row's
 * last vector is overwritten by what follows or falls into a plane's slack (see WINO_VEC). */
static void wino_input(const struct wino_job *j, int64_t s0, int64_t ns, float *v, float *pad)
{
    int64_t T = j->tiles, N = ns * T, ph2 = 2 * j->th + 2, pw2 = 2 * j->tw + 2, tw8 = wino_tw8(j->tw);
    int64_t vs = wino_vstride(j->cin, N);
    for (int64_t q = ph2 * pw2; q < wino_pad_floats(j); q++)
        pad[q] = 0.0f; /* read (never used) by the spilled tiles of the last tile row */
    for (int64_t c = 0; c < j->cin; c++)
        for (int64_t s = 0; s < ns; s++) {
            const float *xc = j->x + ((s0 + s) * j->cin + c) * j->h * j->w;
            for (int64_t r = 0; r < ph2; r++) {
                int64_t iy = r - j->ph;
                float *pr = pad + r * pw2;
                if (iy < 0 || iy >= j->h) {
                    for (int64_t q = 0; q < pw2; q++)
                        pr[q] = 0.0f;
                    continue;
                }
                int64_t cols = FR_MIN(j->w, pw2 - j->pw); /* the plane may be narrower than the input + pads */
                for (int64_t q = 0; q < j->pw; q++)
                    pr[q] = 0.0f;
                copy_row(pr + j->pw, xc + iy * j->w, cols);
                for (int64_t q = j->pw + cols; q < pw2; q++)
                    pr[q] = 0.0f;
            }
            float *vc = v + c * N + s * T;
            for (int64_t ty = 0; ty < j->th; ty++)
                wino_in_row(pad + 2 * ty * pw2, pw2, tw8, vc + ty * j->tw, vs);
        }
}

static void wino_group(const struct wino_job *j, int64_t grp, float *sc)
{
    int64_t s0 = grp * j->group, ns = FR_MIN(j->group, j->n - s0), T = j->tiles, N = ns * T;
    float *v = sc, *m = v + 16 * wino_vstride(j->cin, N), *pad = m + 16 * j->cout * N, *tmp = pad + wino_pad_floats(j);
    wino_input(j, s0, ns, v, pad);
    for (int xi = 0; xi < 16; xi++)
        fr_sgemm(j->gemm_pool, false, false, j->cout, N, j->cin, 1.0f, j->u + xi * j->cout * j->cin, j->cin,
                 v + xi * wino_vstride(j->cin, N), N, 0.0f, m + xi * j->cout * N, N);
    /* output transform, vectorised over the tiles of one (sample, channel), then scattered into the map */
    int64_t plane = j->cout * N;
    for (int64_t s = 0; s < ns; s++)
        for (int64_t o = 0; o < j->cout; o++) {
            const float *mo = m + o * N + s * T;
            float bo = j->bias ? j->bias[o] : 0.0f;
            wino_out_tiles(mo, plane, T, bo, j->relu, tmp);
            float *yo = j->y + ((s0 + s) * j->cout + o) * j->oh * j->ow;
            int64_t pairs = j->ow / 2;
            for (int64_t ty = 0; ty < j->th; ty++)
                for (int a = 0; a < 2 && 2 * ty + a < j->oh; a++) {
                    float *restrict row = yo + (2 * ty + a) * j->ow;
                    const float *restrict e0 = tmp + (2 * a) * T + ty * j->tw;
                    const float *restrict e1 = tmp + (2 * a + 1) * T + ty * j->tw;
                    for (int64_t tx = 0; tx < pairs; tx++) {
                        row[2 * tx] = e0[tx];
                        row[2 * tx + 1] = e1[tx];
                    }
                    if (j->ow & 1)
                        row[2 * pairs] = e0[pairs];
                }
        }
}

static void wino_task(void *p, int64_t grp, int thread)
{
    const struct wino_job *j = p;
    wino_group(j, grp, j->scratch + (size_t)thread * j->per_thread);
}

/* Samples per set of GEMMs: a few hundred tiles per GEMM, but the transformed tiles of the set (16 planes in and
 * 16 out) within WINO_SET_FLOATS per thread, so deep layers (many channels, few tiles) do not grow the scratch
 * beyond what the large early maps need. */
#define WINO_SET_FLOATS ((int64_t)1 << 21)
static int64_t wino_group_size(int64_t tiles, int64_t cin, int64_t cout)
{
    int64_t by_tiles = FR_MAX(1, (384 + tiles - 1) / tiles);
    return FR_MAX(1, FR_MIN(by_tiles, WINO_SET_FLOATS / (16 * (cin + cout) * tiles)));
}

/* y = conv3x3(x) with the filter already transformed into u ([16][cout][cin]); returns false out of memory */
static bool wino_run(struct fr_cpu_kctx *k, struct wino_job *j)
{
    j->th = (j->oh + 1) / 2, j->tw = (j->ow + 1) / 2, j->tiles = j->th * j->tw;
    int nt = fr_threadpool_size(k->pool);
    /* at least one group per thread */
    int64_t group = wino_group_size(j->tiles, j->cin, j->cout);
    group = FR_MIN(group, FR_MAX(1, (j->n + nt - 1) / nt));
    j->group = group;
    int64_t groups = (j->n + group - 1) / group;
    bool par = groups >= nt && nt > 1;
    j->per_thread = (wino_scratch_floats(j) + 15) / 16 * 16;
    j->scratch = fr_cpu_scratch(k, 0, j->per_thread * (size_t)(par ? nt : 1) * sizeof(float));
    if (!j->scratch)
        return false;
    if (par) {
        fr_threadpool_run(k->pool, groups, wino_task, j);
    } else {
        j->gemm_pool = k->pool;
        for (int64_t gi = 0; gi < groups; gi++)
            wino_group(j, gi, j->scratch);
    }
    return true;
}

/* Weight gradient through the same transforms: with M = U ⊙ V per tile, dM = A·dY·Aᵀ, dU_ξ = Σ_tiles dM_ξ·V_ξᵀ
 * (one GEMM per ξ with the tiles as depth) and dW = Gᵀ·dU·G. The threads split the output channels: each
 * transforms the input tiles itself (cheap next to the GEMMs) and owns its rows of dU, summed over the samples in
 * a fixed order, so there are no partial dU copies and the result does not depend on the thread count. */
struct winow_job {
    struct wino_job in; /* x, cin, h, w, pads, cout (= O), oh, ow, tiles, group */
    const float *gy;
    float *du, *scratch;
    int64_t ochunk;
    size_t per_thread;
    struct fr_threadpool *gemm_pool;
};

/* A·g·Aᵀ of the tw 2x2 tiles in rows g0, g1: rows of A·g are g0, g0 + g1, g0 − g1, −g1, then each row
 * [a, b] -> [a, a + b, a − b, −b]; tile tx's 16 values go to d[ξ·plane + tx] */
__attribute__((noinline)) FR_CONV_CLONES static void wino_gy_row(const float *restrict g0, const float *restrict g1, int64_t tw,
                                                  float *restrict d, int64_t plane)
{
#define D(q) d[(q) * plane + tx]
#pragma GCC ivdep /* the 16 output planes are `plane` apart and never overlap */
    for (int64_t tx = 0; tx < tw; tx++) {
        float a0 = g0[2 * tx], a1 = g0[2 * tx + 1], b0 = g1[2 * tx], b1 = g1[2 * tx + 1];
        float r0[2] = {a0, a1}, r1[2] = {a0 + b0, a1 + b1}, r2[2] = {a0 - b0, a1 - b1}, r3[2] = {-b0, -b1};
        D(0) = r0[0], D(1) = r0[0] + r0[1], D(2) = r0[0] - r0[1], D(3) = -r0[1];
        D(4) = r1[0], D(5) = r1[0] + r1[1], D(6) = r1[0] - r1[1], D(7) = -r1[1];
        D(8) = r2[0], D(9) = r2[0] + r2[1], D(10) = r2[0] - r2[1], D(11) = -r2[1];
        D(12) = r3[0], D(13) = r3[0] + r3[1], D(14) = r3[0] - r3[1], D(15) = -r3[1];
    }
#undef D
}

/* dM[ξ][o - o0][s·T + t] = A·g·Aᵀ of the 2x2 output-gradient tiles of channels o0 .. o1-1, from a copy of each
 * map padded with zeros to whole tiles */
static void wino_gy(const struct winow_job *wj, int64_t s0, int64_t ns, int64_t o0, int64_t o1, float *dm, float *pad)
{
    const struct wino_job *j = &wj->in;
    int64_t T = j->tiles, N = ns * T, plane = (o1 - o0) * N, pw = 2 * j->tw;
    for (int64_t s = 0; s < ns; s++)
        for (int64_t o = o0; o < o1; o++) {
            const float *g = wj->gy + ((s0 + s) * j->cout + o) * j->oh * j->ow;
            for (int64_t r = 0; r < 2 * j->th; r++) {
                float *pr = pad + r * pw;
                if (r < j->oh)
                    copy_row(pr, g + r * j->ow, j->ow);
                for (int64_t q = r < j->oh ? j->ow : 0; q < pw; q++)
                    pr[q] = 0.0f;
            }
            float *d = dm + (o - o0) * N + s * T;
            for (int64_t ty = 0; ty < j->th; ty++)
                wino_gy_row(pad + 2 * ty * pw, pad + (2 * ty + 1) * pw, j->tw, d + ty * j->tw, plane);
        }
}

static void winow_task(void *p, int64_t task, int thread)
{
    const struct winow_job *wj = p;
    const struct wino_job *j = &wj->in;
    int64_t o0 = task * wj->ochunk, o1 = FR_MIN(j->cout, o0 + wj->ochunk), no = o1 - o0;
    float *sc = wj->scratch + (size_t)thread * wj->per_thread;
    for (int64_t s0 = 0; s0 < j->n; s0 += j->group) {
        int64_t ns = FR_MIN(j->group, j->n - s0), N = ns * j->tiles;
        float *v = sc, *dm = v + 16 * wino_vstride(j->cin, N), *pad = dm + 16 * no * N;
        wino_input(j, s0, ns, v, pad);
        wino_gy(wj, s0, ns, o0, o1, dm, pad);
        float beta = s0 == 0 ? 0.0f : 1.0f;
        for (int xi = 0; xi < 16; xi++)
            fr_sgemm(wj->gemm_pool, false, true, no, j->cin, N, 1.0f, dm + xi * no * N, N,
                     v + xi * wino_vstride(j->cin, N), N, beta, wj->du + (xi * j->cout + o0) * j->cin, j->cin);
    }
}

static enum fr_status wino_bwd_weight(struct fr_cpu_kctx *k, const struct conv_geom *g, const float *x,
                                      const float *gy, float *dw, const char *name)
{
    struct winow_job wj = {.in = {.x = x, .n = g->n, .cin = g->c, .h = g->h, .w = g->w, .cout = g->o, .oh = g->oh,
                                  .ow = g->ow, .ph = g->ph, .pw = g->pw},
                           .gy = gy};
    struct wino_job *j = &wj.in;
    j->th = (j->oh + 1) / 2, j->tw = (j->ow + 1) / 2, j->tiles = j->th * j->tw;
    int nt = fr_threadpool_size(k->pool);
    int64_t tasks = nt > 1 && g->o >= 16 * nt ? nt : 1;
    wj.ochunk = (g->o + tasks - 1) / tasks;
    wj.ochunk = (wj.ochunk + 7) / 8 * 8;
    tasks = (g->o + wj.ochunk - 1) / wj.ochunk;
    j->group = FR_MIN(g->n, wino_group_size(j->tiles, j->cin, j->cout));
    wj.per_thread = ((size_t)(16 * wino_vstride(j->cin, j->group * j->tiles) + 16 * wj.ochunk * j->group * j->tiles +
                              wino_pad_floats(j)) + 31) /
                    16 * 16;
    wj.scratch = fr_cpu_scratch(k, 0, wj.per_thread * (size_t)(tasks > 1 ? nt : 1) * sizeof(float));
    wj.du = fr_cpu_scratch(k, 1, (size_t)(16 * g->o * g->c) * sizeof(float));
    if (!wj.scratch || !wj.du)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d_bwd_weight '%s': no memory for the Winograd tiles", name);
    if (tasks > 1) {
        fr_threadpool_run(k->pool, tasks, winow_task, &wj);
    } else {
        wj.gemm_pool = k->pool;
        winow_task(&wj, 0, 0);
    }
    /* dW = Gᵀ·dU·G with Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]] */
    for (int64_t o = 0; o < g->o; o++)
        for (int64_t c = 0; c < g->c; c++) {
            float u[16], t[3][4];
            for (int xi = 0; xi < 16; xi++)
                u[xi] = wj.du[(size_t)((xi * g->o + o) * g->c + c)];
            for (int q = 0; q < 4; q++) {
                t[0][q] = u[q] + 0.5f * (u[4 + q] + u[8 + q]);
                t[1][q] = 0.5f * (u[4 + q] - u[8 + q]);
                t[2][q] = 0.5f * (u[4 + q] + u[8 + q]) + u[12 + q];
            }
            float *d = dw + (o * g->c + c) * 9;
            for (int i = 0; i < 3; i++) {
                d[i * 3 + 0] = t[i][0] + 0.5f * (t[i][1] + t[i][2]);
                d[i * 3 + 1] = 0.5f * (t[i][1] - t[i][2]);
                d[i * 3 + 2] = 0.5f * (t[i][1] + t[i][2]) + t[i][3];
            }
        }
    return FR_STATUS_OK;
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
    if (wino_fits(&j.g)) {
        const struct conv_geom *g = &j.g;
        float *u = fr_cpu_scratch(k, 1, (size_t)(16 * g->o * g->c) * sizeof(float));
        struct wino_job wj = {.x = j.x, .u = u, .bias = j.b, .y = j.y, .n = g->n, .cin = g->c, .h = g->h,
                              .w = g->w, .cout = g->o, .oh = g->oh, .ow = g->ow, .ph = g->ph, .pw = g->pw,
                              .relu = j.relu};
        if (!u)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d '%s': no memory for the transformed filter", dst->name);
        wino_filter(j.w, g->o, g->c, false, u);
        if (!wino_run(k, &wj))
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
    if (wino_fits(&j.g)) {
        /* dx = gy convolved with the rotated, transposed filter, padded by 2 - p: a forward 3x3 stride-1 conv */
        const struct conv_geom *g = &j.g;
        float *u = fr_cpu_scratch(k, 1, (size_t)(16 * g->o * g->c) * sizeof(float));
        struct wino_job wj = {.x = j.gy, .u = u, .y = j.dx, .n = g->n, .cin = g->o, .h = g->oh, .w = g->ow,
                              .cout = g->c, .oh = g->h, .ow = g->w, .ph = 2 - g->ph, .pw = 2 - g->pw};
        if (!u)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "conv2d_bwd_input '%s': no memory for the transformed filter",
                            dst->name);
        wino_filter(j.w, g->o, g->c, true, u);
        if (!wino_run(k, &wj))
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
    if (wino_fits(&j.g))
        return wino_bwd_weight(k, &j.g, j.x, j.gy, j.dw, dst->name);
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
