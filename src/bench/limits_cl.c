/* Raw limits of an OpenCL device (clpeak's method) with cl/bench.cl: bandwidth, peak fp32, transfers,
 * launch latency, program build time cold/warm. Timed with profiling events on a queue of our own in the
 * backend's context (the backend's queue has no profiling), kernels set up through the launcher API. */
#include "bench/bench_internal.h"
#include "frugal_config.h"

#if FRUGAL_HAVE_OPENCL
#include <dirent.h>
#include <unistd.h>

#include "opencl/opencl_internal.h"

void fr_bench_cl_driver(struct fr_backend *be, char *name, size_t name_size, char *driver, size_t driver_size)
{
    struct fr_cl *cl = be->ctx;
    snprintf(name, name_size, "%s", cl->info.name);
    snprintf(driver, driver_size, "%s, driver %s", cl->info.platform_name, cl->info.driver_version);
}

struct cl_bench {
    struct fr_cl *cl;
    cl_command_queue q; /* with CL_QUEUE_PROFILING_ENABLE */
    cl_mem a, b;
    void *host;
    size_t bytes;
    int n, iters;
    size_t global, local;
    const char *kernel;
    int what; /* 0 kernel, 1 write, 2 read */
};

static double event_seconds(cl_event ev)
{
    cl_ulong t0 = 0, t1 = 0;
    if (clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) != CL_SUCCESS ||
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) != CL_SUCCESS || t1 <= t0)
        return -1;
    return (double)(t1 - t0) * 1e-9;
}

