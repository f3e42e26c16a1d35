/* Augmentation maths compiled by both the host (src/augment) and OpenCL C (cl/augment.cl): the program record
 * layout, the op codes and the scalar reference functions (OpenCV's fixed-point warps, PIL's colour ops). */
#ifndef FRUGAL_CL_AUGMENT_COMMON_H
#define FRUGAL_CL_AUGMENT_COMMON_H

#include "rng.h"

#ifdef __OPENCL_VERSION__
#if defined(cl_khr_fp64) && !defined(FR_AUG_NO_FP64)
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#define FR_AUG_FP64 1 /* OpenCV's double-precision coordinates on the device (else host tables) */
#endif
typedef long fr_aug_i64;
typedef ulong fr_aug_u64;
typedef uchar fr_aug_u8;
#define FR_AUG_FN static inline
#define FR_AUG_GLOBAL __global /* where kernels read records */
#define FR_AUG_LOCAL __local   /* where kernels keep histograms and LUTs */
#define FR_AUG_RINT(x) rint(x)
#define FR_AUG_CLZ64(x) ((int)clz((ulong)(x)))
#define FR_AUG_INT_MIN (-2147483647 - 1)
#define FR_AUG_INT_MAX 2147483647
#else
#include <math.h>
#include <stdint.h>
#include <string.h>
typedef int64_t fr_aug_i64;
typedef uint64_t fr_aug_u64;
typedef uint8_t fr_aug_u8;
#define FR_AUG_FN static inline
#define FR_AUG_GLOBAL
#define FR_AUG_LOCAL
#define FR_AUG_FP64 1
#define FR_AUG_RINT(x) rint(x)
#define FR_AUG_CLZ64(x) __builtin_clzll((unsigned long long)(x))
#define FR_AUG_INT_MIN INT32_MIN
#define FR_AUG_INT_MAX INT32_MAX
#endif

/* ---------------------------------------------------------------------------------------------------------
 * Programs: each sample runs K records of FR_AUG_REC floats in order. Fields by name (an op uses some of them):
 * --------------------------------------------------------------------------------------------------------- */
#define FR_AUG_REC 28
#define FR_AUG_R_CODE 0   /* FR_AUG_CODE_* */
#define FR_AUG_R_ARG 1    /* colour factor, posterize bits, solarize threshold, solarize_add addition, noise std,
                             cutout fill */
#define FR_AUG_R_THRESH 2 /* solarize_add: threshold */
#define FR_AUG_R_INTERP 1 /* warp: FR_AUG_NEAREST/BILINEAR/BICUBIC */
#define FR_AUG_R_BORDER 2 /* warp: FR_AUG_CONSTANT/REPLICATE/REFLECT101 */
#define FR_AUG_R_FILL 3   /* warp: fill value of the constant border */
#define FR_AUG_R_KEY 2    /* noise: Philox key word 0 as [2] low 24 bits, [3] high 8 bits; word 1 in [4] (24 bits) */
#define FR_AUG_R_BOX 5    /* cutout: box x0, y0, x1, y1 (half-open); warp: source window (a crop before the map;
                             empty = the whole source) */
#define FR_AUG_R_M 9      /* warp: the inverse 3x3 map (output pixel -> source pixel), 9 doubles, each stored as
                             its two 32-bit words (low word first) in the float slots: exact for any matrix */

#define FR_AUG_CODE_IDENTITY 0
#define FR_AUG_CODE_WARP 1         /* resample through the record's map and window */
#define FR_AUG_CODE_BRIGHTNESS 2   /* blend with black */
#define FR_AUG_CODE_COLOR 3        /* blend with the grey (L) image */
#define FR_AUG_CODE_CONTRAST 4     /* blend with the mean of the grey image */
#define FR_AUG_CODE_SHARPNESS 5    /* blend with the 3x3 smoothed image */
#define FR_AUG_CODE_POSTERIZE 6    /* keep the top ARG bits (0..8) */
#define FR_AUG_CODE_SOLARIZE 7     /* x < ARG ? x : 255 - x */
#define FR_AUG_CODE_SOLARIZE_ADD 8 /* x < THRESH ? min(x + ARG, 255) : x */
#define FR_AUG_CODE_INVERT 9
#define FR_AUG_CODE_AUTOCONTRAST 10 /* per channel min/max stretch (PIL, cutoff 0) */
#define FR_AUG_CODE_EQUALIZE 11     /* PIL histogram equalisation per channel */
#define FR_AUG_CODE_GRAYSCALE 12    /* L in every colour channel */
#define FR_AUG_CODE_NOISE 13        /* gaussian, ARG = std in grey levels, Philox key in KEY */
#define FR_AUG_CODE_CUTOUT 14       /* fill the BOX with ARG */
#define FR_AUG_CODE_CONTRAST_TF 15  /* Google's TF contrast: blend with the mean of the histogram's bin indices */
#define FR_AUG_CODE_COUNT 16

