/* The graph executor: topological order, the liveness planner (reuse + unchanged results), views,
 * plan once / run many, guard bytes catching an overrun, status codes and error messages. */
#include "testutil.h"

#include "cpu/cpu.h"

#define be tu_cpu /* the suite's shared CPU backend (testutil.h) */

/* a chain of 12 elementwise ops on a 1000-element vector: a naive plan needs 12 buffers, liveness 2 */
static struct fr_tensor *chain(struct fr_ctx *ctx, struct fr_tensor *x)
{
    struct fr_tensor *y = x;
    for (int i = 0; i < 12; i++)
        y = i % 3 == 2 ? fr_relu(ctx, y) : fr_scale_add(ctx, y, 1.5f, (float)i - 4.0f);
    return y;
}

static void test_planner_reuses_memory_and_keeps_results(void **state)
{
    (void)state;
    const int64_t n = 1000;
    float xv[1000], got[1000], want[1000];
    tu_fill_uniform(xv, 1000, 9, -2, 2);
    for (int k = 0; k < n; k++) {
        float y = xv[k];
        for (int i = 0; i < 12; i++)
            y = i % 3 == 2 ? (y > 0 ? y : 0) : 1.5f * y + ((float)i - 4.0f);
        want[k] = y;
    }
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 1, &n);
    struct fr_tensor *y = chain(ctx, x);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    assert_int_equal(fr_graph_n_nodes(g), 13);
    assert_ptr_equal(fr_graph_node(g, 0), x);
    assert_ptr_equal(fr_graph_node(g, 12), y);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    struct fr_graph_stats st;
    fr_graph_get_stats(g, &st);
    assert_true(st.naive_bytes >= 11 * 4000);
    assert_true(st.arena_bytes <= 2 * 4032); /* two live blocks at most */
    assert_int_equal(st.fallback_ops, 0);
    /* plan once, run many: same result every time */
    for (int run = 0; run < 3; run++) {
        assert_int_equal(fr_tensor_set(x, xv, sizeof xv), FR_STATUS_OK);
        assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
        assert_int_equal(fr_tensor_get(y, got, sizeof got), FR_STATUS_OK);
        tu_assert_close(got, want, 1000, 0, 0);
    }
    assert_int_equal(fr_graph_step(g), 3);
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

static void test_diamond_keeps_shared_input_alive(void **state)
{
    (void)state;
    /* y = relu(a) * (relu(a) + 1): the first relu must stay alive until the mul */
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *a = tu_tensor_f32(ctx, 1, (int64_t[]){5});
    struct fr_tensor *r = fr_relu(ctx, a);
    struct fr_tensor *t = r;
    for (int i = 0; i < 4; i++)
        t = fr_scale_add(ctx, t, 1.0f, 0.25f);
    struct fr_tensor *y = fr_mul(ctx, r, t);
    const float av[] = {-1, 0, 1, 2, 3};
    float got[5];
    tu_run(ctx, be, y, &a, (const float *[]){av}, 1, got);
    for (int i = 0; i < 5; i++) {
        float rr = av[i] > 0 ? av[i] : 0;
        assert_float_equal(got[i], rr * (rr + 1.0f), 1e-6f);
    }
    fr_ctx_free(ctx);
}

static void test_reshape_permute_views(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 2, (int64_t[]){2, 6});
    float xv[12], got[12];
    for (int i = 0; i < 12; i++)
        xv[i] = (float)i;
    /* [2,6] -> [2,3,2] -> permute (2,0,1) -> [2,2,3] contiguous */
    struct fr_tensor *v = fr_reshape(ctx, x, 3, (int64_t[]){2, 3, -1});
    assert_int_equal(v->ne[2], 2);
    struct fr_tensor *p = fr_permute(ctx, v, (int[]){2, 0, 1});
    assert_false(fr_is_contiguous(p));
    tu_run(ctx, be, fr_cont(ctx, p), &x, (const float *[]){xv}, 1, got);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 3; c++)
                assert_float_equal(got[(a * 2 + b) * 3 + c], xv[b * 6 + c * 2 + a], 0);
    /* reshape of a non-contiguous view copies first */
    tu_run(ctx, be, fr_reshape(ctx, p, 1, (int64_t[]){12}), &x, (const float *[]){xv}, 1, got);
    assert_float_equal(got[1], xv[2], 0);
    assert_null(fr_reshape(ctx, x, 2, (int64_t[]){5, 2}));
    assert_int_equal(fr_ctx_status(ctx), FR_STATUS_SHAPE);
    assert_null(fr_permute(ctx, x, (int[]){0, 0}));
    fr_ctx_free(ctx);
}

