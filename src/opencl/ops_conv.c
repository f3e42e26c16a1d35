/* OpenCL launchers of conv2d, its input and weight gradients and the bias gradient (CHANNEL_SUM): Winograd
 * F(2x2, 3x3) for 3x3 stride-1 convolutions, else convolution as GEMM (im2col/col2im kernels of cl/conv.cl
 * around fr_cl_sgemm_batched: CLBlast or cl/gemm.cl; 1x1 convolutions without columns), and a direct path for
 * few channels per group (depthwise); CPU kernels in src/cpu/conv.c (Winograd for the same convolutions).
 * Columns and tiles live in the backend's scratch memory, a chunk of samples at a time. */
#include "opencl/opencl_internal.h"

enum { P_SH, P_SW, P_PH, P_PW, P_DH, P_DW, P_GROUPS, P_RELU };

struct conv {
    fr_clconv q;
    int64_t cg, og, kg, P; /* channels, outputs and GEMM depth per group; output positions per sample */
    bool one;              /* 1x1, stride 1, no padding: each sample's input is its own column matrix */
    bool direct;           /* few channels per group: direct kernels instead of GEMMs */
    int nb;                /* samples per chunk of columns */
};

/* x [n,c,h,w], w [o,c/groups,kh,kw], y [n,o,oh,ow] (the output or its gradient) of conv node `node` */
static void conv_init(struct conv *cv, struct fr_cl *cl, const struct fr_tensor *x, const struct fr_tensor *w,
                      const struct fr_tensor *y, const struct fr_tensor *node)
{
    fr_clconv *q = &cv->q;
    int v[16] = {(int)x->ne[0], (int)x->ne[1], (int)x->ne[2], (int)x->ne[3], (int)w->ne[0], (int)w->ne[2],
                 (int)w->ne[3], (int)y->ne[2], (int)y->ne[3], node->params[P_SH].i, node->params[P_SW].i,
                 node->params[P_PH].i, node->params[P_PW].i, node->params[P_DH].i, node->params[P_DW].i,
                 node->params[P_GROUPS].i};
    memcpy(q, v, sizeof v);
    cv->cg = q->c / q->groups;
    cv->og = q->o / q->groups;
    cv->kg = cv->cg * q->kh * q->kw;
    cv->P = (int64_t)q->oh * q->ow;
    cv->one = q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0;
    size_t per_sample = (size_t)FR_MAX(cv->kg, cv->og) * (size_t)cv->P * sizeof(float);
    /* GEMMs of og x kg per group pay off from a few dozen products per output; depthwise and similar
     * convolutions (and samples whose columns would not fit one allocation) run the direct kernels */
    cv->direct = cv->og * cv->kg < 64 || per_sample > cl->info.max_alloc / 2;
    cv->nb = (int)FR_MAX(1, FR_MIN((int64_t)q->n, (int64_t)(fr_cl_scratch_budget(cl) / per_sample)));
}

static void arg_conv(struct fr_cl_launch *L, const struct conv *cv) { fr_cl_arg_bytes(L, &cv->q, sizeof cv->q); }

/* element offset and buffer of a tensor */
struct opnd {
    cl_mem mem;
    size_t off;
};
static enum fr_status opnd(struct fr_cl *cl, const struct fr_tensor *t, struct opnd *o)
{
    enum fr_status st = fr_cl_storage(cl, t, &o->mem, &o->off);
    o->off /= sizeof(float);
    return st;
}

/* The column kernels' work along their columns (the last argument, cl/conv.cl): runs of up to 64 columns
 * while the device is still filled with og rows; global (ceil(cols / run), og). */
static enum fr_status run_cols(struct fr_cl_launch *L, int64_t cols, int64_t og)
{
    int64_t run = fr_cl_run_length(L, og, cols, 64);
    fr_cl_arg_int(L, (int)run);
    return fr_cl_run_2d(L, (cols + run - 1) / run, og, 0, 0);
}

