/* Tests of `frugal bench`: the JSON schema, --compare on fixed reports, the correctness flag on a perturbed
 * result, the table's wording (faster/slower, threads, duplicate devices, the correctness line), the CLI's
 * flag checks, and quick runs with a tiny time budget on the CPU path and on the first OpenCL device
 * (per-op device times and the profile of a training step included). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <sys/wait.h>

#include "frugal/bench.h"
#include "frugal/device.h"
#include "testutil.h"

static void data_path(char *buf, size_t size, const char *name)
{
    const char *cl = getenv("FRUGAL_CL_PATH");
    snprintf(buf, size, "%s/../tests/data/%s", cl ? cl : "cl", name);
}

static struct fr_bench_report *run_tiny(const char *spec, unsigned suites)
{
    struct fr_bench_opts o;
    fr_bench_opts_init(&o);
    o.suites = suites;
    o.seconds = 0.001; /* tiny budget: one call per batch */
    o.repeat = 1;
    struct fr_bench_report *r = NULL;
    const char *specs[1] = {spec};
    enum fr_status st = fr_bench_run(specs, 1, &o, &r);
    if (st != FR_STATUS_OK)
        fail_msg("bench on %s: %s", spec, fr_last_error());
    return r;
}

static const struct fr_bench_figure *find(const struct fr_bench_report *r, const char *prefix, const char *unit)
{
    for (int i = 0; i < r->n_figures; i++)
        if (strncmp(r->figures[i].name, prefix, strlen(prefix)) == 0 && strcmp(r->figures[i].unit, unit) == 0)
            return &r->figures[i];
    return NULL;
}

/* every figure finite and non-negative, with a unit, device and method; nothing flagged */
static void check_sane(const struct fr_bench_report *r, const char *spec)
{
    assert_true(r->n_figures > 0);
    for (int i = 0; i < r->n_figures; i++) {
        const struct fr_bench_figure *f = &r->figures[i];
        if (!isfinite(f->value) || f->value < 0)
            fail_msg("%s: %s = %g", spec, f->name, f->value);
        assert_true(f->unit[0] && f->method[0]);
        assert_string_equal(f->device, spec);
        if (f->flagged)
            fail_msg("%s: %s flagged: rel error %g > %g", spec, f->name, f->max_rel_err, f->tol);
    }
    assert_int_equal(r->n_flagged, 0);
    if (r->n_failed)
        fail_msg("%s: %d item(s) failed:\n%s", spec, r->n_failed, r->notes);
    /* a share of a measured peak above 100% is no figure (the data stayed in cache): it is a note */
    for (int i = 0; i < r->n_figures; i++)
        if (strstr(r->figures[i].name, "% of peak") && r->figures[i].value > 100.0)
            fail_msg("%s: %s = %g%%", spec, r->figures[i].name, r->figures[i].value);
}

/* a report from JSON text (through a temporary file, as --compare reads them) */
static struct fr_bench_report *report_from(const char *json)
{
    char path[] = "/tmp/test_bench_rep_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs(json, fp);
    fclose(fp);
    struct fr_bench_report *r = NULL;
    if (fr_bench_load_json(path, &r) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    remove(path);
    return r;
}

/* the row of `label` in the table: from the label to the end of its line */
static void row_of(const char *table, const char *label, char *buf, size_t size)
{
    const char *p = strstr(table, label);
    if (!p)
        fail_msg("no row '%s' in:\n%s", label, table);
    size_t n = strcspn(p, "\n");
    snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), p);
}

/* Finding 42: a ratio says which way it goes (a latency 2000x higher is 2000x slower, not "2000x"), shares
 * and counts get none, and the correctness line counts only devices compared with the CPU path. */
