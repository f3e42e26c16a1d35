/* Optimizer ops on the CPU path: SGD / momentum / Nesterov / Adam / AdamW steps against updates computed
 * here in double from the same gradients, parameter groups (frozen, lr multiplier, no decay on biases),
 * gradient clipping by global norm, learning-rate schedules, the moving average of the weights. */
#include <math.h>
#include <string.h>

#include "frugal/loss.h"
#include "frugal/optim.h"
#include "testutil.h"

#define be tu_cpu /* the suite's shared CPU backend (testutil.h) */

#define R 2
#define C 3
#define NW (R * C)

/* loss = mse(w + b (broadcast over rows), target): w [2,3] is a weight (decayed), b [3] a bias (not) */
struct net {
    struct fr_ctx *ctx;
    struct fr_tensor *w, *b, *target, *loss;
    struct fr_graph *g;
    struct fr_optim *o;
    float tv[NW];
};

static void net_build(struct net *n, const struct fr_optim_params *op, const struct fr_param_group *groups, int n_groups)
{
    n->ctx = fr_ctx_new();
    n->w = fr_tensor_set_name(fr_tensor_set_flags(fr_tensor_new_2d(n->ctx, FR_F32, R, C), FR_FLAG_PARAM), "fc.weight");
    n->b = fr_tensor_set_name(fr_tensor_set_flags(fr_tensor_new_1d(n->ctx, FR_F32, C), FR_FLAG_PARAM), "fc.bias");
    n->target = tu_tensor_f32(n->ctx, 2, (int64_t[]){R, C});
    n->loss = fr_mse_loss(n->ctx, fr_add(n->ctx, n->w, n->b), n->target, NULL);
    assert_non_null(n->loss);
    n->o = fr_optim_new(n->ctx, op);
    assert_non_null(n->o);
    for (int i = 0; i < n_groups; i++)
        assert_int_equal(fr_optim_add_group(n->o, &groups[i]), FR_STATUS_OK);
    struct fr_tensor *params[] = {n->w, n->b};
    assert_int_equal(fr_optim_apply_groups(n->o, params, 2), FR_STATUS_OK);
    n->g = fr_graph_new(n->ctx);
    assert_int_equal(fr_graph_backward(n->g, n->loss), FR_STATUS_OK);
    if (fr_optim_build(n->o, n->g, params, 2) != FR_STATUS_OK)
        fail_msg("build: %s", fr_last_error());
    assert_int_equal(fr_ctx_alloc(n->ctx, be, FR_FLAG_PARAM | FR_FLAG_STATE), FR_STATUS_OK);
    if (fr_graph_plan(n->g, be) != FR_STATUS_OK)
        fail_msg("plan: %s", fr_last_error());
    assert_int_equal(fr_optim_reset(n->o), FR_STATUS_OK);
    float wv[NW], bv[C];
    tu_fill_uniform(wv, NW, 1, -1, 1);
    tu_fill_uniform(bv, C, 2, -1, 1);
    tu_fill_uniform(n->tv, NW, 3, -2, 2);
    assert_int_equal(fr_tensor_set(n->w, wv, sizeof wv), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(n->b, bv, sizeof bv), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(n->target, n->tv, sizeof n->tv), FR_STATUS_OK);
}

static void net_free(struct net *n)
{
    fr_graph_free(n->g);
    fr_optim_free(n->o);
    fr_ctx_free(n->ctx);
}

/* reference optimizer state for one tensor, in double */
struct ref {
    double p[NW], m[NW], v[NW];
    int n;
};

static void ref_step(struct ref *r, const struct fr_optim_params *op, const float *grad, double lr, double wd, int t,
                     double clip)
{
    for (int i = 0; i < r->n; i++) {
        double g = grad[i] * clip;
        if (op->kind == FR_OPTIM_SGD) {
            g += wd * r->p[i];
            if (op->momentum != 0) {
                r->m[i] = t == 1 ? g : op->momentum * r->m[i] + (1 - op->dampening) * g;
                g = op->nesterov ? g + op->momentum * r->m[i] : r->m[i];
            }
            r->p[i] -= lr * g;
        } else {
            if (op->kind == FR_OPTIM_ADAMW)
                r->p[i] *= 1 - lr * wd;
            else
                g += wd * r->p[i];
            r->m[i] = op->beta1 * r->m[i] + (1 - op->beta1) * g;
            r->v[i] = op->beta2 * r->v[i] + (1 - op->beta2) * g * g;
            double mh = r->m[i] / (1 - pow(op->beta1, t)), vh = r->v[i] / (1 - pow(op->beta2, t));
            r->p[i] -= lr * mh / (sqrt(vh) + op->eps);
        }
    }
}

