/* Collective ops over the ranks of a job: the rank sum's constructor and backward rule (sync batch-norm's statistics
 * node is built by fr_batchnorm_sync in src/ops/norm.c). */
#include "core/internal.h"

struct fr_tensor *fr_rank_sum(struct fr_ctx *ctx, struct fr_tensor *a)
{
    if (!a)
        return NULL;
    if (a->type != FR_F32)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "rank_sum: '%s' must be f32", a->name);
    a = fr_need_cont(ctx, a);
    return a ? fr_node_new(ctx, FR_OP_RANK_SUM, FR_F32, a->ndim, a->ne, 1, &a) : NULL;
}

/* y = Σ_r a_r and every rank's loss depends on y: d(loss)/d(a_r) = Σ_r gy_r */
enum fr_status fr_bwd_rank_sum(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return fr_needs_grad(node->src[0]) ? fr_grad_acc(ctx, node->src[0], fr_rank_sum(ctx, gy)) : FR_STATUS_OK;
}
