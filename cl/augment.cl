/* Augmentation warp (FR_OP_AUG_WARP): one work-item per output pixel, the same arithmetic as
 * src/cpu/augment_warp.c — OpenCV's fixed-point source positions, 1/32-pixel bilinear weights, integer
 * rounding — so u8 results are bit-identical to the CPU path. Bicubic stays on the CPU path.
 * OpenCV computes the positions in double. With cl_khr_fp64 the kernels do the same; without it (or with
 * use_tab = 1, which the host sets under FRUGAL_CL_NO_FP64=1 to test this path on any device) the host sends
 * the exact positions as int tables (fr_aug_coord_table: per-column/per-row terms for affine maps, every
 * pixel for perspective ones) and the device only adds integers. The other double steps have exact integer
 * forms (contrast mean) or a host correction table (auto-contrast); gaussian noise falls back to float
 * (within 1 grey level of the CPU path). */
#include "common.h"

#if defined(cl_khr_fp64) && !defined(FR_AUG_NO_FP64)
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#define FR_AUG_FP64 1
#endif

#define AB_BITS 10
#define AB_SCALE 1024.0
#define TAB_BITS 5
#define TAB_SIZE 32

#ifdef FR_AUG_FP64
/* saturating round-half-even of a double to int, as the CPU's sat_int (lrint) */
FR_CL_FN long aw_sat(double v)
{
    if (!(v > -2147483648.0))
        return -2147483648L;
    if (v >= 2147483647.0)
        return 2147483647L;
    return (long)rint(v);
}
#endif

FR_CL_FN int aw_clamp_int(long v) { return (int)(v < -2147483648L ? -2147483648L : v > 2147483647L ? 2147483647L : v); }

/* source index of a tap; -1 = outside under a constant border */
FR_CL_FN int aw_border(int i, int n, int border)
{
    if (i >= 0 && i < n)
        return i;
    if (border == 0)
        return -1;
    if (border == 1)
        return i < 0 ? 0 : n - 1;
    if (n == 1)
        return 0;
    long period = 2 * (long)n - 2, r = (((long)i % period) + period) % period;
    return (int)(r < n ? r : period - r);
}

/* the source position of output pixel (x, y) from a host table (see fr_aug_coord_table); t[0] is the kind */
FR_CL_FN void aw_coords_tab(__global const int *t, int x, int y, int ow, int oh, int nearest, int *X, int *Y)
{
    if (t[0] == 1) {
        long rd = nearest ? 512 : 16;
        int shift = nearest ? AB_BITS : AB_BITS - TAB_BITS;
        *X = aw_clamp_int(((long)t[1 + 2 * ow + y] + rd + (long)t[1 + x]) >> shift);
        *Y = aw_clamp_int(((long)t[1 + 2 * ow + oh + y] + rd + (long)t[1 + ow + x]) >> shift);
        return;
    }
    *X = t[1 + 2 * y * ow + x];
    *Y = t[1 + 2 * y * ow + ow + x];
}

#ifdef FR_AUG_FP64
/* the source position of output pixel (x, y): integer pixels (nearest) or 1/32 fixed point */
FR_CL_FN void aw_coords(__global const float *mp, int x, int y, int ow, int oh, int nearest, int *X, int *Y)
{
    double m[9];
    for (int q = 0; q < 9; q++)
        m[q] = (double)mp[q];
    if (m[6] == 0.0 && m[7] == 0.0 && m[8] == 1.0) {
        long rd = nearest ? 512 : 16;
        int shift = nearest ? AB_BITS : AB_BITS - TAB_BITS;
        long X0 = aw_sat((m[1] * y + m[2]) * AB_SCALE) + rd, Y0 = aw_sat((m[4] * y + m[5]) * AB_SCALE) + rd;
        *X = aw_clamp_int((X0 + aw_sat(m[0] * x * AB_SCALE)) >> shift);
        *Y = aw_clamp_int((Y0 + aw_sat(m[3] * x * AB_SCALE)) >> shift);
        return;
    }
    int bh0 = min(16, oh), bw0 = min(32 * 32 / bh0, ow);
    int xb = (x / bw0) * bw0, x1 = x - xb;
    double X0 = m[0] * xb + m[1] * y + m[2];
    double Y0 = m[3] * xb + m[4] * y + m[5];
    double W0 = m[6] * xb + m[7] * y + m[8];
    double W = W0 + m[6] * x1;
    W = W != 0.0 ? (nearest ? 1.0 / W : (double)TAB_SIZE / W) : 0.0;
    double fX = fmax(-2147483648.0, fmin(2147483647.0, (X0 + m[0] * x1) * W));
    double fY = fmax(-2147483648.0, fmin(2147483647.0, (Y0 + m[3] * x1) * W));
    *X = (int)aw_sat(fX);
    *Y = (int)aw_sat(fY);
}
#endif

