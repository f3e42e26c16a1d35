/* Reductions over one axis (sum, mean, max), sum-to-shape, and their gradients. */
#include "core/internal.h"

static struct fr_tensor *reduce(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *a, int axis)
{
    if (!a)
        return NULL;
    int ax = fr_axis(a, axis);
    if (ax < 0)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s '%s': axis %d out of range for %d dims", fr_op_name(op), a->name,
                           axis, a->ndim);
    if (a->type != FR_F32)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "%s: needs f32, got %s", fr_op_name(op),
                           fr_dtype_name(a->type));
    int64_t ne[FR_MAX_DIMS];
    memcpy(ne, a->ne, sizeof ne);
    ne[ax] = 1;
    struct fr_tensor *t = fr_node_new(ctx, op, FR_F32, a->ndim, ne, 1, &a);
    if (t)
        t->params[0].i = ax;
    return t;
}

struct fr_tensor *fr_sum(struct fr_ctx *ctx, struct fr_tensor *a, int axis) { return reduce(ctx, FR_OP_SUM, a, axis); }
struct fr_tensor *fr_mean(struct fr_ctx *ctx, struct fr_tensor *a, int axis) { return reduce(ctx, FR_OP_MEAN, a, axis); }
struct fr_tensor *fr_max(struct fr_ctx *ctx, struct fr_tensor *a, int axis) { return reduce(ctx, FR_OP_MAX, a, axis); }

struct fr_tensor *fr_sum_to(struct fr_ctx *ctx, struct fr_tensor *a, int ndim, const int64_t *ne)
{
    if (!a)
        return NULL;
    struct fr_tensor shape = {.ndim = ndim};
    for (int d = 0; d < FR_MAX_DIMS; d++)
        shape.ne[d] = d < ndim ? ne[d] : 1;
    int n;
    int64_t out[FR_MAX_DIMS];
    if (ndim > a->ndim || !fr_broadcast_shape(a, &shape, &n, out) || n != a->ndim ||
        memcmp(out, a->ne, (size_t)n * sizeof *out) != 0)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "sum_to '%s': target shape is not a broadcast source of it", a->name);
    return fr_node_new(ctx, FR_OP_SUM_TO, FR_F32, ndim, ne, 1, &a);
}

static struct fr_tensor *expand_like(struct fr_ctx *ctx, struct fr_tensor *g, struct fr_tensor *like)
{
    return fr_broadcast_to(ctx, g, like->ndim, like->ne);
}

enum fr_status fr_bwd_sum(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0];
    return fr_needs_grad(a) ? fr_grad_acc(ctx, a, expand_like(ctx, gy, a)) : FR_STATUS_OK;
}

enum fr_status fr_bwd_mean(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0];
    if (!fr_needs_grad(a))
        return FR_STATUS_OK;
    float inv = 1.0f / (float)a->ne[node->params[0].i];
    return fr_grad_acc(ctx, a, expand_like(ctx, fr_scale(ctx, gy, inv), a));
}

enum fr_status fr_bwd_max(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0];
    if (!fr_needs_grad(a))
        return FR_STATUS_OK;
    struct fr_tensor *g = fr_node_new(ctx, FR_OP_MAX_BWD, FR_F32, a->ndim, a->ne, 3, (struct fr_tensor *[]){a, node, gy});
    if (g)
        g->params[0].i = node->params[0].i;
    return fr_grad_acc(ctx, a, g);
}

enum fr_status fr_bwd_sum_to(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0];
    return fr_needs_grad(a) ? fr_grad_acc(ctx, a, expand_like(ctx, gy, a)) : FR_STATUS_OK;
}
