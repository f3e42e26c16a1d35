/* OpenCL launchers of the optimizer ops (ops_optim.def): gradient sum of squares, clip scale, step
 * scalars, in-place SGD and Adam/AdamW updates. Kernels in cl/optim.cl; CPU kernels in src/cpu/optim.c. */
#include "opencl/opencl_internal.h"

/* An absent source: any buffer (never read) and a view of zero elements. */
static void arg_absent(struct fr_cl_launch *L, const struct fr_tensor *stand_in)
{
    cl_mem mem = NULL;
    size_t off;
    if (L->st == FR_STATUS_OK && (L->st = fr_cl_storage(L->cl, stand_in, &mem, &off)) != FR_STATUS_OK)
        return;
    fr_clt p;
    memset(&p, 0, sizeof p);
    fr_cl_arg_mem(L, mem);
    fr_cl_arg_param(L, &p);
}

static enum fr_status cl_sumsq(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "optim.cl", "opt_sumsq");
    fr_cl_arg_tensor(&L, d);
    for (int i = 0; i < FR_MAX_SRC; i++) {
        if (d->src[i])
            fr_cl_arg_tensor(&L, d->src[i]);
        else
            arg_absent(&L, d);
    }
    fr_cl_arg_int(&L, d->params[0].i);
    return fr_cl_run_1d(&L, 1); /* one work-group */
}

static enum fr_status cl_clip(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "optim.cl", "opt_clip");
    fr_cl_arg_tensor(&L, d);
    fr_cl_arg_tensor(&L, d->src[0]);
    fr_cl_arg_float(&L, d->params[0].f);
    return fr_cl_run_1d(&L, 1);
}

static enum fr_status cl_prep(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "optim.cl", "opt_prep");
    fr_cl_arg_tensor(&L, d); /* in place: d has the storage of src[0] */
    fr_cl_arg_tensor(&L, d->src[1]);
    fr_cl_arg_tensor(&L, d->src[2] ? d->src[2] : d->src[1]);
    fr_cl_arg_int(&L, d->src[2] != NULL);
    return fr_cl_run_1d(&L, 1);
}

static enum fr_status cl_sgd(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "optim.cl", "opt_sgd");
    fr_cl_arg_tensor(&L, d); /* the parameter's own storage */
    fr_cl_arg_tensor(&L, d->src[1]);
    fr_cl_arg_tensor(&L, d->src[2] ? d->src[2] : d->src[1]); /* read only when momentum != 0 */
    fr_cl_arg_tensor(&L, d->src[3]);
    for (int i = 0; i < 4; i++)
        fr_cl_arg_float(&L, d->params[i].f);
    fr_cl_arg_int(&L, d->params[4].i != 0);
    return fr_cl_run_1d(&L, fr_nelements(d));
}

static enum fr_status cl_adam(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "optim.cl", "opt_adam");
    fr_cl_arg_tensor(&L, d);
    for (int i = 1; i <= 4; i++)
        fr_cl_arg_tensor(&L, d->src[i]);
    for (int i = 0; i < 5; i++)
        fr_cl_arg_float(&L, d->params[i].f);
    fr_cl_arg_int(&L, d->params[5].i != 0);
    return fr_cl_run_1d(&L, fr_nelements(d));
}

/* The kernels index every operand as contiguous (the constructors require it); an SGD step with
 * momentum needs its buffer. */
static bool optim_supports(struct fr_cl *cl, const struct fr_tensor *d)
{
    (void)cl;
    if (d->type != FR_F32 || !fr_is_contiguous(d))
        return false;
    for (int i = 0; i < FR_MAX_SRC; i++)
        if (d->src[i] && (d->src[i]->type != FR_F32 || !fr_is_contiguous(d->src[i])))
            return false;
    if (d->op == FR_OP_SGD_STEP && d->params[2].f != 0.0f && !d->src[2])
        return false;
    return true;
}

void fr_cl_register_optim(struct fr_cl_op *t)
{
    t[FR_OP_OPT_SUMSQ] = (struct fr_cl_op){cl_sumsq, optim_supports};
    t[FR_OP_OPT_CLIP] = (struct fr_cl_op){cl_clip, optim_supports};
    t[FR_OP_OPT_PREP] = (struct fr_cl_op){cl_prep, optim_supports};
    t[FR_OP_SGD_STEP] = (struct fr_cl_op){cl_sgd, optim_supports};
    t[FR_OP_ADAM_STEP] = (struct fr_cl_op){cl_adam, optim_supports};
}