/* scratch for a chunk of columns [kg, nb*P] and of outputs (or output gradients) [og, nb*P] */
static enum fr_status col_scratch(struct fr_cl *cl, const struct conv *cv, cl_mem *col, cl_mem *t)
{
    size_t ncol = (size_t)cv->nb * (size_t)cv->P;
    enum fr_status st = fr_cl_scratch(cl, FR_CL_SCRATCH_COL, (size_t)cv->kg * ncol * sizeof(float), col);
    return st != FR_STATUS_OK ? st : fr_cl_scratch(cl, FR_CL_SCRATCH_AUX, (size_t)cv->og * ncol * sizeof(float), t);
}

/* One column kernel over a chunk: (n0, nb) samples of group g. seg_w > 0: rows of that width in segments
 * (im2col, col2im; `lines` rows times `rows` in dimension 1), else runs of the nb*P columns (run_cols). */
static enum fr_status chunk_kernel(struct fr_cl *cl, const char *name, cl_mem dst, const struct fr_tensor *t,
                                   const struct conv *cv, int n0, int nb, int g, int64_t lines, int64_t seg_w,
                                   int64_t rows, bool dst_first)
{
    struct fr_cl_launch L;
    if (fr_cl_begin(&L, cl, "conv.cl", name) != FR_STATUS_OK)
        return L.st;
    if (dst_first) {
        fr_cl_arg_mem(&L, dst);
        fr_cl_arg_tensor(&L, t);
    } else {
        fr_cl_arg_tensor(&L, t);
        fr_cl_arg_mem(&L, dst);
    }
    arg_conv(&L, cv);
    fr_cl_arg_int(&L, n0);
    fr_cl_arg_int(&L, nb);
    fr_cl_arg_int(&L, g);
    if (seg_w <= 0)
        return run_cols(&L, nb * cv->P, rows);
    int seg = (int)fr_cl_run_length(&L, lines * rows, seg_w, 16); /* segments of up to 16 positions */
    fr_cl_arg_int(&L, seg);
    return fr_cl_run_2d(&L, lines * ((seg_w + seg - 1) / seg), rows, 0, 0);
}

static enum fr_status im2col(struct fr_cl *cl, cl_mem col, const struct fr_tensor *x, const struct conv *cv, int n0,
                             int nb, int g)
{
    return chunk_kernel(cl, "conv_im2col", col, x, cv, n0, nb, g, (int64_t)nb * cv->q.oh, cv->q.ow, cv->kg, true);
}

/* output gradient of group g as columns [og, nb*P] */
static enum fr_status gy_cols(struct fr_cl *cl, cl_mem t, const struct fr_tensor *gy, const struct conv *cv, int n0,
                              int nb, int g)
{
    return chunk_kernel(cl, "conv_nchw_to_cols", t, gy, cv, n0, nb, g, 0, 0, cv->og, true);
}

/* Splits of a GEMM with `outs` outputs and depth `depth` (a weight gradient) so that outputs x splits fills the
 * device, each split at least 256 deep. */
static int split_k(struct fr_cl *cl, int64_t outs, int64_t depth)
{
    struct fr_cl_launch L;
    if (fr_cl_begin(&L, cl, "reduce.cl", "reduce_parts") != FR_STATUS_OK)
        return 1;
    int64_t fill = fr_cl_fill_items(cl, L.kernel);
    return (int)FR_MAX(1, FR_MIN(FR_MIN((fill + outs - 1) / outs, depth / 256), (int64_t)FR_CL_MAX_SPLITS));
}

/* --- Winograd F(2x2, 3x3) (cl/conv.cl): 3x3, stride 1, no dilation or groups, padding <= 2, >= 8 channels
 * in and out (as the CPU path) --- */
static int64_t wino_tiles(const fr_clconv *q);
static bool wino_fits(struct fr_cl *cl, const struct conv *cv)
{
    const fr_clconv *q = &cv->q;
    /* and one sample's 16 planes fit an allocation comfortably */
    double per_sample = 16.0 * FR_MAX(q->c, q->o) * (double)wino_tiles(q) * sizeof(float);
    return q->kh == 3 && q->kw == 3 && q->sh == 1 && q->sw == 1 && q->dh == 1 && q->dw == 1 && q->groups == 1 &&
           q->ph <= 2 && q->pw <= 2 && q->c >= 8 && q->o >= 8 && per_sample <= (double)cl->info.max_alloc / 2;
}

