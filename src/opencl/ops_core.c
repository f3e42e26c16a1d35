/* OpenCL launchers of the core ops (ops_core.def): layout, elementwise, matmul, reductions, softmax,
 * conversion. Kernels in cl/{layout,elementwise,gemm,reduce,softmax,convert}.cl. */
#include "opencl/opencl_internal.h"

/* --- layout --- */
static enum fr_status cl_cont(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    /* the destination is always a fresh contiguous tensor in practice: then only the source needs index math */
    bool c = fr_is_contiguous(y), four = fr_dtype_size(y->type) == 4;
    fr_cl_begin(&L, cl, "layout.cl",
                four ? (c ? "layout_cont_4_c" : "layout_cont_4") : (c ? "layout_cont_1_c" : "layout_cont_1"));
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, y->src[0]);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

/* The value is converted exactly as src/cpu/layout.c does, then passed as raw bits. */
static enum fr_status cl_fill(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    float v = y->params[0].f;
    uint32_t bits;
    if (y->type == FR_F32) {
        memcpy(&bits, &v, 4);
    } else if (y->type == FR_I32) {
        int32_t i = (int32_t)v;
        memcpy(&bits, &i, 4);
    } else {
        bits = (uint32_t)(int)FR_MAX(0.0f, FR_MIN(255.0f, v));
    }
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "layout.cl", fr_dtype_size(y->type) == 4 ? "layout_fill_4" : "layout_fill_1");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_uint(&L, bits);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

/* --- elementwise --- */
/* Begins kernel `name`, or its variant `name_c` when y and every source are contiguous with y's number of
 * elements (then no source is broadcast and element i of each is at offset + i). */
static void begin_ew(struct fr_cl_launch *L, struct fr_cl *cl, const char *name, const char *name_c,
                     const struct fr_tensor *y, int n_src)
{
    bool c = fr_is_contiguous(y);
    for (int s = 0; s < n_src && c; s++)
        c = fr_is_contiguous(y->src[s]) && fr_nelements(y->src[s]) == fr_nelements(y);
    fr_cl_begin(L, cl, "elementwise.cl", c ? name_c : name);
}
#define BEGIN_EW(L, cl, NAME, y, n_src) begin_ew(L, cl, NAME, NAME "_c", y, n_src)