static void test_table_wording(void **state)
{
    (void)state;
    struct fr_bench_report *r = report_from(
        "{\"devices\": [{\"spec\": \"cpu\"}, {\"spec\": \"cl:0:0\"}], \"figures\": ["
        "{\"suite\": \"limits\", \"name\": \"graph run latency\", \"value\": 0.025, \"unit\": \"us\", \"device\": \"cpu\"},"
        "{\"suite\": \"limits\", \"name\": \"graph run latency\", \"value\": 50, \"unit\": \"us\", \"device\": \"cl:0:0\"},"
        "{\"suite\": \"limits\", \"name\": \"bandwidth\", \"value\": 10, \"unit\": \"GB/s\", \"device\": \"cpu\"},"
        "{\"suite\": \"limits\", \"name\": \"bandwidth\", \"value\": 25, \"unit\": \"GB/s\", \"device\": \"cl:0:0\"},"
        "{\"suite\": \"ops\", \"name\": \"conv time\", \"value\": 2, \"unit\": \"ms\", \"device\": \"cpu\"},"
        "{\"suite\": \"ops\", \"name\": \"conv time\", \"value\": 1, \"unit\": \"ms\", \"device\": \"cl:0:0\","
        " \"max_abs_err\": 0, \"max_rel_err\": 0, \"tolerance\": 1e-4, \"flagged\": false},"
        "{\"suite\": \"ops\", \"name\": \"conv % of peak\", \"value\": 40, \"unit\": \"%\", \"device\": \"cpu\"},"
        "{\"suite\": \"ops\", \"name\": \"conv % of peak\", \"value\": 10, \"unit\": \"%\", \"device\": \"cl:0:0\"},"
        "{\"suite\": \"ops\", \"name\": \"step launches\", \"value\": 39, \"unit\": \"launches\", \"device\": \"cpu\"},"
        "{\"suite\": \"ops\", \"name\": \"step launches\", \"value\": 78, \"unit\": \"launches\", \"device\": \"cl:0:0\"}"
        "]}");
    char *s = fr_bench_format(r, FR_BENCH_FMT_TABLE);
    char row[256];
    row_of(s, "graph run latency [us]", row, sizeof row);
    assert_non_null(strstr(row, "50.00 (2000x slower)"));
    row_of(s, "bandwidth [GB/s]", row, sizeof row);
    assert_non_null(strstr(row, "25.00 (2.50x faster)"));
    row_of(s, "conv time [ms]", row, sizeof row);
    assert_non_null(strstr(row, "1.00 (2.00x faster)"));
    row_of(s, "conv % of peak [%]", row, sizeof row);
    assert_null(strchr(row, 'x'));
    row_of(s, "step launches [launches]", row, sizeof row);
    assert_null(strstr(row, "faster"));
    assert_null(strstr(row, "slower"));
    assert_non_null(strstr(s, "correctness vs the CPU path: 1 figures checked, 0 flagged"));
    free(s);
    fr_bench_report_free(r);

    /* only the CPU path ran: its figures are their own reference, nothing was compared */
    r = report_from("{\"devices\": [{\"spec\": \"cpu\"}], \"figures\": ["
                    "{\"suite\": \"ops\", \"name\": \"conv\", \"value\": 2, \"unit\": \"GFLOP/s\", \"device\": \"cpu\","
                    " \"max_abs_err\": 0, \"max_rel_err\": 0, \"tolerance\": 1e-4, \"flagged\": false}]}");
    s = fr_bench_format(r, FR_BENCH_FMT_TABLE);
    assert_null(strstr(s, "figures checked"));
    assert_non_null(strstr(s, "only the CPU path ran"));
    free(s);
    fr_bench_report_free(r);
}

/* "1 thread", and a device named twice is benchmarked once */
static void test_devices_once(void **state)
{
    (void)state;
    char **specs;
    int n;
    assert_int_equal(fr_bench_device_list("cpu,cpu", &specs, &n), FR_STATUS_OK);
    assert_int_equal(n, 1);
    free(specs[0]);
    free(specs);
    assert_int_equal(fr_bench_device_list("all,cpu", &specs, &n), FR_STATUS_OK);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            assert_string_not_equal(specs[i], specs[j]);
    for (int i = 0; i < n; i++)
        free(specs[i]);
    free(specs);
    struct fr_bench_opts o;
    fr_bench_opts_init(&o);
    o.suites = FR_BENCH_QUICK_FLAG; /* no suite: just the device description */
    o.threads = 1;
    struct fr_bench_report *r = NULL;
    const char *one[1] = {"cpu"};
    assert_int_equal(fr_bench_run(one, 1, &o, &r), FR_STATUS_OK);
    assert_string_equal(r->devices[0].name, "pure-C CPU path, 1 thread");
    fr_bench_report_free(r);
    fr_set_threads(0);
}

