/* Pooling: max-pool2d, avg-pool2d (padding, ceil_mode), adaptive avg-pool2d (constructors, shape rules, backward
 * rules) and global average pool. */
#include "core/internal.h"
#include "frugal/nn.h"
#include "nn_math.h"

static struct fr_tensor *set_params(struct fr_tensor *t, int kernel, int stride, int padding,
                                    const struct fr_pool2d_params *pp)
{
    if (t) {
        t->params[0].i = kernel;
        t->params[1].i = stride;
        t->params[2].i = padding;
        t->params[3].i = pp->ceil_mode;
        t->params[4].i = t->op == FR_OP_AVGPOOL2D && pp->exclude_pad;
    }
    return t;
}

static struct fr_tensor *pool(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *x, const struct fr_pool2d_params *pp)
{
    if (!x)
        return NULL;
    if (!pp)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "%s: no settings", fr_op_name(op));
    char sx[64];
    fr_tensor_shape_str(x, sx, sizeof sx);
    if (x->type != FR_F32 || x->ndim != 4)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: input '%s' must be f32 [N,C,H,W], got %s", fr_op_name(op),
                           x->name, sx);
    int kernel = pp->kernel, stride = pp->stride > 0 ? pp->stride : pp->kernel, padding = pp->pad;
    if (kernel < 1 || padding < 0 || 2 * padding > kernel)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT,
                           "%s '%s': kernel %d with padding %d (need kernel >= 1, 0 <= padding <= kernel/2)",
                           fr_op_name(op), x->name, kernel, padding);
    if (x->ne[2] > INT32_MAX / 4 || x->ne[3] > INT32_MAX / 4)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: input '%s' %s too large", fr_op_name(op), x->name, sx);
    int oh = fr_pool_out((int)x->ne[2], kernel, stride, padding, pp->ceil_mode);
    int ow = fr_pool_out((int)x->ne[3], kernel, stride, padding, pp->ceil_mode);
    if (oh < 1 || ow < 1)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: kernel %d larger than padded input '%s' %s", fr_op_name(op),
                           kernel, x->name, sx);
    x = fr_need_cont(ctx, x);
    int64_t ne[4] = {x ? x->ne[0] : 0, x ? x->ne[1] : 0, oh, ow};
    struct fr_tensor *src[2] = {x, NULL};
    if (op == FR_OP_MAXPOOL2D && pp->keep_index) /* the forward stores its argmax: the backward reads no window */
        src[1] = set_params(fr_node_new(ctx, FR_OP_MAXPOOL2D_INDEX, FR_I32, 4, ne, 1, &x), kernel, stride, padding, pp);
    return set_params(fr_node_new(ctx, op, FR_F32, 4, ne, src[1] ? 2 : 1, src), kernel, stride, padding, pp);
}

struct fr_tensor *fr_maxpool2d_ex(struct fr_ctx *ctx, struct fr_tensor *x, const struct fr_pool2d_params *p)
{
    return pool(ctx, FR_OP_MAXPOOL2D, x, p);
}

struct fr_tensor *fr_avgpool2d_ex(struct fr_ctx *ctx, struct fr_tensor *x, const struct fr_pool2d_params *p)
{
    return pool(ctx, FR_OP_AVGPOOL2D, x, p);
}

struct fr_tensor *fr_maxpool2d(struct fr_ctx *ctx, struct fr_tensor *x, int kernel, int stride, int padding)
{
    return pool(ctx, FR_OP_MAXPOOL2D, x, &(struct fr_pool2d_params){kernel, stride, padding, false, false, false});
}

struct fr_tensor *fr_avgpool2d(struct fr_ctx *ctx, struct fr_tensor *x, int kernel, int stride, int padding)
{
    return pool(ctx, FR_OP_AVGPOOL2D, x, &(struct fr_pool2d_params){kernel, stride, padding, false, false, false});
}

struct fr_tensor *fr_adaptive_avgpool2d(struct fr_ctx *ctx, struct fr_tensor *x, int oh, int ow)
{
    if (!x)
        return NULL;
    char sx[64];
    fr_tensor_shape_str(x, sx, sizeof sx);
    if (x->type != FR_F32 || x->ndim != 4)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "adaptive_avgpool2d: input '%s' must be f32 [N,C,H,W], got %s", x->name,
                           sx);
    if (oh < 1 || ow < 1 || oh > 65536 || ow > 65536 || x->ne[2] > 65536 || x->ne[3] > 65536)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "adaptive_avgpool2d '%s' %s: output %dx%d not valid",
                           x->name, sx, oh, ow);
    x = fr_need_cont(ctx, x);
    return fr_node_new(ctx, FR_OP_ADAPTIVE_AVGPOOL2D, FR_F32, 4,
                       (int64_t[]){x ? x->ne[0] : 0, x ? x->ne[1] : 0, oh, ow}, 1, &x);
}

/* A composition of core ops, so every backend and the backward come for free. */
struct fr_tensor *fr_global_avgpool2d(struct fr_ctx *ctx, struct fr_tensor *x)
{
    if (!x)
        return NULL;
    if (x->type != FR_F32 || x->ndim != 4) {
        char sx[64];
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "global_avgpool2d: input '%s' must be f32 [N,C,H,W], got %s",
                           x->name, fr_tensor_shape_str(x, sx, sizeof sx));
    }
    int64_t n = x->ne[0], c = x->ne[1];
    struct fr_tensor *m = fr_mean(ctx, fr_reshape(ctx, x, 3, (int64_t[]){n, c, x->ne[2] * x->ne[3]}), 2);
    return fr_reshape(ctx, m, 4, (int64_t[]){n, c, 1, 1});
}

static struct fr_tensor *with_params(struct fr_tensor *t, const struct fr_tensor *node)
{
    if (t)
        memcpy(t->params, node->params, sizeof t->params);
    return t;
}

/* from the stored argmax when the forward kept it, else from x (the windows searched again) */
enum fr_status fr_bwd_maxpool2d(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *x = node->src[0], *from = node->src[1] ? node->src[1] : x;
    if (!fr_needs_grad(x))
        return FR_STATUS_OK;
    gy = fr_need_cont(ctx, gy);
    return fr_grad_acc(ctx, x,
                       with_params(fr_node_new(ctx, FR_OP_MAXPOOL2D_BWD, FR_F32, 4, x->ne, 2,
                                               (struct fr_tensor *[]){from, gy}),
                                   node));
}

enum fr_status fr_bwd_avgpool2d(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *x = node->src[0];
    if (!fr_needs_grad(x))
        return FR_STATUS_OK;
    gy = fr_need_cont(ctx, gy);
    return fr_grad_acc(ctx, x, with_params(fr_node_new(ctx, FR_OP_AVGPOOL2D_BWD, FR_F32, 4, x->ne, 1, &gy), node));
}

enum fr_status fr_bwd_adaptive_avgpool2d(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *x = node->src[0];
    if (!fr_needs_grad(x))
        return FR_STATUS_OK;
    gy = fr_need_cont(ctx, gy);
    return fr_grad_acc(ctx, x, fr_node_new(ctx, FR_OP_ADAPTIVE_AVGPOOL2D_BWD, FR_F32, 4, x->ne, 1, &gy));
}
