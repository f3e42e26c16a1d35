/* The OpenCL program cache on disk: miss then hit, corrupt and truncated entries rebuilt, an unusable
 * directory that only costs speed, `off`, and keys that change with the version and the source. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frugal/device.h"
#include "frugal_config.h"
#include "testutil.h"
#if FRUGAL_HAVE_OPENCL
#include "opencl/opencl_internal.h"

static char dir[256];
static char spec[32];

/* Opens the device, builds layout.cl and runs a FILL through it (so a cached binary must really
 * work), and returns the cache counters of that one build. */
static struct fr_cl_cache_stats build_once(void)
{
    fr_cl_cache_stats_reset();
    struct fr_backend *b;
    if (fr_backend_open(spec, &b) != FR_STATUS_OK)
        fail_msg("%s: %s", spec, fr_last_error());
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *y = fr_fill(ctx, FR_F32, 1, (int64_t[]){37}, 2.5f);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, b), FR_STATUS_OK);
    if (fr_graph_compute(g) != FR_STATUS_OK)
        fail_msg("compute: %s", fr_last_error());
    float out[37];
    assert_int_equal(fr_tensor_get(y, out, sizeof out), FR_STATUS_OK);
    for (int i = 0; i < 37; i++)
        assert_true(out[i] == 2.5f);
    fr_graph_free(g);
    fr_ctx_free(ctx);
    fr_backend_free(b);
    struct fr_cl_cache_stats s;
    fr_cl_cache_stats_get(&s);
    return s;
}

static int count_entries(const char *d, char *first, size_t size)
{
    DIR *dh = opendir(d);
    if (!dh)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dh))) {
        if (strncmp(e->d_name, "cl-", 3) != 0)
            continue;
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 4, ".bin") != 0)
            continue; /* temp files must never be left behind */
        if (n++ == 0 && first)
            snprintf(first, size, "%s/%s", d, e->d_name);
    }
    closedir(dh);
    return n;
}

static int count_all(const char *d)
{
    DIR *dh = opendir(d);
    if (!dh)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dh)))
        n += e->d_name[0] != '.';
    closedir(dh);
    return n;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/frugal-cache-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    setenv("FRUGAL_CACHE_DIR", dir, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    assert_int_equal(system(cmd), 0);
    fr_cl_cache_set_version(NULL);
    return 0;
}

static void test_miss_then_hit(void **state)
{
    (void)state;
    struct fr_cl_cache_stats s = build_once();
    double cold = s.compile_ms;
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.stored, 1);
    assert_int_equal(count_entries(dir, NULL, 0), 1);
    assert_int_equal(count_all(dir), 1);
    s = build_once();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 0);
    assert_int_equal(s.stored, 0);
    printf("# layout.cl: compiled in %.1f ms, loaded from the cache in %.1f ms\n", cold, s.load_ms);
}

static void corrupt_and_check(long pos_from_end, bool truncate_file)
{
    struct fr_cl_cache_stats s = build_once();
    assert_int_equal(s.stored, 1);
    char path[512];
    assert_int_equal(count_entries(dir, path, sizeof path), 1);
    if (truncate_file) {
        assert_int_equal(truncate(path, 20), 0);
    } else {
        FILE *f = fopen(path, "r+b");
        assert_non_null(f);
        assert_int_equal(fseek(f, -pos_from_end, SEEK_END), 0);
        int c = fgetc(f);
        assert_int_equal(fseek(f, -pos_from_end, SEEK_END), 0);
        fputc(c ^ 0x5a, f);
        fclose(f);
    }
    s = build_once();
    assert_int_equal(s.rejected, 1);
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.stored, 1);
    /* rebuilt entry is good again */
    s = build_once();
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.rejected, 0);
}

static void test_corrupt_payload_rebuilt(void **state)
{
    (void)state;
    corrupt_and_check(100, false);
}

static void test_truncated_rebuilt(void **state)
{
    (void)state;
    corrupt_and_check(0, true);
}

static void test_bad_magic_rebuilt(void **state)
{
    (void)state;
    struct fr_cl_cache_stats s = build_once();
    char path[512];
    assert_int_equal(count_entries(dir, path, sizeof path), 1);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fputs("XX", f);
    fclose(f);
    s = build_once();
    assert_int_equal(s.rejected, 1);
    assert_int_equal(s.misses, 1);
}