/* Finding 14: --repeat 0 and --seconds nan are refused (exit 2, the flag named), not run with defaults */
static void test_cli_flags(void **state)
{
    (void)state;
    const char *exe = getenv("FRUGAL_EXE");
    if (!exe)
        skip();
    const char *bad[] = {"--repeat 0", "--repeat 65", "--seconds nan", "--seconds 0", "--seconds -1", "--threads -2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[2048], out[512] = "";
        snprintf(cmd, sizeof cmd, "'%s' bench --suite limits --device cpu %s 2>&1", exe, bad[i]);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        int status = pclose(p);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 2)
            fail_msg("bench %s: exit %d: %s", bad[i], WEXITSTATUS(status), out);
        char flag[32];
        snprintf(flag, sizeof flag, "%.*s", (int)strcspn(bad[i], " "), bad[i]);
        assert_non_null(strstr(out, flag));
        assert_null(strstr(out, "== limits ==")); /* nothing ran */
    }
}

static void test_suite_parse(void **state)
{
    (void)state;
    unsigned m = 0;
    assert_true(fr_bench_suite_parse("ops", &m));
    assert_int_equal(m, FR_BENCH_OPS);
    assert_true(fr_bench_suite_parse("quick", &m));
    assert_true(m & FR_BENCH_QUICK_FLAG);
    assert_true((m & FR_BENCH_FULL) == FR_BENCH_FULL);
    assert_false(fr_bench_suite_parse("fast", &m));
    /* comma lists: named suites, "quick" sets the sizes only */
    assert_true(fr_bench_suite_parse("quick,ops,train", &m));
    assert_int_equal(m, FR_BENCH_OPS | FR_BENCH_TRAIN | FR_BENCH_QUICK_FLAG);
    assert_true(fr_bench_suite_parse("ops,augment", &m));
    assert_int_equal(m, FR_BENCH_OPS | FR_BENCH_AUGMENT);
    assert_false(fr_bench_suite_parse("ops,bogus", &m));
    assert_false(fr_bench_suite_parse("ops,", &m));
    assert_false(fr_bench_suite_parse("", &m));
    char **specs;
    int n;
    assert_int_equal(fr_bench_device_list("cpu,cl:0:0", &specs, &n), FR_STATUS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(specs[0], "cpu");
    assert_string_equal(specs[1], "cl:0:0");
    for (int i = 0; i < n; i++)
        free(specs[i]);
    free(specs);
    assert_int_equal(fr_bench_device_list("all", &specs, &n), FR_STATUS_OK);
    assert_true(n >= 1);
    assert_string_equal(specs[0], "cpu");
    for (int i = 0; i < n; i++)
        free(specs[i]);
    free(specs);
}

/* the JSON of a real run: build info at the top, every figure with value, unit, device, method */
static void test_json_schema(void **state)
{
    (void)state;
    struct fr_bench_report *r = run_tiny("cpu", FR_BENCH_LIMITS | FR_BENCH_OPS | FR_BENCH_QUICK_FLAG);
    char *s = fr_bench_format(r, FR_BENCH_FMT_JSON);
    assert_non_null(s);
    cJSON *root = cJSON_Parse(s);
    assert_non_null(root);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(root, "frugal_version")));
    assert_string_equal(cJSON_GetObjectItem(root, "frugal_version")->valuestring, fr_version());
    assert_true(cJSON_IsString(cJSON_GetObjectItem(root, "build_options")));
    assert_non_null(strstr(cJSON_GetObjectItem(root, "build_options")->valuestring, "opencl="));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(root, "date")));
    cJSON *devs = cJSON_GetObjectItem(root, "devices");
    assert_int_equal(cJSON_GetArraySize(devs), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(devs, 0), "spec")->valuestring, "cpu");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetArrayItem(devs, 0), "driver")));
    cJSON *figs = cJSON_GetObjectItem(root, "figures");
    assert_int_equal(cJSON_GetArraySize(figs), r->n_figures);
    int checked = 0;
    cJSON *f;
    cJSON_ArrayForEach(f, figs)
    {
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(f, "value")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(f, "unit")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(f, "device")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(f, "name")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(f, "method")));
        if (cJSON_GetObjectItem(f, "flagged")) {
            checked++;
            assert_true(cJSON_IsNumber(cJSON_GetObjectItem(f, "max_rel_err")));
            assert_true(cJSON_IsNumber(cJSON_GetObjectItem(f, "tolerance")));
        }
    }
    assert_true(checked >= 3);
    /* the figures the issue names are there */
    assert_non_null(find(r, "global memory bandwidth", "GB/s"));
    assert_non_null(find(r, "peak fp32 compute", "GFLOP/s"));
    assert_non_null(find(r, "gemm 256x256x256", "GFLOP/s"));
    /* its share of the peak, or (timed above the peak on a busy machine) a note saying so */
    assert_true(find(r, "gemm 256x256x256 % of peak", "%") ||
                strstr(r->notes, "gemm 256x256x256 runs at"));
    assert_non_null(find(r, "softmax", "GB/s"));
    cJSON_Delete(root);

    /* the same report read back: figures survive the round trip */
    char path[] = "/tmp/test_bench_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs(s, fp);
    fclose(fp);
    struct fr_bench_report *back = NULL;
    assert_int_equal(fr_bench_load_json(path, &back), FR_STATUS_OK);
    assert_int_equal(back->n_figures, r->n_figures);
    for (int i = 0; i < r->n_figures; i++) {
        assert_string_equal(back->figures[i].name, r->figures[i].name);
        assert_true(fabs(back->figures[i].value - r->figures[i].value) <= 1e-9 * fabs(r->figures[i].value) + 1e-12);
    }
    fr_bench_report_free(back);
    remove(path);
    free(s);

    /* CSV: a header and one line per figure; Markdown: one table row per figure of one device */
    s = fr_bench_format(r, FR_BENCH_FMT_CSV);
    int lines = 0;
    for (char *p = s; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, r->n_figures + 1);
    assert_true(strncmp(s, "suite,name,device,value,unit,method,", 36) == 0);
    free(s);
    s = fr_bench_format(r, FR_BENCH_FMT_MARKDOWN);
    assert_non_null(strstr(s, "## ops"));
    assert_non_null(strstr(s, "| gemm 256x256x256 [GFLOP/s] |"));
    free(s);
    fr_bench_report_free(r);
}

