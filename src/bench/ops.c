/* The ops suite: GEMM shapes, conv2d forward/backward of the layers of models s and m, pooling,
 * batch-norm, softmax, cross-entropy, an AdamW step — each a frugal graph run by fr_graph_compute, timed as
 * a whole and per op — and the per-op profile of a training step of models s and m. */
#include "bench/bench_internal.h"
#include "frugal/loss.h"
#include "frugal/model.h"
#include "frugal/nn.h"
#include "frugal/optim.h"
#include "frugal/profile.h"

static struct fr_tensor *leaf(struct fr_ctx *ctx, enum fr_dtype type, int ndim, const int64_t *ne, const char *name,
                              uint32_t flags)
{
    struct fr_tensor *t = fr_tensor_new(ctx, type, ndim, ne);
    if (t) {
        fr_tensor_set_name(t, "%s", name);
        fr_tensor_set_flags(t, flags);
    }
    return t;
}

static struct fr_tensor *add(struct fr_graph *g, struct fr_tensor *t)
{
    return t && fr_graph_add(g, t) == FR_STATUS_OK ? t : NULL;
}

/* p: M, N, K, trans_b */
static struct fr_tensor *build_gemm(struct fr_ctx *ctx, struct fr_graph *g, const struct fr_bench_item *it)
{
    int64_t m = it->p[0], n = it->p[1], k = it->p[2];
    bool tb = it->p[3] != 0;
    struct fr_tensor *a = leaf(ctx, FR_F32, 2, (int64_t[]){m, k}, "a", FR_FLAG_INPUT);
    struct fr_tensor *b = leaf(ctx, FR_F32, 2, tb ? (int64_t[]){n, k} : (int64_t[]){k, n}, "b", FR_FLAG_INPUT);
    return add(g, fr_matmul(ctx, a, b, false, tb));
}

static struct fr_tensor *build_softmax(struct fr_ctx *ctx, struct fr_graph *g, const struct fr_bench_item *it)
{
    struct fr_tensor *x = leaf(ctx, FR_F32, 2, (int64_t[]){it->p[0], it->p[1]}, "x", FR_FLAG_INPUT);
    return add(g, fr_softmax(ctx, x, -1));
}

/* cross-entropy forward + backward; the logits' gradient is checked */
static struct fr_tensor *build_xent(struct fr_ctx *ctx, struct fr_graph *g, const struct fr_bench_item *it)
{
    struct fr_tensor *z = leaf(ctx, FR_F32, 2, (int64_t[]){it->p[0], it->p[1]}, "logits", FR_FLAG_PARAM);
    struct fr_tensor *y = leaf(ctx, FR_I32, 1, (int64_t[]){it->p[0]}, "labels", FR_FLAG_INPUT);
    struct fr_tensor *loss = add(g, fr_cross_entropy(ctx, z, y, NULL, 0.0f));
    if (!loss || fr_graph_backward(g, loss) != FR_STATUS_OK)
        return NULL;
    return z->grad;
}

/* AdamW update of one parameter tensor of p[0] elements (the optimizer ops alone) */
static struct fr_tensor *build_adamw(struct fr_ctx *ctx, struct fr_graph *g, const struct fr_bench_item *it)
{
    int64_t n = it->p[0];
    struct fr_tensor *p = leaf(ctx, FR_F32, 1, &n, "param", FR_FLAG_PARAM);
    struct fr_tensor *gr = leaf(ctx, FR_F32, 1, &n, "grad", FR_FLAG_INPUT);
    struct fr_tensor *m = leaf(ctx, FR_F32, 1, &n, "zeros m", FR_FLAG_STATE);
    struct fr_tensor *v = leaf(ctx, FR_F32, 1, &n, "zeros v", FR_FLAG_STATE);
    struct fr_tensor *hyper = leaf(ctx, FR_F32, 1, (int64_t[]){4}, "zeros hyper", FR_FLAG_STATE);
    struct fr_tensor *lr = leaf(ctx, FR_F32, 1, (int64_t[]){1}, "lr", FR_FLAG_INPUT);
    struct fr_tensor *prep = fr_opt_prep(ctx, hyper, lr, NULL);
    if (!add(g, fr_adam_step(ctx, p, gr, m, v, prep, 1.0f, 0.01f, 0.9f, 0.999f, 1e-8f, true)))
        return NULL;
    return p;
}

