/* Parity of every core op between the CPU path and each usable OpenCL device: one table row per case
 * (odd sizes, broadcasting, non-contiguous views, every dtype), guard bytes after every planned tensor
 * and around every host result; integer results must match exactly, f32 within a tight tolerance.
 *
 * Adding an op family's cases: write a builder `static struct fr_tensor *c_<case>(struct pcase *P)`
 * that makes its inputs with IN(P, dims...) (f32 in [-2, 2)) or pin(P, type, SHAPE(...), lo, hi) and
 * returns the node to compare, then add a row {name, builder, atol, rtol, no_guard} to rows[] (atol =
 * rtol = 0 demands bit-identical f32). A row fails if any of its ops falls back to the CPU path. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "frugal/device.h"
#include "frugal/loss.h"
#include "frugal/nn.h"
#include "frugal/optim.h"
#include "frugal_config.h"
#include "testutil.h"
#if FRUGAL_HAVE_OPENCL
#include "opencl/opencl_internal.h" /* fr_cl_set_sizing */
#endif

/* --- the builder API the rows use: inputs are created through pin() so the runner can fill them --- */
#define MAX_IN 12
struct pcase {
    struct fr_ctx *ctx;
    struct fr_tensor *in[MAX_IN];
    float lo[MAX_IN], hi[MAX_IN];
    bool ints[MAX_IN]; /* f32 inputs holding small integers: ties for max, exact halves for rounding */
    int n_in;
};

static struct fr_tensor *pin(struct pcase *P, enum fr_dtype type, int ndim, const int64_t *ne, float lo, float hi)
{
    struct fr_tensor *t = fr_tensor_new(P->ctx, type, ndim, ne);
    assert_non_null(t);
    fr_tensor_set_flags(t, FR_FLAG_INPUT);
    fr_tensor_set_name(t, "in%d", P->n_in);
    P->in[P->n_in] = t;
    P->lo[P->n_in] = lo;
    P->hi[P->n_in] = hi;
    P->ints[P->n_in] = false;
    P->n_in++;
    return t;
}
#define IN(P, ...) pin(P, FR_F32, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}, -2.0f, 2.0f)
#define SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}

/* A node built directly (the *_BWD ops are normally made by the backward rules). */
static struct fr_tensor *node(struct pcase *P, enum fr_op op, struct fr_tensor *like, int n_src,
                              struct fr_tensor **src, int axis)
{
    struct fr_tensor *t = fr_node_new(P->ctx, op, FR_F32, like->ndim, like->ne, n_src, src);
    assert_non_null(t);
    t->params[0].i = axis;
    return t;
}

typedef struct fr_tensor *(*build_fn)(struct pcase *P);

struct prow {
    const char *name;
    build_fn build;
    float atol, rtol; /* f32 outputs; integer outputs always compare exactly */
    /* Multi-op chains reuse arena memory, and the planner's guard bytes (written once at plan
     * time) sit inside blocks that earlier, dead tensors legitimately overwrite: guard-check only
     * single-op graphs, whose tensors never share memory. */
    bool no_guard;
    bool training; /* run in training mode (batch-norm statistics, dropout masks), seed 7, step 3 */
};

/* ---------------- cases: layout ---------------- */
static struct fr_tensor *c_cont_transpose(struct pcase *P)
{
    return fr_cont(P->ctx, fr_transpose(P->ctx, IN(P, 7, 13), 0, 1));
}
static struct fr_tensor *c_cont_permute4(struct pcase *P)
{
    return fr_cont(P->ctx, fr_permute(P->ctx, IN(P, 2, 3, 5, 7), (int[]){3, 1, 0, 2}));
}
static struct fr_tensor *c_cont_slice(struct pcase *P)
{
    return fr_cont(P->ctx, fr_slice(P->ctx, IN(P, 9, 11), 1, 3, 5));
}
static struct fr_tensor *c_cont_u8(struct pcase *P)
{
    struct fr_tensor *x = pin(P, FR_U8, SHAPE(5, 6, 7), 0, 256);
    return fr_cont(P->ctx, fr_transpose(P->ctx, x, 0, 2));
}
static struct fr_tensor *c_cont_i32(struct pcase *P)
{
    struct fr_tensor *x = pin(P, FR_I32, SHAPE(6, 5), -100000, 100000);
    return fr_cont(P->ctx, fr_transpose(P->ctx, x, 0, 1));
}
static struct fr_tensor *c_cont_broadcast(struct pcase *P)
{
    return fr_cont(P->ctx, fr_broadcast_to(P->ctx, IN(P, 1, 5), SHAPE(4, 5)));
}
static struct fr_tensor *c_fill_f32(struct pcase *P) { return fr_fill(P->ctx, FR_F32, SHAPE(3, 129), -1.25f); }
static struct fr_tensor *c_fill_i32(struct pcase *P) { return fr_fill(P->ctx, FR_I32, SHAPE(17), -7.9f); }
static struct fr_tensor *c_fill_u8(struct pcase *P) { return fr_fill(P->ctx, FR_U8, SHAPE(5, 31), 300.0f); }

/* ---------------- elementwise ---------------- */
static struct fr_tensor *c_add(struct pcase *P) { return fr_add(P->ctx, IN(P, 7, 13), IN(P, 7, 13)); }
static struct fr_tensor *c_sub_bcast(struct pcase *P) { return fr_sub(P->ctx, IN(P, 5, 1, 3), IN(P, 4, 3)); }
static struct fr_tensor *c_mul_row(struct pcase *P) { return fr_mul(P->ctx, IN(P, 6, 257), IN(P, 257)); }
static struct fr_tensor *c_div(struct pcase *P)
{
    struct fr_tensor *a = IN(P, 3, 1, 11), *b = pin(P, FR_F32, SHAPE(4, 11), 0.5f, 3.0f);
    return fr_div(P->ctx, a, b);
}
static struct fr_tensor *c_add_scalar(struct pcase *P) { return fr_add(P->ctx, IN(P, 2, 3, 4, 5), IN(P, 1)); }
static struct fr_tensor *c_add_views(struct pcase *P)
{
    struct fr_tensor *a = fr_transpose(P->ctx, IN(P, 9, 8), 0, 1);
    struct fr_tensor *b = fr_slice(P->ctx, IN(P, 8, 12), 1, 2, 9);
    return fr_add(P->ctx, a, b);
}
static struct fr_tensor *c_scale(struct pcase *P) { return fr_scale_add(P->ctx, IN(P, 1000), -0.3f, 0.7f); }
static struct fr_tensor *c_relu(struct pcase *P) { return fr_relu(P->ctx, fr_transpose(P->ctx, IN(P, 5, 33), 0, 1)); }
static struct fr_tensor *c_relu_bwd(struct pcase *P)
{
    struct fr_tensor *x = IN(P, 4, 37), *gy = IN(P, 4, 37);
    return node(P, FR_OP_RELU_BWD, x, 2, (struct fr_tensor *[]){x, gy}, 0);
}

/* ---------------- matmul ---------------- */
static struct fr_tensor *mm(struct pcase *P, int m, int n, int k, bool ta, bool tb)
{
    struct fr_tensor *a = ta ? IN(P, k, m) : IN(P, m, k);
    struct fr_tensor *b = tb ? IN(P, n, k) : IN(P, k, n);
    return fr_matmul(P->ctx, a, b, ta, tb);
}
static struct fr_tensor *c_mm_nn(struct pcase *P) { return mm(P, 17, 23, 9, false, false); }
static struct fr_tensor *c_mm_tn(struct pcase *P) { return mm(P, 17, 23, 9, true, false); }
static struct fr_tensor *c_mm_nt(struct pcase *P) { return mm(P, 17, 23, 9, false, true); }
static struct fr_tensor *c_mm_tt(struct pcase *P) { return mm(P, 33, 5, 40, true, true); }
static struct fr_tensor *c_mm_blocks(struct pcase *P) { return mm(P, 100, 70, 130, false, true); }
static struct fr_tensor *c_mm_vec(struct pcase *P) { return mm(P, 1, 19, 31, false, true); }
static struct fr_tensor *c_mm_view(struct pcase *P)
{
    /* a transposed view without the transpose flag, and a column slice: strided operands */
    struct fr_tensor *a = fr_transpose(P->ctx, IN(P, 12, 10), 0, 1);
    struct fr_tensor *b = fr_slice(P->ctx, IN(P, 12, 20), 1, 3, 14);
    return fr_matmul(P->ctx, a, b, false, false);
}