/* tiles per sample of conv q and the samples per chunk whose 16 planes of max(c, o) rows fit the budget */
static int64_t wino_tiles(const fr_clconv *q) { return (int64_t)((q->oh + 1) / 2) * ((q->ow + 1) / 2); }
static int wino_chunk(struct fr_cl *cl, const fr_clconv *q)
{
    size_t per_sample = (size_t)16 * (size_t)FR_MAX(q->c, q->o) * (size_t)wino_tiles(q) * sizeof(float);
    return (int)FR_MAX(1, FR_MIN((int64_t)q->n, (int64_t)(fr_cl_scratch_budget(cl) / per_sample)));
}

/* a Winograd kernel over the tile columns of a chunk: global (nb*T, rows) */
static enum fr_status wino_kernel(struct fr_cl *cl, const char *name, cl_mem planes, const struct fr_tensor *t,
                                  const fr_clconv *q, int n0, int nb, int64_t rows)
{
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "conv.cl", name);
    fr_cl_arg_mem(&L, planes);
    fr_cl_arg_tensor(&L, t);
    fr_cl_arg_bytes(&L, q, sizeof *q);
    fr_cl_arg_int(&L, n0);
    fr_cl_arg_int(&L, nb);
    return fr_cl_run_2d(&L, (int64_t)nb * wino_tiles(q), rows, 0, 0);
}

/* out = conv q of `in` with filter w ([q.o][q.c] or, flipped, [q.c][q.o]), bias and ReLU: the forward
 * (flip false) or the input gradient (in = gy, flip true, q the convolution of gy that gives dx) */
static enum fr_status wino_conv(struct fr_cl *cl, struct fr_tensor *out, const struct fr_tensor *in,
                                const struct fr_tensor *w, const struct fr_tensor *b, bool relu, const fr_clconv *q,
                                bool flip)
{
    int nb = wino_chunk(cl, q);
    int64_t T = wino_tiles(q), ncol_max = (int64_t)nb * T;
    cl_mem u, v, m;
    enum fr_status st;
    if ((st = fr_cl_scratch(cl, FR_CL_SCRATCH_FILTER, (size_t)(16 * q->o * q->c) * 4, &u)) != FR_STATUS_OK ||
        (st = fr_cl_scratch(cl, FR_CL_SCRATCH_COL, (size_t)(16 * q->c * ncol_max) * 4, &v)) != FR_STATUS_OK ||
        (st = fr_cl_scratch(cl, FR_CL_SCRATCH_AUX, (size_t)(16 * q->o * ncol_max) * 4, &m)) != FR_STATUS_OK)
        return st;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "conv.cl", "conv_wino_filter");
    fr_cl_arg_mem(&L, u);
    fr_cl_arg_tensor(&L, w);
    fr_cl_arg_int(&L, q->o);
    fr_cl_arg_int(&L, q->c);
    fr_cl_arg_int(&L, flip);
    if ((st = fr_cl_run_2d(&L, q->c, 4 * (int64_t)q->o, 0, 0)) != FR_STATUS_OK)
        return st;
    for (int n0 = 0; n0 < q->n && st == FR_STATUS_OK; n0 += nb) {
        int k = FR_MIN(nb, q->n - n0);
        int64_t ncol = (int64_t)k * T;
        if ((st = wino_kernel(cl, "conv_wino_input", v, in, q, n0, k, q->c)) != FR_STATUS_OK ||
            (st = fr_cl_sgemm_batched(cl, false, false, q->o, (int)ncol, q->c, 1.0f, u, 0, (size_t)q->c,
                                      (size_t)(q->o * q->c), v, 0, (size_t)ncol, (size_t)(q->c * ncol), 0.0f, m, 0,
                                      (size_t)ncol, (size_t)(q->o * ncol), 16)) != FR_STATUS_OK)
            break;
        fr_cl_begin(&L, cl, "conv.cl", "conv_wino_output");
        fr_cl_arg_tensor(&L, out);
        fr_cl_arg_mem(&L, m);
        fr_cl_arg_tensor(&L, b ? b : out);
        fr_cl_arg_int(&L, b != NULL);
        fr_cl_arg_int(&L, relu);
        fr_cl_arg_bytes(&L, q, sizeof *q);
        fr_cl_arg_int(&L, n0);
        fr_cl_arg_int(&L, k);
        st = fr_cl_run_2d(&L, ncol, q->o, 0, 0);
    }
    return st;
}