static void test_compare(void **state)
{
    (void)state;
    char a[1024], b[1024], bad[1024];
    data_path(a, sizeof a, "bench_old.json");
    data_path(b, sizeof b, "bench_new.json");
    data_path(bad, sizeof bad, "bench_bad.json");
    char *text = NULL;
    int matched = -1;
    if (fr_bench_compare(a, b, &text, &matched) != FR_STATUS_OK)
        fail_msg("%s", fr_last_error());
    assert_int_equal(matched, 3);
    /* 12.5 / 10 on the CPU, 10 / 20 on PoCL, 16 / 8 for the GEMM (flagged in the new report) */
    assert_non_null(strstr(text, "1.250x"));
    assert_non_null(strstr(text, "0.500x"));
    const char *g = strstr(text, "gemm 256x256x256 [GFLOP/s]");
    assert_non_null(g);
    const char *eol = strchr(g, '\n');
    const char *x2 = strstr(g, "2.000x WRONG");
    assert_true(x2 && x2 < eol);
    assert_non_null(strstr(text, "softmax [256,1000] [GB/s]: only in the old report"));
    const char *ce = strstr(text, "cross-entropy fwd+bwd [256,1000] [GB/s]");
    assert_true(ce && strstr(ce, "new") < strchr(ce, '\n'));
    free(text);

    /* a figure without a unit, a missing file */
    assert_int_equal(fr_bench_compare(a, bad, &text, &matched), FR_STATUS_FORMAT);
    assert_non_null(strstr(fr_last_error(), "bench_bad.json"));
    assert_null(text);
    assert_int_equal(fr_bench_compare("/nonexistent/old.json", b, &text, &matched), FR_STATUS_IO);
    assert_non_null(strstr(fr_last_error(), "/nonexistent/old.json"));
}

/* FRUGAL_BENCH_PERTURB=softmax damages that op's result: it, and only it, gets flagged */
static void test_perturbed_flagged(void **state)
{
    (void)state;
    setenv("FRUGAL_BENCH_PERTURB", "softmax", 1);
    struct fr_bench_report *r = run_tiny("cpu", FR_BENCH_OPS | FR_BENCH_QUICK_FLAG);
    unsetenv("FRUGAL_BENCH_PERTURB");
    const struct fr_bench_figure *f = find(r, "softmax", "GB/s");
    assert_non_null(f);
    assert_true(f->checked);
    assert_true(f->flagged);
    assert_true(f->max_rel_err > f->tol);
    assert_int_equal(r->n_flagged, 1);
    const struct fr_bench_figure *g = find(r, "gemm 256x256x256", "GFLOP/s");
    assert_non_null(g);
    assert_true(g->checked && !g->flagged);
    char *s = fr_bench_format(r, FR_BENCH_FMT_TABLE);
    assert_non_null(strstr(s, "(1 flagged)"));
    assert_non_null(strstr(s, "WRONG cpu softmax"));
    free(s);
    fr_bench_report_free(r);
}

