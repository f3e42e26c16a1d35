/* Loss ops on the CPU path: values against hand-computed formulas (T^2 and alpha in distillation, label
 * smoothing, weights), soft CE with one-hot = hard CE, finite-difference gradients, bad labels, shapes;
 * FixMatch's confident targets (mask, one-hot and sharpened rows, no gradient through them). */
#include <math.h>
#include <string.h>

#include "frugal/loss.h"
#include "testutil.h"

#define be tu_cpu /* the suite's shared CPU backend (testutil.h) */

#define N 3
#define K 4

/* a differentiable leaf [N,K] and the other inputs of a loss */
struct fx {
    struct fr_ctx *ctx;
    struct fr_tensor *z, *t, *y, *w;
    float zv[N * K], tv[N * K], wv[N];
    int32_t yv[N];
};

static void fx_init(struct fx *f, uint32_t seed)
{
    f->ctx = fr_ctx_new();
    f->z = fr_tensor_set_flags(fr_tensor_new_2d(f->ctx, FR_F32, N, K), FR_FLAG_PARAM);
    fr_tensor_set_name(f->z, "z");
    f->t = tu_tensor_f32(f->ctx, 2, (int64_t[]){N, K});
    f->y = fr_tensor_set_flags(fr_tensor_new_1d(f->ctx, FR_I32, N), FR_FLAG_INPUT);
    f->w = tu_tensor_f32(f->ctx, 1, (int64_t[]){N});
    tu_fill_uniform(f->zv, N * K, seed, -3.0f, 3.0f);
    tu_fill_uniform(f->tv, N * K, seed + 1, -2.0f, 2.0f);
    tu_fill_uniform(f->wv, N, seed + 2, 0.0f, 1.0f);
    for (int i = 0; i < N; i++)
        f->yv[i] = (int32_t)((i * 3 + (int)seed) % K);
}

/* plans loss + gradient, sets inputs, runs; returns the loss and (if grad) dL/dz */
static struct fr_graph *fx_graph(struct fx *f, struct fr_tensor *loss, bool grad)
{
    assert_non_null(loss);
    struct fr_graph *g = fr_graph_new(f->ctx);
    if (grad)
        assert_int_equal(fr_graph_backward(g, loss), FR_STATUS_OK);
    else
        assert_int_equal(fr_graph_add(g, loss), FR_STATUS_OK);
    if (fr_graph_plan(g, be) != FR_STATUS_OK)
        fail_msg("plan: %s", fr_last_error());
    return g;
}

static float fx_run(struct fx *f, struct fr_graph *g, struct fr_tensor *loss, float *gz)
{
    struct fr_tensor *ins[] = {f->z, f->t, f->y, f->w};
    const void *vals[] = {f->zv, f->tv, f->yv, f->wv};
    for (int i = 0; i < 4; i++)
        if (ins[i]->buffer)
            assert_int_equal(fr_tensor_set(ins[i], vals[i], fr_nbytes(ins[i])), FR_STATUS_OK);
    if (fr_graph_compute(g) != FR_STATUS_OK)
        fail_msg("compute: %s", fr_last_error());
    float l;
    assert_int_equal(fr_tensor_get(loss, &l, sizeof l), FR_STATUS_OK);
    if (gz)
        assert_int_equal(fr_tensor_get(f->z->grad, gz, sizeof(float) * N * K), FR_STATUS_OK);
    return l;
}

static double lse(const float *z, double inv_t)
{
    double m = -INFINITY, s = 0;
    for (int c = 0; c < K; c++)
        m = fmax(m, z[c] * inv_t);
    for (int c = 0; c < K; c++)
        s += exp(z[c] * inv_t - m);
    return m + log(s);
}