/* the convolution of gy that gives dx: gy's channels in, the input's out, padding 2 - p */
static fr_clconv wino_transposed(const fr_clconv *q)
{
    fr_clconv t = *q;
    t.c = q->o;
    t.h = q->oh;
    t.w = q->ow;
    t.o = q->c;
    t.oh = q->h;
    t.ow = q->w;
    t.ph = 2 - q->ph;
    t.pw = 2 - q->pw;
    return t;
}

/* dW = Gᵀ·(Σ over chunks of dM_ξ·V_ξᵀ)·G */
static enum fr_status wino_bwd_weight(struct fr_cl *cl, struct fr_tensor *dw, const struct fr_tensor *x,
                                      const struct fr_tensor *gy, const fr_clconv *q)
{
    int nb = wino_chunk(cl, q);
    int64_t T = wino_tiles(q), ncol_max = (int64_t)nb * T;
    cl_mem du, v, dm;
    enum fr_status st;
    if ((st = fr_cl_scratch(cl, FR_CL_SCRATCH_FILTER, (size_t)(16 * q->o * q->c) * 4, &du)) != FR_STATUS_OK ||
        (st = fr_cl_scratch(cl, FR_CL_SCRATCH_COL, (size_t)(16 * q->c * ncol_max) * 4, &v)) != FR_STATUS_OK ||
        (st = fr_cl_scratch(cl, FR_CL_SCRATCH_AUX, (size_t)(16 * q->o * ncol_max) * 4, &dm)) != FR_STATUS_OK)
        return st;
    int64_t oc = (int64_t)q->o * q->c;
    int splits = nb >= q->n ? split_k(cl, 16 * oc, (int64_t)q->n * T) : 1;
    cl_mem part = NULL;
    if (splits > 1 &&
        (st = fr_cl_scratch(cl, FR_CL_SCRATCH_PART, (size_t)(16 * oc * splits) * 4, &part)) != FR_STATUS_OK)
        return st;
    for (int n0 = 0; n0 < q->n && st == FR_STATUS_OK; n0 += nb) {
        int k = FR_MIN(nb, q->n - n0);
        int64_t ncol = (int64_t)k * T;
        if ((st = wino_kernel(cl, "conv_wino_input", v, x, q, n0, k, q->c)) != FR_STATUS_OK ||
            (st = wino_kernel(cl, "conv_wino_grad", dm, gy, q, n0, k, q->o)) != FR_STATUS_OK)
            break;
        if (splits == 1) {
            /* dU_ξ [o, c] (+)= dM_ξ [o, ncol] · V_ξᵀ [ncol, c] */
            st = fr_cl_sgemm_batched(cl, false, true, q->o, q->c, (int)ncol, 1.0f, dm, 0, (size_t)ncol,
                                     (size_t)(q->o * ncol), v, 0, (size_t)ncol, (size_t)(q->c * ncol),
                                     n0 == 0 ? 0.0f : 1.0f, du, 0, (size_t)q->c, (size_t)oc, 16);
            continue;
        }
        /* split-K: part[s][ξ] = the columns [s*len, (s+1)*len) of plane ξ (the last split also the rest),
         * then dU = Σ_s part[s] in order */
        int64_t len = ncol / splits, rest = ncol - len * splits;
        for (int xi = 0; xi < 16 && st == FR_STATUS_OK; xi++)
            st = fr_cl_sgemm_batched(cl, false, true, q->o, q->c, (int)len, 1.0f, dm, (size_t)(xi * q->o * ncol),
                                     (size_t)ncol, (size_t)len, v, (size_t)(xi * q->c * ncol), (size_t)ncol,
                                     (size_t)len, 0.0f, part, (size_t)(xi * oc), (size_t)q->c, (size_t)(16 * oc),
                                     splits);
        if (st == FR_STATUS_OK && rest > 0)
            st = fr_cl_sgemm_batched(cl, false, true, q->o, q->c, (int)rest, 1.0f, dm, (size_t)(len * splits),
                                     (size_t)ncol, (size_t)(q->o * ncol), v, (size_t)(len * splits), (size_t)ncol,
                                     (size_t)(q->c * ncol), 1.0f, part, (size_t)((splits - 1) * 16 * oc),
                                     (size_t)q->c, (size_t)oc, 16);
        if (st == FR_STATUS_OK) {
            fr_clt pu;
            memset(&pu, 0, sizeof pu);
            pu.ne[0] = pu.n = (fr_i32)(16 * oc);
            pu.ne[1] = pu.ne[2] = pu.ne[3] = 1;
            pu.st[0] = 1;
            st = fr_cl_sum_parts(cl, du, &pu, part, splits, 1, (int)(16 * oc), 1.0f);
        }
    }
    if (st != FR_STATUS_OK)
        return st;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "conv.cl", "conv_wino_dw");
    fr_cl_arg_tensor(&L, dw);
    fr_cl_arg_mem(&L, du);
    fr_cl_arg_int(&L, q->o);
    fr_cl_arg_int(&L, q->c);
    return fr_cl_run_2d(&L, q->c, 3 * (int64_t)q->o, 0, 0);
}

