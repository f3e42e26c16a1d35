/* CPU Winograd F(2x2, 3x3) convolutions: forward, input gradient (a forward of gy with flipped filters) and weight
 * gradient of 3x3 stride-1 conv2d nodes with >= 8 channels in and out (called from conv.c). */
#include "cpu/conv_internal.h"
#include "cpu/gemm.h"

#include <stdlib.h>

/* ---- Winograd F(2x2, 3x3): 3x3 stride-1 convolutions (model s's conv2 and its input gradient) ----
 * Each 4x4 input tile d becomes V = Bᵀ·d·B, each 3x3 filter U = G·g·Gᵀ; the 16 positions ξ of the transformed
 * tiles are 16 independent GEMMs M_ξ = U_ξ·V_ξ ([cout x cin]·[cin x tiles]), and Aᵀ·M·A gives a 2x2 output
 * tile: 2.25x fewer multiplies than im2col + GEMM and no 9x column buffer. Several samples share one set of
 * GEMMs so the tile count (GEMM width) stays near a few hundred; groups of samples run on the threads. */

/* small channel counts make the 16 GEMMs too thin to pay for the transforms */
bool fr_cpu_wino_fits(const struct conv_geom *g)
{
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->groups == 1 &&
           g->ph <= 2 && g->pw <= 2 && g->c >= 8 && g->o >= 8 && !getenv("FRUGAL_CONV_NO_WINOGRAD");
}

/* U[ξ][a][b] = G·g·Gᵀ of filter g = w[a][b] (forward: a = output channel o, b = input channel c), or, for the
 * input gradient (flip), of the 180°-rotated w[b][a] so that dx is a forward convolution of gy. */
void fr_cpu_wino_filter(const float *w, int64_t o_ch, int64_t c_ch, bool flip, float *u)
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
bool fr_cpu_wino_run(struct fr_cpu_kctx *k, struct wino_job *j)
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

enum fr_status fr_cpu_wino_bwd_weight(struct fr_cpu_kctx *k, const struct conv_geom *g, const float *x,
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