static void test_output_view_is_kept(void **state)
{
    (void)state;
    /* v = reshape(relu(x)) is read after the run while later nodes reuse arena memory */
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 1, (int64_t[]){64});
    struct fr_tensor *v = fr_reshape(ctx, fr_relu(ctx, x), 2, (int64_t[]){8, 8});
    struct fr_tensor *y = v;
    for (int i = 0; i < 6; i++)
        y = fr_scale_add(ctx, y, 2.0f, 1.0f);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, v), FR_STATUS_OK);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    float xv[64], got[64];
    for (int i = 0; i < 64; i++)
        xv[i] = (float)i - 10.0f;
    fr_tensor_set(x, xv, sizeof xv);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(v, got, sizeof got), FR_STATUS_OK);
    for (int i = 0; i < 64; i++)
        assert_float_equal(got[i], xv[i] > 0 ? xv[i] : 0.0f, 0);
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

/* a deliberately bad kernel run by hand: writes one float past its output */
static void test_guard_bytes_catch_overrun(void **state)
{
    (void)state;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = tu_tensor_f32(ctx, 1, (int64_t[]){4});
    struct fr_tensor *y = fr_relu(ctx, x);
    struct fr_graph *g = fr_graph_new(ctx);
    fr_graph_set_guard(g, true);
    fr_graph_add(g, y);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    fr_tensor_fill_f32(x, 1.0f);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    ((float *)fr_tensor_data(y))[4] = 123.0f; /* what an overrunning kernel would do */
    assert_int_equal(fr_graph_compute(g), FR_STATUS_INVALID_ARGUMENT); /* checked after every run */
    assert_non_null(strstr(fr_last_error(), "guard bytes"));
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

static void test_status_strings_and_errors(void **state)
{
    (void)state;
    for (int s = 0; s < FR_STATUS_COUNT; s++)
        assert_true(strlen(fr_status_str((enum fr_status)s)) > 1);
    assert_int_equal(fr_error(FR_STATUS_IO, "%s: cannot open", "x.bin"), FR_STATUS_IO);
    assert_string_equal(fr_last_error(), "x.bin: cannot open");
    struct fr_backend *b = NULL;
    assert_int_equal(fr_backend_open("gpu9", &b), FR_STATUS_INVALID_ARGUMENT);
    assert_null(b);
    assert_int_equal(fr_backend_open("cpu", &b), FR_STATUS_OK);
    assert_string_equal(fr_backend_name(b), "cpu");
    fr_backend_free(b);
    /* computing an unplanned graph is an error, not a crash */
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_graph *g = fr_graph_new(ctx);
    fr_graph_add(g, fr_relu(ctx, tu_tensor_f32(ctx, 1, (int64_t[]){3})));
    assert_int_equal(fr_graph_compute(g), FR_STATUS_INVALID_ARGUMENT);
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planner_reuses_memory_and_keeps_results),
        cmocka_unit_test(test_diamond_keeps_shared_input_alive),
        cmocka_unit_test(test_reshape_permute_views),
        cmocka_unit_test(test_output_view_is_kept),
        cmocka_unit_test(test_guard_bytes_catch_overrun),
        cmocka_unit_test(test_status_strings_and_errors),
    };
    return cmocka_run_group_tests_name("graph", tests, tu_cpu_setup, tu_cpu_teardown);
}
