/* OpenCL launchers of the optimizer ops (ops_optim.def): gradient sum of squares, clip scale, step
 * scalars, in-place SGD and Adam/AdamW updates (consecutive update nodes of a graph in one launch).
 * Kernels in cl/optim.cl; CPU kernels in src/cpu/optim.c. */
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
    int carry = d->params[0].i;
    int64_t T = 0;
    for (int i = 0; i < FR_MAX_SRC; i++)
        if (d->src[i] && i != carry)
            T += fr_nelements(d->src[i]);
    struct fr_cl_launch L;
    if (fr_cl_begin(&L, cl, "optim.cl", "opt_sumsq_part") != FR_STATUS_OK)
        return L.st;
    int lanes = fr_cl_lanes(&L, T), splits = fr_cl_splits(&L, 1, T, lanes);
    cl_mem part;
    size_t off;
    enum fr_status st = splits > 1 ? fr_cl_scratch(cl, FR_CL_SCRATCH_PART, (size_t)splits * 4, &part)
                                   : fr_cl_storage(cl, d, &part, &off);
    if (st != FR_STATUS_OK)
        return st;
    fr_cl_arg_tensor(&L, d);
    fr_cl_arg_mem(&L, part);
    for (int i = 0; i < FR_MAX_SRC; i++) {
        if (d->src[i])
            fr_cl_arg_tensor(&L, d->src[i]);
        else
            arg_absent(&L, d);
    }
    fr_cl_arg_int(&L, carry);
    fr_cl_arg_int(&L, splits);
    if ((st = fr_cl_run_2d(&L, (int64_t)lanes * splits, 1, (size_t)lanes, 1)) != FR_STATUS_OK || splits == 1)
        return st;
    fr_cl_begin(&L, cl, "optim.cl", "opt_sumsq_final");
    fr_cl_arg_tensor(&L, d);
    fr_cl_arg_mem(&L, part);
    fr_cl_arg_int(&L, splits);
    fr_cl_arg_tensor(&L, carry >= 0 ? d->src[carry] : d);
    fr_cl_arg_int(&L, carry >= 0);
    return fr_cl_run_1d(&L, 1);
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

static enum fr_status cl_ema(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "optim.cl", "opt_ema");
    fr_cl_arg_tensor(&L, d); /* the average's own storage */
    fr_cl_arg_tensor(&L, d->src[1]);
    fr_cl_arg_tensor(&L, d->src[2]);
    fr_cl_arg_float(&L, d->params[0].f);
    return fr_cl_run_1d(&L, fr_nelements(d));
}

/* --- every update of a step in one launch --- */
/* One table row per parameter tensor (cl/optim.cl, FR_OPT_TAB ints): first global element, element offsets
 * of the parameter, gradient, first and second moment, lr_mult and weight decay as float bits. */
#define OPT_TAB 8

/* node j can join a launch with node d0: same op, step scalars and other hyper-parameters, and every
 * operand in the same buffer as d0's */
static bool joins(struct fr_cl *cl, const struct fr_tensor *d0, const struct fr_tensor *d, const cl_mem *mem, int n_ops)
{
    if (d->op != d0->op)
        return false;
    bool adam = d0->op == FR_OP_ADAM_STEP;
    if (d->src[adam ? 4 : 3] != d0->src[adam ? 4 : 3] || (!adam && (d->src[2] != NULL) != (d0->src[2] != NULL)))
        return false;
    for (int k = 2; k < (adam ? 6 : 5); k++) /* momentum, dampening, Nesterov / betas, eps, decoupled */
        if (memcmp(&d->params[k], &d0->params[k], sizeof d->params[k]) != 0)
            return false;
    for (int s = 0; s < n_ops; s++) {
        cl_mem m;
        size_t off;
        if (fr_cl_storage(cl, s == 0 ? d : d->src[s], &m, &off) != FR_STATUS_OK || m != mem[s])
            return false;
    }
    return true;
}

/* node k updates storage that one of nodes[0..k) updates too (a parameter stepped twice): not in one launch */
static bool updates_twice(struct fr_cl *cl, struct fr_tensor **nodes, int k)
{
    cl_mem mk, mj;
    size_t ok, oj;
    if (fr_cl_storage(cl, nodes[k], &mk, &ok) != FR_STATUS_OK)
        return true;
    for (int j = 0; j < k; j++)
        if (fr_cl_storage(cl, nodes[j], &mj, &oj) != FR_STATUS_OK ||
            (mj == mk && ok < oj + fr_nbytes(nodes[j]) && oj < ok + fr_nbytes(nodes[k])))
            return true;
    return false;
}

