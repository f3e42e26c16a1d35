/* Matrix multiplication C = op(A)·op(B) on 2D f32 tensors, and its gradient. */
#include "core/internal.h"

struct fr_tensor *fr_matmul(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b, bool trans_a, bool trans_b)
{
    if (!a || !b)
        return NULL;
    if (a->ndim != 2 || b->ndim != 2 || a->type != FR_F32 || b->type != FR_F32)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "matmul: needs 2D f32 tensors ('%s' %dD %s, '%s' %dD %s)", a->name,
                           a->ndim, fr_dtype_name(a->type), b->name, b->ndim, fr_dtype_name(b->type));
    int64_t m = trans_a ? a->ne[1] : a->ne[0], ka = trans_a ? a->ne[0] : a->ne[1];
    int64_t kb = trans_b ? b->ne[1] : b->ne[0], n = trans_b ? b->ne[0] : b->ne[1];
    if (ka != kb)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "matmul: inner sizes differ ('%s' gives %lld, '%s' gives %lld)",
                           a->name, (long long)ka, b->name, (long long)kb);
    a = fr_need_cont(ctx, a);
    b = fr_need_cont(ctx, b);
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_MATMUL, FR_F32, 2, (int64_t[]){m, n}, 2, (struct fr_tensor *[]){a, b});
    if (t) {
        t->params[0].i = trans_a;
        t->params[1].i = trans_b;
    }
    return t;
}

enum fr_status fr_bwd_matmul(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0], *b = node->src[1];
    bool ta = node->params[0].i, tb = node->params[1].i;
    enum fr_status st = FR_STATUS_OK;
    if (fr_needs_grad(a)) {
        struct fr_tensor *ga = !ta ? fr_matmul(ctx, gy, b, false, !tb) /* dC·op(B)^T */
                                   : fr_matmul(ctx, b, gy, tb, true);  /* (dC·op(B)^T)^T */
        st = fr_grad_acc(ctx, a, ga);
    }
    if (st == FR_STATUS_OK && fr_needs_grad(b)) {
        struct fr_tensor *gb = !tb ? fr_matmul(ctx, a, gy, !ta, false) /* op(A)^T·dC */
                                   : fr_matmul(ctx, gy, a, true, ta);  /* (op(A)^T·dC)^T */
        st = fr_grad_acc(ctx, b, gb);
    }
    return st;
}
