/* Benchmark (meson test --benchmark): training images/s (forward + loss + backward + SGD-momentum update, one graph
 * planned once) and inference images/s of a built-in model (default s, 1x28x28, 10 classes) or a model file
 * (-i C,H,W input, -k classes; e.g. tools/models/resnet18.txt -i 3,224,224 -k 1000) on the CPU path.
 * Usage: bench_train [-t threads] [-m train|infer|both] [-s seconds] [-i C,H,W] [-k classes] [model] [batch...]
 *   threads: -t, else FRUGAL_THREADS, else all cores; batches default to 64 and 256.
 * One line per run, "key value" pairs that tools/compare_train.py parses; the PyTorch side is
 * tests/bench_train_torch.py with the same model, init scheme, batch, inputs and optimizer settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "frugal/frugal.h"
#include "frugal/model.h"
#include "frugal/recipes.h"
#include "frugal/rng_host.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int fail(void)
{
    fprintf(stderr, "bench_train: %s\n", fr_last_error());
    return 1;
}

static int in_c = 1, in_h = 28, in_w = 28, n_classes = 10;

static enum fr_status build(struct fr_ctx *ctx, const char *name, struct fr_model **m)
{
    if (fr_net_arch_builtin(name))
        return fr_model_builtin(ctx, name, in_c, in_h, in_w, n_classes, m);
    return fr_model_from_file(ctx, name, in_c, in_h, in_w, n_classes, m);
}

/* Inference as `frugal predict` runs it: the model's eval graph alone (no trainer, no optimizer state). */
struct infer {
    struct fr_graph *g;
    struct fr_tensor *x, *logits;
};

static enum fr_status infer_new(struct fr_model *m, struct fr_backend *be, int batch, struct infer *inf)
{
    struct fr_ctx *ctx = fr_model_ctx(m);
    inf->x = fr_tensor_new(ctx, FR_F32, 4, (int64_t[]){batch, in_c, in_h, in_w});
    if (!inf->x)
        return fr_ctx_status(ctx);
    fr_tensor_set_flags(inf->x, FR_FLAG_INPUT);
    inf->logits = fr_model_forward(m, ctx, inf->x, false);
    inf->g = fr_graph_new(ctx);
    if (!inf->logits || !inf->g)
        return FR_STATUS_INVALID_ARGUMENT;
    enum fr_status st = fr_graph_add(inf->g, inf->logits);
    return st == FR_STATUS_OK ? fr_graph_plan(inf->g, be) : st;
}

static enum fr_status infer_run(struct infer *inf, const float *x, float *logits)
{
    enum fr_status st = fr_tensor_set(inf->x, x, fr_nbytes(inf->x));
    if (st == FR_STATUS_OK)
        st = fr_graph_compute(inf->g);
    return st == FR_STATUS_OK ? fr_tensor_get(inf->logits, logits, fr_nbytes(inf->logits)) : st;
}

static int bench(struct fr_backend *be, const char *name, int batch, bool infer, double seconds)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    struct fr_trainer *tr = NULL;
    struct infer inf = {0};
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = batch;
    o.eval_batch = batch;
    o.optim.momentum = 0.9f;
    size_t px = (size_t)in_c * in_h * in_w;
    float *x = malloc((size_t)batch * px * sizeof *x);
    float *logits = malloc((size_t)batch * n_classes * sizeof *logits);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    if (!ctx || !x || !y || !logits || build(ctx, name, &m) != FR_STATUS_OK ||
        fr_model_alloc(m, be) != FR_STATUS_OK || fr_model_init(m, 1, FR_INIT_DEFAULT, NULL) != FR_STATUS_OK ||
        (infer ? infer_new(m, be, batch, &inf) : fr_trainer_new(m, be, &o, &tr)) != FR_STATUS_OK)
        return fail();
    for (size_t i = 0; i < (size_t)batch * px; i++)
        x[i] = fr_rng_uniform(1, FR_RNG_NOISE, 0, 0, (uint32_t)i);
    for (int i = 0; i < batch; i++)
        y[i] = i % n_classes;
    float loss;
    int steps = 0;
    double t0 = 0.0, t = 0.0, c0 = 0.0;
    /* 3 warm-up steps, then as many as fit in `seconds` (at least 5) */
    for (int i = -3; i < 0 || t < seconds || steps < 5; i++) {
        if (i == 0)
            t0 = now(), c0 = cpu_now();
        enum fr_status st = infer ? infer_run(&inf, x, logits) : fr_trainer_step(tr, x, y, NULL, NULL, 0.01f, &loss);
        if (st != FR_STATUS_OK)
            return fail();
        if (i >= 0) {
            steps++;
            t = now() - t0;
        }
    }
    double cpu = cpu_now() - c0;
    struct fr_graph_stats st;
    fr_graph_get_stats(infer ? inf.g : fr_trainer_graph(tr, false), &st);
    const char *base = strrchr(name, '/');
    name = base ? base + 1 : name;
    printf("impl frugal model %s mode %s batch %d threads %d images_per_s %.1f steps %d seconds %.2f cpu_seconds %.2f nodes %d "
           "arena_mb %.1f peak_rss_kb %ld\n",
           name, infer ? "infer" : "train", batch, fr_backend_cpu_threads(be), (double)steps * batch / t, steps, t, cpu,
           st.n_nodes, (double)st.arena_bytes / 1e6, peak_rss_kb());
    fflush(stdout);
    fr_graph_free(inf.g);
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
    free(x);
    free(y);
    free(logits);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 0, a = 1;
    const char *mode = "train";
    double seconds = 5.0;
    for (; a + 1 < argc && argv[a][0] == '-'; a += 2) {
        if (strcmp(argv[a], "-t") == 0)
            threads = atoi(argv[a + 1]);
        else if (strcmp(argv[a], "-m") == 0)
            mode = argv[a + 1];
        else if (strcmp(argv[a], "-s") == 0)
            seconds = atof(argv[a + 1]);
        else if (strcmp(argv[a], "-i") == 0 && sscanf(argv[a + 1], "%d,%d,%d", &in_c, &in_h, &in_w) == 3)
            continue;
        else if (strcmp(argv[a], "-k") == 0)
            n_classes = atoi(argv[a + 1]);
        else
            break;
    }
    if (strcmp(mode, "train") != 0 && strcmp(mode, "infer") != 0 && strcmp(mode, "both") != 0) {
        fprintf(stderr, "bench_train: -m must be train, infer or both\n");
        return 2;
    }
    const char *name = a < argc ? argv[a++] : "s";
    struct fr_backend *be = fr_backend_cpu_new(threads);
    if (!be)
        return fail();
    int batches[64], nb = 0;
    for (; a < argc && nb < 64; a++)
        batches[nb++] = atoi(argv[a]);
    if (nb == 0)
        batches[nb++] = 64, batches[nb++] = 256;
    int rc = 0;
    for (int i = 0; i < nb; i++) {
        if (strcmp(mode, "infer") != 0)
            rc |= bench(be, name, batches[i], false, seconds);
        if (strcmp(mode, "train") != 0)
            rc |= bench(be, name, batches[i], true, seconds);
    }
    fr_backend_free(be);
    return rc;
}