/* p: N, C, H, W, O, stride, backward */
static struct fr_tensor *build_conv(struct fr_ctx *ctx, struct fr_graph *g, const struct fr_bench_item *it)
{
    int64_t n = it->p[0], c = it->p[1], h = it->p[2], w = it->p[3], o = it->p[4];
    bool bwd = it->p[6] != 0;
    uint32_t fl = bwd ? FR_FLAG_PARAM : FR_FLAG_INPUT;
    struct fr_tensor *x = leaf(ctx, FR_F32, 4, (int64_t[]){n, c, h, w}, "x", fl);
    struct fr_tensor *wt = leaf(ctx, FR_F32, 4, (int64_t[]){o, c, 3, 3}, "w", fl);
    struct fr_tensor *b = leaf(ctx, FR_F32, 1, (int64_t[]){o}, "b", fl);
    struct fr_tensor *y = fr_conv2d(ctx, x, wt, b, it->p[5], 1);
    if (!bwd)
        return add(g, y);
    struct fr_tensor *target = y ? leaf(ctx, FR_F32, 4, y->ne, "target", FR_FLAG_INPUT) : NULL;
    struct fr_tensor *loss = add(g, fr_mse_loss(ctx, y, target, NULL));
    if (!loss || fr_graph_backward(g, loss) != FR_STATUS_OK)
        return NULL;
    return wt->grad;
}

static struct fr_tensor *build_pool(struct fr_ctx *ctx, struct fr_graph *g, const struct fr_bench_item *it)
{
    struct fr_tensor *x = leaf(ctx, FR_F32, 4, (int64_t[]){it->p[0], it->p[1], it->p[2], it->p[3]}, "x", FR_FLAG_INPUT);
    return add(g, fr_maxpool2d(ctx, x, 2, 2, 0));
}

/* batch-norm in training mode (batch statistics, running statistics updated) */
static struct fr_tensor *build_bn(struct fr_ctx *ctx, struct fr_graph *g, const struct fr_bench_item *it)
{
    int64_t c = it->p[1];
    struct fr_tensor *x = leaf(ctx, FR_F32, 4, (int64_t[]){it->p[0], c, it->p[2], it->p[3]}, "x", FR_FLAG_INPUT);
    struct fr_tensor *wt = leaf(ctx, FR_F32, 1, &c, "ones w", FR_FLAG_PARAM | FR_FLAG_FROZEN);
    struct fr_tensor *b = leaf(ctx, FR_F32, 1, &c, "zeros b", FR_FLAG_PARAM | FR_FLAG_FROZEN);
    struct fr_tensor *rm = leaf(ctx, FR_F32, 1, &c, "zeros rm", FR_FLAG_STATE);
    struct fr_tensor *rv = leaf(ctx, FR_F32, 1, &c, "ones rv", FR_FLAG_STATE);
    return add(g, fr_batchnorm(ctx, x, wt, b, rm, rv, 1e-5f, 0.1f));
}

