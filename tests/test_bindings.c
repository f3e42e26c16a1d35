/* The flat calls for language bindings (include/frugal/bindings.h) against the structured API they wrap. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

#include "testutil.h"
#include "frugal/bench.h"
#include "frugal/bindings.h"
#include "frugal/recipes.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return tu_tmpdir_create(tmpdir, sizeof tmpdir, "bindings");
}

static int teardown(void **state)
{
    (void)state;
    return tu_tmpdir_remove(tmpdir);
}

static void test_devices_json_lists_the_cpu_and_every_opencl_device(void **state)
{
    (void)state;
    char *js = NULL;
    assert_int_equal(fr_devices_json(&js), FR_STATUS_OK);
    cJSON *root = cJSON_Parse(js);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "frugal_version")->valuestring, fr_version());
    cJSON *list = cJSON_GetObjectItem(root, "devices");
    struct fr_device_info *d = NULL;
    int n = 0;
    assert_int_equal(fr_opencl_list_devices(&d, &n), FR_STATUS_OK);
    assert_int_equal(cJSON_GetArraySize(list), 1 + n);
    cJSON *cpu = cJSON_GetArrayItem(list, 0);
    assert_string_equal(cJSON_GetObjectItem(cpu, "spec")->valuestring, "cpu");
    assert_true(cJSON_GetObjectItem(cpu, "threads")->valueint >= 1);
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_GetArrayItem(list, i + 1);
        assert_string_equal(cJSON_GetObjectItem(o, "spec")->valuestring, d[i].spec);
        assert_string_equal(cJSON_GetObjectItem(o, "name")->valuestring, d[i].name);
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(o, "usable")), d[i].usable);
    }
    fr_opencl_free_devices(d);
    cJSON_Delete(root);
    fr_free(js);
    fr_free(NULL);
}

static void test_backend_open_threads_gives_its_own_pool(void **state)
{
    (void)state;
    struct fr_backend *be = NULL;
    assert_int_equal(fr_backend_open_threads("cpu", 1, &be), FR_STATUS_OK);
    assert_int_equal(fr_backend_cpu_threads(be), 1);
    fr_backend_free(be);
    assert_int_equal(fr_backend_open_threads("cpu", 3, &be), FR_STATUS_OK);
    assert_int_equal(fr_backend_cpu_threads(be), 3);
    fr_backend_free(be);
    assert_int_not_equal(fr_backend_open_threads("cl:9:9", 1, &be), FR_STATUS_OK);
    assert_non_null(strstr(fr_last_error(), "cl:9:9"));
}

static void test_net_info_and_evaluate_u8_match_a_count_by_hand(void **state)
{
    (void)state;
    struct fr_backend *be = fr_backend_cpu_new(1);
    char *names[3] = {"ant", "bee", "cat"};
    struct fr_net *net = NULL;
    assert_int_equal(fr_net_new(be, "t", 1, 8, 8, 3, names, 5, &net), FR_STATUS_OK);
    int c, h, w, k;
    fr_net_info(net, &c, &h, &w, &k);
    assert_true(c == 1 && h == 8 && w == 8 && k == 3);
    assert_string_equal(fr_net_class_name(net, 1), "bee");
    assert_string_equal(fr_net_class_name(net, 3), "");
    assert_string_equal(fr_net_arch_name(net), "t");

    enum { N = 12 };
    uint8_t img[N * 64];
    float f[N * 64];
    tu_fill_uniform(f, N * 64, 7, 0, 256);
    for (int i = 0; i < N * 64; i++)
        img[i] = (uint8_t)f[i];
    int32_t labels[N] = {0, 1, 2, -1, 0, 1, 2, 0, -1, 1, 2, 0};
    float logits[N * 3];
    assert_int_equal(fr_net_predict_u8(net, img, N, logits), FR_STATUS_OK);
    double loss = 0;
    int64_t used = 0, correct = 0, conf[9] = {0};
    for (int i = 0; i < N; i++) {
        if (labels[i] < 0)
            continue;
        const float *z = logits + 3 * i;
        int best = z[1] > z[0] ? 1 : 0;
        best = z[2] > z[best] ? 2 : best;
        double mx = z[best], se = exp(z[0] - mx) + exp(z[1] - mx) + exp(z[2] - mx);
        loss += log(se) - (z[labels[i]] - mx);
        correct += best == labels[i];
        conf[labels[i] * 3 + best]++;
        used++;
    }
    double acc, l, per[3];
    int64_t n_used, confusion[9];
    assert_int_equal(fr_net_evaluate_u8(net, img, labels, N, &acc, &l, &n_used, per, confusion), FR_STATUS_OK);
    assert_int_equal(n_used, used);
    assert_true(fabs(acc - (double)correct / (double)used) < 1e-12);
    assert_true(fabs(l - loss / (double)used) < 1e-6);
    assert_memory_equal(confusion, conf, sizeof conf);
    for (int i = 0; i < 3; i++) {
        int64_t row = conf[3 * i] + conf[3 * i + 1] + conf[3 * i + 2];
        assert_true(fabs(per[i] - (double)conf[4 * i] / (double)row) < 1e-12);
    }
    /* NULL outputs are allowed; a label beyond the classes is an error naming it */
    assert_int_equal(fr_net_evaluate_u8(net, img, labels, N, &acc, NULL, NULL, NULL, NULL), FR_STATUS_OK);
    labels[0] = 3;
    assert_int_not_equal(fr_net_evaluate_u8(net, img, labels, N, &acc, &l, NULL, NULL, NULL), FR_STATUS_OK);
    assert_non_null(strstr(fr_last_error(), "label 3"));
    fr_net_free(net);
    fr_backend_free(be);
}