/* --- forward --- */
static enum fr_status conv_direct(struct fr_cl *cl, struct fr_tensor *y, const struct conv *cv)
{
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "conv.cl", "conv_conv2d");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, y->src[0]);
    fr_cl_arg_tensor(&L, y->src[1]);
    fr_cl_arg_tensor(&L, y->src[2] ? y->src[2] : y); /* a stand-in the kernel does not read */
    fr_cl_arg_int(&L, y->src[2] != NULL);
    fr_cl_arg_int(&L, y->params[P_RELU].i);
    arg_conv(&L, cv);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

static enum fr_status cl_conv2d(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *x = y->src[0], *w = y->src[1], *b = y->src[2];
    struct conv cv;
    conv_init(&cv, cl, x, w, y, y);
    if (cv.direct)
        return conv_direct(cl, y, &cv);
    if (wino_fits(cl, &cv))
        return wino_conv(cl, y, x, w, b, y->params[P_RELU].i != 0, &cv.q, false);
    struct opnd ox, ow, oy;
    enum fr_status st;
    if ((st = opnd(cl, x, &ox)) != FR_STATUS_OK || (st = opnd(cl, w, &ow)) != FR_STATUS_OK ||
        (st = opnd(cl, y, &oy)) != FR_STATUS_OK)
        return st;
    const fr_clconv *q = &cv.q;
    int relu = y->params[P_RELU].i;
    if (cv.one) {
        /* y_n[g] = W_g x_n[g] for every sample in one batched GEMM per group, then bias and ReLU in place */
        for (int g = 0; g < q->groups && st == FR_STATUS_OK; g++)
            st = fr_cl_sgemm_batched(cl, false, false, (int)cv.og, (int)cv.P, (int)cv.cg, 1.0f, ow.mem,
                                     ow.off + (size_t)(g * cv.og * cv.kg), (size_t)cv.kg, 0, ox.mem,
                                     ox.off + (size_t)(g * cv.cg * cv.P), (size_t)cv.P, (size_t)(q->c * cv.P), 0.0f,
                                     oy.mem, oy.off + (size_t)(g * cv.og * cv.P), (size_t)cv.P,
                                     (size_t)(q->o * cv.P), q->n);
        if (st != FR_STATUS_OK || (!b && !relu))
            return st;
        struct fr_cl_launch L;
        fr_cl_begin(&L, cl, "conv.cl", "conv_bias_act");
        fr_cl_arg_tensor(&L, y);
        fr_cl_arg_tensor(&L, b ? b : y);
        fr_cl_arg_int(&L, b != NULL);
        fr_cl_arg_int(&L, relu);
        fr_cl_arg_int(&L, (int)cv.P);
        return fr_cl_run_1d(&L, fr_nelements(y));
    }
    cl_mem col, t;
    if ((st = col_scratch(cl, &cv, &col, &t)) != FR_STATUS_OK)
        return st;
    for (int n0 = 0; n0 < q->n && st == FR_STATUS_OK; n0 += cv.nb) {
        int nb = FR_MIN(cv.nb, q->n - n0);
        int64_t ncol = (int64_t)nb * cv.P;
        for (int g = 0; g < q->groups && st == FR_STATUS_OK; g++) {
            /* t [og, ncol] = W_g [og, kg] · col [kg, ncol] */
            if ((st = im2col(cl, col, x, &cv, n0, nb, g)) != FR_STATUS_OK ||
                (st = fr_cl_sgemm(cl, false, false, (int)cv.og, (int)ncol, (int)cv.kg, 1.0f, ow.mem,
                                  ow.off + (size_t)(g * cv.og * cv.kg), (size_t)cv.kg, col, 0, (size_t)ncol, 0.0f, t,
                                  0, (size_t)ncol)) != FR_STATUS_OK)
                break;
            struct fr_cl_launch L;
            fr_cl_begin(&L, cl, "conv.cl", "conv_cols_to_nchw");
            fr_cl_arg_tensor(&L, y);
            fr_cl_arg_mem(&L, t);
            fr_cl_arg_tensor(&L, b ? b : y);
            fr_cl_arg_int(&L, b != NULL);
            fr_cl_arg_int(&L, relu);
            arg_conv(&L, &cv);
            fr_cl_arg_int(&L, n0);
            fr_cl_arg_int(&L, nb);
            fr_cl_arg_int(&L, g);
            st = run_cols(&L, ncol, cv.og);
        }
    }
    return st;
}

