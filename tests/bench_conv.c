/* Benchmark: conv2d forward and forward+backward time of the reference CNN's layers (model s) at batch 64
 * (or argv[1]) on 1 and 2 CPU threads, or on the backend named by argv[3] ("cl:0:0"). Prints one line per
 * layer and thread count. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/internal.h"
#include "frugal/nn.h"

struct layer {
    const char *name;
    int64_t c, h, o;
    bool grad_input; /* conv1 reads the images: no input gradient */
};

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* process CPU time: with one thread, the compute time a busy machine cannot steal */
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* fastest of `reps` runs after one warm-up (on a shared machine the minimum is the least disturbed);
 * *cpu gets the fastest in process CPU time */
static double time_graph(struct fr_graph *g, int reps, double *cpu)
{
    double t[200], c[200];
    if (fr_graph_compute(g) != FR_STATUS_OK)
        return -1;
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu_now();
        fr_graph_compute(g);
        t[r] = now() - t0;
        c[r] = cpu_now() - c0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    qsort(c, (size_t)reps, sizeof *c, cmp);
    *cpu = c[0];
    return t[0];
}

static int bench(const struct layer *l, int64_t n, int threads, int reps, const char *spec)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = fr_tensor_new_4d(ctx, FR_F32, n, l->c, l->h, l->h);
    struct fr_tensor *w = fr_tensor_new_4d(ctx, FR_F32, l->o, l->c, 3, 3);
    struct fr_tensor *b = fr_tensor_new_1d(ctx, FR_F32, l->o);
    struct fr_tensor *gy = fr_tensor_new_4d(ctx, FR_F32, n, l->o, l->h, l->h);
    fr_tensor_set_flags(x, FR_FLAG_INPUT);
    fr_tensor_set_flags(w, FR_FLAG_PARAM);
    fr_tensor_set_flags(b, FR_FLAG_PARAM);
    fr_tensor_set_flags(gy, FR_FLAG_INPUT);
    struct fr_tensor *y = fr_conv2d_ex(ctx, x, w, b, &(struct fr_conv2d_params){.pad_h = 1, .pad_w = 1, .relu = true});
    if (!y) {
        fprintf(stderr, "bench_conv: %s\n", fr_last_error());
        return 1;
    }
    /* the nodes fr_graph_backward would add for this layer, fed a given output gradient */
    struct fr_tensor *dw = fr_node_new(ctx, FR_OP_CONV2D_BWD_WEIGHT, FR_F32, 4, w->ne, 2, (struct fr_tensor *[]){x, gy});
    struct fr_tensor *dx = fr_node_new(ctx, FR_OP_CONV2D_BWD_INPUT, FR_F32, 4, x->ne, 2, (struct fr_tensor *[]){w, gy});
    struct fr_tensor *db = fr_node_new(ctx, FR_OP_CHANNEL_SUM, FR_F32, 1, b->ne, 1, &gy);
    memcpy(dw->params, y->params, sizeof y->params);
    memcpy(dx->params, y->params, sizeof y->params);

    struct fr_backend *be = NULL;
    if (spec) {
        if (fr_backend_open(spec, &be) != FR_STATUS_OK) {
            fprintf(stderr, "bench_conv: %s\n", fr_last_error());
            return 1;
        }
    } else {
        be = fr_backend_cpu_new(threads);
    }
    struct fr_graph *gf = fr_graph_new(ctx), *gb = fr_graph_new(ctx);
    fr_graph_add(gf, y);
    fr_graph_add(gb, dw);
    fr_graph_add(gb, db);
    if (l->grad_input)
        fr_graph_add(gb, dx);
    if (fr_graph_plan(gf, be) != FR_STATUS_OK || fr_graph_plan(gb, be) != FR_STATUS_OK) {
        fprintf(stderr, "bench_conv: %s\n", fr_last_error());
        return 1;
    }
    size_t nx = (size_t)fr_nelements(x), ngy = (size_t)fr_nelements(gy), nw = (size_t)fr_nelements(w);
    float *buf = malloc((nx > ngy ? nx : ngy) * sizeof(float));
    for (size_t i = 0; i < (nx > ngy ? nx : ngy); i++)
        buf[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    fr_tensor_set(x, buf, nx * sizeof(float));
    fr_tensor_set(gy, buf, ngy * sizeof(float));
    fr_tensor_set(w, buf, nw * sizeof(float));
    fr_tensor_set(b, buf, (size_t)l->o * sizeof(float));
    double cf, cb, tf = time_graph(gf, reps, &cf), tb = time_graph(gb, reps, &cb);
    double macs = (double)n * (double)l->o * (double)(l->h * l->h) * (double)(l->c * 9);
    double flops = 2 * macs * (1 + 1 + (l->grad_input ? 1 : 0));
    printf("%-6s %s batch %3lld threads %d: forward %7.2f ms (%5.1f GFLOP/s), backward %7.2f ms, fwd+bwd %7.2f ms "
           "(%5.1f GFLOP/s; CPU time %7.2f ms)\n",
           l->name, fr_backend_name(be), (long long)n, threads, 1e3 * tf, 2 * macs / tf * 1e-9, 1e3 * tb, 1e3 * (tf + tb),
           flops / (tf + tb) * 1e-9, 1e3 * (cf + cb));
    free(buf);
    fr_graph_free(gf);
    fr_graph_free(gb);
    fr_backend_free(be);
    fr_ctx_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? atoll(argv[1]) : 64;
    int reps = argc > 2 ? atoi(argv[2]) : 15;
    if (n < 1 || reps < 1 || reps > 200) {
        fprintf(stderr, "usage: bench_conv [batch] [reps <= 200] [backend spec]\n");
        return 2;
    }
    const struct layer layers[] = {{"conv1", 1, 28, 32, false}, {"conv2", 32, 14, 64, true}};
    const char *spec = argc > 3 ? argv[3] : NULL;
    int rc = 0;
    for (int threads = 1; threads <= (spec ? 1 : 2); threads++)
        for (int i = 0; i < 2; i++)
            rc |= bench(&layers[i], n, threads, reps, spec);
    return rc;
}