/* ---------------- reductions ---------------- */
static struct fr_tensor *c_sum0(struct pcase *P) { return fr_sum(P->ctx, IN(P, 3, 5, 7), 0); }
static struct fr_tensor *c_sum_last(struct pcase *P) { return fr_sum(P->ctx, IN(P, 3, 1000), -1); }
static struct fr_tensor *c_mean1(struct pcase *P) { return fr_mean(P->ctx, IN(P, 3, 5, 7), 1); }
static struct fr_tensor *c_mean_view(struct pcase *P)
{
    return fr_mean(P->ctx, fr_transpose(P->ctx, IN(P, 6, 9), 0, 1), 1);
}
static struct fr_tensor *c_max_ties(struct pcase *P)
{
    struct fr_tensor *x = IN(P, 4, 6, 5);
    P->lo[0] = 0.0f, P->hi[0] = 3.0f, P->ints[0] = true;
    return fr_max(P->ctx, x, 1);
}
static struct fr_tensor *c_max_bwd(struct pcase *P)
{
    struct fr_tensor *x = IN(P, 4, 6, 5);
    P->lo[0] = 0.0f, P->hi[0] = 3.0f, P->ints[0] = true;
    struct fr_tensor *y = fr_max(P->ctx, x, 2);
    struct fr_tensor *gy = IN(P, 4, 6, 1);
    return node(P, FR_OP_MAX_BWD, x, 3, (struct fr_tensor *[]){x, y, gy}, 2);
}
static struct fr_tensor *c_sum_to_rows(struct pcase *P) { return fr_sum_to(P->ctx, IN(P, 4, 3, 5), SHAPE(3, 5)); }
static struct fr_tensor *c_sum_to_keep(struct pcase *P) { return fr_sum_to(P->ctx, IN(P, 4, 3, 5), SHAPE(4, 1, 5)); }
static struct fr_tensor *c_sum_to_all(struct pcase *P) { return fr_sum_to(P->ctx, IN(P, 2, 3, 4, 5), SHAPE(1)); }

/* ---------------- softmax ---------------- */
static struct fr_tensor *c_softmax_last(struct pcase *P)
{
    struct fr_tensor *x = IN(P, 7, 10);
    P->lo[0] = -30.0f, P->hi[0] = 30.0f;
    return fr_softmax(P->ctx, x, -1);
}
static struct fr_tensor *c_softmax_axis0(struct pcase *P) { return fr_softmax(P->ctx, IN(P, 5, 3, 4), 0); }
static struct fr_tensor *c_log_softmax(struct pcase *P)
{
    return fr_log_softmax(P->ctx, fr_transpose(P->ctx, IN(P, 11, 6), 0, 1), -1);
}
static struct fr_tensor *c_softmax_bwd(struct pcase *P)
{
    struct fr_tensor *y = fr_softmax(P->ctx, IN(P, 6, 9), -1), *gy = IN(P, 6, 9);
    return node(P, FR_OP_SOFTMAX_BWD, y, 2, (struct fr_tensor *[]){y, gy}, 1);
}
static struct fr_tensor *c_log_softmax_bwd(struct pcase *P)
{
    struct fr_tensor *y = fr_log_softmax(P->ctx, IN(P, 3, 8, 2), 1), *gy = IN(P, 3, 8, 2);
    return node(P, FR_OP_LOG_SOFTMAX_BWD, y, 2, (struct fr_tensor *[]){y, gy}, 1);
}

/* ---------------- conversion ---------------- */
static struct fr_tensor *c_u8_to_f32(struct pcase *P)
{
    return fr_convert(P->ctx, pin(P, FR_U8, SHAPE(3, 50), 0, 256), FR_F32);
}
static struct fr_tensor *c_f32_to_u8(struct pcase *P)
{
    struct fr_tensor *x = pin(P, FR_F32, SHAPE(7, 41), -20.0f, 280.0f);
    P->ints[0] = true; /* plus .5 halves, see fill_inputs: tests round-half-even and clamping */
    return fr_convert(P->ctx, x, FR_U8);
}
static struct fr_tensor *c_f32_to_i32(struct pcase *P)
{
    return fr_convert(P->ctx, pin(P, FR_F32, SHAPE(99), -1000.0f, 1000.0f), FR_I32);
}
static struct fr_tensor *c_i32_to_f32(struct pcase *P)
{
    return fr_convert(P->ctx, fr_transpose(P->ctx, pin(P, FR_I32, SHAPE(4, 9), -5000, 5000), 0, 1), FR_F32);
}
static struct fr_tensor *c_normalize(struct pcase *P)
{
    struct fr_tensor *x = pin(P, FR_U8, SHAPE(2, 3, 5, 7), 0, 256);
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    return fr_normalize(P->ctx, x, 1, 1.0f / 255.0f, mean, sd, 3);
}
static struct fr_tensor *c_normalize_last(struct pcase *P)
{
    struct fr_tensor *x = pin(P, FR_U8, SHAPE(6, 4), 0, 256);
    const float mean[4] = {1, 2, 3, 4}, sd[4] = {2, 3, 4, 5};
    return fr_normalize(P->ctx, x, -1, 0.5f, mean, sd, 4);
}

/* ---------------- a chain: one enqueue of many ops, views in between ---------------- */
static struct fr_tensor *c_chain(struct pcase *P)
{
    struct fr_tensor *x = IN(P, 8, 12), *w = IN(P, 5, 12), *b = IN(P, 5);
    struct fr_tensor *h = fr_relu(P->ctx, fr_add(P->ctx, fr_matmul(P->ctx, x, w, false, true), b));
    struct fr_tensor *s = fr_log_softmax(P->ctx, h, -1);
    return fr_mean(P->ctx, fr_scale(P->ctx, fr_sum(P->ctx, s, 1), -1.0f), 0);
}

/* ---------------- losses and optimizer steps (cl/loss.cl, cl/optim.cl) ---------------- */
/* The gradient node of a loss, as its backward rule makes it: the forward's slots, gy after them. */
static struct fr_tensor *loss_grad(struct pcase *P, enum fr_op op, struct fr_tensor *fwd, int n_fwd, float gy)
{
    assert_non_null(fwd);
    struct fr_tensor *z = fwd->src[0];
    struct fr_tensor *t = fr_node_new(P->ctx, op, FR_F32, z->ndim, z->ne, 1, &fwd->src[0]);
    assert_non_null(t);
    for (int s = 1; s < n_fwd; s++)
        t->src[s] = fwd->src[s];
    t->src[n_fwd] = fr_fill(P->ctx, FR_F32, SHAPE(1), gy);
    memcpy(t->params, fwd->params, sizeof t->params);
    return t;
}
static struct fr_tensor *labels(struct pcase *P, int64_t n, int k) { return pin(P, FR_I32, SHAPE(n), 0, (float)k); }
static struct fr_tensor *weights(struct pcase *P, int64_t n) { return pin(P, FR_F32, SHAPE(n), 0.0f, 1.0f); }
static struct fr_tensor *c_ce(struct pcase *P)
{
    struct fr_tensor *z = IN(P, 13, 10);
    return fr_cross_entropy(P->ctx, z, labels(P, 13, 10), NULL, 0.0f);
}
static struct fr_tensor *ce_smooth(struct pcase *P)
{
    struct fr_tensor *z = IN(P, 37, 10);
    P->lo[0] = -25.0f, P->hi[0] = 25.0f; /* confident rows: p of the label close to 1 */
    return fr_cross_entropy(P->ctx, z, labels(P, 37, 10), weights(P, 37), 0.1f);
}
static struct fr_tensor *c_ce_smooth(struct pcase *P) { return ce_smooth(P); }
/* enough rows to split the batch over work-groups when sized as a GPU */
static struct fr_tensor *c_ce_long(struct pcase *P)
{
    return fr_cross_entropy(P->ctx, IN(P, 5000, 10), labels(P, 5000, 10), weights(P, 5000), 0.05f);
}
static struct fr_tensor *c_ce_bwd(struct pcase *P)
{
    return loss_grad(P, FR_OP_CROSS_ENTROPY_BWD, ce_smooth(P), 3, 1.5f);
}
static struct fr_tensor *c_ce_bwd_plain(struct pcase *P)
{
    return loss_grad(P, FR_OP_CROSS_ENTROPY_BWD, c_ce(P), 3, 1.0f);
}
static struct fr_tensor *soft_ce(struct pcase *P)
{
    struct fr_tensor *z = IN(P, 9, 7), *t = pin(P, FR_F32, SHAPE(9, 7), 0.0f, 1.0f);
    return fr_soft_cross_entropy(P->ctx, z, t, weights(P, 9));
}
static struct fr_tensor *c_soft_ce(struct pcase *P) { return soft_ce(P); }
static struct fr_tensor *c_soft_ce_bwd(struct pcase *P)
{
    return loss_grad(P, FR_OP_SOFT_CROSS_ENTROPY_BWD, soft_ce(P), 3, -0.75f);
}
static struct fr_tensor *distill(struct pcase *P, bool hard)
{
    struct fr_tensor *zs = IN(P, 11, 10), *zt = IN(P, 11, 10);
    P->lo[0] = P->lo[1] = -6.0f, P->hi[0] = P->hi[1] = 6.0f;
    if (!hard)
        return fr_distill_loss(P->ctx, zs, zt, NULL, NULL, 1.0f, 4.0f);
    /* labels in [-1, 3): about a quarter are -1, unlabeled transfer images (teacher targets only) */
    return fr_distill_loss(P->ctx, zs, zt, pin(P, FR_I32, SHAPE(11), -1.0f, 3.0f), weights(P, 11), 0.7f, 3.0f);
}
static struct fr_tensor *c_distill(struct pcase *P) { return distill(P, true); }
static struct fr_tensor *c_distill_soft(struct pcase *P) { return distill(P, false); }
static struct fr_tensor *c_distill_bwd(struct pcase *P) { return loss_grad(P, FR_OP_DISTILL_BWD, distill(P, true), 4, 2.0f); }
static struct fr_tensor *c_distill_soft_bwd(struct pcase *P)
{
    return loss_grad(P, FR_OP_DISTILL_BWD, distill(P, false), 4, 1.0f);
}
static struct fr_tensor *mse(struct pcase *P) { return fr_mse_loss(P->ctx, IN(P, 6, 3, 5), IN(P, 6, 3, 5), weights(P, 6)); }
static struct fr_tensor *c_mse(struct pcase *P) { return mse(P); }
static struct fr_tensor *c_mse_bwd(struct pcase *P) { return loss_grad(P, FR_OP_MSE_BWD, mse(P), 3, 0.5f); }
static struct fr_tensor *c_mse_plain(struct pcase *P) { return fr_mse_loss(P->ctx, IN(P, 300, 7), IN(P, 300, 7), NULL); }

