/* Forward values of the layer ops (conv2d, pools, activations, batch-norm, dropout, drop-path) against naive
 * loops and hand-computed numbers, on the CPU path; bad shapes give NULL and a clear error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/device.h"
#include "frugal/nn.h"
#include "frugal/rng_host.h"
#include "testutil.h"

static struct fr_backend *cpu2; /* two threads: the per-sample parallel paths run */
static struct fr_backend *cpu1;
static struct fr_backend *cl; /* the first usable OpenCL device, or NULL */

static int setup(void **state)
{
    (void)state;
    cpu1 = fr_backend_cpu_new(1);
    cpu2 = fr_backend_cpu_new(2);
    struct fr_device_info *d = NULL;
    int n = 0;
    if (fr_opencl_list_devices(&d, &n) == FR_STATUS_OK)
        for (int i = 0; i < n && !cl; i++)
            if (d[i].usable && fr_backend_open(d[i].spec, &cl) != FR_STATUS_OK)
                cl = NULL;
    fr_opencl_free_devices(d);
    return cpu1 && cpu2 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fr_backend_free(cpu1);
    fr_backend_free(cpu2);
    fr_backend_free(cl);
    return 0;
}

/* plans `out` in a graph of its own, sets the inputs, runs once in the given mode */
static struct fr_graph *run_graph(struct fr_ctx *ctx, struct fr_backend *be, struct fr_tensor *out, bool training,
                                  uint64_t seed, uint32_t step, struct fr_tensor **in, const float **data, int n_in)
{
    assert_non_null(out);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, out), FR_STATUS_OK);
    fr_graph_set_guard(g, true);
    if (fr_graph_plan(g, be) != FR_STATUS_OK)
        fail_msg("plan: %s", fr_last_error());
    for (int i = 0; i < n_in; i++)
        assert_int_equal(fr_tensor_set(in[i], data[i], fr_nbytes(in[i])), FR_STATUS_OK);
    fr_graph_set_training(g, training);
    fr_graph_set_seed(g, seed);
    fr_graph_set_step(g, step);
    if (fr_graph_compute(g) != FR_STATUS_OK)
        fail_msg("compute: %s", fr_last_error());
    return g;
}

/* ---- conv2d vs a direct loop ---- */

struct conv_case {
    int64_t n, c, h, w, o, kh, kw;
    struct fr_conv2d_params p;
    bool bias;
};

static void naive_conv(const struct conv_case *cc, const float *x, const float *w, const float *b, float *y,
                       int64_t oh, int64_t ow)
{
    int sh = cc->p.stride_h ? cc->p.stride_h : 1, sw = cc->p.stride_w ? cc->p.stride_w : 1;
    int dh = cc->p.dil_h ? cc->p.dil_h : 1, dw = cc->p.dil_w ? cc->p.dil_w : 1;
    int groups = cc->p.groups ? cc->p.groups : 1;
    int64_t cg = cc->c / groups, og = cc->o / groups;
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t o = 0; o < cc->o; o++)
            for (int64_t y0 = 0; y0 < oh; y0++)
                for (int64_t x0 = 0; x0 < ow; x0++) {
                    double s = b ? b[o] : 0.0;
                    int64_t gi = o / og;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t i = 0; i < cc->kh; i++)
                            for (int64_t j = 0; j < cc->kw; j++) {
                                int64_t iy = y0 * sh - cc->p.pad_h + i * dh, ix = x0 * sw - cc->p.pad_w + j * dw;
                                if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w)
                                    continue;
                                s += (double)x[((n * cc->c + gi * cg + c) * cc->h + iy) * cc->w + ix] *
                                     w[((o * cg + c) * cc->kh + i) * cc->kw + j];
                            }
                    if (cc->p.relu && s < 0)
                        s = 0;
                    y[((n * cc->o + o) * oh + y0) * ow + x0] = (float)s;
                }
}