static void ref_init(struct ref *r, struct fr_tensor *t)
{
    float v[NW];
    memset(r, 0, sizeof *r);
    r->n = (int)fr_nelements(t);
    assert_int_equal(fr_tensor_get(t, v, (size_t)r->n * sizeof(float)), FR_STATUS_OK);
    for (int i = 0; i < r->n; i++)
        r->p[i] = v[i];
}

static void ref_compare(const struct ref *r, struct fr_tensor *t, const char *what, int step)
{
    float got[NW], want[NW];
    assert_int_equal(fr_tensor_get(t, got, (size_t)r->n * sizeof(float)), FR_STATUS_OK);
    for (int i = 0; i < r->n; i++)
        want[i] = (float)r->p[i];
    for (int i = 0; i < r->n; i++)
        if (fabsf(got[i] - want[i]) > 1e-6f + 1e-5f * fabsf(want[i]))
            fail_msg("%s step %d [%d]: got %.8g want %.8g", what, step, i, got[i], want[i]);
}

/* runs 3 steps with lr 0.1, 0.05, 0.2 and checks w and b after each */
static void run_case(const struct fr_optim_params *op, const struct fr_param_group *groups, int n_groups,
                     double w_mult, double b_mult, double w_wd, double b_wd)
{
    struct net n;
    net_build(&n, op, groups, n_groups);
    struct ref rw, rb;
    ref_init(&rw, n.w);
    ref_init(&rb, n.b);
    const float lrs[3] = {0.1f, 0.05f, 0.2f};
    for (int s = 0; s < 3; s++) {
        assert_int_equal(fr_optim_set_lr(n.o, lrs[s]), FR_STATUS_OK);
        assert_int_equal(fr_graph_compute(n.g), FR_STATUS_OK);
        float gw[NW], gb[C];
        assert_int_equal(fr_tensor_get(n.w->grad, gw, sizeof gw), FR_STATUS_OK);
        assert_int_equal(fr_tensor_get(n.b->grad, gb, sizeof gb), FR_STATUS_OK);
        /* the gradients are those of the parameters before this step's update */
        for (int i = 0; i < NW; i++) {
            double want = 2.0 * (rw.p[i] + rb.p[i % C] - n.tv[i]) / NW;
            if (fabs(gw[i] - want) > 1e-6)
                fail_msg("grad w[%d] %.8g want %.8g", i, gw[i], want);
        }
        double clip = 1.0;
        if (op->clip_norm > 0) {
            double ss = 0;
            for (int i = 0; i < NW; i++)
                ss += (double)gw[i] * gw[i];
            for (int i = 0; i < C; i++)
                ss += (double)gb[i] * gb[i];
            clip = fmin(1.0, op->clip_norm / (sqrt(ss) + 1e-6));
            assert_true(fabs(fr_optim_grad_norm(n.o) - sqrt(ss)) < 1e-6 * (1 + sqrt(ss)));
            assert_true(clip < 1.0); /* the cases here do clip */
        }
        ref_step(&rw, op, gw, lrs[s] * w_mult, w_wd, s + 1, clip);
        ref_step(&rb, op, gb, lrs[s] * b_mult, b_wd, s + 1, clip);
        ref_compare(&rw, n.w, "weight", s + 1);
        ref_compare(&rb, n.b, "bias", s + 1);
    }
    net_free(&n);
}

/* ema: avg starts at the weights (fr_optim_reset), then avg = d avg + (1 - d) p after each update with
 * d = min(decay, (1 + t) / (10 + t)); at t = 30 the cap 0.9 applies (31/40 < 0.9 < 41/50 is false: 0.775, 0.82) */
