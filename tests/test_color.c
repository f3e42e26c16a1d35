/* Colour/pixel ops with PIL semantics: each op against Pillow 9.4 output, equalize and auto-contrast on known
 * histograms, and the hand-computable ops (invert, solarize-add, cutout, noise statistics). */
#include <math.h>
#include <string.h>

#include "testutil.h"

#include "augment/augment_internal.h"
#include "frugal/augment.h"

/* Produced by /usr/bin/python3 with Pillow 9.4.0:
 *   rgb = np.random.default_rng(7).integers(0, 256, (4, 4, 3)).astype(np.uint8); im = Image.fromarray(rgb)
 *   ImageEnhance.Brightness(im).enhance(1.3), ImageEnhance.Color(im).enhance(0.4),
 *   ImageEnhance.Contrast(im).enhance(1.7), ImageEnhance.Sharpness(im).enhance(1.9), ImageOps.posterize(im, 3),
 *   ImageOps.solarize(im, 100), im.convert('L').convert('RGB'), ImageOps.autocontrast(im) */
static const uint8_t c_src[48] = {241, 160, 175, 229, 148, 198, 213, 57,  14,  76,  72,  223, 233, 1,   127, 210,
                                  33,  204, 30,  119, 209, 77,  87,  71,  184, 65,  253, 113, 122, 129, 149, 141,
                                  130, 254, 206, 202, 179, 159, 87,  253, 119, 55,  216, 41,  219, 156, 29,  11};
static const uint8_t c_brightness_1p3[48] = {255, 208, 227, 255, 192, 255, 255, 74,  18,  98,  93,  255,
                                             255, 1,   165, 255, 42,  255, 39,  154, 255, 100, 113, 92,
                                             239, 84,  255, 146, 158, 167, 193, 183, 169, 255, 255, 255,
                                             232, 206, 113, 255, 154, 71,  255, 53,  255, 202, 37,  14};
static const uint8_t c_color_0p4[48] = {208, 175, 181, 198, 166, 186, 144, 82,  65,  84,  82,  143, 144, 51,  101, 147,
                                        76,  144, 73,  109, 145, 80,  84,  77,  146, 99,  174, 117, 120, 123, 144, 141,
                                        137, 233, 214, 212, 165, 157, 129, 192, 138, 113, 154, 84,  156, 101, 50,  43};
static const uint8_t c_contrast_1p7[48] = {255, 183, 209, 255, 163, 248, 255, 8,   0,   41,  34,  255,
                                           255, 0,   127, 255, 0,   255, 0,   114, 255, 42,  59,  32,
                                           224, 22,  255, 103, 119, 131, 165, 151, 132, 255, 255, 255,
                                           216, 182, 59,  255, 114, 5,   255, 0,   255, 177, 0,   0};
static const uint8_t c_sharpness_1p9[48] = {241, 160, 175, 229, 148, 198, 213, 57,  14,  76,  72,  223,
                                            233, 1,   127, 229, 0,   231, 0,   125, 244, 77,  87,  71,
                                            184, 65,  253, 75,  142, 111, 140, 167, 125, 254, 206, 202,
                                            179, 159, 87,  253, 119, 55,  216, 41,  219, 156, 29,  11};
static const uint8_t c_posterize_3[48] = {224, 160, 160, 224, 128, 192, 192, 32, 0,   64,  64,  192, 224, 0,  96, 192,
                                          32,  192, 0,   96,  192, 64,  64,  64, 160, 64,  224, 96,  96,  128, 128, 128,
                                          128, 224, 192, 192, 160, 128, 64,  224, 96, 32,  192, 32,  192, 128, 0,  0};
static const uint8_t c_solarize_100[48] = {14,  95,  80,  26, 107, 57,  42, 57, 14,  76,  72, 32,  22,  1,  128, 45,
                                           33,  51,  30,  136, 46, 77,  87, 71, 71,  65,  2,  142, 133, 126, 106, 114,
                                           125, 1,   49,  53, 76,  96,  87, 2,  136, 55,  39, 41,  36,  99, 29,  11};
