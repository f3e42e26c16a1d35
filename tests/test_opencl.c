/* The OpenCL backend itself: discovery, device choice (explicit, auto, errors), kernel source lookup
 * and #include inlining, build errors that name the device, file and log (remembered, reported once), the
 * CPU fallback of an op without a kernel, storage split into chunks, offsets beyond 32-bit indices caught
 * at plan time, the device queries (parameter size, fp64 rate, OpenCL C macros), per-op profiles, and the
 * CPU path when no OpenCL driver is installed (OCL_ICD_VENDORS empty). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frugal/device.h"
#include "frugal/profile.h"
#include "frugal_config.h"
#include "testutil.h"
#if FRUGAL_HAVE_OPENCL
#include "core/graph_internal.h"
#include "opencl/opencl_internal.h"

static struct fr_device_info *devs;
static int n_devs;
static char spec[32];
static char exe[1024];

static int n_warnings;
static char last_warning[1024];
static void count_log(enum fr_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level == FR_LOG_WARN) {
        n_warnings++;
        snprintf(last_warning, sizeof last_warning, "%s", msg);
    }
}

static void test_list_devices(void **state)
{
    (void)state;
    assert_true(n_devs > 0);
    for (int i = 0; i < n_devs; i++) {
        const struct fr_device_info *d = &devs[i];
        char want[32];
        snprintf(want, sizeof want, "cl:%d:%d", d->platform, d->device);
        assert_string_equal(d->spec, want);
        assert_true(d->name[0] && d->platform_name[0] && d->driver_version[0]);
        assert_non_null(strstr(d->opencl_c_version, "OpenCL C"));
        if (d->usable) {
            assert_true(d->compute_units > 0);
            assert_true(d->global_mem >= d->max_alloc && d->max_alloc > 0);
            assert_string_equal(d->why_not, "");
        } else {
            assert_true(d->why_not[0] != 0);
        }
    }
}

static void test_open_explicit_and_errors(void **state)
{
    (void)state;
    struct fr_backend *b;
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    assert_int_equal(b->kind, FR_BACKEND_OPENCL);
    assert_int_equal(strncmp(fr_backend_name(b), spec, strlen(spec)), 0);
    fr_backend_free(b);
    assert_int_equal(fr_opencl_open(97, 0, &b), FR_STATUS_NOT_FOUND);
    assert_null(b);
    assert_non_null(strstr(fr_last_error(), "cl:97:0"));
    assert_int_equal(fr_opencl_open(devs[0].platform, 55, &b), FR_STATUS_NOT_FOUND);
    assert_non_null(strstr(fr_last_error(), "no such device"));
    assert_int_not_equal(fr_backend_open("cl:97:0", &b), FR_STATUS_OK);
}

/* auto prefers a GPU, then another non-CPU OpenCL device; CPU-type OpenCL devices (PoCL here) are left to
 * the pure-C path, which is faster on the same cores. */
static void test_open_auto(void **state)
{
    (void)state;
    bool has_gpu = false, has_other = false;
    for (int i = 0; i < n_devs; i++) {
        has_gpu |= devs[i].usable && strcmp(devs[i].type, "gpu") == 0;
        has_other |= devs[i].usable && strcmp(devs[i].type, "cpu") != 0;
    }
    struct fr_backend *b = NULL;
    enum fr_status st = fr_opencl_open_auto(&b);
    if (has_other) {
        assert_int_equal(st, FR_STATUS_OK);
        struct fr_cl *cl = b->ctx;
        assert_true(cl->info.usable);
        assert_string_not_equal(cl->info.type, "cpu");
        if (has_gpu)
            assert_string_equal(cl->info.type, "gpu");
        fr_backend_free(b);
    } else {
        assert_int_equal(st, FR_STATUS_UNSUPPORTED);
        assert_null(b);
        assert_non_null(strstr(fr_last_error(), "only CPU OpenCL devices"));
    }
    unsetenv("FRUGAL_DEVICE");
    assert_int_equal(fr_backend_open("auto", &b), FR_STATUS_OK);
    assert_int_equal(b->kind, has_other ? FR_BACKEND_OPENCL : FR_BACKEND_CPU);
    fr_backend_free(b);
}

