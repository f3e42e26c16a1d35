/* Optimizers as graph ops, parameter groups, gradient clipping and learning-rate schedules.
 *
 *   struct fr_optim_params op;  fr_optim_params_init(&op, FR_OPTIM_ADAMW);  op.clip_norm = 1.0f;
 *   struct fr_optim *o = fr_optim_new(ctx, &op);
 *   fr_optim_add_group(o, &(struct fr_param_group){.prefix = "fc2.", .lr_mult = 1, .weight_decay = -1});
 *   fr_optim_add_group(o, &(struct fr_param_group){.prefix = "", .frozen = true});  // rest frozen
 *   fr_optim_apply_groups(o, params, n_params);   // marks FROZEN: call before fr_graph_backward
 *   fr_graph_backward(g, loss);
 *   fr_optim_build(o, g, params, n_params);       // moments (STATE leaves) + update nodes, appended to g
 *   fr_ctx_alloc(ctx, backend, FR_FLAG_PARAM | FR_FLAG_STATE);  fr_graph_plan(g, backend);
 *   fr_optim_reset(o);                            // zero moments and the step count (needs storage)
 *   for (int64_t step = 0; step < steps; step++) {
 *       fr_optim_set_lr(o, fr_schedule_lr(&sched, step));  fr_tensor_set(x, images_f32, bytes);  fr_graph_compute(g);
 *   }
 *
 * Formulas are PyTorch's (torch.optim.SGD / Adam / AdamW, clip_grad_norm_):
 *   clipping: s = min(1, clip_norm / (||all grads||_2 + 1e-6)); g = s * grad
 *   SGD:  g += wd*p; b = (t==1) ? g : momentum*b + (1-dampening)*g; g = nesterov ? g + momentum*b : b;
 *         p -= lr*lr_mult*g
 *   Adam: g += wd*p (L2); AdamW: p *= 1 - lr*lr_mult*wd (decoupled); m = b1 m + (1-b1) g;
 *         v = b2 v + (1-b2) g^2; p -= lr*lr_mult/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * The learning rate is an f32 [1] INPUT tensor written between steps (no graph rebuild); the step count
 * t lives in a STATE tensor incremented by the graph itself.
 */
#ifndef FRUGAL_OPTIM_H
#define FRUGAL_OPTIM_H

#include "frugal/graph.h"
#include "frugal/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- op constructors (src/ops/optim.c); the builder below is the usual way to use them --- */
struct fr_tensor *fr_opt_sumsq(struct fr_ctx *ctx, struct fr_tensor *carry, struct fr_tensor *const *grads, int n);
struct fr_tensor *fr_opt_clip(struct fr_ctx *ctx, struct fr_tensor *sumsq, float max_norm);
struct fr_tensor *fr_opt_prep(struct fr_ctx *ctx, struct fr_tensor *hyper, struct fr_tensor *lr, struct fr_tensor *clip);
struct fr_tensor *fr_sgd_step(struct fr_ctx *ctx, struct fr_tensor *param, struct fr_tensor *grad,
                              struct fr_tensor *momentum_buf, struct fr_tensor *prep, float lr_mult, float weight_decay,
                              float momentum, float dampening, bool nesterov);
struct fr_tensor *fr_adam_step(struct fr_ctx *ctx, struct fr_tensor *param, struct fr_tensor *grad, struct fr_tensor *m,
                               struct fr_tensor *v, struct fr_tensor *prep, float lr_mult, float weight_decay,
                               float beta1, float beta2, float eps, bool decoupled);
/* avg <- d * avg + (1 - d) * x in place, d = fr_ema_decay(decay, t) with t the step count of prep (cl/common.h).
 * x is usually a parameter's update node, so the average follows the updated weights. */
struct fr_tensor *fr_ema_step(struct fr_ctx *ctx, struct fr_tensor *avg, struct fr_tensor *x, struct fr_tensor *prep,
                              float decay);

/* --- optimizer builder (src/train/optimizer.c) --- */
enum fr_optim_kind { FR_OPTIM_SGD = 0, FR_OPTIM_ADAM, FR_OPTIM_ADAMW };

