/* Finite-difference gradient checks (gradcheck.h) for every op with a backward rule, core and nn, on the
 * CPU path: elementwise with broadcasting, scale, relu, matmul (all transposes), reductions, softmax,
 * log-softmax, views, convert, conv2d (every CPU and OpenCL strategy), pools (ceil_mode, adaptive),
 * activations (incl. relu6, hardsigmoid, hardswish, silu), batch-norm, dropout, drop-path; with an OpenCL
 * device, its outputs and gradients against the CPU path. */
#include <stdio.h>
#include <string.h>

#include "frugal/device.h"
#include "frugal/nn.h"
#include "gradcheck.h"
#include "core/internal.h" /* fr_batchnorm_fuse_relu */

#define SHAPE(...) (int64_t[]){__VA_ARGS__}

/* the first usable OpenCL device, if any: every check also compares its outputs and gradients */
static struct fr_backend *cl_be;

static int setup(void **state)
{
    (void)state;
    struct fr_device_info *d = NULL;
    int n = 0;
    if (fr_opencl_list_devices(&d, &n) == FR_STATUS_OK)
        for (int i = 0; i < n && !cl_be; i++)
            if (d[i].usable && fr_backend_open(d[i].spec, &cl_be) != FR_STATUS_OK)
                cl_be = NULL;
    fr_opencl_free_devices(d);
    if (!cl_be)
        printf("# no usable OpenCL device: CPU gradient checks only\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fr_backend_free(cl_be);
    return 0;
}

/* finite differences on the CPU path, then (with a device) OpenCL against the CPU path */
static void check(const char *name, gc_build_fn build, void *arg, const struct gc_opts *opts)
{
    gc_check(name, build, arg, opts);
    if (cl_be)
        gc_parity(cl_be, name, build, arg, opts, 2e-4f);
}

/* ---- core ops ---- */

struct bin_arg {
    struct fr_tensor *(*op)(struct fr_ctx *, struct fr_tensor *, struct fr_tensor *);
    int nda, ndb;
    int64_t a[4], b[4];
    enum gc_fill fb;
};

static struct fr_tensor *build_binary(struct gc *g, void *p)
{
    struct bin_arg *a = p;
    struct fr_tensor *x = gc_param(g, a->nda, a->a, GC_UNIFORM), *y = gc_param(g, a->ndb, a->b, a->fb);
    return a->op(g->ctx, x, y);
}

static void test_elementwise_broadcast(void **state)
{
    (void)state;
    struct fr_tensor *(*ops[])(struct fr_ctx *, struct fr_tensor *, struct fr_tensor *) = {fr_add, fr_sub, fr_mul,
                                                                                           fr_div};
    const char *names[] = {"add", "sub", "mul", "div"};
    for (int k = 0; k < 4; k++) {
        enum gc_fill fb = k == 3 ? GC_POSITIVE : GC_UNIFORM; /* divisors away from 0 */
        struct bin_arg same = {ops[k], 2, 2, {3, 4}, {3, 4}, fb};
        struct bin_arg row = {ops[k], 2, 1, {3, 4}, {4}, fb};
        struct bin_arg outer = {ops[k], 2, 2, {3, 1}, {1, 4}, fb};
        struct bin_arg deep = {ops[k], 4, 3, {2, 1, 3, 2}, {3, 1, 2}, fb};
        check(names[k], build_binary, &same, NULL);
        check(names[k], build_binary, &row, NULL);
        check(names[k], build_binary, &outer, NULL);
        check(names[k], build_binary, &deep, NULL);
    }
}

static struct fr_tensor *build_scale(struct gc *g, void *p)
{
    (void)p;
    return fr_scale_add(g->ctx, gc_param(g, 2, SHAPE(2, 5), GC_UNIFORM), -1.7f, 0.3f);
}
static struct fr_tensor *build_relu(struct gc *g, void *p)
{
    (void)p;
    return fr_relu(g->ctx, gc_param(g, 3, SHAPE(2, 3, 4), GC_AWAY_FROM_ZERO));
}

static void test_scale_relu(void **state)
{
    (void)state;
    check("scale", build_scale, NULL, NULL);
    check("relu", build_relu, NULL, NULL);
}

static struct fr_tensor *build_matmul(struct gc *g, void *p)
{
    int t = *(int *)p;
    bool ta = t & 1, tb = t & 2;
    struct fr_tensor *a = gc_param(g, 2, ta ? SHAPE(4, 3) : SHAPE(3, 4), GC_UNIFORM);
    struct fr_tensor *b = gc_param(g, 2, tb ? SHAPE(5, 4) : SHAPE(4, 5), GC_UNIFORM);
    return fr_matmul(g->ctx, a, b, ta, tb);
}

static void test_matmul(void **state)
{
    (void)state;
    for (int t = 0; t < 4; t++)
        check("matmul", build_matmul, &t, NULL);
}

struct red_arg {
    struct fr_tensor *(*op)(struct fr_ctx *, struct fr_tensor *, int);
    int axis;
    enum gc_fill fill;
};

static struct fr_tensor *build_reduce(struct gc *g, void *p)
{
    struct red_arg *a = p;
    return a->op(g->ctx, gc_param(g, 3, SHAPE(2, 3, 4), a->fill), a->axis);
}

static void test_reductions_softmax(void **state)
{
    (void)state;
    for (int axis = -1; axis < 3; axis++) {
        struct red_arg args[] = {{fr_sum, axis, GC_UNIFORM}, {fr_mean, axis, GC_UNIFORM}, {fr_max, axis, GC_DISTINCT},
                                 {fr_softmax, axis, GC_UNIFORM}, {fr_log_softmax, axis, GC_UNIFORM}};
        const char *names[] = {"sum", "mean", "max", "softmax", "log_softmax"};
        for (int k = 0; k < 5; k++)
            check(names[k], build_reduce, &args[k], NULL);
    }
}

static struct fr_tensor *build_views(struct gc *g, void *p)
{
    int k = *(int *)p;
    struct fr_ctx *ctx = g->ctx;
    struct fr_tensor *a = gc_param(g, 3, k == 4 ? SHAPE(1, 3, 4) : SHAPE(2, 3, 4), GC_UNIFORM);
    switch (k) {
    case 0: return fr_reshape(ctx, a, 2, SHAPE(6, 4));
    case 1: return fr_permute(ctx, a, (int[]){2, 0, 1});
    case 2: return fr_reshape(ctx, fr_transpose(ctx, a, 0, 2), 2, SHAPE(4, 6)); /* reshape of a strided view */
    case 3: return fr_slice(ctx, a, 2, 1, 2);
    case 4: return fr_broadcast_to(ctx, a, 3, SHAPE(3, 3, 4));
    case 5: return fr_cont(ctx, fr_permute(ctx, a, (int[]){1, 2, 0}));
    case 6: return fr_flatten(ctx, a);
    case 7: return fr_sum_to(ctx, a, 2, SHAPE(1, 4));
    default: return fr_convert(ctx, a, FR_F32);
    }
}

static void test_views_convert(void **state)
{
    (void)state;
    for (int k = 0; k <= 8; k++)
        if (k != 3) /* the core has no backward for slices yet */
            check("view", build_views, &k, NULL);
}

/* ---- nn ops ---- */

struct conv_arg {
    int64_t x[4], w[4];
    struct fr_conv2d_params p;
    bool bias;
};

static struct fr_tensor *build_conv(struct gc *g, void *p)
{
    struct conv_arg *a = p;
    struct fr_tensor *x = gc_param(g, 4, a->x, GC_UNIFORM), *w = gc_param(g, 4, a->w, GC_UNIFORM);
    struct fr_tensor *b = a->bias ? gc_param(g, 1, &a->w[0], GC_UNIFORM) : NULL;
    return fr_conv2d_ex(g->ctx, x, w, b, &a->p);
}

static void test_conv2d(void **state)
{
    (void)state;
    struct conv_arg cases[] = {
        {{2, 4, 7, 5}, {6, 2, 3, 2}, {.stride_h = 2, .pad_h = 1, .pad_w = 2, .dil_h = 2, .groups = 2}, true},
        {{3, 2, 5, 6}, {3, 2, 2, 3}, {.stride_w = 2, .pad_w = 1, .dil_w = 2}, false},
        {{2, 3, 4, 4}, {4, 3, 1, 1}, {0}, true},            /* 1x1 direct path */
        {{1, 2, 5, 5}, {3, 2, 3, 3}, {.pad_h = 1, .pad_w = 1}, true}, /* one sample: threaded GEMMs */
        /* >= 8 channels, 3x3 stride 1: Winograd forward, input and weight gradients; odd maps, pads 0..2 */
        {{2, 8, 5, 4}, {8, 8, 3, 3}, {.pad_h = 1, .pad_w = 1}, true},
        {{3, 8, 6, 5}, {9, 8, 3, 3}, {.pad_h = 2, .pad_w = 0}, false},
        /* the OpenCL paths beyond those: im2col + GEMM with stride 2 and dilation, batched 1x1 GEMMs per group */
        {{2, 8, 7, 6}, {8, 8, 3, 3}, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 2, .dil_w = 2}, true},
        {{2, 16, 3, 4}, {16, 8, 1, 1}, {.groups = 2}, true},
        /* depthwise: the direct path (OpenCL: with the split weight gradient), stride 2 and dilation 2 */
        {{2, 3, 7, 6}, {3, 1, 3, 3}, {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .groups = 3}, true},
        {{2, 4, 6, 7}, {4, 1, 3, 3}, {.stride_w = 2, .pad_h = 2, .pad_w = 2, .dil_h = 2, .dil_w = 2, .groups = 4}, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check("conv2d", build_conv, &cases[i], NULL);
    /* fused ReLU: inputs with no pre-activation near 0 are hard to arrange, so check a biased-positive case
     * where the kink is avoided by a large positive bias on some channels and negative on others */
    struct conv_arg relu = {{2, 2, 4, 4}, {3, 2, 3, 3}, {.pad_h = 1, .pad_w = 1, .relu = true}, true};
    check("conv2d+relu", build_conv, &relu, &(struct gc_opts){.h = 1e-3, .atol = 5e-3});
}

struct pool_arg {
    bool max;
    struct fr_pool2d_params p;
    int64_t w; /* input width (height 5) */
};

static struct fr_tensor *build_pool(struct gc *g, void *p)
{
    struct pool_arg *a = p;
    struct fr_tensor *x = gc_param(g, 4, SHAPE(2, 3, 5, a->w), GC_DISTINCT);
    return a->max ? fr_maxpool2d_ex(g->ctx, x, &a->p) : fr_avgpool2d_ex(g->ctx, x, &a->p);
}

static struct fr_tensor *build_gap(struct gc *g, void *p)
{
    (void)p;
    return fr_global_avgpool2d(g->ctx, gc_param(g, 4, SHAPE(2, 3, 3, 4), GC_UNIFORM));
}

static struct fr_tensor *build_adaptive(struct gc *g, void *p)
{
    int *o = p; /* output h, w of a 5x7 input: overlapping windows when it does not divide */
    return fr_adaptive_avgpool2d(g->ctx, gc_param(g, 4, SHAPE(2, 3, 5, 7), GC_UNIFORM), o[0], o[1]);
}

static void test_pools(void **state)
{
    (void)state;
    /* 2x2/2 max-pool has its own backward path: even and odd widths, an odd height; ceil_mode makes partial
     * last windows, exclude_pad changes the average's divisor at the borders */
    struct pool_arg cases[] = {
        {true, {2, 2, 0, false, false, false}, 6},  {true, {2, 2, 0, false, false, false}, 7},
        {true, {2, 2, 0, false, false, false}, 19}, {true, {3, 2, 1, false, false, false}, 6},
        {true, {3, 1, 1, false, false, false}, 6},  {true, {2, 2, 0, true, false, false}, 7},
        {true, {3, 2, 1, true, false, false}, 8},   {false, {2, 2, 0, false, false, false}, 6},
        {false, {3, 2, 1, false, false, false}, 7}, {false, {2, 1, 1, false, false, false}, 6},
        {false, {3, 2, 0, true, false, false}, 8},  {false, {3, 2, 1, true, true, false}, 8},
        {false, {2, 2, 1, false, true, false}, 7},
        /* the forward stores its argmax and the backward scatters through it */
        {true, {3, 2, 1, false, false, true}, 6},   {true, {2, 2, 0, false, false, true}, 7},
        {true, {3, 2, 1, true, false, true}, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check(cases[i].max ? "maxpool2d" : "avgpool2d", build_pool, &cases[i], NULL);
    check("global_avgpool2d", build_gap, NULL, NULL);
    int outs[][2] = {{1, 1}, {2, 3}, {3, 5}, {5, 7}};
    for (size_t i = 0; i < sizeof outs / sizeof *outs; i++)
        check("adaptive_avgpool2d", build_adaptive, outs[i], NULL);
}

static struct fr_tensor *build_act(struct gc *g, void *p)
{
    int k = *(int *)p;
    struct fr_tensor *x = gc_param(g, 2, SHAPE(3, 5), k == 0 ? GC_AWAY_FROM_ZERO : GC_UNIFORM);
    struct fr_tensor *x2 = fr_scale(g->ctx, x, 3.0f); /* cover the tails too */
    switch (k) {
    case 0: return fr_leaky_relu(g->ctx, x2, 0.1f);
    case 1: return fr_gelu(g->ctx, x2);
    case 2: return fr_sigmoid(g->ctx, x2);
    default: return fr_tanh(g->ctx, x2);
    }
}

/* the torchvision activations: f(4d + a) + f(4d + b) with |d| >= 0.2 keeps every input >= 0.8 away from the
 * kinks (relu6 at 0 and 6, hardsigmoid/hardswish at -3 and 3) while covering both sides of each */
static struct fr_tensor *build_act_tv(struct gc *g, void *p)
{
    int k = *(int *)p;
    struct fr_tensor *d = gc_param(g, 2, SHAPE(3, 5), GC_AWAY_FROM_ZERO);
    struct fr_tensor *(*f[])(struct fr_ctx *, struct fr_tensor *) = {fr_relu6, fr_hardsigmoid, fr_hardswish, fr_silu};
    float a = k == 0 ? 0.0f : -3.0f, b = k == 0 ? 6.0f : 3.0f;
    return fr_add(g->ctx, f[k](g->ctx, fr_scale_add(g->ctx, d, 4.0f, a)), f[k](g->ctx, fr_scale_add(g->ctx, d, 4.0f, b)));
}

static void test_activations(void **state)
{
    (void)state;
    for (int k = 0; k < 4; k++)
        check("activation", build_act, &k, NULL);
    const char *names[] = {"relu6", "hardsigmoid", "hardswish", "silu"};
    for (int k = 0; k < 4; k++)
        check(names[k], build_act_tv, &k, NULL);
}

static struct fr_tensor *build_bn(struct gc *g, void *p)
{
    int nd = *(int *)p;
    struct fr_tensor *x = gc_param(g, nd == 3 ? 4 : nd, nd >= 3 ? SHAPE(3, 2, 2, 3) : SHAPE(5, 3), GC_UNIFORM);
    int64_t c = x->ne[1];
    struct fr_tensor *w = gc_param(g, 1, &c, GC_UNIFORM), *b = gc_param(g, 1, &c, GC_UNIFORM);
    struct fr_tensor *rm = gc_const(g, 1, &c, GC_UNIFORM), *rv = gc_const(g, 1, &c, GC_POSITIVE);
    /* a second consumer of x checks that gradients of a tensor used twice are summed; nd 3: the 4-D case
     * with a fused ReLU */
    struct fr_tensor *y = fr_batchnorm(g->ctx, x, w, b, rm, rv, 1e-5f, 0.1f);
    return fr_add(g->ctx, nd == 3 ? fr_batchnorm_fuse_relu(y) : y, fr_scale(g->ctx, x, 0.5f));
}

/* a stem conv (2 channels in, 8x the bytes out) into a batch-norm: the backward recomputes the conv's output */
static struct fr_tensor *build_stem_bn(struct gc *g, void *p)
{
    (void)p;
    struct fr_tensor *x = gc_param(g, 4, SHAPE(2, 2, 4, 3), GC_UNIFORM), *w = gc_param(g, 4, SHAPE(8, 2, 3, 3), GC_UNIFORM);
    int64_t c = 8;
    struct fr_tensor *bw = gc_param(g, 1, &c, GC_UNIFORM), *b = gc_param(g, 1, &c, GC_UNIFORM);
    struct fr_tensor *rm = gc_const(g, 1, &c, GC_UNIFORM), *rv = gc_const(g, 1, &c, GC_POSITIVE);
    return fr_batchnorm(g->ctx, fr_conv2d(g->ctx, x, w, NULL, 1, 1), bw, b, rm, rv, 1e-5f, 0.1f);
}

static void test_batchnorm(void **state)
{
    (void)state;
    for (int nd = 2; nd <= 4; nd++) {
        check("batchnorm train", build_bn, &nd, &(struct gc_opts){.training = true, .h = 1e-3, .atol = 3e-3});
        check("batchnorm eval", build_bn, &nd, NULL);
    }
    check("stem conv + batchnorm train", build_stem_bn, NULL, &(struct gc_opts){.training = true, .h = 1e-3, .atol = 3e-3});
}

static struct fr_tensor *build_dropout(struct gc *g, void *p)
{
    int k = *(int *)p;
    struct fr_tensor *x = gc_param(g, 3, SHAPE(4, 3, 5), GC_UNIFORM);
    return k ? fr_drop_path(g->ctx, x, 0.6f) : fr_dropout(g->ctx, x, 0.4f);
}

static void test_dropout(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        check("dropout/drop_path train", build_dropout, &k, &(struct gc_opts){.training = true});
        check("dropout/drop_path eval", build_dropout, &k, NULL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elementwise_broadcast), cmocka_unit_test(test_scale_relu),
        cmocka_unit_test(test_matmul),                cmocka_unit_test(test_reductions_softmax),
        cmocka_unit_test(test_views_convert),         cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_pools),                 cmocka_unit_test(test_activations),
        cmocka_unit_test(test_batchnorm),             cmocka_unit_test(test_dropout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