/* CutMix / MixUp records, FR_AUG_MIX_REC floats per sample */
#define FR_AUG_MIX_REC 8
#define FR_AUG_MIX_R_MODE 0    /* FR_AUG_MIX_NONE/CUTMIX/MIXUP */
#define FR_AUG_MIX_R_PARTNER 1 /* index of the partner sample within the batch */
#define FR_AUG_MIX_R_LAMBDA 2  /* weight of the sample's own label (and of its pixels for MixUp) */
#define FR_AUG_MIX_R_BOX 3     /* CutMix: box x0, y0, x1, y1 pasted from the partner (half-open) */

/* the own label's weight of a mix record (1 when unmixed) */
FR_AUG_FN float fr_aug_mix_lambda(FR_AUG_GLOBAL const float *r)
{
    return (int)r[FR_AUG_MIX_R_MODE] == 0 ? 1.0f : r[FR_AUG_MIX_R_LAMBDA];
}
/* MixUp of two pixel values: lambda·a + (1 − lambda)·b, u8 rounded half up */
FR_AUG_FN fr_aug_u8 fr_aug_mixup_u8(int a, int b, float lam)
{
    return (fr_aug_u8)(int)(lam * (float)a + (1.0f - lam) * (float)b + 0.5f);
}
FR_AUG_FN float fr_aug_mixup_f32(float a, float b, float lam) { return lam * a + (1.0f - lam) * b; }
/* a mixed target: lambda·own + (1 − lambda)·partner's */
FR_AUG_FN float fr_aug_mix_target(float own, float partner, float lam) { return lam * own + (1.0f - lam) * partner; }

/* OpenCV's fixed point: affine maps in 1/1024 pixel, sub-pixel positions in 1/32, interpolation weights in 1/2^15 */
#define FR_AUG_AB_BITS 10
#define FR_AUG_AB_SCALE 1024
#define FR_AUG_TAB_BITS 5
#define FR_AUG_TAB_SIZE 32
#define FR_AUG_COEF_BITS 15
#define FR_AUG_COEF_SCALE 32768

FR_AUG_FN int fr_aug_min_int(int a, int b) { return a < b ? a : b; }
FR_AUG_FN int fr_aug_max_int(int a, int b) { return a > b ? a : b; }
FR_AUG_FN int fr_aug_clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* source index of a tap at i of n under a border rule: -1 = outside under a constant border */
FR_AUG_FN int fr_aug_border_index(int i, int n, int border)
{
    if (i >= 0 && i < n)
        return i;
    if (border == 0) /* constant */
        return -1;
    if (border == 1) /* replicate */
        return i < 0 ? 0 : n - 1;
    if (n == 1)
        return 0;
    /* reflect-101: ... 2 1 | 0 1 2 ... n-1 | n-2 ..., periodic with 2n-2 */
    fr_aug_i64 period = 2 * (fr_aug_i64)n - 2, r = (((fr_aug_i64)i % period) + period) % period;
    return (int)(r < n ? r : period - r);
}

/* ITU-R 601-2 luma as PIL's RGB -> L conversion computes it */
FR_AUG_FN int fr_aug_luma(int r, int g, int b) { return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16; }

/* PIL's Image.blend(a, b, f) for one value: a + f·(b − a) in float, clipped, truncated */
FR_AUG_FN fr_aug_u8 fr_aug_blend_u8(int a, int b, float f)
{
    float t = (float)a + f * (float)(b - a);
    t = t < 0.0f ? 0.0f : t;
    t = t > 255.0f ? 255.0f : t;
    return (fr_aug_u8)(int)t;
}