static void test_cross_entropy_values(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 1);
    /* row 0 by hand: logits (1,2,3,4), label 3: lse = 4 + log(1 + e^-1 + e^-2 + e^-3) */
    const float r0[K] = {1, 2, 3, 4};
    memcpy(f.zv, r0, sizeof r0);
    f.yv[0] = 3;
    double l0 = log(1 + exp(-1.0) + exp(-2.0) + exp(-3.0));
    assert_true(fabs(l0 - 0.4401897) < 1e-6);
    struct fr_tensor *ce = fr_cross_entropy(f.ctx, f.z, f.y, NULL, 0.0f);
    struct fr_tensor *ces = fr_cross_entropy(f.ctx, f.z, f.y, NULL, 0.1f);
    struct fr_tensor *cew = fr_cross_entropy(f.ctx, f.z, f.y, f.w, 0.0f);
    double want = 0, want_s = 0, want_w = 0;
    for (int i = 0; i < N; i++) {
        const float *z = f.zv + i * K;
        double L = lse(z, 1), li = L - z[f.yv[i]], mean_nll = 0;
        for (int c = 0; c < K; c++)
            mean_nll += (L - z[c]) / K;
        if (i == 0)
            assert_true(fabs(li - l0) < 1e-6);
        want += li / N;
        want_s += (0.9 * li + 0.1 * mean_nll) / N;
        want_w += f.wv[i] * li / N; /* documented: weighted sum over N, not over sum(w) */
    }
    struct fr_graph *g = fx_graph(&f, ce, false);
    float got = fx_run(&f, g, ce, NULL);
    assert_true(fabs(got - want) < 1e-5);
    fr_graph_free(g);
    g = fx_graph(&f, ces, false);
    got = fx_run(&f, g, ces, NULL);
    assert_true(fabs(got - want_s) < 1e-5);
    fr_graph_free(g);
    g = fx_graph(&f, cew, false);
    got = fx_run(&f, g, cew, NULL);
    assert_true(fabs(got - want_w) < 1e-5);
    fr_graph_free(g);
    fr_ctx_free(f.ctx);
}

static void test_soft_ce_one_hot_equals_hard(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 2);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++)
            f.tv[i * K + c] = c == f.yv[i] ? 1.0f : 0.0f;
    struct fr_tensor *hard = fr_cross_entropy(f.ctx, f.z, f.y, NULL, 0.0f);
    struct fr_tensor *soft = fr_soft_cross_entropy(f.ctx, f.z, f.t, NULL);
    float gh[N * K], gs[N * K];
    struct fr_graph *g = fx_graph(&f, hard, true);
    float lh = fx_run(&f, g, hard, gh);
    fr_graph_free(g);
    g = fx_graph(&f, soft, true);
    float ls = fx_run(&f, g, soft, gs);
    fr_graph_free(g);
    assert_true(fabsf(lh - ls) < 1e-6f);
    tu_assert_close(gs, gh, N * K, 1e-7f, 1e-6f);
    /* label smoothing eps = soft targets (1-eps) one-hot + eps/K */
    for (int i = 0; i < N * K; i++)
        f.tv[i] = 0.9f * f.tv[i] + 0.1f / K;
    struct fr_tensor *hs = fr_cross_entropy(f.ctx, f.z, f.y, NULL, 0.1f);
    struct fr_tensor *ss = fr_soft_cross_entropy(f.ctx, f.z, f.t, NULL);
    g = fx_graph(&f, hs, false);
    lh = fx_run(&f, g, hs, NULL);
    fr_graph_free(g);
    g = fx_graph(&f, ss, false);
    ls = fx_run(&f, g, ss, NULL);
    fr_graph_free(g);
    assert_true(fabsf(lh - ls) < 1e-5f);
    fr_ctx_free(f.ctx);
}

static void test_distill_t2_alpha(void **state)
{
    (void)state;
    const float temps[] = {1.0f, 4.0f, 20.0f}, alphas[] = {1.0f, 0.95f, 0.5f};
    for (int ti = 0; ti < 3; ti++)
        for (int ai = 0; ai < 3; ai++) {
            float T = temps[ti], a = alphas[ai];
            struct fx f;
            fx_init(&f, 3 + ti);
            for (int i = 1; i < N; i += 3)
                f.yv[i] = -1; /* unlabeled transfer images: teacher targets only */
            struct fr_tensor *l = fr_distill_loss(f.ctx, f.z, f.t, f.y, NULL, a, T);
            double want = 0, gwant[N * K];
            for (int i = 0; i < N; i++) {
                const float *zs = f.zv + i * K, *zt = f.tv + i * K;
                double ls = lse(zs, 1 / T), lt = lse(zt, 1 / T), l1 = lse(zs, 1), kl = 0;
                for (int c = 0; c < K; c++) {
                    double pt = exp(zt[c] / T - lt), ps = exp(zs[c] / T - ls);
                    kl += pt * log(pt / ps);
                    /* the soft part's gradient is alpha*T*(p_s - p_t)/N (Hinton et al.) */
                    gwant[i * K + c] = a * T * (ps - pt) / N;
                    if (f.yv[i] >= 0)
                        gwant[i * K + c] += (1 - a) * (exp(zs[c] - l1) - (c == f.yv[i])) / N;
                }
                want += (a * T * T * kl + (f.yv[i] >= 0 ? (1 - a) * (l1 - zs[f.yv[i]]) : 0.0)) / N;
            }
            float gz[N * K], gw[N * K];
            struct fr_graph *g = fx_graph(&f, l, true);
            float got = fx_run(&f, g, l, gz);
            fr_graph_free(g);
            if (fabs(got - want) > 1e-5 * fmax(1, fabs(want)))
                fail_msg("T=%g alpha=%g: loss %.8g, want %.8g", T, a, got, want);
            for (int i = 0; i < N * K; i++)
                gw[i] = (float)gwant[i];
            tu_assert_close(gz, gw, N * K, 1e-6f, 1e-4f);
            fr_ctx_free(f.ctx);
        }
}