static enum fr_status binary(struct fr_cl *cl, struct fr_tensor *y, const char *kernel, const char *kernel_c)
{
    struct fr_cl_launch L;
    begin_ew(&L, cl, kernel, kernel_c, y, 2);
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor_bcast(&L, y->src[0], y);
    fr_cl_arg_tensor_bcast(&L, y->src[1], y);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

static enum fr_status cl_add(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return binary(cl, y, "elementwise_add", "elementwise_add_c");
}
static enum fr_status cl_sub(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return binary(cl, y, "elementwise_sub", "elementwise_sub_c");
}
static enum fr_status cl_mul(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return binary(cl, y, "elementwise_mul", "elementwise_mul_c");
}
static enum fr_status cl_div(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return binary(cl, y, "elementwise_div", "elementwise_div_c");
}
static enum fr_status cl_relu_bwd(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return binary(cl, y, "elementwise_relu_bwd", "elementwise_relu_bwd_c");
}

static enum fr_status cl_scale(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    BEGIN_EW(&L, cl, "elementwise_scale", y, 1);
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor_bcast(&L, y->src[0], y);
    fr_cl_arg_float(&L, y->params[0].f);
    fr_cl_arg_float(&L, y->params[1].f);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

static enum fr_status cl_relu(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    BEGIN_EW(&L, cl, "elementwise_relu", y, 1);
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor_bcast(&L, y->src[0], y);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

/* --- matmul --- */
/* A rows x cols operand with element strides (sr, sc) as a row-major BLAS operand: (trans, ld). */
static bool blas_operand(int64_t rows, int64_t cols, int64_t sr, int64_t sc, bool *trans, size_t *ld)
{
    if ((sc == 1 || cols == 1) && (rows == 1 || sr >= cols)) {
        *trans = false;
        *ld = (size_t)(rows == 1 ? FR_MAX(cols, 1) : sr);
        return true;
    }
    if ((sr == 1 || rows == 1) && (cols == 1 || sc >= rows)) {
        *trans = true;
        *ld = (size_t)(cols == 1 ? FR_MAX(rows, 1) : sc);
        return true;
    }
    return false;
}

static enum fr_status cl_matmul(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *a = y->src[0], *b = y->src[1];
    bool ta = y->params[0].i != 0, tb = y->params[1].i != 0;
    int64_t m = y->ne[0], n = y->ne[1], k = ta ? a->ne[0] : a->ne[1];
    cl_mem ma, mb, mc;
    size_t oa, ob, oc;
    enum fr_status st;
    if ((st = fr_cl_storage(cl, a, &ma, &oa)) != FR_STATUS_OK || (st = fr_cl_storage(cl, b, &mb, &ob)) != FR_STATUS_OK ||
        (st = fr_cl_storage(cl, y, &mc, &oc)) != FR_STATUS_OK)
        return st;
    /* logical strides (elements) of op(A) [m,k], op(B) [k,n], C [m,n] */
    int64_t sam = (ta ? a->nb[1] : a->nb[0]) / 4, sak = (ta ? a->nb[0] : a->nb[1]) / 4;
    int64_t sbk = (tb ? b->nb[1] : b->nb[0]) / 4, sbn = (tb ? b->nb[0] : b->nb[1]) / 4;
    int64_t scm = y->nb[0] / 4, scn = y->nb[1] / 4;
    bool bta, btb, btc;
    size_t lda, ldb, ldc;
    if (cl->use_clblast && blas_operand(m, k, sam, sak, &bta, &lda) && blas_operand(k, n, sbk, sbn, &btb, &ldb) &&
        blas_operand(m, n, scm, scn, &btc, &ldc) && !btc)
        return fr_cl_sgemm(cl, bta, btb, (int)m, (int)n, (int)k, 1.0f, ma, oa / 4, lda, mb, ob / 4, ldb, 0.0f, mc,
                           oc / 4, ldc);
    return fr_cl_sgemm_strided(cl, (int)m, (int)n, (int)k, 1.0f, ma, (int)(oa / 4), (int)sam, (int)sak, mb,
                               (int)(ob / 4), (int)sbk, (int)sbn, 0.0f, mc, (int)(oc / 4), (int)scm, (int)scn);
}

/* --- reductions --- */
/* A grid of the given sizes (for kernels that only unravel indices over it). */
static fr_clt grid_of(const int64_t *ne)
{
    fr_clt p;
    memset(&p, 0, sizeof p);
    p.n = 1;
    for (int d = 0; d < 4; d++) {
        p.ne[d] = (fr_i32)ne[d];
        p.n *= p.ne[d];
    }
    return p;
}

/* The summed dims of x (size 1 in the grid, more in x) as at most two strided runs, outer then inner:
 * run = {inner length B, outer stride, inner stride}; B = 0 when they do not collapse that far. */
static void two_runs(const fr_clt *pd, const fr_clt *px, int run[3])
{
    int len[4], st[4], n = 0;
    for (int d = 0; d < 4; d++) {
        if (pd->ne[d] == px->ne[d] || px->ne[d] == 1)
            continue;
        if (n > 0 && st[n - 1] == px->st[d] * px->ne[d]) { /* continues the previous run */
            len[n - 1] *= px->ne[d];
            st[n - 1] = px->st[d];
        } else {
            len[n] = px->ne[d];
            st[n] = px->st[d];
            n++;
        }
    }
    run[0] = run[1] = run[2] = 0;
    if (n == 1) {
        run[0] = len[0];
        run[2] = st[0];
    } else if (n == 2) {
        run[0] = len[1];
        run[1] = st[0];
        run[2] = st[1];
    }
}

enum fr_status fr_cl_sum_rows(struct fr_cl *cl, const struct fr_tensor *y, const int64_t *grid,
                              const struct fr_tensor *x, float mul)
{
    fr_clt pd = grid_of(grid), py, px;
    cl_mem my, mx;
    size_t oy, ox;
    enum fr_status st;
    if ((st = fr_cl_param(y, NULL, &py)) != FR_STATUS_OK || (st = fr_cl_param(x, NULL, &px)) != FR_STATUS_OK ||
        (st = fr_cl_storage(cl, y, &my, &oy)) != FR_STATUS_OK || (st = fr_cl_storage(cl, x, &mx, &ox)) != FR_STATUS_OK)
        return st;
    int64_t rows = pd.n, len = px.n / FR_MAX(pd.n, 1);
    struct fr_cl_launch L;
    if (fr_cl_begin(&L, cl, "reduce.cl", "reduce_sum_part") != FR_STATUS_OK)
        return L.st;
    /* many outputs (each work-item its own, reads coalesced across outputs) or short rows: no split */
    if (rows >= fr_cl_fill_items(cl, L.kernel) || len < 64) {
        fr_cl_begin(&L, cl, "reduce.cl", "reduce_sum");
        fr_cl_arg_mem(&L, my);
        fr_cl_arg_param(&L, &py);
        fr_cl_arg_param(&L, &pd);
        fr_cl_arg_mem(&L, mx);
        fr_cl_arg_param(&L, &px);
        fr_cl_arg_float(&L, mul);
        return fr_cl_run_1d(&L, rows);
    }
    int lanes = fr_cl_lanes(&L, len), splits = fr_cl_splits(&L, rows, len, lanes);
    cl_mem part = my;
    if (splits > 1 && (st = fr_cl_scratch(cl, FR_CL_SCRATCH_PART, (size_t)(rows * splits) * 4, &part)) != FR_STATUS_OK)
        return st;
    fr_cl_arg_mem(&L, my);
    fr_cl_arg_param(&L, &py);
    fr_cl_arg_param(&L, &pd);
    fr_cl_arg_mem(&L, part);
    fr_cl_arg_mem(&L, mx);
    fr_cl_arg_param(&L, &px);
    fr_cl_arg_float(&L, mul);
    fr_cl_arg_int(&L, splits);
    int run[3];
    two_runs(&pd, &px, run);
    for (int k = 0; k < 3; k++)
        fr_cl_arg_int(&L, run[k]);
    if ((st = fr_cl_run_2d(&L, (int64_t)lanes * splits, rows, (size_t)lanes, 1)) != FR_STATUS_OK || splits == 1)
        return st;
    return fr_cl_sum_parts(cl, my, &py, part, splits, splits, 1, mul);
}

enum fr_status fr_cl_sum_parts(struct fr_cl *cl, cl_mem y, const fr_clt *py, cl_mem part, int splits, int istride,
                               int sstride, float mul)
{
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "reduce.cl", "reduce_parts");
    fr_cl_arg_mem(&L, y);
    fr_cl_arg_param(&L, py);
    fr_cl_arg_mem(&L, part);
    fr_cl_arg_int(&L, splits);
    fr_cl_arg_int(&L, istride);
    fr_cl_arg_int(&L, sstride);
    fr_cl_arg_float(&L, mul);
    return fr_cl_run_1d(&L, py->n);
}

static enum fr_status cl_sum(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return fr_cl_sum_rows(cl, y, y->ne, y->src[0], 1.0f);
}
static enum fr_status cl_mean(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return fr_cl_sum_rows(cl, y, y->ne, y->src[0], (float)y->src[0]->ne[y->params[0].i]);
}

static enum fr_status cl_max(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "reduce.cl", "reduce_max");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, y->src[0]);
    fr_cl_arg_int(&L, y->params[0].i);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

static enum fr_status cl_max_bwd(struct fr_cl *cl, struct fr_tensor *gx, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *ym = gx->src[1];
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "reduce.cl", "reduce_max_bwd");
    fr_cl_arg_tensor(&L, gx);
    fr_cl_arg_tensor(&L, gx->src[0]);
    fr_cl_arg_tensor(&L, ym);
    fr_cl_arg_tensor_bcast(&L, gx->src[2], ym);
    fr_cl_arg_int(&L, gx->params[0].i);
    return fr_cl_run_1d(&L, fr_nelements(ym));
}

