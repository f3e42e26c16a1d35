/* Tests of `frugal bench`: the JSON schema, --compare on fixed reports, the correctness flag on a perturbed
 * result, and quick runs with a tiny time budget on the CPU path and on the first OpenCL device. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

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
    assert_non_null(find(r, "gemm 256x256x256 % of peak", "%"));
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
    assert_non_null(strstr(s, "1 flagged"));
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
    fr_bench_report_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_parse),       cmocka_unit_test(test_json_schema),
        cmocka_unit_test(test_compare),           cmocka_unit_test(test_perturbed_flagged),
        cmocka_unit_test(test_quick_cpu),         cmocka_unit_test(test_quick_opencl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