static void test_distill_teacher_gets_no_gradient(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 9);
    fr_tensor_set_flags(f.t, FR_FLAG_PARAM); /* even a trainable teacher is a constant here */
    struct fr_tensor *l = fr_distill_loss(f.ctx, f.z, f.t, NULL, NULL, 1.0f, 2.0f);
    struct fr_graph *g = fx_graph(&f, l, true);
    assert_null(f.t->grad);
    assert_non_null(f.z->grad);
    fr_graph_free(g);
    fr_ctx_free(f.ctx);
}

static void test_mse_values(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 4);
    struct fr_tensor *l = fr_mse_loss(f.ctx, f.z, f.t, f.w);
    double want = 0;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++) {
            double d = f.zv[i * K + c] - f.tv[i * K + c];
            want += f.wv[i] * d * d / (N * K);
        }
    float gz[N * K], gwant[N * K];
    struct fr_graph *g = fx_graph(&f, l, true);
    float got = fx_run(&f, g, l, gz);
    fr_graph_free(g);
    assert_true(fabs(got - want) < 1e-5);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++)
            gwant[i * K + c] = 2 * f.wv[i] * (f.zv[i * K + c] - f.tv[i * K + c]) / (N * K);
    tu_assert_close(gz, gwant, N * K, 1e-7f, 1e-5f);
    fr_ctx_free(f.ctx);
}

/* central differences of the f32 loss in double around each logit */
static void fd_check(struct fx *f, struct fr_tensor *loss)
{
    float ga[N * K];
    struct fr_graph *g = fx_graph(f, loss, true);
    fx_run(f, g, loss, ga);
    const float h = 1e-2f;
    for (int i = 0; i < N * K; i++) {
        float z0 = f->zv[i];
        f->zv[i] = z0 + h;
        double lp = fx_run(f, g, loss, NULL);
        f->zv[i] = z0 - h;
        double lm = fx_run(f, g, loss, NULL);
        f->zv[i] = z0;
        double num = (lp - lm) / (2.0 * h);
        if (fabs(num - ga[i]) > 2e-3 + 2e-2 * fabs(num))
            fail_msg("%s: d/dz[%d]: analytic %.6g, numeric %.6g", fr_op_name(loss->op), i, ga[i], num);
    }
    fr_graph_free(g);
}

static void test_gradients_finite_differences(void **state)
{
    (void)state;
    for (int which = 0; which < 6; which++) {
        struct fx f;
        fx_init(&f, 20 + which);
        struct fr_tensor *l = NULL;
        switch (which) {
        case 0: l = fr_cross_entropy(f.ctx, f.z, f.y, NULL, 0.0f); break;
        case 1: l = fr_cross_entropy(f.ctx, f.z, f.y, f.w, 0.2f); break;
        case 2: l = fr_soft_cross_entropy(f.ctx, f.z, f.t, f.w); break;
        case 3: l = fr_distill_loss(f.ctx, f.z, f.t, f.y, f.w, 0.7f, 3.0f); break;
        case 4: l = fr_distill_loss(f.ctx, f.z, f.t, NULL, NULL, 1.0f, 0.5f); break;
        case 5: l = fr_mse_loss(f.ctx, f.t, f.z, NULL); break; /* z as the second operand */
        }
        fd_check(&f, l);
        fr_ctx_free(f.ctx);
    }
}