/* FixMatch's confident targets: logits over a wide range so rows fall on both sides of the threshold */
static struct fr_tensor *pseudo(struct pcase *P, float temp)
{
    struct fr_tensor *z = IN(P, 40, 10);
    P->lo[0] = -6.0f, P->hi[0] = 6.0f;
    return fr_pseudo_targets(P->ctx, z, 0.6f, temp);
}
static struct fr_tensor *c_pseudo_hard(struct pcase *P) { return pseudo(P, 0.0f); }
static struct fr_tensor *c_pseudo_soft(struct pcase *P) { return pseudo(P, 0.5f); }

static struct fr_tensor *c_sumsq_carry(struct pcase *P)
{
    struct fr_tensor *a = IN(P, 1000), *b = IN(P, 37), *c = IN(P, 5, 7);
    struct fr_tensor *s = fr_opt_sumsq(P->ctx, NULL, (struct fr_tensor *[]){a, b}, 2);
    return fr_opt_sumsq(P->ctx, s, (struct fr_tensor *[]){c}, 1);
}
static struct fr_tensor *c_clip(struct pcase *P)
{
    struct fr_tensor *g = IN(P, 300);
    return fr_opt_clip(P->ctx, fr_opt_sumsq(P->ctx, NULL, &g, 1), 3.0f);
}

/* Three optimizer steps of one parameter (input 0) with gradients inputs 1..3; moments and the step
 * count start at zero as fr_optim_reset leaves them. clip > 0: clipping by the gradient's norm. Each
 * prep rewrites the step scalars in place; the graph's source-order DFS runs step s (source 0 of step
 * s+1) before the prep of step s+1 (a later source), as one training step per graph run would. */
enum { OPT_SGD, OPT_NESTEROV, OPT_ADAM, OPT_ADAMW };
static struct fr_tensor *opt3(struct pcase *P, int kind, float clip, float wd)
{
    struct fr_ctx *c = P->ctx;
    struct fr_tensor *p = IN(P, 7, 33), *g[3] = {IN(P, 7, 33), IN(P, 7, 33), IN(P, 7, 33)};
    struct fr_tensor *hyper = fr_fill(c, FR_F32, SHAPE(4), 0.0f), *lr = fr_fill(c, FR_F32, SHAPE(1), 0.05f);
    struct fr_tensor *m = fr_fill(c, FR_F32, SHAPE(7, 33), 0.0f), *v = fr_fill(c, FR_F32, SHAPE(7, 33), 0.0f);
    struct fr_tensor *prep = hyper;
    for (int s = 0; s < 3; s++) {
        struct fr_tensor *cl = clip > 0 ? fr_opt_clip(c, fr_opt_sumsq(c, NULL, &g[s], 1), clip) : NULL;
        prep = fr_opt_prep(c, prep, lr, cl);
        if (kind == OPT_SGD)
            p = fr_sgd_step(c, p, g[s], m, prep, 0.5f, wd, 0.9f, 0.1f, false);
        else if (kind == OPT_NESTEROV)
            p = fr_sgd_step(c, p, g[s], m, prep, 1.0f, wd, 0.9f, 0.0f, true);
        else
            p = fr_adam_step(c, p, g[s], m, v, prep, 1.0f, wd, 0.9f, 0.999f, 1e-8f, kind == OPT_ADAMW);
        assert_non_null(p);
    }
    return p;
}
/* the weights' moving average over three SGD steps (decay 0.9: the warm-up formula decides the first steps) */
static struct fr_tensor *c_ema3(struct pcase *P)
{
    struct fr_ctx *c = P->ctx;
    struct fr_tensor *p = IN(P, 7, 33), *g[3] = {IN(P, 7, 33), IN(P, 7, 33), IN(P, 7, 33)}, *avg = IN(P, 7, 33);
    struct fr_tensor *prep = fr_fill(c, FR_F32, SHAPE(4), 0.0f), *lr = fr_fill(c, FR_F32, SHAPE(1), 0.05f);
    for (int s = 0; s < 3; s++) {
        prep = fr_opt_prep(c, prep, lr, NULL);
        p = fr_sgd_step(c, p, g[s], NULL, prep, 1.0f, 0.0f, 0.0f, 0.0f, false);
        avg = fr_ema_step(c, avg, p, prep, 0.9f);
        assert_non_null(avg);
    }
    return avg;
}
static struct fr_tensor *c_sgd3(struct pcase *P) { return opt3(P, OPT_SGD, 0.0f, 0.01f); }
static struct fr_tensor *c_nesterov3(struct pcase *P) { return opt3(P, OPT_NESTEROV, 0.0f, 0.0f); }
static struct fr_tensor *c_sgd3_clip(struct pcase *P) { return opt3(P, OPT_SGD, 2.0f, 0.0f); }
static struct fr_tensor *c_adam3(struct pcase *P) { return opt3(P, OPT_ADAM, 0.0f, 0.01f); }
static struct fr_tensor *c_adamw3(struct pcase *P) { return opt3(P, OPT_ADAMW, 0.0f, 0.1f); }
static struct fr_tensor *c_adamw3_clip(struct pcase *P) { return opt3(P, OPT_ADAMW, 1.0f, 0.01f); }
/* One step of three parameters (different sizes, lr multipliers and weight decays, moments from earlier
 * steps): the updates run in one launch. The output adds them as s1 + (s2 + s3), so the three steps are
 * consecutive graph nodes. */
static struct fr_tensor *opt_multi(struct pcase *P, bool adam)
{
    struct fr_ctx *c = P->ctx;
    struct fr_tensor *hyper = fr_fill(c, FR_F32, SHAPE(4), 0.0f), *lr = fr_fill(c, FR_F32, SHAPE(1), 0.05f);
    struct fr_tensor *prep = fr_opt_prep(c, hyper, lr, NULL), *s[3];
    for (int i = 0; i < 3; i++) {
        int64_t n = 100 + 37 * i;
        struct fr_tensor *p = pin(P, FR_F32, 1, &n, -2.0f, 2.0f), *g = pin(P, FR_F32, 1, &n, -2.0f, 2.0f);
        /* moments as leaves, as an optimizer keeps them (fills would be nodes between the steps) */
        struct fr_tensor *m = pin(P, FR_F32, 1, &n, -1.0f, 1.0f), *v = adam ? pin(P, FR_F32, 1, &n, 0.0f, 1.0f) : NULL;
        float lr_mult = 1.0f - 0.25f * (float)i, wd = 0.01f * (float)i;
        s[i] = adam ? fr_adam_step(c, p, g, m, v, prep, lr_mult, wd, 0.9f, 0.999f, 1e-8f, true)
                    : fr_sgd_step(c, p, g, m, prep, lr_mult, wd, 0.9f, 0.0f, true);
        assert_non_null(s[i]);
        s[i] = fr_slice(c, s[i], 0, 0, 100); /* a common shape to add them */
    }
    return fr_add(c, s[0], fr_add(c, s[1], s[2]));
}
static struct fr_tensor *c_sgd_multi(struct pcase *P) { return opt_multi(P, false); }
static struct fr_tensor *c_adamw_multi(struct pcase *P) { return opt_multi(P, true); }
static struct fr_tensor *c_sgd_plain(struct pcase *P)
{
    /* momentum 0: no buffer */
    struct fr_ctx *c = P->ctx;
    struct fr_tensor *p = IN(P, 1000), *g = IN(P, 1000);
    struct fr_tensor *prep = fr_opt_prep(c, fr_fill(c, FR_F32, SHAPE(4), 0.0f), fr_fill(c, FR_F32, SHAPE(1), 0.1f), NULL);
    return fr_sgd_step(c, p, g, NULL, prep, 1.0f, 0.0f, 0.0f, 0.0f, false);
}