static void test_ema_average(void **state)
{
    (void)state;
    struct fr_optim_params op;
    fr_optim_params_init(&op, FR_OPTIM_SGD);
    op.ema = 0.8f;
    struct net n;
    net_build(&n, &op, NULL, 0);
    assert_int_equal(fr_optim_reset(n.o), FR_STATUS_OK); /* after net_build set the weights: the average starts there */
    struct fr_tensor *avg = fr_optim_moment(n.o, n.w, 2);
    assert_non_null(avg);
    assert_string_equal(avg->name, "fc.weight.ema");
    assert_true(avg->flags & FR_FLAG_STATE); /* saved and reloaded with checkpoints like the moments */
    struct ref rw;
    ref_init(&rw, n.w);
    double want[NW];
    memcpy(want, rw.p, sizeof want);
    for (int t = 1; t <= 40; t++) {
        assert_int_equal(fr_optim_set_lr(n.o, 0.3f), FR_STATUS_OK);
        assert_int_equal(fr_graph_compute(n.g), FR_STATUS_OK);
        float p[NW], a[NW];
        assert_int_equal(fr_tensor_get(n.w, p, sizeof p), FR_STATUS_OK);
        assert_int_equal(fr_tensor_get(avg, a, sizeof a), FR_STATUS_OK);
        double d = fmin(0.8, (1.0 + t) / (10.0 + t));
        for (int i = 0; i < NW; i++) {
            want[i] = d * want[i] + (1 - d) * p[i];
            if (fabs(a[i] - want[i]) > 1e-5)
                fail_msg("step %d avg[%d] %.8g want %.8g", t, i, a[i], want[i]);
        }
        if (t == 40) /* the weights converge to the target: the average lags behind them */
            assert_true(fabs(a[0] - p[0]) > 1e-7 && fabs(a[0] - p[0]) < 0.1);
    }
    assert_null(fr_optim_moment(n.o, n.w, 3));
    net_free(&n);
    op.ema = 1.0f; /* a decay of 1 would never move */
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *w = fr_tensor_set_flags(fr_tensor_new_1d(ctx, FR_F32, 2), FR_FLAG_PARAM);
    struct fr_tensor *loss = fr_mse_loss(ctx, w, tu_tensor_f32(ctx, 1, (int64_t[]){2}), NULL);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_backward(g, loss), FR_STATUS_OK);
    struct fr_optim *o = fr_optim_new(ctx, &op);
    assert_int_equal(fr_optim_build(o, g, &w, 1), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "decay"));
    fr_optim_free(o);
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

static void test_sgd(void **state)
{
    (void)state;
    struct fr_optim_params op;
    fr_optim_params_init(&op, FR_OPTIM_SGD);
    run_case(&op, NULL, 0, 1, 1, 0, 0);
    op.weight_decay = 0.1f; /* applied to the weight only */
    run_case(&op, NULL, 0, 1, 1, 0.1, 0);
}

static void test_sgd_momentum_nesterov(void **state)
{
    (void)state;
    struct fr_optim_params op;
    fr_optim_params_init(&op, FR_OPTIM_SGD);
    op.momentum = 0.9f;
    op.dampening = 0.1f;
    op.weight_decay = 0.01f;
    run_case(&op, NULL, 0, 1, 1, 0.01, 0);
    op.dampening = 0.0f;
    op.nesterov = true;
    run_case(&op, NULL, 0, 1, 1, 0.01, 0);
}

static void test_adam_adamw(void **state)
{
    (void)state;
    struct fr_optim_params op;
    fr_optim_params_init(&op, FR_OPTIM_ADAM);
    run_case(&op, NULL, 0, 1, 1, 0, 0);
    op.weight_decay = 0.1f; /* L2: added to the gradient */
    run_case(&op, NULL, 0, 1, 1, 0.1, 0);
    fr_optim_params_init(&op, FR_OPTIM_ADAMW);
    assert_true(fabsf(op.weight_decay - 0.01f) < 1e-9f);
    op.weight_decay = 0.1f; /* decoupled */
    run_case(&op, NULL, 0, 1, 1, 0.1, 0);
}