static void conv_items(struct fr_bench_item *items, int *n, bool quick)
{
    /* the 3x3 layers of model s (conv1, conv2) and m (stem, one block per stage) on 1x28x28 inputs */
    static const struct {
        const char *name;
        int c, h, o, stride;
        bool quick;
    } layers[] = {
        {"s.conv1", 1, 28, 32, 1, false},       {"s.conv2", 32, 14, 64, 1, true},
        {"m.layer1.0.conv1", 32, 28, 32, 1, false}, {"m.layer2.0.conv1", 32, 28, 64, 2, true},
        {"m.layer3.1.conv2", 128, 7, 128, 1, false},
    };
    int batch = quick ? 32 : 64;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        if (quick && !layers[i].quick)
            continue;
        for (int bwd = 0; bwd < 2; bwd++) {
            struct fr_bench_item *it = &items[(*n)++];
            memset(it, 0, sizeof *it);
            int oh = (layers[i].h + 2 - 3) / layers[i].stride + 1;
            snprintf(it->name, sizeof it->name, "conv2d %s %s N=%d", layers[i].name, bwd ? "fwd+bwd" : "fwd", batch);
            double fwd = 2.0 * batch * layers[i].o * oh * oh * layers[i].c * 9.0;
            it->flops = bwd ? 3.0 * fwd : fwd; /* backward: input and weight gradients, each one forward's work */
            it->tol = 1e-4;
            int p[7] = {batch, layers[i].c, layers[i].h, layers[i].h, layers[i].o, layers[i].stride, bwd};
            memcpy(it->p, p, sizeof p);
            it->build = build_conv;
        }
    }
}

