/* dtype conversion and u8 -> f32 normalisation with per-channel mean/std on the CPU path. */
#include <math.h>

#include "testutil.h"

#define be tu_cpu /* the suite's shared CPU backend (testutil.h) */

static void test_normalize_nchw_u8(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    /* [N=2, C=3, H=1, W=2] u8 */
    struct fr_tensor *x = fr_tensor_set_flags(fr_tensor_new_4d(ctx, FR_U8, 2, 3, 1, 2), FR_FLAG_INPUT);
    const uint8_t xv[12] = {0, 255, 128, 64, 10, 20, 30, 40, 50, 60, 70, 80};
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    struct fr_tensor *y = fr_normalize(ctx, x, 1, 1.0f / 255.0f, mean, std, 3);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(x, xv, sizeof xv), FR_STATUS_OK);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    float got[12];
    assert_int_equal(fr_tensor_get(y, got, sizeof got), FR_STATUS_OK);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            for (int w = 0; w < 2; w++) {
                int i = (n * 3 + c) * 2 + w;
                float want = ((float)xv[i] * (1.0f / 255.0f) - mean[c]) / std[c];
                assert_float_equal(got[i], want, 0); /* same operation order: bit-identical */
            }
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

static void test_convert_round_trip_and_clamp(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 1, (int64_t[]){6});
    const float xv[] = {-3.7f, 0.4f, 0.5f, 1.5f, 254.6f, 300.0f};
    struct fr_tensor *u = fr_convert(ctx, x, FR_U8), *i = fr_convert(ctx, x, FR_I32);
    struct fr_tensor *back = fr_convert(ctx, u, FR_F32);
    struct fr_graph *g = fr_graph_new(ctx);
    fr_graph_add(g, back);
    fr_graph_add(g, i);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    fr_tensor_set(x, xv, sizeof xv);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    uint8_t uv[6];
    int32_t iv[6];
    float bv[6];
    fr_tensor_get(u, uv, sizeof uv);
    fr_tensor_get(i, iv, sizeof iv);
    fr_tensor_get(back, bv, sizeof bv);
    const uint8_t want_u[] = {0, 0, 0, 2, 255, 255}; /* round half to even, clamped */
    const int32_t want_i[] = {-3, 0, 0, 1, 254, 300};
    tu_assert_bytes_equal(uv, want_u, 6);
    tu_assert_bytes_equal(iv, want_i, sizeof want_i);
    for (int k = 0; k < 6; k++)
        assert_float_equal(bv[k], (float)want_u[k], 0);
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

static void test_normalize_errors(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = fr_tensor_new_4d(ctx, FR_U8, 1, 3, 2, 2);
    const float m[3] = {0, 0, 0}, s[3] = {1, 0, 1};
    assert_null(fr_normalize(ctx, x, 1, 1.0f, m, s, 3));
    assert_non_null(strstr(fr_last_error(), "std[1]"));
    assert_null(fr_normalize(ctx, x, 1, 1.0f, m, m, 2));
    fr_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_nchw_u8),
        cmocka_unit_test(test_convert_round_trip_and_clamp),
        cmocka_unit_test(test_normalize_errors),
    };
    setenv("FRUGAL_GUARD", "1", 1);
    return cmocka_run_group_tests_name("convert", tests, tu_cpu_setup, tu_cpu_teardown);
}