static void check_conv(const struct conv_case *cc, struct fr_backend *be)
{
    struct fr_ctx *ctx = fr_ctx_new();
    int groups = cc->p.groups ? cc->p.groups : 1;
    struct fr_tensor *x = tu_tensor_f32(ctx, 4, (int64_t[]){cc->n, cc->c, cc->h, cc->w});
    struct fr_tensor *w = tu_tensor_f32(ctx, 4, (int64_t[]){cc->o, cc->c / groups, cc->kh, cc->kw});
    struct fr_tensor *b = cc->bias ? tu_tensor_f32(ctx, 1, (int64_t[]){cc->o}) : NULL;
    struct fr_tensor *y = fr_conv2d_ex(ctx, x, w, b, &cc->p);
    if (!y)
        fail_msg("conv2d: %s", fr_last_error());
    size_t nx = (size_t)fr_nelements(x), nw = (size_t)fr_nelements(w), ny = (size_t)fr_nelements(y);
    float *xd = malloc(nx * 4), *wd = malloc(nw * 4), bd[64], *got = malloc(ny * 4), *want = malloc(ny * 4);
    tu_fill_uniform(xd, nx, 1, -1, 1);
    tu_fill_uniform(wd, nw, 2, -1, 1);
    tu_fill_uniform(bd, 64, 3, -1, 1);
    naive_conv(cc, xd, wd, cc->bias ? bd : NULL, want, y->ne[2], y->ne[3]);
    struct fr_tensor *in[] = {x, w, b};
    const float *data[] = {xd, wd, bd};
    struct fr_graph *g = run_graph(ctx, be, y, false, 0, 0, in, data, cc->bias ? 3 : 2);
    assert_int_equal(fr_tensor_get(y, got, ny * 4), FR_STATUS_OK);
    tu_assert_close(got, want, ny, 1e-4f, 1e-4f);
    fr_graph_free(g);
    fr_ctx_free(ctx);
    free(xd);
    free(wd);
    free(got);
    free(want);
}

static void test_conv2d_vs_naive(void **state)
{
    (void)state;
    const struct conv_case cases[] = {
        /* stride 2, padding, dilation 2, groups 2, odd sizes, non-square kernel */
        {3, 4, 9, 7, 6, 3, 2, {.stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 2, .dil_h = 2, .dil_w = 1, .groups = 2}, true},
        {2, 3, 8, 11, 5, 2, 3, {.stride_h = 1, .stride_w = 2, .pad_h = 0, .pad_w = 1, .dil_h = 1, .dil_w = 2}, false},
        {5, 2, 7, 7, 4, 3, 3, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .relu = true}, true},
        {4, 6, 5, 5, 4, 1, 1, {.groups = 2}, true},                     /* 1x1: the input is the column matrix */
        {1, 3, 6, 5, 2, 3, 3, {.pad_h = 1, .pad_w = 1, .relu = true}, true}, /* one sample: threaded GEMM */
        {8, 1, 12, 12, 4, 3, 3, {.pad_h = 1, .pad_w = 1}, true},       /* model s conv1 shape, small */
        {2, 4, 6, 6, 8, 3, 3, {.groups = 4, .pad_h = 1, .pad_w = 1}, false}, /* depthwise-like */
        /* depthwise (one channel per group): the direct path; stride 2, dilation, 5x5, fused ReLU */
        {3, 6, 9, 8, 6, 3, 3, {.groups = 6, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .relu = true}, true},
        {2, 5, 11, 13, 5, 5, 5, {.groups = 5, .pad_h = 2, .pad_w = 2}, false},
        {2, 4, 9, 9, 4, 3, 3, {.groups = 4, .pad_h = 2, .pad_w = 2, .dil_h = 2, .dil_w = 2, .stride_w = 2}, true},
        /* >= 8 channels in and out, 3x3 stride 1: the Winograd F(2x2, 3x3) path; odd maps, pads 0..2 */
        {3, 8, 7, 6, 8, 3, 3, {.pad_h = 1, .pad_w = 1, .relu = true}, true},
        {2, 9, 8, 9, 10, 3, 3, {0}, false},
        {2, 8, 5, 6, 12, 3, 3, {.pad_h = 2, .pad_w = 1}, true},
        /* >= 32 outputs: on 2 threads the weight gradient splits the output channels (24 + 16) */
        {3, 16, 6, 7, 40, 3, 3, {.pad_h = 1, .pad_w = 1}, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        check_conv(&cases[i], cpu1);
        check_conv(&cases[i], cpu2);
    }
}

