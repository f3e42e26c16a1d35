/* Tests for fr_sgemm against a double-precision reference: all transposes, odd sizes, strides, alpha/beta,
 * NaN in C with beta = 0, threads vs one thread, every kernel family this CPU runs, guard bytes after C. */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu_features.h"
#include "core/threadpool.h"
#include "cpu/gemm.h"

static const char *const families[] = {"avx512f", "avx2+fma", "sse2", "neon", "generic"};

struct shape {
    int64_t m, n, k;
};

/* Odd sizes around the tile edges; k past one kc block (256 or 1024 per family), m past one mc block,
 * n past one nc block (2048 or 4096), and a 4 KiB-multiple ldc-like shape (n = 1024). */
static const struct shape shapes[] = {
    {1, 1, 1},      {1, 7, 33},     {7, 1, 129},  {33, 33, 33},   {129, 7, 257},  {257, 129, 33},
    {13, 257, 7},   {100, 100, 1},  {1, 300, 257}, {64, 128, 300}, {300, 50, 600}, {500, 40, 20},
    {3, 4200, 5},   {37, 70, 513},  {17, 45, 1100}, {9, 33, 2100}, {40, 1024, 9}, {3, 4200, 300},
    {3, 2100, 1030},
};

static void fill(float *x, size_t n, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
}

/* element (i,p) of op(A) and (p,j) of op(B) */
static float at_a(const float *a, bool ta, int64_t lda, int64_t i, int64_t p)
{
    return ta ? a[p * lda + i] : a[i * lda + p];
}

static float at_b(const float *b, bool tb, int64_t ldb, int64_t p, int64_t j)
{
    return tb ? b[j * ldb + p] : b[p * ldb + j];
}

/* Runs one case and compares with the double reference, each element within a bound scaled by
 * sum |alpha·a·b| + |beta·c| (float rounding grows with k). */
static void check_case(struct fr_threadpool *pool, bool ta, bool tb, struct shape s, float alpha, float beta,
                       bool nan_c, uint32_t seed, float *out_copy)
{
    int64_t m = s.m, n = s.n, k = s.k;
    int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
    size_t a_len = (size_t)((ta ? k : m) * lda), b_len = (size_t)((tb ? n : k) * ldb);
    size_t c_len = (size_t)((m - 1) * ldc + n); /* exact: the guard starts right after the last element */
    float *a = tu_guard_alloc(a_len * sizeof(float)), *b = tu_guard_alloc(b_len * sizeof(float));
    float *c = tu_guard_alloc(c_len * sizeof(float));
    float *c0 = malloc(c_len * sizeof(float));
    assert_non_null(c0);
    fill(a, a_len, seed);
    fill(b, b_len, seed + 1);
    fill(c, c_len, seed + 2);
    if (nan_c)
        for (size_t i = 0; i < c_len; i++)
            c[i] = NAN;
    memcpy(c0, c, c_len * sizeof(float));
    fr_sgemm(pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double ref = 0.0, mag = 0.0;
            for (int64_t p = 0; p < k; p++) {
                double t = (double)at_a(a, ta, lda, i, p) * (double)at_b(b, tb, ldb, p, j);
                ref += t;
                mag += fabs(t);
            }
            ref *= alpha;
            mag *= fabs(alpha);
            if (beta != 0.0f) {
                ref += (double)beta * c0[i * ldc + j];
                mag += fabs((double)beta * c0[i * ldc + j]);
            }
            double got = c[i * ldc + j];
            if (!(fabs(got - ref) <= 1e-5 * mag + 1e-30))
                fail_msg("%s %c%c m=%lld n=%lld k=%lld alpha=%g beta=%g: C[%lld,%lld] = %.9g, want %.9g",
                         fr_sgemm_kernel_name(), ta ? 't' : 'n', tb ? 't' : 'n', (long long)m, (long long)n,
                         (long long)k, alpha, beta, (long long)i, (long long)j, got, ref);
        }
        /* the gap between rows (ldc > n) is not C: it must be untouched */
        if (i + 1 < m)
            for (int64_t j = n; j < ldc; j++)
                if (memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(float)) != 0)
                    fail_msg("%s: C gap element [%lld,%lld] was written", fr_sgemm_kernel_name(), (long long)i,
                             (long long)j);
    }
    if (out_copy)
        memcpy(out_copy, c, c_len * sizeof(float));
    free(c0);
    tu_guard_free(a);
    tu_guard_free(b);
    tu_guard_free(c);
}

static void for_each_family(void (*fn)(void))
{
    int ran = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        if (!fr_sgemm_set_kernel(families[f]))
            continue;
        fn();
        ran++;
    }
    assert_true(fr_sgemm_set_kernel(NULL));
    assert_true(ran >= 1);
}