/* ---------------- nn: torchvision activations and pools (cl/nn.cl, cl/pool.cl) ---------------- */
static struct fr_tensor *wide(struct pcase *P, int64_t a, int64_t b)
{
    return pin(P, FR_F32, SHAPE(a, b), -8.0f, 8.0f); /* both kinks of relu6/hardswish/hardsigmoid */
}
static struct fr_tensor *act_bwd(struct pcase *P, enum fr_op op)
{
    struct fr_tensor *x = wide(P, 6, 41), *gy = IN(P, 6, 41);
    return node(P, op, x, 2, (struct fr_tensor *[]){x, gy}, 0);
}
static struct fr_tensor *c_relu6(struct pcase *P) { return fr_relu6(P->ctx, wide(P, 6, 41)); }
static struct fr_tensor *c_relu6_bwd(struct pcase *P) { return act_bwd(P, FR_OP_RELU6_BWD); }
static struct fr_tensor *c_hardsigmoid(struct pcase *P) { return fr_hardsigmoid(P->ctx, wide(P, 6, 41)); }
static struct fr_tensor *c_hardsigmoid_bwd(struct pcase *P) { return act_bwd(P, FR_OP_HARDSIGMOID_BWD); }
static struct fr_tensor *c_hardswish(struct pcase *P) { return fr_hardswish(P->ctx, wide(P, 6, 41)); }
static struct fr_tensor *c_hardswish_bwd(struct pcase *P) { return act_bwd(P, FR_OP_HARDSWISH_BWD); }
static struct fr_tensor *c_silu(struct pcase *P) { return fr_silu(P->ctx, wide(P, 6, 41)); }
static struct fr_tensor *c_silu_bwd(struct pcase *P) { return act_bwd(P, FR_OP_SILU_BWD); }
/* a pool's gradient node as its backward rule makes it: (x, gy) for max, (gy) for the averages */
static struct fr_tensor *pool_grad(struct pcase *P, enum fr_op op, struct fr_tensor *fwd)
{
    assert_non_null(fwd);
    struct fr_tensor *x = fwd->src[0], *gy = IN(P, fwd->ne[0], fwd->ne[1], fwd->ne[2], fwd->ne[3]);
    struct fr_tensor *t = op == FR_OP_MAXPOOL2D_BWD ? fr_node_new(P->ctx, op, FR_F32, 4, x->ne, 2, (struct fr_tensor *[]){x, gy})
                                                    : fr_node_new(P->ctx, op, FR_F32, 4, x->ne, 1, &gy);
    assert_non_null(t);
    memcpy(t->params, fwd->params, sizeof t->params);
    return t;
}
static struct fr_tensor *maxpool_ceil(struct pcase *P)
{
    struct fr_tensor *x = IN(P, 2, 3, 8, 9);
    P->ints[0] = true; /* ties */
    return fr_maxpool2d_ex(P->ctx, x, &(struct fr_pool2d_params){.kernel = 3, .stride = 2, .pad = 1, .ceil_mode = true});
}
static struct fr_tensor *c_maxpool_ceil(struct pcase *P) { return maxpool_ceil(P); }
/* the stored-argmax variant: the index node, the gather it feeds, and the gradient from the index */
static struct fr_tensor *maxpool_kept(struct pcase *P)
{
    struct fr_tensor *x = IN(P, 2, 3, 8, 9);
    P->ints[0] = true; /* ties: the first maximum */
    struct fr_pool2d_params pp = {.kernel = 3, .stride = 2, .pad = 1, .ceil_mode = true, .keep_index = true};
    return fr_maxpool2d_ex(P->ctx, x, &pp);
}
static struct fr_tensor *c_maxpool_index(struct pcase *P) { return maxpool_kept(P)->src[1]; }
static struct fr_tensor *c_maxpool_at(struct pcase *P) { return maxpool_kept(P); }
static struct fr_tensor *c_maxpool_bwd_at(struct pcase *P)
{
    struct fr_tensor *y = maxpool_kept(P), *gy = IN(P, y->ne[0], y->ne[1], y->ne[2], y->ne[3]);
    struct fr_tensor *t = fr_node_new(P->ctx, FR_OP_MAXPOOL2D_BWD, FR_F32, 4, y->src[0]->ne, 2,
                                      (struct fr_tensor *[]){y->src[1], gy});
    assert_non_null(t);
    memcpy(t->params, y->params, sizeof t->params);
    return t;
}
static struct fr_tensor *c_maxpool_ceil_bwd(struct pcase *P)
{
    return pool_grad(P, FR_OP_MAXPOOL2D_BWD, maxpool_ceil(P));
}
/* the average pools' gradients do not read x: their rows build the forward on a tensor that is no input */
static struct fr_tensor *pool_x(struct pcase *P, bool input, int64_t h, int64_t w)
{
    return input ? IN(P, 2, 3, h, w) : fr_tensor_new(P->ctx, FR_F32, SHAPE(2, 3, h, w));
}
static struct fr_tensor *avgpool_ceil(struct pcase *P, bool excl, bool input)
{
    struct fr_pool2d_params pp = {.kernel = 3, .stride = 2, .pad = excl, .ceil_mode = true, .exclude_pad = excl};
    return fr_avgpool2d_ex(P->ctx, pool_x(P, input, 8, 7), &pp);
}
static struct fr_tensor *c_avgpool_ceil(struct pcase *P) { return avgpool_ceil(P, false, true); }
static struct fr_tensor *c_avgpool_excl(struct pcase *P) { return avgpool_ceil(P, true, true); }
static struct fr_tensor *c_avgpool_excl_bwd(struct pcase *P)
{
    return pool_grad(P, FR_OP_AVGPOOL2D_BWD, avgpool_ceil(P, true, false));
}
static struct fr_tensor *c_adaptive(struct pcase *P) { return fr_adaptive_avgpool2d(P->ctx, pool_x(P, true, 7, 10), 3, 4); }
static struct fr_tensor *c_adaptive_bwd(struct pcase *P)
{
    return pool_grad(P, FR_OP_ADAPTIVE_AVGPOOL2D_BWD, fr_adaptive_avgpool2d(P->ctx, pool_x(P, false, 7, 10), 3, 4));
}

