/* Failures of the OpenCL device, made on purpose with FRUGAL_CL_FAULT (fault injection): each one ends in a
 * clear error naming the device and the call, or in the CPU path with the same results, never a crash or a
 * hang (the sanitizer pass of CI runs this suite for leaks). Covers programs that do not build (their ops
 * fall back, the failure is remembered, --precompile lists them), allocation, copy, launch and finish
 * failures, the fault switch itself, and the CLI: a run that fails mid-way exits 1 with one line and leaves
 * the last checkpoint as it was. */
#include <math.h>
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
#include "opencl/opencl_internal.h"

static char spec[32];
static int plat, dev;

static int n_warnings;
static char last_warning[2048];
static void count_log(enum fr_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level == FR_LOG_WARN) {
        n_warnings++;
        snprintf(last_warning, sizeof last_warning, "%s", msg);
    }
}

#define BATCH 16
#define HW 28

/* one trainer of model t: deterministic images and labels, SGD with momentum */
struct run {
    struct fr_ctx *ctx;
    struct fr_model *m;
    struct fr_trainer *tr;
    float x[BATCH * HW * HW];
    int32_t y[BATCH];
};

static enum fr_status run_open(struct run *r, struct fr_backend *be)
{
    memset(r, 0, sizeof *r);
    tu_fill_uniform(r->x, BATCH * HW * HW, 7, 0.0f, 1.0f);
    for (int i = 0; i < BATCH; i++)
        r->y[i] = (i * 3) % 10;
    r->ctx = fr_ctx_new();
    enum fr_status st = fr_model_builtin(r->ctx, "t", 1, HW, HW, 10, &r->m);
    if (st == FR_STATUS_OK)
        st = fr_model_alloc(r->m, be);
    if (st == FR_STATUS_OK)
        st = fr_model_init(r->m, 3, FR_INIT_DEFAULT, NULL);
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = BATCH;
    fr_optim_params_init(&o.optim, FR_OPTIM_SGD);
    o.optim.momentum = 0.9f;
    if (st == FR_STATUS_OK)
        st = fr_trainer_new(r->m, be, &o, &r->tr);
    return st;
}

static void run_close(struct run *r)
{
    fr_trainer_free(r->tr);
    fr_model_free(r->m);
    fr_ctx_free(r->ctx);
    memset(r, 0, sizeof *r);
}

static enum fr_status step(struct run *r, float *loss) { return fr_trainer_step(r->tr, r->x, r->y, NULL, NULL, 0.05f, loss); }

/* the CPU path's losses of three steps: the reference */
static float ref_loss[3];

static int setup(void **state)
{
    if (tu_cpu_setup(state) != 0)
        return -1;
    struct run r;
    if (run_open(&r, tu_cpu) != FR_STATUS_OK)
        return -1;
    for (int i = 0; i < 3; i++)
        if (step(&r, &ref_loss[i]) != FR_STATUS_OK)
            return -1;
    run_close(&r);
    return 0;
}

static struct fr_backend *open_dev(void)
{
    struct fr_backend *b = NULL;
    if (fr_backend_open(spec, &b) != FR_STATUS_OK)
        fail_msg("%s: %s", spec, fr_last_error());
    return b;
}

/* Programs that do not build: their ops run on the CPU path with the same results, one warning per program,
 * the failure remembered (no rebuild at later steps or plans). */