static void test_groups_lr_mult_and_decay_1d(void **state)
{
    (void)state;
    struct fr_optim_params op;
    fr_optim_params_init(&op, FR_OPTIM_SGD);
    op.momentum = 0.5f;
    op.weight_decay = 0.05f;
    /* backbone-style lr x0.1 on the weight; the bias group asks for decay on 1-D tensors */
    struct fr_param_group gr[2] = {{.prefix = "fc.weight", .lr_mult = 0.1f, .weight_decay = -1},
                                   {.prefix = "fc.", .lr_mult = 2.0f, .weight_decay = 0.2f, .decay_1d = true}};
    run_case(&op, gr, 2, 0.1, 2.0, 0.05, 0.2);
}

static void test_frozen_group(void **state)
{
    (void)state;
    struct fr_optim_params op;
    fr_optim_params_init(&op, FR_OPTIM_ADAM);
    struct fr_param_group gr = {.prefix = "fc.bias", .frozen = true, .weight_decay = -1};
    struct net n;
    net_build(&n, &op, &gr, 1);
    assert_true(n.b->flags & FR_FLAG_FROZEN);
    assert_null(n.b->grad);
    assert_non_null(n.w->grad);
    assert_int_equal(fr_optim_n_updates(n.o), 1);
    assert_null(fr_optim_moment(n.o, n.b, 0));
    for (int i = 0; i < fr_graph_n_nodes(n.g); i++) { /* no gradient node for the frozen bias */
        const struct fr_tensor *t = fr_graph_node(n.g, i);
        assert_null(strstr(t->name, "fc.bias.grad"));
        assert_false(t->view_src == n.b && t->op != FR_OP_VIEW);
    }
    float b0[C], b1[C], w0[NW], w1[NW];
    assert_int_equal(fr_tensor_get(n.b, b0, sizeof b0), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(n.w, w0, sizeof w0), FR_STATUS_OK);
    assert_int_equal(fr_optim_set_lr(n.o, 0.1f), FR_STATUS_OK);
    for (int s = 0; s < 3; s++)
        assert_int_equal(fr_graph_compute(n.g), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(n.b, b1, sizeof b1), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(n.w, w1, sizeof w1), FR_STATUS_OK);
    tu_assert_bytes_equal(b1, b0, sizeof b0);
    assert_true(memcmp(w0, w1, sizeof w0) != 0);
    net_free(&n);
}

static void test_clip_global_norm(void **state)
{
    (void)state;
    struct fr_optim_params op;
    fr_optim_params_init(&op, FR_OPTIM_SGD);
    op.momentum = 0.9f;
    op.clip_norm = 0.05f;
    run_case(&op, NULL, 0, 1, 1, 0, 0);
    fr_optim_params_init(&op, FR_OPTIM_ADAMW);
    op.clip_norm = 0.05f;
    run_case(&op, NULL, 0, 1, 1, 0.01, 0);
}

static void test_default_settings(void **state)
{
    (void)state;
    struct fr_optim_params op;
    fr_optim_params_init(&op, FR_OPTIM_ADAMW);
    struct net n;
    net_build(&n, &op, NULL, 0);
    float m, wd;
    bool fz;
    assert_true(fr_optim_param_settings(n.o, n.b, &m, &wd, &fz));
    assert_true(m == 1.0f && wd == 0.0f && !fz); /* no decay on 1-D tensors by default */
    assert_true(fr_optim_param_settings(n.o, n.w, &m, &wd, &fz));
    assert_true(m == 1.0f && fabsf(wd - 0.01f) < 1e-9f && !fz);
    assert_int_equal(fr_optim_set_lr(n.o, NAN), FR_STATUS_INVALID_ARGUMENT);
    assert_int_equal(fr_optim_set_lr(n.o, -1.0f), FR_STATUS_INVALID_ARGUMENT);
    net_free(&n);
}

