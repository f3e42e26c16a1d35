/* Softmax and log-softmax over one axis (max-subtracted, so stable), and their gradients. */
#include "core/internal.h"

static struct fr_tensor *softmax_like(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *a, int axis)
{
    if (!a)
        return NULL;
    int ax = fr_axis(a, axis);
    if (ax < 0)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s '%s': axis %d out of range", fr_op_name(op), a->name, axis);
    if (a->type != FR_F32)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "%s: needs f32", fr_op_name(op));
    struct fr_tensor *t = fr_node_new(ctx, op, FR_F32, a->ndim, a->ne, 1, &a);
    if (t)
        t->params[0].i = ax;
    return t;
}

struct fr_tensor *fr_softmax(struct fr_ctx *ctx, struct fr_tensor *a, int axis)
{
    return softmax_like(ctx, FR_OP_SOFTMAX, a, axis);
}

struct fr_tensor *fr_log_softmax(struct fr_ctx *ctx, struct fr_tensor *a, int axis)
{
    return softmax_like(ctx, FR_OP_LOG_SOFTMAX, a, axis);
}

static enum fr_status bwd(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0];
    if (!fr_needs_grad(a))
        return FR_STATUS_OK;
    struct fr_tensor *g = fr_node_new(ctx, op, FR_F32, a->ndim, a->ne, 2, (struct fr_tensor *[]){node, gy});
    if (g)
        g->params[0].i = node->params[0].i;
    return fr_grad_acc(ctx, a, g);
}

enum fr_status fr_bwd_softmax(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd(ctx, FR_OP_SOFTMAX_BWD, node, gy);
}

enum fr_status fr_bwd_log_softmax(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd(ctx, FR_OP_LOG_SOFTMAX_BWD, node, gy);
}