static const uint8_t c_grayscale[48] = {186, 186, 186, 178, 178, 178, 99,  99,  99,  90,  90,  90,  85,  85,  85,  105,
                                        105, 105, 103, 103, 103, 82,  82,  82,  122, 122, 122, 120, 120, 120, 142, 142,
                                        142, 220, 220, 220, 157, 157, 157, 152, 152, 152, 114, 114, 114, 65,  65,  65};
static const uint8_t c_autocontrast[48] = {240, 197, 172, 226, 182, 197, 208, 69,  3,   52,  88,  223,
                                           231, 0,   122, 204, 39,  203, 0,   146, 208, 53,  106, 63,
                                           175, 79,  254, 94,  150, 124, 135, 174, 125, 255, 255, 201,
                                           169, 196, 80,  253, 146, 46,  211, 49,  219, 143, 34,  0};

static float rec[FR_AUG_REC];

static const float *op(enum fr_aug_code code, float a, float b)
{
    memset(rec, 0, sizeof rec);
    rec[FR_AUG_R_CODE] = (float)code, rec[FR_AUG_R_ARG] = a, rec[FR_AUG_R_THRESH] = b;
    return rec;
}

/* runs one op on a copy of an h×w×c NHWC image */
static void run(const uint8_t *src, int h, int w, int c, const float *r, uint8_t *out)
{
    memcpy(out, src, (size_t)h * w * c);
    struct fr_aug_plane p = {out, FR_U8, h, w, c, c, (ptrdiff_t)w * c, 1};
    uint8_t scratch[4096];
    assert_int_equal(fr_aug_color_plane(&p, r, scratch), FR_STATUS_OK);
}

static void check(enum fr_aug_code code, float a, const uint8_t *want)
{
    uint8_t out[48];
    run(c_src, 4, 4, 3, op(code, a, 0), out);
    tu_assert_bytes_equal(out, want, 48);
}

static void test_enhance_vs_pil(void **state)
{
    (void)state;
    check(FR_AUG_OP_BRIGHTNESS, 1.3f, c_brightness_1p3);
    check(FR_AUG_OP_COLOR, 0.4f, c_color_0p4);
    check(FR_AUG_OP_CONTRAST, 1.7f, c_contrast_1p7);
    check(FR_AUG_OP_SHARPNESS, 1.9f, c_sharpness_1p9);
}

static void test_lut_ops_vs_pil(void **state)
{
    (void)state;
    check(FR_AUG_OP_POSTERIZE, 3, c_posterize_3);
    check(FR_AUG_OP_SOLARIZE, 100, c_solarize_100);
    check(FR_AUG_OP_GRAYSCALE, 0, c_grayscale);
    check(FR_AUG_OP_AUTOCONTRAST, 0, c_autocontrast);
}

static void test_identity_factors(void **state)
{
    (void)state;
    check(FR_AUG_OP_BRIGHTNESS, 1.0f, c_src);
    check(FR_AUG_OP_COLOR, 1.0f, c_src);
    check(FR_AUG_OP_CONTRAST, 1.0f, c_src);
    check(FR_AUG_OP_SHARPNESS, 1.0f, c_src);
    check(FR_AUG_OP_POSTERIZE, 8, c_src);
    check(FR_AUG_OP_SOLARIZE, 256, c_src);
    check(FR_AUG_OP_IDENTITY, 0, c_src);
}

/* a 32x32 grey image with the given levels and counts */
static void hist_image(uint8_t *img, const int *levels, const int *counts, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < counts[i]; j++)
            img[k++] = (uint8_t)levels[i];
    assert_int_equal(k, 1024);
}