static void test_source_lookup(void **state)
{
    (void)state;
    char *src;
    size_t len;
    char origin[1024];
    /* quoted includes are inlined: common.h's struct and rng.h's Philox are in, no #include left */
    assert_int_equal(fr_cl_source_load("elementwise.cl", &src, &len, origin, sizeof origin), FR_STATUS_OK);
    assert_int_equal(strlen(src), len);
    assert_non_null(strstr(src, "} fr_clt;"));
    assert_non_null(strstr(src, "fr_philox4x32_10"));
    assert_null(strstr(src, "#include \""));
    free(src);

    /* FRUGAL_CL_PATH wins; relative entries (the working directory) are never searched */
    char tmp[] = "/tmp/frugal-clpath-XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char path[256];
    snprintf(path, sizeof path, "%s/elementwise.cl", tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("/* override */\n", f);
    fclose(f);
    const char *old = getenv("FRUGAL_CL_PATH");
    char *saved = old ? strdup(old) : NULL;
    char env[512];
    snprintf(env, sizeof env, "relative/dir:%s", tmp);
    setenv("FRUGAL_CL_PATH", env, 1);
    assert_int_equal(fr_cl_source_load("elementwise.cl", &src, &len, origin, sizeof origin), FR_STATUS_OK);
    assert_string_equal(origin, path);
    assert_string_equal(src, "/* override */\n");
    free(src);
    /* a file not in the override comes from the data dir, build tree or the embedded copy */
    assert_int_equal(fr_cl_source_load("softmax.cl", &src, &len, origin, sizeof origin), FR_STATUS_OK);
    assert_non_null(strstr(src, "softmax_fwd"));
    free(src);
    assert_int_equal(fr_cl_source_load("no_such_family.cl", &src, &len, NULL, 0), FR_STATUS_NOT_FOUND);
    assert_non_null(strstr(fr_last_error(), "no_such_family.cl"));
    unlink(path);
    rmdir(tmp);
    if (saved) {
        setenv("FRUGAL_CL_PATH", saved, 1);
        free(saved);
    } else {
        unsetenv("FRUGAL_CL_PATH");
    }
    /* every kernel family is embedded, so an installed binary works anywhere */
    const char *names[64];
    int n = fr_cl_source_list(names, 64);
    const char *need[] = {"layout.cl", "elementwise.cl", "gemm.cl", "reduce.cl", "softmax.cl", "convert.cl"};
    for (size_t k = 0; k < sizeof need / sizeof need[0]; k++) {
        bool found = false;
        for (int i = 0; i < n; i++)
            found |= strcmp(names[i], need[k]) == 0;
        if (!found)
            fail_msg("%s is not embedded", need[k]);
    }
}

static void test_build_error_reports(void **state)
{
    (void)state;
    char tmp[] = "/tmp/frugal-broken-XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char path[256];
    snprintf(path, sizeof path, "%s/broken.cl", tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("#include \"common.h\"\n__kernel void broken_k(__global float *y) { y[0] = undeclared_thing; }\n", f);
    fclose(f);
    const char *old = getenv("FRUGAL_CL_PATH");
    char *saved = old ? strdup(old) : NULL;
    char env[1024];
    snprintf(env, sizeof env, "%s:%s", tmp, FRUGAL_CL_BUILDDIR); /* common.h from the tree */
    setenv("FRUGAL_CL_PATH", env, 1);
    struct fr_backend *b;
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    cl_kernel k;
    size_t wg;
    struct fr_cl *cl = b->ctx;
    n_warnings = 0;
    fr_log_set_callback(count_log, NULL);
    assert_int_equal(fr_cl_kernel(cl, "broken.cl", "broken_k", &k, &wg), FR_STATUS_UNSUPPORTED);
    char msg[4096];
    snprintf(msg, sizeof msg, "%s", fr_last_error());
    assert_non_null(strstr(msg, path));          /* the file */
    assert_non_null(strstr(msg, spec));          /* the device */
    assert_non_null(strstr(msg, "undeclared_thing")); /* the compiler's log */
    assert_int_equal(n_warnings, 1);             /* reported once, with the log's first line */
    assert_non_null(strstr(last_warning, "broken.cl"));
    assert_non_null(strstr(last_warning, "undeclared_thing"));
    /* remembered: the same error again, no second compile and no second warning */
    int compiled = cl->n_compiled;
    assert_int_equal(fr_cl_kernel(cl, "broken.cl", "broken_k", &k, &wg), FR_STATUS_UNSUPPORTED);
    assert_int_equal(cl->n_compiled, compiled);
    assert_string_equal(fr_last_error(), msg);
    assert_int_equal(n_warnings, 1);
    fr_log_set_callback(NULL, NULL);
    /* a missing kernel name in a good file is an error too, not a crash */
    assert_int_equal(fr_cl_kernel(b->ctx, "layout.cl", "layout_nope", &k, &wg), FR_STATUS_DEVICE);
    assert_non_null(strstr(fr_last_error(), "layout_nope"));
    fr_backend_free(b);
    unlink(path);
    rmdir(tmp);
    if (saved) {
        setenv("FRUGAL_CL_PATH", saved, 1);
        free(saved);
    } else {
        unsetenv("FRUGAL_CL_PATH");
    }
}

/* An op without an OpenCL kernel runs on the CPU path with copies, counted, with the same result. */
static void test_cpu_fallback(void **state)
{
    (void)state;
    struct fr_cl_op saved = fr_cl_ops_override(FR_OP_RELU, (struct fr_cl_op){NULL, NULL});
    struct fr_backend *b;
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 2, (int64_t[]){3, 4});
    struct fr_tensor *y = fr_scale(ctx, fr_relu(ctx, fr_scale_add(ctx, x, 2.0f, -1.0f)), 3.0f);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, b), FR_STATUS_OK);
    float xd[12], out[12];
    for (int i = 0; i < 12; i++)
        xd[i] = (float)i * 0.25f - 1.0f;
    assert_int_equal(fr_tensor_set(x, xd, sizeof xd), FR_STATUS_OK);
    if (fr_graph_compute(g) != FR_STATUS_OK)
        fail_msg("compute: %s", fr_last_error());
    assert_int_equal(fr_tensor_get(y, out, sizeof out), FR_STATUS_OK);
    for (int i = 0; i < 12; i++) {
        float v = 2.0f * xd[i] - 1.0f;
        assert_true(out[i] == 3.0f * (v > 0 ? v : 0.0f));
    }
    struct fr_graph_stats st;
    fr_graph_get_stats(g, &st);
    assert_int_equal(st.fallback_ops, 1);
    fr_graph_free(g);
    fr_ctx_free(ctx);
    fr_backend_free(b);
    fr_cl_ops_override(FR_OP_RELU, saved);
}