/* a u8 fill value from a float one (rounded, clipped) */
FR_AUG_FN fr_aug_u8 fr_aug_fill_u8(float f)
{
    return (fr_aug_u8)(f <= 0.0f ? 0 : f >= 255.0f ? 255 : (int)FR_AUG_RINT(f));
}

/* ---- warps: source positions ---- */

FR_AUG_FN int fr_aug_clamp_i64(fr_aug_i64 v)
{
    return (int)(v < FR_AUG_INT_MIN ? (fr_aug_i64)FR_AUG_INT_MIN : v > FR_AUG_INT_MAX ? (fr_aug_i64)FR_AUG_INT_MAX : v);
}

/* An affine map's source position of one output pixel from OpenCV's two terms in 1/1024 pixel: the row term
 * round((m1·y + m2)·1024) and the column term round(m0·x·1024) (m3/m4/m5 for Y). Integer pixels for nearest,
 * else 1/32-pixel fixed point. */
FR_AUG_FN int fr_aug_affine_pos(int row, int col, int nearest)
{
    fr_aug_i64 rd = nearest ? FR_AUG_AB_SCALE / 2 : FR_AUG_AB_SCALE / FR_AUG_TAB_SIZE / 2;
    int shift = nearest ? FR_AUG_AB_BITS : FR_AUG_AB_BITS - FR_AUG_TAB_BITS;
    return fr_aug_clamp_i64(((fr_aug_i64)row + rd + (fr_aug_i64)col) >> shift);
}

#ifdef FR_AUG_FP64
/* OpenCV's saturate_cast<int>(double): round half to even, saturating (NaN -> INT_MIN) */
FR_AUG_FN int fr_aug_sat_round(double v)
{
    if (!(v > (double)FR_AUG_INT_MIN))
        return FR_AUG_INT_MIN;
    if (v >= (double)FR_AUG_INT_MAX)
        return FR_AUG_INT_MAX;
    return (int)FR_AUG_RINT(v);
}

FR_AUG_FN int fr_aug_is_affine(const double *m) { return m[6] == 0.0 && m[7] == 0.0 && m[8] == 1.0; }

/* the row and column terms of fr_aug_affine_pos */
FR_AUG_FN int fr_aug_affine_row(const double *m, int y, int axis)
{
    return fr_aug_sat_round((m[3 * axis + 1] * y + m[3 * axis + 2]) * FR_AUG_AB_SCALE);
}
FR_AUG_FN int fr_aug_affine_col(const double *m, int x, int axis)
{
    return fr_aug_sat_round(m[3 * axis] * x * FR_AUG_AB_SCALE);
}

/* A perspective map's source position of output pixel (x, y) of an ow×oh output, in integer pixels (nearest) or
 * 1/32 pixel: OpenCV evaluates the map in blocks whose start column enters the rounding. */
FR_AUG_FN void fr_aug_persp_pos(const double *m, int x, int y, int ow, int oh, int nearest, int *X, int *Y)
{
    int bh0 = fr_aug_min_int(16, oh), bw0 = fr_aug_min_int(32 * 32 / bh0, ow);
    int xb = (x / bw0) * bw0, x1 = x - xb;
    double X0 = m[0] * xb + m[1] * y + m[2];
    double Y0 = m[3] * xb + m[4] * y + m[5];
    double W0 = m[6] * xb + m[7] * y + m[8];
    double W = W0 + m[6] * x1;
    W = W != 0.0 ? (nearest ? 1.0 : (double)FR_AUG_TAB_SIZE) / W : 0.0;
    *X = fr_aug_sat_round(fmax((double)FR_AUG_INT_MIN, fmin((double)FR_AUG_INT_MAX, (X0 + m[0] * x1) * W)));
    *Y = fr_aug_sat_round(fmax((double)FR_AUG_INT_MIN, fmin((double)FR_AUG_INT_MAX, (Y0 + m[3] * x1) * W)));
}

