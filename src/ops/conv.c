/* conv2d: constructor, shape rule and backward rule (grad input, grad weight, grad bias). */
#include "core/internal.h"
#include "frugal/nn.h"

enum { P_SH, P_SW, P_PH, P_PW, P_DH, P_DW, P_GROUPS, P_RELU };

static int64_t out_size(int64_t in, int64_t k, int s, int p, int d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

struct fr_tensor *fr_conv2d_ex(struct fr_ctx *ctx, struct fr_tensor *x, struct fr_tensor *w, struct fr_tensor *bias,
                               const struct fr_conv2d_params *p)
{
    if (!x || !w)
        return NULL;
    struct fr_conv2d_params q = p ? *p : (struct fr_conv2d_params){0};
    q.stride_h = q.stride_h ? q.stride_h : 1;
    q.stride_w = q.stride_w ? q.stride_w : 1;
    q.dil_h = q.dil_h ? q.dil_h : 1;
    q.dil_w = q.dil_w ? q.dil_w : 1;
    q.groups = q.groups ? q.groups : 1;
    char sx[64], sw[64];
    fr_tensor_shape_str(x, sx, sizeof sx);
    fr_tensor_shape_str(w, sw, sizeof sw);
    if (x->type != FR_F32 || w->type != FR_F32 || (bias && bias->type != FR_F32))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "conv2d '%s': needs f32 input, weight and bias", x->name);
    if (x->ndim != 4 || w->ndim != 4)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "conv2d: input %s ('%s') and weight %s ('%s') must be 4-D", sx,
                           x->name, sw, w->name);
    if (q.stride_h < 0 || q.stride_w < 0 || q.pad_h < 0 || q.pad_w < 0 || q.dil_h < 0 || q.dil_w < 0 || q.groups < 0)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "conv2d '%s': negative stride, padding, dilation or groups",
                           w->name);
    int64_t N = x->ne[0], C = x->ne[1], O = w->ne[0];
    if (C % q.groups || O % q.groups || w->ne[1] * q.groups != C)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "conv2d: weight %s ('%s') does not fit input %s with %d group(s)", sw,
                           w->name, sx, q.groups);
    if (bias && (bias->ndim != 1 || bias->ne[0] != O))
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "conv2d: bias '%s' must be [%lld] for weight %s", bias->name,
                           (long long)O, sw);
    int64_t oh = out_size(x->ne[2], w->ne[2], q.stride_h, q.pad_h, q.dil_h);
    int64_t ow = out_size(x->ne[3], w->ne[3], q.stride_w, q.pad_w, q.dil_w);
    if (oh < 1 || ow < 1)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "conv2d: kernel of '%s' %s larger than padded input %s", w->name, sw,
                           sx);
    x = fr_need_cont(ctx, x);
    w = fr_need_cont(ctx, w);
    bias = fr_need_cont(ctx, bias);
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_CONV2D, FR_F32, 4, (int64_t[]){N, O, oh, ow}, bias ? 3 : 2,
                                      (struct fr_tensor *[]){x, w, bias});
    if (t) {
        int v[] = {q.stride_h, q.stride_w, q.pad_h, q.pad_w, q.dil_h, q.dil_w, q.groups, q.relu};
        for (int i = 0; i < 8; i++)
            t->params[i].i = v[i];
    }
    return t;
}

struct fr_tensor *fr_conv2d(struct fr_ctx *ctx, struct fr_tensor *x, struct fr_tensor *w, struct fr_tensor *bias,
                            int stride, int padding)
{
    struct fr_conv2d_params p = {.stride_h = stride, .stride_w = stride, .pad_h = padding, .pad_w = padding};
    return fr_conv2d_ex(ctx, x, w, bias, &p);
}

static struct fr_tensor *with_params(struct fr_tensor *t, const struct fr_tensor *conv)
{
    if (t)
        memcpy(t->params, conv->params, sizeof t->params);
    return t;
}

/* [N,C,...] -> [C]: the bias gradient of conv2d and batch-norm */
static struct fr_tensor *channel_sum(struct fr_ctx *ctx, struct fr_tensor *g)
{
    g = fr_need_cont(ctx, g);
    return g ? fr_node_new(ctx, FR_OP_CHANNEL_SUM, FR_F32, 1, (int64_t[]){g->ne[1]}, 1, &g) : NULL;
}

enum fr_status fr_bwd_conv2d(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *x = node->src[0], *w = node->src[1], *b = node->src[2];
    /* a fused ReLU: y > 0 exactly where the pre-activation was > 0 */
    if (node->params[P_RELU].i)
        gy = fr_node_new(ctx, FR_OP_RELU_BWD, FR_F32, 4, node->ne, 2, (struct fr_tensor *[]){node, gy});
    gy = fr_need_cont(ctx, gy);
    enum fr_status st = FR_STATUS_OK;
    if (fr_needs_grad(x))
        st = fr_grad_acc(ctx, x,
                         with_params(fr_node_new(ctx, FR_OP_CONV2D_BWD_INPUT, FR_F32, 4, x->ne, 2,
                                                 (struct fr_tensor *[]){w, gy}),
                                     node));
    if (st == FR_STATUS_OK && fr_needs_grad(w))
        st = fr_grad_acc(ctx, w,
                         with_params(fr_node_new(ctx, FR_OP_CONV2D_BWD_WEIGHT, FR_F32, 4, w->ne, 2,
                                                 (struct fr_tensor *[]){x, gy}),
                                     node));
    if (st == FR_STATUS_OK && fr_needs_grad(b))
        st = fr_grad_acc(ctx, b, channel_sum(ctx, gy));
    return st;
}