/* y = sum over rows of relu(2x - 1) * x plus a few more nodes: intermediates of 40 KB each */
static struct fr_tensor *chain(struct fr_ctx *ctx, struct fr_tensor *x)
{
    struct fr_tensor *a = fr_relu(ctx, fr_scale_add(ctx, x, 2.0f, -1.0f));
    struct fr_tensor *b = fr_mul(ctx, a, x);
    struct fr_tensor *c = fr_add(ctx, fr_scale(ctx, b, 0.5f), a);
    return fr_sum(ctx, fr_mul(ctx, c, b), -1);
}

static void run_chain(struct fr_backend *b, uint64_t max_buffer, const float *xd, float *out, int *n_bufs)
{
    uint64_t saved = b->max_buffer;
    b->max_buffer = max_buffer;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = fr_tensor_set_flags(fr_tensor_new(ctx, FR_F32, 2, (int64_t[]){100, 100}), FR_FLAG_INPUT);
    struct fr_tensor *y = chain(ctx, x);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    if (fr_graph_plan(g, b) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    assert_int_equal(fr_tensor_set(x, xd, 100 * 100 * sizeof(float)), FR_STATUS_OK);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(y, out, 100 * sizeof(float)), FR_STATUS_OK);
    *n_bufs = g->n_bufs;
    for (int i = 0; i < g->n_bufs; i++)
        assert_true(g->bufs[i]->size <= FR_MAX(max_buffer, (uint64_t)100 * 100 * 4 + 64) || max_buffer == 0);
    fr_graph_free(g);
    fr_ctx_free(ctx);
    b->max_buffer = saved;
}

/* Storage in chunks of at most the backend's largest buffer: many chunks, the same results as one. */
static void test_chunked_storage(void **state)
{
    (void)state;
    static float xd[100 * 100];
    tu_fill_uniform(xd, 100 * 100, 5, -1, 1);
    float one[100], many[100], dev[100];
    int n_one, n_many, n_dev;
    struct fr_backend *cpu = fr_backend_cpu_new(1);
    run_chain(cpu, 0, xd, one, &n_one);
    run_chain(cpu, 48 * 1024, xd, many, &n_many); /* one 40 KB tensor per chunk at most */
    assert_true(n_one <= 2);
    assert_true(n_many >= 4);
    assert_memory_equal(one, many, sizeof one);
    struct fr_backend *b;
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    assert_true(b->max_buffer > 0 && b->max_buffer <= ((struct fr_cl *)b->ctx)->info.max_alloc);
    assert_true(b->max_buffer < (uint64_t)1 << 31); /* element offsets of any dtype fit 32-bit indices */
    assert_true(b->mem_bytes == ((struct fr_cl *)b->ctx)->info.global_mem);
    run_chain(b, 20 * 1024, xd, dev, &n_dev); /* smaller than a tensor: each gets a chunk of its own */
    assert_true(n_dev >= 4);
    tu_assert_close(dev, one, 100, 1e-4f, 1e-5f);
    fr_backend_free(b);
    fr_backend_free(cpu);
}

