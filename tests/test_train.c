/* Training: the predictors (u8 and f32 input), the trainer's input stage against the host pipeline it replaced and
 * across devices and thread counts, fr_fit with policies (cutmix/mixup/normalize, shorthands, size errors) and a
 * teacher in the graph; end to end on the CPU path, model s trained on a fixed subset of Fashion-MNIST (1024
 * images, read here with zlib) reaches a loss well below its start and a training accuracy above 90% (skipped when
 * the dataset package is absent). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "frugal/augment.h"
#include "frugal/model.h"
#include "frugal_config.h"
#include "frugal/recipes.h"
#include "frugal/rng_host.h"
#include "testutil.h"
#if FRUGAL_HAVE_OPENCL
#include "opencl/opencl_internal.h"
#endif

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
    /* same seed, same initial weights; 37 images run as a batch of 64 there, of 16 + 16 + 8 here: equal to rounding */
    tu_assert_close(l_net, l_u8, NI * KK, 1e-6f, 1e-5f);
    struct fr_dataset ds = {0};
    ds.n = NI, ds.c = CC, ds.h = HH, ds.w = WW, ds.pixels = img, ds.source = (char *)"test";
    int64_t idx[3] = {36, 0, 7};
    assert_int_equal(fr_net_predict(net, &ds, idx, 3, l_ds), FR_STATUS_OK);
    for (int j = 0; j < 3; j++)
        tu_assert_close(l_ds + j * KK, l_net + idx[j] * KK, KK, 1e-6f, 1e-5f); /* a batch of 4 */
    /* the normalisation cannot change after predicting */
    assert_int_equal(fr_net_set_normalize(net, sd, mean), FR_STATUS_INVALID_ARGUMENT);
    fr_net_free(net);
}

/* --- the input stage: u8 batch + programs + mix records -> augment, mix, normalise, step on the device --- */
enum { SB = 8, SH = 28, SK = 10 };

static void synthetic(uint8_t *img, int n, int32_t *lab)
{
    for (int i = 0; i < n * SH * SH; i++)
        img[i] = (uint8_t)(((i % (SH * SH)) * 7 + (i / (SH * SH)) * 29 + ((i * 2654435761u) >> 28)) & 255);
    for (int i = 0; i < n; i++)
        lab[i] = (i * 3) % SK;
}