static void all_transposes_body(void)
{
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            check_case(NULL, t & 1, t & 2, shapes[s], 1.0f, 0.0f, false, (uint32_t)(s * 4 + t), NULL);
}

static void test_all_transposes_odd_sizes(void **state)
{
    (void)state;
    for_each_family(all_transposes_body);
}

static void alpha_beta_body(void)
{
    static const float ab[][2] = {{1.0f, 1.0f},  {0.5f, 0.0f}, {-1.5f, 0.25f},
                                  {2.0f, -1.0f}, {0.0f, 0.5f}, {0.0f, 0.0f}};
    struct shape s[] = {{33, 70, 300}, {5, 3, 2}, {129, 33, 7}, {10, 40, 1500}};
    for (size_t i = 0; i < sizeof ab / sizeof ab[0]; i++)
        for (size_t j = 0; j < sizeof s / sizeof s[0]; j++)
            for (int t = 0; t < 4; t++)
                check_case(NULL, t & 1, t & 2, s[j], ab[i][0], ab[i][1], false, (uint32_t)(100 + i * 8 + j), NULL);
}

static void test_alpha_beta(void **state)
{
    (void)state;
    for_each_family(alpha_beta_body);
}

static void nan_body(void)
{
    struct shape s[] = {{1, 1, 1}, {40, 33, 300}, {12, 32, 16}, {2, 3, 1000}, {40, 3, 300}};
    for (size_t j = 0; j < sizeof s / sizeof s[0]; j++) {
        check_case(NULL, false, false, s[j], 1.0f, 0.0f, true, (uint32_t)(200 + j), NULL);
        check_case(NULL, true, true, s[j], 0.5f, 0.0f, true, (uint32_t)(210 + j), NULL);
        check_case(NULL, false, true, s[j], 0.0f, 0.0f, true, (uint32_t)(220 + j), NULL);
    }
}

static void test_beta_zero_ignores_nan(void **state)
{
    (void)state;
    for_each_family(nan_body);
}

/* 2 and 3 threads agree with the reference and with one thread (same blocking, so nearly bit-equal). */
static void test_threads_match_single(void **state)
{
    (void)state;
    struct fr_threadpool *p2 = fr_threadpool_new(2), *p3 = fr_threadpool_new(3);
    assert_non_null(p2);
    assert_non_null(p3);
    struct shape s[] = {{257, 129, 300}, {64, 128, 600}, {32, 1000, 9}, {600, 70, 33}, {7, 5000, 3}, {300, 300, 300},
                        {40, 50, 1300}, {300, 9, 500}, {20, 2100, 1100}};
    for (size_t j = 0; j < sizeof s / sizeof s[0]; j++) {
        for (int t = 0; t < 4; t++) {
            size_t c_len = (size_t)((s[j].m - 1) * (s[j].n + 2) + s[j].n);
            float *c1 = malloc(c_len * sizeof(float)), *c2 = malloc(c_len * sizeof(float)),
                  *c3 = malloc(c_len * sizeof(float));
            assert_non_null(c1);
            assert_non_null(c2);
            assert_non_null(c3);
            uint32_t seed = (uint32_t)(300 + j * 4 + t);
            check_case(NULL, t & 1, t & 2, s[j], 1.0f, 0.5f, false, seed, c1);
            check_case(p2, t & 1, t & 2, s[j], 1.0f, 0.5f, false, seed, c2);
            check_case(p3, t & 1, t & 2, s[j], 1.0f, 0.5f, false, seed, c3);
            tu_assert_close(c2, c1, c_len, 1e-4f, 1e-5f);
            tu_assert_close(c3, c1, c_len, 1e-4f, 1e-5f);
            free(c1);
            free(c2);
            free(c3);
        }
    }
    fr_threadpool_free(p2);
    fr_threadpool_free(p3);
}

static void test_simd_names(void **state)
{
    (void)state;
    const char *name = fr_cpu_simd_name();
    bool known = false;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        known |= !strcmp(name, families[f]);
    assert_true(known);
    assert_true(fr_cpu_has_simd(name));
    assert_true(fr_cpu_has_simd("generic"));
    assert_false(fr_cpu_has_simd("no-such-simd"));
    assert_non_null(strstr(fr_cpu_features(), name));
    assert_false(fr_sgemm_set_kernel("no-such-simd"));
    assert_true(fr_sgemm_set_kernel(NULL));
    /* the automatic choice is the widest family the CPU has, unless none of the built kernels matches */
    if (strcmp(name, "neon") && strcmp(name, "generic"))
        assert_string_equal(fr_sgemm_kernel_name(), name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simd_names),
        cmocka_unit_test(test_all_transposes_odd_sizes),
        cmocka_unit_test(test_alpha_beta),
        cmocka_unit_test(test_beta_zero_ignores_nan),
        cmocka_unit_test(test_threads_match_single),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