/* An operand beyond 2^31 elements of its buffer is refused when the graph is planned (the node goes to the
 * CPU path), not when a kernel would index it. Fake storage: nothing is allocated or run. */
static void test_offsets_at_plan_time(void **state)
{
    (void)state;
    struct fr_backend *b;
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = fr_tensor_new(ctx, FR_F32, 1, (int64_t[]){1000});
    struct fr_tensor *y = fr_relu(ctx, x);
    struct fr_buffer fake = {.backend = b, .size = (size_t)1 << 40, .handle = (void *)1};
    x->buffer = y->buffer = &fake;
    x->offset = 4096;
    y->offset = 8192;
    assert_true(b->iface->supports_op(b, y));
    x->offset = (size_t)INT32_MAX * 4 - 100 * 4; /* its last element beyond index 2^31 - 1 */
    assert_false(b->iface->supports_op(b, y));
    x->offset = 4096;
    y->offset = (size_t)3 << 32;
    assert_false(b->iface->supports_op(b, y));
    x->buffer = y->buffer = NULL;
    fr_ctx_free(ctx);
    fr_backend_free(b);
}

/* Device code is recognised by __OPENCL_C_VERSION__ alone (clang defines only that one), and augment.cl's
 * branch for devices without fp64 compiles (only the int-table launch path is exercised at run time here) */