/* a model t trainer with u8 input through `spec` (or f32 input when spec is NULL and f32) */
static struct fr_trainer *stage_trainer(struct fr_backend *b, struct fr_ctx **ctx, struct fr_model **m,
                                        struct fr_aug_policy *pol, enum fr_dtype input, enum fr_loss_kind loss)
{
    *ctx = fr_ctx_new();
    assert_int_equal(fr_model_builtin(*ctx, "t", 1, SH, SH, SK, m), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(*m, b), FR_STATUS_OK);
    assert_int_equal(fr_model_init(*m, 11, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = SB;
    o.input = input;
    o.augment = pol;
    o.loss = loss;
    fr_optim_params_init(&o.optim, FR_OPTIM_SGD);
    o.optim.momentum = 0.9f;
    struct fr_trainer *tr;
    if (fr_trainer_new(*m, b, &o, &tr) != FR_STATUS_OK)
        fail_msg("trainer on %s: %s", fr_backend_name(b), fr_last_error());
    return tr;
}

/* losses of `steps` steps of the u8 input stage under spec; each step's programs from (seed 3, step) */
static void stage_losses(struct fr_backend *b, const char *spec, int steps, float *losses)
{
    struct fr_aug_policy *pol;
    assert_int_equal(fr_aug_policy_parse(spec, &pol), FR_STATUS_OK);
    struct fr_ctx *ctx;
    struct fr_model *m;
    struct fr_trainer *tr = stage_trainer(b, &ctx, &m, pol, FR_U8, FR_LOSS_CE);
    static uint8_t img[SB * SH * SH];
    int32_t lab[SB];
    synthetic(img, SB, lab);
    int k = fr_aug_policy_max_ops(pol);
    float *prog = malloc(sizeof(float) * SB * k * FR_AUG_REC), mix[SB * FR_AUG_MIX_REC];
    for (int s = 0; s < steps; s++) {
        assert_int_equal(fr_aug_policy_draw_batch(pol, 3, (uint32_t)s, 0, SB, SB, SH, SH, prog, mix), FR_STATUS_OK);
        struct fr_batch_in in = {.images = img, .prog = prog, .mix = mix, .targets = lab};
        float prev;
        if (fr_trainer_submit(tr, &in, 0.05f, &prev) != FR_STATUS_OK)
            fail_msg("step %d on %s: %s", s, fr_backend_name(b), fr_last_error());
        if (s > 0)
            losses[s - 1] = prev; /* read one step late */
    }
    assert_int_equal(fr_trainer_finish(tr, &losses[steps - 1]), FR_STATUS_OK);
    assert_int_equal(fr_trainer_steps(tr), steps);
    free(prog);
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
    fr_aug_policy_free(pol);
}

/* The graph's input stage equals the host pipeline it replaced: host programs, CutMix and label mixing, u8 -> f32
 * NCHW on the host, then a soft-target step on f32 images: the same losses, bit for bit (model t, no dropout). */
static void test_stage_matches_host_pipeline(void **state)
{
    (void)state;
    const char *spec = "randaugment(n=2,m=9);cutmix(alpha=1)";
    enum { NSTEP = 4 };
    float got[NSTEP], want[NSTEP];
    stage_losses(be, spec, NSTEP, got);
    struct fr_aug_policy *pol;
    assert_int_equal(fr_aug_policy_parse(spec, &pol), FR_STATUS_OK);
    struct fr_ctx *ctx;
    struct fr_model *m;
    struct fr_trainer *tr = stage_trainer(be, &ctx, &m, NULL, FR_F32, FR_LOSS_SOFT_CE);
    static uint8_t img[SB * SH * SH], a[SB * SH * SH], b[SB * SH * SH];
    static float x[SB * SH * SH], soft[SB * SK];
    int32_t lab[SB];
    synthetic(img, SB, lab);
    int k = fr_aug_policy_max_ops(pol);
    float *prog = malloc(sizeof(float) * SB * k * FR_AUG_REC), mix[SB * FR_AUG_MIX_REC];
    for (int s = 0; s < NSTEP; s++) {
        assert_int_equal(fr_aug_policy_draw_batch(pol, 3, (uint32_t)s, 0, SB, SB, SH, SH, prog, mix), FR_STATUS_OK);
        struct fr_aug_images in = {img, FR_U8, FR_AUG_NHWC, SB, SH, SH, 1}, ta = {a, FR_U8, FR_AUG_NHWC, SB, SH, SH, 1};
        struct fr_aug_images tb = {b, FR_U8, FR_AUG_NHWC, SB, SH, SH, 1};
        assert_int_equal(fr_aug_apply_host(&in, &ta, prog, k, NULL), FR_STATUS_OK);
        assert_int_equal(fr_aug_mix_host(&ta, &tb, mix), FR_STATUS_OK);
        assert_int_equal(fr_aug_mix_labels_host(lab, SB, SK, mix, soft), FR_STATUS_OK);
        for (int i = 0; i < SB * SH * SH; i++)
            x[i] = (float)b[i] * (1.0f / 255.0f);
        assert_int_equal(fr_trainer_step(tr, x, soft, NULL, NULL, 0.05f, &want[s]), FR_STATUS_OK);
    }
    tu_assert_bytes_equal(got, want, sizeof got);
    free(prog);
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
    fr_aug_policy_free(pol);
}

/* The same steps on 1 and 2 CPU threads and on OpenCL (with doubles and with host coordinate tables). */
static void test_stage_devices_and_threads(void **state)
{
    (void)state;
    const char *spec = "randaugment(n=2,m=9);cutmix(alpha=1)";
    enum { NSTEP = 3 };
    float one[NSTEP], two[NSTEP], dev[NSTEP];
    struct fr_backend *cpu1 = fr_backend_cpu_new(1);
    stage_losses(cpu1, spec, NSTEP, one);
    fr_backend_free(cpu1);
    stage_losses(be, spec, NSTEP, two);
    tu_assert_close(two, one, NSTEP, 1e-5f, 1e-5f);
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            setenv("FRUGAL_CL_FP64", "none", 1);
        struct fr_backend *cl = NULL;
        if (fr_backend_open("cl:0:0", &cl) != FR_STATUS_OK || !cl) {
            print_message("no OpenCL device: not checked\n");
            break;
        }
        stage_losses(cl, spec, NSTEP, dev);
        tu_assert_close(dev, one, NSTEP, 1e-4f, 1e-4f);
        fr_backend_free(cl);
    }
    unsetenv("FRUGAL_CL_FP64");
}

/* every weight and state tensor of a model t, c or s after three flipped, shifted steps on `threads` CPU threads */
static float *weights_after_steps(const char *arch, int threads, size_t *n_floats)
{
    struct fr_backend *b = fr_backend_cpu_new(threads);
    struct fr_aug_policy *pol;
    assert_int_equal(fr_aug_policy_parse("hflip;translate(x=0.1,y=0.1)", &pol), FR_STATUS_OK);
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    assert_int_equal(fr_model_builtin(ctx, arch, 1, SH, SH, SK, &m), FR_STATUS_OK);
    assert_int_equal(fr_model_alloc(m, b), FR_STATUS_OK);
    assert_int_equal(fr_model_init(m, 11, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = SB;
    o.input = FR_U8;
    o.augment = pol;
    fr_optim_params_init(&o.optim, FR_OPTIM_ADAMW);
    struct fr_trainer *tr;
    if (fr_trainer_new(m, b, &o, &tr) != FR_STATUS_OK)
        fail_msg("trainer, model %s: %s", arch, fr_last_error());
    static uint8_t img[SB * SH * SH];
    int32_t lab[SB];
    synthetic(img, SB, lab);
    float *prog = malloc(sizeof(float) * SB * FR_AUG_REC * fr_aug_policy_max_ops(pol));
    for (uint32_t s = 0; s < 3; s++) {
        assert_int_equal(fr_aug_policy_draw_batch(pol, 3, s, 0, SB, SB, SH, SH, prog, NULL), FR_STATUS_OK);
        struct fr_batch_in in = {.images = img, .prog = prog, .targets = lab};
        if (fr_trainer_submit(tr, &in, 0.01f, NULL) != FR_STATUS_OK)
            fail_msg("step %u, model %s: %s", s, arch, fr_last_error());
    }
    assert_int_equal(fr_trainer_finish(tr, NULL), FR_STATUS_OK);
    size_t n = 0;
    for (int i = 0; i < fr_model_n_tensors(m); i++)
        n += (size_t)fr_nelements(fr_model_tensor(m, i).t);
    float *w = malloc(n * sizeof *w), *at = w;
    for (int i = 0; i < fr_model_n_tensors(m); i++) {
        struct fr_tensor *t = fr_model_tensor(m, i).t;
        assert_int_equal(fr_tensor_get(t, at, fr_nbytes(t)), FR_STATUS_OK);
        at += fr_nelements(t);
    }
    *n_floats = n;
    free(prog);
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
    fr_aug_policy_free(pol);
    fr_backend_free(b);
    return w;
}

/* A seed gives the same weights at any thread count (the CPU path's sums do not depend on how work is split):
 * models t (convolutions), c (batch-norm, dropout) and s (Winograd convolution, a wide linear layer), bit for bit
 * on 1, 2 and 3 threads. */
static void test_same_weights_any_threads(void **state)
{
    (void)state;
    const char *archs[] = {"t", "c", "s"};
    for (int a = 0; a < 3; a++) {
        size_t n1, n;
        float *one = weights_after_steps(archs[a], 1, &n1);
        for (int threads = 2; threads <= 3; threads++) {
            float *w = weights_after_steps(archs[a], threads, &n);
            assert_int_equal(n, n1);
            size_t i = 0;
            while (i < n && memcmp(&w[i], &one[i], sizeof *w) == 0)
                i++;
            if (i < n)
                fail_msg("model %s on %d threads: value %zu of %zu is %.9g, on 1 thread %.9g", archs[a], threads, i,
                         n, (double)w[i], (double)one[i]);
            free(w);
        }
        free(one);
    }
}

#if FRUGAL_HAVE_OPENCL
/* The overlapped path's failures on OpenCL (fault injection): an upload, the late loss read and the wait for it
 * fail with a one-line status naming the call; the trainer goes on afterwards. */
static void test_async_failures(void **state)
{
    (void)state;
    struct fr_backend *cl = NULL;
    if (fr_backend_open("cl:0:0", &cl) != FR_STATUS_OK || !cl) {
        print_message("no OpenCL device: not checked\n");
        skip();
    }
    struct fr_aug_policy *pol;
    assert_int_equal(fr_aug_policy_parse("hflip;cutmix", &pol), FR_STATUS_OK);
    struct fr_ctx *ctx;
    struct fr_model *m;
    struct fr_trainer *tr = stage_trainer(cl, &ctx, &m, pol, FR_U8, FR_LOSS_CE);
    static uint8_t img[SB * SH * SH];
    int32_t lab[SB];
    synthetic(img, SB, lab);
    float *prog = malloc(sizeof(float) * SB * FR_AUG_REC * fr_aug_policy_max_ops(pol)), mix[SB * FR_AUG_MIX_REC];
    static const struct {
        const char *rule, *call;
    } cases[] = {{"write:2", "clEnqueueWriteBuffer"}, {"read:1", "clEnqueueReadBuffer"}, {"finish:1", "clWaitForEvents"}};
    uint32_t step = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fr_cl_fault_set(cases[i].rule);
        enum fr_status st = FR_STATUS_OK;
        for (int s = 0; s < 3 && st == FR_STATUS_OK; s++, step++) {
            assert_int_equal(fr_aug_policy_draw_batch(pol, 1, step, 0, SB, SB, SH, SH, prog, mix), FR_STATUS_OK);
            struct fr_batch_in in = {.images = img, .prog = prog, .mix = mix, .targets = lab};
            st = fr_trainer_submit(tr, &in, 0.01f, NULL);
        }
        if (st == FR_STATUS_OK)
            st = fr_trainer_finish(tr, NULL);
        assert_true(st != FR_STATUS_OK);
        if (!strstr(fr_last_error(), cases[i].call) || strchr(fr_last_error(), '\n'))
            fail_msg("%s: '%s'", cases[i].rule, fr_last_error());
        fr_cl_fault_set(NULL);
        fr_trainer_finish(tr, NULL);
        float loss = NAN;
        assert_int_equal(fr_aug_policy_draw_batch(pol, 1, step, 0, SB, SB, SH, SH, prog, mix), FR_STATUS_OK);
        struct fr_batch_in in = {.images = img, .prog = prog, .mix = mix, .targets = lab};
        assert_int_equal(fr_trainer_submit(tr, &in, 0.01f, NULL), FR_STATUS_OK);
        assert_int_equal(fr_trainer_finish(tr, &loss), FR_STATUS_OK);
        assert_true(isfinite(loss));
    }
    free(prog);
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
    fr_aug_policy_free(pol);
    fr_backend_free(cl);
}
#endif

/* --- fr_fit: the policy is the single source of truth (new-user finding 6) --- */
struct fit_data {
    struct fr_dataset ds;
    struct fr_trainset ts;
};

static void fit_data_init(struct fit_data *d, int n)
{
    memset(d, 0, sizeof *d);
    d->ds.n = n, d->ds.c = 1, d->ds.h = d->ds.w = SH, d->ds.n_classes = SK;
    d->ds.source = (char *)"synthetic";
    d->ds.pixels = malloc((size_t)n * SH * SH);
    d->ds.labels = malloc((size_t)n * sizeof(int32_t));
    synthetic(d->ds.pixels, n, d->ds.labels);
    d->ts.n_classes = SK;
    assert_int_equal(fr_trainset_add(&d->ts, 0, &d->ds, NULL, n, NULL, NULL), FR_STATUS_OK);
}

static void fit_data_free(struct fit_data *d)
{
    fr_trainset_free(&d->ts);
    free(d->ds.pixels);
    free(d->ds.labels);
}

/* one epoch of fr_fit of a fresh model t; returns the status, the result in *r and the net in *out (or freed) */
static enum fr_status fit_run(struct fit_data *d, const char *augment, double cutmix, struct fr_net *teacher,
                              bool cached, struct fr_fit_result *r, struct fr_net **out)
{
    struct fr_net *net;
    assert_int_equal(fr_net_new(be, "t", 1, SH, SH, SK, NULL, 5, &net), FR_STATUS_OK);
    struct fr_fit_opts fo;
    fr_fit_opts_init(&fo);
    fo.epochs = 1;
    fo.batch = 16;
    fo.augment = augment;
    fo.cutmix = cutmix;
    fo.seed = 9;
    if (teacher) {
        fo.distill = true;
        fo.alpha = 1.0f;
        fo.teacher = teacher;
        free(d->ts.teacher);
        d->ts.teacher = NULL;
        if (cached) { /* the teacher's logits once, on the un-augmented images (what distill caches) */
            d->ts.teacher = malloc((size_t)d->ds.n * SK * sizeof(float));
            assert_int_equal(fr_net_predict_u8(teacher, d->ds.pixels, d->ds.n, d->ts.teacher), FR_STATUS_OK);
        }
    }
    enum fr_status st = fr_fit(net, &d->ts, &fo, r);
    if (out && st == FR_STATUS_OK)
        *out = net;
    else
        fr_net_free(net);
    return st;
}

static void test_fit_policy(void **state)
{
    (void)state;
    struct fit_data d;
    fit_data_init(&d, 64);
    struct fr_fit_result plain, cut, shorthand, mixup, norm;
    assert_int_equal(fit_run(&d, NULL, 0, NULL, false, &plain, NULL), FR_STATUS_OK);
    assert_int_equal(fit_run(&d, "cutmix(alpha=1)", 0, NULL, false, &cut, NULL), FR_STATUS_OK);
    assert_int_equal(fit_run(&d, NULL, 1.0, NULL, false, &shorthand, NULL), FR_STATUS_OK);
    assert_int_equal(fit_run(&d, "mixup(alpha=1)", 0, NULL, false, &mixup, NULL), FR_STATUS_OK);
    /* --augment cutmix(...) and mixup(...) are honoured (they were dropped), --cutmix is the same stage */
    assert_true(cut.train_loss != plain.train_loss && mixup.train_loss != plain.train_loss);
    assert_true(shorthand.train_loss == cut.train_loss);
    assert_int_equal(fit_run(&d, "hflip;cutmix", 1.0, NULL, false, &cut, NULL), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "shorthands"));
    /* a size change names the op and the model's input size */
    assert_int_equal(fit_run(&d, "hflip;rrc(size=32)", 0, NULL, false, &cut, NULL), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "rrc makes 32x32 images, the model's input is 28x28"));
    /* normalize(...) trains on normalised input, is kept with the net and saved in its checkpoints */
    struct fr_net *net = NULL;
    assert_int_equal(fit_run(&d, "normalize(mean=0.5,std=0.25)", 0, NULL, false, &norm, &net), FR_STATUS_OK);
    assert_true(norm.train_loss != plain.train_loss);
    assert_true(net->mean[0] == 0.5f && net->std[0] == 0.25f);
    char dir[256];
    assert_int_equal(tu_tmpdir_create(dir, sizeof dir, "fit"), 0);
    const char *path = tu_path(dir, "n.safetensors");
    assert_int_equal(fr_net_save(net, path, 1, 0, 4, NULL, 0), FR_STATUS_OK);
    struct fr_net *back;
    assert_int_equal(fr_net_load(be, path, &back), FR_STATUS_OK);
    assert_true(back->mean[0] == 0.5f && back->std[2] == 0.25f);
    static float l1[64 * SK], l2[64 * SK];
    assert_int_equal(fr_net_predict_u8(net, d.ds.pixels, 64, l1), FR_STATUS_OK);
    assert_int_equal(fr_net_predict_u8(back, d.ds.pixels, 64, l2), FR_STATUS_OK);
    tu_assert_bytes_equal(l1, l2, sizeof l1);
    fr_net_free(back);
    fr_net_free(net);
    tu_tmpdir_remove(dir);
    fit_data_free(&d);
}

