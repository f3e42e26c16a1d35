/* Reverse-mode autodiff: marks what needs a gradient, runs each op's backward rule in reverse
 * topological order, sums contributions of tensors used several times, and adds the gradients. */
#include "core/graph_internal.h"

enum fr_status fr_grad_acc(struct fr_ctx *ctx, struct fr_tensor *t, struct fr_tensor *g)
{
    if (!g)
        return fr_error(fr_ctx_status(ctx) ? fr_ctx_status(ctx) : FR_STATUS_INVALID_ARGUMENT,
                        "backward: gradient of '%s' could not be built: %s", t->name, fr_last_error());
    if (!fr_same_shape(g, t)) {
        if (fr_nelements(g) == fr_nelements(t) && fr_is_contiguous(g))
            g = fr_reshape(ctx, g, t->ndim, t->ne);
        else
            g = fr_sum_to(ctx, g, t->ndim, t->ne);
        if (!g)
            return fr_error(FR_STATUS_SHAPE, "backward: gradient shape does not fit '%s': %s", t->name, fr_last_error());
    }
    t->grad = t->grad ? fr_add(ctx, t->grad, g) : g;
    return t->grad ? FR_STATUS_OK : fr_ctx_status(ctx);
}

enum fr_status fr_graph_backward(struct fr_graph *g, struct fr_tensor *loss)
{
    if (!loss)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "backward: no loss tensor");
    if (fr_nelements(loss) != 1 || loss->type != FR_F32)
        return fr_error(FR_STATUS_SHAPE, "backward: loss '%s' must be a single f32 value", loss->name);
    enum fr_status st = fr_graph_add(g, loss);
    if (st != FR_STATUS_OK)
        return st;
    loss->flags |= FR_FLAG_LOSS;
    int li = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        struct fr_tensor *t = g->nodes[i];
        t->grad = NULL;
        t->flags &= ~FR_FLAG_NEEDS_GRAD;
        if (t == loss)
            li = i;
    }
    /* forward: which tensors depend on a trainable parameter */
    for (int i = 0; i <= li; i++) {
        struct fr_tensor *t = g->nodes[i];
        bool need = (t->flags & FR_FLAG_PARAM) && !(t->flags & FR_FLAG_FROZEN);
        for (int s = 0; s < FR_MAX_SRC && !need && t->op != FR_OP_NONE; s++)
            need = fr_needs_grad(t->src[s]);
        if (need)
            t->flags |= FR_FLAG_NEEDS_GRAD;
    }
    if (!fr_needs_grad(loss))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "backward: loss '%s' depends on no trainable parameter", loss->name);
    struct fr_ctx *ctx = g->ctx;
    loss->grad = fr_fill(ctx, FR_F32, loss->ndim, loss->ne, 1.0f);
    if (!loss->grad)
        return fr_ctx_status(ctx);
    fr_tensor_set_name(loss->grad, "d(%s)", loss->name);
    /* reverse: every consumer of a tensor comes after it, so its gradient is complete when reached */
    for (int i = li; i >= 0; i--) {
        struct fr_tensor *t = g->nodes[i];
        if (!t->grad || t->op == FR_OP_NONE || !fr_needs_grad(t))
            continue;
        st = fr_op_bwd(t->op)(ctx, t, t->grad);
        if (st != FR_STATUS_OK)
            return st;
    }
    /* parameters keep their gradient in static, contiguous storage. Added last parameter first: each
     * depth-first search then brings in only the backward nodes that gradient needs, so a layer's weight
     * gradient runs as soon as its output gradient exists and the saved activations and output gradients
     * die layer by layer (first parameter first ran the whole input-gradient chain before any weight
     * gradient, keeping every layer's output gradient alive at once). */
    for (int i = li; i >= 0; i--) {
        struct fr_tensor *p = g->nodes[i];
        if (!(p->flags & FR_FLAG_PARAM) || !fr_needs_grad(p) || !p->grad)
            continue;
        if (p->grad->view_src || !fr_is_contiguous(p->grad) || (p->grad->flags & FR_FLAG_GRAD))
            p->grad = fr_cont(ctx, p->grad);
        if (!p->grad)
            return fr_ctx_status(ctx);
        p->grad->flags |= FR_FLAG_GRAD;
        fr_tensor_set_name(p->grad, "%s.grad", p->name);
        if ((st = fr_graph_add(g, p->grad)) != FR_STATUS_OK)
            return st;
    }
    return FR_STATUS_OK;
}