static void test_equalize_known_histogram(void **state)
{
    (void)state;
    /* step = (1024 - 200) // 255 = 3; lut = (1 + cumsum before the bin) // 3; the last level (825 // 3 = 275)
     * saturates. Pillow 9.4 ImageOps.equalize gives the same: [0, 67, 167, 200, 255]. */
    const int lv[5] = {10, 20, 100, 150, 240}, ct[5] = {200, 300, 100, 224, 200}, want[5] = {0, 67, 167, 200, 255};
    uint8_t img[1024], out[1024];
    hist_image(img, lv, ct, 5);
    run(img, 32, 32, 1, op(FR_AUG_OP_EQUALIZE, 0, 0), out);
    for (int i = 0, k = 0; i < 5; k += ct[i], i++)
        assert_int_equal(out[k], want[i]);
    /* second histogram (Pillow: [0, 167, 233, 255, 255]) */
    const int lv2[5] = {0, 1, 2, 3, 255}, ct2[5] = {500, 200, 200, 100, 24}, want2[5] = {0, 167, 233, 255, 255};
    hist_image(img, lv2, ct2, 5);
    run(img, 32, 32, 1, op(FR_AUG_OP_EQUALIZE, 0, 0), out);
    for (int i = 0, k = 0; i < 5; k += ct2[i], i++)
        assert_int_equal(out[k], want2[i]);
    /* a single level or a too-small image is left unchanged (step 0) */
    memset(img, 77, sizeof img);
    run(img, 32, 32, 1, op(FR_AUG_OP_EQUALIZE, 0, 0), out);
    tu_assert_bytes_equal(out, img, 1024);
}

static void test_autocontrast_known_histogram(void **state)
{
    (void)state;
    /* lo = 10, hi = 240: lut = int(i * 255/230 - 10 * 255/230) in double; Pillow: [0, 11, 99, 155, 255] */
    const int lv[5] = {10, 20, 100, 150, 240}, ct[5] = {200, 300, 100, 224, 200}, want[5] = {0, 11, 99, 155, 255};
    uint8_t img[1024], out[1024];
    hist_image(img, lv, ct, 5);
    run(img, 32, 32, 1, op(FR_AUG_OP_AUTOCONTRAST, 0, 0), out);
    for (int i = 0, k = 0; i < 5; k += ct[i], i++)
        assert_int_equal(out[k], want[i]);
    /* 50..100: Pillow maps 100 to 254, not 255 (double rounding then truncation), and so must we */
    const uint8_t h2[16] = {50, 60, 70, 80, 90, 100, 50, 60, 70, 80, 90, 100, 55, 65, 75, 85};
    const uint8_t w2[16] = {0, 51, 102, 153, 203, 254, 0, 51, 102, 153, 203, 254, 25, 76, 127, 178};
    uint8_t o2[16];
    run(h2, 4, 4, 1, op(FR_AUG_OP_AUTOCONTRAST, 0, 0), o2);
    tu_assert_bytes_equal(o2, w2, 16);
}

static void test_hand_ops(void **state)
{
    (void)state;
    const uint8_t g[6] = {0, 10, 127, 128, 200, 255};
    uint8_t out[6];
    run(g, 2, 3, 1, op(FR_AUG_OP_INVERT, 0, 0), out);
    tu_assert_bytes_equal(out, (const uint8_t[]){255, 245, 128, 127, 55, 0}, 6);
    run(g, 2, 3, 1, op(FR_AUG_OP_SOLARIZE_ADD, 100, 128), out);
    tu_assert_bytes_equal(out, (const uint8_t[]){100, 110, 227, 128, 200, 255}, 6);
    float r[FR_AUG_REC] = {FR_AUG_OP_CUTOUT, 9};
    fr_aug_set_box(r, 1, -5, 7, 1); /* clipped to x 1..2, y 0 */
    run(g, 2, 3, 1, r, out);
    tu_assert_bytes_equal(out, (const uint8_t[]){0, 9, 9, 128, 200, 255}, 6);
    /* RGBA: colour ops leave alpha alone */
    const uint8_t rgba[8] = {10, 20, 30, 40, 200, 100, 50, 250};
    uint8_t o4[8];
    run(rgba, 1, 2, 4, op(FR_AUG_OP_INVERT, 0, 0), o4);
    tu_assert_bytes_equal(o4, (const uint8_t[]){245, 235, 225, 40, 55, 155, 205, 250}, 8);
}

