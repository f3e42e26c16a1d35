/* OpenCL launchers of the loss ops (ops_loss.def): cross-entropy, soft-target CE, distillation, MSE and
 * their gradients, FixMatch's confident targets. Kernels in cl/loss.cl (kind numbers as there); CPU kernels in src/cpu/loss.c. */
#include "opencl/opencl_internal.h"

enum { K_CE = 0, K_SOFT = 1, K_DISTILL = 2, K_MSE = 3 };

/* Source slots of each kind: (z, t or labels, ...): n_fwd forward sources, gy after them. */
static int n_fwd_of(int kind) { return kind == K_DISTILL ? 4 : 3; }

static enum fr_status launch(struct fr_cl *cl, struct fr_tensor *d, int kind, bool bwd)
{
    struct fr_tensor *z = d->src[0];
    int n_fwd = n_fwd_of(kind);
    struct fr_tensor *t = kind == K_CE ? NULL : d->src[1];
    struct fr_tensor *y = kind == K_CE ? d->src[1] : kind == K_DISTILL ? d->src[2] : NULL;
    struct fr_tensor *w = d->src[n_fwd - 1];
    int64_t n = z->ne[0], k = fr_nelements(z) / FR_MAX(n, 1);
    float f0 = 0.0f, inv_t = 1.0f, temp = 1.0f;
    if (kind == K_CE) {
        f0 = d->params[0].f;
    } else if (kind == K_DISTILL) {
        f0 = d->params[0].f;
        temp = d->params[1].f;
        inv_t = 1.0f / temp; /* on the host, rounded exactly as src/cpu/loss.c does */
    }
    struct fr_cl_launch L;
    if (fr_cl_begin(&L, cl, "loss.cl", bwd ? "loss_bwd" : "loss_fwd") != FR_STATUS_OK)
        return L.st;
    int lanes = 1, splits = 1;
    cl_mem part = NULL;
    if (!bwd) {
        /* rows over chunk x lane: each lane takes whole rows */
        lanes = fr_cl_lanes(&L, n);
        splits = fr_cl_splits(&L, 1, n, lanes);
        size_t off;
        enum fr_status st = splits > 1 ? fr_cl_scratch(cl, FR_CL_SCRATCH_PART, (size_t)splits * 4, &part)
                                       : fr_cl_storage(cl, d, &part, &off);
        if (st != FR_STATUS_OK)
            return st;
    }
    fr_cl_arg_tensor(&L, d);
    if (!bwd)
        fr_cl_arg_mem(&L, part);
    fr_cl_arg_tensor(&L, z);
    fr_cl_arg_tensor(&L, t ? t : z); /* stand-ins for absent sources are never read */
    fr_cl_arg_tensor(&L, y ? y : z);
    fr_cl_arg_tensor(&L, w ? w : z);
    if (bwd)
        fr_cl_arg_tensor(&L, d->src[n_fwd]);
    fr_cl_arg_int(&L, kind);
    fr_cl_arg_int(&L, y != NULL);
    fr_cl_arg_int(&L, w != NULL);
    fr_cl_arg_int(&L, (int)n);
    fr_cl_arg_int(&L, (int)k);
    fr_cl_arg_float(&L, f0);
    fr_cl_arg_float(&L, inv_t);
    fr_cl_arg_float(&L, temp);
    if (bwd) {
        /* runs of classes: as many as the row allows (a power of two >= k) while the launch fills the device */
        int64_t most = 1;
        while (most < k)
            most *= 2;
        int64_t run = fr_cl_run_length(&L, n, k, most);
        fr_cl_arg_int(&L, (int)run);
        return fr_cl_run_2d(&L, (k + run - 1) / run, n, 0, 0);
    }
    fr_cl_arg_int(&L, splits);
    enum fr_status st = fr_cl_run_2d(&L, (int64_t)lanes * splits, 1, (size_t)lanes, 1);
    if (st != FR_STATUS_OK || splits == 1)
        return st;
    fr_cl_begin(&L, cl, "loss.cl", "loss_fwd_final");
    fr_cl_arg_tensor(&L, d);
    fr_cl_arg_mem(&L, part);
    fr_cl_arg_int(&L, splits);
    fr_cl_arg_int(&L, (int)n);
    return fr_cl_run_1d(&L, 1);
}