/* element offset of (n, y, x, k) in a contiguous NHWC (layout 0) or NCHW (layout 1) batch */
FR_CL_FN int aw_at(const fr_clt p, int layout, int n, int y, int x, int k)
{
    return layout == 0 ? fr_clt_at(p, n, y, x, k) : fr_clt_at(p, n, k, y, x);
}

#define AUG_WARP(NAME, T, IS_U8)                                                                              \
    __kernel void NAME(__global T *dst, const fr_clt pd, __global const T *src, const fr_clt ps,                \
                       __global const float *mats, const fr_clt pm, const int layout, const int interp,          \
                       const int border, const float fill, const int c, const int h, const int w, const int oh,  \
                       const int ow, __global const int *tab, const int use_tab)                                 \
    {                                                                                                            \
        int i = get_global_id(0);                                                                                \
        if (i >= pd.n / c)                                                                                       \
            return;                                                                                              \
        int x = i % ow, y = (i / ow) % oh, n = i / (ow * oh);                                                    \
        int X, Y;                                                                                                \
        AW_COORDS(mats + pm.off + n * 9, tab + tab[n], x, y, ow, oh, interp == 0, &X, &Y);                      \
        T fillv = IS_U8 ? (T)(fill <= 0.0f ? 0 : fill >= 255.0f ? 255 : (int)rint(fill)) : (T)fill;            \
        if (interp == 0) {                                                                                       \
            int ix = aw_border(X, w, border), iy = aw_border(Y, h, border);                                      \
            for (int k = 0; k < c; k++)                                                                          \
                dst[aw_at(pd, layout, n, y, x, k)] =                                                             \
                    (ix < 0 || iy < 0) ? fillv : src[aw_at(ps, layout, n, iy, ix, k)];                            \
            return;                                                                                              \
        }                                                                                                        \
        int fx = X & (TAB_SIZE - 1), fy = Y & (TAB_SIZE - 1), x0 = X >> TAB_BITS, y0 = Y >> TAB_BITS;          \
        int xa = aw_border(x0, w, border), xb = aw_border(x0 + 1, w, border);                                    \
        int ya = aw_border(y0, h, border), yb = aw_border(y0 + 1, h, border);                                    \
        for (int k = 0; k < c; k++) {                                                                            \
            T v00 = (ya < 0 || xa < 0) ? fillv : src[aw_at(ps, layout, n, ya, xa, k)];                           \
            T v01 = (ya < 0 || xb < 0) ? fillv : src[aw_at(ps, layout, n, ya, xb, k)];                           \
            T v10 = (yb < 0 || xa < 0) ? fillv : src[aw_at(ps, layout, n, yb, xa, k)];                           \
            T v11 = (yb < 0 || xb < 0) ? fillv : src[aw_at(ps, layout, n, yb, xb, k)];                           \
            dst[aw_at(pd, layout, n, y, x, k)] = AW_BLEND_##IS_U8(v00, v01, v10, v11, fx, fy);                   \
        }                                                                                                        \
    }

