/* Batch normalisation (1d/2d over channel axis 1): constructor (a statistics node and the normalisation),
 * shape rule and backward rule. */
#include "core/internal.h"
#include "frugal/nn.h"

static bool is_vec(const struct fr_tensor *t, int64_t c) { return t->type == FR_F32 && t->ndim == 1 && t->ne[0] == c; }

/* global_batch > 0: sync batch-norm over the ranks of the job (fr_batchnorm_sync) */
static struct fr_tensor *batchnorm(struct fr_ctx *ctx, struct fr_tensor *x, struct fr_tensor *weight,
                                   struct fr_tensor *bias, struct fr_tensor *running_mean,
                                   struct fr_tensor *running_var, float eps, float momentum, int64_t global_batch)
{
    if (!x || !weight || !bias || !running_mean || !running_var)
        return fr_ctx_status(ctx) ? NULL
                                  : fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT,
                                                "batchnorm: input, weight, bias and running statistics are required");
    char sx[64];
    fr_tensor_shape_str(x, sx, sizeof sx);
    if (x->type != FR_F32 || x->ndim < 2)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "batchnorm: input '%s' must be f32 [N,C,...], got %s", x->name, sx);
    int64_t c = x->ne[1];
    struct fr_tensor *v[] = {weight, bias, running_mean, running_var};
    for (int i = 0; i < 4; i++)
        if (!is_vec(v[i], c))
            return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "batchnorm: '%s' must be f32 [%lld] for input '%s' %s",
                               v[i]->name, (long long)c, x->name, sx);
    for (int i = 2; i < 4; i++) {
        /* the kernel writes them in place during training: only a leaf has storage of its own */
        if (v[i]->op != FR_OP_NONE)
            return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT,
                               "batchnorm: running statistic '%s' must be a leaf tensor (FR_FLAG_STATE)", v[i]->name);
        v[i]->flags |= FR_FLAG_STATE;
    }
    if (!(eps > 0.0f) || !(momentum >= 0.0f && momentum <= 1.0f))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "batchnorm '%s': eps %g must be > 0, momentum %g in [0,1]",
                           weight->name, eps, momentum);
    if (fr_nelements(x) / c < 2)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE,
                           "batchnorm: input '%s' %s has one value per channel (batch statistics need more)", x->name,
                           sx);
    x = fr_need_cont(ctx, x);
    if (!x)
        return NULL;
    /* the weight is a source of the statistics for its FROZEN flag, read when the graph runs */
    struct fr_tensor *stats = fr_node_new(ctx, FR_OP_BATCHNORM_STATS, FR_F32, 2, (int64_t[]){2, c}, 4,
                                          (struct fr_tensor *[]){x, running_mean, running_var, weight});
    if (!stats)
        return NULL;
    stats->params[0].f = eps;
    stats->params[1].f = global_batch > 0 ? 0.0f : momentum; /* sync: the whole batch's statistics update them */
    fr_tensor_set_name(stats, "%.50s (batch-norm statistics)", weight->name);
    if (global_batch > 0) { /* this rank's statistics -> the whole batch's, through every rank */
        int64_t local = fr_nelements(x) / c, global = local / x->ne[0] * global_batch;
        if (global > INT32_MAX)
            return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "batchnorm '%s': %lld values per channel", weight->name,
                               (long long)global);
        stats = fr_node_new(ctx, FR_OP_BATCHNORM_RANK_STATS, FR_F32, 2, (int64_t[]){2, c}, 4,
                            (struct fr_tensor *[]){stats, running_mean, running_var, weight});
        if (!stats)
            return NULL;
        stats->params[0].f = eps;
        stats->params[1].f = momentum;
        stats->params[2].i = (int32_t)local;
        stats->params[3].i = (int32_t)global;
        fr_tensor_set_name(stats, "%.50s (batch-norm statistics of all ranks)", weight->name);
    }
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_BATCHNORM, FR_F32, x->ndim, x->ne, 4,
                                      (struct fr_tensor *[]){x, weight, bias, stats});
    if (t) {
        t->params[0].f = eps;
        t->params[1].f = momentum;
    }
    return t;
}

struct fr_tensor *fr_batchnorm(struct fr_ctx *ctx, struct fr_tensor *x, struct fr_tensor *weight,
                               struct fr_tensor *bias, struct fr_tensor *running_mean,
                               struct fr_tensor *running_var, float eps, float momentum)
{
    return batchnorm(ctx, x, weight, bias, running_mean, running_var, eps, momentum, 0);
}

struct fr_tensor *fr_batchnorm_sync(struct fr_ctx *ctx, struct fr_tensor *x, struct fr_tensor *weight,
                                    struct fr_tensor *bias, struct fr_tensor *running_mean,
                                    struct fr_tensor *running_var, float eps, float momentum, int64_t global_batch)
{
    if (x && global_batch < x->ne[0])
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "batchnorm_sync: a global batch of %lld below the %lld "
                           "rows of '%s'", (long long)global_batch, (long long)x->ne[0], x->name);
    bool frozen = weight && (weight->flags & FR_FLAG_FROZEN); /* eval-mode statistics: nothing to combine */
    return batchnorm(ctx, x, weight, bias, running_mean, running_var, eps, momentum, frozen ? 0 : global_batch);
}

struct fr_tensor *fr_batchnorm_fuse_relu(struct fr_tensor *bn)
{
    if (bn && bn->op == FR_OP_BATCHNORM)
        bn->params[3].i = 1;
    return bn;
}