static void test_noise_statistics(void **state)
{
    (void)state;
    enum { N = 64 * 64 };
    uint8_t img[N], out[N], out2[N];
    memset(img, 128, sizeof img);
    float r[FR_AUG_REC] = {FR_AUG_OP_NOISE, 10, 12345, 7, 99};
    run(img, 64, 64, 1, r, out);
    run(img, 64, 64, 1, r, out2);
    tu_assert_bytes_equal(out, out2, N); /* same key, same noise */
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) {
        s += out[i] - 128.0;
        s2 += (out[i] - 128.0) * (out[i] - 128.0);
    }
    double mean = s / N, sd = sqrt(s2 / N - mean * mean);
    assert_true(fabs(mean) < 0.6);
    assert_true(fabs(sd - 10.0) < 0.6);
}

static void test_planar_matches_interleaved(void **state)
{
    (void)state;
    /* every op gives the same pixels on an NCHW copy (planar and generic paths vs the interleaved one) */
    enum { H = 9, W = 11, C = 3 };
    uint8_t hwc[H * W * C], chw[H * W * C], o1[H * W * C], o2[H * W * C], scratch[H * W * C];
    for (int i = 0; i < H * W * C; i++)
        hwc[i] = (uint8_t)((i * 97 + (i / 7) * 31) & 0xFF);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < C; k++)
                chw[(k * H + y) * W + x] = hwc[(y * W + x) * C + k];
    for (int code = FR_AUG_OP_BRIGHTNESS; code < FR_AUG_OP_COUNT; code++) {
        float r[FR_AUG_REC] = {(float)code, code == FR_AUG_OP_POSTERIZE ? 3.0f : 1.6f, 100, 3};
        fr_aug_set_box(r, 2, 1, 6, 5);
        memcpy(o1, hwc, sizeof o1);
        memcpy(o2, chw, sizeof o2);
        struct fr_aug_plane p1 = {o1, FR_U8, H, W, C, C, W * C, 1}, p2 = {o2, FR_U8, H, W, C, 1, W, H * W};
        assert_int_equal(fr_aug_color_plane(&p1, r, scratch), FR_STATUS_OK);
        assert_int_equal(fr_aug_color_plane(&p2, r, scratch), FR_STATUS_OK);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int k = 0; k < C; k++)
                    if (o1[(y * W + x) * C + k] != o2[(k * H + y) * W + x])
                        fail_msg("%s: NHWC and NCHW differ at (%d,%d,%d)", fr_aug_code_name((enum fr_aug_code)code), x, y, k);
    }
}

/* The vector paths (integer sharpness sum, chunked colour blend, luma sums, two-bank histograms) and a program's
 * first op reading straight from the source (LUT ops map src -> dst without a copy) against the generic
 * per-pixel float code on planar copies, over random pixels and many factors (blends that clip at both ends). */
static void test_fast_paths_match_generic(void **state)
{
    (void)state;
    enum { H = 17, W = 29, C = 3, N = H * W * C };
    uint8_t hwc[N], chw[N], o1[N], o2[N], o3[N], scratch[N];
    uint32_t r = 99;
    for (int i = 0; i < N; i++) {
        r = r * 1664525u + 1013904223u;
        hwc[i] = (uint8_t)(r >> 24);
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < C; k++)
                chw[(k * H + y) * W + x] = hwc[(y * W + x) * C + k];
    const float factors[] = {0.0f, 0.1f, 0.5f, 0.99f, 1.0f, 1.3f, 1.9f, 2.5f, -0.7f};
    for (int code = FR_AUG_OP_BRIGHTNESS; code < FR_AUG_OP_COUNT; code++)
        for (size_t fi = 0; fi < sizeof factors / sizeof *factors; fi++) {
            if (code == FR_AUG_OP_NOISE)
                continue;
            float rec[FR_AUG_REC] = {(float)code, factors[fi], 100, 3};
            if (code == FR_AUG_OP_POSTERIZE || code == FR_AUG_OP_SOLARIZE || code == FR_AUG_OP_SOLARIZE_ADD)
                rec[FR_AUG_R_ARG] = (float)(fi * 29 % 9 + (code == FR_AUG_OP_POSTERIZE ? 0 : 20 * fi));
            fr_aug_set_box(rec, 2, 1, 6, 5);
            memcpy(o1, hwc, sizeof o1);
            memcpy(o2, chw, sizeof o2);
            struct fr_aug_plane p1 = {o1, FR_U8, H, W, C, C, W * C, 1}, p2 = {o2, FR_U8, H, W, C, 1, W, H * W};
            assert_int_equal(fr_aug_color_plane(&p1, rec, scratch), FR_STATUS_OK);
            assert_int_equal(fr_aug_color_plane(&p2, rec, scratch), FR_STATUS_OK);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    for (int k = 0; k < C; k++)
                        if (o1[(y * W + x) * C + k] != o2[(k * H + y) * W + x])
                            fail_msg("%s(%g): NHWC and NCHW differ at (%d,%d,%d)",
                                     fr_aug_code_name((enum fr_aug_code)code), (double)rec[1], x, y, k);
            struct fr_aug_images a = {hwc, FR_U8, FR_AUG_NHWC, 1, H, W, C}, b = {o3, FR_U8, FR_AUG_NHWC, 1, H, W, C};
            memset(o3, 0xAB, sizeof o3);
            assert_int_equal(fr_aug_apply_host(&a, &b, rec, 1, NULL), FR_STATUS_OK);
            if (memcmp(o3, o1, sizeof o1))
                fail_msg("%s(%g): first op from the source differs from the in-place op",
                         fr_aug_code_name((enum fr_aug_code)code), (double)rec[1]);
        }
}