static void test_conv2d_bad_shapes(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 4, (int64_t[]){2, 3, 8, 8});
    struct fr_tensor *w = tu_tensor_f32(ctx, 4, (int64_t[]){4, 2, 3, 3});
    fr_tensor_set_name(w, "conv1.weight");
    assert_null(fr_conv2d(ctx, x, w, NULL, 1, 0));
    assert_int_equal(fr_ctx_status(ctx), FR_STATUS_SHAPE);
    assert_non_null(strstr(fr_last_error(), "conv1.weight"));
    struct fr_tensor *w3 = tu_tensor_f32(ctx, 4, (int64_t[]){4, 3, 3, 3});
    struct fr_tensor *b = tu_tensor_f32(ctx, 1, (int64_t[]){5});
    assert_null(fr_conv2d(ctx, x, w3, b, 1, 0));
    assert_non_null(strstr(fr_last_error(), "bias"));
    struct fr_tensor *w9 = tu_tensor_f32(ctx, 4, (int64_t[]){4, 3, 9, 9});
    assert_null(fr_conv2d(ctx, x, w9, NULL, 1, 0)); /* kernel larger than the input */
    assert_non_null(strstr(fr_last_error(), "larger"));
    assert_null(fr_conv2d_ex(ctx, x, w3, NULL, &(struct fr_conv2d_params){.groups = 2}));
    struct fr_tensor *x3 = tu_tensor_f32(ctx, 3, (int64_t[]){3, 8, 8});
    assert_null(fr_conv2d(ctx, x3, w3, NULL, 1, 0));
    assert_non_null(strstr(fr_last_error(), "4-D"));
    assert_null(fr_conv2d(ctx, NULL, w3, NULL, 1, 0)); /* an earlier failure propagates */
    fr_ctx_free(ctx);
}

/* ---- pools ---- */

static void test_pools_hand(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 4, (int64_t[]){1, 1, 4, 4});
    const float xd[16] = {1, 5, 2, 0, /**/ 3, -1, 7, 8, /**/ -4, -2, 6, 6, /**/ 0, -3, 1, 9};
    struct fr_tensor *mx = fr_maxpool2d(ctx, x, 2, 2, 0), *av = fr_avgpool2d(ctx, x, 2, 0, 0);
    struct fr_tensor *mp = fr_maxpool2d(ctx, x, 3, 2, 1), *ap = fr_avgpool2d(ctx, x, 3, 2, 1);
    struct fr_tensor *gp = fr_global_avgpool2d(ctx, x);
    struct fr_tensor *in[] = {x};
    const float *data[] = {xd};
    struct fr_tensor *outs[] = {mx, av, mp, ap, gp};
    struct fr_graph *g = fr_graph_new(ctx);
    for (int i = 0; i < 5; i++) {
        assert_non_null(outs[i]);
        assert_int_equal(fr_graph_add(g, outs[i]), FR_STATUS_OK);
    }
    assert_int_equal(fr_graph_plan(g, cpu2), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(in[0], data[0], sizeof xd), FR_STATUS_OK);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    float r[4];
    const float want_mx[4] = {5, 8, 0, 9}, want_av[4] = {2, 17.0f / 4, -9.0f / 4, 22.0f / 4};
    /* 3x3 windows at stride 2 with padding 1 cover rows/cols {-1..1} and {1..3} */
    const float want_mp[4] = {5, 8, 3, 9};
    const float want_ap[4] = {(1 + 5 + 3 - 1) / 9.0f, (5 + 2 + 0 - 1 + 7 + 8) / 9.0f,
                              (3 - 1 - 4 - 2 + 0 - 3) / 9.0f, (-1 + 7 + 8 - 2 + 6 + 6 - 3 + 1 + 9) / 9.0f};
    assert_int_equal(fr_tensor_get(mx, r, sizeof r), FR_STATUS_OK);
    tu_assert_close(r, want_mx, 4, 0, 0);
    assert_int_equal(fr_tensor_get(av, r, sizeof r), FR_STATUS_OK);
    tu_assert_close(r, want_av, 4, 1e-6f, 1e-6f);
    assert_int_equal(fr_tensor_get(mp, r, sizeof r), FR_STATUS_OK);
    tu_assert_close(r, want_mp, 4, 0, 0);
    assert_int_equal(fr_tensor_get(ap, r, sizeof r), FR_STATUS_OK);
    tu_assert_close(r, want_ap, 4, 1e-6f, 1e-6f);
    float gm;
    assert_int_equal(fr_tensor_get(gp, &gm, sizeof gm), FR_STATUS_OK);
    assert_int_equal(gp->ndim, 4);
    assert_true(gp->ne[2] == 1 && gp->ne[3] == 1);
    assert_float_equal(gm, 38.0f / 16, 1e-6);
    fr_graph_free(g);

    /* bad arguments */
    assert_null(fr_maxpool2d(ctx, x, 2, 2, 2));
    assert_non_null(strstr(fr_last_error(), "padding"));
    assert_null(fr_avgpool2d(ctx, x, 5, 1, 0));
    assert_non_null(strstr(fr_last_error(), "larger than padded input"));
    struct fr_tensor *x2 = tu_tensor_f32(ctx, 2, (int64_t[]){4, 4});
    assert_null(fr_maxpool2d(ctx, x2, 2, 2, 0));
    assert_non_null(strstr(fr_last_error(), "[N,C,H,W]"));
    fr_ctx_free(ctx);
}