/* f32 except the labels (i32); every source contiguous, as the constructors make them. */
static bool loss_supports(struct fr_cl *cl, const struct fr_tensor *d)
{
    (void)cl;
    if (d->type != FR_F32 || !d->src[0] || d->src[0]->ne[0] < 1)
        return false;
    bool ce = d->op == FR_OP_CROSS_ENTROPY || d->op == FR_OP_CROSS_ENTROPY_BWD;
    bool distill = d->op == FR_OP_DISTILL || d->op == FR_OP_DISTILL_BWD;
    for (int i = 0; i < FR_MAX_SRC; i++) {
        const struct fr_tensor *s = d->src[i];
        if (!s)
            continue;
        bool labels = (ce && i == 1) || (distill && i == 2);
        if (s->type != (labels ? FR_I32 : FR_F32) || !fr_is_contiguous(s))
            return false;
    }
    return fr_is_contiguous(d);
}

static enum fr_status cl_ce(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    return launch(cl, d, K_CE, false);
}
static enum fr_status cl_ce_bwd(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    return launch(cl, d, K_CE, true);
}
static enum fr_status cl_soft(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    return launch(cl, d, K_SOFT, false);
}
static enum fr_status cl_soft_bwd(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    return launch(cl, d, K_SOFT, true);
}
static enum fr_status cl_distill(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    return launch(cl, d, K_DISTILL, false);
}
static enum fr_status cl_distill_bwd(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    return launch(cl, d, K_DISTILL, true);
}
static enum fr_status cl_mse(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    return launch(cl, d, K_MSE, false);
}
static enum fr_status cl_mse_bwd(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    return launch(cl, d, K_MSE, true);
}

static enum fr_status cl_pseudo_targets(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_tensor *z = d->src[0];
    int64_t n = z->ne[0], k = fr_nelements(z) / FR_MAX(n, 1);
    struct fr_cl_launch L;
    if (fr_cl_begin(&L, cl, "loss.cl", "pseudo_targets") != FR_STATUS_OK)
        return L.st;
    fr_cl_arg_tensor(&L, d);
    fr_cl_arg_tensor(&L, z);
    fr_cl_arg_int(&L, (int)n);
    fr_cl_arg_int(&L, (int)k);
    fr_cl_arg_float(&L, d->params[0].f);
    fr_cl_arg_float(&L, d->params[1].f);
    return fr_cl_run_1d(&L, n);
}

void fr_cl_register_loss(struct fr_cl_op *t)
{
    t[FR_OP_PSEUDO_TARGETS] = (struct fr_cl_op){cl_pseudo_targets, loss_supports};
    t[FR_OP_CROSS_ENTROPY] = (struct fr_cl_op){cl_ce, loss_supports};
    t[FR_OP_CROSS_ENTROPY_BWD] = (struct fr_cl_op){cl_ce_bwd, loss_supports};
    t[FR_OP_SOFT_CROSS_ENTROPY] = (struct fr_cl_op){cl_soft, loss_supports};
    t[FR_OP_SOFT_CROSS_ENTROPY_BWD] = (struct fr_cl_op){cl_soft_bwd, loss_supports};
    t[FR_OP_DISTILL] = (struct fr_cl_op){cl_distill, loss_supports};
    t[FR_OP_DISTILL_BWD] = (struct fr_cl_op){cl_distill_bwd, loss_supports};
    t[FR_OP_MSE] = (struct fr_cl_op){cl_mse, loss_supports};
    t[FR_OP_MSE_BWD] = (struct fr_cl_op){cl_mse_bwd, loss_supports};
}