static void test_f32_colour_unsupported(void **state)
{
    (void)state;
    float img[4] = {0};
    struct fr_aug_plane p = {img, FR_F32, 2, 2, 1, 1, 2, 4};
    assert_int_equal(fr_aug_color_plane(&p, op(FR_AUG_OP_BRIGHTNESS, 2, 0), NULL), FR_STATUS_UNSUPPORTED);
    uint8_t g[1] = {3};
    struct fr_aug_plane q = {g, FR_U8, 1, 1, 1, 1, 1, 1};
    assert_int_equal(fr_aug_color_plane(&q, op((enum fr_aug_code)99, 0, 0), NULL), FR_STATUS_INVALID_ARGUMENT);
}

/* The integer forms of augment_common.h (what devices without doubles compute) against PIL's double expressions:
 * auto-contrast for every (lo, hi, i), the contrast mean, the SMOOTH value for every weighted sum. */
static void test_integer_forms_vs_double(void **state)
{
    (void)state;
    long bad = 0;
    for (int lo = 0; lo < 256; lo++)
        for (int hi = lo + 1; hi < 256; hi++) {
            double scale = 255.0 / (hi - lo), offset = -lo * scale;
            for (int i = 0; i < 256; i++) {
                int v = (int)(i * scale + offset);
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                bad += fr_aug_autocontrast_value(i, lo, hi) != v;
            }
        }
    assert_int_equal(bad, 0);
    assert_int_equal(fr_aug_autocontrast_value(25, 0, 25), 254); /* PIL's quirk: 25 * (255.0 / 25) < 255 */
    for (uint32_t t = 0; t < 200000; t++) {
        int64_t npix = 1 + (int64_t)(t * 2654435761u % 5000000u);
        uint64_t sum = (uint64_t)(((uint64_t)t * 40503u * 65537u) % ((uint64_t)npix * 255 + 1));
        assert_int_equal(fr_aug_contrast_mean(sum, npix), (int)((double)sum / (double)npix + 0.5));
    }
    for (int S = 0; S <= 13 * 255; S++) {
        float ss = 0.5f + (float)S / 13.0f;
        assert_int_equal(fr_aug_smooth_value(S), (int)ss);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enhance_vs_pil),
        cmocka_unit_test(test_lut_ops_vs_pil),
        cmocka_unit_test(test_identity_factors),
        cmocka_unit_test(test_equalize_known_histogram),
        cmocka_unit_test(test_autocontrast_known_histogram),
        cmocka_unit_test(test_hand_ops),
        cmocka_unit_test(test_noise_statistics),
        cmocka_unit_test(test_planar_matches_interleaved),
        cmocka_unit_test(test_fast_paths_match_generic),
        cmocka_unit_test(test_f32_colour_unsupported),
        cmocka_unit_test(test_integer_forms_vs_double),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