/* the destination's sizes aligned to the source's trailing dims (size 1 on summed dims) */
static enum fr_status cl_sum_to(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *x = y->src[0];
    int64_t ne[4];
    int off = x->ndim - y->ndim;
    for (int d = 0; d < 4; d++) {
        int dy = d - off;
        ne[d] = (dy >= 0 && dy < y->ndim) ? y->ne[dy] : 1;
    }
    return fr_cl_sum_rows(cl, y, ne, x, 1.0f);
}

/* --- softmax --- */
static fr_clt row_grid(const struct fr_tensor *t, int axis)
{
    fr_clt p;
    memset(&p, 0, sizeof p);
    p.n = 1;
    for (int d = 0; d < 4; d++) {
        p.ne[d] = d == axis ? 1 : (fr_i32)t->ne[d];
        p.n *= p.ne[d];
    }
    return p;
}

static enum fr_status softmax(struct fr_cl *cl, struct fr_tensor *y, bool log_out)
{
    int axis = y->params[0].i;
    fr_clt pr = row_grid(y, axis);
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "softmax.cl", "softmax_fwd");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, y->src[0]);
    fr_cl_arg_param(&L, &pr);
    fr_cl_arg_int(&L, axis);
    fr_cl_arg_int(&L, log_out);
    return fr_cl_run_1d(&L, pr.n);
}

