/* CutMix/MixUp: label weights equal measured pixel fractions, MixUp pixel arithmetic, Beta(a, a) moments,
 * reproducibility as a function of (seed, step), partner choice. */
#include <math.h>
#include <string.h>

#include "testutil.h"

#include "augment/augment_internal.h"
#include "frugal/augment.h"
#include "frugal/rng_host.h"

enum { N = 16, H = 20, W = 30, C = 3, K = 10 };

static void test_cutmix_label_weights_are_pixel_fractions(void **state)
{
    (void)state;
    static uint8_t in[N * H * W * C], out[N * H * W * C];
    for (int i = 0; i < N; i++)
        memset(in + (size_t)i * H * W * C, 10 + i, (size_t)H * W * C); /* sample i is the constant 10 + i */
    struct fr_aug_mix_cfg cfg = {FR_AUG_MIX_CUTMIX, 1.0, 1.0, 0, 0};
    int mixed = 0;
    for (uint32_t step = 0; step < 8; step++) {
        float rec[N * FR_AUG_MIX_REC];
        assert_int_equal(fr_aug_mix_draw(&cfg, 42, step, N, H, W, rec), FR_STATUS_OK);
        struct fr_aug_images a = {in, FR_U8, FR_AUG_NHWC, N, H, W, C}, b = {out, FR_U8, FR_AUG_NHWC, N, H, W, C};
        assert_int_equal(fr_aug_mix_host(&a, &b, rec), FR_STATUS_OK);
        int32_t labels[N];
        for (int i = 0; i < N; i++)
            labels[i] = i % K;
        float soft[N * K];
        assert_int_equal(fr_aug_mix_labels_host(labels, N, K, rec, soft), FR_STATUS_OK);
        for (int i = 0; i < N; i++) {
            int own = 0, partner = (int)rec[i * FR_AUG_MIX_REC + 1];
            for (int p = 0; p < H * W * C; p++)
                own += out[(size_t)i * H * W * C + p] == 10 + i;
            double frac = (double)own / (H * W * C);
            /* the weight of the own label is exactly the share of own pixels */
            assert_true(fabs(rec[i * FR_AUG_MIX_REC + 2] - frac) < 1e-6);
            double sum = 0;
            for (int k = 0; k < K; k++)
                sum += soft[i * K + k];
            assert_true(fabs(sum - 1) < 1e-6);
            if (labels[partner] != labels[i])
                assert_true(fabs(soft[i * K + labels[i]] - frac) < 1e-6);
            mixed += own < H * W * C;
        }
    }
    assert_true(mixed > N * 8 / 2); /* with p = 1 most samples really got a box */
}

static void test_cutmix_without_area_fix_differs(void **state)
{
    (void)state;
    struct fr_aug_mix_cfg fix = {FR_AUG_MIX_CUTMIX, 1.0, 1.0, 0, 0}, nofix = {FR_AUG_MIX_CUTMIX, 1.0, 1.0, 0, 1};
    float a[N * FR_AUG_MIX_REC], b[N * FR_AUG_MIX_REC];
    fr_aug_mix_draw(&fix, 3, 1, N, H, W, a);
    fr_aug_mix_draw(&nofix, 3, 1, N, H, W, b);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        for (int q = 3; q < 7; q++) /* same boxes */
            assert_true(a[i * FR_AUG_MIX_REC + q] == b[i * FR_AUG_MIX_REC + q]);
        differ += a[i * FR_AUG_MIX_REC + 2] != b[i * FR_AUG_MIX_REC + 2];
    }
    assert_true(differ > 0);
}