/* --- input gradient: dx = Wᵀ·gy through columns --- */
static enum fr_status cl_conv2d_bwd_input(struct fr_cl *cl, struct fr_tensor *dx, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *w = dx->src[0], *gy = dx->src[1];
    struct conv cv;
    conv_init(&cv, cl, dx, w, gy, dx);
    const fr_clconv *q = &cv.q;
    if (cv.direct) {
        struct fr_cl_launch L;
        fr_cl_begin(&L, cl, "conv.cl", "conv_conv2d_bwd_input");
        fr_cl_arg_tensor(&L, dx);
        fr_cl_arg_tensor(&L, w);
        fr_cl_arg_tensor(&L, gy);
        arg_conv(&L, &cv);
        return fr_cl_run_1d(&L, fr_nelements(dx));
    }
    if (wino_fits(cl, &cv)) {
        fr_clconv t = wino_transposed(q);
        return wino_conv(cl, dx, gy, w, NULL, false, &t, true);
    }
    struct opnd ow, og, od;
    enum fr_status st;
    if ((st = opnd(cl, w, &ow)) != FR_STATUS_OK || (st = opnd(cl, gy, &og)) != FR_STATUS_OK ||
        (st = opnd(cl, dx, &od)) != FR_STATUS_OK)
        return st;
    if (cv.one) {
        /* dx_n[g] = W_gᵀ gy_n[g], every sample in one batched GEMM per group */
        for (int g = 0; g < q->groups && st == FR_STATUS_OK; g++)
            st = fr_cl_sgemm_batched(cl, true, false, (int)cv.cg, (int)cv.P, (int)cv.og, 1.0f, ow.mem,
                                     ow.off + (size_t)(g * cv.og * cv.kg), (size_t)cv.kg, 0, og.mem,
                                     og.off + (size_t)(g * cv.og * cv.P), (size_t)cv.P, (size_t)(q->o * cv.P), 0.0f,
                                     od.mem, od.off + (size_t)(g * cv.cg * cv.P), (size_t)cv.P,
                                     (size_t)(q->c * cv.P), q->n);
        return st;
    }
    cl_mem col, t;
    if ((st = col_scratch(cl, &cv, &col, &t)) != FR_STATUS_OK)
        return st;
    for (int n0 = 0; n0 < q->n && st == FR_STATUS_OK; n0 += cv.nb) {
        int nb = FR_MIN(cv.nb, q->n - n0);
        int64_t ncol = (int64_t)nb * cv.P;
        for (int g = 0; g < q->groups && st == FR_STATUS_OK; g++) {
            /* dcol [kg, ncol] = W_gᵀ [kg, og] · gy cols [og, ncol], then back to dx */
            if ((st = gy_cols(cl, t, gy, &cv, n0, nb, g)) != FR_STATUS_OK ||
                (st = fr_cl_sgemm(cl, true, false, (int)cv.kg, (int)ncol, (int)cv.og, 1.0f, ow.mem,
                                  ow.off + (size_t)(g * cv.og * cv.kg), (size_t)cv.kg, t, 0, (size_t)ncol, 0.0f, col,
                                  0, (size_t)ncol)) != FR_STATUS_OK)
                break;
            st = chunk_kernel(cl, "conv_col2im", col, dx, &cv, n0, nb, g, (int64_t)nb * q->h, q->w, cv.cg, false);
        }
    }
    return st;
}