/* A NaN in a 2x2 window wins the max (it propagates) and takes the window's gradient; the other windows
 * of the plane keep theirs (the fast backward path hands NaN planes to the generic one). */
static void test_maxpool_nan(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    /* four windows per row (the vector path); channel 0 has a NaN, channel 1 only ties */
    struct fr_tensor *x = fr_tensor_new_4d(ctx, FR_F32, 1, 2, 2, 8);
    fr_tensor_set_flags(x, FR_FLAG_PARAM);
    struct fr_tensor *y = fr_maxpool2d(ctx, x, 2, 2, 0);
    int64_t n = 8;
    struct fr_tensor *loss = fr_sum(ctx, fr_reshape(ctx, y, 1, &n), 0);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    assert_int_equal(fr_graph_backward(g, loss), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, cpu1), FR_STATUS_OK);
    const float xd[32] = {1, 5, 2, 9, 0, 0, 3, 1, /**/ NAN, 3, 4, 9, -1, -2, 3, 0,
                          1, 5, 2, 9, 0, 0, 3, 1, /**/ 5, 3, 4, 9, -1, -2, 3, 0};
    assert_int_equal(fr_tensor_set(x, xd, sizeof xd), FR_STATUS_OK);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    float yv[8], gx[32];
    assert_int_equal(fr_tensor_get(y, yv, sizeof yv), FR_STATUS_OK);
    assert_true(isnan(yv[0]));
    tu_assert_close(yv + 1, (float[]){9, 0, 3, 5, 9, 0, 3}, 7, 0, 0);
    assert_int_equal(fr_tensor_get(x->grad, gx, sizeof gx), FR_STATUS_OK);
    /* ties (5, 5), (9, 9), (0, 0), (3, 3): the first one in window order */
    const float want[32] = {0, 0, 0, 1, 1, 0, 1, 0, /**/ 1, 0, 0, 0, 0, 0, 0, 0,
                            0, 1, 0, 1, 1, 0, 1, 0, /**/ 0, 0, 0, 0, 0, 0, 0, 0};
    tu_assert_close(gx, want, 32, 0, 0);
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

/* ---- activations ---- */

static void test_activations(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    enum { N = 13 };
    struct fr_tensor *x = tu_tensor_f32(ctx, 2, (int64_t[]){1, N});
    const float xd[N] = {-30, -5, -2, -1, -0.5f, -1e-3f, 0, 1e-3f, 0.5f, 1, 2, 5, 30};
    struct fr_tensor *outs[] = {fr_leaky_relu(ctx, x, 0.1f), fr_gelu(ctx, x), fr_sigmoid(ctx, x), fr_tanh(ctx, x)};
    struct fr_graph *g = fr_graph_new(ctx);
    for (int i = 0; i < 4; i++)
        assert_int_equal(fr_graph_add(g, outs[i]), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, cpu1), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(x, xd, sizeof xd), FR_STATUS_OK);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    float got[N], want[4][N];
    for (int i = 0; i < N; i++) {
        double v = xd[i];
        want[0][i] = (float)(v > 0 ? v : 0.1 * v);
        want[1][i] = (float)(0.5 * v * (1 + erf(v / sqrt(2.0))));
        want[2][i] = (float)(1 / (1 + exp(-v)));
        want[3][i] = (float)tanh(v);
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(fr_tensor_get(outs[k], got, sizeof got), FR_STATUS_OK);
        tu_assert_close(got, want[k], N, 1e-7f, 1e-5f);
    }
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