static enum fr_status cl_item(void *vctx, double *dev)
{
    struct cl_bench *c = vctx;
    cl_event ev = NULL;
    cl_int err;
    if (c->what == 1) {
        err = clEnqueueWriteBuffer(c->q, c->a, CL_TRUE, 0, c->bytes, c->host, 0, NULL, &ev);
    } else if (c->what == 2) {
        err = clEnqueueReadBuffer(c->q, c->a, CL_TRUE, 0, c->bytes, c->host, 0, NULL, &ev);
    } else {
        struct fr_cl_launch L;
        fr_cl_begin(&L, c->cl, "bench.cl", c->kernel);
        if (strcmp(c->kernel, "bench_copy") == 0) {
            fr_cl_arg_mem(&L, c->a);
            fr_cl_arg_mem(&L, c->b);
        } else if (strcmp(c->kernel, "bench_mad") == 0) {
            fr_cl_arg_mem(&L, c->b);
            fr_cl_arg_float(&L, 0.5f);
            fr_cl_arg_int(&L, c->iters);
        } else {
            fr_cl_arg_mem(&L, c->b);
        }
        fr_cl_arg_int(&L, c->n);
        if (L.st != FR_STATUS_OK)
            return L.st;
        size_t local = c->local < L.wg_size ? c->local : L.wg_size;
        size_t global = (c->global + local - 1) / local * local;
        err = clEnqueueNDRangeKernel(c->q, L.kernel, 1, NULL, &global, &local, 0, NULL, &ev);
        if (err == CL_SUCCESS)
            err = clFinish(c->q);
    }
    if (err != CL_SUCCESS) {
        if (ev)
            clReleaseEvent(ev);
        return fr_error(FR_STATUS_DEVICE, "bench: %s on %s: %s", c->what ? "transfer" : c->kernel, c->cl->info.spec,
                        fr_cl_error_name(err));
    }
    /* the launch latency is the host's view: enqueue to completion, so wall clock */
    if (strcmp(c->kernel, "bench_empty") != 0 || c->what)
        *dev = event_seconds(ev);
    clReleaseEvent(ev);
    return FR_STATUS_OK;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rm_tree(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Build time of one real kernel program: cold in an empty FRUGAL_CACHE_DIR, then warm from that cache.
 * Driver-side caches (PoCL keeps its own) are not cleared, so "cold" is frugal's cold. */
static enum fr_status build_times(struct fr_bench_run *run)
{
    static const char *prog = "elementwise.cl";
    char tmp[] = "/tmp/frugal-bench-cache-XXXXXX";
    if (!mkdtemp(tmp))
        return FR_STATUS_OK; /* no temporary directory: leave the figure out */
    const char *old = getenv("FRUGAL_CACHE_DIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("FRUGAL_CACHE_DIR", tmp, 1);
    enum fr_status st = FR_STATUS_OK;
    double ms[2] = {-1, -1};
    for (int pass = 0; pass < 2 && st == FR_STATUS_OK; pass++) {
        struct fr_backend *b = NULL;
        if ((st = fr_backend_open(run->spec, &b)) != FR_STATUS_OK)
            break;
        cl_program p;
        double t0 = fr_bench_now();
        st = fr_cl_program(b->ctx, prog, &p);
        ms[pass] = (fr_bench_now() - t0) * 1e3;
        fr_backend_free(b);
    }
    if (saved) {
        setenv("FRUGAL_CACHE_DIR", saved, 1);
        free(saved);
    } else {
        unsetenv("FRUGAL_CACHE_DIR");
    }
    rm_tree(tmp);
    if (st == FR_STATUS_OK) {
        fr_bench_add(run, "limits", "program build elementwise.cl, cold", ms[0], "ms", "wall (empty FRUGAL_CACHE_DIR)");
        fr_bench_add(run, "limits", "program build elementwise.cl, warm cache", ms[1], "ms", "wall (disk cache hit)");
    }
    return st;
}

enum fr_status fr_bench_limits_cl(struct fr_bench_run *run, bool report)
{
    struct fr_cl *cl = run->be->ctx;
    cl_int err;
    struct cl_bench c = {.cl = cl, .local = 64};
    c.q = clCreateCommandQueue(cl->context, cl->device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (!c.q || err != CL_SUCCESS)
        return fr_error(FR_STATUS_DEVICE, "bench: %s: cannot create a profiling queue: %s", cl->info.spec,
                        fr_cl_error_name(err));
    enum fr_status st = FR_STATUS_OK;
    size_t bytes = (size_t)(run->quick ? 32 : 64) << 20;
    while (bytes > cl->info.max_alloc / 2 && bytes > (1u << 20))
        bytes /= 2;
    c.bytes = bytes;
    c.a = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    c.b = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    c.host = calloc(1, bytes);
    if (!c.a || !c.b || !c.host) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: %s: cannot allocate 2 x %zu bytes", cl->info.spec, bytes);
        goto out;
    }
    double t;
    /* host -> device first: it also initialises the source of the copy */
    c.what = 1;
    c.kernel = "";
    if (report) {
        fr_bench_progress(run, "limits", "host->device transfer (%zu MiB)", bytes >> 20);
        t = fr_bench_time(run, cl_item, &c, &st);
        if (t > 0)
            fr_bench_add(run, "limits", "host->device transfer", (double)bytes / t * 1e-9, "GB/s", "cl-events");
        if (st != FR_STATUS_OK)
            goto out;
        c.what = 2;
        fr_bench_progress(run, "limits", "device->host transfer (%zu MiB)", bytes >> 20);
        t = fr_bench_time(run, cl_item, &c, &st);
        if (t > 0)
            fr_bench_add(run, "limits", "device->host transfer", (double)bytes / t * 1e-9, "GB/s", "cl-events");
        if (st != FR_STATUS_OK)
            goto out;
    } else {
        clEnqueueWriteBuffer(c.q, c.a, CL_TRUE, 0, bytes, c.host, 0, NULL, NULL);
    }
    c.what = 0;
    c.kernel = "bench_copy";
    c.n = (int)(bytes / 16);
    c.global = (size_t)c.n;
    if (report)
        fr_bench_progress(run, "limits", "memory bandwidth (copy %zu MiB)", bytes >> 20);
    t = fr_bench_time(run, cl_item, &c, &st);
    if (t > 0) {
        run->peak_gbs = 2.0 * (double)bytes / t * 1e-9;
        if (report)
            fr_bench_add(run, "limits", "global memory bandwidth", run->peak_gbs, "GB/s", "cl-events (float4 copy, read+write)");
    }
    if (st != FR_STATUS_OK)
        goto out;
    c.kernel = "bench_mad";
    c.n = (int)(cl->info.compute_units ? cl->info.compute_units : 1) * 4096;
    c.global = (size_t)c.n;
    c.iters = run->quick ? 128 : 512;
    if (report)
        fr_bench_progress(run, "limits", "peak fp32 (mad chains)");
    t = fr_bench_time(run, cl_item, &c, &st);
    if (t > 0) {
        run->peak_gflops = 64.0 * c.iters * (double)c.n / t * 1e-9;
        if (report)
            fr_bench_add(run, "limits", "peak fp32 compute", run->peak_gflops, "GFLOP/s", "cl-events (8 float4 mad chains)");
    }
    if (st != FR_STATUS_OK || !report)
        goto out;
    c.kernel = "bench_empty";
    c.n = 1;
    c.global = 1;
    c.local = 1;
    fr_bench_progress(run, "limits", "kernel launch latency");
    t = fr_bench_time(run, cl_item, &c, &st);
    if (t > 0)
        fr_bench_add(run, "limits", "kernel launch latency", t * 1e6, "us", "wall (enqueue + clFinish)");
    if (st != FR_STATUS_OK)
        goto out;
    fr_bench_progress(run, "limits", "program build time cold / warm cache");
    st = build_times(run);
out:
    if (c.a)
        clReleaseMemObject(c.a);
    if (c.b)
        clReleaseMemObject(c.b);
    free(c.host);
    clReleaseCommandQueue(c.q);
    return st;
}

#else

void fr_bench_cl_driver(struct fr_backend *be, char *name, size_t name_size, char *driver, size_t driver_size)
{
    snprintf(name, name_size, "%s", be->name);
    snprintf(driver, driver_size, "%s", "");
}

enum fr_status fr_bench_limits_cl(struct fr_bench_run *run, bool report)
{
    (void)run;
    (void)report;
    return fr_error(FR_STATUS_UNSUPPORTED, "bench: this build has no OpenCL support");
}

#endif