/* The backward's copy of a batch-norm input made by a stem convolution (images of <= 4 channels in, an output at
 * least 4x their size): the same conv again, so the forward's large output dies after the forward while the
 * images, which the conv's weight gradient keeps anyway, are all the backward needs (ResNet's 3 -> 64 channel
 * 7x7/2 stem: 102 MB at batch 32 for ~2% more arithmetic). Any other input is used as it is. */
static struct fr_tensor *recompute_stem(struct fr_ctx *ctx, struct fr_tensor *x)
{
    if (x->op != FR_OP_CONV2D || x->view_src || x->src[0]->ne[1] > 4 || fr_nbytes(x) < 4 * fr_nbytes(x->src[0]))
        return x;
    struct fr_tensor *r = fr_node_new(ctx, FR_OP_CONV2D, x->type, x->ndim, x->ne, x->src[2] ? 3 : 2, x->src);
    if (!r)
        return NULL;
    memcpy(r->params, x->params, sizeof r->params);
    fr_tensor_set_name(r, "%.50s (recomputed)", x->name);
    return r;
}

/* gstats = [Σ gy·x̂, Σ gy] per channel (x̂ from the forward's statistics) give the weight and bias gradients
 * and, with the statistics, what dx needs. Sync batch-norm: dx needs the sums over every rank's rows (and their
 * count); the weight and bias gradients keep this rank's, as every parameter's gradient does until the step sums
 * them. */
enum fr_status fr_bwd_batchnorm(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *x = node->src[0], *w = node->src[1], *b = node->src[2], *stats = node->src[3];
    if (!fr_needs_grad(x) && !fr_needs_grad(w) && !fr_needs_grad(b))
        return FR_STATUS_OK;
    int64_t c = x->ne[1];
    /* a fused ReLU: the output is > 0 exactly where the normalised value was */
    if (node->params[3].i)
        gy = fr_node_new(ctx, FR_OP_RELU_BWD, FR_F32, node->ndim, node->ne, 2, (struct fr_tensor *[]){node, gy});
    gy = fr_need_cont(ctx, gy);
    struct fr_tensor *xv = recompute_stem(ctx, x); /* x's values, for the backward's reads */
    struct fr_tensor *gstats = fr_node_new(ctx, FR_OP_BATCHNORM_BWD_STATS, FR_F32, 2, (int64_t[]){2, c}, 3,
                                           (struct fr_tensor *[]){xv, gy, stats});
    /* a frozen layer (frozen weight) keeps its running statistics: it normalises as in eval mode */
    int frozen = (w->flags & FR_FLAG_FROZEN) != 0;
    if (gstats)
        gstats->params[0] = node->params[0];
    enum fr_status st = FR_STATUS_OK;
    if (fr_needs_grad(x)) {
        bool sync = stats->op == FR_OP_BATCHNORM_RANK_STATS;
        struct fr_tensor *dx = fr_node_new(ctx, FR_OP_BATCHNORM_BWD, FR_F32, x->ndim, x->ne, 5,
                                           (struct fr_tensor *[]){xv, gy, w, stats, sync ? fr_rank_sum(ctx, gstats)
                                                                                          : gstats});
        if (dx) {
            dx->params[0] = node->params[0];
            dx->params[2].i = frozen;
            dx->params[3].i = sync ? stats->params[3].i : 0; /* values per channel in the whole batch */
        }
        st = fr_grad_acc(ctx, x, dx);
    }
    if (st == FR_STATUS_OK && fr_needs_grad(w))
        st = fr_grad_acc(ctx, w, fr_reshape(ctx, fr_slice(ctx, gstats, 0, 0, 1), 1, &c));
    if (st == FR_STATUS_OK && fr_needs_grad(b))
        st = fr_grad_acc(ctx, b, fr_reshape(ctx, fr_slice(ctx, gstats, 0, 1, 1), 1, &c));
    return st;
}

bool fr_batchnorm_batch_stats(const struct fr_tensor *node, const struct fr_exec *ex)
{
    if (!ex->training)
        return false;
    if (node->op == FR_OP_BATCHNORM_STATS)
        return !(node->src[3]->flags & FR_FLAG_FROZEN);
    return !node->params[2].i;
}

struct fr_tensor *fr_batchnorm_fold(struct fr_ctx *ctx, struct fr_tensor *weight, struct fr_tensor *bias,
                                    struct fr_tensor *running_mean, struct fr_tensor *running_var, float eps)
{
    if (!weight || !bias || !running_mean || !running_var)
        return fr_ctx_status(ctx) ? NULL : fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "batchnorm_fold: missing tensor");
    int64_t c = weight->ndim == 1 ? weight->ne[0] : 0;
    struct fr_tensor *v[] = {weight, bias, running_mean, running_var};
    for (int i = 0; i < 4; i++)
        if (c == 0 || !is_vec(v[i], c))
            return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "batchnorm_fold: '%s' must be f32 [%lld]", v[i]->name, (long long)c);
    if (!(eps > 0.0f))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "batchnorm_fold '%s': eps %g must be > 0", weight->name, eps);
    for (int i = 0; i < 4; i++)
        v[i] = fr_need_cont(ctx, v[i]);
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_BATCHNORM_FOLD, FR_F32, 2, (int64_t[]){2, c}, 4, v);
    if (t)
        t->params[0].f = eps;
    return t;
}