/* grouped / depthwise / dilated convs (MobileNet, EfficientNet) and their gradient nodes */
/* which = 0: the forward (x, w, bias inputs); 1: only w is an input (grad input); 2: only x (grad weight) */
static struct fr_tensor *conv_g(struct pcase *P, int which, int64_t c, int64_t o, int g, int k, int s, int d)
{
    struct fr_tensor *x = which != 1 ? IN(P, 2, c, 9, 8) : fr_tensor_new(P->ctx, FR_F32, SHAPE(2, c, 9, 8));
    struct fr_tensor *w = which != 2 ? IN(P, o, c / g, k, k) : fr_tensor_new(P->ctx, FR_F32, SHAPE(o, c / g, k, k));
    struct fr_conv2d_params p = {.stride_h = s, .stride_w = s, .pad_h = d * (k / 2), .pad_w = d * (k / 2),
                                 .dil_h = d, .dil_w = d, .groups = g};
    return fr_conv2d_ex(P->ctx, x, w, which == 0 ? IN(P, o) : NULL, &p);
}
static struct fr_tensor *conv_grad(struct pcase *P, enum fr_op op, struct fr_tensor *y)
{
    assert_non_null(y);
    struct fr_tensor *gy = IN(P, y->ne[0], y->ne[1], y->ne[2], y->ne[3]);
    struct fr_tensor *like = op == FR_OP_CONV2D_BWD_INPUT ? y->src[0] : y->src[1];
    struct fr_tensor *a = op == FR_OP_CONV2D_BWD_INPUT ? y->src[1] : y->src[0];
    struct fr_tensor *t = fr_node_new(P->ctx, op, FR_F32, 4, like->ne, 2, (struct fr_tensor *[]){a, gy});
    assert_non_null(t);
    memcpy(t->params, y->params, sizeof t->params);
    t->params[7].i = 0; /* no fused ReLU in a gradient */
    return t;
}
static struct fr_tensor *c_conv_dw(struct pcase *P) { return conv_g(P, 0, 6, 6, 6, 3, 2, 1); }
static struct fr_tensor *c_conv_dw5(struct pcase *P) { return conv_g(P, 0, 4, 4, 4, 5, 1, 1); }
static struct fr_tensor *c_conv_dil(struct pcase *P) { return conv_g(P, 0, 4, 6, 2, 3, 1, 2); }
static struct fr_tensor *c_conv_dw_bwd_input(struct pcase *P)
{
    return conv_grad(P, FR_OP_CONV2D_BWD_INPUT, conv_g(P, 1, 6, 6, 6, 3, 2, 1));
}
static struct fr_tensor *c_conv_dw_bwd_weight(struct pcase *P)
{
    return conv_grad(P, FR_OP_CONV2D_BWD_WEIGHT, conv_g(P, 2, 6, 6, 6, 3, 2, 1));
}
static struct fr_tensor *c_conv_dil_bwd_input(struct pcase *P)
{
    return conv_grad(P, FR_OP_CONV2D_BWD_INPUT, conv_g(P, 1, 4, 6, 2, 3, 1, 2));
}
static struct fr_tensor *c_conv_dil_bwd_weight(struct pcase *P)
{
    return conv_grad(P, FR_OP_CONV2D_BWD_WEIGHT, conv_g(P, 2, 4, 6, 2, 3, 1, 2));
}

static struct fr_tensor *c_bn_fold(struct pcase *P)
{
    struct fr_tensor *w = IN(P, 37), *b = IN(P, 37), *rm = IN(P, 37);
    struct fr_tensor *rv = pin(P, FR_F32, SHAPE(37), 0.01f, 3.0f);
    return fr_batchnorm_fold(P->ctx, w, b, rm, rv, 1e-3f);
}

/* ---------------- nn: conv2d (GEMM, batched 1x1 GEMM and direct paths), channel sums ---------------- */
enum { CV_FWD, CV_BWD_INPUT, CV_BWD_WEIGHT };
/* x [n,c,h,w], weight [o, c/groups, kh, kw]: the forward or one gradient node as the backward rule makes it */
static struct fr_tensor *conv(struct pcase *P, int which, const int64_t *xs, int64_t o, int64_t kh, int64_t kw,
                              struct fr_conv2d_params p, bool bias)
{
    int64_t groups = p.groups ? p.groups : 1, ws[4] = {o, xs[1] / groups, kh, kw};
    /* a gradient node reads only two of them: the others just give the forward its shape */
    struct fr_tensor *x = which != CV_BWD_INPUT ? pin(P, FR_F32, 4, xs, -2.0f, 2.0f)
                                                : fr_tensor_new(P->ctx, FR_F32, 4, xs);
    struct fr_tensor *w = which != CV_BWD_WEIGHT ? pin(P, FR_F32, 4, ws, -2.0f, 2.0f)
                                                 : fr_tensor_new(P->ctx, FR_F32, 4, ws);
    struct fr_tensor *b = !bias               ? NULL
                          : which == CV_FWD ? pin(P, FR_F32, SHAPE(o), -2.0f, 2.0f)
                                            : fr_tensor_new(P->ctx, FR_F32, SHAPE(o));
    struct fr_tensor *y = fr_conv2d_ex(P->ctx, x, w, b, &p);
    assert_non_null(y);
    if (which == CV_FWD)
        return y;
    struct fr_tensor *gy = pin(P, FR_F32, 4, y->ne, -2.0f, 2.0f);
    struct fr_tensor *d = which == CV_BWD_INPUT ? fr_node_new(P->ctx, FR_OP_CONV2D_BWD_INPUT, FR_F32, 4, x->ne, 2,
                                                              (struct fr_tensor *[]){w, gy})
                                                : fr_node_new(P->ctx, FR_OP_CONV2D_BWD_WEIGHT, FR_F32, 4, w->ne, 2,
                                                              (struct fr_tensor *[]){x, gy});
    assert_non_null(d);
    memcpy(d->params, y->params, sizeof d->params);
    return d;
}
/* 3x3, padding 1, bias and ReLU: im2col + GEMM */
static struct fr_tensor *cv_gemm(struct pcase *P, int which)
{
    return conv(P, which, (int64_t[]){3, 5, 9, 7}, 6, 3, 3,
                (struct fr_conv2d_params){.pad_h = 1, .pad_w = 1, .relu = true}, true);
}
/* stride 2, dilation 2, two groups: a GEMM per group */
static struct fr_tensor *cv_groups(struct pcase *P, int which)
{
    return conv(P, which, (int64_t[]){2, 8, 11, 10}, 8, 3, 3,
                (struct fr_conv2d_params){.stride_h = 2, .stride_w = 2, .pad_h = 2, .pad_w = 2, .dil_h = 2, .dil_w = 2,
                                          .groups = 2},
                false);
}
/* 1x1, two groups, bias and ReLU: batched GEMMs on the input itself, no columns */
static struct fr_tensor *cv_1x1(struct pcase *P, int which)
{
    return conv(P, which, (int64_t[]){3, 16, 5, 6}, 16, 1, 1, (struct fr_conv2d_params){.groups = 2, .relu = true},
                true);
}
/* 5x2 kernel, strides (2, 1), padding (2, 0): rectangular geometry through the columns */
static struct fr_tensor *cv_rect(struct pcase *P, int which)
{
    return conv(P, which, (int64_t[]){2, 3, 8, 9}, 7, 5, 2,
                (struct fr_conv2d_params){.stride_h = 2, .stride_w = 1, .pad_h = 2, .pad_w = 0}, true);
}
/* depthwise 3x3 stride 2: the direct kernels */
static struct fr_tensor *cv_depthwise(struct pcase *P, int which)
{
    return conv(P, which, (int64_t[]){2, 6, 7, 8}, 6, 3, 3,
                (struct fr_conv2d_params){.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .groups = 6}, true);
}
/* 3x3 stride 1 with >= 8 channels in and out: Winograd F(2x2, 3x3); odd map sizes, paddings 1 and (2, 0) */
static struct fr_tensor *cv_wino(struct pcase *P, int which)
{
    return conv(P, which, (int64_t[]){3, 8, 9, 7}, 10, 3, 3,
                (struct fr_conv2d_params){.pad_h = 1, .pad_w = 1, .relu = true}, true);
}
static struct fr_tensor *cv_wino_pads(struct pcase *P, int which)
{
    return conv(P, which, (int64_t[]){2, 9, 6, 11}, 8, 3, 3, (struct fr_conv2d_params){.pad_h = 2, .pad_w = 0}, false);
}
/* long sums per weight: split over work-groups (depthwise) or into split-K GEMMs when sized as a GPU */
static struct fr_tensor *c_cv_long_dw(struct pcase *P)
{
    return conv(P, CV_BWD_WEIGHT, (int64_t[]){4, 3, 20, 20}, 8, 3, 3, (struct fr_conv2d_params){.pad_h = 1, .pad_w = 1},
                true);
}
static struct fr_tensor *c_cv_wino_long_dw(struct pcase *P)
{
    return conv(P, CV_BWD_WEIGHT, (int64_t[]){9, 8, 13, 17}, 8, 3, 3, (struct fr_conv2d_params){.pad_h = 1, .pad_w = 1},
                false);
}
static struct fr_tensor *c_cv_depthwise_long_dw(struct pcase *P)
{
    return conv(P, CV_BWD_WEIGHT, (int64_t[]){8, 4, 24, 24}, 4, 3, 3,
                (struct fr_conv2d_params){.pad_h = 1, .pad_w = 1, .groups = 4}, false);
}
#define CONV_CASES(NAME)                                                                                          \
    static struct fr_tensor *c_##NAME(struct pcase *P) { return NAME(P, CV_FWD); }                                \
    static struct fr_tensor *c_##NAME##_dx(struct pcase *P) { return NAME(P, CV_BWD_INPUT); }                     \
    static struct fr_tensor *c_##NAME##_dw(struct pcase *P) { return NAME(P, CV_BWD_WEIGHT); }