/* --- weight gradient: dW_g = Σ over chunks of gy cols · colsᵀ --- */
static enum fr_status bwd_weight_direct(struct fr_cl *cl, struct fr_tensor *dw, const struct conv *cv)
{
    struct fr_cl_launch L;
    if (fr_cl_begin(&L, cl, "conv.cl", "conv_bwd_weight_part") != FR_STATUS_OK)
        return L.st;
    int64_t rows = fr_nelements(dw), len = (int64_t)cv->q.n * cv->P;
    int lanes = fr_cl_lanes(&L, len), splits = fr_cl_splits(&L, rows, len, lanes);
    cl_mem part = NULL;
    struct opnd od;
    enum fr_status st = opnd(cl, dw, &od);
    if (st != FR_STATUS_OK)
        return st;
    part = od.mem;
    if (splits > 1 && (st = fr_cl_scratch(cl, FR_CL_SCRATCH_PART, (size_t)(rows * splits) * 4, &part)) != FR_STATUS_OK)
        return st;
    fr_cl_arg_tensor(&L, dw);
    fr_cl_arg_mem(&L, part);
    fr_cl_arg_tensor(&L, dw->src[0]);
    fr_cl_arg_tensor(&L, dw->src[1]);
    arg_conv(&L, cv);
    fr_cl_arg_int(&L, splits);
    if ((st = fr_cl_run_2d(&L, (int64_t)lanes * splits, rows, (size_t)lanes, 1)) != FR_STATUS_OK || splits == 1)
        return st;
    fr_clt pdw;
    if ((st = fr_cl_param(dw, NULL, &pdw)) != FR_STATUS_OK)
        return st;
    return fr_cl_sum_parts(cl, od.mem, &pdw, part, splits, splits, 1, 1.0f);
}