static void test_opencl_c_macro(void **state)
{
    (void)state;
    struct fr_backend *b;
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    struct fr_cl *cl = b->ctx;
    char *src;
    size_t len;
    assert_int_equal(fr_cl_source_load("elementwise.cl", &src, &len, NULL, 0), FR_STATUS_OK);
    const char *pre = "#undef __OPENCL_VERSION__\n#ifndef __OPENCL_C_VERSION__\n#define __OPENCL_C_VERSION__ 120\n#endif\n";
    char *full = malloc(strlen(pre) + len + 1);
    assert_non_null(full);
    strcpy(full, pre);
    strcat(full, src);
    const char *s = full;
    cl_int err;
    cl_program p = clCreateProgramWithSource(cl->context, 1, &s, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    err = clBuildProgram(p, 1, &cl->device, cl->build_options, NULL, NULL);
    if (err != CL_SUCCESS)
        fail_msg("elementwise.cl without __OPENCL_VERSION__: %s", fr_cl_error_name(err));
    cl_kernel k = clCreateKernel(p, "elementwise_relu", &err);
    assert_int_equal(err, CL_SUCCESS);
    clReleaseKernel(k);
    clReleaseProgram(p);
    free(full);
    free(src);
    /* augment.cl's branch for devices without doubles compiles on this one too */
    assert_int_equal(fr_cl_source_load("augment.cl", &src, &len, NULL, 0), FR_STATUS_OK);
    s = src;
    p = clCreateProgramWithSource(cl->context, 1, &s, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    char opts[300];
    snprintf(opts, sizeof opts, "%s -DFR_AUG_NO_FP64", cl->build_options);
    err = clBuildProgram(p, 1, &cl->device, opts, NULL, NULL);
    if (err != CL_SUCCESS)
        fail_msg("augment.cl with FR_AUG_NO_FP64: %s", fr_cl_error_name(err));
    clReleaseProgram(p);
    free(src);
    fr_backend_free(b);
}

/* fp64 rate by name: full on datacenter parts and CPUs, slow on consumer GPUs (augmentation then uses the
 * integer tables); the device's own class is what `frugal devices` shows */
static void test_fp64_class(void **state)
{
    (void)state;
    static const struct {
        const char *type, *name, *board;
        enum fr_cl_fp64 want;
    } cases[] = {
        {"gpu", "NVIDIA H100 80GB HBM3", NULL, FR_CL_FP64_FULL},
        {"gpu", "NVIDIA A100-SXM4-80GB", NULL, FR_CL_FP64_FULL},
        {"gpu", "Tesla V100-PCIE-32GB", NULL, FR_CL_FP64_FULL},
        {"gpu", "NVIDIA H200", NULL, FR_CL_FP64_FULL},
        {"gpu", "NVIDIA GeForce RTX 4090", NULL, FR_CL_FP64_SLOW},
        {"gpu", "NVIDIA RTX A1000 Laptop GPU", NULL, FR_CL_FP64_SLOW},
        {"gpu", "Tesla T4", NULL, FR_CL_FP64_SLOW},
        {"gpu", "NVIDIA L40S", NULL, FR_CL_FP64_SLOW},
        {"gpu", "gfx90a:sramecc+:xnack-", "AMD Instinct MI250X", FR_CL_FP64_FULL},
        {"gpu", "gfx942", NULL, FR_CL_FP64_FULL},
        {"gpu", "gfx1100", "AMD Radeon RX 7900 XTX", FR_CL_FP64_SLOW},
        {"gpu", "Intel(R) Arc(TM) A770 Graphics", NULL, FR_CL_FP64_SLOW},
        {"gpu", "Intel(R) Data Center GPU Max 1550", NULL, FR_CL_FP64_FULL},
        {"cpu", "pthread-skylake-avx512-AMD EPYC", NULL, FR_CL_FP64_FULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (fr_cl_fp64_by_name(cases[i].type, cases[i].name, cases[i].board) != cases[i].want)
            fail_msg("%s (%s): wrong fp64 class", cases[i].name, cases[i].board ? cases[i].board : "-");
    struct fr_backend *b;
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    struct fr_cl *cl = b->ctx;
    static const char *const names[] = {"none", "slow", "full"};
    assert_string_equal(cl->info.fp64, names[cl->fp64]);
    cl_device_fp_config fp64 = 0;
    clGetDeviceInfo(cl->device, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL);
    assert_int_equal(cl->fp64 == FR_CL_FP64_NONE, fp64 == 0);
    fr_backend_free(b);
    setenv("FRUGAL_CL_FP64", "slow", 1);
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    assert_int_equal(((struct fr_cl *)b->ctx)->fp64, fp64 ? FR_CL_FP64_SLOW : FR_CL_FP64_NONE);
    fr_backend_free(b);
    unsetenv("FRUGAL_CL_FP64");
}

/* Kernel arguments within CL_DEVICE_MAX_PARAMETER_SIZE: a launch that needs more is refused by name and
 * its node runs on the CPU path with the same result. */
static void test_parameter_size(void **state)
{
    (void)state;
    struct fr_backend *b;
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    struct fr_cl *cl = b->ctx;
    assert_true(cl->max_param >= 256); /* the embedded profile's minimum */
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 1, (int64_t[]){64});
    struct fr_tensor *y = fr_scale(ctx, fr_relu(ctx, x), 3.0f);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, b), FR_STATUS_OK);
    float xd[64], out[64];
    tu_fill_uniform(xd, 64, 9, -1, 1);
    assert_int_equal(fr_tensor_set(x, xd, sizeof xd), FR_STATUS_OK);
    size_t saved = cl->max_param;
    cl->max_param = 60; /* one tensor argument (cl_mem + 48-byte view) fits, two do not */
    struct fr_cl_launch L;
    assert_int_equal(fr_cl_begin(&L, cl, "elementwise.cl", "elementwise_relu"), FR_STATUS_OK);
    fr_cl_arg_tensor(&L, x);
    fr_cl_arg_tensor(&L, x);
    assert_int_equal(L.st, FR_STATUS_UNSUPPORTED);
    assert_non_null(strstr(fr_last_error(), "elementwise_relu"));
    assert_non_null(strstr(fr_last_error(), "parameter size"));
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    cl->max_param = saved;
    assert_int_equal(fr_tensor_get(y, out, sizeof out), FR_STATUS_OK);
    for (int i = 0; i < 64; i++)
        assert_true(out[i] == 3.0f * (xd[i] > 0 ? xd[i] : 0.0f));
    struct fr_graph_stats gs;
    fr_graph_get_stats(g, &gs);
    assert_int_equal(gs.fallback_ops, 2);
    fr_graph_free(g);
    fr_ctx_free(ctx);
    fr_backend_free(b);
}

/* Profiles: per-op rows with launches and work-items from events on the device, the wall clock per node on
 * the CPU path; training runs are steps, others and copies are kept apart. */
static void test_profile(void **state)
{
    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        struct fr_backend *b;
        assert_int_equal(fr_backend_open(pass ? spec : "cpu", &b), FR_STATUS_OK);
        struct fr_ctx *ctx = fr_ctx_new();
        struct fr_tensor *x = tu_tensor_f32(ctx, 2, (int64_t[]){30, 100});
        struct fr_tensor *y = fr_softmax(ctx, fr_relu(ctx, fr_scale(ctx, x, 2.0f)), -1);
        struct fr_graph *g = fr_graph_new(ctx);
        assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
        assert_int_equal(fr_graph_plan(g, b), FR_STATUS_OK);
        static float xd[3000];
        tu_fill_uniform(xd, 3000, 2, -1, 1);
        assert_int_equal(fr_tensor_set(x, xd, sizeof xd), FR_STATUS_OK);
        assert_int_equal(fr_graph_compute(g), FR_STATUS_OK); /* builds the kernels, not profiled */
        assert_int_equal(fr_profile_start(b), FR_STATUS_OK);
        fr_graph_set_training(g, true);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(fr_tensor_set(x, xd, sizeof xd), FR_STATUS_OK);
            assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
        }
        fr_graph_set_training(g, false);
        assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
        struct fr_profile p;
        assert_int_equal(fr_profile_stop(b, &p), FR_STATUS_OK);
        assert_int_equal(p.steps, 3);
        assert_int_equal(p.other_runs, 1);
        const char *ops[] = {"scale", "relu", "softmax"};
        for (size_t k = 0; k < 3; k++) {
            const struct fr_profile_row *r = NULL;
            for (int i = 0; i < p.n_rows; i++)
                if (p.rows[i].training && strcmp(p.rows[i].op, ops[k]) == 0)
                    r = &p.rows[i];
            if (!r)
                fail_msg("%s: no row for %s", b->name, ops[k]);
            assert_true(r->launches >= 3); /* one or more launches per step */
            assert_true(r->ms >= 0);
            if (pass) {
                assert_true(r->min_work_items >= 1 && r->min_work_items <= 3000);
                assert_true(r->work_items >= 3.0 * (double)r->min_work_items);
            }
        }
        bool copies = false, other = false;
        for (int i = 0; i < p.n_rows; i++) {
            copies |= !p.rows[i].training && strcmp(p.rows[i].op, "host->device") == 0;
            other |= !p.rows[i].training && strcmp(p.rows[i].op, "softmax") == 0;
        }
        assert_true(other);
        assert_int_equal(copies, pass == 1); /* the device times its copies; the CPU path has none */
        if (pass) {
            struct fr_cl *cl = b->ctx;
            assert_true(cl->wg_multiple >= 1);
            assert_int_equal(p.parallel_target, 8 * (int64_t)cl->info.compute_units * (int64_t)cl->wg_multiple);
            assert_true(p.min_work_items >= 1);
            assert_non_null(strstr(p.method, "events"));
        } else {
            assert_int_equal(p.parallel_target, 0);
            assert_int_equal(p.min_work_items, -1);
        }
        char *text = fr_profile_format(&p);
        assert_non_null(text);
        assert_non_null(strstr(text, "3 training steps"));
        assert_non_null(strstr(text, "softmax"));
        assert_non_null(strstr(text, "100.0%"));
        free(text);
        fr_profile_free(&p);
        /* not started: an error, no crash */
        assert_int_equal(fr_profile_stop(b, &p), FR_STATUS_INVALID_ARGUMENT);
        /* started and never stopped: freed with the backend (ASan) */
        assert_int_equal(fr_profile_start(b), FR_STATUS_OK);
        assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
        fr_graph_free(g);
        fr_ctx_free(ctx);
        fr_backend_free(b);
    }
}