CONV_CASES(cv_gemm)
CONV_CASES(cv_groups)
CONV_CASES(cv_1x1)
CONV_CASES(cv_rect)
CONV_CASES(cv_depthwise)
CONV_CASES(cv_wino)
CONV_CASES(cv_wino_pads)
static struct fr_tensor *c_channel_sum(struct pcase *P)
{
    struct fr_tensor *x = IN(P, 5, 7, 6, 3);
    return fr_node_new(P->ctx, FR_OP_CHANNEL_SUM, FR_F32, SHAPE(7), 1, &x);
}
/* batch-norm: the statistics node, the normalisation, gradient statistics and input gradient */
static struct fr_tensor *bn(struct pcase *P, int64_t n, int64_t c, int64_t h, int64_t w, bool bias)
{
    struct fr_tensor *x = pin(P, FR_F32, 4, (int64_t[]){n, c, h, w}, -2.0f, 3.0f);
    struct fr_tensor *wt = IN(P, c), *b = bias ? IN(P, c) : fr_tensor_new(P->ctx, FR_F32, SHAPE(c));
    /* running statistics must be leaves (the kernels update them in place) */
    struct fr_tensor *rm = pin(P, FR_F32, SHAPE(c), -1.0f, 1.0f), *rv = pin(P, FR_F32, SHAPE(c), 0.5f, 2.0f);
    struct fr_tensor *y = fr_batchnorm(P->ctx, x, wt, b, rm, rv, 1e-5f, 0.1f);
    assert_non_null(y);
    return y;
}
static struct fr_tensor *c_bn(struct pcase *P) { return bn(P, 6, 5, 7, 3, true); }
static struct fr_tensor *c_bn_relu(struct pcase *P) { return fr_batchnorm_fuse_relu(bn(P, 6, 5, 7, 3, true)); }
static struct fr_tensor *c_bn_stats_long(struct pcase *P) { return bn(P, 16, 3, 20, 20, false)->src[3]; }
static struct fr_tensor *bn_grad(struct pcase *P, bool dx)
{
    struct fr_tensor *y = bn(P, 8, 6, 16, 16, false), *x = y->src[0], *gy = IN(P, 8, 6, 16, 16);
    struct fr_tensor *gst = fr_node_new(P->ctx, FR_OP_BATCHNORM_BWD_STATS, FR_F32, SHAPE(2, 6), 3,
                                        (struct fr_tensor *[]){x, gy, y->src[3]});
    if (!dx)
        return gst;
    struct fr_tensor *d = fr_node_new(P->ctx, FR_OP_BATCHNORM_BWD, FR_F32, 4, x->ne, 5,
                                      (struct fr_tensor *[]){x, gy, y->src[1], y->src[3], gst});
    d->params[0] = y->params[0];
    return d;
}
static struct fr_tensor *c_bn_gstats(struct pcase *P) { return bn_grad(P, false); }
static struct fr_tensor *c_bn_dx(struct pcase *P) { return bn_grad(P, true); }
static struct fr_tensor *c_bn1d(struct pcase *P)
{
    struct fr_tensor *x = IN(P, 9, 4), *wt = IN(P, 4), *b = IN(P, 4);
    struct fr_tensor *rm = pin(P, FR_F32, SHAPE(4), -1.0f, 1.0f), *rv = pin(P, FR_F32, SHAPE(4), 0.5f, 2.0f);
    return fr_batchnorm(P->ctx, x, wt, b, rm, rv, 1e-3f, 0.2f);
}

/* dropout and drop-path in training: the same Philox units on both paths, so bit-identical */
static struct fr_tensor *c_dropout(struct pcase *P) { return fr_dropout(P->ctx, IN(P, 7, 33), 0.3f); }
static struct fr_tensor *c_drop_path(struct pcase *P) { return fr_drop_path(P->ctx, IN(P, 9, 5, 31), 0.6f); }

static struct fr_tensor *c_sum_to_long(struct pcase *P) { return fr_sum_to(P->ctx, IN(P, 40, 1000), SHAPE(1)); }