/* the source position of output pixel (x, y) under the inverse map m */
FR_AUG_FN void fr_aug_map_pos(const double *m, int x, int y, int ow, int oh, int nearest, int *X, int *Y)
{
    if (fr_aug_is_affine(m)) {
        *X = fr_aug_affine_pos(fr_aug_affine_row(m, y, 0), fr_aug_affine_col(m, x, 0), nearest);
        *Y = fr_aug_affine_pos(fr_aug_affine_row(m, y, 1), fr_aug_affine_col(m, x, 1), nearest);
    } else
        fr_aug_persp_pos(m, x, y, ow, oh, nearest, X, Y);
}
#endif

/* Coordinate tables (devices without doubles): per warp record [kind, terms...] computed by the host,
 * FR_AUG_TAB_AFFINE: column terms X[ow], Y[ow] then row terms X[oh], Y[oh] (fr_aug_affine_col/_row);
 * FR_AUG_TAB_PERSPECTIVE: per output row, the positions X[ow] then Y[ow] */
#define FR_AUG_TAB_AFFINE 1
#define FR_AUG_TAB_PERSPECTIVE 2
FR_AUG_FN void fr_aug_tab_pos(FR_AUG_GLOBAL const int *t, int x, int y, int ow, int oh, int nearest, int *X, int *Y)
{
    if (t[0] == FR_AUG_TAB_AFFINE) {
        *X = fr_aug_affine_pos(t[1 + 2 * ow + y], t[1 + x], nearest);
        *Y = fr_aug_affine_pos(t[1 + 2 * ow + oh + y], t[1 + ow + x], nearest);
        return;
    }
    *X = t[1 + 2 * y * ow + x];
    *Y = t[1 + 2 * y * ow + ow + x];
}

/* ---- warps: sampling ---- */

/* OpenCV's bilinear u8: its 15-bit weights are 32·(32−fx)(32−fy) etc., so this integer form is its rounding */
FR_AUG_FN int fr_aug_bilinear_u8(int v00, int v01, int v10, int v11, int fx, int fy)
{
    int w00 = (FR_AUG_TAB_SIZE - fx) * (FR_AUG_TAB_SIZE - fy), w01 = fx * (FR_AUG_TAB_SIZE - fy);
    int w10 = (FR_AUG_TAB_SIZE - fx) * fy, w11 = fx * fy;
    return (v00 * w00 + v01 * w01 + v10 * w10 + v11 * w11 + (1 << (2 * FR_AUG_TAB_BITS - 1))) >> (2 * FR_AUG_TAB_BITS);
}

/* bilinear on f32 images: float weights, this summation order */
FR_AUG_FN float fr_aug_bilinear_f32(float v00, float v01, float v10, float v11, int fx, int fy)
{
    float ax = fx * (1.0f / FR_AUG_TAB_SIZE), ay = fy * (1.0f / FR_AUG_TAB_SIZE);
    float w00 = (1 - ay) * (1 - ax), w01 = (1 - ay) * ax, w10 = ay * (1 - ax), w11 = ay * ax;
    return v00 * w00 + v01 * w01 + v10 * w10 + v11 * w11;
}

