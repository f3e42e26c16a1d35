/* Geometry: matrices from angles/points, the warp kernel against hand-computed pixels and OpenCV 4.6 output (also
 * for double maps float32 cannot hold, on the CPU path and OpenCL), and the vectorised positions against the
 * reference functions of augment_common.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "augment/augment_internal.h"
#include "frugal/augment.h"

/* Expected arrays below were produced by /usr/bin/python3 with OpenCV 4.6.0 (cv2.setNumThreads(1)):
 *   img = ((np.arange(30).reshape(5, 6) * 37) % 251).astype(np.uint8)
 *   M = cv2.invertAffineTransform(cv2.getRotationMatrix2D((2.5, 2.0), 30.0, 1.0)) rounded to float32
 *   cv2.warpAffine(img, M, (6, 5), flags=INTER_x | WARP_INVERSE_MAP, borderMode=..., borderValue=...)
 *   P = cv2.getPerspectiveTransform(dst, src) for src corners (0,0),(5,0),(5,4),(0,4), dst (1,0),(5,1),(4,4),(0,3)
 *   cv2.warpPerspective(img, P, (6, 5), flags=INTER_x | WARP_INVERSE_MAP, ...) */
static const uint8_t g_src[30] = {0, 37, 74, 111, 148, 185, 222, 8, 45, 82, 119, 156, 193, 230, 16,
                                  53, 90, 127, 164, 201, 238, 24, 61, 98, 135, 172, 209, 246, 32, 69};
static const uint8_t g_rot30_nearest[30] = {0, 74, 111, 119, 156, 0, 37, 74, 82, 82, 90, 127, 222, 8, 16,
                                            53, 61, 98, 193, 230, 238, 238, 246, 32, 0, 164, 201, 209, 246, 0};
static const uint8_t g_rot30_bilinear[30] = {2, 43, 112, 130, 148, 48, 27, 52, 69, 87, 105, 98, 115, 59, 26,
                                             47, 61, 78, 172, 215, 180, 154, 125, 33, 62, 172, 190, 208, 127, 3};
static const uint8_t g_rot30_bicubic_repl[30] = {51, 86, 114, 132, 149, 143, 29, 42, 72, 89, 110, 118, 111, 34, 0,
                                                 35, 52, 75, 227, 250, 209, 167, 118, 16, 176, 171, 190, 207, 255, 100};
static const uint8_t g_persp_nearest[30] = {37, 0, 37, 45, 82, 156, 230, 222, 45, 82, 148, 185, 164, 230, 16,
                                            53, 90, 156, 135, 172, 238, 24, 98, 90, 164, 238, 24, 32, 69, 32};
static const uint8_t g_persp_bilinear[30] = {9, 0, 32, 38, 16, 9, 52, 156, 29, 81, 133, 185, 110, 208, 62,
                                             60, 112, 97, 135, 187, 190, 48, 90, 32, 9, 20, 94, 48, 69, 9};

static struct fr_aug_plane grey(void *data, int h, int w)
{
    struct fr_aug_plane p = {data, FR_U8, h, w, 1, 1, w, (ptrdiff_t)h * w};
    return p;
}

static void warp_grey(const uint8_t *src, int h, int w, uint8_t *dst, int oh, int ow, const double m[9], int interp,
                      int border, float fill)
{
    struct fr_aug_plane s = grey((void *)src, h, w), d = grey(dst, oh, ow);
    assert_int_equal(fr_aug_warp_plane(&s, &d, m, interp, border, fill), FR_STATUS_OK);
}