/* ---- batch-norm: x [2, 2, 1, 2], channel 0 = {1, 3, 5, 7}, channel 1 = {2, 2, 4, 4} ---- */

static void test_batchnorm_train_eval(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 4, (int64_t[]){2, 2, 1, 2});
    struct fr_tensor *w = tu_tensor_f32(ctx, 1, (int64_t[]){2}), *b = tu_tensor_f32(ctx, 1, (int64_t[]){2});
    struct fr_tensor *rm = fr_tensor_new_1d(ctx, FR_F32, 2), *rv = fr_tensor_new_1d(ctx, FR_F32, 2);
    fr_tensor_set_name(rm, "bn1.running_mean");
    fr_tensor_set_name(rv, "bn1.running_var");
    struct fr_tensor *y = fr_batchnorm(ctx, x, w, b, rm, rv, 1e-5f, 0.1f);
    assert_non_null(y);
    assert_true(rm->flags & FR_FLAG_STATE);
    const float xd[8] = {1, 3, 2, 2, /**/ 5, 7, 4, 4}, wd[2] = {2, 0.5f}, bd[2] = {1, -1};
    struct fr_tensor *in[] = {x, w, b};
    const float *data[] = {xd, wd, bd};
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, cpu2), FR_STATUS_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fr_tensor_set(in[i], data[i], fr_nbytes(in[i])), FR_STATUS_OK);
    const float rm0[2] = {0, 0}, rv0[2] = {1, 1};
    assert_int_equal(fr_tensor_set(rm, rm0, sizeof rm0), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(rv, rv0, sizeof rv0), FR_STATUS_OK);
    fr_graph_set_training(g, true);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    /* channel 0: mean 4, biased var 5, unbiased 20/3; channel 1: mean 3, var 1, unbiased 4/3 */
    float got[8], want[8], r[2];
    const float ch[2][4] = {{1, 3, 5, 7}, {2, 2, 4, 4}}, mean[2] = {4, 3}, var[2] = {5, 1};
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
            for (int e = 0; e < 2; e++)
                want[(n * 2 + c) * 2 + e] =
                    (float)((ch[c][n * 2 + e] - mean[c]) / sqrt(var[c] + 1e-5) * wd[c] + bd[c]);
    assert_int_equal(fr_tensor_get(y, got, sizeof got), FR_STATUS_OK);
    tu_assert_close(got, want, 8, 1e-5f, 1e-5f);
    assert_int_equal(fr_tensor_get(rm, r, sizeof r), FR_STATUS_OK);
    tu_assert_close(r, (float[]){0.4f, 0.3f}, 2, 1e-6f, 1e-6f);
    assert_int_equal(fr_tensor_get(rv, r, sizeof r), FR_STATUS_OK);
    tu_assert_close(r, (float[]){0.9f + 0.1f * 20.0f / 3.0f, 0.9f + 0.1f * 4.0f / 3.0f}, 2, 1e-6f, 1e-6f);

    /* eval: running statistics, and they stay unchanged */
    fr_graph_set_training(g, false);
    const float rm1[2] = {1, -2}, rv1[2] = {4, 0.25f};
    assert_int_equal(fr_tensor_set(rm, rm1, sizeof rm1), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(rv, rv1, sizeof rv1), FR_STATUS_OK);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
            for (int e = 0; e < 2; e++)
                want[(n * 2 + c) * 2 + e] = (float)((ch[c][n * 2 + e] - rm1[c]) / sqrt(rv1[c] + 1e-5) * wd[c] + bd[c]);
    assert_int_equal(fr_tensor_get(y, got, sizeof got), FR_STATUS_OK);
    tu_assert_close(got, want, 8, 1e-5f, 1e-5f);
    assert_int_equal(fr_tensor_get(rv, r, sizeof r), FR_STATUS_OK);
    tu_assert_close(r, rv1, 2, 0, 0);

    /* a frozen layer (transfer learning) in a training run: running statistics, and they stay unchanged */
    w->flags |= FR_FLAG_FROZEN;
    fr_graph_set_training(g, true);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(y, got, sizeof got), FR_STATUS_OK);
    tu_assert_close(got, want, 8, 1e-5f, 1e-5f);
    assert_int_equal(fr_tensor_get(rm, r, sizeof r), FR_STATUS_OK);
    tu_assert_close(r, rm1, 2, 0, 0);
    w->flags &= ~FR_FLAG_FROZEN;
    fr_graph_free(g);

    if (cl) { /* the same training step on OpenCL: output and running statistics */
        struct fr_graph *gc = fr_graph_new(ctx);
        assert_int_equal(fr_graph_add(gc, y), FR_STATUS_OK);
        assert_int_equal(fr_graph_plan(gc, cl), FR_STATUS_OK);
        for (int i = 0; i < 3; i++)
            assert_int_equal(fr_tensor_set(in[i], data[i], fr_nbytes(in[i])), FR_STATUS_OK);
        assert_int_equal(fr_tensor_set(rm, rm0, sizeof rm0), FR_STATUS_OK);
        assert_int_equal(fr_tensor_set(rv, rv0, sizeof rv0), FR_STATUS_OK);
        fr_graph_set_training(gc, true);
        assert_int_equal(fr_graph_compute(gc), FR_STATUS_OK);
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 2; c++)
                for (int e = 0; e < 2; e++)
                    want[(n * 2 + c) * 2 + e] =
                        (float)((ch[c][n * 2 + e] - mean[c]) / sqrt(var[c] + 1e-5) * wd[c] + bd[c]);
        assert_int_equal(fr_tensor_get(y, got, sizeof got), FR_STATUS_OK);
        tu_assert_close(got, want, 8, 1e-5f, 1e-5f);
        assert_int_equal(fr_tensor_get(rm, r, sizeof r), FR_STATUS_OK);
        tu_assert_close(r, (float[]){0.4f, 0.3f}, 2, 1e-6f, 1e-6f);
        assert_int_equal(fr_tensor_get(rv, r, sizeof r), FR_STATUS_OK);
        tu_assert_close(r, (float[]){0.9f + 0.1f * 20.0f / 3.0f, 0.9f + 0.1f * 4.0f / 3.0f}, 2, 1e-6f, 1e-6f);
        fr_graph_free(gc);
    }

    /* 1d form [N, C] */
    struct fr_tensor *x1 = tu_tensor_f32(ctx, 2, (int64_t[]){3, 2});
    assert_non_null(fr_batchnorm(ctx, x1, w, b, rm, rv, 1e-5f, 0.1f));
    /* bad shapes */
    struct fr_tensor *w3 = tu_tensor_f32(ctx, 1, (int64_t[]){3});
    fr_tensor_set_name(w3, "bn2.weight");
    assert_null(fr_batchnorm(ctx, x, w3, b, rm, rv, 1e-5f, 0.1f));
    assert_non_null(strstr(fr_last_error(), "bn2.weight"));
    struct fr_tensor *one = tu_tensor_f32(ctx, 2, (int64_t[]){1, 2});
    assert_null(fr_batchnorm(ctx, one, w, b, rm, rv, 1e-5f, 0.1f));
    assert_null(fr_batchnorm(ctx, x, w, b, fr_scale(ctx, rm, 1.0f), rv, 1e-5f, 0.1f));
    assert_non_null(strstr(fr_last_error(), "leaf"));
    fr_ctx_free(ctx);
}