static void test_build_failure_falls_back(void **state)
{
    (void)state;
    const char *cases[] = {"build:2", "build:1+"};
    for (int c = 0; c < 2; c++) {
        fr_log_set_callback(count_log, NULL);
        n_warnings = 0;
        fr_cl_fault_set(cases[c]);
        struct fr_backend *b = open_dev();
        struct run r;
        assert_int_equal(run_open(&r, b), FR_STATUS_OK);
        float loss[3];
        if (step(&r, &loss[0]) != FR_STATUS_OK)
            fail_msg("%s: %s", cases[c], fr_last_error());
        long builds = fr_cl_fault_calls(FR_CL_BUILD);
        assert_true(builds >= 2);
        for (int i = 1; i < 3; i++)
            assert_int_equal(step(&r, &loss[i]), FR_STATUS_OK);
        /* a new graph on the same device: the planner already knows which ops cannot run there */
        struct fr_graph_stats gs;
        fr_graph_get_stats(fr_trainer_graph(r.tr, false), &gs);
        assert_true(gs.fallback_ops > 0);
        float logits[BATCH * 10];
        assert_int_equal(fr_trainer_predict(r.tr, r.x, BATCH, logits), FR_STATUS_OK);
        assert_int_equal(fr_cl_fault_calls(FR_CL_BUILD), builds); /* remembered: never rebuilt */
        for (int i = 0; i < 3; i++)
            if (!(fabsf(loss[i] - ref_loss[i]) <= 1e-4f * fabsf(ref_loss[i]) + 1e-6f))
                fail_msg("%s: step %d loss %.8g, CPU path %.8g", cases[c], i, loss[i], ref_loss[i]);
        struct fr_cl *cl = b->ctx;
        int failed = 0;
        for (int i = 0; i < cl->n_programs; i++)
            failed += cl->programs[i].program == NULL;
        assert_true(failed >= 1);
        assert_int_equal(n_warnings, failed); /* each failing program reported once */
        assert_non_null(strstr(last_warning, "does not build"));
        assert_non_null(strstr(last_warning, spec));
        if (c == 1) { /* nothing builds: every node of the step ran on the CPU path */
            struct fr_graph *tg = fr_trainer_graph(r.tr, false);
            int work = 0, mm = 0;
            for (int i = 0; i < fr_graph_n_nodes(tg); i++) {
                enum fr_op op = fr_graph_node(tg, i)->op;
                work += op != FR_OP_NONE && op != FR_OP_VIEW;
                mm += op == FR_OP_MATMUL;
            }
            /* matmuls may still run on the device through CLBlast, which needs no program of ours */
            assert_true(gs.fallback_ops >= work - mm && gs.fallback_ops <= work);
        }
        run_close(&r);
        fr_backend_free(b);
        fr_cl_fault_set(NULL);
        fr_log_set_callback(NULL, NULL);
    }
}

/* Allocation failures: out of memory naming the device, its memory, the call and a batch to try; the same
 * objects planned again afterwards work. */
static void test_alloc_failure(void **state)
{
    (void)state;
    struct fr_backend *b = open_dev();
    struct run r;
    fr_cl_fault_set("alloc:1");
    assert_int_equal(run_open(&r, b), FR_STATUS_OUT_OF_MEMORY);
    const char *msg = fr_last_error();
    assert_non_null(strstr(msg, spec));
    assert_non_null(strstr(msg, "clCreateBuffer"));
    assert_non_null(strstr(msg, "GiB"));
    run_close(&r);
    /* a chunk of the training graph (after the parameters and the optimizer's state): the hint */
    bool planned = false;
    for (int k = 2; k < 8 && !planned; k++) {
        char rule[32];
        snprintf(rule, sizeof rule, "alloc:%d", k);
        fr_cl_fault_set(rule);
        assert_int_equal(run_open(&r, b), FR_STATUS_OUT_OF_MEMORY);
        msg = fr_last_error();
        assert_non_null(strstr(msg, "out of device memory"));
        assert_null(strchr(msg, '\n'));
        if (strstr(msg, "this graph needs")) {
            planned = true;
            if (!strstr(msg, "at batch 16): try a batch of 8"))
                fail_msg("%s", msg);
        }
        run_close(&r);
    }
    assert_true(planned);
    fr_cl_fault_set(NULL);
    assert_int_equal(run_open(&r, b), FR_STATUS_OK);
    float loss;
    assert_int_equal(step(&r, &loss), FR_STATUS_OK);
    assert_true(fabsf(loss - ref_loss[0]) <= 1e-4f * fabsf(ref_loss[0]));
    run_close(&r);
    fr_backend_free(b);
}

/* A batch to try from the device's memory: intermediates scale with the batch */
static void test_oom_batch_hint(void **state)
{
    (void)state;
    struct fr_backend *b = open_dev();
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = fr_tensor_set_flags(fr_tensor_new(ctx, FR_F32, 2, (int64_t[]){256, 1024}), FR_FLAG_INPUT);
    struct fr_tensor *y = fr_sum(ctx, fr_relu(ctx, fr_scale(ctx, x, 2.0f)), -1);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    /* 1 MiB per intermediate at batch 256, 1 MiB of input: pretend the device has 2 MiB of memory */
    b->mem_bytes = 2 << 20;
    fr_cl_fault_set("alloc:2");
    assert_int_equal(fr_graph_plan(g, b), FR_STATUS_OUT_OF_MEMORY);
    const char *msg = fr_last_error();
    char *hint = strstr(msg, "try a batch of ");
    if (!hint)
        fail_msg("%s", msg);
    long want = atol(hint + 15);
    struct fr_graph_stats gs;
    fr_cl_fault_set(NULL);
    b->mem_bytes = 0;
    assert_int_equal(fr_graph_plan(g, b), FR_STATUS_OK);
    fr_graph_get_stats(g, &gs);
    /* 0.8 x 2 MiB less the static tensors, over the intermediates of one sample (at most half the batch),
     * rounded down to a multiple of 8 */
    double per = (double)gs.arena_bytes / 256, room = 0.8 * (2 << 20) - (double)gs.static_bytes;
    long expect = (long)(room / per);
    expect = expect > 128 ? 128 : expect;
    expect -= expect >= 16 ? expect % 8 : 0;
    assert_true(expect < 128); /* the memory decided, not the halving */
    assert_int_equal(want, expect);
    assert_true(want >= 1 && want < 256);
    fr_graph_free(g);
    fr_ctx_free(ctx);
    fr_backend_free(b);
}

