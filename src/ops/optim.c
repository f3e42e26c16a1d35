/* Optimizer ops: constructors and shape checks of gradient sum-of-squares, clipping scale, the per-step
 * scalar update (step count, learning rate, clip scale) and the in-place SGD/Adam parameter updates. */
#include "core/internal.h"
#include "frugal/optim.h"

static bool is_f32_scalar(const struct fr_tensor *t, int64_t n) { return t->type == FR_F32 && fr_nelements(t) == n; }

struct fr_tensor *fr_opt_sumsq(struct fr_ctx *ctx, struct fr_tensor *carry, struct fr_tensor *const *grads, int n)
{
    int n_src = n + (carry ? 1 : 0);
    if (n < 1 || n_src > FR_MAX_SRC)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "opt_sumsq: %d sources (1..%d)", n_src, FR_MAX_SRC);
    struct fr_tensor *src[FR_MAX_SRC];
    for (int i = 0; i < n; i++) {
        if (!grads[i])
            return NULL;
        if (grads[i]->type != FR_F32 || !fr_is_contiguous(grads[i]))
            return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "opt_sumsq: '%s' must be contiguous f32", grads[i]->name);
        src[i] = grads[i];
    }
    if (carry) {
        if (!is_f32_scalar(carry, 1))
            return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "opt_sumsq: carry '%s' must be f32 [1]", carry->name);
        src[n] = carry;
    }
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_OPT_SUMSQ, FR_F32, 1, (int64_t[]){1}, n_src, src);
    if (t)
        t->params[0].i = carry ? n : -1;
    return t;
}

struct fr_tensor *fr_opt_clip(struct fr_ctx *ctx, struct fr_tensor *sumsq, float max_norm)
{
    if (!sumsq)
        return NULL;
    if (!is_f32_scalar(sumsq, 1) || !(max_norm > 0.0f))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "opt_clip: needs an f32 [1] sum of squares and a norm > 0");
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_OPT_CLIP, FR_F32, 1, (int64_t[]){2}, 1, &sumsq);
    if (t)
        t->params[0].f = max_norm;
    return t;
}

struct fr_tensor *fr_opt_prep(struct fr_ctx *ctx, struct fr_tensor *hyper, struct fr_tensor *lr, struct fr_tensor *clip)
{
    if (!hyper || !lr)
        return NULL;
    if (!is_f32_scalar(hyper, 4) || !fr_is_contiguous(hyper) || !is_f32_scalar(lr, 1) || (clip && !is_f32_scalar(clip, 2)))
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "opt_prep: needs hyper f32 [4], lr f32 [1], clip f32 [2]");
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_OPT_PREP, FR_F32, 1, (int64_t[]){4}, 2, (struct fr_tensor *[]){hyper, lr});
    if (!t)
        return NULL;
    t->src[2] = clip;
    t->view_src = hyper; /* in place: the planner gives it hyper's storage */
    fr_tensor_set_name(t, "%.50s (step)", hyper->name);
    return t;
}

static bool check_update(struct fr_ctx *ctx, const char *op, struct fr_tensor *p, struct fr_tensor *g,
                         struct fr_tensor *s1, struct fr_tensor *s2, struct fr_tensor *prep)
{
    if (p->type != FR_F32 || !fr_is_contiguous(p) || !(g && fr_same_shape(g, p) && fr_is_contiguous(g))) {
        fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: parameter '%s' and its gradient must be contiguous f32 of one shape", op,
                    p->name);
        return false;
    }
    if ((s1 && (!fr_same_shape(s1, p) || !fr_is_contiguous(s1))) || (s2 && (!fr_same_shape(s2, p) || !fr_is_contiguous(s2)))) {
        fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: state of '%s' must match its shape", op, p->name);
        return false;
    }
    if (!is_f32_scalar(prep, 4) || prep->op != FR_OP_OPT_PREP) {
        fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "%s: the step source must be an opt_prep node", op);
        return false;
    }
    return true;
}

