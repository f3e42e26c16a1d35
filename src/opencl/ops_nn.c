/* OpenCL launchers of the nn ops (ops_nn.def): pools, activations, batch-norm, dropout, drop-path (conv2d in
 * ops_conv.c). Kernels in cl/{pool,nn,norm,dropout}.cl; they mirror the CPU kernels in src/cpu/. */
#include "opencl/opencl_internal.h"

static int64_t inner_of(const struct fr_tensor *t) { return fr_nelements(t) / (t->ne[0] * t->ne[1]); }

/* --- pool --- */
static enum fr_status pool(struct fr_cl *cl, struct fr_tensor *y, const char *kernel, int n_src)
{
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "pool.cl", kernel);
    fr_cl_arg_tensor(&L, y);
    for (int s = 0; s < n_src; s++)
        fr_cl_arg_tensor(&L, y->src[s]);
    for (int i = 0; i < 5; i++) /* kernel, stride, padding, ceil_mode, exclude_pad (the output size is y's) */
        fr_cl_arg_int(&L, y->params[i].i);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

/* the max-pool family moves i32 argmax tensors besides f32 ones */
static bool max_pool_types(struct fr_cl *cl, const struct fr_tensor *node)
{
    (void)cl;
    bool ok = node->type == FR_F32 || node->type == FR_I32;
    for (int i = 0; i < FR_MAX_SRC; i++)
        ok &= !node->src[i] || node->src[i]->type == FR_F32 || node->src[i]->type == FR_I32;
    return ok;
}

/* with a stored argmax (an i32 source) the max-pool gathers and its gradient reads no window */
static enum fr_status cl_maxpool2d(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return y->src[1] ? pool(cl, y, "pool_maxpool2d_at", 2) : pool(cl, y, "pool_maxpool2d", 1);
}
static enum fr_status cl_maxpool2d_index(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return pool(cl, y, "pool_maxpool2d_index", 1);
}
static enum fr_status cl_maxpool2d_bwd(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return pool(cl, y, y->src[0]->type == FR_I32 ? "pool_maxpool2d_bwd_at" : "pool_maxpool2d_bwd", 2);
}
static enum fr_status cl_avgpool2d(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return pool(cl, y, "pool_avgpool2d", 1);
}
static enum fr_status cl_avgpool2d_bwd(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return pool(cl, y, "pool_avgpool2d_bwd", 1);
}

static enum fr_status cl_adaptive_avgpool2d(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return pool(cl, y, "pool_adaptive_avgpool2d", 1);
}
static enum fr_status cl_adaptive_avgpool2d_bwd(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return pool(cl, y, "pool_adaptive_avgpool2d_bwd", 1);
}

/* --- activations --- */
static enum fr_status act(struct fr_cl *cl, struct fr_tensor *y, const char *kernel, bool slope)
{
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "nn.cl", kernel);
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, y->src[0]);
    if (y->src[1])
        fr_cl_arg_tensor(&L, y->src[1]);
    if (slope)
        fr_cl_arg_float(&L, y->params[0].f);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