/* Buffers: bounds-checked set/get, and sizes above the device's max allocation refused cleanly. */
static void test_buffers(void **state)
{
    (void)state;
    struct fr_backend *b;
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    struct fr_buffer *buf;
    assert_int_equal(fr_buffer_alloc(b, 100, &buf), FR_STATUS_OK);
    unsigned char in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = (unsigned char)(i * 3);
    assert_int_equal(b->iface->buffer_set(buf, 0, in, 100), FR_STATUS_OK);
    assert_int_equal(b->iface->buffer_get(buf, 10, out, 50), FR_STATUS_OK);
    assert_memory_equal(out, in + 10, 50);
    assert_int_equal(b->iface->buffer_get(buf, 60, out, 50), FR_STATUS_INVALID_ARGUMENT);
    assert_int_equal(b->iface->buffer_set(buf, 101, in, 1), FR_STATUS_INVALID_ARGUMENT);
    fr_buffer_free(buf);
    struct fr_cl *cl = b->ctx;
    assert_int_equal(fr_buffer_alloc(b, (size_t)cl->info.max_alloc + 1, &buf), FR_STATUS_OUT_OF_MEMORY);
    fr_backend_free(b);
}

/* The launch API and both SGEMM paths on raw buffers: C = 0.5 op(A) op(B) + 2 C with odd sizes, the
 * naive and tiled gemm.cl kernels and CLBlast (when built in) against a host reference. */
static void host_gemm(bool ta, bool tb, int m, int n, int k, const float *a, const float *b, const float *c0,
                      float *c)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int p = 0; p < k; p++)
                acc += (double)(ta ? a[p * m + i] : a[i * k + p]) * (double)(tb ? b[j * k + p] : b[p * n + j]);
            c[i * n + j] = (float)(0.5 * acc + 2.0 * c0[i * n + j]);
        }
}