static enum fr_status softmax_bwd(struct fr_cl *cl, struct fr_tensor *gx, bool log_out)
{
    int axis = gx->params[0].i;
    fr_clt pr = row_grid(gx, axis);
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "softmax.cl", "softmax_bwd");
    fr_cl_arg_tensor(&L, gx);
    fr_cl_arg_tensor_bcast(&L, gx->src[0], gx);
    fr_cl_arg_tensor_bcast(&L, gx->src[1], gx);
    fr_cl_arg_param(&L, &pr);
    fr_cl_arg_int(&L, axis);
    fr_cl_arg_int(&L, log_out);
    return fr_cl_run_1d(&L, pr.n);
}

static enum fr_status cl_softmax(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return softmax(cl, y, false);
}
static enum fr_status cl_log_softmax(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return softmax(cl, y, true);
}
static enum fr_status cl_softmax_bwd(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return softmax_bwd(cl, y, false);
}
static enum fr_status cl_log_softmax_bwd(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    return softmax_bwd(cl, y, true);
}

/* --- conversion --- */
static enum fr_status cl_convert(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    char name[32];
    snprintf(name, sizeof name, "convert_%s_%s", fr_dtype_name(y->type), fr_dtype_name(y->src[0]->type));
    cl_float4 mean, stdv;
    for (int c = 0; c < 4; c++) {
        mean.s[c] = y->params[2 + c].f;
        stdv.s[c] = y->params[6 + c].f;
    }
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "convert.cl", name);
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, y->src[0]);
    fr_cl_arg_int(&L, y->params[0].i);
    fr_cl_arg_float(&L, y->params[1].f);
    fr_cl_arg_bytes(&L, &mean, sizeof mean);
    fr_cl_arg_bytes(&L, &stdv, sizeof stdv);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

/* Layout and conversion ops take every dtype. */
static bool any_dtype(struct fr_cl *cl, const struct fr_tensor *y)
{
    (void)cl;
    return (unsigned)y->type < FR_DTYPE_COUNT && (!y->src[0] || (unsigned)y->src[0]->type < FR_DTYPE_COUNT);
}

void fr_cl_register_core(struct fr_cl_op *t)
{
    t[FR_OP_CONT] = (struct fr_cl_op){cl_cont, any_dtype};
    t[FR_OP_FILL] = (struct fr_cl_op){cl_fill, any_dtype};
    t[FR_OP_ADD] = (struct fr_cl_op){cl_add, NULL};
    t[FR_OP_SUB] = (struct fr_cl_op){cl_sub, NULL};
    t[FR_OP_MUL] = (struct fr_cl_op){cl_mul, NULL};
    t[FR_OP_DIV] = (struct fr_cl_op){cl_div, NULL};
    t[FR_OP_SCALE] = (struct fr_cl_op){cl_scale, NULL};
    t[FR_OP_RELU] = (struct fr_cl_op){cl_relu, NULL};
    t[FR_OP_RELU_BWD] = (struct fr_cl_op){cl_relu_bwd, NULL};
    t[FR_OP_MATMUL] = (struct fr_cl_op){cl_matmul, NULL};
    t[FR_OP_SUM] = (struct fr_cl_op){cl_sum, NULL};
    t[FR_OP_MEAN] = (struct fr_cl_op){cl_mean, NULL};
    t[FR_OP_MAX] = (struct fr_cl_op){cl_max, NULL};
    t[FR_OP_MAX_BWD] = (struct fr_cl_op){cl_max_bwd, NULL};
    t[FR_OP_SUM_TO] = (struct fr_cl_op){cl_sum_to, NULL};
    t[FR_OP_SOFTMAX] = (struct fr_cl_op){cl_softmax, NULL};
    t[FR_OP_LOG_SOFTMAX] = (struct fr_cl_op){cl_log_softmax, NULL};
    t[FR_OP_SOFTMAX_BWD] = (struct fr_cl_op){cl_softmax_bwd, NULL};
    t[FR_OP_LOG_SOFTMAX_BWD] = (struct fr_cl_op){cl_log_softmax_bwd, NULL};
    t[FR_OP_CONVERT] = (struct fr_cl_op){cl_convert, any_dtype};
}