#define FR_CL_ACT(NAME, SLOPE)                                                                          \
    static enum fr_status cl_##NAME(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)    \
    {                                                                                                   \
        (void)ex;                                                                                       \
        return act(cl, y, "nn_" #NAME, SLOPE);                                                          \
    }
FR_CL_ACT(leaky_relu, true)
FR_CL_ACT(leaky_relu_bwd, true)
FR_CL_ACT(gelu, false)
FR_CL_ACT(gelu_bwd, false)
FR_CL_ACT(sigmoid, false)
FR_CL_ACT(sigmoid_bwd, false)
FR_CL_ACT(tanh, false)
FR_CL_ACT(tanh_bwd, false)
FR_CL_ACT(relu6, false)
FR_CL_ACT(relu6_bwd, false)
FR_CL_ACT(hardsigmoid, false)
FR_CL_ACT(hardsigmoid_bwd, false)
FR_CL_ACT(hardswish, false)
FR_CL_ACT(hardswish_bwd, false)
FR_CL_ACT(silu, false)
FR_CL_ACT(silu_bwd, false)

/* --- batch-norm --- */
static enum fr_status cl_batchnorm_stats(struct fr_cl *cl, struct fr_tensor *st, const struct fr_exec *ex)
{
    const struct fr_tensor *x = st->src[0], *rm = st->src[1], *rv = st->src[2];
    int64_t C = x->ne[1], inner = inner_of(x), T = x->ne[0] * inner;
    bool batch = fr_batchnorm_batch_stats(st, ex);
    struct fr_cl_launch L;
    int splits = 1;
    cl_mem part = NULL;
    enum fr_status s = FR_STATUS_OK;
    if (batch) {
        if (fr_cl_begin(&L, cl, "norm.cl", "norm_bn_stats_part") != FR_STATUS_OK)
            return L.st;
        int lanes = fr_cl_lanes(&L, T);
        splits = fr_cl_splits(&L, C, T, lanes);
        size_t off;
        if ((s = splits > 1 ? fr_cl_scratch(cl, FR_CL_SCRATCH_PART, (size_t)(C * splits * 2) * 4, &part)
                            : fr_cl_storage(cl, st, &part, &off)) != FR_STATUS_OK)
            return s;
        fr_cl_arg_tensor(&L, st);
        fr_cl_arg_mem(&L, part);
        fr_cl_arg_tensor(&L, x);
        fr_cl_arg_tensor(&L, rm); /* written: the running averages */
        fr_cl_arg_tensor(&L, rv);
        fr_cl_arg_int(&L, (int)inner);
        fr_cl_arg_float(&L, st->params[0].f);
        fr_cl_arg_float(&L, st->params[1].f);
        fr_cl_arg_int(&L, splits);
        if ((s = fr_cl_run_2d(&L, (int64_t)lanes * splits, C, (size_t)lanes, 1)) != FR_STATUS_OK || splits == 1)
            return s;
    } else {
        size_t off;
        if ((s = fr_cl_storage(cl, st, &part, &off)) != FR_STATUS_OK) /* a stand-in, not read */
            return s;
    }
    fr_cl_begin(&L, cl, "norm.cl", "norm_bn_stats_final");
    fr_cl_arg_tensor(&L, st);
    fr_cl_arg_mem(&L, part);
    fr_cl_arg_tensor(&L, rm);
    fr_cl_arg_tensor(&L, rv);
    fr_cl_arg_int(&L, (int)C);
    fr_cl_arg_int(&L, (int)T);
    fr_cl_arg_float(&L, st->params[0].f);
    fr_cl_arg_float(&L, st->params[1].f);
    fr_cl_arg_int(&L, splits);
    fr_cl_arg_int(&L, batch);
    return fr_cl_run_1d(&L, C);
}

/* the row kernels (cl/norm.cl): a run of values of one of the N*C rows per work-item, the run as long as 64
 * while the launch still fills the device; the run length is the last argument */
static enum fr_status run_rows(struct fr_cl_launch *L, const struct fr_tensor *x)
{
    int64_t rows = x->ne[0] * x->ne[1], inner = inner_of(x), run = fr_cl_run_length(L, rows, inner, 64);
    fr_cl_arg_int(L, (int)run);
    return fr_cl_run_1d(L, rows * ((inner + run - 1) / run));
}

static enum fr_status cl_batchnorm(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "norm.cl", "norm_batchnorm");
    fr_cl_arg_tensor(&L, y);
    for (int s = 0; s < 4; s++) /* x, weight, bias, stats */
        fr_cl_arg_tensor(&L, y->src[s]);
    fr_cl_arg_int(&L, (int)inner_of(y));
    fr_cl_arg_int(&L, y->params[3].i != 0); /* fused ReLU */
    return run_rows(&L, y);
}

