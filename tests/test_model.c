/* Models on the CPU path: built-in t/c/s/m parameter names and shapes (PyTorch state_dict), init bounds,
 * statistics and determinism, forward shapes, building errors naming the layer, freezing by prefix,
 * head replacement, save/load by name, parity with model s trained in PyTorch, and the trainer's train/eval
 * graphs over shared parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frugal/io.h"
#include "frugal/model.h"
#include "frugal/nn.h"
#include "testutil.h"

#define be tu_cpu /* the suite's shared CPU backend (testutil.h) */

struct want {
    const char *name;
    int ndim;
    int64_t ne[4];
    uint32_t flag;
};

static void check_tensors(struct fr_model *m, const struct want *w, int n, bool exact_count)
{
    if (exact_count)
        assert_int_equal(fr_model_n_tensors(m), n);
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = fr_model_find(m, w[i].name);
        if (!t)
            fail_msg("no tensor '%s'", w[i].name);
        assert_int_equal(t->ndim, w[i].ndim);
        for (int d = 0; d < w[i].ndim; d++)
            if (t->ne[d] != w[i].ne[d])
                fail_msg("%s: dim %d is %lld, want %lld", w[i].name, d, (long long)t->ne[d], (long long)w[i].ne[d]);
        assert_true(t->flags & w[i].flag);
        if (exact_count)
            assert_string_equal(fr_model_tensor(m, i).name, w[i].name); /* state_dict order */
    }
}

static void test_model_s_names_shapes(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_builtin(ctx, "s", 1, 28, 28, 10, &m), FR_STATUS_OK);
    const struct want w[] = {
        {"conv1.weight", 4, {32, 1, 3, 3}, FR_FLAG_PARAM}, {"conv1.bias", 1, {32}, FR_FLAG_PARAM},
        {"conv2.weight", 4, {64, 32, 3, 3}, FR_FLAG_PARAM}, {"conv2.bias", 1, {64}, FR_FLAG_PARAM},
        {"fc1.weight", 2, {128, 3136}, FR_FLAG_PARAM}, {"fc1.bias", 1, {128}, FR_FLAG_PARAM},
        {"fc2.weight", 2, {10, 128}, FR_FLAG_PARAM}, {"fc2.bias", 1, {10}, FR_FLAG_PARAM},
    };
    check_tensors(m, w, 8, true);
    assert_int_equal(fr_model_n_params(m), 421642); /* docs/reference.md §8: about 422k */
    assert_int_equal(fr_model_n_classes(m), 10);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