static const struct prow rows[] = {
    {"cont transpose", c_cont_transpose, 0, 0, false, false},
    {"cont permute 4d", c_cont_permute4, 0, 0, false, false},
    {"cont slice", c_cont_slice, 0, 0, false, false},
    {"cont u8 transpose", c_cont_u8, 0, 0, false, false},
    {"cont i32 transpose", c_cont_i32, 0, 0, false, false},
    {"cont broadcast", c_cont_broadcast, 0, 0, false, false},
    {"fill f32", c_fill_f32, 0, 0, false, false},
    {"fill i32", c_fill_i32, 0, 0, false, false},
    {"fill u8 clamped", c_fill_u8, 0, 0, false, false},
    {"add 7x13", c_add, 0, 0, false, false},
    {"sub broadcast [5,1,3]-[4,3]", c_sub_bcast, 0, 0, false, false},
    {"mul row broadcast", c_mul_row, 0, 0, false, false},
    {"div broadcast", c_div, 0, 0, false, false},
    {"add scalar", c_add_scalar, 0, 0, false, false},
    {"add strided views", c_add_views, 0, 0, false, false},
    {"scale_add", c_scale, 0, 0, false, false},
    {"relu of a view", c_relu, 0, 0, false, false},
    {"relu_bwd", c_relu_bwd, 0, 0, false, false},
    {"matmul nn", c_mm_nn, 1e-5f, 1e-5f, false, false},
    {"matmul tn", c_mm_tn, 1e-5f, 1e-5f, false, false},
    {"matmul nt", c_mm_nt, 1e-5f, 1e-5f, false, false},
    {"matmul tt", c_mm_tt, 1e-5f, 1e-5f, false, false},
    {"matmul several 64-blocks 100x70x130", c_mm_blocks, 1e-5f, 1e-5f, false, false},
    {"matmul vector", c_mm_vec, 1e-5f, 1e-5f, false, false},
    {"matmul strided views", c_mm_view, 1e-5f, 1e-5f, false, false},
    {"sum axis 0", c_sum0, 1e-6f, 1e-6f, false, false},
    {"sum 1000 long", c_sum_last, 1e-5f, 1e-6f, false, false},
    {"mean axis 1", c_mean1, 1e-6f, 1e-6f, false, false},
    {"mean of a view", c_mean_view, 1e-6f, 1e-6f, false, false},
    {"max with ties", c_max_ties, 0, 0, false, false},
    {"max_bwd first maximum", c_max_bwd, 0, 0, false, false},
    {"sum_to rows", c_sum_to_rows, 1e-6f, 1e-6f, false, false},
    {"sum_to keepdim", c_sum_to_keep, 1e-6f, 1e-6f, false, false},
    {"sum_to scalar", c_sum_to_all, 1e-5f, 1e-6f, false, false},
    {"softmax last axis, wide range", c_softmax_last, 1e-7f, 1e-5f, false, false},
    {"softmax axis 0", c_softmax_axis0, 1e-7f, 1e-5f, false, false},
    {"log_softmax of a view", c_log_softmax, 1e-6f, 1e-6f, false, false},
    {"softmax_bwd", c_softmax_bwd, 1e-6f, 1e-5f, false, false},
    {"log_softmax_bwd", c_log_softmax_bwd, 1e-6f, 1e-5f, false, false},
    {"convert u8->f32", c_u8_to_f32, 0, 0, false, false},
    {"convert f32->u8 round/clamp", c_f32_to_u8, 0, 0, false, false},
    {"convert f32->i32", c_f32_to_i32, 0, 0, false, false},
    {"convert i32->f32 view", c_i32_to_f32, 0, 0, false, false},
    {"normalize channel axis 1", c_normalize, 1e-6f, 1e-6f, false, false},
    {"normalize last axis", c_normalize_last, 1e-6f, 1e-6f, false, false},
    {"relu6 across both kinks", c_relu6, 0, 0, false, false},
    {"relu6_bwd", c_relu6_bwd, 0, 0, false, false},
    {"hardsigmoid", c_hardsigmoid, 1e-7f, 1e-6f, false, false},
    {"hardsigmoid_bwd", c_hardsigmoid_bwd, 1e-7f, 1e-6f, false, false},
    {"hardswish", c_hardswish, 1e-6f, 1e-6f, false, false},
    {"hardswish_bwd", c_hardswish_bwd, 1e-6f, 1e-6f, false, false},
    {"silu", c_silu, 1e-6f, 1e-5f, false, false},
    {"silu_bwd", c_silu_bwd, 1e-6f, 1e-5f, false, false},
    {"maxpool 3/2 pad 1 ceil_mode, ties", c_maxpool_ceil, 0, 0, false, false},
    {"maxpool_bwd 3/2 pad 1 ceil_mode, ties", c_maxpool_ceil_bwd, 0, 0, true, false},
    {"maxpool_index 3/2 pad 1 ceil_mode, ties", c_maxpool_index, 0, 0, false, false},
    {"maxpool at a stored index", c_maxpool_at, 0, 0, true, false},
    {"maxpool_bwd from a stored index", c_maxpool_bwd_at, 0, 0, true, false},
    {"avgpool 3/2 ceil_mode", c_avgpool_ceil, 1e-6f, 1e-6f, false, false},
    {"avgpool 3/2 pad 1 ceil_mode exclude_pad", c_avgpool_excl, 1e-6f, 1e-6f, false, false},
    {"avgpool_bwd 3/2 pad 1 ceil_mode exclude_pad", c_avgpool_excl_bwd, 1e-6f, 1e-6f, true, false},
    {"adaptive_avgpool 7x10 -> 3x4", c_adaptive, 1e-6f, 1e-6f, false, false},
    {"adaptive_avgpool_bwd", c_adaptive_bwd, 1e-6f, 1e-6f, true, false},
    {"batchnorm_fold", c_bn_fold, 1e-6f, 1e-6f, false, false},
    {"conv depthwise 3x3/2", c_conv_dw, 1e-5f, 1e-5f, false, false},
    {"conv depthwise 5x5", c_conv_dw5, 1e-5f, 1e-5f, false, false},
    {"conv groups 2 dilation 2", c_conv_dil, 1e-5f, 1e-5f, false, false},
    {"conv_bwd_input depthwise 3x3/2", c_conv_dw_bwd_input, 1e-5f, 1e-5f, false, false},
    {"conv_bwd_weight depthwise 3x3/2", c_conv_dw_bwd_weight, 1e-5f, 1e-5f, false, false},
    {"conv_bwd_input groups 2 dilation 2", c_conv_dil_bwd_input, 1e-5f, 1e-5f, false, false},
    {"conv_bwd_weight groups 2 dilation 2", c_conv_dil_bwd_weight, 1e-5f, 1e-5f, false, false},
    {"chain matmul+bias+relu+log_softmax+sum+mean", c_chain, 1e-5f, 1e-5f, true, false},
    {"cross_entropy", c_ce, 1e-7f, 1e-5f, false, false},
    {"cross_entropy 5000 rows", c_ce_long, 1e-6f, 1e-5f, false, false},
    {"cross_entropy smoothed, weighted, confident", c_ce_smooth, 1e-7f, 1e-5f, false, false},
    {"cross_entropy_bwd smoothed, weighted, confident", c_ce_bwd, 1e-7f, 1e-5f, true, false},
    {"cross_entropy_bwd", c_ce_bwd_plain, 1e-7f, 1e-5f, true, false},
    {"soft_cross_entropy weighted", c_soft_ce, 1e-7f, 1e-5f, false, false},
    {"soft_cross_entropy_bwd", c_soft_ce_bwd, 1e-7f, 1e-5f, true, false},
    {"distill alpha 0.7 T 3 weighted, some unlabeled", c_distill, 1e-7f, 1e-5f, false, false},
    {"distill alpha 1 T 4 no labels", c_distill_soft, 1e-7f, 1e-5f, false, false},
    {"distill_bwd alpha 0.7 T 3", c_distill_bwd, 1e-7f, 1e-5f, true, false},
    {"distill_bwd alpha 1 T 4", c_distill_soft_bwd, 1e-7f, 1e-5f, true, false},
    {"mse weighted [6,3,5]", c_mse, 1e-7f, 1e-5f, false, false},
    {"mse_bwd", c_mse_bwd, 1e-7f, 1e-5f, true, false},
    {"mse 300 rows", c_mse_plain, 1e-7f, 1e-5f, false, false},
    {"opt_sumsq chained with carry", c_sumsq_carry, 1e-6f, 1e-6f, true, false},
    {"opt_clip", c_clip, 1e-7f, 1e-6f, true, false},
    {"sgd momentum+dampening+wd 3 steps", c_sgd3, 2e-7f, 1e-6f, true, false},
    {"sgd nesterov 3 steps", c_nesterov3, 2e-7f, 1e-6f, true, false},
    {"sgd momentum 3 steps clipped", c_sgd3_clip, 2e-7f, 1e-6f, true, false},
    {"sgd no momentum", c_sgd_plain, 0, 0, true, false},
    {"adam L2 3 steps", c_adam3, 2e-7f, 1e-6f, true, false},
    {"adamw 3 steps", c_adamw3, 2e-7f, 1e-6f, true, false},
    {"adamw 3 steps clipped", c_adamw3_clip, 2e-7f, 1e-6f, true, false},
    {"sgd nesterov 3 tensors in one launch", c_sgd_multi, 2e-7f, 1e-6f, true, false},
    {"adamw 3 tensors in one launch", c_adamw_multi, 2e-7f, 1e-6f, true, false},
    {"sum_to scalar of 40000", c_sum_to_long, 1e-3f, 1e-6f, false, false},
    {"conv 3x3 pad 1 bias relu", c_cv_gemm, 1e-4f, 1e-5f, false, false},
    {"conv 3x3 pad 1 grad input", c_cv_gemm_dx, 1e-4f, 1e-5f, false, false},
    {"conv 3x3 pad 1 grad weight", c_cv_gemm_dw, 1e-4f, 1e-5f, false, false},
    {"conv stride 2 dilation 2 groups 2", c_cv_groups, 1e-4f, 1e-5f, false, false},
    {"conv stride 2 dilation 2 groups 2 grad input", c_cv_groups_dx, 1e-4f, 1e-5f, false, false},
    {"conv stride 2 dilation 2 groups 2 grad weight", c_cv_groups_dw, 1e-4f, 1e-5f, false, false},
    {"conv 1x1 groups 2 bias relu", c_cv_1x1, 1e-4f, 1e-5f, false, false},
    {"conv 1x1 groups 2 grad input", c_cv_1x1_dx, 1e-4f, 1e-5f, false, false},
    {"conv 1x1 groups 2 grad weight", c_cv_1x1_dw, 1e-4f, 1e-5f, false, false},
    {"conv 5x2 stride (2,1) pad (2,0)", c_cv_rect, 1e-4f, 1e-5f, false, false},
    {"conv 5x2 stride (2,1) pad (2,0) grad input", c_cv_rect_dx, 1e-4f, 1e-5f, false, false},
    {"conv 5x2 stride (2,1) pad (2,0) grad weight", c_cv_rect_dw, 1e-4f, 1e-5f, false, false},
    {"conv depthwise stride 2", c_cv_depthwise, 1e-4f, 1e-5f, false, false},
    {"conv depthwise stride 2 grad input", c_cv_depthwise_dx, 1e-4f, 1e-5f, false, false},
    {"conv depthwise stride 2 grad weight", c_cv_depthwise_dw, 1e-4f, 1e-5f, false, false},
    {"conv winograd 3x3 pad 1 bias relu", c_cv_wino, 1e-4f, 1e-5f, false, false},
    {"conv winograd 3x3 pad 1 grad input", c_cv_wino_dx, 1e-4f, 1e-5f, false, false},
    {"conv winograd 3x3 pad 1 grad weight", c_cv_wino_dw, 1e-4f, 1e-5f, false, false},
    {"conv winograd 3x3 pad (2,0)", c_cv_wino_pads, 1e-4f, 1e-5f, false, false},
    {"conv winograd 3x3 pad (2,0) grad input", c_cv_wino_pads_dx, 1e-4f, 1e-5f, false, false},
    {"conv winograd 3x3 pad (2,0) grad weight", c_cv_wino_pads_dw, 1e-4f, 1e-5f, false, false},
    {"conv 3x3 grad weight over 1600 positions", c_cv_long_dw, 1e-4f, 1e-5f, false, false},
    {"conv winograd grad weight over 567 tiles", c_cv_wino_long_dw, 1e-4f, 1e-5f, false, false},
    {"conv depthwise grad weight over 4608 positions", c_cv_depthwise_long_dw, 1e-4f, 1e-5f, false, false},
    {"channel_sum", c_channel_sum, 1e-5f, 1e-6f, false, false},
    {"batchnorm train [6,5,7,3]", c_bn, 1e-5f, 1e-5f, true, true},
    {"batchnorm eval [6,5,7,3]", c_bn, 1e-6f, 1e-6f, true, false},
    {"batchnorm train fused relu [6,5,7,3]", c_bn_relu, 1e-5f, 1e-5f, true, true},
    {"batchnorm train [9,4] (1d)", c_bn1d, 1e-5f, 1e-5f, true, true},
    {"batchnorm train statistics over 6400 values", c_bn_stats_long, 1e-6f, 1e-5f, true, true},
    {"batchnorm gradient statistics", c_bn_gstats, 1e-5f, 1e-5f, true, true},
    {"batchnorm grad input", c_bn_dx, 1e-5f, 1e-5f, true, true},
    {"dropout train", c_dropout, 0, 0, false, true},
    {"drop_path train", c_drop_path, 0, 0, false, true},
    /* new rows go last: a row's inputs are drawn from its index */
    {"pseudo_targets one-hot, threshold 0.6", c_pseudo_hard, 0, 0, false, false},
    {"pseudo_targets softmax T 0.5, threshold 0.6", c_pseudo_soft, 1e-7f, 1e-5f, false, false},
    {"ema of 3 sgd steps", c_ema3, 1e-7f, 1e-6f, true, false},
};
#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))