static struct fr_tensor *update_node(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *p, struct fr_tensor *const *src,
                                     int n_src)
{
    struct fr_tensor *t = fr_node_new(ctx, op, FR_F32, p->ndim, p->ne, 2, src);
    if (!t)
        return NULL;
    for (int s = 2; s < n_src; s++)
        t->src[s] = src[s];
    t->view_src = p; /* updates the parameter's own storage */
    fr_tensor_set_name(t, "%.50s (update)", p->name);
    return t;
}

struct fr_tensor *fr_sgd_step(struct fr_ctx *ctx, struct fr_tensor *param, struct fr_tensor *grad,
                              struct fr_tensor *momentum_buf, struct fr_tensor *prep, float lr_mult, float weight_decay,
                              float momentum, float dampening, bool nesterov)
{
    if (!param || !grad || !prep)
        return NULL;
    if (!check_update(ctx, "sgd_step", param, grad, momentum_buf, NULL, prep))
        return NULL;
    if (momentum != 0.0f && !momentum_buf)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "sgd_step: momentum needs a buffer for '%s'", param->name);
    if (nesterov && (momentum <= 0.0f || dampening != 0.0f))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "sgd_step: Nesterov needs momentum > 0 and zero dampening");
    struct fr_tensor *t = update_node(ctx, FR_OP_SGD_STEP, param, (struct fr_tensor *[]){param, grad, momentum_buf, prep}, 4);
    if (t) {
        t->params[0].f = lr_mult;
        t->params[1].f = weight_decay;
        t->params[2].f = momentum;
        t->params[3].f = dampening;
        t->params[4].i = nesterov;
    }
    return t;
}

struct fr_tensor *fr_ema_step(struct fr_ctx *ctx, struct fr_tensor *avg, struct fr_tensor *x, struct fr_tensor *prep,
                              float decay)
{
    if (!avg || !x || !prep)
        return NULL;
    if (avg->type != FR_F32 || !fr_is_contiguous(avg) || x->type != FR_F32 || !fr_is_contiguous(x) ||
        !fr_same_shape(avg, x))
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "ema_step: '%s' and '%s' must be contiguous f32 of one shape",
                           avg->name, x->name);
    if (!is_f32_scalar(prep, 4) || prep->op != FR_OP_OPT_PREP)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "ema_step: the step source must be an opt_prep node");
    if (!(decay > 0.0f && decay < 1.0f))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "ema_step: decay %g must be in (0, 1)", (double)decay);
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_EMA_STEP, FR_F32, avg->ndim, avg->ne, 3,
                                      (struct fr_tensor *[]){avg, x, prep});
    if (!t)
        return NULL;
    t->view_src = avg; /* updates the average's own storage */
    t->params[0].f = decay;
    fr_tensor_set_name(t, "%.50s (update)", avg->name);
    return t;
}

struct fr_tensor *fr_adam_step(struct fr_ctx *ctx, struct fr_tensor *param, struct fr_tensor *grad, struct fr_tensor *m,
                               struct fr_tensor *v, struct fr_tensor *prep, float lr_mult, float weight_decay,
                               float beta1, float beta2, float eps, bool decoupled)
{
    if (!param || !grad || !m || !v || !prep)
        return NULL;
    if (!check_update(ctx, "adam_step", param, grad, m, v, prep))
        return NULL;
    if (!(beta1 >= 0.0f && beta1 < 1.0f && beta2 >= 0.0f && beta2 < 1.0f && eps >= 0.0f))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "adam_step: betas must be in [0,1), eps >= 0");
    struct fr_tensor *t = update_node(ctx, FR_OP_ADAM_STEP, param, (struct fr_tensor *[]){param, grad, m, v, prep}, 5);
    if (t) {
        t->params[0].f = lr_mult;
        t->params[1].f = weight_decay;
        t->params[2].f = beta1;
        t->params[3].f = beta2;
        t->params[4].f = eps;
        t->params[5].i = decoupled;
    }
    return t;
}