static void test_schedules(void **state)
{
    (void)state;
    struct fr_schedule s = {.kind = FR_SCHED_CONSTANT, .base_lr = 0.1f};
    assert_true(fr_schedule_lr(&s, 0) == 0.1f && fr_schedule_lr(&s, 1000) == 0.1f);
    s = (struct fr_schedule){.kind = FR_SCHED_STEP, .base_lr = 1.0f, .step_size = 10, .gamma = 0.5f};
    assert_true(fr_schedule_lr(&s, 9) == 1.0f);
    assert_true(fr_schedule_lr(&s, 10) == 0.5f);
    assert_true(fr_schedule_lr(&s, 25) == 0.25f);
    s = (struct fr_schedule){.kind = FR_SCHED_COSINE, .base_lr = 1.0f, .total_steps = 100, .min_lr = 0.0f};
    assert_true(fabsf(fr_schedule_lr(&s, 0) - 1.0f) < 1e-7f);
    assert_true(fabsf(fr_schedule_lr(&s, 50) - 0.5f) < 1e-6f);
    assert_true(fabsf(fr_schedule_lr(&s, 25) - (float)(0.5 * (1 + cos(M_PI / 4)))) < 1e-6f);
    assert_true(fr_schedule_lr(&s, 100) == 0.0f && fr_schedule_lr(&s, 150) == 0.0f);
    /* warm-up: linear from base/W to base over W steps, then the cosine over the remaining steps */
    s.warmup_steps = 10;
    assert_true(fabsf(fr_schedule_lr(&s, 0) - 0.1f) < 1e-7f);
    assert_true(fabsf(fr_schedule_lr(&s, 4) - 0.5f) < 1e-7f);
    assert_true(fabsf(fr_schedule_lr(&s, 10) - 1.0f) < 1e-7f);
    assert_true(fabsf(fr_schedule_lr(&s, 55) - 0.5f) < 1e-6f);
    struct fr_schedule p = {0};
    assert_int_equal(fr_schedule_parse("step:30:0.1,warmup=5", &p), FR_STATUS_OK);
    assert_true(p.kind == FR_SCHED_STEP && p.step_size == 30 && fabsf(p.gamma - 0.1f) < 1e-7f && p.warmup_steps == 5);
    assert_int_equal(fr_schedule_parse("cosine", &p), FR_STATUS_OK);
    assert_int_equal(p.kind, FR_SCHED_COSINE);
    assert_int_equal(fr_schedule_parse("step:x", &p), FR_STATUS_INVALID_ARGUMENT);
    assert_int_equal(fr_schedule_parse("linear", &p), FR_STATUS_INVALID_ARGUMENT);
}

static void test_schedule_drives_lr_tensor(void **state)
{
    (void)state;
    /* plain SGD with a step schedule: the lr tensor changes between runs, the graph does not */
    struct fr_optim_params op;
    fr_optim_params_init(&op, FR_OPTIM_SGD);
    struct net n;
    net_build(&n, &op, NULL, 0);
    int nodes = fr_graph_n_nodes(n.g);
    struct fr_schedule s = {.kind = FR_SCHED_STEP, .base_lr = 0.5f, .step_size = 1, .gamma = 0.1f};
    struct ref rw;
    ref_init(&rw, n.w);
    struct ref rb;
    ref_init(&rb, n.b);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(fr_optim_set_lr(n.o, fr_schedule_lr(&s, k)), FR_STATUS_OK);
        assert_int_equal(fr_graph_compute(n.g), FR_STATUS_OK);
        float gw[NW], gb[C];
        assert_int_equal(fr_tensor_get(n.w->grad, gw, sizeof gw), FR_STATUS_OK);
        assert_int_equal(fr_tensor_get(n.b->grad, gb, sizeof gb), FR_STATUS_OK);
        ref_step(&rw, &op, gw, fr_schedule_lr(&s, k), 0, k + 1, 1);
        ref_step(&rb, &op, gb, fr_schedule_lr(&s, k), 0, k + 1, 1);
        ref_compare(&rw, n.w, "weight", k + 1);
    }
    assert_int_equal(fr_graph_n_nodes(n.g), nodes);
    net_free(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_sgd_momentum_nesterov),
        cmocka_unit_test(test_adam_adamw),
        cmocka_unit_test(test_groups_lr_mult_and_decay_1d),
        cmocka_unit_test(test_frozen_group),
        cmocka_unit_test(test_clip_global_norm),
        cmocka_unit_test(test_default_settings),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_schedule_drives_lr_tensor),
        cmocka_unit_test(test_ema_average),
    };
    return cmocka_run_group_tests(tests, tu_cpu_setup, tu_cpu_teardown);
}