/* this device's figure `name` in GFLOP/s, or NULL */
static const struct fr_bench_figure *gflops(const struct fr_bench_run *run, const char *name)
{
    for (int i = 0; i < run->r->n_figures; i++) {
        const struct fr_bench_figure *f = &run->r->figures[i];
        if (strcmp(f->device, run->spec) == 0 && strcmp(f->unit, "GFLOP/s") == 0 && strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

/* conv2d forward+backward of s.conv2 and m.layer2.0.conv1 against the GEMM of the same shape (all three of
 * their GEMMs are that size), same device, same run */
static void conv_vs_gemm(struct fr_bench_run *run, int batch)
{
    char name[96];
    snprintf(name, sizeof name, "gemm 64x%dx288 (im2col of s.conv2, m.layer2.0.conv1, batch %d)", batch * 196, batch);
    const struct fr_bench_figure *g = gflops(run, name);
    double gemm = g ? g->value : 0.0; /* fr_bench_add may move the figures */
    static const char *layers[] = {"s.conv2", "m.layer2.0.conv1"};
    for (int i = 0; gemm > 0 && i < 2; i++) {
        snprintf(name, sizeof name, "conv2d %s fwd+bwd N=%d", layers[i], batch);
        const struct fr_bench_figure *c = gflops(run, name);
        if (!c)
            continue;
        double conv = c->value;
        snprintf(name, sizeof name, "conv2d %s fwd+bwd N=%d vs its GEMM", layers[i], batch);
        fr_bench_add(run, "ops", name, 100.0 * conv / gemm, "%", "GFLOP/s ratio, same run and device");
    }
}

/* A training step of a built-in model (forward, backward, SGD update, with its copies) profiled per op:
 * each op's share of the step, the launches, and the smallest kernel launch against the parallelism target
 * (8 x compute units x preferred work-group multiple). */
static enum fr_status step_profile(struct fr_bench_run *run, const char *model, int batch)
{
    char item[64];
    snprintf(item, sizeof item, "step model %s batch %d", model, batch);
    fr_bench_progress(run, "ops", "%s (profile)", item);
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m = NULL;
    struct fr_trainer *tr = NULL;
    size_t px = (size_t)batch * 28 * 28;
    float *x = malloc(px * sizeof(float));
    int32_t *y = malloc((size_t)batch * sizeof(int32_t));
    enum fr_status st = ctx && x && y ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    for (size_t i = 0; st == FR_STATUS_OK && i < px; i++)
        x[i] = (float)((i * 2654435761u) >> 24) / 255.0f;
    for (int i = 0; st == FR_STATUS_OK && i < batch; i++)
        y[i] = (i * 7) % 10;
    if (st == FR_STATUS_OK)
        st = fr_model_builtin(ctx, model, 1, 28, 28, 10, &m);
    if (st == FR_STATUS_OK)
        st = fr_model_alloc(m, run->be);
    if (st == FR_STATUS_OK)
        st = fr_model_init(m, 42, FR_INIT_DEFAULT, NULL);
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = batch;
    fr_optim_params_init(&o.optim, FR_OPTIM_SGD);
    o.optim.momentum = 0.9f;
    if (st == FR_STATUS_OK)
        st = fr_trainer_new(m, run->be, &o, &tr);
    if (st == FR_STATUS_OK) /* the first step builds the kernels */
        st = fr_trainer_step(tr, x, y, NULL, NULL, 0.01f, NULL);
    int steps = run->repeat > 1 ? run->repeat : 2;
    if (st == FR_STATUS_OK)
        st = fr_profile_start(run->be);
    for (int i = 0; i < steps && st == FR_STATUS_OK; i++)
        st = fr_trainer_step(tr, x, y, NULL, NULL, 0.01f, NULL);
    struct fr_profile p = {0};
    if (run->be->prof) {
        enum fr_status st2 = fr_profile_stop(run->be, &p);
        st = st == FR_STATUS_OK ? st2 : st;
    }
    if (st == FR_STATUS_OK && p.steps > 0) {
        char name[160];
        const char *method = strncmp(p.method, "OpenCL", 6) == 0 ? "cl-events" : "wall per node";
        snprintf(name, sizeof name, "%s device time", item);
        fr_bench_add(run, "ops", name, p.step_ms / p.steps, "ms", method);
        long launches = 0;
        for (int i = 0; i < p.n_rows; i++)
            if (p.rows[i].training) {
                launches += p.rows[i].launches;
                if (p.rows[i].ms < 0.02 * p.step_ms)
                    continue;
                snprintf(name, sizeof name, "%s | %s share", item, p.rows[i].op);
                fr_bench_add(run, "ops", name, 100.0 * p.rows[i].ms / p.step_ms, "%", method);
            }
        snprintf(name, sizeof name, "%s launches", item);
        fr_bench_add(run, "ops", name, (double)launches / p.steps, "launches", "per step");
        if (p.min_work_items >= 0) {
            snprintf(name, sizeof name, "%s smallest launch", item);
            fr_bench_add(run, "ops", name, (double)p.min_work_items, "work-items", "min over the kernels of a step");
            fr_bench_note(run->r, "%s ops: %s: smallest launch %lld work-items (%s, op %s, output %lld elements)",
                          run->spec, item, (long long)p.min_work_items, p.min_kernel, p.min_op,
                          (long long)p.min_output);
        }
        if (p.parallel_target > 0) {
            char m2[80];
            snprintf(m2, sizeof m2, "per step; target %lld = 8 x CUs x preferred multiple",
                     (long long)p.parallel_target);
            snprintf(name, sizeof name, "%s launches below target", item);
            fr_bench_add(run, "ops", name, (double)p.below_target / p.steps, "launches", m2);
            if (p.below_target > 0)
                fr_bench_note(run->r,
                              "%s ops: %s: %.1f launches per step below %lld work-items with larger outputs "
                              "(smallest: %s, op %s, %lld work-items for %lld outputs)",
                              run->spec, item, (double)p.below_target / p.steps, (long long)p.parallel_target,
                              p.below_kernel, p.below_op, (long long)p.below_items, (long long)p.below_output);
        }
    }
    fr_profile_free(&p);
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
    free(x);
    free(y);
    return st == FR_STATUS_OK ? st : fr_bench_failed(run, "ops", item, st);
}

enum fr_status fr_bench_ops(struct fr_bench_run *run)
{
    struct fr_bench_item items[40];
    int n = 0;
    int batch = run->quick ? 32 : 64;
    /* GEMM: square shapes, model s's fc1 (x[N,3136] · W[128,3136]^T), and the GEMM of s.conv2 and
     * m.layer2.0.conv1 at the conv rows' batch (im2col: [64 out, 9*32] · [9*32, N*14*14]), their yardstick */
    static const struct {
        int m, n, k, tb;
        bool quick;
        const char *what;
    } gemms[] = {
        {256, 256, 256, 0, true, ""},          {512, 512, 512, 0, false, ""},
        {1024, 1024, 1024, 0, false, ""},      {64, 128, 3136, 1, true, " (s.fc1, batch 64)"},
        {256, 128, 3136, 1, false, " (s.fc1, batch 256)"}, {64, 0, 288, 0, true, ""},
    };
    for (size_t i = 0; i < sizeof gemms / sizeof gemms[0]; i++) {
        if (run->quick && !gemms[i].quick)
            continue;
        struct fr_bench_item *it = &items[n++];
        memset(it, 0, sizeof *it);
        int gn = gemms[i].n ? gemms[i].n : batch * 14 * 14;
        if (gemms[i].n)
            snprintf(it->name, sizeof it->name, "gemm %dx%dx%d%s%s", gemms[i].m, gn, gemms[i].k,
                     gemms[i].tb ? " B^T" : "", gemms[i].what);
        else
            snprintf(it->name, sizeof it->name, "gemm %dx%dx%d (im2col of s.conv2, m.layer2.0.conv1, batch %d)",
                     gemms[i].m, gn, gemms[i].k, batch);
        it->flops = 2.0 * gemms[i].m * gn * (double)gemms[i].k;
        it->tol = 1e-4;
        it->p[0] = gemms[i].m;
        it->p[1] = gn;
        it->p[2] = gemms[i].k;
        it->p[3] = gemms[i].tb;
        it->build = build_gemm;
    }
    conv_items(items, &n, run->quick);
    {
        struct fr_bench_item *it = &items[n++];
        memset(it, 0, sizeof *it);
        snprintf(it->name, sizeof it->name, "maxpool2d 2x2 [%d,32,28,28]", batch);
        double in = 4.0 * batch * 32 * 28 * 28;
        it->bytes = in * 1.25; /* read the input, write a quarter */
        it->tol = 1e-6;
        int p[4] = {batch, 32, 28, 28};
        memcpy(it->p, p, sizeof p);
        it->build = build_pool;
    }
    {
        struct fr_bench_item *it = &items[n++];
        memset(it, 0, sizeof *it);
        snprintf(it->name, sizeof it->name, "batchnorm train [%d,64,14,14]", batch);
        it->bytes = 3.0 * 4.0 * batch * 64 * 14 * 14; /* statistics pass, normalise pass, write */
        it->tol = 1e-4;
        it->training = true;
        int p[4] = {batch, 64, 14, 14};
        memcpy(it->p, p, sizeof p);
        it->build = build_bn;
    }
    {
        struct fr_bench_item *it = &items[n++];
        memset(it, 0, sizeof *it);
        int rows = run->quick ? 256 : 1024;
        snprintf(it->name, sizeof it->name, "softmax [%d,1000]", rows);
        it->bytes = 2.0 * 4.0 * rows * 1000;
        it->tol = 1e-5;
        it->p[0] = rows;
        it->p[1] = 1000;
        it->build = build_softmax;

        it = &items[n++];
        memset(it, 0, sizeof *it);
        snprintf(it->name, sizeof it->name, "cross-entropy fwd+bwd [%d,1000]", rows);
        it->bytes = 3.0 * 4.0 * rows * 1000; /* logits read twice, gradient written */
        it->tol = 1e-4;
        it->p[0] = rows;
        it->p[1] = 1000;
        it->p[9] = 1000;
        it->build = build_xent;

        it = &items[n++];
        memset(it, 0, sizeof *it);
        int np = run->quick ? 1 << 18 : 1 << 20;
        snprintf(it->name, sizeof it->name, "adamw step %d params", np);
        it->bytes = 7.0 * 4.0 * np; /* param, grad, m, v read; param, m, v written */
        it->tol = 1e-5;
        it->p[0] = np;
        it->build = build_adamw;
    }
    enum fr_status st = FR_STATUS_OK;
    for (int i = 0; i < n && st == FR_STATUS_OK; i++)
        st = fr_bench_item_run(run, "ops", &items[i]);
    if (st == FR_STATUS_OK)
        conv_vs_gemm(run, batch);
    /* quick: model s at batch 32; full: models s and m at batch 64 */
    if (st == FR_STATUS_OK)
        st = step_profile(run, "s", run->quick ? 32 : 64);
    if (st == FR_STATUS_OK && !run->quick)
        st = step_profile(run, "m", 64);
    return st;
}