static void test_dataset_open_size_converts_and_resizes(void **state)
{
    (void)state;
    const char *cls[2] = {"dog", "cat"};
    for (int c = 0; c < 2; c++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", tmpdir, cls[c]);
        assert_int_equal(mkdir(dir, 0777), 0);
        for (int i = 0; i < 2; i++) {
            uint8_t px[6 * 6 * 3];
            memset(px, 40 + 100 * c + 10 * i, sizeof px);
            char path[600];
            snprintf(path, sizeof path, "%s/%d.png", dir, i);
            assert_int_equal(fr_aug_write_png(path, px, 6, 6, 3), FR_STATUS_OK);
        }
    }
    char spec[300];
    snprintf(spec, sizeof spec, "folder:%s", tmpdir);
    struct fr_dataset *ds = NULL;
    assert_int_equal(fr_dataset_open_size(spec, 1, 3, 2, 0, &ds), FR_STATUS_OK);
    int64_t n;
    int c, h, w, k;
    fr_dataset_info(ds, &n, &c, &h, &w, &k);
    assert_true(n == 4 && c == 1 && h == 3 && w == 2 && k == 2);
    assert_string_equal(fr_dataset_class_name(ds, 0), "cat"); /* classes sorted by name */
    assert_string_equal(fr_dataset_class_name(ds, 1), "dog");
    assert_string_equal(fr_dataset_class_name(ds, 2), "");
    uint8_t px[4 * 6];
    int32_t lab[4];
    fr_dataset_copy(ds, px, lab);
    /* grey of a grey colour, resized: the same value everywhere */
    const uint8_t want[4] = {140, 150, 40, 50};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lab[i], i < 2 ? 0 : 1);
        for (int j = 0; j < 6; j++)
            assert_int_equal(px[i * 6 + j], want[i]);
    }
    fr_dataset_free(ds);
    assert_int_not_equal(fr_dataset_open_size("folder:/no/such/dir", 0, 0, 0, 0, &ds), FR_STATUS_OK);
    assert_non_null(strstr(fr_last_error(), "/no/such/dir"));
}

static void test_bench_json_is_the_report(void **state)
{
    (void)state;
    char *js = NULL;
    assert_int_equal(fr_bench_json("cpu", "limits", 0.01, 1, 1, NULL, NULL, &js), FR_STATUS_OK);
    cJSON *root = cJSON_Parse(js);
    assert_non_null(root);
    cJSON *figs = cJSON_GetObjectItem(root, "figures");
    assert_true(cJSON_GetArraySize(figs) > 0);
    for (int i = 0; i < cJSON_GetArraySize(figs); i++) {
        cJSON *f = cJSON_GetArrayItem(figs, i);
        assert_string_equal(cJSON_GetObjectItem(f, "suite")->valuestring, "limits");
        assert_string_equal(cJSON_GetObjectItem(f, "device")->valuestring, "cpu");
    }
    cJSON_Delete(root);
    fr_free(js);
    fr_set_threads(0);
    assert_int_equal(fr_bench_json("cpu", "nosuch", 0, 0, 0, NULL, NULL, &js), FR_STATUS_INVALID_ARGUMENT);
    assert_null(js);
    assert_non_null(strstr(fr_last_error(), "nosuch"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_devices_json_lists_the_cpu_and_every_opencl_device),
        cmocka_unit_test(test_backend_open_threads_gives_its_own_pool),
        cmocka_unit_test(test_net_info_and_evaluate_u8_match_a_count_by_hand),
        cmocka_unit_test(test_dataset_open_size_converts_and_resizes),
        cmocka_unit_test(test_bench_json_is_the_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