/* ---- dropout ---- */

static void dropout_run(struct fr_backend *be, int64_t n, float p, bool training, uint64_t seed, uint32_t step,
                        uint32_t salt, const float *xd, float *out)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 2, (int64_t[]){n / 10, 10});
    struct fr_tensor *y = fr_dropout_salted(ctx, x, p, salt);
    struct fr_graph *g = run_graph(ctx, be, y, training, seed, step, &x, &xd, 1);
    assert_int_equal(fr_tensor_get(y, out, (size_t)n * 4), FR_STATUS_OK);
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

static void test_dropout(void **state)
{
    (void)state;
    enum { N = 100000 };
    float *xd = malloc(N * 4), *a = malloc(N * 4), *b = malloc(N * 4), *c = malloc(N * 4);
    tu_fill_uniform(xd, N, 9, 0.5f, 1.5f); /* no zeros: a zero output means dropped */
    const float p = 0.3f;
    dropout_run(cpu1, N, p, true, 42, 7, 5, xd, a);
    dropout_run(cpu2, N, p, true, 42, 7, 5, xd, b); /* same seed/step/salt, other thread count */
    tu_assert_bytes_equal(a, b, N * 4);
    int64_t dropped = 0, differ = 0;
    for (int i = 0; i < N; i++) {
        bool keep = fr_rng_uniform(42, FR_RNG_DROPOUT, 7, 5, (uint32_t)i) >= p; /* the documented stream */
        if (keep)
            assert_float_equal(a[i], xd[i] / (1 - p), 1e-6 * xd[i]);
        else
            assert_true(a[i] == 0.0f);
        dropped += !keep;
    }
    assert_true(fabs((double)dropped / N - p) < 0.01);
    if (cl) { /* the OpenCL kernel draws the same units */
        dropout_run(cl, N, p, true, 42, 7, 5, xd, b);
        tu_assert_bytes_equal(a, b, N * 4);
    }
    dropout_run(cpu2, N, p, true, 42, 8, 5, xd, b); /* another step */
    for (int i = 0; i < N; i++)
        differ += (a[i] == 0.0f) != (b[i] == 0.0f);
    assert_true(differ > N / 10);
    dropout_run(cpu2, N, p, true, 42, 7, 6, xd, b); /* another layer (salt) */
    differ = 0;
    for (int i = 0; i < N; i++)
        differ += (a[i] == 0.0f) != (b[i] == 0.0f);
    assert_true(differ > N / 10);
    dropout_run(cpu2, N, p, false, 42, 7, 5, xd, c); /* eval: identity */
    tu_assert_bytes_equal(c, xd, N * 4);

    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 1, (int64_t[]){4});
    assert_null(fr_dropout(ctx, x, 1.0f));
    assert_non_null(strstr(fr_last_error(), "probability"));
    assert_null(fr_dropout(ctx, x, -0.1f));
    /* two layers built without a salt differ */
    struct fr_tensor *d1 = fr_dropout(ctx, x, 0.5f), *d2 = fr_dropout(ctx, x, 0.5f);
    assert_int_not_equal(d1->params[1].i, d2->params[1].i);
    fr_ctx_free(ctx);
    free(xd);
    free(a);
    free(b);
    free(c);
}