/* rows by hand: (0,0,5,0): top probability e^5/(e^5+3) = 0.98019; (1,2,1,0): e^2/(2e+e^2+1) = 0.53444;
 * (3,3,0,0): a tie at e^3/(2e^3+2) = 0.47629, the first maximum wins */
static void test_pseudo_targets(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 4);
    const float rows[N * K] = {0, 0, 5, 0, 1, 2, 1, 0, 3, 3, 0, 0};
    memcpy(f.zv, rows, sizeof rows);
    const float thr[3] = {0.95f, 0.5f, 0.4f};
    const float kept[3][N] = {{1, 0, 0}, {1, 1, 0}, {1, 1, 1}};
    const int best[N] = {2, 1, 0};
    for (int s = 0; s < 3; s++)
        for (int soft = 0; soft < 2; soft++) {
            struct fr_tensor *pt = fr_pseudo_targets(f.ctx, f.z, thr[s], soft ? 0.5f : 0.0f);
            struct fr_graph *g = fx_graph(&f, pt, false);
            float got[N * K];
            assert_int_equal(fr_tensor_set(f.z, f.zv, sizeof f.zv), FR_STATUS_OK);
            assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
            assert_int_equal(fr_tensor_get(pt, got, sizeof got), FR_STATUS_OK);
            for (int i = 0; i < N; i++) {
                double l2 = lse(f.zv + i * K, 2.0); /* softmax(z / 0.5) */
                for (int c = 0; c < K; c++) {
                    double want = !kept[s][i] ? 0 : soft ? exp(2.0 * f.zv[i * K + c] - l2) : c == best[i];
                    if (fabs(got[i * K + c] - want) > 1e-6)
                        fail_msg("threshold %g soft %d row %d class %d: got %g want %g", thr[s], soft, i, c,
                                 got[i * K + c], want);
                }
            }
            fr_graph_free(g);
        }
    assert_true(fabs(exp(5.0) / (exp(5.0) + 3) - 0.98019) < 1e-5);
    assert_true(fabs(exp(2.0) / (2 * exp(1.0) + exp(2.0) + 1) - 0.53444) < 1e-5);
    /* a NaN row is never confident; the threshold is checked */
    f.zv[K] = NAN;
    struct fr_tensor *pt = fr_pseudo_targets(f.ctx, f.z, 0.0f, 0.0f);
    struct fr_graph *g = fx_graph(&f, pt, false);
    assert_int_equal(fr_tensor_set(f.z, f.zv, sizeof f.zv), FR_STATUS_OK);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    float got[N * K];
    assert_int_equal(fr_tensor_get(pt, got, sizeof got), FR_STATUS_OK);
    for (int c = 0; c < K; c++)
        assert_true(got[K + c] == 0.0f && got[c] == (c == 2));
    fr_graph_free(g);
    assert_null(fr_pseudo_targets(f.ctx, f.z, 1.5f, 0.0f));
    assert_null(fr_pseudo_targets(f.ctx, f.z, 0.5f, -1.0f));
    fr_ctx_free(f.ctx);
}

/* FixMatch's unlabeled loss soft_ce(z_strong, pseudo_targets(z_weak)): z_weak gets no gradient, z_strong gets
 * (p - onehot) / N on the kept rows and nothing on the others */
static void test_pseudo_targets_no_gradient(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 5);
    const float weak[N * K] = {0, 0, 5, 0, 1, 2, 1, 0, 0, 6, 0, 0};
    memcpy(f.tv, weak, sizeof weak);
    struct fr_tensor *zw = fr_tensor_set_flags(fr_tensor_new_2d(f.ctx, FR_F32, N, K), FR_FLAG_PARAM);
    struct fr_tensor *loss = fr_soft_cross_entropy(f.ctx, f.z, fr_pseudo_targets(f.ctx, zw, 0.95f, 0.0f), NULL);
    struct fr_graph *g = fx_graph(&f, loss, true);
    assert_int_equal(fr_tensor_set(zw, weak, sizeof weak), FR_STATUS_OK);
    float gz[N * K];
    float l = fx_run(&f, g, loss, gz);
    assert_null(zw->grad);
    double want = 0;
    const int y[N] = {2, -1, 1};
    for (int i = 0; i < N; i++) {
        double L = lse(f.zv + i * K, 1);
        if (y[i] >= 0)
            want += (L - f.zv[i * K + y[i]]) / N;
        for (int c = 0; c < K; c++) {
            double gw = y[i] < 0 ? 0 : (exp(f.zv[i * K + c] - L) - (c == y[i])) / N;
            assert_true(fabs(gz[i * K + c] - gw) < 1e-6);
        }
    }
    assert_true(fabs(l - want) < 1e-5);
    fr_graph_free(g);
    fr_ctx_free(f.ctx);
}