/* OpenCV's cubic kernel (A = -0.75) at sub-pixel offset x */
FR_AUG_FN void fr_aug_cubic_coeffs(float x, float *c)
{
    const float A = -0.75f;
    c[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    c[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    c[3] = 1.f - c[0] - c[1] - c[2];
}

/* The 16 bicubic weights of sub-pixel position (fx, fy): floats (f32 images) and OpenCV's 15-bit integers (u8
 * images) that sum to 2^15, the rounding error pushed into the largest or smallest central weight as OpenCV does */
FR_AUG_FN void fr_aug_cubic_weights(int fx, int fy, float *wf, int *wi)
{
    float cy[4], cx[4];
    fr_aug_cubic_coeffs(fy * (1.f / FR_AUG_TAB_SIZE), cy);
    fr_aug_cubic_coeffs(fx * (1.f / FR_AUG_TAB_SIZE), cx);
    int isum = 0;
    for (int k1 = 0; k1 < 4; k1++)
        for (int k2 = 0; k2 < 4; k2++) {
            float v = cy[k1] * cx[k2];
            wf[k1 * 4 + k2] = v;
            wi[k1 * 4 + k2] = (int)FR_AUG_RINT(v * FR_AUG_COEF_SCALE);
            isum += wi[k1 * 4 + k2];
        }
    if (isum != FR_AUG_COEF_SCALE) {
        int diff = isum - FR_AUG_COEF_SCALE, Mk1 = 2, Mk2 = 2, mk1 = 2, mk2 = 2;
        for (int k1 = 2; k1 < 4; k1++)
            for (int k2 = 2; k2 < 4; k2++) {
                if (wi[k1 * 4 + k2] < wi[mk1 * 4 + mk2])
                    mk1 = k1, mk2 = k2;
                else if (wi[k1 * 4 + k2] > wi[Mk1 * 4 + Mk2])
                    Mk1 = k1, Mk2 = k2;
            }
        if (diff < 0)
            wi[Mk1 * 4 + Mk2] -= diff;
        else
            wi[mk1 * 4 + mk2] -= diff;
    }
}

/* a bicubic u8 sum of taps × 15-bit weights, rounded and clipped */
FR_AUG_FN int fr_aug_cubic_u8(int v)
{
    v = (v + (1 << (FR_AUG_COEF_BITS - 1))) >> FR_AUG_COEF_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* ---- warp records: window and map ---- */

/* The source window of a WARP record on a sw×sh source, clipped: win = x0, y0, x1, y1 (a record without one reads
 * the whole source). Returns 1 when the window misses the source: win is then its top-left pixel and
 * fr_aug_window_map sends every output pixel outside (constant border) or onto that pixel. */
FR_AUG_FN int fr_aug_rec_window(FR_AUG_GLOBAL const float *rec, int sw, int sh, int *win)
{
    int x0 = (int)rec[FR_AUG_R_BOX], y0 = (int)rec[FR_AUG_R_BOX + 1];
    int x1 = (int)rec[FR_AUG_R_BOX + 2], y1 = (int)rec[FR_AUG_R_BOX + 3];
    int missed = 0;
    if (x1 > x0 && y1 > y0) {
        x0 = fr_aug_max_int(x0, 0), y0 = fr_aug_max_int(y0, 0);
        x1 = fr_aug_min_int(x1, sw), y1 = fr_aug_min_int(y1, sh);
        if (x1 <= x0 || y1 <= y0) {
            x0 = y0 = 0, x1 = y1 = 1;
            missed = 1;
        }
    } else
        x0 = y0 = 0, x1 = sw, y1 = sh;
    win[0] = x0, win[1] = y0, win[2] = x1, win[3] = y1;
    return missed;
}

#ifdef FR_AUG_FP64
/* the record's inverse map as doubles */
FR_AUG_FN void fr_aug_rec_matrix(FR_AUG_GLOBAL const float *rec, double *m)
{
#ifdef __OPENCL_VERSION__
    __global const uint *w = (__global const uint *)(rec + FR_AUG_R_M);
    for (int q = 0; q < 9; q++)
        m[q] = as_double((uint2)(w[2 * q], w[2 * q + 1]));
#else
    memcpy(m, rec + FR_AUG_R_M, 9 * sizeof(double));
#endif
}

/* The map a WARP record applies to its clipped window (fr_aug_rec_window): the window origin subtracted from the
 * map's output, or for a missed window a map sending everything outside (constant border) or onto its pixel. */
FR_AUG_FN void fr_aug_window_map(double *m, const int *win, int missed, int border)
{
    if (missed) {
        for (int q = 0; q < 9; q++)
            m[q] = q % 4 == 0 ? 1.0 : 0.0;
        m[2] = m[5] = border == 0 ? -1e9 : 0.0;
        return;
    }
    for (int q = 0; q < 3; q++) {
        m[q] -= win[0] * m[6 + q];
        m[3 + q] -= win[1] * m[6 + q];
    }
}
#endif

/* ---- colour ops ---- */

/* the channels a colour op changes: alpha (the 4th, or the 2nd of grey+alpha) is kept, as PIL's enhancers do */
FR_AUG_FN int fr_aug_color_channels(int c) { return c == 4 ? 3 : c == 2 ? 1 : c; }

/* whether an op is a per-value lookup table (one LUT for all channels, or per channel for the histogram ops) */
FR_AUG_FN int fr_aug_is_lut_op(int code)
{
    return code == FR_AUG_CODE_BRIGHTNESS || code == FR_AUG_CODE_CONTRAST || code == FR_AUG_CODE_CONTRAST_TF ||
           code == FR_AUG_CODE_POSTERIZE || code == FR_AUG_CODE_SOLARIZE || code == FR_AUG_CODE_SOLARIZE_ADD ||
           code == FR_AUG_CODE_INVERT || code == FR_AUG_CODE_AUTOCONTRAST || code == FR_AUG_CODE_EQUALIZE;
}

/* The LUT entry of value i for the point ops (brightness, contrast with its mean, posterize, solarize,
 * solarize_add, invert); a = ARG, b = THRESH */
FR_AUG_FN int fr_aug_lut_point(int code, float a, float b, int mean, int i)
{
    if (code == FR_AUG_CODE_BRIGHTNESS)
        return fr_aug_blend_u8(0, i, a);
    if (code == FR_AUG_CODE_CONTRAST || code == FR_AUG_CODE_CONTRAST_TF)
        return fr_aug_blend_u8(mean, i, a);
    if (code == FR_AUG_CODE_POSTERIZE) {
        int bits = fr_aug_clamp_int((int)a, 0, 8);
        return i & (int)(fr_aug_u8)(~((1u << (8 - bits)) - 1));
    }
    if (code == FR_AUG_CODE_SOLARIZE)
        return (float)i < a ? i : 255 - i;
    if (code == FR_AUG_CODE_SOLARIZE_ADD)
        return fr_aug_clamp_int((float)i < b ? i + (int)a : i, 0, 255);
    if (code == FR_AUG_CODE_INVERT)
        return 255 - i;
    return i;
}

/* PIL's contrast mean (int)(sum / npix + 0.5) in double, as the exact integer it always equals: a quotient with a
 * denominator below 2^53 cannot land within double rounding of a half-integer without being one */
FR_AUG_FN int fr_aug_contrast_mean(fr_aug_u64 luma_sum, fr_aug_i64 npix)
{
    return (int)((2 * (fr_aug_i64)luma_sum + npix) / (2 * npix));
}

/* TF's contrast "mean": tf.reduce_sum(histogram) / 256, i.e. the pixel count / 256 (its bug kept on purpose) */
FR_AUG_FN int fr_aug_contrast_tf_mean(fr_aug_i64 npix) { return (int)(npix / 256 > 255 ? 255 : npix / 256); }

/* PIL's ImageOps.equalize LUT of one channel's histogram */
FR_AUG_FN void fr_aug_lut_equalize(FR_AUG_LOCAL const fr_u32 *h, FR_AUG_LOCAL fr_aug_u8 *lut)
{
    int last = -1, nonempty = 0;
    fr_aug_u64 total = 0;
    for (int i = 0; i < 256; i++)
        if (h[i]) {
            last = i, nonempty++;
            total += h[i];
        }
    fr_aug_u64 step = nonempty <= 1 ? 0 : (total - h[last]) / 255;
    fr_aug_u64 n = step / 2;
    for (int i = 0; i < 256; i++) {
        fr_aug_u64 v = step ? n / step : (fr_aug_u64)i;
        lut[i] = (fr_aug_u8)(v > 255 ? 255 : v);
        n += h[i];
    }
}

/* the lowest and highest values present in a histogram (lo > hi when it is empty) */
FR_AUG_FN void fr_aug_hist_range(FR_AUG_LOCAL const fr_u32 *h, int *lo, int *hi)
{
    int a = 0, b = 255;
    while (a < 256 && !h[a])
        a++;
    while (b >= 0 && !h[b])
        b--;
    *lo = a, *hi = b;
}

/* p·2^*e rounded to nearest even at 53 significant bits (a double's mantissa), *e adjusted */
FR_AUG_FN fr_aug_u64 fr_aug_round53(fr_aug_u64 p, int *e)
{
    if (p == 0)
        return 0;
    int len = 64 - FR_AUG_CLZ64(p);
    if (len <= 53)
        return p;
    int sh = len - 53;
    fr_aug_u64 q = p >> sh, r = p & ((((fr_aug_u64)1) << sh) - 1), mid = ((fr_aug_u64)1) << (sh - 1);
    if (r > mid || (r == mid && (q & 1)))
        q++;
    *e += sh;
    if (q >> 53) { /* carried to 2^53: exact at one bit less */
        q >>= 1;
        (*e)++;
    }
    return q;
}

/* PIL's ImageOps.autocontrast value of i for a channel with values lo < hi: scale = 255.0 / (hi - lo),
 * offset = -lo * scale, (int)(i * scale + offset) clipped to 0..255, with every double rounding reproduced in
 * 64-bit integers (so devices without doubles agree; e.g. lo 0, hi 25 maps 25 to 254, not 255) */
FR_AUG_FN int fr_aug_autocontrast_value(int i, int lo, int hi)
{
    int d = hi - lo, k = 52;
    while ((((fr_aug_u64)255) << k) / (fr_aug_u64)d >= (((fr_aug_u64)1) << 53))
        k--;
    fr_aug_u64 num = ((fr_aug_u64)255) << k, q = num / (fr_aug_u64)d, r = num % (fr_aug_u64)d; /* scale = q·2^-k */
    if (2 * r > (fr_aug_u64)d || (2 * r == (fr_aug_u64)d && (q & 1)))
        q++;
    if (q >> 53)
        q >>= 1, k--;
    int ea = -k, eb = -k; /* A·2^ea = i·scale and B·2^eb = lo·scale rounded as doubles, mantissas of 53 bits */
    fr_aug_u64 A = fr_aug_round53((fr_aug_u64)i * q, &ea), B = fr_aug_round53((fr_aug_u64)lo * q, &eb);
    if (A == 0) /* i = 0: -lo·scale <= 0 */
        return 0;
    int e = B == 0 || ea < eb ? ea : eb; /* the exact difference X·2^e: the exponents differ by at most 8 */
    fr_aug_i64 X = (fr_aug_i64)(A << (ea - e)) - (B == 0 ? 0 : (fr_aug_i64)(B << (eb - e)));
    if (X <= 0)
        return 0;
    fr_aug_u64 R = fr_aug_round53((fr_aug_u64)X, &e); /* the double sum R·2^e, truncated toward zero */
    fr_aug_u64 v = e >= 0 ? 256 : -e >= 64 ? 0 : R >> (-e);
    return v > 255 ? 255 : (int)v;
}

/* PIL's ImageOps.autocontrast LUT (cutoff 0) of one channel's histogram */
FR_AUG_FN void fr_aug_lut_autocontrast(FR_AUG_LOCAL const fr_u32 *h, FR_AUG_LOCAL fr_aug_u8 *lut)
{
    int lo, hi;
    fr_aug_hist_range(h, &lo, &hi);
    for (int i = 0; i < 256; i++)
        lut[i] = (fr_aug_u8)(hi > lo ? fr_aug_autocontrast_value(i, lo, hi) : i);
}

/* PIL's SMOOTH filter value (truncated 0.5 + Σ taps·{1,5}/13 in float) from the integer weighted sum S = Σ taps ×
 * (1, centre 5), at most 3315: 0.5 + S/13 is never within 1/26 of an integer, far beyond float's error there, so
 * the truncation is exactly (2S + 13) / 26 */
FR_AUG_FN int fr_aug_smooth_value(int S) { return (2 * S + 13) / 26; }

/* gaussian noise: Box-Muller of two 24-bit uniforms, the second output for odd element indices */
#ifdef FR_AUG_FP64
FR_AUG_FN float fr_aug_gauss(fr_u32 a, fr_u32 b, int second)
{
    double u1 = ((a >> 8) + 1) * (1.0 / 16777217.0), u2 = (b >> 8) * (1.0 / 16777216.0);
    double r = sqrt(-2.0 * log(u1));
    return (float)(second ? r * sin(2 * 3.14159265358979323846 * u2) : r * cos(2 * 3.14159265358979323846 * u2));
}
#endif

/* the noisy value: x + std·z rounded and clipped */
FR_AUG_FN fr_aug_u8 fr_aug_noise_u8(int x, float std, float z)
{
    float v = (float)x + std * z;
    return (fr_aug_u8)(v <= 0.0f ? 0 : v >= 255.0f ? 255 : (int)FR_AUG_RINT(v));
}

#endif
