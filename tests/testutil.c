/* Implementation of the test helpers declared in testutil.h. */
#include "testutil.h"

#include "augment/augment_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frugal/rng_host.h"

#define GUARD 64
#define GUARD_BYTE 0xA5

void *tu_guard_alloc(size_t size)
{
    unsigned char *p = malloc(size + 2 * GUARD + sizeof(size_t));
    assert_non_null(p);
    memcpy(p, &size, sizeof(size_t));
    memset(p + sizeof(size_t), GUARD_BYTE, GUARD);
    memset(p + sizeof(size_t) + GUARD + size, GUARD_BYTE, GUARD);
    memset(p + sizeof(size_t) + GUARD, 0, size);
    return p + sizeof(size_t) + GUARD;
}

void tu_guard_check(const void *q)
{
    const unsigned char *p = (const unsigned char *)q - GUARD - sizeof(size_t);
    size_t size;
    memcpy(&size, p, sizeof(size_t));
    for (size_t i = 0; i < GUARD; i++) {
        if (p[sizeof(size_t) + i] != GUARD_BYTE)
            fail_msg("guard byte %zu before the buffer was overwritten", GUARD - i);
        if (p[sizeof(size_t) + GUARD + size + i] != GUARD_BYTE)
            fail_msg("guard byte %zu after the buffer (size %zu) was overwritten", i, size);
    }
}

void tu_guard_free(void *q)
{
    if (!q)
        return;
    tu_guard_check(q);
    free((unsigned char *)q - GUARD - sizeof(size_t));
}

void tu_assert_close(const float *got, const float *want, size_t n, float atol, float rtol)
{
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(got[i] - want[i]);
        if (!(d <= atol + rtol * fabsf(want[i])) || isnan(got[i]) != isnan(want[i]))
            fail_msg("element %zu: got %.9g, want %.9g (|diff| %.3g > %.3g)", i, got[i], want[i], d,
                     atol + rtol * fabsf(want[i]));
    }
}

void tu_assert_bytes_equal(const void *got, const void *want, size_t n)
{
    const unsigned char *a = got, *b = want;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            fail_msg("byte %zu: got %u, want %u", i, a[i], b[i]);
}

void tu_fill_uniform(float *x, size_t n, uint32_t seed, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * fr_rng_uniform(seed, FR_RNG_INIT, 0, (uint32_t)(i / 4), (uint32_t)(i % 4));
}

struct fr_tensor *tu_tensor_f32(struct fr_ctx *ctx, int ndim, const int64_t *ne)
{
    struct fr_tensor *t = fr_tensor_new(ctx, FR_F32, ndim, ne);
    assert_non_null(t);
    fr_tensor_set_flags(t, FR_FLAG_INPUT);
    return t;
}

void tu_run(struct fr_ctx *ctx, struct fr_backend *backend, struct fr_tensor *out, struct fr_tensor **inputs,
            const float **input_data, int n_inputs, float *res)
{
    assert_non_null(out);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, out), FR_STATUS_OK);
    enum fr_status st = fr_graph_plan(g, backend);
    if (st != FR_STATUS_OK)
        fail_msg("plan: %s", fr_last_error());
    for (int i = 0; i < n_inputs; i++)
        assert_int_equal(fr_tensor_set(inputs[i], input_data[i], fr_nbytes(inputs[i])), FR_STATUS_OK);
    st = fr_graph_compute(g);
    if (st != FR_STATUS_OK)
        fail_msg("compute: %s", fr_last_error());
    assert_int_equal(fr_tensor_get(out, res, (size_t)fr_nelements(out) * sizeof(float)), FR_STATUS_OK);
    fr_graph_free(g);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int tu_tmpdir_create(char *dir, size_t size, const char *tag)
{
    snprintf(dir, size, "/tmp/frugal-test-%s-XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

int tu_tmpdir_remove(const char *dir) { return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

const char *tu_path(const char *dir, const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

struct fr_backend *tu_cpu;

int tu_cpu_setup(void **state)
{
    (void)state;
    tu_cpu = fr_backend_cpu_new(2);
    return tu_cpu ? 0 : -1;
}

int tu_cpu_teardown(void **state)
{
    (void)state;
    fr_backend_free(tu_cpu);
    tu_cpu = NULL;
    return 0;
}

int tu_aug_apply(struct fr_backend *be, const uint8_t *img, int layout, const float *prog, int n, int k, int h, int w,
                 int c, int oh, int ow, uint8_t *out)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = layout == FR_AUG_NHWC ? fr_tensor_new_4d(ctx, FR_U8, n, h, w, c)
                                                : fr_tensor_new_4d(ctx, FR_U8, n, c, h, w);
    fr_tensor_set_flags(x, FR_FLAG_INPUT);
    struct fr_tensor *p = fr_tensor_set_flags(fr_tensor_new(ctx, FR_F32, 3, (int64_t[]){n, k, FR_AUG_REC}), FR_FLAG_INPUT);
    size_t cap = (size_t)n * k * (2 + 2 * (size_t)oh * ow), used = 0;
    int32_t *tabv = be->no_fp64 ? malloc(cap * sizeof(int32_t)) : NULL;
    struct fr_tensor *tab = tabv ? fr_tensor_set_flags(fr_tensor_new_1d(ctx, FR_I32, (int64_t)cap), FR_FLAG_INPUT) : NULL;
    struct fr_tensor *y = fr_aug_apply_tab(ctx, x, p, tab, oh, ow, layout);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(x, img, (size_t)n * h * w * c), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(p, prog, sizeof(float) * n * k * FR_AUG_REC), FR_STATUS_OK);
    if (tabv) {
        assert_int_equal(fr_aug_tables_fill(prog, n, k, h, w, oh, ow, tabv, cap, &used), FR_STATUS_OK);
        assert_int_equal(fr_tensor_set(tab, tabv, used * sizeof(int32_t)), FR_STATUS_OK);
        free(tabv);
    }
    if (fr_graph_compute(g) != FR_STATUS_OK)
        fail_msg("%s: %s", fr_backend_name(be), fr_last_error());
    assert_int_equal(fr_tensor_get(y, out, (size_t)n * oh * ow * c), FR_STATUS_OK);
    struct fr_graph_stats st;
    fr_graph_get_stats(g, &st);
    fr_graph_free(g);
    fr_ctx_free(ctx);
    return st.fallback_ops;
}

uint8_t *tu_read_all(const struct fr_dataset *ds)
{
    size_t isz = (size_t)ds->c * ds->h * ds->w;
    uint8_t *px = malloc(isz * (size_t)ds->n + 1);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)ds->n + 1);
    assert_non_null(px);
    assert_non_null(idx);
    for (int64_t i = 0; i < ds->n; i++)
        idx[i] = i;
    assert_int_equal(fr_dataset_read(ds, idx, ds->n, NULL, px), FR_STATUS_OK);
    for (int64_t i = 0; i < ds->n; i++)
        assert_int_equal(idx[i], i);
    free(idx);
    return px;
}
