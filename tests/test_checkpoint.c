/* Checkpoints: tensors + metadata written atomically and read back bit-identically; a failed or torn write never
 * replaces a good checkpoint. */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "frugal/io.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return tu_tmpdir_create(tmpdir, sizeof tmpdir, "ckpt");
}

static int teardown(void **state)
{
    (void)state;
    return tu_tmpdir_remove(tmpdir);
}

struct model {
    struct fr_ctx *ctx;
    struct fr_tensor *w, *m, *step;
};

static void model_new(struct model *md, struct fr_backend *be)
{
    md->ctx = fr_ctx_new();
    md->w = fr_tensor_set_name(fr_tensor_new_4d(md->ctx, FR_F32, 2, 1, 3, 3), "conv1.weight");
    md->m = fr_tensor_set_name(fr_tensor_new_4d(md->ctx, FR_F32, 2, 1, 3, 3), "opt.m.conv1.weight");
    md->step = fr_tensor_set_name(fr_tensor_new_1d(md->ctx, FR_I32, 2), "rng.counters");
    assert_int_equal(fr_ctx_alloc(md->ctx, be, 0), FR_STATUS_OK);
}

static void test_save_load_identical(void **state)
{
    (void)state;
    struct fr_backend *be = fr_backend_cpu_new(1);
    struct model a, b;
    model_new(&a, be);
    model_new(&b, be);
    float w[18], m[18];
    tu_fill_uniform(w, 18, 1, -1, 1);
    tu_fill_uniform(m, 18, 2, -1e-3f, 1e-3f);
    int32_t cnt[2] = {123456789, -5};
    assert_int_equal(fr_tensor_set(a.w, w, sizeof w), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(a.m, m, sizeof m), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(a.step, cnt, sizeof cnt), FR_STATUS_OK);
    struct fr_named_tensor ta[3] = {{NULL, a.w}, {NULL, a.m}, {NULL, a.step}};
    struct fr_named_tensor tb[3] = {{NULL, b.w}, {NULL, b.m}, {NULL, b.step}};
    struct fr_kv meta[4] = {{"epoch", "2"}, {"step", "1875"}, {"split_seed", "42"},
                            {"class_names", "[\"T-shirt/top\",\"Trouser\"]"}};
    char path[512];
    snprintf(path, sizeof path, "%s/ck.safetensors", tmpdir);
    assert_int_equal(fr_checkpoint_save(path, ta, 3, meta, 4), FR_STATUS_OK);
    struct fr_safetensors *st;
    assert_int_equal(fr_checkpoint_load(path, tb, 3, NULL, &st), FR_STATUS_OK);
    assert_string_equal(fr_st_meta(st, "epoch"), "2");
    assert_string_equal(fr_st_meta(st, "step"), "1875");
    assert_string_equal(fr_st_meta(st, "split_seed"), "42");
    assert_string_equal(fr_st_meta(st, "class_names"), "[\"T-shirt/top\",\"Trouser\"]");
    assert_string_equal(fr_st_meta(st, "format"), "pt");
    assert_string_equal(fr_st_meta(st, "frugal.checkpoint"), "1");
    assert_int_equal(fr_st_find(st, "conv1.weight")->ndim, 4);
    fr_st_free(st);
    float g[18];
    int32_t gc[2];
    assert_int_equal(fr_tensor_get(b.w, g, sizeof g), FR_STATUS_OK);
    assert_memory_equal(g, w, sizeof w);
    assert_int_equal(fr_tensor_get(b.m, g, sizeof g), FR_STATUS_OK);
    assert_memory_equal(g, m, sizeof m);
    assert_int_equal(fr_tensor_get(b.step, gc, sizeof gc), FR_STATUS_OK);
    assert_memory_equal(gc, cnt, sizeof cnt);

    /* a second save replaces the first completely */
    w[0] = 99;
    assert_int_equal(fr_tensor_set(a.w, w, sizeof w), FR_STATUS_OK);
    meta[0].value = "3";
    assert_int_equal(fr_checkpoint_save(path, ta, 3, meta, 1), FR_STATUS_OK);
    assert_int_equal(fr_checkpoint_load(path, tb, 3, NULL, &st), FR_STATUS_OK);
    assert_string_equal(fr_st_meta(st, "epoch"), "3");
    assert_null(fr_st_meta(st, "step"));
    fr_st_free(st);
    assert_int_equal(fr_tensor_get(b.w, g, sizeof g), FR_STATUS_OK);
    assert_true(g[0] == 99);

    /* a crash mid-write leaves only a hidden temp file; the checkpoint still loads */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/.ck.safetensors.tmp.abcdef", tmpdir);
    FILE *f = fopen(tmp, "wb");
    fwrite("\x10\0\0\0\0\0\0\0{\"a\":", 1, 13, f);
    fclose(f);
    assert_int_equal(fr_checkpoint_load(path, tb, 3, NULL, NULL), FR_STATUS_OK);
    remove(tmp);

    /* a save that fails (a tensor without storage) leaves the previous checkpoint intact */
    struct fr_ctx *c2 = fr_ctx_new();
    struct fr_tensor *nostore = fr_tensor_set_name(fr_tensor_new_1d(c2, FR_F32, 3), "x");
    struct fr_named_tensor bad[2] = {{NULL, a.w}, {NULL, nostore}};
    assert_int_not_equal(fr_checkpoint_save(path, bad, 2, NULL, 0), FR_STATUS_OK);
    assert_int_equal(fr_checkpoint_load(path, tb, 3, NULL, NULL), FR_STATUS_OK);
    fr_ctx_free(c2);
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        files += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    assert_int_equal(files, 1);

    /* a truncated checkpoint is a clean error naming the file, tensors untouched */
    char trunc[600];
    snprintf(trunc, sizeof trunc, "%s/trunc.safetensors", tmpdir);
    FILE *in = fopen(path, "rb");
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    f = fopen(trunc, "wb");
    fwrite(buf, 1, n - 10, f);
    fclose(f);
    assert_int_equal(fr_tensor_fill_f32(b.w, 5), FR_STATUS_OK);
    assert_int_equal(fr_checkpoint_load(trunc, tb, 3, NULL, NULL), FR_STATUS_FORMAT);
    assert_non_null(strstr(fr_last_error(), "trunc.safetensors"));
    assert_int_equal(fr_tensor_get(b.w, g, sizeof g), FR_STATUS_OK);
    assert_true(g[0] == 5);
    remove(trunc);

    fr_ctx_free(a.ctx);
    fr_ctx_free(b.ctx);
    fr_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_identical),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