static enum fr_status cl_batchnorm_bwd_stats(struct fr_cl *cl, struct fr_tensor *gst, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *x = gst->src[0];
    int64_t C = x->ne[1], inner = inner_of(x), T = x->ne[0] * inner;
    struct fr_cl_launch L;
    if (fr_cl_begin(&L, cl, "norm.cl", "norm_bn_bwd_part") != FR_STATUS_OK)
        return L.st;
    int lanes = fr_cl_lanes(&L, T), splits = fr_cl_splits(&L, C, T, lanes);
    cl_mem part;
    size_t off;
    enum fr_status s = splits > 1 ? fr_cl_scratch(cl, FR_CL_SCRATCH_PART, (size_t)(C * splits * 2) * 4, &part)
                                  : fr_cl_storage(cl, gst, &part, &off);
    if (s != FR_STATUS_OK)
        return s;
    fr_cl_arg_tensor(&L, gst);
    fr_cl_arg_mem(&L, part);
    for (int i = 0; i < 3; i++) /* x, gy, stats */
        fr_cl_arg_tensor(&L, gst->src[i]);
    fr_cl_arg_int(&L, (int)inner);
    fr_cl_arg_int(&L, splits);
    if ((s = fr_cl_run_2d(&L, (int64_t)lanes * splits, C, (size_t)lanes, 1)) != FR_STATUS_OK || splits == 1)
        return s;
    fr_cl_begin(&L, cl, "norm.cl", "norm_bn_bwd_final");
    fr_cl_arg_tensor(&L, gst);
    fr_cl_arg_mem(&L, part);
    fr_cl_arg_tensor(&L, gst->src[2]);
    fr_cl_arg_int(&L, (int)C);
    fr_cl_arg_int(&L, splits);
    return fr_cl_run_1d(&L, C);
}

static enum fr_status cl_batchnorm_bwd(struct fr_cl *cl, struct fr_tensor *dx, const struct fr_exec *ex)
{
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "norm.cl", "norm_batchnorm_bwd");
    fr_cl_arg_tensor(&L, dx);
    for (int s = 0; s < 5; s++) /* x, gy, weight, stats, gradient stats */
        fr_cl_arg_tensor(&L, dx->src[s]);
    fr_cl_arg_int(&L, (int)inner_of(dx));
    fr_cl_arg_int(&L, fr_batchnorm_batch_stats(dx, ex));
    fr_cl_arg_int(&L, dx->params[3].i > 0 ? dx->params[3].i : (int)(dx->ne[0] * inner_of(dx))); /* M */
    return run_rows(&L, dx);
}

static enum fr_status cl_batchnorm_fold(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "norm.cl", "norm_batchnorm_fold");
    fr_cl_arg_tensor(&L, y);
    for (int s = 0; s < 4; s++) /* weight, bias, running mean, running var */
        fr_cl_arg_tensor(&L, y->src[s]);
    fr_cl_arg_float(&L, y->params[0].f);
    return fr_cl_run_1d(&L, y->ne[1]);
}

/* --- dropout, drop-path --- */
static enum fr_status drop_copy(struct fr_cl *cl, struct fr_tensor *y)
{
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "dropout.cl", "dropout_copy");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, y->src[0]);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

static enum fr_status drop(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex, bool path)
{
    float f = y->params[0].f;
    if (!ex->training || (path ? f >= 1.0f : f == 0.0f))
        return drop_copy(cl, y);
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "dropout.cl", path ? "dropout_drop_path" : "dropout_dropout");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, y->src[0]);
    fr_cl_arg_float(&L, f);
    fr_cl_arg_float(&L, path ? 1.0f / f : 1.0f / (1.0f - f));
    fr_cl_arg_uint(&L, ex->seed_lo);
    fr_cl_arg_uint(&L, ex->seed_hi);
    fr_cl_arg_uint(&L, ex->step);
    fr_cl_arg_uint(&L, (unsigned)y->params[1].i);
    if (!path) { /* one Philox block per 4 elements, from the block of the first element (a split batch: `first`) */
        uint32_t first = (ex->first_sample + (uint32_t)y->params[2].i) * (uint32_t)(fr_nelements(y) / y->ne[0]);
        fr_cl_arg_uint(&L, first);
        return fr_cl_run_1d(&L, (first % 4 + fr_nelements(y) + 3) / 4);
    }
    int64_t inner = fr_nelements(y) / y->ne[0], seg = fr_cl_run_length(&L, y->ne[0], inner, 64);
    fr_cl_arg_int(&L, (int)inner);
    fr_cl_arg_int(&L, (int)seg);
    fr_cl_arg_uint(&L, ex->first_sample + (uint32_t)y->params[2].i); /* + the forward's rows (fr_model_set_first_row) */
    return fr_cl_run_2d(&L, (inner + seg - 1) / seg, y->ne[0], 0, 0); /* one draw per segment of a sample */
}

