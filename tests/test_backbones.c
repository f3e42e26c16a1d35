/* The torchvision backbones in tools/models/ against PyTorch: tools/export_torchvision.py exports each with random
 * weights and perturbed batch-norm statistics plus eval-mode logits of random 224x224 images; the shipped model
 * file must match the exported one, load those weights strictly by name (num_batches_tracked ignored) and give
 * the same logits: max |Δlogit| <= 1e-4 · max |logit| and the same argmax. Runs when /usr/bin/python3 has torch
 * and torchvision, and says so when it does not. Also: a model that does not fit the weights names every
 * mismatch in one message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/io.h"
#include "frugal/model.h"
#include "frugal/recipes.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define N_IMAGES 2

static char dir[512];
static const char *root; /* the source tree */
static bool have_torch;

static const char *const MODELS[] = {"resnet18",           "resnet34",           "resnet50",       "mobilenet_v2",
                                     "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0"};
#define N_MODELS ((int)(sizeof MODELS / sizeof MODELS[0]))

static int setup(void **state)
{
    root = getenv("FRUGAL_SOURCE_ROOT");
    if (!root || tu_cpu_setup(state) != 0 || tu_tmpdir_create(dir, sizeof dir, "backbones") != 0)
        return -1;
    have_torch = system("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1") == 0;
    if (!have_torch) {
        printf("SKIPPED (partly): test_backbones: /usr/bin/python3 has no torch + torchvision; PyTorch parity not "
               "checked\n");
        return 0;
    }
    char cmd[2048];
    int n = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tools/export_torchvision.py --out %s --perturb-bn "
                     "--reference %d --threads 2 --seed 7", root, dir, N_IMAGES);
    for (int i = 0; i < N_MODELS; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %s", MODELS[i]);
    if (system(cmd) != 0) {
        printf("export failed: %s\n", cmd);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    tu_tmpdir_remove(dir);
    return tu_cpu_teardown(state);
}

/* the file without '#' comment lines (the exporter's header names the torchvision version) */
static char *layers_of(const char *path)
{
    char *text;
    if (fr_model_read_text(path, &text) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    char *o = text;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p + 1) : strlen(p);
        if (*p != '#') {
            memmove(o, p, len);
            o += len;
        }
        p += len;
    }
    *o = 0;
    return text;
}

static float *read_f32(const struct fr_safetensors *st, const char *name, size_t n)
{
    const struct fr_st_tensor *t = fr_st_find(st, name);
    assert_non_null(t);
    assert_int_equal(fr_st_numel(t), (int64_t)n);
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    assert_int_equal(fr_st_read_f32(st, t, v, n), FR_STATUS_OK);
    return v;
}