static void test_quick_cpu(void **state)
{
    (void)state;
    struct fr_bench_report *r = run_tiny("cpu", FR_BENCH_QUICK);
    check_sane(r, "cpu");
    assert_non_null(find(r, "randaugment", "img/s"));
    assert_non_null(find(r, "cutmix", "img/s"));
    /* per-op times of a several-op item and the profile of a training step (wall clock per node) */
    const struct fr_bench_figure *dt = find(r, "conv2d s.conv2 fwd+bwd N=32 device time", "ms");
    assert_non_null(dt);
    const struct fr_bench_figure *bw = find(r, "conv2d s.conv2 fwd+bwd N=32 | conv2d_bwd_weight", "ms");
    assert_non_null(bw);
    assert_true(bw->value > 0 && bw->value <= dt->value);
    assert_non_null(find(r, "step model s batch 32 | conv2d share", "%"));
    const struct fr_bench_figure *l = find(r, "step model s batch 32 launches", "launches");
    assert_non_null(l);
    assert_true(l->value >= 10); /* every forward, backward and update node of model s */
    assert_null(find(r, "step model s batch 32 smallest launch", "work-items")); /* OpenCL only */
    char *s = fr_bench_format(r, FR_BENCH_FMT_TABLE);
    assert_non_null(strstr(s, "== limits =="));
    assert_non_null(strstr(s, "== augment =="));
    free(s);
    fr_bench_report_free(r);
}

static void test_quick_opencl(void **state)
{
    (void)state;
    struct fr_device_info *d = NULL;
    int n = 0;
    fr_opencl_list_devices(&d, &n);
    char spec[32] = "";
    for (int i = 0; i < n && !spec[0]; i++)
        if (d[i].usable)
            snprintf(spec, sizeof spec, "%s", d[i].spec);
    fr_opencl_free_devices(d);
    if (!spec[0])
        skip();
    struct fr_bench_report *r = run_tiny(spec, FR_BENCH_QUICK);
    check_sane(r, spec);
    /* the raw limits come from cl/bench.cl with profiling events */
    const struct fr_bench_figure *bw = find(r, "global memory bandwidth", "GB/s");
    assert_non_null(bw);
    assert_non_null(strstr(bw->method, "cl-events"));
    assert_non_null(find(r, "host->device transfer", "GB/s"));
    assert_non_null(find(r, "kernel launch latency", "us"));
    assert_non_null(find(r, "program build elementwise.cl, cold", "ms"));
    /* device results were compared with the CPU path */
    const struct fr_bench_figure *g = find(r, "gemm 256x256x256", "GFLOP/s");
    assert_non_null(g);
    assert_true(g->checked);
    assert_true(g->max_rel_err <= g->tol);
    /* per-op device time from profiling events, and the smallest launch of a training step */
    const struct fr_bench_figure *dt = find(r, "conv2d s.conv2 fwd+bwd N=32 device time", "ms");
    assert_non_null(dt);
    assert_non_null(strstr(dt->method, "cl-events"));
    assert_non_null(find(r, "conv2d s.conv2 fwd+bwd N=32 | conv2d_bwd_input", "ms"));
    const struct fr_bench_figure *ml = find(r, "step model s batch 32 smallest launch", "work-items");
    assert_non_null(ml);
    assert_true(ml->value >= 1);
    assert_non_null(find(r, "step model s batch 32 launches below target", "launches"));
    assert_non_null(strstr(r->notes, "smallest launch"));
    fr_bench_report_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_parse),       cmocka_unit_test(test_json_schema),
        cmocka_unit_test(test_compare),           cmocka_unit_test(test_perturbed_flagged),
        cmocka_unit_test(test_table_wording),     cmocka_unit_test(test_devices_once),
        cmocka_unit_test(test_cli_flags),         cmocka_unit_test(test_quick_cpu),
        cmocka_unit_test(test_quick_opencl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