static enum fr_status cl_dropout(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    return drop(cl, y, ex, false);
}
static enum fr_status cl_drop_path(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    return drop(cl, y, ex, true);
}

void fr_cl_register_nn(struct fr_cl_op *t)
{
    fr_cl_register_conv(t); /* src/opencl/ops_conv.c */
    t[FR_OP_MAXPOOL2D] = (struct fr_cl_op){cl_maxpool2d, max_pool_types};
    t[FR_OP_MAXPOOL2D_INDEX] = (struct fr_cl_op){cl_maxpool2d_index, max_pool_types};
    t[FR_OP_MAXPOOL2D_BWD] = (struct fr_cl_op){cl_maxpool2d_bwd, max_pool_types};
    t[FR_OP_AVGPOOL2D] = (struct fr_cl_op){cl_avgpool2d, NULL};
    t[FR_OP_AVGPOOL2D_BWD] = (struct fr_cl_op){cl_avgpool2d_bwd, NULL};
    t[FR_OP_LEAKY_RELU] = (struct fr_cl_op){cl_leaky_relu, NULL};
    t[FR_OP_LEAKY_RELU_BWD] = (struct fr_cl_op){cl_leaky_relu_bwd, NULL};
    t[FR_OP_GELU] = (struct fr_cl_op){cl_gelu, NULL};
    t[FR_OP_GELU_BWD] = (struct fr_cl_op){cl_gelu_bwd, NULL};
    t[FR_OP_SIGMOID] = (struct fr_cl_op){cl_sigmoid, NULL};
    t[FR_OP_SIGMOID_BWD] = (struct fr_cl_op){cl_sigmoid_bwd, NULL};
    t[FR_OP_TANH] = (struct fr_cl_op){cl_tanh, NULL};
    t[FR_OP_TANH_BWD] = (struct fr_cl_op){cl_tanh_bwd, NULL};
    t[FR_OP_RELU6] = (struct fr_cl_op){cl_relu6, NULL};
    t[FR_OP_RELU6_BWD] = (struct fr_cl_op){cl_relu6_bwd, NULL};
    t[FR_OP_HARDSIGMOID] = (struct fr_cl_op){cl_hardsigmoid, NULL};
    t[FR_OP_HARDSIGMOID_BWD] = (struct fr_cl_op){cl_hardsigmoid_bwd, NULL};
    t[FR_OP_HARDSWISH] = (struct fr_cl_op){cl_hardswish, NULL};
    t[FR_OP_HARDSWISH_BWD] = (struct fr_cl_op){cl_hardswish_bwd, NULL};
    t[FR_OP_SILU] = (struct fr_cl_op){cl_silu, NULL};
    t[FR_OP_SILU_BWD] = (struct fr_cl_op){cl_silu_bwd, NULL};
    t[FR_OP_ADAPTIVE_AVGPOOL2D] = (struct fr_cl_op){cl_adaptive_avgpool2d, NULL};
    t[FR_OP_ADAPTIVE_AVGPOOL2D_BWD] = (struct fr_cl_op){cl_adaptive_avgpool2d_bwd, NULL};
    t[FR_OP_BATCHNORM_STATS] = (struct fr_cl_op){cl_batchnorm_stats, NULL};
    t[FR_OP_BATCHNORM] = (struct fr_cl_op){cl_batchnorm, NULL};
    t[FR_OP_BATCHNORM_BWD_STATS] = (struct fr_cl_op){cl_batchnorm_bwd_stats, NULL};
    t[FR_OP_BATCHNORM_BWD] = (struct fr_cl_op){cl_batchnorm_bwd, NULL};
    t[FR_OP_BATCHNORM_FOLD] = (struct fr_cl_op){cl_batchnorm_fold, NULL};
    t[FR_OP_DROPOUT] = (struct fr_cl_op){cl_dropout, NULL};
    t[FR_OP_DROP_PATH] = (struct fr_cl_op){cl_drop_path, NULL};
}