static void test_sgemm_paths(void **state)
{
    (void)state;
    const int m = 13, n = 7, k = 21;
    struct fr_backend *b;
    assert_int_equal(fr_backend_open(spec, &b), FR_STATUS_OK);
    struct fr_cl *cl = b->ctx;
    float a[13 * 21], bb[21 * 7], c0[13 * 7], want[13 * 7], got[13 * 7];
    tu_fill_uniform(a, 13 * 21, 1, -1, 1);
    tu_fill_uniform(bb, 21 * 7, 2, -1, 1);
    tu_fill_uniform(c0, 13 * 7, 3, -1, 1);
    struct fr_buffer *ba, *bbuf, *bc;
    /* operands at odd element offsets inside their buffers */
    assert_int_equal(fr_buffer_alloc(b, sizeof a + 12, &ba), FR_STATUS_OK);
    assert_int_equal(fr_buffer_alloc(b, sizeof bb + 20, &bbuf), FR_STATUS_OK);
    assert_int_equal(fr_buffer_alloc(b, sizeof c0 + 4, &bc), FR_STATUS_OK);
    assert_int_equal(b->iface->buffer_set(ba, 12, a, sizeof a), FR_STATUS_OK);
    assert_int_equal(b->iface->buffer_set(bbuf, 20, bb, sizeof bb), FR_STATUS_OK);
    cl_mem ma = ba->handle, mb = bbuf->handle, mc = bc->handle;
    for (int variant = 0; variant < 3 * 4; variant++) {
        bool ta = variant & 1, tb = variant & 2;
        int path = variant / 4; /* 0 naive, 1 tiled, 2 fr_cl_sgemm (CLBlast when built in) */
        assert_int_equal(b->iface->buffer_set(bc, 4, c0, sizeof c0), FR_STATUS_OK);
        host_gemm(ta, tb, m, n, k, a, bb, c0, want);
        int sam = ta ? 1 : k, sak = ta ? m : 1, sbk = tb ? 1 : n, sbn = tb ? k : 1;
        if (path < 2) {
            struct fr_cl_launch L;
            assert_int_equal(fr_cl_begin(&L, cl, "gemm.cl", path ? "gemm_tiled" : "gemm_naive"), FR_STATUS_OK);
            fr_cl_arg_int(&L, m);
            fr_cl_arg_int(&L, n);
            fr_cl_arg_int(&L, k);
            fr_cl_arg_float(&L, 0.5f);
            fr_cl_arg_mem(&L, ma);
            fr_cl_arg_int(&L, 3);
            fr_cl_arg_int(&L, sam);
            fr_cl_arg_int(&L, sak);
            fr_cl_arg_mem(&L, mb);
            fr_cl_arg_int(&L, 5);
            fr_cl_arg_int(&L, sbk);
            fr_cl_arg_int(&L, sbn);
            fr_cl_arg_float(&L, 2.0f);
            fr_cl_arg_mem(&L, mc);
            fr_cl_arg_int(&L, 1);
            fr_cl_arg_int(&L, n);
            fr_cl_arg_int(&L, 1);
            for (int z = 0; z < 4; z++) /* batch strides of A, B, C (one GEMM), batch count 1 */
                fr_cl_arg_int(&L, z == 3);
            enum fr_status st = path ? fr_cl_run_2d(&L, (n + 63) / 64 * 16, (m + 63) / 64 * 16, 16, 16)
                                     : fr_cl_run_2d(&L, n, m, 0, 0);
            if (st != FR_STATUS_OK)
                fail_msg("%s", fr_last_error());
        } else {
            assert_int_equal(fr_cl_sgemm(cl, ta, tb, m, n, k, 0.5f, ma, 3, ta ? m : k, mb, 5, tb ? k : n, 2.0f, mc,
                                         1, n),
                             FR_STATUS_OK);
        }
        assert_int_equal(b->iface->buffer_get(bc, 4, got, sizeof got), FR_STATUS_OK);
        tu_assert_close(got, want, 13 * 7, 1e-5f, 1e-5f);
    }
    /* a work-group beyond the kernel's limit is refused with the kernel's name, never enqueued */
    struct fr_cl_launch L;
    assert_int_equal(fr_cl_begin(&L, cl, "gemm.cl", "gemm_tiled"), FR_STATUS_OK);
    assert_int_equal(fr_cl_run_2d(&L, 5, 5, L.wg_size, 2), FR_STATUS_UNSUPPORTED);
    assert_non_null(strstr(fr_last_error(), "gemm_tiled"));
    /* errors are sticky: a later argument or launch keeps reporting the first failure */
    fr_cl_arg_int(&L, 1);
    assert_int_equal(fr_cl_run_1d(&L, 10), FR_STATUS_UNSUPPORTED);
    fr_buffer_free(ba);
    fr_buffer_free(bbuf);
    fr_buffer_free(bc);
    fr_backend_free(b);
}