static void test_model_t_and_m(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *t, *m;
    assert_int_equal(fr_model_builtin(ctx, "t", 1, 28, 28, 10, &t), FR_STATUS_OK);
    const struct want wt[] = {
        {"conv1.weight", 4, {8, 1, 3, 3}, FR_FLAG_PARAM}, {"conv1.bias", 1, {8}, FR_FLAG_PARAM},
        {"conv2.weight", 4, {16, 8, 3, 3}, FR_FLAG_PARAM}, {"conv2.bias", 1, {16}, FR_FLAG_PARAM},
        {"fc.weight", 2, {10, 784}, FR_FLAG_PARAM}, {"fc.bias", 1, {10}, FR_FLAG_PARAM},
    };
    check_tensors(t, wt, 6, true);
    assert_int_equal(fr_model_n_params(t), 80 + 1168 + 7850);
    assert_int_equal(fr_model_builtin(ctx, "m", 1, 28, 28, 10, &m), FR_STATUS_OK);
    const struct want wm[] = {
        {"conv1.weight", 4, {32, 1, 3, 3}, FR_FLAG_PARAM},
        {"bn1.weight", 1, {32}, FR_FLAG_PARAM},
        {"bn1.running_mean", 1, {32}, FR_FLAG_STATE},
        {"bn1.running_var", 1, {32}, FR_FLAG_STATE},
        {"layer1.0.conv1.weight", 4, {32, 32, 3, 3}, FR_FLAG_PARAM},
        {"layer2.0.conv1.weight", 4, {64, 32, 3, 3}, FR_FLAG_PARAM},
        {"layer2.0.downsample.0.weight", 4, {64, 32, 1, 1}, FR_FLAG_PARAM},
        {"layer2.0.downsample.1.running_var", 1, {64}, FR_FLAG_STATE},
        {"layer3.1.bn2.bias", 1, {128}, FR_FLAG_PARAM},
        {"fc.weight", 2, {10, 128}, FR_FLAG_PARAM},
    };
    check_tensors(m, wm, 10, false);
    assert_null(fr_model_find(m, "layer1.0.downsample.0.weight")); /* same shape: identity shortcut */
    assert_null(fr_model_find(m, "conv1.bias"));                   /* conv before batch-norm has no bias */
    int64_t np = fr_model_n_params(m);
    assert_true(np > 500000 && np < 2000000);
    struct fr_model *x;
    assert_int_equal(fr_model_builtin(ctx, "xl", 1, 28, 28, 10, &x), FR_STATUS_NOT_FOUND);
    fr_model_free(t);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

/* c: t's layout twice as wide, convolutions without bias before batch-norm, dropout before the head */
static void test_model_c(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *c;
    assert_int_equal(fr_model_builtin(ctx, "c", 1, 28, 28, 10, &c), FR_STATUS_OK);
    const struct want w[] = {
        {"conv1.weight", 4, {16, 1, 3, 3}, FR_FLAG_PARAM},  {"bn1.weight", 1, {16}, FR_FLAG_PARAM},
        {"bn1.bias", 1, {16}, FR_FLAG_PARAM},               {"bn1.running_mean", 1, {16}, FR_FLAG_STATE},
        {"bn1.running_var", 1, {16}, FR_FLAG_STATE},        {"conv2.weight", 4, {32, 16, 3, 3}, FR_FLAG_PARAM},
        {"bn2.weight", 1, {32}, FR_FLAG_PARAM},             {"bn2.bias", 1, {32}, FR_FLAG_PARAM},
        {"bn2.running_mean", 1, {32}, FR_FLAG_STATE},       {"bn2.running_var", 1, {32}, FR_FLAG_STATE},
        {"fc.weight", 2, {10, 32 * 7 * 7}, FR_FLAG_PARAM},  {"fc.bias", 1, {10}, FR_FLAG_PARAM},
    };
    check_tensors(c, w, 12, true);
    /* 16*9 + 2*16 + 32*16*9 + 2*32 + 10*1568 + 10 */
    assert_int_equal(fr_model_n_params(c), 144 + 32 + 4608 + 64 + 15680 + 10);
    assert_int_equal(fr_model_n_params(c), 20538);
    fr_model_free(c);
    /* on 3x32x32 images: 8x8 after two pools */
    assert_int_equal(fr_model_builtin(ctx, "c", 3, 32, 32, 5, &c), FR_STATUS_OK);
    assert_int_equal(fr_model_find(c, "conv1.weight")->ne[1], 3);
    assert_int_equal(fr_model_find(c, "fc.weight")->ne[1], 32 * 8 * 8);
    assert_int_equal(fr_model_n_classes(c), 5);
    fr_model_free(c);
    fr_ctx_free(ctx);
}

static void test_build_errors_name_layer(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m = fr_model_new(ctx, 1, 28, 28);
    assert_int_equal(fr_model_conv2d(m, "conv1", 4, 3, 1, 1, true), FR_STATUS_OK);
    assert_int_equal(fr_model_linear(m, "head", 10), FR_STATUS_SHAPE); /* no flatten */
    assert_non_null(strstr(fr_last_error(), "head"));
    assert_int_equal(fr_model_maxpool(m, 64, 64), FR_STATUS_SHAPE);
    assert_int_equal(fr_model_conv2d(m, "big", 4, 40, 1, 0, true), FR_STATUS_SHAPE);
    assert_non_null(strstr(fr_last_error(), "big"));
    assert_int_equal(fr_model_dropout(m, 1.0f), FR_STATUS_INVALID_ARGUMENT);
    assert_int_equal(fr_model_residual_end(m, 1.0f), FR_STATUS_INVALID_ARGUMENT);
    assert_int_equal(fr_model_flatten(m), FR_STATUS_OK);
    assert_int_equal(fr_model_conv2d(m, "late", 4, 3, 1, 1, true), FR_STATUS_SHAPE);
    assert_non_null(strstr(fr_last_error(), "late"));
    assert_int_equal(fr_model_linear(m, "head", 10), FR_STATUS_OK);
    /* wrong input shape at forward time names the input */
    struct fr_tensor *x = fr_tensor_new_4d(ctx, FR_F32, 2, 3, 28, 28);
    fr_tensor_set_name(x, "images");
    assert_null(fr_model_forward(m, ctx, x, false));
    assert_non_null(strstr(fr_last_error(), "images"));
    fr_model_free(m);
    fr_ctx_free(ctx);
}

static void read_all(struct fr_tensor *t, float *v) { assert_int_equal(fr_tensor_get(t, v, fr_nbytes(t)), FR_STATUS_OK); }

static void test_init_bounds_determinism(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *a, *b;
    assert_int_equal(fr_model_builtin(ctx, "s", 1, 28, 28, 10, &a), FR_STATUS_OK);
    assert_int_equal(fr_model_builtin(ctx, "s", 1, 28, 28, 10, &b), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(a, be), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(b, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(a, 42, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    assert_int_equal(fr_model_init(b, 42, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    static float va[401408], vb[401408];
    const int fan_in[8] = {9, 9, 288, 288, 3136, 3136, 128, 128};
    for (int i = 0; i < 8; i++) {
        struct fr_tensor *ta = fr_model_tensor(a, i).t, *tb = fr_model_tensor(b, i).t;
        int64_t n = fr_nelements(ta);
        read_all(ta, va);
        read_all(tb, vb);
        tu_assert_bytes_equal(va, vb, (size_t)n * sizeof(float));
        float bound = 1.0f / sqrtf((float)fan_in[i]), mx = 0;
        double mean = 0;
        for (int64_t j = 0; j < n; j++) {
            if (!(fabsf(va[j]) <= bound))
                fail_msg("%s[%lld] = %g outside +-%g", ta->name, (long long)j, va[j], bound);
            mx = fmaxf(mx, fabsf(va[j]));
            mean += va[j];
        }
        mean /= (double)n;
        if (n >= 1000) { /* uniform: max near the bound, mean near 0, variance bound^2/3 */
            assert_true(mx > 0.99f * bound);
            assert_true(fabs(mean) < 0.05 * bound);
        } else if (n >= 32) {
            assert_true(mx > 0.8f * bound);
        }
    }
    /* another seed gives other values */
    assert_int_equal(fr_model_init(b, 43, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    read_all(fr_model_find(a, "fc1.weight"), va);
    read_all(fr_model_find(b, "fc1.weight"), vb);
    assert_true(memcmp(va, vb, 4096) != 0);
    /* Kaiming-normal: std sqrt(2/fan_in), biases zero */
    assert_int_equal(fr_model_init(b, 7, FR_INIT_KAIMING_NORMAL, NULL), FR_STATUS_OK);
    read_all(fr_model_find(b, "fc1.weight"), vb);
    double s1 = 0, s2 = 0;
    for (int j = 0; j < 401408; j++) {
        s1 += vb[j];
        s2 += (double)vb[j] * vb[j];
    }
    double sd = sqrt(s2 / 401408 - (s1 / 401408) * (s1 / 401408)), want = sqrt(2.0 / 3136);
    assert_true(fabs(sd - want) < 0.01 * want);
    assert_true(fabs(s1 / 401408) < 0.01 * want);
    read_all(fr_model_find(b, "fc1.bias"), vb);
    for (int j = 0; j < 128; j++)
        assert_true(vb[j] == 0.0f);
    /* prefix: only the head */
    read_all(fr_model_find(b, "conv1.weight"), va);
    assert_int_equal(fr_model_init(b, 99, FR_INIT_DEFAULT, "fc2."), FR_STATUS_OK);
    read_all(fr_model_find(b, "conv1.weight"), vb);
    tu_assert_bytes_equal(vb, va, 288 * sizeof(float));
    fr_model_free(a);
    fr_model_free(b);
    fr_ctx_free(ctx);
}

static void test_bn_init(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_builtin(ctx, "m", 1, 28, 28, 10, &m), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 1, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    float v[128];
    read_all(fr_model_find(m, "layer3.0.downsample.1.running_var"), v);
    for (int i = 0; i < 128; i++)
        assert_true(v[i] == 1.0f);
    read_all(fr_model_find(m, "bn1.weight"), v);
    assert_true(v[0] == 1.0f && v[31] == 1.0f);
    read_all(fr_model_find(m, "bn1.running_mean"), v);
    assert_true(v[0] == 0.0f);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

/* forward shapes of all three models, and the trainer's eval graph agrees with itself */
static void test_forward_and_trainer(void **state)
{
    (void)state;
    const char *names[] = {"t", "s", "m", "c"};
    for (int k = 0; k < 4; k++) {
        struct fr_ctx *ctx = fr_ctx_new();
        struct fr_model *m;
        assert_int_equal(fr_model_builtin(ctx, names[k], 1, 28, 28, 10, &m), FR_STATUS_OK);
        assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
        assert_int_equal(fr_model_init(m, 5, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
        struct fr_trainer_opts o;
        fr_trainer_opts_init(&o);
        o.batch = 4;
        o.eval_batch = 3;
        o.optim.momentum = 0.9f;
        struct fr_trainer *tr;
        if (fr_trainer_new(m, be, &o, &tr) != FR_STATUS_OK)
            fail_msg("trainer %s: %s", names[k], fr_last_error());
        assert_true(fr_graph_training(fr_trainer_graph(tr, false)));
        static float x[5 * 784], l1[5 * 10], l2[5 * 10];
        tu_fill_uniform(x, 5 * 784, 3, 0, 1);
        assert_int_equal(fr_trainer_predict(tr, x, 5, l1), FR_STATUS_OK);
        assert_false(fr_graph_training(fr_trainer_graph(tr, true))); /* the eval graph, built on first use */
        assert_int_equal(fr_trainer_predict(tr, x, 5, l2), FR_STATUS_OK);
        tu_assert_bytes_equal(l1, l2, sizeof l1); /* eval: no dropout, no statistics update */
        /* a sample's logits do not depend on its chunk neighbours in eval mode */
        assert_int_equal(fr_trainer_predict(tr, x + 3 * 784, 2, l2), FR_STATUS_OK);
        tu_assert_close(l2, l1 + 30, 20, 1e-5f, 1e-4f);
        const int32_t y[4] = {1, 2, 3, 4}, bad[4] = {1, 2, 10, 4};
        float loss0, loss1;
        assert_int_equal(fr_trainer_step(tr, x, y, NULL, NULL, 0.01f, &loss0), FR_STATUS_OK);
        assert_true(loss0 > 1.0f && loss0 < 4.0f); /* about log(10) at init */
        assert_int_equal(fr_trainer_step(tr, x, bad, NULL, NULL, 0.01f, &loss1), FR_STATUS_INVALID_ARGUMENT);
        assert_non_null(strstr(fr_last_error(), "training step 1"));
        assert_non_null(strstr(fr_last_error(), "sample 2"));
        /* the update changed the parameters the eval graph reads */
        assert_int_equal(fr_trainer_predict(tr, x, 5, l2), FR_STATUS_OK);
        assert_true(memcmp(l1, l2, sizeof l1) != 0);
        if (k >= 2) { /* batch-norm running statistics moved during the training step */
            float rm[32];
            read_all(fr_model_find(m, "bn1.running_mean"), rm);
            float s = 0;
            for (int i = 0; i < (int)fr_model_find(m, "bn1.running_mean")->ne[0]; i++)
                s += fabsf(rm[i]);
            assert_true(s > 0.0f);
        }
        fr_trainer_free(tr);
        fr_model_free(m);
        fr_ctx_free(ctx);
    }
}


/* the other loss kinds of the trainer: soft targets with per-sample weights, and distillation */
static void test_trainer_soft_and_distill(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        struct fr_ctx *ctx = fr_ctx_new();
        struct fr_model *m;
        assert_int_equal(fr_model_builtin(ctx, "t", 1, 28, 28, 10, &m), FR_STATUS_OK);
        assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
        assert_int_equal(fr_model_init(m, 3, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
        struct fr_trainer_opts o;
        fr_trainer_opts_init(&o);
        o.batch = 8;
        fr_optim_params_init(&o.optim, FR_OPTIM_ADAMW);
        o.loss = kind == 0 ? FR_LOSS_SOFT_CE : FR_LOSS_DISTILL;
        o.sample_weights = kind == 0;
        o.alpha = 0.5f;
        o.temperature = 4.0f;
        struct fr_trainer *tr;
        if (fr_trainer_new(m, be, &o, &tr) != FR_STATUS_OK)
            fail_msg("trainer: %s", fr_last_error());
        static float x[8 * 784], soft[8 * 10], teacher[8 * 10], w[8];
        int32_t y[8];
        tu_fill_uniform(x, 8 * 784, 5, 0, 1);
        tu_fill_uniform(teacher, 80, 6, -3, 3);
        for (int i = 0; i < 8; i++) {
            y[i] = i % 10;
            w[i] = i < 4 ? 1.0f : 0.0f;
            for (int k = 0; k < 10; k++)
                soft[i * 10 + k] = k == y[i] ? 0.8f : 0.2f / 9;
        }
        float l0 = 0, l = 0;
        for (int s = 0; s < 30; s++) {
            enum fr_status st = kind == 0 ? fr_trainer_step(tr, x, soft, NULL, w, 3e-3f, &l)
                                          : fr_trainer_step(tr, x, y, teacher, NULL, 3e-3f, &l);
            if (st != FR_STATUS_OK)
                fail_msg("step %d: %s", s, fr_last_error());
            if (s == 0)
                l0 = l;
        }
        assert_true(isfinite(l0) && l < l0); /* fits its 8 samples */
        fr_trainer_free(tr);
        fr_model_free(m);
        fr_ctx_free(ctx);
    }
}

static void test_freeze_and_replace_head(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_builtin(ctx, "s", 1, 28, 28, 10, &m), FR_STATUS_OK);
    assert_int_equal(fr_model_replace_head(m, 5), FR_STATUS_OK);
    assert_int_equal(fr_model_n_classes(m), 5);
    struct fr_tensor *w = fr_model_find(m, "fc2.weight");
    assert_true(w->ne[0] == 5 && w->ne[1] == 128);
    assert_int_equal(fr_model_find(m, "fc2.bias")->ne[0], 5);
    assert_int_equal(fr_model_freeze(m, "conv", true), 4);
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 1, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    float c0[288], c1[288];
    read_all(fr_model_find(m, "conv1.weight"), c0);
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = 2;
    struct fr_trainer *tr;
    assert_int_equal(fr_trainer_new(m, be, &o, &tr), FR_STATUS_OK);
    assert_null(fr_model_find(m, "conv1.weight")->grad);
    assert_null(fr_model_find(m, "conv2.bias")->grad);
    assert_non_null(fr_model_find(m, "fc1.weight")->grad);
    assert_int_equal(fr_optim_n_updates(fr_trainer_optim(tr)), 4);
    static float x[2 * 784], logits[2 * 5];
    tu_fill_uniform(x, 2 * 784, 1, 0, 1);
    const int32_t y[2] = {4, 0};
    float loss;
    assert_int_equal(fr_trainer_step(tr, x, y, NULL, NULL, 0.1f, &loss), FR_STATUS_OK);
    read_all(fr_model_find(m, "conv1.weight"), c1);
    tu_assert_bytes_equal(c1, c0, sizeof c0);
    assert_int_equal(fr_trainer_predict(tr, x, 2, logits), FR_STATUS_OK);
    fr_trainer_free(tr);
    /* no linear head at the end: nothing to replace */
    struct fr_model *t = fr_model_new(ctx, 1, 8, 8);
    assert_int_equal(fr_model_conv2d(t, "c", 2, 3, 1, 1, true), FR_STATUS_OK);
    assert_int_equal(fr_model_replace_head(t, 3), FR_STATUS_INVALID_ARGUMENT);
    fr_model_free(t);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

static void test_save_load_by_name(void **state)
{
    (void)state;
    char path[] = "/tmp/frugal_test_model_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *a, *b;
    assert_int_equal(fr_model_builtin(ctx, "m", 1, 28, 28, 10, &a), FR_STATUS_OK);
    assert_int_equal(fr_model_builtin(ctx, "m", 1, 28, 28, 10, &b), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(a, be), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(b, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(a, 1, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    assert_int_equal(fr_model_init(b, 2, FR_INIT_KAIMING_NORMAL, NULL), FR_STATUS_OK);
    if (fr_model_save(a, path) != FR_STATUS_OK)
        fail_msg("save: %s", fr_last_error());
    if (fr_model_load(b, path, false, false) != FR_STATUS_OK)
        fail_msg("load: %s", fr_last_error());
    static float va[147456], vb[147456];
    for (int i = 0; i < fr_model_n_tensors(a); i++) {
        struct fr_tensor *ta = fr_model_tensor(a, i).t, *tb = fr_model_tensor(b, i).t;
        read_all(ta, va);
        read_all(tb, vb);
        tu_assert_bytes_equal(vb, va, fr_nbytes(ta));
    }
    /* a model with another head does not load strictly */
    struct fr_model *c;
    assert_int_equal(fr_model_builtin(ctx, "m", 1, 28, 28, 7, &c), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(c, be), FR_STATUS_OK);
    assert_true(fr_model_load(c, path, false, false) != FR_STATUS_OK);
    assert_non_null(strstr(fr_last_error(), "fc."));
    unlink(path);
    fr_model_free(a);
    fr_model_free(b);
    fr_model_free(c);
    fr_ctx_free(ctx);
}

/* model s trained in PyTorch (tests/data/make_torch_s.py) loads by name and predicts PyTorch's eval logits */
static void test_torch_trained_s_parity(void **state)
{
    (void)state;
    const char *cl = getenv("FRUGAL_CL_PATH"); /* <source>/cl, set by tests/meson.build */
    char path[4096];
    if (!cl || snprintf(path, sizeof path, "%s/../tests/data/torch_s.safetensors", cl) >= (int)sizeof path ||
        access(path, R_OK) != 0) {
        printf("skip: tests/data/torch_s.safetensors not found (FRUGAL_CL_PATH unset or file missing)\n");
        skip();
    }
    struct fr_safetensors *st;
    if (fr_st_open(path, &st) != FR_STATUS_OK)
        fail_msg("open: %s", fr_last_error());
    const struct fr_st_tensor *ti = fr_st_find(st, "test.inputs"), *tl = fr_st_find(st, "test.logits");
    assert_non_null(ti);
    assert_non_null(tl);
    assert_int_equal(fr_st_numel(ti), 16 * 784);
    assert_int_equal(fr_st_numel(tl), 16 * 10);
    static float x[16 * 784], want[16 * 10], got[16 * 10];
    assert_int_equal(fr_st_read_f32(st, ti, x, 16 * 784), FR_STATUS_OK);
    assert_int_equal(fr_st_read_f32(st, tl, want, 16 * 10), FR_STATUS_OK);
    fr_st_free(st);

    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_builtin(ctx, "s", 1, 28, 28, 10, &m), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    if (fr_model_load(m, path, false, true) != FR_STATUS_OK) /* test.* are the unexpected names */
        fail_msg("load: %s", fr_last_error());
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = 16;
    struct fr_trainer *tr;
    if (fr_trainer_new(m, be, &o, &tr) != FR_STATUS_OK)
        fail_msg("trainer: %s", fr_last_error());
    assert_int_equal(fr_trainer_predict(tr, x, 16, got), FR_STATUS_OK);
    float maxd = 0;
    for (int i = 0; i < 16 * 10; i++)
        if (!(fabsf(got[i] - want[i]) <= maxd))
            maxd = fabsf(got[i] - want[i]); /* also catches NaN */
    printf("torch_s: max |logit - pytorch| = %.3g over 16x10\n", (double)maxd);
    assert_true(maxd <= 1e-4f);
    for (int i = 0; i < 16; i++) {
        int a = 0, b = 0;
        for (int k = 1; k < 10; k++) {
            if (got[i * 10 + k] > got[i * 10 + a])
                a = k;
            if (want[i * 10 + k] > want[i * 10 + b])
                b = k;
        }
        assert_int_equal(a, b);
    }
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
}


/* --- model files (src/nn/modelfile.c) --- */

static const char MODEL_S_TEXT[] = "# the built-in s as a model file\n"
                                   "conv conv1 32 3 1 1      # name out_ch kernel stride pad\n"
                                   "relu\n"
                                   "maxpool 2 2\n"
                                   "\n"
                                   "conv\tconv2 64 3 1 1\n"
                                   "relu\n"
                                   "maxpool 2\n"
                                   "flatten\n"
                                   "linear fc1 128\n"
                                   "relu\n"
                                   "dropout 0.5\n"
                                   "linear fc2 7            # outputs replaced by the class count\n";

/* eval logits of a model for 5 fixed images after init with seed 5 */
static void model_logits(struct fr_model *m, float *logits)
{
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 5, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = 4;
    struct fr_trainer *tr;
    assert_int_equal(fr_trainer_new(m, be, &o, &tr), FR_STATUS_OK);
    static float x[5 * 784];
    tu_fill_uniform(x, 5 * 784, 11, 0, 1);
    assert_int_equal(fr_trainer_predict(tr, x, 5, logits), FR_STATUS_OK);
    fr_trainer_free(tr);
}

/* same tensors (names, shapes, order, flags) and the same eval logits as a built-in model */
static void assert_same_model(const char *builtin, const char *text)
{
    struct fr_ctx *c1 = fr_ctx_new(), *c2 = fr_ctx_new();
    struct fr_model *a, *b;
    assert_int_equal(fr_model_builtin(c1, builtin, 1, 28, 28, 10, &a), FR_STATUS_OK);
    if (fr_model_from_text(c2, text, "builtin.txt", 1, 28, 28, 10, &b) != FR_STATUS_OK)
        fail_msg("model text for %s: %s", builtin, fr_last_error());
    assert_int_equal(fr_model_n_tensors(a), fr_model_n_tensors(b));
    for (int i = 0; i < fr_model_n_tensors(a); i++) {
        struct fr_model_entry ea = fr_model_tensor(a, i), eb = fr_model_tensor(b, i);
        assert_string_equal(ea.name, eb.name);
        assert_int_equal(ea.t->ndim, eb.t->ndim);
        for (int d = 0; d < ea.t->ndim; d++)
            assert_int_equal(ea.t->ne[d], eb.t->ne[d]);
        assert_int_equal(ea.t->flags & (FR_FLAG_PARAM | FR_FLAG_STATE), eb.t->flags & (FR_FLAG_PARAM | FR_FLAG_STATE));
    }
    assert_int_equal(fr_model_n_params(a), fr_model_n_params(b));
    assert_int_equal(fr_model_n_classes(b), 10);
    float la[50], lb[50];
    model_logits(a, la);
    model_logits(b, lb);
    tu_assert_bytes_equal(la, lb, sizeof la); /* same init stream, same layers, same kernels */
    fr_model_free(a);
    fr_model_free(b);
    fr_ctx_free(c1);
    fr_ctx_free(c2);
}

static void test_modelfile_equals_builtin(void **state)
{
    (void)state;
    assert_same_model("s", MODEL_S_TEXT);
    /* m: batch-norm, residual blocks with projections, global pooling */
    char m[4096];
    int n = snprintf(m, sizeof m, "conv conv1 32 3 1 1 nobias\nbatchnorm bn1\nrelu\n");
    const int widths[3] = {32, 64, 128};
    for (int s = 0, b = 0; s < 3; s++)
        for (int j = 0; j < 2; j++, b++) {
            int st = s > 0 && j == 0 ? 2 : 1;
            n += snprintf(m + n, sizeof m - (size_t)n,
                          "residual layer%d.%d\n"
                          "  conv layer%d.%d.conv1 %d 3 %d 1 nobias\n  batchnorm layer%d.%d.bn1\n  relu\n"
                          "  conv layer%d.%d.conv2 %d 3 1 1 nobias\n  batchnorm layer%d.%d.bn2\n"
                          "end %g\nrelu\n",
                          s + 1, j, s + 1, j, widths[s], st, s + 1, j, s + 1, j, widths[s], s + 1, j,
                          1.0 - 0.2 * (b + 1) / 6.0);
        }
    snprintf(m + n, sizeof m - (size_t)n, "gap\ndropout 0.5\nlinear fc 10\n");
    assert_same_model("m", m);
    assert_same_model("c", "conv conv1 16 3 1 1 nobias\nbatchnorm bn1\nrelu\nmaxpool 2 2\n"
                           "conv conv2 32 3 1 1 nobias\nbatchnorm bn2\nrelu\nmaxpool 2 2\n"
                           "flatten\ndropout 0.5\nlinear fc 10\n");
}

static void expect_error(const char *text, enum fr_status want, const char *msg1, const char *msg2)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m = (struct fr_model *)&m; /* must come back NULL */
    enum fr_status st = fr_model_from_text(ctx, text, "model.txt", 1, 28, 28, 10, &m);
    if (st != want)
        fail_msg("status %d (want %d) for:\n%s\n%s", (int)st, (int)want, text, fr_last_error());
    assert_null(m);
    if (!strstr(fr_last_error(), msg1) || (msg2 && !strstr(fr_last_error(), msg2)))
        fail_msg("error '%s' lacks '%s' / '%s'", fr_last_error(), msg1, msg2 ? msg2 : "");
    fr_ctx_free(ctx);
}

static void test_modelfile_errors(void **state)
{
    (void)state;
    expect_error("# c\nconv conv1 8 3 1 1\nconvv conv2 8 3 1 1\nflatten\nlinear fc 10\n", FR_STATUS_FORMAT,
                 "model.txt:3: unknown layer 'convv'", "valid: conv, linear");
    expect_error("conv conv1 8 3 1\nflatten\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:1:",
                 "conv NAME OUT_CH KERNEL STRIDE PAD");
    expect_error("conv conv1 8 x 1 1\nflatten\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:1:", "'x'");
    expect_error("conv conv1 8 3 1 1 bias\nflatten\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:1:", "'bias'");
    expect_error("conv conv1 8 3 1 1\nflatten\nlinear fc 10\nrelu\n", FR_STATUS_FORMAT, "model.txt:4:",
                 "last layer must be 'linear");
    expect_error("# only a comment\n\n", FR_STATUS_FORMAT, "model.txt: no layers", NULL);
    expect_error("conv conv1 8 3 1 1\nlinear fc 10\n", FR_STATUS_SHAPE, "model.txt:2:", "flatten");
    expect_error("conv conv1 8 30 1 0\nflatten\nlinear fc 10\n", FR_STATUS_SHAPE, "model.txt:1:", "kernel larger");
    expect_error("flatten\ndropout 1.5\nlinear fc 10\n", FR_STATUS_INVALID_ARGUMENT, "model.txt:2:", "dropout");
    expect_error("conv c 8 3 1 1\nresidual r\nconv r.c 8 3 1 1\nflatten\nend\nlinear fc 10\n", FR_STATUS_SHAPE,
                 "model.txt:5:", "must end on [N,C,H,W]"); /* flat features at the end of a block */
    expect_error("conv c 8 3 1 1\nresidual r\nconv r.c 8 3 1 1\ngap\nlinear fc 10\n", FR_STATUS_FORMAT,
                 "model.txt:2: residual 'r' is never closed by 'end'", NULL);
    /* finding #19: the block's last layer is fine, the head comes while it is open */
    expect_error("conv c1 8 3 1 1\nresidual b1\nconv b1.c 8 3 1 1\nlinear fc 10\n", FR_STATUS_FORMAT,
                 "model.txt:4: residual 'b1' (line 2) is never closed by 'end'", "flat features");
    expect_error("conv c1 8 3 1 1\nresidual b1\nconv b1.c 8 3 1 1\nconv b1.d 8 3 1 1\n", FR_STATUS_FORMAT,
                 "model.txt:4: the last layer must be", NULL);
    expect_error("conv c 8 3 1 1\nend 0.9\nflatten\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:2:",
                 "without an open 'residual'");
    expect_error("conv c 8 3 1 1\nresidual r\nconv r.c 8 3 1 1\nend 0\nflatten\nlinear fc 10\n",
                 FR_STATUS_INVALID_ARGUMENT, "model.txt:4:", "survival");
    expect_error("flatten\nlinear\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:2:", "linear NAME OUT_FEATURES");
    /* finding #5: duplicate names fail at parse time, also against an automatic projection's name */
    expect_error("conv c1 8 3 1 1\nconv c1 8 3 1 1\ngap\nlinear fc 10\n", FR_STATUS_INVALID_ARGUMENT, "model.txt:2:",
                 "'c1.weight' exists already");
    expect_error("conv c 8 3 1 1\nresidual b1\nconv b1.c 16 3 1 1\nend\nconv b1.downsample.0 16 1 1 0\ngap\nlinear fc 10\n",
                 FR_STATUS_INVALID_ARGUMENT, "model.txt:5:", "'b1.downsample.0.weight' exists already");
    expect_error("conv b1.downsample.1 8 3 1 1\nresidual b1\nconv b1.c 16 3 1 1\nend\ngap\nlinear fc 10\n",
                 FR_STATUS_INVALID_ARGUMENT, "model.txt:4:", "automatic projection");
    expect_error("flatten\nlinear fc1 5\nlinear fc1 10\n", FR_STATUS_INVALID_ARGUMENT, "model.txt:3:", "used twice");
    /* finding #44: a zero-output head is refused like a hidden layer */
    expect_error("flatten\nlinear fc 0\n", FR_STATUS_FORMAT, "model.txt:2:", "0 outputs");
    /* PyTorch layers: frugal's keyword when it has the op, the missing op when it does not */
    expect_error("conv c 8 3 1 1\nLayerNorm ln\ngap\nlinear fc 10\n", FR_STATUS_UNSUPPORTED, "model.txt:2:",
                 "missing op: layer normalisation");
    expect_error("Conv2d c 8 3 1 1\ngap\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:1:", "write it as 'conv'");
    expect_error("conv c 8 3 1 1\nconv_transpose d 8 3 1 1\ngap\nlinear fc 10\n", FR_STATUS_UNSUPPORTED, "model.txt:2:",
                 "transposed convolution");
    /* the new layers' settings */
    expect_error("conv c 8 3 1 1 groups=3\ngap\nlinear fc 10\n", FR_STATUS_SHAPE, "model.txt:1:", "groups=3");
    expect_error("conv c 8 3 1 1 groups=0\ngap\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:1:", "at least 1");
    expect_error("maxpool 3 2 2\nflatten\nlinear fc 10\n", FR_STATUS_INVALID_ARGUMENT, "model.txt:1:", "padding");
    expect_error("avgpool 3 2 1 floor\nflatten\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:1:", "'floor'");
    expect_error("normalize 0.5 0.5 0.5\nflatten\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:1:", "3 values");
    expect_error("normalize 0.5 0\nflatten\nlinear fc 10\n", FR_STATUS_INVALID_ARGUMENT, "model.txt:1:", "std");
    expect_error("conv c 8 3 1 1\nse s 0\ngap\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:2:", "positive");
    expect_error("conv c 8 3 1 1\nse s 2 swish\ngap\nlinear fc 10\n", FR_STATUS_FORMAT, "model.txt:2:", "'swish'");
    expect_error("batchnorm b eps=0\nflatten\nlinear fc 10\n", FR_STATUS_INVALID_ARGUMENT, "model.txt:1:", "eps");

    /* the file variant names the path; a missing file is an I/O error naming it */
    char dir[512];
    assert_int_equal(tu_tmpdir_create(dir, sizeof dir, "modelfile"), 0);
    char path[600];
    snprintf(path, sizeof path, "%s", tu_path(dir, "net.txt"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("flatten\nlinear fc1 32\nrelux\nlinear fc2 10\n", f);
    fclose(f);
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_from_file(ctx, path, 1, 28, 28, 10, &m), FR_STATUS_FORMAT);
    char want[700];
    snprintf(want, sizeof want, "%s:3: unknown layer 'relux'", path);
    assert_non_null(strstr(fr_last_error(), want));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("flatten\nlinear fc1 32\nrelu\nlinear fc2 10\n", f);
    fclose(f);
    assert_int_equal(fr_model_from_file(ctx, path, 1, 28, 28, 3, &m), FR_STATUS_OK);
    assert_int_equal(fr_model_n_params(m), 784 * 32 + 32 + 32 * 3 + 3);
    fr_model_free(m);
    assert_int_equal(fr_model_from_file(ctx, "/nonexistent/net.txt", 1, 28, 28, 10, &m), FR_STATUS_IO);
    assert_non_null(strstr(fr_last_error(), "/nonexistent/net.txt"));
    fr_ctx_free(ctx);
    assert_int_equal(tu_tmpdir_remove(dir), 0);
}

/* logits of model s (init seed 3) for 2 fixed images, in a training-mode graph or an eval graph */
static void s_logits(const struct fr_model_opts *o, bool training, float *res)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_builtin_ex(ctx, "s", 1, 28, 28, 10, o, &m), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 3, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    struct fr_tensor *x = fr_tensor_new(ctx, FR_F32, 4, (int64_t[]){2, 1, 28, 28});
    fr_tensor_set_flags(x, FR_FLAG_INPUT);
    struct fr_tensor *y = fr_model_forward(m, ctx, x, training);
    assert_non_null(y);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    fr_graph_set_training(g, training);
    fr_graph_set_seed(g, 9);
    if (fr_graph_plan(g, be) != FR_STATUS_OK)
        fail_msg("plan: %s", fr_last_error());
    static float xv[2 * 784];
    tu_fill_uniform(xv, 2 * 784, 4, 0, 1);
    assert_int_equal(fr_tensor_set(x, xv, sizeof xv), FR_STATUS_OK);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(y, res, 20 * sizeof(float)), FR_STATUS_OK);
    fr_graph_free(g);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

/* fr_model_builtin_ex: the noise settings reach the layers; bad values are errors */
/* finding #33: flat features beyond int range are an error, not signed overflow */
static void test_flatten_overflow(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_from_text(ctx, "flatten\nlinear fc 10\n", "big.txt", 1, 100000, 100000, 10, &m),
                     FR_STATUS_SHAPE);
    assert_non_null(strstr(fr_last_error(), "big.txt:1:"));
    assert_non_null(strstr(fr_last_error(), "more than 2^31"));
    fr_ctx_free(ctx);
}

/* The torchvision-style layers build torchvision's names and shapes; a tiny MobileNetV3-like net runs forward
 * and backward and keeps its normalisation through the model text. */
static void test_modelfile_backbone_layers(void **state)
{
    (void)state;
    const char *text = "normalize 0.5 0.25 0.125 2 4 8\n"
                       "conv f.0.0 8 3 2 1 nobias\nbatchnorm f.0.1 eps=0.001 momentum=0.01\nhardswish\n"
                       "residual f.1\n"
                       "  conv f.1.block.0.0 8 3 1 2 nobias groups=8 dilation=2\n  batchnorm f.1.block.0.1\n  relu6\n"
                       "  se f.1.block.1 4 relu hardsigmoid\n"
                       "  conv f.1.block.2.0 8 1 1 0 nobias\n  batchnorm f.1.block.2.1\n"
                       "end 0.8\n"
                       "maxpool 3 2 1 ceil\navgpool 2 1 1 ceil exclude_pad\nsilu\nadaptive_avgpool 2 3\nsigmoid\n"
                       "flatten\nlinear classifier.0 12\nhardswish\ndropout 0.2\nlinear classifier.3 5\n";
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    if (fr_model_from_text(ctx, text, "tiny.txt", 3, 15, 13, 5, &m) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    struct {
        const char *name;
        int ndim;
        int64_t ne[4];
    } want[] = {{"f.0.0.weight", 4, {8, 3, 3, 3}},        {"f.0.1.running_var", 1, {8}},
                {"f.1.block.0.0.weight", 4, {8, 1, 3, 3}}, {"f.1.block.1.fc1.weight", 4, {4, 8, 1, 1}},
                {"f.1.block.1.fc1.bias", 1, {4}},          {"f.1.block.1.fc2.weight", 4, {8, 4, 1, 1}},
                {"f.1.block.1.fc2.bias", 1, {8}},          {"classifier.0.weight", 2, {12, 8 * 2 * 3}},
                {"classifier.3.weight", 2, {5, 12}}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct fr_tensor *t = fr_model_find(m, want[i].name);
        if (!t)
            fail_msg("no tensor %s", want[i].name);
        assert_int_equal(t->ndim, want[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            assert_int_equal(t->ne[d], want[i].ne[d]);
    }
    assert_null(fr_model_find(m, "f.1.downsample.0.weight")); /* same shape: no projection */
    float mean[4], sd[4];
    assert_int_equal(fr_model_normalization(m, mean, sd), 3);
    assert_true(mean[1] == 0.25f && sd[2] == 8.0f);
    /* training steps run (dropout, drop-path, SE, every new op's backward) and the loss stays finite */
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 3, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = 4;
    struct fr_trainer *tr;
    if (fr_trainer_new(m, be, &o, &tr) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    static float x[4 * 3 * 15 * 13];
    tu_fill_uniform(x, sizeof x / sizeof x[0], 5, 0, 1);
    int32_t y[4] = {0, 1, 2, 3};
    float first = 0, loss = 0;
    for (int s = 0; s < 20; s++) {
        assert_int_equal(fr_trainer_step(tr, x, y, NULL, NULL, 0.05f, &loss), FR_STATUS_OK);
        if (s == 0)
            first = loss;
    }
    assert_true(isfinite(loss) && loss < first); /* it learns the four images */
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

/* Eval graphs fold a conv's batch-norm into its weights and bias: the same logits as the unfolded layers
 * ("dropout 0" in between keeps them apart), with a conv bias, a fused ReLU and random statistics. */
static void eval_logits(const char *text, float *out)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    if (fr_model_from_text(ctx, text, "fold.txt", 2, 9, 7, 4, &m) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 9, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    float v[6];
    const char *names[] = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"};
    for (int t = 0; t < 4; t++) {
        tu_fill_uniform(v, 6, 40u + (uint32_t)t, t == 3 ? 0.2f : -1.0f, t == 3 ? 3.0f : 1.0f);
        assert_int_equal(fr_tensor_set(fr_model_find(m, names[t]), v, sizeof v), FR_STATUS_OK);
    }
    struct fr_tensor *x = fr_tensor_new(ctx, FR_F32, 4, (int64_t[]){3, 2, 9, 7});
    fr_tensor_set_flags(x, FR_FLAG_INPUT);
    static float xd[3 * 2 * 9 * 7];
    tu_fill_uniform(xd, sizeof xd / sizeof xd[0], 8, -1, 1);
    tu_run(ctx, be, fr_model_forward(m, ctx, x, false), &x, (const float *[]){xd}, 1, out);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

static void test_eval_folds_batchnorm(void **state)
{
    (void)state;
    float a[12], b[12];
    eval_logits("conv c 6 3 2 1\nbatchnorm bn eps=0.01\nrelu\ngap\nlinear fc 4\n", a);
    eval_logits("conv c 6 3 2 1\ndropout 0\nbatchnorm bn eps=0.01\nrelu\ngap\nlinear fc 4\n", b);
    tu_assert_close(a, b, 12, 1e-6f, 1e-5f);
}

/* PyTorch state_dicts carry num_batches_tracked: accepted and ignored even by a strict load */
static void test_load_ignores_num_batches_tracked(void **state)
{
    (void)state;
    char path[] = "/tmp/frugal_test_nbt_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_from_text(ctx, "conv c 2 3 1 1\nbatchnorm bn\ngap\nlinear fc 3\n", "x", 1, 5, 5, 3, &m),
                     FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    float w[18], b2[2], one[2] = {1, 1}, zero[2] = {0, 0}, fw[6], fb[3];
    tu_fill_uniform(w, 18, 1, -1, 1);
    tu_fill_uniform(b2, 2, 2, -1, 1);
    tu_fill_uniform(fw, 6, 3, -1, 1);
    tu_fill_uniform(fb, 3, 4, -1, 1);
    int64_t nbt = 7;
    struct fr_st_entry e[] = {
        {"c.weight", FR_ST_F32, 4, (int64_t[]){2, 1, 3, 3}, w}, {"c.bias", FR_ST_F32, 1, (int64_t[]){2}, b2},
        {"bn.weight", FR_ST_F32, 1, (int64_t[]){2}, one},       {"bn.bias", FR_ST_F32, 1, (int64_t[]){2}, zero},
        {"bn.running_mean", FR_ST_F32, 1, (int64_t[]){2}, zero}, {"bn.running_var", FR_ST_F32, 1, (int64_t[]){2}, one},
        {"bn.num_batches_tracked", FR_ST_I64, 0, NULL, &nbt},    {"fc.weight", FR_ST_F32, 2, (int64_t[]){3, 2}, fw},
        {"fc.bias", FR_ST_F32, 1, (int64_t[]){3}, fb},
    };
    assert_int_equal(fr_st_write(path, e, 9, NULL, 0), FR_STATUS_OK);
    if (fr_model_load(m, path, false, false) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    float got[18];
    assert_int_equal(fr_tensor_get(fr_model_find(m, "c.weight"), got, sizeof got), FR_STATUS_OK);
    tu_assert_bytes_equal(got, w, sizeof w);
    /* any other extra tensor is still named */
    e[6].name = "bn.extra";
    assert_int_equal(fr_st_write(path, e, 9, NULL, 0), FR_STATUS_OK);
    assert_int_equal(fr_model_load(m, path, false, false), FR_STATUS_SHAPE);
    assert_non_null(strstr(fr_last_error(), "1 unexpected: bn.extra"));
    unlink(path);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

static void test_builtin_noise_opts(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    struct fr_model_opts o = {.dropout = 1.5f, .survival = -1.0f};
    assert_int_equal(fr_model_builtin_ex(ctx, "s", 1, 28, 28, 10, &o, &m), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "dropout probability 1.5"));
    o = (struct fr_model_opts){.dropout = -1.0f, .survival = 0.0f};
    assert_int_equal(fr_model_builtin_ex(ctx, "m", 1, 28, 28, 10, &o, &m), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "survival probability"));
    fr_ctx_free(ctx);
    float eval[20], noisy[20], clean[20];
    s_logits(NULL, false, eval);
    s_logits(NULL, true, noisy); /* default dropout 0.5 changes the training forward */
    assert_true(memcmp(eval, noisy, sizeof eval) != 0);
    o = (struct fr_model_opts){.dropout = 0.0f, .survival = -1.0f};
    s_logits(&o, true, clean); /* dropout 0: no noise left, same as eval */
    tu_assert_close(clean, eval, 20, 1e-6f, 1e-6f);
}

/* One SGD step of a model file on the CPU path: the parameters after it, and the training graph's arena bytes */
static size_t step_once(const char *text, int in_hw, float *conv_w, size_t conv_bytes)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    if (fr_model_from_text(ctx, text, "step.txt", 2, in_hw, in_hw, 3, &m) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 11, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = 4;
    o.optim.momentum = 0.9f;
    struct fr_trainer *tr;
    if (fr_trainer_new(m, be, &o, &tr) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    float *x = malloc((size_t)(4 * 2 * in_hw * in_hw) * sizeof *x), loss;
    assert_non_null(x);
    tu_fill_uniform(x, (size_t)(4 * 2 * in_hw * in_hw), 21, -1, 1);
    int32_t y[4] = {0, 1, 2, 1};
    for (int s = 0; s < 2; s++)
        assert_int_equal(fr_trainer_step(tr, x, y, NULL, NULL, 0.1f, &loss), FR_STATUS_OK);
    if (conv_w) /* the first conv's weight */
        assert_int_equal(fr_tensor_get(fr_model_tensor(m, 0).t, conv_w, conv_bytes), FR_STATUS_OK);
    struct fr_graph_stats st;
    fr_graph_get_stats(fr_trainer_graph(tr, false), &st);
    free(x);
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
    return st.arena_bytes;
}

/* Training runs ReLU then max-pool as max-pool then ReLU: bit-identical parameters after two steps to the
 * layers kept apart ("dropout 0" in between), with less arena (the full-size ReLU output is not kept) */
static void test_relu_maxpool_swap(void **state)
{
    (void)state;
    /* 6 channels from 2: below the stem recomputation's 4x (see fr_bwd_batchnorm), so only the swap differs */
    const char *body = "conv c1 6 3 1 1 nobias\nbatchnorm b1\nrelu\n%smaxpool 3 2 1\n"
                       "conv c2 8 3 1 1\nrelu\nflatten\nlinear fc 3\n";
    char a[512], b[512];
    snprintf(a, sizeof a, body, "");
    snprintf(b, sizeof b, body, "dropout 0\n");
    static float wa[6 * 2 * 9], wb[6 * 2 * 9];
    size_t arena_a = step_once(a, 12, wa, sizeof wa), arena_b = step_once(b, 12, wb, sizeof wb);
    tu_assert_bytes_equal(wa, wb, sizeof wa);
    assert_true(arena_a < arena_b);
}

/* Parameter gradients run layer by layer in the backward: a deep chain's training arena holds the saved
 * activations and a few gradients, not every layer's output gradient at once */
static void test_training_arena_layer_by_layer(void **state)
{
    (void)state;
    char text[2048] = "";
    const int depth = 12, hw = 16;
    for (int i = 0; i < depth; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "conv l%d 8 3 1 1\nrelu\n", i);
    snprintf(text + strlen(text), sizeof text - strlen(text), "flatten\nlinear fc 3\n");
    size_t map = (size_t)4 * 8 * hw * hw * sizeof(float), arena = step_once(text, hw, NULL, 0);
    /* each conv keeps its input (its output is the next one's): depth maps, plus a handful in flight */
    if (arena > (size_t)(depth + 4) * map)
        fail_msg("training arena %zu bytes is more than %d feature maps of %zu", arena, depth + 4, map);
}

/* Each parameter's update runs as soon as the backward is done with its layer: a deep MLP's training arena
 * holds a couple of its weight gradients at a time, not all of them until the end of the step */
static void test_training_updates_run_early(void **state)
{
    (void)state;
    char text[1024] = "flatten\n";
    const int depth = 6, width = 256;
    for (int i = 0; i < depth; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "linear l%d %d\nrelu\n", i, width);
    snprintf(text + strlen(text), sizeof text - strlen(text), "linear fc 3\n");
    size_t grad = (size_t)width * width * sizeof(float), arena = step_once(text, 8, NULL, 0);
    if (arena > 3 * grad)
        fail_msg("training arena %zu bytes holds more than 3 weight gradients of %zu", arena, grad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_s_names_shapes),
        cmocka_unit_test(test_model_t_and_m),
        cmocka_unit_test(test_model_c),
        cmocka_unit_test(test_build_errors_name_layer),
        cmocka_unit_test(test_init_bounds_determinism),
        cmocka_unit_test(test_bn_init),
        cmocka_unit_test(test_forward_and_trainer),
        cmocka_unit_test(test_trainer_soft_and_distill),
        cmocka_unit_test(test_freeze_and_replace_head),
        cmocka_unit_test(test_save_load_by_name),
        cmocka_unit_test(test_torch_trained_s_parity),
        cmocka_unit_test(test_modelfile_equals_builtin),
        cmocka_unit_test(test_modelfile_errors),
        cmocka_unit_test(test_builtin_noise_opts),
        cmocka_unit_test(test_flatten_overflow),
        cmocka_unit_test(test_eval_folds_batchnorm),
        cmocka_unit_test(test_modelfile_backbone_layers),
        cmocka_unit_test(test_load_ignores_num_batches_tracked),
        cmocka_unit_test(test_relu_maxpool_swap),
        cmocka_unit_test(test_training_arena_layer_by_layer),
        cmocka_unit_test(test_training_updates_run_early),
    };
    return cmocka_run_group_tests(tests, tu_cpu_setup, tu_cpu_teardown);
}