static void test_rotate_90_square(void **state)
{
    (void)state;
    const uint8_t src[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    /* counter-clockwise quarter turn: the right column becomes the top row */
    const uint8_t want[9] = {3, 6, 9, 2, 5, 8, 1, 4, 7};
    double fwd[9], inv[9];
    fr_geom_rotate(fwd, 90, 1, 1);
    assert_int_equal(fr_geom_invert(fwd, inv), FR_STATUS_OK);
    for (int interp = 0; interp < 3; interp++) {
        uint8_t out[9];
        warp_grey(src, 3, 3, out, 3, 3, inv, interp, FR_AUG_CONSTANT, 0);
        tu_assert_bytes_equal(out, want, 9);
    }
}

static void test_rotate_90_nonsquare_fill(void **state)
{
    (void)state;
    /* 4 wide, 2 high; centre (1.5, 0.5): rows/cols map with half-integer offsets -> nearest rounds up */
    const uint8_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    double inv[9];
    fr_geom_rotate(inv, -90, 1.5, 0.5); /* inverse of a +90° turn */
    uint8_t out[8];
    warp_grey(src, 2, 4, out, 2, 4, inv, FR_AUG_NEAREST, FR_AUG_CONSTANT, 99);
    /* dst (x, y) samples src (1.5 - (y - 0.5), 0.5 + (x - 1.5)) = (2 - y, x - 1): OpenCV's fixed-point rounding
     * of the exact integers gives these; x = 0 and x = 3 fall outside (fill 99) */
    const uint8_t want[8] = {99, 3, 7, 99, 99, 2, 6, 99};
    tu_assert_bytes_equal(out, want, 8);
}

static void test_flips(void **state)
{
    (void)state;
    const uint8_t src[6] = {1, 2, 3, 4, 5, 6}; /* 3 wide, 2 high */
    double h[9], v[9];
    fr_geom_identity(h);
    h[0] = -1, h[2] = 2; /* x -> 2 - x is its own inverse */
    fr_geom_identity(v);
    v[4] = -1, v[5] = 1;
    uint8_t out[6];
    warp_grey(src, 2, 3, out, 2, 3, h, FR_AUG_BILINEAR, FR_AUG_CONSTANT, 0);
    tu_assert_bytes_equal(out, (const uint8_t[]){3, 2, 1, 6, 5, 4}, 6);
    warp_grey(src, 2, 3, out, 2, 3, v, FR_AUG_NEAREST, FR_AUG_CONSTANT, 0);
    tu_assert_bytes_equal(out, (const uint8_t[]){4, 5, 6, 1, 2, 3}, 6);
}

static void test_shear_known(void **state)
{
    (void)state;
    const uint8_t src[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    double inv[9];
    fr_geom_shear(inv, 1.0, 0.0, 0, 0); /* inverse map x_src = x + y */
    uint8_t out[9];
    warp_grey(src, 3, 3, out, 3, 3, inv, FR_AUG_NEAREST, FR_AUG_CONSTANT, 0);
    tu_assert_bytes_equal(out, (const uint8_t[]){1, 2, 3, 5, 6, 0, 9, 0, 0}, 9);
    /* replicate border repeats the last column; reflect-101 mirrors without repeating the edge */
    warp_grey(src, 3, 3, out, 3, 3, inv, FR_AUG_NEAREST, FR_AUG_REPLICATE, 0);
    tu_assert_bytes_equal(out, (const uint8_t[]){1, 2, 3, 5, 6, 6, 9, 9, 9}, 9);
    warp_grey(src, 3, 3, out, 3, 3, inv, FR_AUG_NEAREST, FR_AUG_REFLECT101, 0);
    tu_assert_bytes_equal(out, (const uint8_t[]){1, 2, 3, 5, 6, 5, 9, 8, 7}, 9);
    /* a half shear with bilinear: row 1 samples x + 0.5 -> mean of neighbours, rounded half up */
    fr_geom_shear(inv, 0.5, 0.0, 0, 0);
    warp_grey(src, 3, 3, out, 3, 3, inv, FR_AUG_BILINEAR, FR_AUG_CONSTANT, 0);
    tu_assert_bytes_equal(out, (const uint8_t[]){1, 2, 3, 5, 6, 3, 8, 9, 0}, 9);
}

static void test_opencv_rotate(void **state)
{
    (void)state;
    const double m[9] = {(float)0.8660253882408142, -0.5, (float)1.334936499595642, 0.5, (float)0.8660253882408142,
                         (float)-0.9820508360862732, 0, 0, 1};
    uint8_t out[30];
    warp_grey(g_src, 5, 6, out, 5, 6, m, FR_AUG_NEAREST, FR_AUG_CONSTANT, 0);
    tu_assert_bytes_equal(out, g_rot30_nearest, 30);
    warp_grey(g_src, 5, 6, out, 5, 6, m, FR_AUG_BILINEAR, FR_AUG_CONSTANT, 0);
    tu_assert_bytes_equal(out, g_rot30_bilinear, 30);
    warp_grey(g_src, 5, 6, out, 5, 6, m, FR_AUG_BICUBIC, FR_AUG_REPLICATE, 0);
    tu_assert_bytes_equal(out, g_rot30_bicubic_repl, 30);
    /* our own rotation matrix, inverted in double, agrees with OpenCV's to float precision */
    double f[9], inv[9];
    fr_geom_rotate(f, 30, 2.5, 2.0);
    assert_int_equal(fr_geom_invert(f, inv), FR_STATUS_OK);
    for (int i = 0; i < 6; i++)
        assert_true(fabs(inv[i] - m[i]) < 1e-6);
}

static void test_opencv_perspective(void **state)
{
    (void)state;
    const double m[9] = {(float)1.1538461446762085, (float)0.38461539149284363, (float)-1.1538461446762085,
                         (float)-0.3076923191547394, (float)1.2307692766189575, (float)0.3076923191547394, 0, 0, 1};
    uint8_t out[30];
    warp_grey(g_src, 5, 6, out, 5, 6, m, FR_AUG_NEAREST, FR_AUG_REFLECT101, 0);
    tu_assert_bytes_equal(out, g_persp_nearest, 30);
    warp_grey(g_src, 5, 6, out, 5, 6, m, FR_AUG_BILINEAR, FR_AUG_CONSTANT, 9);
    tu_assert_bytes_equal(out, g_persp_bilinear, 30);
}

static void test_affine_from_points(void **state)
{
    (void)state;
    const double src[6] = {0, 0, 4, 0, 0, 3}, dst[6] = {1, 2, 5, 3, -1, 7};
    double m[9];
    assert_int_equal(fr_geom_affine_from_points(src, dst, m), FR_STATUS_OK);
    for (int i = 0; i < 3; i++) {
        double x, y;
        fr_geom_apply(m, src[2 * i], src[2 * i + 1], &x, &y);
        assert_true(fabs(x - dst[2 * i]) < 1e-12 && fabs(y - dst[2 * i + 1]) < 1e-12);
    }
    assert_true(m[6] == 0 && m[7] == 0 && m[8] == 1);
    /* a pure shift by (1, 1) found from points moves the picture by one pixel */
    const double s2[6] = {0, 0, 2, 0, 0, 2}, d2[6] = {1, 1, 3, 1, 1, 3};
    double f[9], inv[9];
    assert_int_equal(fr_geom_affine_from_points(s2, d2, f), FR_STATUS_OK);
    assert_int_equal(fr_geom_invert(f, inv), FR_STATUS_OK);
    const uint8_t img[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    uint8_t out[9];
    warp_grey(img, 3, 3, out, 3, 3, inv, FR_AUG_BILINEAR, FR_AUG_CONSTANT, 0);
    tu_assert_bytes_equal(out, (const uint8_t[]){0, 0, 0, 0, 1, 2, 0, 4, 5}, 9);
}

static void test_perspective_from_points(void **state)
{
    (void)state;
    const double src[8] = {0, 0, 9, 0, 9, 7, 0, 7}, dst[8] = {1, 2, 8, 0, 9.5, 7, -1, 6};
    double m[9];
    assert_int_equal(fr_geom_perspective_from_points(src, dst, m), FR_STATUS_OK);
    assert_true(m[8] == 1);
    for (int i = 0; i < 4; i++) {
        double x, y;
        fr_geom_apply(m, src[2 * i], src[2 * i + 1], &x, &y);
        assert_true(fabs(x - dst[2 * i]) < 1e-9 && fabs(y - dst[2 * i + 1]) < 1e-9);
    }
    /* a perspective solve from an affine point set returns that affine map */
    const double a[8] = {0, 0, 1, 0, 1, 1, 0, 1}, b[8] = {2, 3, 4, 3, 4, 5, 2, 5};
    assert_int_equal(fr_geom_perspective_from_points(a, b, m), FR_STATUS_OK);
    assert_true(fabs(m[0] - 2) < 1e-12 && fabs(m[2] - 2) < 1e-12 && fabs(m[6]) < 1e-12 && fabs(m[7]) < 1e-12);
}

static void test_degenerate_points(void **state)
{
    (void)state;
    double m[9];
    const double col3[6] = {0, 0, 1, 1, 2, 2}, ok3[6] = {0, 0, 1, 0, 0, 1};
    assert_int_equal(fr_geom_affine_from_points(col3, ok3, m), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "collinear"));
    assert_int_equal(fr_geom_affine_from_points(ok3, col3, m), FR_STATUS_INVALID_ARGUMENT);
    const double sq[8] = {0, 0, 1, 0, 1, 1, 0, 1}, three_in_line[8] = {0, 0, 1, 0, 2, 0, 0, 1};
    assert_int_equal(fr_geom_perspective_from_points(three_in_line, sq, m), FR_STATUS_INVALID_ARGUMENT);
    assert_int_equal(fr_geom_perspective_from_points(sq, three_in_line, m), FR_STATUS_INVALID_ARGUMENT);
    const double same[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(fr_geom_perspective_from_points(same, sq, m), FR_STATUS_INVALID_ARGUMENT);
    const double nan8[8] = {NAN, 0, 1, 0, 1, 1, 0, 1};
    assert_int_equal(fr_geom_perspective_from_points(nan8, sq, m), FR_STATUS_INVALID_ARGUMENT);
    const double sing[9] = {1, 2, 0, 2, 4, 0, 0, 0, 1};
    assert_int_equal(fr_geom_invert(sing, m), FR_STATUS_NUMERIC);
}

static void test_identity_all_modes(void **state)
{
    (void)state;
    uint8_t src[5 * 7 * 3], out[5 * 7 * 3];
    float fsrc[5 * 7 * 3], fout[5 * 7 * 3];
    for (int i = 0; i < 105; i++) {
        src[i] = (uint8_t)(i * 41 + 7);
        fsrc[i] = src[i] / 255.0f;
    }
    double id[9];
    fr_geom_identity(id);
    for (int layout = 0; layout < 2; layout++)
        for (int interp = 0; interp < 3; interp++)
            for (int border = 0; border < 3; border++) {
                struct fr_aug_images a = {src, FR_U8, layout, 1, 5, 7, 3}, b = {out, FR_U8, layout, 1, 5, 7, 3};
                struct fr_aug_plane s = fr_aug_plane_of(&a, 0), d = fr_aug_plane_of(&b, 0);
                memset(out, 0xAB, sizeof out);
                assert_int_equal(fr_aug_warp_plane(&s, &d, id, interp, border, 0), FR_STATUS_OK);
                tu_assert_bytes_equal(out, src, sizeof src);
                struct fr_aug_images fa = {fsrc, FR_F32, layout, 1, 5, 7, 3}, fb = {fout, FR_F32, layout, 1, 5, 7, 3};
                s = fr_aug_plane_of(&fa, 0), d = fr_aug_plane_of(&fb, 0);
                assert_int_equal(fr_aug_warp_plane(&s, &d, id, interp, border, 0), FR_STATUS_OK);
                tu_assert_bytes_equal(fout, fsrc, sizeof fsrc);
            }
}

static void test_layouts_agree(void **state)
{
    (void)state;
    /* the same 30° bilinear rotation on NHWC and NCHW copies of an RGB image gives the same pixels */
    enum { H = 6, W = 9, C = 3 };
    uint8_t hwc[H * W * C], chw[H * W * C], o1[H * W * C], o2[H * W * C];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++)
                hwc[(y * W + x) * C + c] = chw[(c * H + y) * W + x] = (uint8_t)(x * 25 + y * 13 + c * 70);
    double f[9], inv[9];
    fr_geom_rotate(f, 30, (W - 1) / 2.0, (H - 1) / 2.0);
    fr_geom_invert(f, inv);
    struct fr_aug_images a = {hwc, FR_U8, FR_AUG_NHWC, 1, H, W, C}, b = {o1, FR_U8, FR_AUG_NHWC, 1, H, W, C};
    struct fr_aug_images a2 = {chw, FR_U8, FR_AUG_NCHW, 1, H, W, C}, b2 = {o2, FR_U8, FR_AUG_NCHW, 1, H, W, C};
    struct fr_aug_plane s = fr_aug_plane_of(&a, 0), d = fr_aug_plane_of(&b, 0);
    assert_int_equal(fr_aug_warp_plane(&s, &d, inv, FR_AUG_BILINEAR, FR_AUG_CONSTANT, 0), FR_STATUS_OK);
    s = fr_aug_plane_of(&a2, 0), d = fr_aug_plane_of(&b2, 0);
    assert_int_equal(fr_aug_warp_plane(&s, &d, inv, FR_AUG_BILINEAR, FR_AUG_CONSTANT, 0), FR_STATUS_OK);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++)
                assert_int_equal(o1[(y * W + x) * C + c], o2[(c * H + y) * W + x]);
}

static void test_far_outside_and_resize(void **state)
{
    (void)state;
    /* a map pointing far outside gives the fill everywhere, without reading out of bounds */
    uint8_t *src = tu_guard_alloc(4), out[4];
    memcpy(src, (const uint8_t[]){10, 20, 30, 40}, 4);
    double m[9];
    fr_geom_translate(m, 1e9, -1e9);
    for (int interp = 0; interp < 3; interp++) {
        warp_grey(src, 2, 2, out, 2, 2, m, interp, FR_AUG_CONSTANT, 5);
        tu_assert_bytes_equal(out, (const uint8_t[]){5, 5, 5, 5}, 4);
        warp_grey(src, 2, 2, out, 2, 2, m, interp, FR_AUG_REFLECT101, 5);
        warp_grey(src, 2, 2, out, 2, 2, m, interp, FR_AUG_REPLICATE, 5);
    }
    /* 2x upscale with pixel-area alignment: src x = (x + 0.5) / 2 - 0.5 */
    double s[9];
    fr_geom_scale(s, 0.5, 0.5, 0, 0);
    s[2] = s[5] = -0.25;
    uint8_t big[16];
    warp_grey(src, 2, 2, big, 4, 4, s, FR_AUG_BILINEAR, FR_AUG_REPLICATE, 0);
    /* row 0 samples y = -0.25 (replicated row 0): 10, 12.5, 17.5, 20 -> 10, 13, 18, 20 */
    tu_assert_bytes_equal(big, (const uint8_t[]){10, 13, 18, 20}, 4);
    tu_guard_free(src);
}

/* The interleaved-RGB fast paths (vector bilinear blend, 4-byte moves, mirrored row copies, vectorised
 * perspective coordinates) against the per-channel generic path on planar copies of the same image, for maps
 * that walk off every edge: both must give the same bytes. Image sizes put taps on the last pixel. */
static void test_rgb_fast_paths_match_generic(void **state)
{
    (void)state;
    enum { H = 23, W = 37, C = 3, OH = 19, OW = 41 };
    uint8_t *hwc = tu_guard_alloc(H * W * C), chw[H * W * C], o1[OH * OW * C], o2[OH * OW * C];
    uint32_t r = 7;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++) {
                r = r * 1664525u + 1013904223u;
                hwc[(y * W + x) * C + c] = chw[(c * H + y) * W + x] = (uint8_t)(r >> 24);
            }
    double maps[8][9];
    fr_geom_rotate(maps[0], 30, (W - 1) / 2.0, (H - 1) / 2.0);
    fr_geom_rotate(maps[1], -137.5, 3.2, 11.9);
    fr_geom_scale(maps[2], 1.7, 0.6, 18, 11);
    fr_geom_shear(maps[3], 0.4, -0.2, 18, 11);
    fr_geom_identity(maps[4]);
    maps[4][0] = -1, maps[4][2] = W - 1; /* a pure flip: row copies */
    fr_geom_translate(maps[5], -5, 3);
    const double sq[8] = {0, 0, W - 1, 0, W - 1, H - 1, 0, H - 1};
    const double d1[8] = {3, -2, W + 1, 4, W - 6, H + 3, -4, H - 5}, d2[8] = {-9, 1, W + 7, -3, W - 2, H - 9, 5, H + 6};
    assert_int_equal(fr_geom_perspective_from_points(sq, d1, maps[6]), FR_STATUS_OK);
    assert_int_equal(fr_geom_perspective_from_points(sq, d2, maps[7]), FR_STATUS_OK);
    for (int m = 0; m < 8; m++) {
        double inv[9];
        assert_int_equal(fr_geom_invert(maps[m], inv), FR_STATUS_OK);
        for (int interp = 0; interp < 3; interp++)
            for (int border = 0; border < 3; border++) {
                struct fr_aug_images a = {hwc, FR_U8, FR_AUG_NHWC, 1, H, W, C}, b = {o1, FR_U8, FR_AUG_NHWC, 1, OH, OW, C};
                struct fr_aug_images a2 = {chw, FR_U8, FR_AUG_NCHW, 1, H, W, C}, b2 = {o2, FR_U8, FR_AUG_NCHW, 1, OH, OW, C};
                struct fr_aug_plane s = fr_aug_plane_of(&a, 0), d = fr_aug_plane_of(&b, 0);
                assert_int_equal(fr_aug_warp_plane(&s, &d, inv, interp, border, 77), FR_STATUS_OK);
                s = fr_aug_plane_of(&a2, 0), d = fr_aug_plane_of(&b2, 0);
                assert_int_equal(fr_aug_warp_plane(&s, &d, inv, interp, border, 77), FR_STATUS_OK);
                for (int y = 0; y < OH; y++)
                    for (int x = 0; x < OW; x++)
                        for (int c = 0; c < C; c++)
                            if (o1[(y * OW + x) * C + c] != o2[(c * OH + y) * OW + x])
                                fail_msg("map %d interp %d border %d: pixel (%d,%d,%d) %d vs %d", m, interp, border, x,
                                         y, c, o1[(y * OW + x) * C + c], o2[(c * OH + y) * OW + x]);
            }
    }
    tu_guard_free(hwc);
}