/* ---------------- runner ---------------- */
static void fill_inputs(struct pcase *P, int row)
{
    for (int i = 0; i < P->n_in; i++) {
        struct fr_tensor *t = P->in[i];
        size_t n = (size_t)fr_nelements(t);
        float *f = malloc(n * sizeof(float));
        assert_non_null(f);
        tu_fill_uniform(f, n, (uint32_t)(1000 * row + i + 1), P->lo[i], P->hi[i]);
        void *buf = f;
        uint8_t *u = NULL;
        int32_t *s = NULL;
        if (t->type == FR_F32 && P->ints[i]) {
            for (size_t k = 0; k < n; k++) /* integers and exact halves */
                f[k] = (float)(int)(f[k] * 2.0f) * 0.5f;
        } else if (t->type == FR_U8) {
            u = malloc(n);
            for (size_t k = 0; k < n; k++)
                u[k] = (uint8_t)(int)f[k];
            buf = u;
        } else if (t->type == FR_I32) {
            s = malloc(n * 4);
            for (size_t k = 0; k < n; k++)
                s[k] = (int32_t)floorf(f[k]); /* floor: a range starting at -1 yields -1 too */
            buf = s;
        }
        assert_int_equal(fr_tensor_set(t, buf, n * fr_dtype_size(t->type)), FR_STATUS_OK);
        free(f);
        free(u);
        free(s);
    }
}

/* Runs row r on backend b; returns the result in a guarded host buffer (*type set). */
static void *run_row(int r, struct fr_backend *b, enum fr_dtype *type, size_t *bytes, int *fallbacks)
{
    struct pcase P = {.ctx = fr_ctx_new()};
    assert_non_null(P.ctx);
    struct fr_tensor *out = rows[r].build(&P);
    if (!out)
        fail_msg("%s: build failed: %s", rows[r].name, fr_last_error());
    struct fr_graph *g = fr_graph_new(P.ctx);
    fr_graph_set_guard(g, !rows[r].no_guard);
    assert_int_equal(fr_graph_add(g, out), FR_STATUS_OK);
    if (fr_graph_plan(g, b) != FR_STATUS_OK)
        fail_msg("%s on %s: plan: %s", rows[r].name, fr_backend_name(b), fr_last_error());
    fill_inputs(&P, r);
    fr_graph_set_training(g, rows[r].training);
    fr_graph_set_seed(g, 7);
    fr_graph_set_step(g, 3);
    if (fr_graph_compute(g) != FR_STATUS_OK)
        fail_msg("%s on %s: compute: %s", rows[r].name, fr_backend_name(b), fr_last_error());
    *type = out->type;
    *bytes = (size_t)fr_nelements(out) * fr_dtype_size(out->type);
    void *res = tu_guard_alloc(*bytes);
    if (fr_tensor_get(out, res, *bytes) != FR_STATUS_OK)
        fail_msg("%s on %s: get: %s", rows[r].name, fr_backend_name(b), fr_last_error());
    tu_guard_check(res);
    struct fr_graph_stats st;
    fr_graph_get_stats(g, &st);
    *fallbacks = st.fallback_ops;
    fr_graph_free(g);
    fr_ctx_free(P.ctx);
    return res;
}

/* The criteria of tu_assert_close / tu_assert_bytes_equal, to name the row before they fail. */
static bool same(const void *got, const void *want, size_t bytes, bool exact, float atol, float rtol)
{
    if (exact)
        return memcmp(got, want, bytes) == 0;
    const float *g = got, *w = want;
    for (size_t i = 0; i < bytes / 4; i++) {
        float d = fabsf(g[i] - w[i]);
        if (!(d <= atol + rtol * fabsf(w[i])) || isnan(g[i]) != isnan(w[i]))
            return false;
    }
    return true;
}

static struct fr_device_info *devs;
static int n_devs;

static void compare_all(bool clblast, bool gpu_sizing)
{
    (void)gpu_sizing;
    struct fr_backend *cpu = fr_backend_cpu_new(0);
    assert_non_null(cpu);
    int usable = 0;
    for (int d = 0; d < n_devs; d++) {
        if (!devs[d].usable)
            continue;
        usable++;
        setenv("FRUGAL_CLBLAST", clblast ? "on" : "off", 1);
        struct fr_backend *cl;
        if (fr_backend_open(devs[d].spec, &cl) != FR_STATUS_OK)
            fail_msg("%s: %s", devs[d].spec, fr_last_error());
        for (int r = 0; r < N_ROWS; r++) {
            if (!clblast && strncmp(rows[r].name, "matmul", 6) != 0 && strncmp(rows[r].name, "chain", 5) != 0 &&
                strncmp(rows[r].name, "conv", 4) != 0)
                continue; /* the gemm.cl pass only needs the rows that multiply */
            enum fr_dtype t0, t1;
            size_t n0, n1;
            int fb0, fb1;
            void *want = run_row(r, cpu, &t0, &n0, &fb0);
            void *got = run_row(r, cl, &t1, &n1, &fb1);
            /* the same device gives the same bits run to run (fixed reduction orders, no atomics) */
            {
                enum fr_dtype t2;
                size_t n2;
                int fb2;
                void *again = run_row(r, cl, &t2, &n2, &fb2);
                if (memcmp(again, got, n1) != 0)
                    fail_msg("%s on %s: two runs differ", rows[r].name, devs[d].spec);
                tu_guard_free(again);
            }
            assert_int_equal(t0, t1);
            assert_int_equal(n0, n1);
            if (fb1 != 0)
                fail_msg("%s on %s: %d ops fell back to the CPU path", rows[r].name, devs[d].spec, fb1);
            bool exact = t0 != FR_F32 || (rows[r].atol == 0 && rows[r].rtol == 0);
            if (!same(got, want, n0, exact, rows[r].atol, rows[r].rtol))
                printf("# mismatch in row '%s' on %s (%s)\n", rows[r].name, devs[d].spec,
                       clblast ? "CLBlast" : "gemm.cl");
            if (exact)
                tu_assert_bytes_equal(got, want, n0);
            else
                tu_assert_close(got, want, n0 / 4, rows[r].atol, rows[r].rtol);
            tu_guard_free(want);
            tu_guard_free(got);
        }
        fr_backend_free(cl);
        unsetenv("FRUGAL_CLBLAST");
    }
    fr_backend_free(cpu);
    assert_true(usable > 0);
}

static void test_parity_clblast(void **state)
{
    (void)state;
    compare_all(true, false);
}

/* The portable gemm.cl path, also what a build without CLBlast uses. */
static void test_parity_gemm_cl(void **state)
{
    (void)state;
    compare_all(false, false);
}

/* As a large GPU sizes the work: reductions split over many work-groups, split-K weight gradients, and
 * convolution columns chunked a sample at a time (a 4 KiB scratch budget). */
static void test_parity_gpu_sizing(void **state)
{
    (void)state;
#if FRUGAL_HAVE_OPENCL
    fr_cl_set_sizing(0, 1 << 20);
    compare_all(true, true);
    fr_cl_set_sizing(4 << 10, 1 << 20); /* conv columns one sample at a time */
    compare_all(true, true);
    fr_cl_set_sizing(0, 0);
#endif
}

int main(void)
{
    fr_opencl_list_devices(&devs, &n_devs);
    int usable = 0;
    for (int i = 0; i < n_devs; i++)
        usable += devs[i].usable;
    if (usable == 0) {
        printf("SKIPPED: test_parity: no usable OpenCL device (%d listed); the OpenCL path is not tested here\n",
               n_devs);
        fr_opencl_free_devices(devs);
        return 77; /* meson's skip code */
    }
    for (int i = 0; i < n_devs; i++)
        printf("# parity on %s: %s (%s)%s\n", devs[i].spec, devs[i].name, devs[i].platform_name,
               devs[i].usable ? "" : " (not usable, skipped)");
    printf("# %d parity rows\n", N_ROWS);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_clblast),
        cmocka_unit_test(test_parity_gemm_cl),
        cmocka_unit_test(test_parity_gpu_sizing),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fr_opencl_free_devices(devs);
    return rc;
}