static enum fr_status cl_sgd(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex);
static enum fr_status cl_adam(struct fr_cl *cl, struct fr_tensor *d, const struct fr_exec *ex);

static enum fr_status group_step(struct fr_cl *cl, struct fr_tensor **nodes, int n, const struct fr_exec *ex,
                                 int *n_done)
{
    struct fr_tensor *d0 = nodes[0];
    bool adam = d0->op == FR_OP_ADAM_STEP;
    int n_ops = adam ? 4 : d0->src[2] ? 3 : 2; /* parameter (the node's own storage), gradient, moments */
    cl_mem mem[4];
    size_t off;
    enum fr_status st = FR_STATUS_OK;
    for (int s = 0; s < n_ops && st == FR_STATUS_OK; s++)
        st = fr_cl_storage(cl, s == 0 ? d0 : d0->src[s], &mem[s], &off);
    /* the members: nodes[0] and the updates that follow it, views (no work) in between skipped */
    struct fr_tensor **grp = malloc((size_t)n * sizeof *grp);
    if (!grp)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
    grp[0] = d0;
    int k = 1, j = 1;
    int64_t total = fr_nelements(d0);
    for (; st == FR_STATUS_OK && j < n; j++) {
        struct fr_tensor *d = nodes[j];
        if (d->op == FR_OP_NONE || d->op == FR_OP_VIEW)
            continue;
        grp[k] = d;
        if (!joins(cl, d0, d, mem, n_ops) || total + fr_nelements(d) >= INT32_MAX || updates_twice(cl, grp, k))
            break;
        total += fr_nelements(d);
        k++;
    }
    *n_done = k == 1 ? 1 : j;
    if (st != FR_STATUS_OK || k == 1) {
        free(grp);
        return st != FR_STATUS_OK ? st : adam ? cl_adam(cl, d0, ex) : cl_sgd(cl, d0, ex);
    }
    nodes = grp;
    int32_t *tab = calloc((size_t)(k + 1) * OPT_TAB, sizeof *tab);
    if (!tab) {
        free(grp);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
    }
    int64_t start = 0;
    for (int j = 0; j < k && st == FR_STATUS_OK; j++) {
        int32_t *e = tab + j * OPT_TAB;
        e[0] = (int32_t)start;
        for (int s = 0; s < n_ops && st == FR_STATUS_OK; s++) {
            cl_mem m;
            st = fr_cl_storage(cl, s == 0 ? nodes[j] : nodes[j]->src[s], &m, &off);
            e[1 + s] = (int32_t)(off / sizeof(float));
        }
        memcpy(&e[5], &nodes[j]->params[0].f, 4); /* lr_mult */
        memcpy(&e[6], &nodes[j]->params[1].f, 4); /* weight decay */
        start += fr_nelements(nodes[j]);
    }
    tab[k * OPT_TAB] = (int32_t)start;
    cl_mem table = NULL;
    if (st == FR_STATUS_OK)
        st = fr_cl_table(cl, tab, (size_t)(k + 1) * OPT_TAB * sizeof *tab, &table);
    free(tab);
    free(grp);
    if (st != FR_STATUS_OK)
        return st;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "optim.cl", adam ? "opt_adam_multi" : "opt_sgd_multi");
    for (int s = 0; s < (adam ? 4 : 3); s++)
        fr_cl_arg_mem(&L, mem[s < n_ops ? s : 0]); /* without momentum: a stand-in never read */
    fr_cl_arg_mem(&L, table);
    fr_cl_arg_int(&L, k);
    fr_cl_arg_tensor(&L, d0->src[adam ? 4 : 3]);
    for (int p = 2; p < (adam ? 5 : 4); p++)
        fr_cl_arg_float(&L, d0->params[p].f);
    fr_cl_arg_int(&L, d0->params[adam ? 5 : 4].i != 0);
    return fr_cl_run_1d(&L, start);
}

fr_cl_group_fn fr_cl_group_launcher(enum fr_op op)
{
    return op == FR_OP_SGD_STEP || op == FR_OP_ADAM_STEP ? group_step : NULL;
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
    t[FR_OP_EMA_STEP] = (struct fr_cl_op){cl_ema, optim_supports};
}
