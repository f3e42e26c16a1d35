/* Benchmark (meson test --benchmark): training images/s of a built-in model (default s, 1x28x28, 10 classes) on the CPU path
 * for the given batch sizes: forward + loss + backward + SGD-momentum update, one graph planned once.
 * Usage: bench_train [model] [batch...]   (threads: FRUGAL_THREADS, default all cores) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "frugal/frugal.h"
#include "frugal/model.h"
#include "frugal/rng_host.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench(struct fr_backend *be, const char *name, int batch)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m;
    struct fr_trainer *tr = NULL;
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = batch;
    o.optim.momentum = 0.9f;
    float *x = malloc((size_t)batch * 784 * sizeof *x);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    if (!ctx || !x || !y || fr_model_builtin(ctx, name, 1, 28, 28, 10, &m) != FR_STATUS_OK ||
        fr_model_alloc(m, be) != FR_STATUS_OK || fr_model_init(m, 1, FR_INIT_DEFAULT, NULL) != FR_STATUS_OK ||
        fr_trainer_new(m, be, &o, &tr) != FR_STATUS_OK) {
        fprintf(stderr, "bench_train: %s\n", fr_last_error());
        return 1;
    }
    for (int i = 0; i < batch * 784; i++)
        x[i] = fr_rng_uniform(1, FR_RNG_NOISE, 0, 0, (uint32_t)i);
    for (int i = 0; i < batch; i++)
        y[i] = i % 10;
    float loss;
    for (int i = 0; i < 3; i++)
        if (fr_trainer_step(tr, x, y, NULL, NULL, 0.01f, &loss) != FR_STATUS_OK) {
            fprintf(stderr, "bench_train: %s\n", fr_last_error());
            return 1;
        }
    int steps = 0;
    double t0 = now(), t;
    do {
        fr_trainer_step(tr, x, y, NULL, NULL, 0.01f, &loss);
        steps++;
        t = now() - t0;
    } while (t < 5.0 || steps < 5);
    struct fr_graph_stats st;
    fr_graph_get_stats(fr_trainer_graph(tr, false), &st);
    printf("model %s batch %4d threads %d: %8.1f train images/s (%d steps in %.2f s, %d nodes, arena %.1f MB)\n", name,
           batch, fr_backend_cpu_threads(be), (double)steps * batch / t, steps, t, st.n_nodes,
           (double)st.arena_bytes / 1e6);
    fr_trainer_free(tr);
    fr_model_free(m);
    fr_ctx_free(ctx);
    free(x);
    free(y);
    return 0;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "s";
    struct fr_backend *be = fr_backend_cpu_new(0);
    if (!be)
        return 1;
    int rc = 0;
    if (argc <= 2) {
        rc |= bench(be, name, 64);
        rc |= bench(be, name, 256);
    }
    for (int i = 2; i < argc; i++)
        rc |= bench(be, name, atoi(argv[i]));
    fr_backend_free(be);
    return rc;
}
