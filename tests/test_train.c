/* End to end on the CPU path: model s trained with the training-step builder on a fixed subset of
 * Fashion-MNIST (1024 training images, read here with zlib) reaches a loss well below its start and a
 * training accuracy above 90%. Skips when the dataset package is absent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "frugal/model.h"
#include "frugal/recipes.h"
#include "frugal/rng_host.h"
#include "testutil.h"

static struct fr_backend *be;

#define DIR "/usr/share/datasets/fashion-mnist/"
#define N_IMG 1024
#define BATCH 64
#define STEPS 480

/* first n records of an IDX file after its header (magic, dims) */
static bool read_idx(const char *path, uint32_t magic, int header_dims, uint8_t *out, size_t n)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return false;
    uint8_t hdr[16];
    size_t hn = 4 + 4 * (size_t)header_dims;
    bool ok = gzread(f, hdr, (unsigned)hn) == (int)hn &&
              ((uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3]) == magic &&
              gzread(f, out, (unsigned)n) == (int)n;
    gzclose(f);
    return ok;
}

static void test_train_s_fashion_mnist(void **state)
{
    (void)state;
    static uint8_t img[N_IMG * 784], lab[N_IMG];
    FILE *probe = fopen(DIR "train-images-idx3-ubyte.gz", "rb");
    if (!probe) {
        printf("SKIP: %s not found (install dataset-fashion-mnist)\n", DIR "train-images-idx3-ubyte.gz");
        skip();
    }
    fclose(probe);
    assert_true(read_idx(DIR "train-images-idx3-ubyte.gz", 0x803, 3, img, sizeof img));
    assert_true(read_idx(DIR "train-labels-idx1-ubyte.gz", 0x801, 1, lab, sizeof lab));
    static float x[N_IMG * 784];
    static int32_t y[N_IMG];
    for (int i = 0; i < N_IMG * 784; i++)
        x[i] = img[i] / 255.0f;
    for (int i = 0; i < N_IMG; i++)
        y[i] = lab[i];

    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_builtin(ctx, "s", 1, 28, 28, 10, &m), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 1234, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = BATCH;
    o.eval_batch = 256;
    fr_optim_params_init(&o.optim, FR_OPTIM_ADAM);
    struct fr_trainer *tr;
    if (fr_trainer_new(m, be, &o, &tr) != FR_STATUS_OK)
        fail_msg("trainer: %s", fr_last_error());
    struct fr_schedule sched = {.kind = FR_SCHED_COSINE, .base_lr = 2e-3f, .warmup_steps = 20, .total_steps = STEPS,
                                .min_lr = 1e-4f};
    /* a fixed permutation per epoch from Philox so the run is reproducible */
    int perm[N_IMG];
    static float bx[BATCH * 784];
    int32_t by[BATCH];
    double first = 0, last = 0;
    int n_first = 0, n_last = 0;
    for (int step = 0; step < STEPS; step++) {
        int epoch = step * BATCH / N_IMG, off = (step * BATCH) % N_IMG;
        if (off == 0) {
            for (int i = 0; i < N_IMG; i++)
                perm[i] = i;
            for (int i = N_IMG - 1; i > 0; i--) {
                int j = (int)(fr_rng_uniform(7, FR_RNG_SHUFFLE, (uint32_t)epoch, 0, (uint32_t)i) * (float)(i + 1));
                j = j > i ? i : j;
                int t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        }
        for (int b = 0; b < BATCH; b++) {
            memcpy(bx + b * 784, x + perm[off + b] * 784, 784 * sizeof(float));
            by[b] = y[perm[off + b]];
        }
        float loss;
        if (fr_trainer_step(tr, bx, by, NULL, NULL, fr_schedule_lr(&sched, step), &loss) != FR_STATUS_OK)
            fail_msg("step %d: %s", step, fr_last_error());
        if (step < 16) {
            first += loss;
            n_first++;
        } else if (step >= STEPS - 16) {
            last += loss;
            n_last++;
        }
    }
    first /= n_first;
    last /= n_last;
    static float logits[N_IMG * 10];
    assert_int_equal(fr_trainer_predict(tr, x, N_IMG, logits), FR_STATUS_OK);
    int correct = 0;
    for (int i = 0; i < N_IMG; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (logits[i * 10 + k] > logits[i * 10 + best])
                best = k;
        correct += best == y[i];
    }
    double acc = (double)correct / N_IMG;
    printf("model s, %d images, %d steps of %d: mean loss first 16 steps %.4f, last 16 %.4f, train accuracy %.2f%%\n",
           N_IMG, STEPS, BATCH, first, last, 100 * acc);
    assert_true(last < 0.5 * first);
    assert_true(acc > 0.90);
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
}

/* One predict path: u8 NHWC images normalised on the device give the same logits as f32 NCHW images normalised
 * on the host; fr_net_predict_u8 equals fr_net_predict over a dataset subset; partial chunks. */
static void test_predict_u8(void **state)
{
    (void)state;
    enum { NI = 37, HH = 12, WW = 10, CC = 3, KK = 4 };
    static uint8_t img[NI * HH * WW * CC];
    static float x[NI * HH * WW * CC], l_u8[NI * KK], l_f32[NI * KK];
    for (int i = 0; i < NI * HH * WW * CC; i++)
        img[i] = (uint8_t)((i * 2654435761u) >> 24);
    const float mean[4] = {0.5f, 0.4f, 0.3f, 0.3f}, sd[4] = {0.25f, 0.5f, 2.0f, 2.0f};
    for (int i = 0; i < NI; i++)
        for (int c = 0; c < CC; c++)
            for (int p = 0; p < HH * WW; p++)
                x[((size_t)i * CC + c) * HH * WW + p] =
                    ((float)img[((size_t)i * HH * WW + p) * CC + c] * (1.0f / 255.0f) - mean[c]) / sd[c];
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_builtin(ctx, "t", CC, HH, WW, KK, &m), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(m, be), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 3, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    struct fr_predictor_opts po;
    fr_predictor_opts_init(&po);
    po.batch = 16; /* 37 = 2 full chunks + 5 */
    memcpy(po.mean, mean, sizeof po.mean);
    memcpy(po.std, sd, sizeof po.std);
    struct fr_predictor *pu, *pf;
    assert_int_equal(fr_predictor_new(m, be, &po, &pu), FR_STATUS_OK);
    po.input = FR_F32;
    assert_int_equal(fr_predictor_new(m, be, &po, &pf), FR_STATUS_OK);
    assert_int_equal(fr_predictor_run(pu, img, NI, l_u8), FR_STATUS_OK);
    assert_int_equal(fr_predictor_run(pf, x, NI, l_f32), FR_STATUS_OK);
    tu_assert_bytes_equal(l_u8, l_f32, sizeof l_u8);
    fr_predictor_free(pu);
    fr_predictor_free(pf);
    fr_model_free(m);
    fr_ctx_free(ctx);

    /* the recipes' path: a net with that normalisation, over a dataset and a subset of it */
    struct fr_net *net;
    assert_int_equal(fr_net_new(be, "t", CC, HH, WW, KK, NULL, 3, &net), FR_STATUS_OK);
    assert_int_equal(fr_net_set_normalize(net, mean, sd), FR_STATUS_OK);
    static float l_net[NI * KK], l_ds[NI * KK];
    assert_int_equal(fr_net_predict_u8(net, img, NI, l_net), FR_STATUS_OK);
    tu_assert_bytes_equal(l_net, l_u8, sizeof l_net); /* same seed, same initial weights */
    struct fr_dataset ds = {0};
    ds.n = NI, ds.c = CC, ds.h = HH, ds.w = WW, ds.pixels = img, ds.source = (char *)"test";
    int64_t idx[3] = {36, 0, 7};
    assert_int_equal(fr_net_predict(net, &ds, idx, 3, l_ds), FR_STATUS_OK);
    for (int j = 0; j < 3; j++)
        tu_assert_bytes_equal(l_ds + j * KK, l_net + idx[j] * KK, KK * sizeof(float));
    /* the normalisation cannot change after predicting */
    assert_int_equal(fr_net_set_normalize(net, sd, mean), FR_STATUS_INVALID_ARGUMENT);
    fr_net_free(net);
}

int main(void)
{
    be = fr_backend_cpu_new(0);
    if (!be)
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_predict_u8), cmocka_unit_test(test_train_s_fashion_mnist)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fr_backend_free(be);
    return rc;
}
