/* Device limits of the CPU path (copy bandwidth, GEMM peak) and the graph dispatch latency of any backend;
 * OpenCL devices get their raw limits from limits_cl.c. */
#include "bench/bench_internal.h"
#include "core/threadpool.h"
#include "cpu/gemm.h"

struct copy_ctx {
    struct fr_threadpool *pool;
    float *a, *b;
    size_t n, chunk;
};

static void copy_task(void *vctx, int64_t task, int thread)
{
    (void)thread;
    struct copy_ctx *c = vctx;
    size_t lo = (size_t)task * c->chunk, hi = lo + c->chunk > c->n ? c->n : lo + c->chunk;
    memcpy(c->b + lo, c->a + lo, (hi - lo) * sizeof(float));
}

static enum fr_status copy_run(void *vctx, double *dev)
{
    (void)dev;
    struct copy_ctx *c = vctx;
    fr_threadpool_run(c->pool, (int64_t)((c->n + c->chunk - 1) / c->chunk), copy_task, c);
    return FR_STATUS_OK;
}

struct gemm_ctx {
    struct fr_threadpool *pool;
    float *a, *b, *c;
    int n;
};

static enum fr_status gemm_run(void *vctx, double *dev)
{
    (void)dev;
    struct gemm_ctx *g = vctx;
    fr_sgemm(g->pool, false, false, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n, 0.0f, g->c, g->n);
    return FR_STATUS_OK;
}

static enum fr_status cpu_limits(struct fr_bench_run *run, bool report)
{
    struct fr_threadpool *pool = fr_threadpool_new(fr_backend_cpu_threads(run->be));
    if (!pool)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: cannot start a thread pool");
    enum fr_status st = FR_STATUS_OK;
    char method[80] = "";
    /* 64 MiB per array (32 MiB quick): well beyond the last-level cache */
    size_t n = (run->quick ? 8u : 16u) << 20;
    struct copy_ctx cc = {pool, malloc(n * sizeof(float)), malloc(n * sizeof(float)), n, 1u << 18};
    if (!cc.a || !cc.b) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
        goto done_copy;
    }
    for (size_t i = 0; i < n; i++)
        cc.a[i] = (float)(i & 1023);
    memset(cc.b, 0, n * sizeof(float));
    if (report)
        fr_bench_progress(run, "limits", "memory bandwidth (copy %zu MiB)", n * sizeof(float) >> 20);
    double t = fr_bench_time(run, copy_run, &cc, &st);
    if (t > 0) {
        run->peak_gbs = 2.0 * (double)(n * sizeof(float)) / t * 1e-9;
        if (report)
            fr_bench_add(run, "limits", "global memory bandwidth", run->peak_gbs, "GB/s", "wall (memcpy, read+write)");
    }
done_copy:
    free(cc.a);
    free(cc.b);
    if (st != FR_STATUS_OK)
        goto out;

    /* the practical CPU limit is the GEMM's (docs/reference.md §8); best of two sizes, the smaller one
     * often runs from cache, the larger one is what big layers see */
    int sizes[2] = {run->quick ? 256 : 512, run->quick ? 512 : 1024};
    for (int s = 0; s < 2 && st == FR_STATUS_OK; s++) {
        int gn = sizes[s];
        size_t nn = (size_t)gn * (size_t)gn;
        struct gemm_ctx gc = {pool, malloc(sizeof(float) * nn), malloc(sizeof(float) * nn), malloc(sizeof(float) * nn), gn};
        if (gc.a && gc.b && gc.c) {
            for (size_t i = 0; i < nn; i++) {
                gc.a[i] = (float)(i % 7) * 0.1f;
                gc.b[i] = (float)(i % 5) * 0.1f;
            }
            if (report)
                fr_bench_progress(run, "limits", "peak fp32 (fr_sgemm %d^3)", gn);
            t = fr_bench_time(run, gemm_run, &gc, &st);
            double gf = t > 0 ? 2.0 * gn * (double)gn * gn / t * 1e-9 : 0;
            if (gf > run->peak_gflops) {
                run->peak_gflops = gf;
                snprintf(method, sizeof method, "wall (fr_sgemm %s, best of %d^3 and %d^3)", fr_sgemm_kernel_name(),
                         sizes[0], sizes[1]);
            }
        } else {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
        }
        free(gc.a);
        free(gc.b);
        free(gc.c);
    }
    if (report && run->peak_gflops > 0)
        fr_bench_add(run, "limits", "peak fp32 compute", run->peak_gflops, "GFLOP/s", method);
out:
    fr_threadpool_free(pool);
    return st;
}

struct dispatch_ctx {
    struct fr_graph *g;
};

static enum fr_status dispatch_run(void *vctx, double *dev)
{
    (void)dev;
    return fr_graph_compute(((struct dispatch_ctx *)vctx)->g);
}

/* fr_graph_compute of a one-element op: the fixed cost every graph run pays */
static enum fr_status dispatch_latency(struct fr_bench_run *run)
{
    struct fr_ctx *ctx = fr_ctx_new();
    if (!ctx)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    struct fr_tensor *x = fr_tensor_set_flags(fr_tensor_new_1d(ctx, FR_F32, 1), FR_FLAG_INPUT);
    struct fr_tensor *y = fr_relu(ctx, x);
    struct fr_graph *g = fr_graph_new(ctx);
    enum fr_status st = g && y ? FR_STATUS_OK : FR_STATUS_OUT_OF_MEMORY;
    if (st == FR_STATUS_OK)
        st = fr_graph_add(g, y);
    if (st == FR_STATUS_OK)
        st = fr_graph_plan(g, run->be);
    if (st == FR_STATUS_OK)
        st = fr_tensor_fill_f32(x, 1.0f);
    if (st == FR_STATUS_OK) {
        fr_bench_progress(run, "limits", "graph dispatch latency");
        struct dispatch_ctx dc = {g};
        double t = fr_bench_time(run, dispatch_run, &dc, &st);
        if (t > 0)
            fr_bench_add(run, "limits", "graph run latency (1-element relu)", t * 1e6, "us", "wall (fr_graph_compute)");
    }
    fr_graph_free(g);
    fr_ctx_free(ctx);
    return st;
}

enum fr_status fr_bench_limits(struct fr_bench_run *run, bool report)
{
    enum fr_status st;
    if (run->be->kind == FR_BACKEND_CPU)
        st = cpu_limits(run, report);
    else
        st = fr_bench_limits_cl(run, report);
    if (st == FR_STATUS_OK && report)
        st = dispatch_latency(run);
    return st;
}
