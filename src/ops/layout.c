/* Layout ops: reshape, permute, transpose, slice, broadcast views, contiguous copies, fill — and their gradients. */
#include "core/internal.h"

/* params of a VIEW node: i[0] = kind; PERMUTE keeps the axes in i[1..4] */
enum { VIEW_RESHAPE = 0, VIEW_PERMUTE, VIEW_SLICE, VIEW_BROADCAST };

struct fr_tensor *fr_reshape(struct fr_ctx *ctx, struct fr_tensor *a, int ndim, const int64_t *ne)
{
    if (!a)
        return NULL;
    int64_t n = 1, shape[FR_MAX_DIMS];
    int infer = -1;
    if (ndim < 1 || ndim > FR_MAX_DIMS)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "reshape: %d dims", ndim);
    for (int d = 0; d < ndim; d++) {
        shape[d] = ne[d];
        if (ne[d] == -1 && infer < 0)
            infer = d;
        else
            n *= ne[d];
    }
    if (infer >= 0 && n > 0)
        shape[infer] = fr_nelements(a) / n, n *= shape[infer];
    if (n != fr_nelements(a)) {
        char s[64];
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "reshape '%s': %s has %lld elements, target has %lld", a->name,
                           fr_tensor_shape_str(a, s, sizeof s), (long long)fr_nelements(a), (long long)n);
    }
    a = fr_need_cont(ctx, a);
    struct fr_tensor tmp = {.type = a ? a->type : FR_F32, .ndim = ndim};
    for (int d = 0; d < FR_MAX_DIMS; d++)
        tmp.ne[d] = d < ndim ? shape[d] : 1;
    fr_set_contiguous_strides(&tmp);
    struct fr_tensor *t = fr_view_new(ctx, a, ndim, shape, tmp.nb, 0);
    if (t)
        t->params[0].i = VIEW_RESHAPE;
    return t;
}

struct fr_tensor *fr_flatten(struct fr_ctx *ctx, struct fr_tensor *a)
{
    if (!a)
        return NULL;
    return fr_reshape(ctx, a, 2, (int64_t[]){a->ne[0], fr_nelements(a) / a->ne[0]});
}

struct fr_tensor *fr_permute(struct fr_ctx *ctx, struct fr_tensor *a, const int *axes)
{
    if (!a)
        return NULL;
    int64_t ne[FR_MAX_DIMS], nb[FR_MAX_DIMS];
    int seen = 0;
    for (int d = 0; d < a->ndim; d++) {
        int ax = axes[d];
        if (ax < 0 || ax >= a->ndim || (seen & (1 << ax)))
            return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "permute '%s': axes are not a permutation of 0..%d", a->name,
                               a->ndim - 1);
        seen |= 1 << ax;
        ne[d] = a->ne[ax];
        nb[d] = a->nb[ax];
    }
    struct fr_tensor *t = fr_view_new(ctx, a, a->ndim, ne, nb, 0);
    if (t) {
        t->params[0].i = VIEW_PERMUTE;
        for (int d = 0; d < a->ndim; d++)
            t->params[1 + d].i = axes[d];
    }
    return t;
}

struct fr_tensor *fr_transpose(struct fr_ctx *ctx, struct fr_tensor *a, int ax0, int ax1)
{
    if (!a)
        return NULL;
    int axes[FR_MAX_DIMS] = {0, 1, 2, 3};
    int x = fr_axis(a, ax0), y = fr_axis(a, ax1);
    if (x < 0 || y < 0)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "transpose '%s': axis out of range", a->name);
    axes[x] = y;
    axes[y] = x;
    return fr_permute(ctx, a, axes);
}

struct fr_tensor *fr_slice(struct fr_ctx *ctx, struct fr_tensor *a, int axis, int64_t start, int64_t len)
{
    if (!a)
        return NULL;
    int ax = fr_axis(a, axis);
    if (ax < 0 || start < 0 || len <= 0 || start + len > a->ne[ax])
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "slice '%s': [%lld, %lld) outside axis %d of size %lld", a->name,
                           (long long)start, (long long)(start + len), axis, ax >= 0 ? (long long)a->ne[ax] : -1LL);
    int64_t ne[FR_MAX_DIMS];
    memcpy(ne, a->ne, sizeof ne);
    ne[ax] = len;
    struct fr_tensor *t = fr_view_new(ctx, a, a->ndim, ne, a->nb, (size_t)(start * a->nb[ax]));
    if (t) {
        t->params[0].i = VIEW_SLICE;
        t->params[1].i = ax;
        t->params[2].i = (int32_t)start;
    }
    return t;
}

struct fr_tensor *fr_broadcast_to(struct fr_ctx *ctx, struct fr_tensor *a, int ndim, const int64_t *ne)
{
    if (!a)
        return NULL;
    struct fr_tensor shape = {.ndim = ndim};
    for (int d = 0; d < FR_MAX_DIMS; d++)
        shape.ne[d] = d < ndim ? ne[d] : 1;
    int n;
    int64_t out[FR_MAX_DIMS];
    if (ndim < a->ndim || !fr_broadcast_shape(a, &shape, &n, out) || memcmp(out, ne, (size_t)ndim * sizeof *ne) != 0)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "broadcast '%s': shape cannot be broadcast to the target", a->name);
    int64_t nb[FR_MAX_DIMS];
    fr_broadcast_strides(a, ndim, ne, nb);
    struct fr_tensor *t = fr_view_new(ctx, a, ndim, ne, nb, 0);
    if (t)
        t->params[0].i = VIEW_BROADCAST;
    return t;
}

struct fr_tensor *fr_cont(struct fr_ctx *ctx, struct fr_tensor *a)
{
    if (!a)
        return NULL;
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_CONT, a->type, a->ndim, a->ne, 1, &a);
    if (t)
        snprintf(t->name, sizeof t->name, "%.56s (cont)", a->name);
    return t;
}

struct fr_tensor *fr_fill(struct fr_ctx *ctx, enum fr_dtype type, int ndim, const int64_t *ne, float v)
{
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_FILL, type, ndim, ne, 0, NULL);
    if (t)
        t->params[0].f = v;
    return t;
}

enum fr_status fr_bwd_view(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0];
    if (!fr_needs_grad(a))
        return FR_STATUS_OK;
    struct fr_tensor *g = NULL;
    switch (node->params[0].i) {
    case VIEW_RESHAPE: g = fr_reshape(ctx, gy, a->ndim, a->ne); break;
    case VIEW_PERMUTE: {
        int inv[FR_MAX_DIMS];
        for (int d = 0; d < a->ndim; d++)
            inv[node->params[1 + d].i] = d;
        g = fr_permute(ctx, gy, inv);
        break;
    }
    case VIEW_BROADCAST: g = fr_sum_to(ctx, gy, a->ndim, a->ne); break;
    default:
        return fr_error(FR_STATUS_UNSUPPORTED, "backward: slices are not differentiable yet ('%s')", node->name);
    }
    return fr_grad_acc(ctx, a, g);
}

enum fr_status fr_bwd_cont(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return fr_needs_grad(node->src[0]) ? fr_grad_acc(ctx, node->src[0], gy) : FR_STATUS_OK;
}