/* tests/data/cv2_warps.bin (tests/data/make_cv2_warps.py): OpenCV 4.6 warps with double maps solved from fractional
 * points that float32 cannot hold, every interpolation and border. Records keep the map bit for bit, so the CPU
 * path and OpenCL (with doubles, and without: host tables) give OpenCV's bytes; a float32 copy of the maps would
 * not (checked, so the data has teeth). */
static void test_opencv_double_maps(void **state)
{
    (void)state;
    const char *cl_path = getenv("FRUGAL_CL_PATH");
    char path[4096];
    snprintf(path, sizeof path, "%s/../tests/data/cv2_warps.bin", cl_path ? cl_path : ".");
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: cannot open (run tests/data/make_cv2_warps.py)", path);
    int32_t hdr[4];
    assert_int_equal(fread(hdr, sizeof hdr, 1, f), 1);
    const int n = hdr[0], h = hdr[1], w = hdr[2], c = hdr[3];
    assert_true(n > 0 && n < 100 && h * w * c < 100000);
    uint8_t *img = malloc((size_t)h * w * c), *want = malloc((size_t)n * h * w * c), *got = malloc((size_t)n * h * w * c);
    uint8_t *in = malloc((size_t)n * h * w * c);
    float *prog = calloc((size_t)n * FR_AUG_REC, sizeof(float)), *prog32 = calloc((size_t)n * FR_AUG_REC, sizeof(float));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            img[y * w + x] = (uint8_t)((x * 7 + y * 13 + (x * y) % 17 * 9) % 256);
    int not_f32 = 0;
    for (int i = 0; i < n; i++) {
        int32_t cs[4];
        double m[9], m32[9];
        assert_int_equal(fread(cs, sizeof cs, 1, f), 1);
        assert_int_equal(fread(m, sizeof m, 1, f), 1);
        assert_int_equal(fread(want + (size_t)i * h * w * c, (size_t)h * w * c, 1, f), 1);
        for (int q = 0; q < 9; q++) {
            m32[q] = (float)m[q];
            not_f32 += m32[q] != m[q];
        }
        fr_aug_make_warp(prog + (size_t)i * FR_AUG_REC, m, cs[1], cs[2], (float)cs[3]);
        fr_aug_make_warp(prog32 + (size_t)i * FR_AUG_REC, m32, cs[1], cs[2], (float)cs[3]);
        memcpy(in + (size_t)i * h * w * c, img, (size_t)h * w * c);
    }
    fclose(f);
    assert_true(not_f32 > n); /* the maps are not float32 values */
    struct fr_aug_images a = {in, FR_U8, FR_AUG_NHWC, n, h, w, c}, b = {got, FR_U8, FR_AUG_NHWC, n, h, w, c};
    assert_int_equal(fr_aug_apply_host(&a, &b, prog, 1, NULL), FR_STATUS_OK);
    tu_assert_bytes_equal(got, want, (size_t)n * h * w * c);
    assert_int_equal(fr_aug_apply_host(&a, &b, prog32, 1, NULL), FR_STATUS_OK);
    size_t differ = 0;
    for (size_t i = 0; i < (size_t)n * h * w * c; i++)
        differ += got[i] != want[i];
    assert_true(differ > 0); /* float32 maps would miss OpenCV's bytes */
    struct fr_backend *cl = NULL;
    for (int pass = 0; pass < 2; pass++) { /* with doubles, then the table path */
        if (pass)
            setenv("FRUGAL_CL_FP64", "none", 1);
        if (fr_backend_open("cl:0:0", &cl) != FR_STATUS_OK || !cl) {
            print_message("no OpenCL device: OpenCL not checked\n");
            break;
        }
        memset(got, 0, (size_t)n * h * w * c);
        assert_int_equal(tu_aug_apply(cl, in, FR_AUG_NHWC, prog, n, 1, h, w, c, h, w, got), 0);
        tu_assert_bytes_equal(got, want, (size_t)n * h * w * c);
        fr_backend_free(cl);
        cl = NULL;
    }
    unsetenv("FRUGAL_CL_FP64");
    free(img), free(want), free(got), free(in), free(prog), free(prog32);
}

