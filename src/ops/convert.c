/* Dtype conversion and u8 -> f32 normalisation with per-channel mean/std, and the f32 gradient. */
#include "core/internal.h"

struct fr_tensor *fr_convert(struct fr_ctx *ctx, struct fr_tensor *a, enum fr_dtype type)
{
    if (!a)
        return NULL;
    if ((unsigned)type >= FR_DTYPE_COUNT)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "convert: bad dtype %d", (int)type);
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_CONVERT, type, a->ndim, a->ne, 1, &a);
    if (t) {
        t->params[0].i = -1;
        t->params[1].f = 1.0f;
        for (int c = 0; c < 4; c++) {
            t->params[2 + c].f = 0.0f;
            t->params[6 + c].f = 1.0f;
        }
    }
    return t;
}

struct fr_tensor *fr_normalize(struct fr_ctx *ctx, struct fr_tensor *a, int channel_axis, float scale, const float *mean,
                               const float *std, int n_ch)
{
    if (!a)
        return NULL;
    int ax = fr_axis(a, channel_axis);
    if (ax < 0 || n_ch < 1 || n_ch > 4 || (a->ne[ax] != n_ch && n_ch != 1))
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "normalize '%s': channel axis %d must have 1..4 entries matching %d means",
                           a->name, channel_axis, n_ch);
    for (int c = 0; c < n_ch; c++)
        if (!(std[c] > 0.0f))
            return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "normalize: std[%d] = %g must be > 0", c, std[c]);
    struct fr_tensor *t = fr_convert(ctx, a, FR_F32);
    if (t) {
        t->params[0].i = ax;
        t->params[1].f = scale;
        for (int c = 0; c < 4; c++) {
            t->params[2 + c].f = mean[n_ch == 1 ? 0 : FR_MIN(c, n_ch - 1)];
            t->params[6 + c].f = std[n_ch == 1 ? 0 : FR_MIN(c, n_ch - 1)];
        }
    }
    return t;
}

enum fr_status fr_bwd_convert(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0];
    if (!fr_needs_grad(a))
        return FR_STATUS_OK;
    if (a->type != FR_F32 || node->type != FR_F32 || node->params[0].i >= 0)
        return fr_error(FR_STATUS_UNSUPPORTED, "backward: convert '%s' is only differentiable f32 -> f32", node->name);
    return fr_grad_acc(ctx, a, fr_scale(ctx, gy, node->params[1].f));
}