struct fr_optim_params {
    enum fr_optim_kind kind;
    float weight_decay;        /* default for groups that do not set their own */
    float momentum, dampening; /* SGD */
    bool nesterov;
    float beta1, beta2, eps;   /* Adam/AdamW */
    float clip_norm;           /* > 0: clip gradients by global norm */
    float ema;                 /* in (0, 1): also keep an exponential moving average of every updated parameter with
                                  this decay (a STATE tensor "<param>.ema", see fr_ema_step); 0 = none */
    bool after_backward;       /* every update after the whole backward (a host step hook between them, e.g. the
                                  data-parallel gradient sum: fr_trainer_set_hook); default: each layer's update as
                                  soon as the backward is done with it, so its gradient dies early */
};
/* PyTorch defaults: SGD momentum 0, wd 0; Adam betas (0.9, 0.999), eps 1e-8, wd 0; AdamW wd 0.01. */
void fr_optim_params_init(struct fr_optim_params *p, enum fr_optim_kind kind);

/* Parameters whose name starts with `prefix` ("" = all) belong to the first matching group, in the order
 * groups were added; parameters matching none use lr_mult 1 and the default weight decay. */
struct fr_param_group {
    char prefix[64];
    float lr_mult;       /* learning-rate multiplier; 0 is treated as 1 unless frozen (use frozen) */
    float weight_decay;  /* < 0: the optimizer's default */
    bool frozen;         /* no gradient, no update (FR_FLAG_FROZEN) */
    bool decay_1d;       /* also decay 1-D tensors (biases, batch-norm); off by default */
};

struct fr_optim;
struct fr_optim *fr_optim_new(struct fr_ctx *ctx, const struct fr_optim_params *p);
void fr_optim_free(struct fr_optim *o);
enum fr_status fr_optim_add_group(struct fr_optim *o, const struct fr_param_group *grp);
/* Sets FR_FLAG_FROZEN on each PARAM of a frozen group (never clears it). Call before fr_graph_backward. */
enum fr_status fr_optim_apply_groups(struct fr_optim *o, struct fr_tensor *const *params, int n);
/* Appends clipping and one update node per parameter that has a gradient in g. Call once. */
enum fr_status fr_optim_build(struct fr_optim *o, struct fr_graph *g, struct fr_tensor *const *params, int n);
/* Zeroes the moments and the step count (after the state has storage). */
enum fr_status fr_optim_reset(struct fr_optim *o);
enum fr_status fr_optim_set_lr(struct fr_optim *o, float lr);
struct fr_tensor *fr_optim_lr_tensor(const struct fr_optim *o);
/* Global gradient norm of the last run (clipping on only; else -1). */
float fr_optim_grad_norm(const struct fr_optim *o);
/* Number of parameters updated / effective settings of parameter i (for tests and logs). */
int fr_optim_n_updates(const struct fr_optim *o);
/* Effective (lr_mult, weight_decay, frozen) of a parameter by name; false if it has no group data. */
bool fr_optim_param_settings(const struct fr_optim *o, const struct fr_tensor *param, float *lr_mult, float *wd,
                             bool *frozen);
/* The state tensors created for a parameter (which: 0 first moment / momentum, 1 second moment, 2 weight average),
 * for checkpoints; NULL if none. */
struct fr_tensor *fr_optim_moment(const struct fr_optim *o, const struct fr_tensor *param, int which);

/* --- learning-rate schedules (src/train/schedule.c) --- */
enum fr_sched_kind { FR_SCHED_CONSTANT = 0, FR_SCHED_STEP, FR_SCHED_COSINE };
struct fr_schedule {
    enum fr_sched_kind kind;
    float base_lr;
    int64_t warmup_steps; /* linear warm-up: lr = base_lr * (step+1) / warmup_steps for step < warmup_steps */
    int64_t step_size;    /* STEP: lr = base_lr * gamma^floor((step - warmup) / step_size) */
    float gamma;
    int64_t total_steps;  /* COSINE: min_lr + (base_lr - min_lr) * (1 + cos(pi * t / (total - warmup))) / 2 */
    float min_lr;
};
/* Learning rate at 0-based `step` (the value to set before running that step). */
float fr_schedule_lr(const struct fr_schedule *s, int64_t step);
/* Parses "constant", "step:SIZE:GAMMA", "cosine" (optionally ",warmup=N"); fills kind/step_size/gamma/warmup. */
enum fr_status fr_schedule_parse(const char *spec, struct fr_schedule *s);

#ifdef __cplusplus
}
#endif
#endif