static void test_drop_path(void **state)
{
    (void)state;
    enum { NS = 400, INNER = 6 };
    float *xd = malloc(NS * INNER * 4), *y = malloc(NS * INNER * 4);
    tu_fill_uniform(xd, NS * INNER, 11, 0.5f, 1.5f);
    const float s = 0.8f;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 4, (int64_t[]){NS, 1, 2, 3});
    struct fr_tensor *t = fr_drop_path_salted(ctx, x, s, 3);
    struct fr_graph *g = run_graph(ctx, cpu2, t, true, 99, 1, &x, (const float *[]){xd}, 1);
    assert_int_equal(fr_tensor_get(t, y, NS * INNER * 4), FR_STATUS_OK);
    int kept = 0;
    for (int n = 0; n < NS; n++) {
        bool keep = fr_rng_uniform(99, FR_RNG_DROPPATH, 1, 3, (uint32_t)n) < s;
        for (int i = 0; i < INNER; i++) {
            float v = y[n * INNER + i];
            if (keep)
                assert_float_equal(v, xd[n * INNER + i] / s, 1e-6);
            else
                assert_true(v == 0.0f);
        }
        kept += keep;
    }
    assert_true(fabs((double)kept / NS - s) < 0.06);
    fr_graph_set_training(g, false);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(t, y, NS * INNER * 4), FR_STATUS_OK);
    tu_assert_bytes_equal(y, xd, NS * INNER * 4);
    fr_graph_free(g);
    assert_null(fr_drop_path(ctx, x, 0.0f));
    assert_non_null(strstr(fr_last_error(), "survival"));
    fr_ctx_free(ctx);
    free(xd);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_vs_naive),     cmocka_unit_test(test_conv2d_bad_shapes),
        cmocka_unit_test(test_pools_hand),          cmocka_unit_test(test_maxpool_nan),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_batchnorm_train_eval), cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_drop_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