/* Distillation from augmented input runs the teacher in the training graph on the same batch: with a policy that
 * leaves the images unchanged it equals training on the teacher's cached logits. */
static void test_fit_teacher_in_graph(void **state)
{
    (void)state;
    struct fit_data d;
    fit_data_init(&d, 64);
    struct fr_fit_result pre, cached, graph;
    struct fr_net *teacher = NULL;
    assert_int_equal(fit_run(&d, NULL, 0, NULL, false, &pre, &teacher), FR_STATUS_OK);
    assert_int_equal(fit_run(&d, NULL, 0, teacher, true, &cached, NULL), FR_STATUS_OK);
    assert_int_equal(fit_run(&d, "hflip(p=0)", 0, teacher, false, &graph, NULL), FR_STATUS_OK);
    assert_true(fabs(graph.train_loss - cached.train_loss) <= 1e-6 * fabs(cached.train_loss));
    assert_true(isfinite(graph.train_loss) && graph.train_loss > 0);
    fr_net_free(teacher);
    fit_data_free(&d);
}

int main(void)
{
    be = fr_backend_cpu_new(0);
    if (!be)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_u8),
        cmocka_unit_test(test_stage_matches_host_pipeline),
        cmocka_unit_test(test_stage_devices_and_threads),
        cmocka_unit_test(test_same_weights_any_threads),
#if FRUGAL_HAVE_OPENCL
        cmocka_unit_test(test_async_failures),
#endif
        cmocka_unit_test(test_fit_policy),
        cmocka_unit_test(test_fit_teacher_in_graph),
        cmocka_unit_test(test_train_s_fashion_mnist),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fr_backend_free(be);
    return rc;
}