/* Child process (exec'd with OCL_ICD_VENDORS pointing at an empty directory before any OpenCL call):
 * no devices, auto falls back to the CPU path with exactly one warning, and a graph runs there. */
static int child_no_icd(void)
{
    fr_log_set_callback(count_log, NULL);
    struct fr_device_info *d;
    int n = -1;
    if (fr_opencl_list_devices(&d, &n) != FR_STATUS_OK || n != 0)
        return 10;
    struct fr_backend *b;
    if (fr_opencl_open_auto(&b) != FR_STATUS_NOT_FOUND)
        return 11;
    if (fr_opencl_open(0, 0, &b) != FR_STATUS_NOT_FOUND)
        return 12;
    n_warnings = 0;
    if (fr_backend_open("auto", &b) != FR_STATUS_OK || b->kind != FR_BACKEND_CPU)
        return 13;
    if (n_warnings != 1)
        return 14;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = fr_tensor_new_1d(ctx, FR_F32, 3);
    fr_tensor_set_flags(x, FR_FLAG_INPUT);
    struct fr_tensor *y = fr_scale(ctx, x, 2.0f);
    struct fr_graph *g = fr_graph_new(ctx);
    float xd[3] = {1, 2, 3}, out[3];
    if (fr_graph_add(g, y) || fr_graph_plan(g, b) || fr_tensor_set(x, xd, sizeof xd) || fr_graph_compute(g) ||
        fr_tensor_get(y, out, sizeof out))
        return 15;
    if (out[0] != 2 || out[1] != 4 || out[2] != 6)
        return 16;
    fr_graph_free(g);
    fr_ctx_free(ctx);
    fr_backend_free(b);
    printf("# child without ICD: auto -> cpu, warning: %s\n", last_warning);
    return 0;
}

static void test_no_icd_falls_back(void **state)
{
    (void)state;
    char empty[] = "/tmp/frugal-noicd-XXXXXX";
    assert_non_null(mkdtemp(empty));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("OCL_ICD_VENDORS", empty, 1);
        setenv("OPENCL_VENDOR_PATH", empty, 1);
        setenv("FRUGAL_TEST_CHILD", "no_icd", 1);
        execl(exe, exe, (char *)NULL);
        _exit(99);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    rmdir(empty);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("child without an ICD failed at check %d", WEXITSTATUS(status));
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *child = getenv("FRUGAL_TEST_CHILD");
    if (child && strcmp(child, "no_icd") == 0)
        return child_no_icd();
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (l <= 0)
        snprintf(exe, sizeof exe, "%s", argv[0]);
    else
        exe[l] = 0;

    const struct CMUnitTest no_device_tests[] = {
        cmocka_unit_test(test_no_icd_falls_back),
    };
    fr_opencl_list_devices(&devs, &n_devs);
    for (int i = 0; i < n_devs && !spec[0]; i++)
        if (devs[i].usable)
            snprintf(spec, sizeof spec, "%s", devs[i].spec);
    if (!spec[0]) {
        printf("SKIPPED (partly): test_opencl: no usable OpenCL device; only the no-ICD fallback is tested\n");
        int rc = cmocka_run_group_tests(no_device_tests, NULL, NULL);
        fr_opencl_free_devices(devs);
        return rc;
    }
    printf("# OpenCL tests on %s (%s)\n", spec, devs[0].name);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_devices),
        cmocka_unit_test(test_open_explicit_and_errors),
        cmocka_unit_test(test_open_auto),
        cmocka_unit_test(test_source_lookup),
        cmocka_unit_test(test_build_error_reports),
        cmocka_unit_test(test_cpu_fallback),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_sgemm_paths),
        cmocka_unit_test(test_chunked_storage),
        cmocka_unit_test(test_offsets_at_plan_time),
        cmocka_unit_test(test_opencl_c_macro),
        cmocka_unit_test(test_fp64_class),
        cmocka_unit_test(test_parameter_size),
        cmocka_unit_test(test_profile),
        cmocka_unit_test(test_no_icd_falls_back),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fr_opencl_free_devices(devs);
    return rc;
}
#else
int main(void)
{
    printf("SKIPPED: test_opencl: this build has no OpenCL\n");
    return 77;
}
#endif
