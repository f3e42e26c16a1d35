/* Elementwise ops on the CPU path: hand-computed values, broadcasting, odd sizes, strided views, errors. */
#include <math.h>

#include "testutil.h"

#define be tu_cpu /* the suite's shared CPU backend (testutil.h) */

static void test_add_sub_mul_div_same_shape(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *a = tu_tensor_f32(ctx, 2, (int64_t[]){2, 3}), *b = tu_tensor_f32(ctx, 2, (int64_t[]){2, 3});
    const float av[] = {1, 2, 3, 4, 5, 6}, bv[] = {2, 4, 8, -1, 0.5f, 3};
    const float *in[] = {av, bv};
    struct fr_tensor *ops[4] = {fr_add(ctx, a, b), fr_sub(ctx, a, b), fr_mul(ctx, a, b), fr_div(ctx, a, b)};
    const float want[4][6] = {{3, 6, 11, 3, 5.5f, 9}, {-1, -2, -5, 5, 4.5f, 3}, {2, 8, 24, -4, 2.5f, 18},
                              {0.5f, 0.5f, 0.375f, -4, 10, 2}};
    for (int k = 0; k < 4; k++) {
        float got[6];
        tu_run(ctx, be, ops[k], (struct fr_tensor *[]){a, b}, in, 2, got);
        tu_assert_close(got, want[k], 6, 0, 0);
    }
    fr_ctx_free(ctx);
}

static void test_broadcast_row_col_scalar(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    /* [3,1] + [4] -> [3,4]; [2,3,4] * [1] */
    struct fr_tensor *col = tu_tensor_f32(ctx, 2, (int64_t[]){3, 1}), *row = tu_tensor_f32(ctx, 1, (int64_t[]){4});
    const float cv[] = {10, 20, 30}, rv[] = {1, 2, 3, 4};
    float got[12];
    tu_run(ctx, be, fr_add(ctx, col, row), (struct fr_tensor *[]){col, row}, (const float *[]){cv, rv}, 2, got);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            assert_float_equal(got[i * 4 + j], cv[i] + rv[j], 0);
    struct fr_tensor *x = tu_tensor_f32(ctx, 3, (int64_t[]){2, 3, 4}), *s = tu_tensor_f32(ctx, 1, (int64_t[]){1});
    float xv[24], sv[] = {-2}, got2[24];
    for (int i = 0; i < 24; i++)
        xv[i] = (float)i;
    tu_run(ctx, be, fr_mul(ctx, x, s), (struct fr_tensor *[]){x, s}, (const float *[]){xv, sv}, 2, got2);
    for (int i = 0; i < 24; i++)
        assert_float_equal(got2[i], -2.0f * i, 0);
    /* middle-dim broadcast [2,1,4] - [3,1] -> [2,3,4] */
    struct fr_tensor *p = tu_tensor_f32(ctx, 3, (int64_t[]){2, 1, 4}), *q = tu_tensor_f32(ctx, 2, (int64_t[]){3, 1});
    float pv[8], qv[3] = {1, 2, 3}, got3[24];
    for (int i = 0; i < 8; i++)
        pv[i] = (float)(i * i);
    tu_run(ctx, be, fr_sub(ctx, p, q), (struct fr_tensor *[]){p, q}, (const float *[]){pv, qv}, 2, got3);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                assert_float_equal(got3[(i * 3 + j) * 4 + k], pv[i * 4 + k] - qv[j], 0);
    fr_ctx_free(ctx);
}

static void test_odd_sizes_large(void **state)
{
    (void)state;
    /* bigger than one threading chunk, not a multiple of anything */
    const int64_t n = 100003;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *a = tu_tensor_f32(ctx, 1, &n);
    float *av = tu_guard_alloc(n * sizeof(float)), *got = tu_guard_alloc(n * sizeof(float));
    tu_fill_uniform(av, (size_t)n, 1, -3, 3);
    tu_run(ctx, be, fr_relu(ctx, fr_scale_add(ctx, a, 2.0f, 0.5f)), &a, (const float *[]){av}, 1, got);
    for (int64_t i = 0; i < n; i++)
        assert_float_equal(got[i], fmaxf(0.0f, 2.0f * av[i] + 0.5f), 0);
    tu_guard_free(av);
    tu_guard_free(got);
    fr_ctx_free(ctx);
}

static void test_strided_views(void **state)
{
    (void)state;
    /* a transposed view [3,2] of a [2,3] tensor and a slice, fed to elementwise ops */
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *a = tu_tensor_f32(ctx, 2, (int64_t[]){2, 3});
    struct fr_tensor *at = fr_transpose(ctx, a, 0, 1);
    struct fr_tensor *b = tu_tensor_f32(ctx, 2, (int64_t[]){3, 2});
    const float av[] = {1, 2, 3, 4, 5, 6}, bv[] = {10, 20, 30, 40, 50, 60};
    float got[6];
    tu_run(ctx, be, fr_add(ctx, at, b), (struct fr_tensor *[]){a, b}, (const float *[]){av, bv}, 2, got);
    const float want[] = {11, 24, 32, 45, 53, 66};
    tu_assert_close(got, want, 6, 0, 0);
    struct fr_tensor *sl = fr_slice(ctx, a, 1, 1, 2); /* columns 1..2 -> [[2,3],[5,6]] */
    float got2[4];
    tu_run(ctx, be, fr_relu(ctx, fr_scale(ctx, sl, -1.0f)), &a, (const float *[]){av}, 1, got2);
    for (int i = 0; i < 4; i++)
        assert_float_equal(got2[i], 0.0f, 0);
    tu_run(ctx, be, fr_scale(ctx, sl, 2.0f), &a, (const float *[]){av}, 1, got2);
    const float want2[] = {4, 6, 10, 12};
    tu_assert_close(got2, want2, 4, 0, 0);
    fr_ctx_free(ctx);
}

static void test_bad_shapes(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *a = tu_tensor_f32(ctx, 2, (int64_t[]){2, 3}), *b = tu_tensor_f32(ctx, 2, (int64_t[]){2, 4});
    assert_null(fr_add(ctx, a, b));
    assert_int_equal(fr_ctx_status(ctx), FR_STATUS_SHAPE);
    assert_non_null(strstr(fr_last_error(), "do not broadcast"));
    /* errors propagate through later constructors and graph_add */
    assert_null(fr_relu(ctx, fr_add(ctx, a, b)));
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_not_equal(fr_graph_add(g, NULL), FR_STATUS_OK);
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_sub_mul_div_same_shape), cmocka_unit_test(test_broadcast_row_col_scalar),
        cmocka_unit_test(test_odd_sizes_large), cmocka_unit_test(test_strided_views),
        cmocka_unit_test(test_bad_shapes),
    };
    setenv("FRUGAL_GUARD", "1", 1);
    return cmocka_run_group_tests_name("elementwise", tests, tu_cpu_setup, tu_cpu_teardown);
}
