/* matmul on the CPU path: all four transpose combinations against a naive double reference, odd sizes. */
#include "testutil.h"

#define be tu_cpu /* the suite's shared CPU backend (testutil.h) */

static void check(int64_t m, int64_t n, int64_t k, bool ta, bool tb)
{
    struct fr_ctx *ctx = fr_ctx_new();
    int64_t as[2] = {ta ? k : m, ta ? m : k}, bs[2] = {tb ? n : k, tb ? k : n};
    struct fr_tensor *a = tu_tensor_f32(ctx, 2, as), *b = tu_tensor_f32(ctx, 2, bs);
    float *av = tu_guard_alloc((size_t)(m * k) * 4), *bv = tu_guard_alloc((size_t)(k * n) * 4);
    float *got = tu_guard_alloc((size_t)(m * n) * 4), *want = tu_guard_alloc((size_t)(m * n) * 4);
    tu_fill_uniform(av, (size_t)(m * k), 3, -1, 1);
    tu_fill_uniform(bv, (size_t)(k * n), 4, -1, 1);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++)
                s += (double)(ta ? av[p * m + i] : av[i * k + p]) * (tb ? bv[j * k + p] : bv[p * n + j]);
            want[i * n + j] = (float)s;
        }
    tu_run(ctx, be, fr_matmul(ctx, a, b, ta, tb), (struct fr_tensor *[]){a, b}, (const float *[]){av, bv}, 2, got);
    tu_assert_close(got, want, (size_t)(m * n), 1e-4f * (float)k, 1e-4f);
    tu_guard_free(av);
    tu_guard_free(bv);
    tu_guard_free(got);
    tu_guard_free(want);
    fr_ctx_free(ctx);
}

static void test_hand_computed(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *a = tu_tensor_f32(ctx, 2, (int64_t[]){2, 3}), *b = tu_tensor_f32(ctx, 2, (int64_t[]){3, 2});
    const float av[] = {1, 2, 3, 4, 5, 6}, bv[] = {7, 8, 9, 10, 11, 12};
    float got[4];
    tu_run(ctx, be, fr_matmul(ctx, a, b, false, false), (struct fr_tensor *[]){a, b}, (const float *[]){av, bv}, 2, got);
    const float want[] = {58, 64, 139, 154};
    tu_assert_close(got, want, 4, 0, 0);
    fr_ctx_free(ctx);
}

static void test_transposes_odd_sizes(void **state)
{
    (void)state;
    const int64_t sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 10, 128}, {129, 31, 257}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++)
            check(sizes[s][0], sizes[s][1], sizes[s][2], t & 1, t & 2);
}

static void test_transposed_view_input(void **state)
{
    (void)state;
    /* a permuted (non-contiguous) operand gets a contiguous copy and the same result */
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *a = tu_tensor_f32(ctx, 2, (int64_t[]){3, 2}), *b = tu_tensor_f32(ctx, 2, (int64_t[]){3, 2});
    const float av[] = {1, 4, 2, 5, 3, 6}, bv[] = {7, 8, 9, 10, 11, 12};
    float got[4];
    tu_run(ctx, be, fr_matmul(ctx, fr_transpose(ctx, a, 0, 1), b, false, false), (struct fr_tensor *[]){a, b},
           (const float *[]){av, bv}, 2, got);
    const float want[] = {58, 64, 139, 154};
    tu_assert_close(got, want, 4, 0, 0);
    assert_null(fr_matmul(ctx, a, b, false, false)); /* inner sizes 2 vs 3 */
    assert_non_null(strstr(fr_last_error(), "inner sizes"));
    fr_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_transposes_odd_sizes),
        cmocka_unit_test(test_transposed_view_input),
    };
    setenv("FRUGAL_GUARD", "1", 1);
    return cmocka_run_group_tests_name("matmul", tests, tu_cpu_setup, tu_cpu_teardown);
}
