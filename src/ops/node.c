/* Node construction shared by every op family: new nodes, views, axes and broadcasting rules. */
#include "core/internal.h"

struct fr_tensor *fr_node_new(struct fr_ctx *ctx, enum fr_op op, enum fr_dtype type, int ndim, const int64_t *ne,
                              int n_src, struct fr_tensor *const *src)
{
    for (int s = 0; s < n_src; s++)
        if (!src[s])
            return NULL; /* an earlier constructor failed and recorded why */
    struct fr_tensor *t = fr_tensor_new(ctx, type, ndim, ne);
    if (!t)
        return NULL;
    t->op = op;
    for (int s = 0; s < n_src && s < FR_MAX_SRC; s++)
        t->src[s] = src[s];
    return t;
}

struct fr_tensor *fr_view_new(struct fr_ctx *ctx, struct fr_tensor *a, int ndim, const int64_t *ne, const int64_t *nb,
                              size_t offs)
{
    if (!a)
        return NULL;
    struct fr_tensor *t = fr_tensor_new(ctx, a->type, ndim, ne);
    if (!t)
        return NULL;
    t->op = FR_OP_VIEW;
    t->src[0] = a;
    t->view_src = a;
    t->view_offs = offs;
    for (int d = 0; d < FR_MAX_DIMS; d++)
        t->nb[d] = d < ndim ? nb[d] : (int64_t)fr_dtype_size(a->type);
    snprintf(t->name, sizeof t->name, "%.56s (view)", a->name);
    return t;
}

int fr_axis(const struct fr_tensor *t, int axis)
{
    if (axis < 0)
        axis += t->ndim;
    return axis >= 0 && axis < t->ndim ? axis : -1;
}

bool fr_broadcast_shape(const struct fr_tensor *a, const struct fr_tensor *b, int *ndim, int64_t *out)
{
    int n = FR_MAX(a->ndim, b->ndim);
    for (int d = 0; d < n; d++) {
        int da = d - (n - a->ndim), db = d - (n - b->ndim);
        int64_t x = da >= 0 ? a->ne[da] : 1, y = db >= 0 ? b->ne[db] : 1;
        if (x != y && x != 1 && y != 1)
            return false;
        out[d] = FR_MAX(x, y);
    }
    *ndim = n;
    return true;
}

void fr_broadcast_strides(const struct fr_tensor *t, int ndim, const int64_t *ne, int64_t *nb)
{
    for (int d = 0; d < FR_MAX_DIMS; d++) {
        int dt = d - (ndim - t->ndim);
        if (d >= ndim || dt < 0 || t->ne[dt] == 1 || ne[d] == 1)
            nb[d] = 0;
        else
            nb[d] = t->nb[dt];
    }
}

struct fr_tensor *fr_need_cont(struct fr_ctx *ctx, struct fr_tensor *a)
{
    if (!a || fr_is_contiguous(a))
        return a;
    return fr_cont(ctx, a);
}