/* The vectorised row positions (warp fast paths, coordinate tables) against the reference fr_aug_map_pos. */
static void test_positions_match_reference(void **state)
{
    (void)state;
    enum { OW = 45, OH = 23 };
    int X[OW], Y[OW];
    double maps[4][9] = {{0.93, -0.21, 3.7, 0.17, 1.09, -2.2, 0, 0, 1},
                         {1.3e-3, 0.9, 1e6, -0.8, 2e-3, -3e7, 0, 0, 1}, /* huge offsets: the general path */
                         {1.02, 0.05, -1.3, -0.04, 0.97, 2.1, 1.3e-3, -2.1e-3, 1.01},
                         {0.8, 0.1, 5, 0.2, 0.7, -3, -0.01, 0.02, 0.9}};
    for (int mi = 0; mi < 4; mi++)
        for (int interp = 0; interp < 2; interp++)
            for (int y = 0; y < OH; y++) {
                fr_aug_warp_row_pos(maps[mi], y, OW, OH, interp, X, Y);
                for (int x = 0; x < OW; x++) {
                    int rx, ry;
                    fr_aug_map_pos(maps[mi], x, y, OW, OH, interp == 0, &rx, &ry);
                    if (rx != X[x] || ry != Y[x])
                        fail_msg("map %d interp %d (%d, %d): (%d, %d) vs reference (%d, %d)", mi, interp, x, y, X[x],
                                 Y[x], rx, ry);
                }
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotate_90_square),       cmocka_unit_test(test_rotate_90_nonsquare_fill),
        cmocka_unit_test(test_flips),                  cmocka_unit_test(test_shear_known),
        cmocka_unit_test(test_opencv_rotate),          cmocka_unit_test(test_opencv_perspective),
        cmocka_unit_test(test_affine_from_points),     cmocka_unit_test(test_perspective_from_points),
        cmocka_unit_test(test_degenerate_points),      cmocka_unit_test(test_identity_all_modes),
        cmocka_unit_test(test_layouts_agree),          cmocka_unit_test(test_far_outside_and_resize),
        cmocka_unit_test(test_rgb_fast_paths_match_generic),
        cmocka_unit_test(test_opencv_double_maps),     cmocka_unit_test(test_positions_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