#ifdef FR_AUG_FP64
#define AW_COORDS(m, t, x, y, ow, oh, nearest, X, Y)                                                           \
    do {                                                                                                         \
        if (use_tab)                                                                                             \
            aw_coords_tab(t, x, y, ow, oh, nearest, X, Y);                                                       \
        else                                                                                                     \
            aw_coords(m, x, y, ow, oh, nearest, X, Y);                                                           \
    } while (0)
#else
#define AW_COORDS(m, t, x, y, ow, oh, nearest, X, Y) aw_coords_tab(t, x, y, ow, oh, nearest, X, Y)
#endif

/* u8: OpenCV's 15-bit weights are 32·(32−fx)(32−fy) etc., so this integer form is its rounding */
#define AW_BLEND_1(a, b, cc, d, fx, fy)                                                                          \
    (uchar)(((int)(a) * ((TAB_SIZE - (fx)) * (TAB_SIZE - (fy))) + (int)(b) * ((fx) * (TAB_SIZE - (fy))) +          \
             (int)(cc) * ((TAB_SIZE - (fx)) * (fy)) + (int)(d) * ((fx) * (fy)) + 512) >> 10)
/* f32: the CPU path's float weights and summation order */
#define AW_BLEND_0(a, b, cc, d, fx, fy) aw_blend_f32(a, b, cc, d, fx, fy)
FR_CL_FN float aw_blend_f32(float a, float b, float cc, float d, int fx, int fy)
{
    float ax = fx * (1.0f / TAB_SIZE), ay = fy * (1.0f / TAB_SIZE);
    float w00 = (1 - ay) * (1 - ax), w01 = (1 - ay) * ax, w10 = ay * (1 - ax), w11 = ay * ax;
    return a * w00 + b * w01 + cc * w10 + d * w11;
}

AUG_WARP(aug_warp_u8, uchar, 1)
AUG_WARP(aug_warp_f32, float, 0)

/* ------------------------------------------------------------------------------------------------
 * FR_OP_AUG_APPLY on u8 images: one work-group per sample runs the sample's program records in order,
 * ping-ponging between dst and a scratch buffer, with the CPU path's exact integer/float arithmetic
 * (src/cpu/augment_color.c, augment_warp.c). Group-wide steps are separated by barriers.
 * ------------------------------------------------------------------------------------------------ */
#define AP_MAXL 256
#define AP_REC 20

typedef struct {
    int off, sx, sy, sc, h, w;
} ap_plane;

FR_CL_FN ap_plane ap_make(int off, int layout, int h, int w, int c)
{
    ap_plane p;
    p.off = off, p.h = h, p.w = w;
    if (layout == 0)
        p.sc = 1, p.sx = c, p.sy = w * c;
    else
        p.sx = 1, p.sy = w, p.sc = w * h;
    return p;
}

FR_CL_FN uchar ap_blend(int a, int b, float f)
{
    float t = (float)a + f * (float)(b - a);
    t = t < 0.0f ? 0.0f : t;
    t = t > 255.0f ? 255.0f : t;
    return (uchar)(int)t;
}

FR_CL_FN int ap_luma(int r, int g, int b) { return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16; }