static void test_bad_labels(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 5);
    f.yv[1] = K; /* out of range: the kernel never reads z[K], the loss turns NaN */
    struct fr_tensor *l = fr_cross_entropy(f.ctx, f.z, f.y, NULL, 0.0f);
    float gz[N * K];
    struct fr_graph *g = fx_graph(&f, l, true);
    float got = fx_run(&f, g, l, gz);
    fr_graph_free(g);
    assert_true(isnan(got));
    assert_true(isnan(gz[K]));
    assert_int_equal(fr_loss_check(got, "batch 7"), FR_STATUS_NUMERIC);
    assert_non_null(strstr(fr_last_error(), "batch 7"));
    assert_int_equal(fr_labels_check(f.yv, N, K, "batch 3"), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "batch 3"));
    assert_non_null(strstr(fr_last_error(), "sample 1"));
    f.yv[1] = -1;
    assert_int_equal(fr_labels_check(f.yv, N, K, "batch 3"), FR_STATUS_INVALID_ARGUMENT);
    f.yv[1] = 0;
    assert_int_equal(fr_labels_check(f.yv, N, K, "batch 3"), FR_STATUS_OK);
    assert_int_equal(fr_loss_check(1.5f, "batch 3"), FR_STATUS_OK);
    assert_int_equal(fr_loss_check(INFINITY, "batch 4"), FR_STATUS_NUMERIC);
    fr_ctx_free(f.ctx);
}

static void test_shape_errors(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 6);
    struct fr_tensor *y2 = fr_tensor_new_1d(f.ctx, FR_I32, N + 1);
    assert_null(fr_cross_entropy(f.ctx, f.z, y2, NULL, 0.0f));
    assert_non_null(strstr(fr_last_error(), "labels"));
    assert_null(fr_cross_entropy(f.ctx, f.z, f.t, NULL, 0.0f)); /* f32 labels */
    assert_null(fr_cross_entropy(f.ctx, f.z, f.y, NULL, 1.5f));
    struct fr_tensor *t2 = fr_tensor_new_2d(f.ctx, FR_F32, N, K + 1);
    assert_null(fr_soft_cross_entropy(f.ctx, f.z, t2, NULL));
    assert_null(fr_distill_loss(f.ctx, f.z, t2, f.y, NULL, 0.5f, 2.0f));
    assert_null(fr_distill_loss(f.ctx, f.z, f.t, NULL, NULL, 0.5f, 2.0f)); /* alpha < 1 needs labels */
    assert_null(fr_distill_loss(f.ctx, f.z, f.t, f.y, NULL, 0.5f, 0.0f));
    assert_null(fr_mse_loss(f.ctx, f.z, t2, NULL));
    struct fr_tensor *w2 = fr_tensor_new_1d(f.ctx, FR_F32, N + 2);
    assert_null(fr_cross_entropy(f.ctx, f.z, f.y, w2, 0.0f));
    assert_non_null(strstr(fr_last_error(), "weights"));
    fr_ctx_free(f.ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_entropy_values),
        cmocka_unit_test(test_soft_ce_one_hot_equals_hard),
        cmocka_unit_test(test_distill_t2_alpha),
        cmocka_unit_test(test_distill_teacher_gets_no_gradient),
        cmocka_unit_test(test_mse_values),
        cmocka_unit_test(test_gradients_finite_differences),
        cmocka_unit_test(test_pseudo_targets),
        cmocka_unit_test(test_pseudo_targets_no_gradient),
        cmocka_unit_test(test_bad_labels),
        cmocka_unit_test(test_shape_errors),
    };
    return cmocka_run_group_tests(tests, tu_cpu_setup, tu_cpu_teardown);
}