/* Launch, finish and copy failures: a one-line status naming the device and the call; transient ones leave
 * the trainer usable. */
static void test_runtime_failures(void **state)
{
    (void)state;
    struct fr_backend *b = open_dev();
    struct run r;
    assert_int_equal(run_open(&r, b), FR_STATUS_OK);
    float loss;
    assert_int_equal(step(&r, &loss), FR_STATUS_OK);
    static const struct {
        const char *rule, *call;
        enum fr_status st;
    } cases[] = {
        {"enqueue:3", "clEnqueueNDRangeKernel", FR_STATUS_OUT_OF_MEMORY},
        {"enqueue:5=CL_INVALID_COMMAND_QUEUE", "CL_INVALID_COMMAND_QUEUE", FR_STATUS_DEVICE},
        {"finish:1", "clFinish", FR_STATUS_OUT_OF_MEMORY},
        {"write:1", "clEnqueueWriteBuffer", FR_STATUS_OUT_OF_MEMORY},
        {"read:1=CL_INVALID_MEM_OBJECT", "clEnqueueReadBuffer", FR_STATUS_DEVICE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fr_cl_fault_set(cases[i].rule);
        enum fr_status st = step(&r, &loss);
        if (st != cases[i].st)
            fail_msg("%s: status %s: %s", cases[i].rule, fr_status_str(st), fr_last_error());
        const char *msg = fr_last_error();
        assert_non_null(strstr(msg, spec));
        assert_non_null(strstr(msg, cases[i].call));
        assert_null(strchr(msg, '\n'));
        if (st == FR_STATUS_OUT_OF_MEMORY)
            assert_non_null(strstr(msg, "GiB"));
        fr_cl_fault_set(NULL);
        if (step(&r, &loss) != FR_STATUS_OK)
            fail_msg("after %s: %s", cases[i].rule, fr_last_error());
        assert_true(isfinite(loss));
    }
    /* a failure while profiling: the events of the commands already queued are released (ASan) */
    assert_int_equal(fr_profile_start(b), FR_STATUS_OK);
    fr_cl_fault_set("enqueue:10");
    assert_int_not_equal(step(&r, &loss), FR_STATUS_OK);
    fr_cl_fault_set(NULL);
    assert_int_equal(step(&r, &loss), FR_STATUS_OK);
    struct fr_profile p;
    assert_int_equal(fr_profile_stop(b, &p), FR_STATUS_OK);
    assert_int_equal(p.steps, 2);
    assert_true(p.n_rows > 0);
    fr_profile_free(&p);
    run_close(&r);
    fr_backend_free(b);
}

/* the switch: counting per kind, N+ onwards, error names, malformed rules refused with a warning */
static void test_fault_rules(void **state)
{
    (void)state;
    fr_cl_fault_set("alloc:2+,finish:1=CL_OUT_OF_HOST_MEMORY");
    assert_int_equal(fr_cl_fault(FR_CL_ALLOC), CL_SUCCESS);
    assert_int_equal(fr_cl_fault(FR_CL_ALLOC), CL_MEM_OBJECT_ALLOCATION_FAILURE);
    assert_int_equal(fr_cl_fault(FR_CL_ALLOC), CL_MEM_OBJECT_ALLOCATION_FAILURE);
    assert_int_equal(fr_cl_fault(FR_CL_ENQUEUE), CL_SUCCESS);
    assert_int_equal(fr_cl_fault(FR_CL_FINISH), CL_OUT_OF_HOST_MEMORY);
    assert_int_equal(fr_cl_fault(FR_CL_FINISH), CL_SUCCESS);
    assert_int_equal(fr_cl_fault_calls(FR_CL_ALLOC), 3);
    fr_cl_fault_set("build:3");
    assert_int_equal(fr_cl_fault(FR_CL_BUILD), CL_SUCCESS);
    assert_int_equal(fr_cl_fault(FR_CL_BUILD), CL_SUCCESS);
    assert_int_equal(fr_cl_fault(FR_CL_BUILD), CL_BUILD_PROGRAM_FAILURE);
    assert_int_equal(fr_cl_fault(FR_CL_BUILD), CL_SUCCESS);
    const char *bad[] = {"alloc", "alloc:0", "alloc:x", "launch:1", "alloc:1=CL_NOPE", "alloc:1*", "finish:1=CL_SUCCESS"};
    fr_log_set_callback(count_log, NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n_warnings = 0;
        fr_cl_fault_set(bad[i]);
        assert_int_equal(n_warnings, 1);
        assert_non_null(strstr(last_warning, bad[i]));
        assert_int_equal(fr_cl_fault(FR_CL_ALLOC), CL_SUCCESS); /* nothing armed */
    }
    fr_log_set_callback(NULL, NULL);
    fr_cl_fault_set(NULL);
}

/* --precompile goes on past failures and lists each with its log: an injected one and a real compile error */
static void test_precompile_report(void **state)
{
    (void)state;
    fr_cl_fault_set("build:2,build:4");
    struct fr_precompile_report rep;
    assert_int_equal(fr_opencl_precompile(plat, dev, &rep), FR_STATUS_UNSUPPORTED);
    assert_int_equal(rep.n_failed, 2);
    assert_int_equal(rep.n_ready, rep.n_programs - 2);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", fr_last_error());
    for (int i = 0; i < 2; i++) {
        assert_non_null(strstr(rep.failures[i].error, "FRUGAL_CL_FAULT"));
        assert_non_null(strstr(msg, rep.failures[i].file));
    }
    assert_non_null(strstr(msg, "2 of"));
    fr_opencl_precompile_free(&rep);
    fr_cl_fault_set(NULL);

    char tmp[256];
    assert_int_equal(tu_tmpdir_create(tmp, sizeof tmp, "brokencl"), 0);
    FILE *f = fopen(tu_path(tmp, "pool.cl"), "w");
    assert_non_null(f);
    fputs("#include \"common.h\"\n__kernel void maxpool2d_fwd(__global float *y) { y[0] = no_such_name; }\n", f);
    fclose(f);
    const char *old = getenv("FRUGAL_CL_PATH");
    char *saved = old ? strdup(old) : NULL;
    char env[1024];
    snprintf(env, sizeof env, "%s:%s", tmp, FRUGAL_CL_BUILDDIR);
    setenv("FRUGAL_CL_PATH", env, 1);
    enum fr_status st = fr_opencl_precompile(plat, dev, &rep);
    if (saved) {
        setenv("FRUGAL_CL_PATH", saved, 1);
        free(saved);
    } else {
        unsetenv("FRUGAL_CL_PATH");
    }
    assert_int_equal(st, FR_STATUS_UNSUPPORTED);
    assert_int_equal(rep.n_failed, 1);
    assert_string_equal(rep.failures[0].file, "pool.cl");
    assert_non_null(strstr(rep.failures[0].error, "no_such_name")); /* the compiler's log */
    fr_opencl_precompile_free(&rep);
    tu_tmpdir_remove(tmp);
}

/* --- the CLI (tests/test_cli.c's way: the built binary through the shell) --- */
static const char *exe;

static int sh(const char *cmd)
{
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s) {
        s[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return s;
}

/* the last non-empty line of a text */
static void last_line(const char *text, char *buf, size_t size)
{
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '\n')
        n--;
    size_t start = n;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    snprintf(buf, size, "%.*s", (int)(n - start), text + start);
}

static void test_cli_failure_mid_run(void **state)
{
    (void)state;
    if (!exe || !fr_dataset_fmnist_dir())
        skip();
    char tmp[256], cmd[4096];
    assert_int_equal(tu_tmpdir_create(tmp, sizeof tmp, "faultcli"), 0);
    const char *common = "--data fmnist --labels 200 --test-limit 100 --model t --threads 1";
    snprintf(cmd, sizeof cmd, "'%s' train %s --epochs 1 --device %s --out '%s/run' >/dev/null 2>'%s/err0'", exe,
             common, spec, tmp, tmp);
    assert_int_equal(sh(cmd), 0);
    char ck[512];
    snprintf(ck, sizeof ck, "%s/run/model.safetensors", tmp);
    size_t n0 = 0, n1 = 0;
    char *before = slurp(ck, &n0);
    assert_non_null(before);
    /* the device fails during the second epoch: exit 1, one line naming the device and the call */
    snprintf(cmd, sizeof cmd,
             "FRUGAL_CL_FAULT=enqueue:40+ '%s' train %s --epochs 2 --device %s --resume '%s' --out '%s/run' "
             ">/dev/null 2>'%s/err1'",
             exe, common, spec, ck, tmp, tmp);
    assert_int_equal(sh(cmd), 1);
    char *err = slurp(tu_path(tmp, "err1"), NULL);
    assert_non_null(err);
    char line[2048];
    last_line(err, line, sizeof line);
    if (!strstr(line, "frugal train: ") || !strstr(line, spec) || !strstr(line, "clEnqueueNDRangeKernel"))
        fail_msg("last line: %s\nstderr:\n%s", line, err);
    free(err);
    /* the checkpoint of epoch 1 is untouched */
    char *after = slurp(ck, &n1);
    assert_non_null(after);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);

    /* nothing builds on the device: every op on the CPU path, the same test accuracy as the CPU backend */
    char out_cpu[256], out_cl[256];
    snprintf(cmd, sizeof cmd, "'%s' train %s --epochs 1 --device cpu 2>/dev/null | grep 'test accuracy' > '%s/cpu'",
             exe, common, tmp);
    assert_int_equal(sh(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "FRUGAL_CL_FAULT=build:1+ '%s' train %s --epochs 1 --device %s 2>'%s/err2' | grep 'test accuracy' > "
             "'%s/cl'",
             exe, common, spec, tmp, tmp);
    assert_int_equal(sh(cmd), 0);
    char *a = slurp(tu_path(tmp, "cpu"), NULL), *b = slurp(tu_path(tmp, "cl"), NULL);
    assert_non_null(a);
    assert_non_null(b);
    snprintf(out_cpu, sizeof out_cpu, "%s", a);
    snprintf(out_cl, sizeof out_cl, "%s", b);
    free(a);
    free(b);
    assert_true(out_cpu[0] != 0);
    assert_string_equal(out_cl, out_cpu);
    err = slurp(tu_path(tmp, "err2"), NULL);
    assert_non_null(err);
    assert_non_null(strstr(err, "does not build"));
    assert_non_null(strstr(err, "fell back to the CPU"));
    free(err);

    /* devices --precompile: exit 1, each failing program on stderr */
    snprintf(cmd, sizeof cmd,
             "FRUGAL_CL_FAULT=build:3 '%s' devices --precompile --device %s >'%s/out3' 2>'%s/err3'", exe, spec, tmp,
             tmp);
    assert_int_equal(sh(cmd), 1);
    err = slurp(tu_path(tmp, "err3"), NULL);
    char *out = slurp(tu_path(tmp, "out3"), NULL);
    assert_non_null(err);
    assert_non_null(out);
    assert_non_null(strstr(err, "FRUGAL_CL_FAULT"));
    assert_non_null(strstr(err, "1 of"));
    assert_non_null(strstr(out, "1 FAILED"));
    free(err);
    free(out);
    tu_tmpdir_remove(tmp);
}

int main(void)
{
    exe = getenv("FRUGAL_EXE");
    struct fr_device_info *devs;
    int n = 0;
    fr_opencl_list_devices(&devs, &n);
    for (int i = 0; i < n && !spec[0]; i++)
        if (devs[i].usable) {
            snprintf(spec, sizeof spec, "%s", devs[i].spec);
            plat = devs[i].platform;
            dev = devs[i].device;
        }
    fr_opencl_free_devices(devs);
    if (!spec[0]) {
        printf("SKIPPED: test_fault: no usable OpenCL device\n");
        return 77;
    }
    printf("# fault injection on %s\n", spec);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault_rules),        cmocka_unit_test(test_build_failure_falls_back),
        cmocka_unit_test(test_alloc_failure),      cmocka_unit_test(test_oom_batch_hint),
        cmocka_unit_test(test_runtime_failures),   cmocka_unit_test(test_precompile_report),
        cmocka_unit_test(test_cli_failure_mid_run),
    };
    return cmocka_run_group_tests(tests, setup, tu_cpu_teardown);
}
#else
int main(void)
{
    printf("SKIPPED: test_fault: this build has no OpenCL\n");
    return 77;
}
#endif
