/* Reductions and softmax on the CPU path: hand-computed values, every axis, strided input, stability. */
#include <math.h>

#include "testutil.h"

#define be tu_cpu /* the suite's shared CPU backend (testutil.h) */

static void test_sum_mean_max_axes(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 3, (int64_t[]){2, 3, 4});
    float xv[24];
    for (int i = 0; i < 24; i++)
        xv[i] = (float)((i * 7) % 11) - 5.0f;
    for (int ax = 0; ax < 3; ax++) {
        float got[12], want_s[12], want_m[12], want_x[12];
        int64_t ne[3] = {2, 3, 4};
        int n = 0;
        for (int i = 0; i < (ax == 0 ? 1 : 2); i++)
            for (int j = 0; j < (ax == 1 ? 1 : 3); j++)
                for (int k = 0; k < (ax == 2 ? 1 : 4); k++, n++) {
                    double s = 0;
                    float mx = -INFINITY;
                    for (int r = 0; r < ne[ax]; r++) {
                        int ii = ax == 0 ? r : i, jj = ax == 1 ? r : j, kk = ax == 2 ? r : k;
                        float v = xv[(ii * 3 + jj) * 4 + kk];
                        s += v;
                        mx = fmaxf(mx, v);
                    }
                    want_s[n] = (float)s;
                    want_m[n] = (float)(s / (double)ne[ax]);
                    want_x[n] = mx;
                }
        tu_run(ctx, be, fr_sum(ctx, x, ax), &x, (const float *[]){xv}, 1, got);
        tu_assert_close(got, want_s, (size_t)n, 1e-6f, 0);
        tu_run(ctx, be, fr_mean(ctx, x, ax - 3), &x, (const float *[]){xv}, 1, got); /* negative axis */
        tu_assert_close(got, want_m, (size_t)n, 1e-6f, 0);
        tu_run(ctx, be, fr_max(ctx, x, ax), &x, (const float *[]){xv}, 1, got);
        tu_assert_close(got, want_x, (size_t)n, 0, 0);
    }
    assert_null(fr_sum(ctx, x, 3));
    fr_ctx_free(ctx);
}

static void test_softmax_stable_and_log(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 2, (int64_t[]){2, 3});
    /* huge logits would overflow exp() without the max subtraction */
    const float xv[] = {1000, 1001, 1002, -1, 0, 1};
    float got[6];
    tu_run(ctx, be, fr_softmax(ctx, x, 1), &x, (const float *[]){xv}, 1, got);
    double e0 = exp(-2.0), e1 = exp(-1.0), z = e0 + e1 + 1.0;
    const float want[] = {(float)(e0 / z), (float)(e1 / z), (float)(1 / z), (float)(e0 / z), (float)(e1 / z), (float)(1 / z)};
    tu_assert_close(got, want, 6, 1e-6f, 1e-5f);
    tu_run(ctx, be, fr_log_softmax(ctx, x, -1), &x, (const float *[]){xv}, 1, got);
    const float wantl[] = {(float)(-2 - log(z)), (float)(-1 - log(z)), (float)(-log(z)), (float)(-2 - log(z)),
                           (float)(-1 - log(z)), (float)(-log(z))};
    tu_assert_close(got, wantl, 6, 1e-5f, 1e-5f);
    /* over axis 0 of a transposed view: columns of the original */
    tu_run(ctx, be, fr_softmax(ctx, fr_transpose(ctx, x, 0, 1), 1), &x, (const float *[]){xv}, 1, got);
    for (int i = 0; i < 3; i++)
        assert_float_equal(got[i * 2] + got[i * 2 + 1], 1.0f, 1e-6f);
    assert_float_equal(got[0], 1.0f, 1e-6f); /* 1000 vs -1 */
    fr_ctx_free(ctx);
}

static void test_sum_to_and_broadcast(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 3, (int64_t[]){2, 3, 4});
    float xv[24], got[3];
    for (int i = 0; i < 24; i++)
        xv[i] = (float)i;
    tu_run(ctx, be, fr_sum_to(ctx, x, 2, (int64_t[]){3, 1}), &x, (const float *[]){xv}, 1, got);
    for (int j = 0; j < 3; j++) {
        float s = 0;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 4; k++)
                s += xv[(i * 3 + j) * 4 + k];
        assert_float_equal(got[j], s, 0);
    }
    struct fr_tensor *r = tu_tensor_f32(ctx, 1, (int64_t[]){4});
    const float rv[] = {1, 2, 3, 4};
    float g2[12];
    tu_run(ctx, be, fr_cont(ctx, fr_broadcast_to(ctx, r, 2, (int64_t[]){3, 4})), &r, (const float *[]){rv}, 1, g2);
    for (int i = 0; i < 12; i++)
        assert_float_equal(g2[i], rv[i % 4], 0);
    fr_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_mean_max_axes),
        cmocka_unit_test(test_softmax_stable_and_log),
        cmocka_unit_test(test_sum_to_and_broadcast),
    };
    setenv("FRUGAL_GUARD", "1", 1);
    return cmocka_run_group_tests_name("reduce", tests, tu_cpu_setup, tu_cpu_teardown);
}