static enum fr_status cl_conv2d_bwd_weight(struct fr_cl *cl, struct fr_tensor *dw, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *x = dw->src[0], *gy = dw->src[1];
    struct conv cv;
    conv_init(&cv, cl, x, dw, gy, dw);
    if (cv.direct)
        return bwd_weight_direct(cl, dw, &cv);
    if (wino_fits(cl, &cv))
        return wino_bwd_weight(cl, dw, x, gy, &cv.q);
    const fr_clconv *q = &cv.q;
    struct opnd od;
    enum fr_status st;
    if ((st = opnd(cl, dw, &od)) != FR_STATUS_OK)
        return st;
    cl_mem col, t, part;
    if ((st = col_scratch(cl, &cv, &col, &t)) != FR_STATUS_OK)
        return st;
    int64_t outs = cv.og * cv.kg;
    /* Few outputs and one chunk: split the long sum over samples x positions into `splits` GEMMs of one
     * batch (partial products in scratch, added in order after), so the device has enough work-groups. */
    int splits = cv.nb >= q->n ? split_k(cl, outs, (int64_t)q->n * cv.P) : 1;
    if (splits > 1 && (st = fr_cl_scratch(cl, FR_CL_SCRATCH_PART, (size_t)(outs * splits) * 4, &part)) != FR_STATUS_OK)
        return st;
    for (int g = 0; g < q->groups && st == FR_STATUS_OK; g++) {
        size_t c_off = od.off + (size_t)(g * outs);
        for (int n0 = 0; n0 < q->n && st == FR_STATUS_OK; n0 += cv.nb) {
            int nb = FR_MIN(cv.nb, q->n - n0);
            int64_t ncol = (int64_t)nb * cv.P;
            if ((st = gy_cols(cl, t, gy, &cv, n0, nb, g)) != FR_STATUS_OK ||
                (st = im2col(cl, col, x, &cv, n0, nb, g)) != FR_STATUS_OK)
                break;
            if (splits == 1) {
                /* dW_g [og, kg] (+)= t [og, ncol] · colᵀ [ncol, kg] */
                st = fr_cl_sgemm(cl, false, true, (int)cv.og, (int)cv.kg, (int)ncol, 1.0f, t, 0, (size_t)ncol, col, 0,
                                 (size_t)ncol, n0 == 0 ? 0.0f : 1.0f, od.mem, c_off, (size_t)cv.kg);
                continue;
            }
            /* split s sums columns [s*len, (s+1)*len), the last split also the remainder */
            int64_t len = ncol / splits, rest = ncol - len * splits;
            st = fr_cl_sgemm_batched(cl, false, true, (int)cv.og, (int)cv.kg, (int)len, 1.0f, t, 0, (size_t)ncol,
                                     (size_t)len, col, 0, (size_t)ncol, (size_t)len, 0.0f, part, 0, (size_t)cv.kg,
                                     (size_t)outs, splits);
            if (st == FR_STATUS_OK && rest > 0)
                st = fr_cl_sgemm(cl, false, true, (int)cv.og, (int)cv.kg, (int)rest, 1.0f, t, (size_t)(len * splits),
                                 (size_t)ncol, col, (size_t)(len * splits), (size_t)ncol, 1.0f, part,
                                 (size_t)((splits - 1) * outs), (size_t)cv.kg);
            if (st == FR_STATUS_OK) {
                /* dW_g = Σ_s part[s] */
                fr_clt pg;
                memset(&pg, 0, sizeof pg);
                pg.ne[0] = pg.n = (fr_i32)outs;
                pg.ne[1] = pg.ne[2] = pg.ne[3] = 1;
                pg.st[0] = 1;
                pg.off = (fr_i32)c_off;
                st = fr_cl_sum_parts(cl, od.mem, &pg, part, splits, 1, (int)outs, 1.0f);
            }
        }
    }
    return st;
}

/* --- bias gradient: Σ over every axis but 1 --- */
static enum fr_status cl_channel_sum(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    int64_t grid[4] = {1, y->src[0]->ne[1], 1, 1};
    return fr_cl_sum_rows(cl, y, grid, y->src[0], 1.0f);
}

void fr_cl_register_conv(struct fr_cl_op *t)
{
    t[FR_OP_CONV2D] = (struct fr_cl_op){cl_conv2d, NULL};
    t[FR_OP_CONV2D_BWD_INPUT] = (struct fr_cl_op){cl_conv2d_bwd_input, NULL};
    t[FR_OP_CONV2D_BWD_WEIGHT] = (struct fr_cl_op){cl_conv2d_bwd_weight, NULL};
    t[FR_OP_CHANNEL_SUM] = (struct fr_cl_op){cl_channel_sum, NULL};
}
