/* Dropout and drop-path (stochastic depth): constructors and backward rules (the same mask on gy). */
#include "core/internal.h"
#include "frugal/nn.h"

static struct fr_tensor *masked(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *x, float f, int64_t salt)
{
    if (!x)
        return NULL;
    if (x->type != FR_F32)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "%s '%s': needs f32, got %s", fr_op_name(op), x->name,
                           fr_dtype_name(x->type));
    x = fr_need_cont(ctx, x);
    struct fr_tensor *t = fr_node_new(ctx, op, FR_F32, x ? x->ndim : 0, x ? x->ne : NULL, 1, &x);
    if (t) {
        t->params[0].f = f;
        t->params[1].i = (int32_t)(uint32_t)(salt < 0 ? (int64_t)t->id : salt);
    }
    return t;
}

struct fr_tensor *fr_dropout_salted(struct fr_ctx *ctx, struct fr_tensor *x, float p, uint32_t salt)
{
    if (!(p >= 0.0f && p < 1.0f))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "dropout '%s': probability %g not in [0, 1)",
                           x ? x->name : "?", p);
    return masked(ctx, FR_OP_DROPOUT, x, p, salt);
}

struct fr_tensor *fr_dropout(struct fr_ctx *ctx, struct fr_tensor *x, float p)
{
    if (!(p >= 0.0f && p < 1.0f))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "dropout '%s': probability %g not in [0, 1)",
                           x ? x->name : "?", p);
    return masked(ctx, FR_OP_DROPOUT, x, p, -1);
}

static struct fr_tensor *drop_path(struct fr_ctx *ctx, struct fr_tensor *x, float survival, int64_t salt)
{
    if (!(survival > 0.0f && survival <= 1.0f))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "drop_path '%s': survival probability %g not in (0, 1]",
                           x ? x->name : "?", survival);
    if (x && x->ndim < 1)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "drop_path '%s': needs a batch axis", x->name);
    return masked(ctx, FR_OP_DROP_PATH, x, survival, salt);
}

struct fr_tensor *fr_drop_path(struct fr_ctx *ctx, struct fr_tensor *x, float survival)
{
    return drop_path(ctx, x, survival, -1);
}

struct fr_tensor *fr_drop_path_salted(struct fr_ctx *ctx, struct fr_tensor *x, float survival, uint32_t salt)
{
    return drop_path(ctx, x, survival, salt);
}

/* y = x·m·scale with a mask m drawn from (seed, step, salt): the same op on gy regenerates m */
static enum fr_status bwd_same_mask(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *x = node->src[0];
    if (!fr_needs_grad(x))
        return FR_STATUS_OK;
    gy = fr_need_cont(ctx, gy);
    struct fr_tensor *g = fr_node_new(ctx, node->op, FR_F32, x->ndim, x->ne, 1, &gy);
    if (g)
        memcpy(g->params, node->params, sizeof g->params);
    return fr_grad_acc(ctx, x, g);
}

enum fr_status fr_bwd_dropout(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd_same_mask(ctx, node, gy);
}

enum fr_status fr_bwd_drop_path(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd_same_mask(ctx, node, gy);
}