static void check_model(const char *name)
{
    char shipped[700], path[700];
    snprintf(shipped, sizeof shipped, "%s/tools/models/%s.txt", root, name);
    /* the shipped file is what the exporter writes for this torchvision */
    snprintf(path, sizeof path, "%s.txt", tu_path(dir, name));
    char *a = layers_of(shipped), *b = layers_of(path);
    if (strcmp(a, b) != 0)
        fail_msg("%s differs from what tools/export_torchvision.py writes now (%s)", shipped, path);
    free(a);
    free(b);

    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    if (fr_model_from_file(ctx, shipped, 3, 224, 224, 1000, &m) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    assert_int_equal(fr_model_alloc(m, tu_cpu), FR_STATUS_OK);
    snprintf(path, sizeof path, "%s.safetensors", tu_path(dir, name));
    if (fr_model_load(m, path, false, false) != FR_STATUS_OK) /* strict: every name, num_batches_tracked skipped */
        fail_msg("%s", fr_last_error());
    float mean[4], sd[4];
    assert_int_equal(fr_model_normalization(m, mean, sd), 3);
    assert_true(fabsf(mean[0] - 0.485f) < 1e-6f && fabsf(sd[2] - 0.225f) < 1e-6f);

    snprintf(path, sizeof path, "%s.ref.safetensors", tu_path(dir, name));
    struct fr_safetensors *ref;
    assert_int_equal(fr_st_open(path, &ref), FR_STATUS_OK);
    int n_img = SANITIZED ? 1 : N_IMAGES;
    float *x = read_f32(ref, "input", (size_t)N_IMAGES * 3 * 224 * 224);
    for (size_t i = 0; i < (size_t)N_IMAGES * 3 * 224 * 224; i++) { /* the model's normalisation, as torch's */
        int c = (int)(i / (224 * 224) % 3);
        x[i] = (x[i] - mean[c]) / sd[c];
    }
    float *want = read_f32(ref, "logits", (size_t)N_IMAGES * 1000);
    fr_st_free(ref);

    struct fr_ctx *g = ctx; /* graphs are built in the model's context */
    struct fr_tensor *in = tu_tensor_f32(g, 4, (int64_t[]){n_img, 3, 224, 224});
    fr_tensor_set_flags(in, FR_FLAG_INPUT);
    struct fr_tensor *logits = fr_model_forward(m, g, in, false);
    if (!logits)
        fail_msg("%s: %s", name, fr_last_error());
    float *got = malloc((size_t)n_img * 1000 * sizeof *got);
    tu_run(g, tu_cpu, logits, &in, (const float *[]){x}, 1, got);
    for (int i = 0; i < n_img; i++) {
        const float *w = want + i * 1000, *o = got + i * 1000;
        float maxabs = 0, maxd = 0;
        int aw = 0, ao = 0;
        for (int k = 0; k < 1000; k++) {
            maxabs = fmaxf(maxabs, fabsf(w[k]));
            maxd = fmaxf(maxd, fabsf(w[k] - o[k]));
            aw = w[k] > w[aw] ? k : aw;
            ao = o[k] > o[ao] ? k : ao;
        }
        printf("# %-18s image %d: max |logit| %.4g, max |diff| %.3g (%.2g of it), argmax %d / %d\n", name, i,
               (double)maxabs, (double)maxd, (double)(maxd / maxabs), ao, aw);
        if (!(maxd <= 1e-4f * maxabs) || ao != aw)
            fail_msg("%s image %d: max |diff| %g > 1e-4 x max |logit| %g, or argmax %d != %d", name, i, (double)maxd,
                     (double)maxabs, ao, aw);
    }
    free(got);
    free(x);
    free(want);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

static void test_parity_with_torchvision(void **state)
{
    (void)state;
    if (!have_torch)
        skip();
    for (int i = 0; i < N_MODELS; i++) {
        /* under the sanitizers (CI's second pass) the three big ResNets add minutes and no new code paths */
        if (SANITIZED && (!strcmp(MODELS[i], "resnet34") || !strcmp(MODELS[i], "resnet50"))) {
            printf("# %s: skipped under the sanitizer build (resnet18 covers the same layers)\n", MODELS[i]);
            continue;
        }
        check_model(MODELS[i]);
    }
}

/* resnet18's model file against resnet34's weights: every mismatch in one message, grouped by layer */
static void test_wrong_weights(void **state)
{
    (void)state;
    if (!have_torch)
        skip();
    char shipped[700], path[700];
    snprintf(shipped, sizeof shipped, "%s/tools/models/resnet18.txt", root);
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_from_file(ctx, shipped, 3, 224, 224, 10, &m), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(m, tu_cpu), FR_STATUS_OK);
    snprintf(path, sizeof path, "%s.safetensors", tu_path(dir, "resnet34"));
    assert_int_equal(fr_model_load(m, path, false, false), FR_STATUS_SHAPE);
    const char *e = fr_last_error();
    printf("# %.300s...\n", e);
    /* the head is mis-shaped (10 vs 1000 classes), resnet34's extra blocks are unexpected, grouped per layer */
    assert_non_null(strstr(e, "fc.weight (file [1000,512], model [10,512])"));
    assert_non_null(strstr(e, "layer1.2.conv1.weight"));
    assert_non_null(strstr(e, "layer4.2.bn2.{weight,bias,running_mean,running_var}"));
    assert_non_null(strstr(e, "layer3.5.bn2.{weight,bias,running_mean,running_var}")); /* the last of layer3 */
    assert_null(strstr(e, "num_batches_tracked"));
    assert_null(strstr(e, "more"));
    fr_model_free(m);
    fr_ctx_free(ctx);
}

/* plain exported weights through the recipes' loader (finetune --from W --arch F): ImageNet class names from the
 * metadata; a model file that does not fit is refused with every mismatch named */
static void test_net_load_weights(void **state)
{
    (void)state;
    if (!have_torch)
        skip();
    char arch[700], w[700];
    snprintf(arch, sizeof arch, "%s/tools/models/mobilenet_v3_small.txt", root);
    snprintf(w, sizeof w, "%s.safetensors", tu_path(dir, "mobilenet_v3_small"));
    struct fr_net *net;
    if (fr_net_load_weights(tu_cpu, arch, w, 3, 224, 224, &net) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    assert_int_equal(net->n_classes, 1000);
    assert_string_equal(net->class_names[0], "tench");
    assert_string_equal(net->class_names[999], "toilet tissue");
    assert_int_equal(fr_model_normalization(net->model, NULL, NULL), 3);
    assert_true(net->mean[0] == 0.485f && net->std[2] == 0.225f); /* the net's input stage normalises */
    fr_net_free(net);
    /* a model file without a normalize line takes the normalisation from the weights' metadata */
    char *text = layers_of(arch), plain[700];
    char *line = strstr(text, "normalize ");
    assert_non_null(line);
    memset(line, ' ', (size_t)(strchr(line, '\n') - line));
    snprintf(plain, sizeof plain, "%s", tu_path(dir, "plain-arch.txt"));
    FILE *f = fopen(plain, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
    if (fr_net_load_weights(tu_cpu, plain, w, 3, 224, 224, &net) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    assert_int_equal(fr_model_normalization(net->model, NULL, NULL), 0);
    assert_true(net->mean[1] == 0.456f && net->std[0] == 0.229f && net->std[3] == 1.0f);
    fr_net_free(net);
    snprintf(w, sizeof w, "%s.safetensors", tu_path(dir, "mobilenet_v3_large"));
    assert_int_equal(fr_net_load_weights(tu_cpu, arch, w, 3, 224, 224, &net), FR_STATUS_SHAPE);
    assert_non_null(strstr(fr_last_error(), " mis-shaped: features.")); /* v3-large is wider */
    assert_non_null(strstr(fr_last_error(), "unexpected: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_with_torchvision),
        cmocka_unit_test(test_wrong_weights),
        cmocka_unit_test(test_net_load_weights),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