FR_CL_FN void ap_cubic(float x, float *c)
{
    const float A = -0.75f;
    c[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    c[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    c[3] = 1.f - c[0] - c[1] - c[2];
}

/* OpenCV's 16 bicubic weights for one sub-pixel position, as cubic_init() builds its table */
FR_CL_FN void ap_cubic_weights(int fx, int fy, int *t)
{
    float cy[4], cx[4];
    ap_cubic(fy * (1.f / TAB_SIZE), cy);
    ap_cubic(fx * (1.f / TAB_SIZE), cx);
    int isum = 0;
    for (int k1 = 0; k1 < 4; k1++)
        for (int k2 = 0; k2 < 4; k2++) {
            float v = cy[k1] * cx[k2];
            t[k1 * 4 + k2] = (int)rint(v * 32768.0f);
            isum += t[k1 * 4 + k2];
        }
    if (isum != 32768) {
        int diff = isum - 32768, Mk1 = 2, Mk2 = 2, mk1 = 2, mk2 = 2;
        for (int k1 = 2; k1 < 4; k1++)
            for (int k2 = 2; k2 < 4; k2++) {
                if (t[k1 * 4 + k2] < t[mk1 * 4 + mk2])
                    mk1 = k1, mk2 = k2;
                else if (t[k1 * 4 + k2] > t[Mk1 * 4 + Mk2])
                    Mk1 = k1, Mk2 = k2;
            }
        if (diff < 0)
            t[Mk1 * 4 + Mk2] -= diff;
        else
            t[mk1 * 4 + mk2] -= diff;
    }
}

FR_CL_FN uchar ap_tap(__global const uchar *S, ap_plane s, int yy, int xx, int k, uchar fill)
{
    return (yy < 0 || xx < 0) ? fill : S[s.off + yy * s.sy + xx * s.sx + k * s.sc];
}

#ifdef FR_AUG_FP64
/* the source position of output pixel (x, y) of a warp record in double, as the CPU path */
FR_CL_FN void ap_coords(const double *m, ap_plane d, int nearest, int x, int y, int *Xo, int *Yo)
{
    int X, Y;
    if (m[6] == 0.0 && m[7] == 0.0 && m[8] == 1.0) {
        long rd = nearest ? 512 : 16;
        int shift = nearest ? AB_BITS : AB_BITS - TAB_BITS;
        long X0 = aw_sat((m[1] * y + m[2]) * AB_SCALE) + rd, Y0 = aw_sat((m[4] * y + m[5]) * AB_SCALE) + rd;
        X = aw_clamp_int((X0 + aw_sat(m[0] * x * AB_SCALE)) >> shift);
        Y = aw_clamp_int((Y0 + aw_sat(m[3] * x * AB_SCALE)) >> shift);
    } else {
        int bh0 = min(16, d.h), bw0 = min(32 * 32 / bh0, d.w);
        int xb = (x / bw0) * bw0, x1 = x - xb;
        double X0 = m[0] * xb + m[1] * y + m[2], Y0 = m[3] * xb + m[4] * y + m[5], W0 = m[6] * xb + m[7] * y + m[8];
        double W = W0 + m[6] * x1;
        W = W != 0.0 ? (nearest ? 1.0 / W : (double)TAB_SIZE / W) : 0.0;
        X = (int)aw_sat(fmax(-2147483648.0, fmin(2147483647.0, (X0 + m[0] * x1) * W)));
        Y = (int)aw_sat(fmax(-2147483648.0, fmin(2147483647.0, (Y0 + m[3] * x1) * W)));
    }
    *Xo = X, *Yo = Y;
}
#endif

/* one output pixel of a warp record (window already applied to s) at source position (X, Y) */
FR_CL_FN void ap_warp_px(__global uchar *D, ap_plane d, __global const uchar *S, ap_plane s, int X, int Y,
                         int interp, int border, uchar fill, int c, int x, int y)
{
    int nearest = interp == 0;
    int o = d.off + y * d.sy + x * d.sx;
    if (nearest) {
        int ix = aw_border(X, s.w, border), iy = aw_border(Y, s.h, border);
        for (int k = 0; k < c; k++)
            D[o + k * d.sc] = ap_tap(S, s, iy, ix, k, fill);
        return;
    }
    int fx = X & (TAB_SIZE - 1), fy = Y & (TAB_SIZE - 1), x0 = X >> TAB_BITS, y0 = Y >> TAB_BITS;
    if (interp == 1) {
        int xa = aw_border(x0, s.w, border), xb = aw_border(x0 + 1, s.w, border);
        int ya = aw_border(y0, s.h, border), yb = aw_border(y0 + 1, s.h, border);
        int w00 = (TAB_SIZE - fx) * (TAB_SIZE - fy), w01 = fx * (TAB_SIZE - fy), w10 = (TAB_SIZE - fx) * fy, w11 = fx * fy;
        for (int k = 0; k < c; k++) {
            int v = ap_tap(S, s, ya, xa, k, fill) * w00 + ap_tap(S, s, ya, xb, k, fill) * w01 +
                    ap_tap(S, s, yb, xa, k, fill) * w10 + ap_tap(S, s, yb, xb, k, fill) * w11;
            D[o + k * d.sc] = (uchar)((v + 512) >> 10);
        }
        return;
    }
    if (border == 0 && (x0 >= s.w + 1 || x0 + 2 < 0 || y0 >= s.h + 1 || y0 + 2 < 0)) {
        for (int k = 0; k < c; k++)
            D[o + k * d.sc] = fill;
        return;
    }
    int wt[16], xi[4], yi[4];
    ap_cubic_weights(fx, fy, wt);
    for (int t = 0; t < 4; t++) {
        xi[t] = aw_border(x0 - 1 + t, s.w, border);
        yi[t] = aw_border(y0 - 1 + t, s.h, border);
    }
    for (int k = 0; k < c; k++) {
        int v = 0;
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++)
                v += ap_tap(S, s, yi[a], xi[b], k, fill) * wt[a * 4 + b];
        v = (v + (1 << 14)) >> 15;
        D[o + k * d.sc] = (uchar)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

#ifdef FR_AUG_FP64
FR_CL_FN float ap_gauss(uint a, uint b, int second)
{
    double u1 = ((a >> 8) + 1) * (1.0 / 16777217.0), u2 = (b >> 8) * (1.0 / 16777216.0);
    double r = sqrt(-2.0 * log(u1));
    return (float)(second ? r * sin(2 * M_PI * u2) : r * cos(2 * M_PI * u2));
}
#endif

/* the same Box-Muller draw in float: the noisy value may round to a neighbouring grey level */
FR_CL_FN float ap_gauss_f32(uint a, uint b, int second)
{
    float u1 = (float)((a >> 8) + 1) * (1.0f / 16777217.0f), u2 = (float)(b >> 8) * (1.0f / 16777216.0f);
    float r = sqrt(-2.0f * log(u1));
    return second ? r * sinpi(2.0f * u2) : r * cospi(2.0f * u2);
}

/* PIL's auto-contrast value (int)(i * (255.0 / (hi - lo)) - lo * scale) in double without doubles: the exact
 * quotient, one less where the host found that the double expression rounds just below an integer
 * (ac: sorted keys lo << 16 | hi << 8 | i, n of them) */
FR_CL_FN int ap_autocontrast(int i, int lo, int hi, __global const int *ac, int n)
{
    int num = (i - lo) * 255, den = hi - lo;
    int v = num >= 0 ? num / den : -((-num) / den);
    if (num >= 0 && num % den == 0 && n > 0) {
        int key = (lo << 16) | (hi << 8) | i, a = 0, b = n;
        while (a < b) {
            int mid = (a + b) / 2;
            if (ac[mid] < key)
                a = mid + 1;
            else
                b = mid;
        }
        if (a < n && ac[a] == key)
            v--;
    }
    return clamp(v, 0, 255);
}

__kernel void aug_apply_u8(__global uchar *dst, const fr_clt pd, __global const uchar *src, const fr_clt ps,
                           __global const float *prog, const fr_clt pp, __global uchar *tmp, const int layout,
                           const int c, const int h, const int w, const int oh, const int ow, const int k,
                           __global const int *tab, const int use_tab, const int ac_off, const int ac_n)
{
    const int s = get_group_id(1), lane = get_local_id(0), L = get_local_size(0);
    __local uchar lut[4][256];
    __local uint hist[4][256];
    __local long red[AP_MAXL];
    const int nc = c == 4 ? 3 : c == 2 ? 1 : c, npix = oh * ow;
    ap_plane pin = ap_make(ps.off + s * h * w * c, layout, h, w, c);
    ap_plane pa = ap_make(pd.off + s * npix * c, layout, oh, ow, c), pb = ap_make(s * npix * c, layout, oh, ow, c);
    __global uchar *cur = dst, *oth = tmp;
    ap_plane pc = pa, po = pb;
    int have = 0;
    for (int r = 0; r < k; r++) {
        __global const float *rec = prog + pp.off + (s * k + r) * AP_REC;
        int code = (int)rec[0];
        if (code == 0)
            continue;
        if (code == 1) { /* WARP: from the input (first) or the current image into the other buffer */
#ifdef FR_AUG_FP64
            double m[9];
            for (int q = 0; q < 9; q++)
                m[q] = (double)rec[7 + q];
#endif
            __global const uchar *S = have ? cur : src;
            ap_plane sp = have ? pc : pin;
            int x0 = (int)rec[16], y0 = (int)rec[17], x1 = (int)rec[18], y1 = (int)rec[19];
            if (x1 > x0 && y1 > y0) {
                x0 = max(x0, 0), y0 = max(y0, 0), x1 = min(x1, sp.w), y1 = min(y1, sp.h);
                if (x1 <= x0 || y1 <= y0) {
                    x0 = y0 = 0, x1 = y1 = 1;
#ifdef FR_AUG_FP64
                    for (int q = 0; q < 9; q++)
                        m[q] = (q % 4 == 0) ? 1.0 : 0.0;
                    m[2] = m[5] = rec[2] != 0.0f ? 0.0 : -1e9;
#endif
                } else if (x0 || y0) {
#ifdef FR_AUG_FP64
                    for (int q = 0; q < 3; q++) {
                        m[q] -= x0 * m[6 + q];
                        m[3 + q] -= y0 * m[6 + q];
                    }
#endif
                }
                sp.off += y0 * sp.sy + x0 * sp.sx;
                sp.w = x1 - x0, sp.h = y1 - y0;
            }
            __global const int *t = tab + (use_tab ? tab[s * k + r] : 0);
            float f = rec[3];
            uchar fill = (uchar)(f <= 0.0f ? 0 : f >= 255.0f ? 255 : (int)rint(f));
            __global uchar *T = have ? oth : cur;
            ap_plane tp = have ? po : pc;
            for (int i = lane; i < npix; i += L) {
                int X, Y, px = i % ow, py = i / ow;
#ifdef FR_AUG_FP64
                if (!use_tab)
                    ap_coords(m, tp, (int)rec[1] == 0, px, py, &X, &Y);
                else
#endif
                    aw_coords_tab(t, px, py, ow, oh, (int)rec[1] == 0, &X, &Y);
                ap_warp_px(T, tp, S, sp, X, Y, (int)rec[1], (int)rec[2], fill, c, px, py);
            }
            barrier(CLK_GLOBAL_MEM_FENCE);
            if (have) { /* swap */
                __global uchar *t = cur;
                cur = oth, oth = t;
                ap_plane q = pc;
                pc = po, po = q;
            }
            have = 1;
            continue;
        }
        if (!have) {
            for (int i = lane; i < npix; i += L)
                for (int q = 0; q < c; q++)
                    cur[pc.off + (i / ow) * pc.sy + (i % ow) * pc.sx + q * pc.sc] =
                        src[pin.off + (i / ow) * pin.sy + (i % ow) * pin.sx + q * pin.sc];
            barrier(CLK_GLOBAL_MEM_FENCE);
            have = 1;
        }
        const float a = rec[1];
#define PX(i, q) cur[pc.off + ((i) / ow) * pc.sy + ((i) % ow) * pc.sx + (q) * pc.sc]
        if (code == 2 || code == 4 || code == 15 || (code >= 6 && code <= 9)) { /* one LUT for every channel */
            int mean = 0;
            if (code == 4 || code == 15) {
                long sum = 0;
                for (int i = lane; i < npix; i += L)
                    sum += nc >= 3 ? ap_luma(PX(i, 0), PX(i, 1), PX(i, 2)) : PX(i, 0);
                red[lane] = sum;
                barrier(CLK_LOCAL_MEM_FENCE);
                if (lane == 0) {
                    long t = 0;
                    for (int q = 0; q < L; q++)
                        t += red[q];
                    red[0] = t;
                }
                barrier(CLK_LOCAL_MEM_FENCE);
                /* (int)(sum / npix + 0.5) in double equals this integer form: a quotient with denominator
                 * npix < 2^31 cannot fall within double rounding of a half-integer without being one */
                if (code == 4)
                    mean = (int)((2 * red[0] + npix) / (2 * (long)npix));
                else
                    mean = clamp(npix / 256, 0, 255);
                barrier(CLK_LOCAL_MEM_FENCE);
            }
            for (int i = lane; i < 256; i += L) {
                int v;
                if (code == 2)
                    v = ap_blend(0, i, a);
                else if (code == 4 || code == 15)
                    v = ap_blend(mean, i, a);
                else if (code == 6) {
                    int bits = clamp((int)a, 0, 8);
                    v = i & (int)(uchar)(~((1u << (8 - bits)) - 1));
                } else if (code == 7)
                    v = (float)i < a ? i : 255 - i;
                else if (code == 8)
                    v = clamp((float)i < rec[2] ? i + (int)a : i, 0, 255);
                else
                    v = 255 - i;
                lut[0][i] = (uchar)v;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int i = lane; i < npix; i += L)
                for (int q = 0; q < nc; q++)
                    PX(i, q) = lut[0][PX(i, q)];
            barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
        } else if (code == 10 || code == 11) { /* autocontrast / equalize: per-channel histograms */
            for (int i = lane; i < 256 * 4; i += L)
                hist[i / 256][i % 256] = 0;
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int i = lane; i < npix; i += L)
                for (int q = 0; q < nc; q++)
                    atomic_inc(&hist[q][PX(i, q)]);
            barrier(CLK_LOCAL_MEM_FENCE);
            if (lane < nc) {
                __local uint *hh = hist[lane];
                if (code == 11) {
                    int last = -1, nonempty = 0;
                    ulong total = 0;
                    for (int i = 0; i < 256; i++)
                        if (hh[i]) {
                            last = i, nonempty++;
                            total += hh[i];
                        }
                    ulong step = nonempty <= 1 ? 0 : (total - hh[last]) / 255;
                    ulong n2 = step / 2;
                    for (int i = 0; i < 256; i++) {
                        ulong v = step ? n2 / step : (ulong)i;
                        lut[lane][i] = (uchar)(v > 255 ? 255 : v);
                        n2 += hh[i];
                    }
                } else {
                    int lo = 0, hi = 255;
                    while (lo < 256 && !hh[lo])
                        lo++;
                    while (hi >= 0 && !hh[hi])
                        hi--;
#ifdef FR_AUG_FP64
                    if (!use_tab) {
                        double scale = hi > lo ? 255.0 / (hi - lo) : 1.0, offset = hi > lo ? -lo * scale : 0.0;
                        for (int i = 0; i < 256; i++) {
                            int iv = hi > lo ? (int)(i * scale + offset) : i;
                            lut[lane][i] = (uchar)clamp(iv, 0, 255);
                        }
                    } else
#endif
                        for (int i = 0; i < 256; i++)
                            lut[lane][i] = (uchar)(hi > lo ? ap_autocontrast(i, lo, hi, tab + ac_off, ac_n) : i);
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int i = lane; i < npix; i += L)
                for (int q = 0; q < nc; q++)
                    PX(i, q) = lut[q][PX(i, q)];
            barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
        } else if (code == 3 || code == 12) { /* color / grayscale */
            if (nc >= 3)
                for (int i = lane; i < npix; i += L) {
                    int r0 = PX(i, 0), g0 = PX(i, 1), b0 = PX(i, 2), l = ap_luma(r0, g0, b0);
                    if (code == 3)
                        PX(i, 0) = ap_blend(l, r0, a), PX(i, 1) = ap_blend(l, g0, a), PX(i, 2) = ap_blend(l, b0, a);
                    else
                        PX(i, 0) = PX(i, 1) = PX(i, 2) = (uchar)l;
                }
            barrier(CLK_GLOBAL_MEM_FENCE);
        } else if (code == 5) { /* sharpness: smooth into the other buffer, blend, swap */
            if (ow >= 3 && oh >= 3) {
                const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
                for (int i = lane; i < npix; i += L) {
                    int x = i % ow, y = i / ow, o = po.off + y * po.sy + x * po.sx;
                    for (int q = 0; q < c; q++) {
                        int base = pc.off + y * pc.sy + x * pc.sx + q * pc.sc;
                        uchar v = cur[base];
                        if (q < nc && x > 0 && y > 0 && x < ow - 1 && y < oh - 1) {
                            int dx = pc.sx, dy = pc.sy;
                            float ss = 0.5f;
                            ss += (float)cur[base + dy - dx] * k1 + (float)cur[base + dy] * k1 + (float)cur[base + dy + dx] * k1;
                            ss += (float)cur[base - dx] * k1 + (float)cur[base] * k5 + (float)cur[base + dx] * k1;
                            ss += (float)cur[base - dy - dx] * k1 + (float)cur[base - dy] * k1 + (float)cur[base - dy + dx] * k1;
                            ss = ss < 0.0f ? 0.0f : ss;
                            ss = ss > 255.0f ? 255.0f : ss;
                            v = ap_blend((int)ss, v, a);
                        }
                        oth[o + q * po.sc] = v;
                    }
                }
                barrier(CLK_GLOBAL_MEM_FENCE);
                __global uchar *t = cur;
                cur = oth, oth = t;
                ap_plane q = pc;
                pc = po, po = q;
            }
        } else if (code == 13) { /* gaussian noise from Philox, as the CPU path */
            uint k0 = (uint)rec[2] | ((uint)rec[3] << 24), kk1 = (uint)rec[4];
            for (int i = lane; i < npix; i += L)
                for (int q = 0; q < nc; q++) {
                    long e = (long)i * nc + q;
                    fr_philox4 rr = fr_rng_block(k0, kk1, FR_RNG_NOISE, 0, 0, (uint)(e / 2));
#ifdef FR_AUG_FP64
                    float z = use_tab ? ap_gauss_f32(rr.v[0], rr.v[1], (int)(e & 1)) : ap_gauss(rr.v[0], rr.v[1], (int)(e & 1));
#else
                    float z = ap_gauss_f32(rr.v[0], rr.v[1], (int)(e & 1));
#endif
                    float v = (float)PX(i, q) + a * z;
                    PX(i, q) = (uchar)(v <= 0 ? 0 : v >= 255 ? 255 : (int)rint(v));
                }
            barrier(CLK_GLOBAL_MEM_FENCE);
        } else if (code == 14) { /* cutout */
            int bx0 = max((int)rec[7], 0), by0 = max((int)rec[8], 0), bx1 = min((int)rec[9], ow), by1 = min((int)rec[10], oh);
            uchar fill = (uchar)(a <= 0.0f ? 0 : a >= 255.0f ? 255 : (int)rint(a));
            for (int i = lane; i < npix; i += L) {
                int x = i % ow, y = i / ow;
                if (x >= bx0 && x < bx1 && y >= by0 && y < by1)
                    for (int q = 0; q < nc; q++)
                        PX(i, q) = fill;
            }
            barrier(CLK_GLOBAL_MEM_FENCE);
        }
#undef PX
    }
    if (!have) /* no op at all: copy the input */
        for (int i = lane; i < npix; i += L)
            for (int q = 0; q < c; q++)
                dst[pa.off + (i / ow) * pa.sy + (i % ow) * pa.sx + q * pa.sc] =
                    src[pin.off + (i / ow) * pin.sy + (i % ow) * pin.sx + q * pin.sc];
    else if (cur != dst)
        for (int i = lane; i < npix; i += L)
            for (int q = 0; q < c; q++)
                dst[pa.off + (i / ow) * pa.sy + (i % ow) * pa.sx + q * pa.sc] =
                    cur[pc.off + (i / ow) * pc.sy + (i % ow) * pc.sx + q * pc.sc];
}