static void test_mixup_pixels(void **state)
{
    (void)state;
    static uint8_t in[N * 4], out[N * 4];
    static float fin[N * 4], fout[N * 4];
    for (int i = 0; i < N * 4; i++) {
        in[i] = (uint8_t)(i * 7);
        fin[i] = in[i] / 255.0f;
    }
    struct fr_aug_mix_cfg cfg = {FR_AUG_MIX_MIXUP, 0.4, 1.0, 1, 0};
    float rec[N * FR_AUG_MIX_REC];
    assert_int_equal(fr_aug_mix_draw(&cfg, 9, 0, N, 2, 2, rec), FR_STATUS_OK);
    struct fr_aug_images a = {in, FR_U8, FR_AUG_NCHW, N, 2, 2, 1}, b = {out, FR_U8, FR_AUG_NCHW, N, 2, 2, 1};
    assert_int_equal(fr_aug_mix_host(&a, &b, rec), FR_STATUS_OK);
    struct fr_aug_images fa = {fin, FR_F32, FR_AUG_NCHW, N, 2, 2, 1}, fb = {fout, FR_F32, FR_AUG_NCHW, N, 2, 2, 1};
    assert_int_equal(fr_aug_mix_host(&fa, &fb, rec), FR_STATUS_OK);
    for (int i = 0; i < N; i++) {
        int j = (int)rec[i * FR_AUG_MIX_REC + 1];
        float lam = rec[i * FR_AUG_MIX_REC + 2];
        assert_int_equal(j, (i + N - 1) % N); /* roll by one, as torchvision */
        assert_true(lam >= 0 && lam <= 1);
        for (int p = 0; p < 4; p++) {
            double want = lam * in[i * 4 + p] + (1 - lam) * in[j * 4 + p];
            assert_true(fabs(out[i * 4 + p] - want) <= 0.5 + 1e-4);
            assert_true(fabs(fout[i * 4 + p] - want / 255.0) < 1e-5);
        }
    }
}

static void test_beta_moments(void **state)
{
    (void)state;
    const double alphas[3] = {1.0, 0.2, 2.0};
    for (int a = 0; a < 3; a++) {
        double s = 0, s2 = 0;
        const int n = 20000;
        for (int i = 0; i < n; i++) {
            uint32_t idx = 0;
            double x = fr_aug_beta(alphas[a], 77, FR_RNG_MIX, 0, (uint32_t)i, &idx);
            assert_true(x >= 0 && x <= 1);
            s += x, s2 += x * x;
        }
        double mean = s / n, var = s2 / n - mean * mean, want_var = 1.0 / (4 * (2 * alphas[a] + 1));
        assert_true(fabs(mean - 0.5) < 0.01);
        assert_true(fabs(var - want_var) < 0.01);
    }
}

static void test_reproducible_and_permutation(void **state)
{
    (void)state;
    struct fr_aug_mix_cfg cfg = {FR_AUG_MIX_CUTMIX, 1.0, 0.5, 0, 0};
    float a[N * FR_AUG_MIX_REC], b[N * FR_AUG_MIX_REC], c[N * FR_AUG_MIX_REC];
    fr_aug_mix_draw(&cfg, 5, 3, N, H, W, a);
    fr_aug_mix_draw(&cfg, 5, 3, N, H, W, b);
    fr_aug_mix_draw(&cfg, 5, 4, N, H, W, c);
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a) != 0);
    int seen[N] = {0}, none = 0;
    for (int i = 0; i < N; i++) {
        seen[(int)a[i * FR_AUG_MIX_REC + 1]]++;
        none += a[i * FR_AUG_MIX_REC] == FR_AUG_MIX_NONE;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1); /* partners form a permutation */
    assert_true(none > 0 && none < N); /* p = 0.5 */
}

static void test_bad_input(void **state)
{
    (void)state;
    struct fr_aug_mix_cfg cfg = {FR_AUG_MIX_MIXUP, 0.0, 1.0, 0, 0};
    float rec[2 * FR_AUG_MIX_REC] = {0};
    assert_int_equal(fr_aug_mix_draw(&cfg, 1, 0, 2, 4, 4, rec), FR_STATUS_INVALID_ARGUMENT);
    rec[FR_AUG_MIX_R_MODE] = FR_AUG_MIX_CUTMIX, rec[FR_AUG_MIX_R_PARTNER] = 7; /* partner outside the batch */
    uint8_t in[2 * 16], out[2 * 16];
    struct fr_aug_images a = {in, FR_U8, FR_AUG_NHWC, 2, 4, 4, 1}, b = {out, FR_U8, FR_AUG_NHWC, 2, 4, 4, 1};
    assert_int_equal(fr_aug_mix_host(&a, &b, rec), FR_STATUS_INVALID_ARGUMENT);
    int32_t labels[2] = {0, 5};
    float soft[2 * 3];
    rec[FR_AUG_MIX_R_PARTNER] = 1;
    assert_int_equal(fr_aug_mix_labels_host(labels, 2, 3, rec, soft), FR_STATUS_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cutmix_label_weights_are_pixel_fractions),
        cmocka_unit_test(test_cutmix_without_area_fix_differs),
        cmocka_unit_test(test_mixup_pixels),
        cmocka_unit_test(test_beta_moments),
        cmocka_unit_test(test_reproducible_and_permutation),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