/* An unusable cache location only costs speed: everything builds and runs, nothing is stored. */
static void test_unwritable_dir(void **state)
{
    (void)state;
    char file[300], sub[400];
    snprintf(file, sizeof file, "%s/plainfile", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(sub, sizeof sub, "%s/cache", file); /* a directory below a regular file cannot exist */
    setenv("FRUGAL_CACHE_DIR", sub, 1);
    struct fr_cl_cache_stats s = build_once();
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.stored, 0);
    assert_int_equal(s.store_failed, 1);
    s = build_once();
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.misses, 1);

    /* a read-only directory (only meaningful when not running as root, who may write anyway) */
    char ro[300];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    assert_int_equal(mkdir(ro, 0555), 0);
    setenv("FRUGAL_CACHE_DIR", ro, 1);
    s = build_once();
    assert_int_equal(s.misses, 1);
    if (geteuid() != 0) {
        assert_int_equal(s.stored, 0);
        assert_int_equal(s.store_failed, 1);
        assert_int_equal(count_all(ro), 0);
    }
    setenv("FRUGAL_CACHE_DIR", dir, 1);
}

static void test_off(void **state)
{
    (void)state;
    setenv("FRUGAL_CACHE_DIR", "off", 1);
    struct fr_cl_cache_stats s = build_once();
    s = build_once();
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.stored, 0);
    assert_int_equal(s.store_failed, 0);
    setenv("FRUGAL_CACHE_DIR", dir, 1);
    assert_int_equal(count_all(dir), 0);
}

/* A new frugal version (or a changed kernel source) must never reuse an old binary. */
static void test_version_bump(void **state)
{
    (void)state;
    struct fr_cl_cache_stats s = build_once();
    assert_int_equal(s.misses, 1);
    fr_cl_cache_set_version("999.0.0-test");
    s = build_once();
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.misses, 1);
    assert_int_equal(count_entries(dir, NULL, 0), 2);
    fr_cl_cache_set_version(NULL);
    s = build_once();
    assert_int_equal(s.hits, 1);
}

static void test_source_change(void **state)
{
    (void)state;
    struct fr_cl_cache_stats s = build_once();
    assert_int_equal(s.misses, 1);
    /* the same layout.cl with one extra comment line, found first through FRUGAL_CL_PATH */
    char src_dir[300], path[400];
    snprintf(src_dir, sizeof src_dir, "%s/src", dir);
    assert_int_equal(mkdir(src_dir, 0755), 0);
    char *text;
    size_t len;
    assert_int_equal(fr_cl_source_load("layout.cl", &text, &len, NULL, 0), FR_STATUS_OK);
    snprintf(path, sizeof path, "%s/layout.cl", src_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "/* changed */\n%s", text);
    fclose(f);
    free(text);
    const char *old = getenv("FRUGAL_CL_PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("FRUGAL_CL_PATH", src_dir, 1);
    s = build_once();
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.hits, 0);
    if (saved) {
        setenv("FRUGAL_CL_PATH", saved, 1);
        free(saved);
    } else {
        unsetenv("FRUGAL_CL_PATH");
    }
}

/* Unit check of the file format without a device: store, load, flip one byte, load fails and deletes. */
static void test_format_roundtrip(void **state)
{
    (void)state;
    unsigned char key[16], *bin;
    size_t len;
    for (int i = 0; i < 16; i++)
        key[i] = (unsigned char)(i * 7 + 1);
    const unsigned char payload[] = "not really a binary, but bytes";
    fr_cl_cache_stats_reset();
    fr_cl_cache_store(key, payload, sizeof payload);
    assert_true(fr_cl_cache_load(key, &bin, &len));
    assert_int_equal(len, sizeof payload);
    assert_memory_equal(bin, payload, len);
    free(bin);
    key[3] ^= 1;
    assert_false(fr_cl_cache_load(key, &bin, &len)); /* another key: simply absent */
    key[3] ^= 1;
    char path[512];
    assert_true(fr_cl_cache_path(key, path, sizeof path));
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, -3, SEEK_END);
    fputc('#', f);
    fclose(f);
    assert_false(fr_cl_cache_load(key, &bin, &len));
    assert_int_equal(access(path, F_OK), -1); /* deleted */
    struct fr_cl_cache_stats s;
    fr_cl_cache_stats_get(&s);
    assert_int_equal(s.rejected, 1);
}

int main(void)
{
    struct fr_device_info *devs;
    int n;
    fr_opencl_list_devices(&devs, &n);
    spec[0] = 0;
    for (int i = 0; i < n && !spec[0]; i++)
        if (devs[i].usable)
            snprintf(spec, sizeof spec, "%s", devs[i].spec);
    fr_opencl_free_devices(devs);
    const struct CMUnitTest format_only[] = {
        cmocka_unit_test_setup_teardown(test_format_roundtrip, setup, teardown),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_miss_then_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_payload_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_magic_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_bump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_change, setup, teardown),
    };
    if (!spec[0]) {
        printf("SKIPPED (partly): test_cache: no usable OpenCL device; only the file format is tested\n");
        return cmocka_run_group_tests(format_only, NULL, NULL);
    }
    printf("# cache tests on %s\n", spec);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void)
{
    printf("SKIPPED: test_cache: this build has no OpenCL\n");
    return 77;
}
#endif
