/* Augmentation kernels: AUG_WARP (one work-item per output pixel), AUG_APPLY (one work-group per sample runs its
 * program records), AUG_MIX and AUG_MIX_LABELS (one work-item per value). The maths is augment_common.h's, shared
 * with the CPU path, so results are bit-identical (gaussian noise without doubles: within 1 grey level).
 * OpenCV computes warp positions in double: devices with cl_khr_fp64 do the same; without it, or when doubles are
 * slow (the host then gives tables: use_tab), AUG_APPLY reads exact integer positions from a host-filled table
 * input (fr_aug_tables_fill). */
#include "common.h"
#include "augment_common.h"

/* one image of a batch: element (x, y, k) at off + y*sy + x*sx + k*sc */
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

#define AP_AT(p, x, y, k) ((p).off + (y) * (p).sy + (x) * (p).sx + (k) * (p).sc)

/* Output pixel (x, y) of a warp at source position (X, Y) (nearest: pixels, else 1/32 pixel), for u8 and f32
 * images; wf/wi: the bicubic weights of (X, Y)'s sub-pixel position when interp is bicubic. */
#define AP_WARP_PX(NAME, T, TAP_SUM, BILIN, CUBIC)                                                                \
    FR_CL_FN void NAME(__global T *D, ap_plane d, __global const T *S, ap_plane s, int X, int Y, int interp,        \
                       int border, T fill, int c, int x, int y)                                                    \
    {                                                                                                              \
        int o = AP_AT(d, x, y, 0);                                                                                 \
        if (interp == 0) {                                                                                         \
            int ix = fr_aug_border_index(X, s.w, border), iy = fr_aug_border_index(Y, s.h, border);                \
            for (int k = 0; k < c; k++)                                                                            \
                D[o + k * d.sc] = (ix < 0 || iy < 0) ? fill : S[AP_AT(s, ix, iy, k)];                              \
            return;                                                                                                \
        }                                                                                                          \
        int fx = X & (FR_AUG_TAB_SIZE - 1), fy = Y & (FR_AUG_TAB_SIZE - 1);                                        \
        int x0 = X >> FR_AUG_TAB_BITS, y0 = Y >> FR_AUG_TAB_BITS;                                                  \
        if (interp == 1) {                                                                                         \
            int xa = fr_aug_border_index(x0, s.w, border), xb = fr_aug_border_index(x0 + 1, s.w, border);          \
            int ya = fr_aug_border_index(y0, s.h, border), yb = fr_aug_border_index(y0 + 1, s.h, border);          \
            for (int k = 0; k < c; k++) {                                                                          \
                T v00 = (ya < 0 || xa < 0) ? fill : S[AP_AT(s, xa, ya, k)];                                        \
                T v01 = (ya < 0 || xb < 0) ? fill : S[AP_AT(s, xb, ya, k)];                                        \
                T v10 = (yb < 0 || xa < 0) ? fill : S[AP_AT(s, xa, yb, k)];                                        \
                T v11 = (yb < 0 || xb < 0) ? fill : S[AP_AT(s, xb, yb, k)];                                        \
                D[o + k * d.sc] = BILIN(v00, v01, v10, v11, fx, fy);                                               \
            }                                                                                                      \
            return;                                                                                                \
        }                                                                                                          \
        float wf[16];                                                                                              \
        int wi[16], xi[4], yi[4];                                                                                  \
        fr_aug_cubic_weights(fx, fy, wf, wi);                                                                      \
        for (int t = 0; t < 4; t++) {                                                                              \
            xi[t] = fr_aug_border_index(x0 - 1 + t, s.w, border);                                                  \
            yi[t] = fr_aug_border_index(y0 - 1 + t, s.h, border);                                                  \
        }                                                                                                          \
        for (int k = 0; k < c; k++) {                                                                              \
            TAP_SUM v = 0;                                                                                         \
            for (int a = 0; a < 4; a++)                                                                            \
                for (int b = 0; b < 4; b++)                                                                        \
                    v += ((yi[a] < 0 || xi[b] < 0) ? fill : S[AP_AT(s, xi[b], yi[a], k)]) * CUBIC[a * 4 + b];        \
            D[o + k * d.sc] = (T)(FR_AUG_CUBIC_##T(v));                                                            \
        }                                                                                                          \
    }

#define FR_AUG_CUBIC_uchar(v) fr_aug_cubic_u8(v)
#define FR_AUG_CUBIC_float(v) (v)
#define AP_BILIN_U8(a, b, c, d, fx, fy) (uchar)fr_aug_bilinear_u8(a, b, c, d, fx, fy)
AP_WARP_PX(ap_warp_px_u8, uchar, int, AP_BILIN_U8, wi)
AP_WARP_PX(ap_warp_px_f32, float, float, fr_aug_bilinear_f32, wf)

#ifdef FR_AUG_FP64
/* FR_OP_AUG_WARP: one inverse map per sample from f32 [N, 9] (devices with doubles; else the CPU path runs it) */
#define AUG_WARP(NAME, T, PX, FILL)                                                                                \
    __kernel void NAME(__global T *dst, const fr_clt pd, __global const T *src, const fr_clt ps,                     \
                       __global const float *mats, const fr_clt pm, const int layout, const int interp,              \
                       const int border, const float fill, const int c, const int h, const int w, const int oh,      \
                       const int ow)                                                                                 \
    {                                                                                                                \
        int i = get_global_id(0);                                                                                    \
        if (i >= pd.n / c)                                                                                           \
            return;                                                                                                  \
        int x = i % ow, y = (i / ow) % oh, n = i / (ow * oh);                                                        \
        double m[9];                                                                                                 \
        for (int q = 0; q < 9; q++)                                                                                  \
            m[q] = (double)mats[pm.off + n * 9 + q];                                                                 \
        int X, Y;                                                                                                    \
        fr_aug_map_pos(m, x, y, ow, oh, interp == 0, &X, &Y);                                                        \
        PX(dst, ap_make(pd.off + n * oh * ow * c, layout, oh, ow, c), src,                                           \
           ap_make(ps.off + n * h * w * c, layout, h, w, c), X, Y, interp, border, FILL, c, x, y);                   \
    }
AUG_WARP(aug_warp_u8, uchar, ap_warp_px_u8, fr_aug_fill_u8(fill))
AUG_WARP(aug_warp_f32, float, ap_warp_px_f32, fill)
#endif

/* gaussian noise in float (devices without doubles): the value may round to a neighbouring grey level */
FR_CL_FN float ap_gauss_f32(uint a, uint b, int second)
{
    float u1 = (float)((a >> 8) + 1) * (1.0f / 16777217.0f), u2 = (float)(b >> 8) * (1.0f / 16777216.0f);
    float r = sqrt(-2.0f * log(u1));
    return second ? r * sinpi(2.0f * u2) : r * cospi(2.0f * u2);
}

/* ------------------------------------------------------------------------------------------------------------
 * FR_OP_AUG_APPLY on u8 images: work-group s runs sample s's k records in order, ping-ponging between dst and the
 * work image (the op's third source) with barriers between group-wide steps; tab (when use_tab) holds the warp
 * positions computed by the host.
 * ------------------------------------------------------------------------------------------------------------ */
#define AP_MAXL 256

__kernel void aug_apply_u8(__global uchar *dst, const fr_clt pd, __global const uchar *src, const fr_clt ps,
                           __global const float *prog, const fr_clt pp, __global uchar *work, const fr_clt pw,
                           __global const int *tab, const fr_clt pt, const int use_tab, const int layout, const int c,
                           const int h, const int w, const int oh, const int ow, const int k)
{
    const int s = get_group_id(1), lane = get_local_id(0), L = get_local_size(0);
    __local uchar lut[4][256];
    __local uint hist[4][256];
    __local long red[AP_MAXL];
    __local int range[4][2];
    const int nc = fr_aug_color_channels(c), npix = oh * ow;
    const ap_plane pin = ap_make(ps.off + s * h * w * c, layout, h, w, c);
    ap_plane pc = ap_make(pd.off + s * npix * c, layout, oh, ow, c), po = ap_make(pw.off + s * npix * c, layout, oh, ow, c);
    const ap_plane pa = pc;
    __global uchar *cur = dst, *oth = work; /* may be one buffer (offsets differ): track the side by flag */
    int have = 0, in_work = 0;              /* the image so far is in cur (else still the input); cur = work */
    for (int r = 0; r < k; r++) {
        __global const float *rec = prog + pp.off + (s * k + r) * FR_AUG_REC;
        const int code = (int)rec[FR_AUG_R_CODE];
        const float a = rec[FR_AUG_R_ARG];
        if (code == FR_AUG_CODE_IDENTITY)
            continue;
        if (code == FR_AUG_CODE_WARP) { /* from the input (first op) or the current image into the other buffer */
            __global const uchar *S = have ? cur : src;
            ap_plane sp = have ? pc : pin;
            int win[4];
            int missed = fr_aug_rec_window(rec, sp.w, sp.h, win);
            (void)missed; /* without doubles the host folded it into the table */
#ifdef FR_AUG_FP64
            double m[9];
            fr_aug_rec_matrix(rec, m);
            fr_aug_window_map(m, win, missed, (int)rec[FR_AUG_R_BORDER]);
#endif
            sp.off += win[1] * sp.sy + win[0] * sp.sx;
            sp.w = win[2] - win[0], sp.h = win[3] - win[1];
            __global const int *t = tab + pt.off + (use_tab ? tab[pt.off + s * k + r] : 0);
            const int interp = (int)rec[FR_AUG_R_INTERP], border = (int)rec[FR_AUG_R_BORDER];
            const uchar fill = fr_aug_fill_u8(rec[FR_AUG_R_FILL]);
            __global uchar *T = have ? oth : cur;
            ap_plane tp = have ? po : pc;
            for (int i = lane; i < npix; i += L) {
                int X, Y, px = i % ow, py = i / ow;
#ifdef FR_AUG_FP64
                if (!use_tab)
                    fr_aug_map_pos(m, px, py, ow, oh, interp == 0, &X, &Y);
                else
#endif
                    fr_aug_tab_pos(t, px, py, ow, oh, interp == 0, &X, &Y);
                ap_warp_px_u8(T, tp, S, sp, X, Y, interp, border, fill, c, px, py);
            }
            barrier(CLK_GLOBAL_MEM_FENCE);
            if (have) { /* swap */
                __global uchar *q = cur;
                cur = oth, oth = q;
                ap_plane qp = pc;
                pc = po, po = qp;
                in_work = !in_work;
            }
            have = 1;
            continue;
        }
        if (!have) { /* a colour op first: start from a copy of the input */
            for (int i = lane; i < npix; i += L)
                for (int q = 0; q < c; q++)
                    cur[AP_AT(pc, i % ow, i / ow, q)] = src[AP_AT(pin, i % ow, i / ow, q)];
            barrier(CLK_GLOBAL_MEM_FENCE);
            have = 1;
        }
#define PX(i, q) cur[AP_AT(pc, (i) % ow, (i) / ow, q)]
        if (fr_aug_is_lut_op(code) && code != FR_AUG_CODE_AUTOCONTRAST && code != FR_AUG_CODE_EQUALIZE) {
            int mean = 0; /* one LUT for every channel */
            if (code == FR_AUG_CODE_CONTRAST) {
                long sum = 0;
                for (int i = lane; i < npix; i += L)
                    sum += nc >= 3 ? fr_aug_luma(PX(i, 0), PX(i, 1), PX(i, 2)) : PX(i, 0);
                red[lane] = sum;
                barrier(CLK_LOCAL_MEM_FENCE);
                if (lane == 0) {
                    long tot = 0;
                    for (int q = 0; q < L; q++)
                        tot += red[q];
                    red[0] = tot;
                }
                barrier(CLK_LOCAL_MEM_FENCE);
                mean = fr_aug_contrast_mean((ulong)red[0], npix);
                barrier(CLK_LOCAL_MEM_FENCE);
            } else if (code == FR_AUG_CODE_CONTRAST_TF)
                mean = fr_aug_contrast_tf_mean(npix);
            for (int i = lane; i < 256; i += L)
                lut[0][i] = (uchar)fr_aug_lut_point(code, a, rec[FR_AUG_R_THRESH], mean, i);
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int i = lane; i < npix; i += L)
                for (int q = 0; q < nc; q++)
                    PX(i, q) = lut[0][PX(i, q)];
            barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
        } else if (code == FR_AUG_CODE_AUTOCONTRAST || code == FR_AUG_CODE_EQUALIZE) { /* per-channel histograms */
            for (int i = lane; i < 256 * 4; i += L)
                hist[i / 256][i % 256] = 0;
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int i = lane; i < npix; i += L)
                for (int q = 0; q < nc; q++)
                    atomic_inc(&hist[q][PX(i, q)]);
            barrier(CLK_LOCAL_MEM_FENCE);
            if (code == FR_AUG_CODE_EQUALIZE) {
                if (lane < nc)
                    fr_aug_lut_equalize(hist[lane], lut[lane]);
            } else {
                if (lane < nc) {
                    int lo, hi;
                    fr_aug_hist_range(hist[lane], &lo, &hi);
                    range[lane][0] = lo, range[lane][1] = hi;
                }
                barrier(CLK_LOCAL_MEM_FENCE);
                for (int i = lane; i < 256 * nc; i += L) {
                    int q = i / 256, v = i % 256, lo = range[q][0], hi = range[q][1];
                    lut[q][v] = (uchar)(hi > lo ? fr_aug_autocontrast_value(v, lo, hi) : v);
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int i = lane; i < npix; i += L)
                for (int q = 0; q < nc; q++)
                    PX(i, q) = lut[q][PX(i, q)];
            barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
        } else if (code == FR_AUG_CODE_COLOR || code == FR_AUG_CODE_GRAYSCALE) {
            if (nc >= 3)
                for (int i = lane; i < npix; i += L) {
                    int r0 = PX(i, 0), g0 = PX(i, 1), b0 = PX(i, 2), l = fr_aug_luma(r0, g0, b0);
                    if (code == FR_AUG_CODE_COLOR)
                        PX(i, 0) = fr_aug_blend_u8(l, r0, a), PX(i, 1) = fr_aug_blend_u8(l, g0, a),
                              PX(i, 2) = fr_aug_blend_u8(l, b0, a);
                    else
                        PX(i, 0) = PX(i, 1) = PX(i, 2) = (uchar)l;
                }
            barrier(CLK_GLOBAL_MEM_FENCE);
        } else if (code == FR_AUG_CODE_SHARPNESS) { /* smooth-and-blend into the other buffer, swap */
            for (int i = lane; i < npix; i += L) {
                int x = i % ow, y = i / ow;
                for (int q = 0; q < c; q++) {
                    int base = AP_AT(pc, x, y, q);
                    uchar v = cur[base];
                    if (q < nc && x > 0 && y > 0 && x < ow - 1 && y < oh - 1) {
                        int dx = pc.sx, dy = pc.sy;
                        int S = cur[base - dy - dx] + cur[base - dy] + cur[base - dy + dx] + cur[base - dx] +
                                5 * cur[base] + cur[base + dx] + cur[base + dy - dx] + cur[base + dy] +
                                cur[base + dy + dx];
                        v = fr_aug_blend_u8(fr_aug_smooth_value(S), v, a);
                    }
                    oth[AP_AT(po, x, y, q)] = v;
                }
            }
            barrier(CLK_GLOBAL_MEM_FENCE);
            __global uchar *q = cur;
            cur = oth, oth = q;
            ap_plane qp = pc;
            pc = po, po = qp;
            in_work = !in_work;
        } else if (code == FR_AUG_CODE_NOISE) { /* Philox as the CPU path */
            uint k0 = (uint)rec[FR_AUG_R_KEY] | ((uint)rec[FR_AUG_R_KEY + 1] << 24), k1 = (uint)rec[FR_AUG_R_KEY + 2];
            for (int i = lane; i < npix; i += L)
                for (int q = 0; q < nc; q++) {
                    long e = (long)i * nc + q;
                    fr_philox4 rr = fr_rng_block(k0, k1, FR_RNG_NOISE, 0, 0, (uint)(e / 2));
#ifdef FR_AUG_FP64
                    float z = use_tab ? ap_gauss_f32(rr.v[0], rr.v[1], (int)(e & 1)) : fr_aug_gauss(rr.v[0], rr.v[1], (int)(e & 1));
#else
                    float z = ap_gauss_f32(rr.v[0], rr.v[1], (int)(e & 1));
#endif
                    PX(i, q) = fr_aug_noise_u8(PX(i, q), a, z);
                }
            barrier(CLK_GLOBAL_MEM_FENCE);
        } else if (code == FR_AUG_CODE_CUTOUT) {
            int bx0 = max((int)rec[FR_AUG_R_BOX], 0), by0 = max((int)rec[FR_AUG_R_BOX + 1], 0);
            int bx1 = min((int)rec[FR_AUG_R_BOX + 2], ow), by1 = min((int)rec[FR_AUG_R_BOX + 3], oh);
            uchar fill = fr_aug_fill_u8(a);
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
                dst[AP_AT(pa, i % ow, i / ow, q)] = src[AP_AT(pin, i % ow, i / ow, q)];
    else if (in_work)
        for (int i = lane; i < npix; i += L)
            for (int q = 0; q < c; q++)
                dst[AP_AT(pa, i % ow, i / ow, q)] = cur[AP_AT(pc, i % ow, i / ow, q)];
}

/* ------------------------------------------------------------------------------------------------------------
 * FR_OP_AUG_MIX: each output value from its own sample, the partner's (CutMix box) or both (MixUp)
 * ------------------------------------------------------------------------------------------------------------ */
#define AUG_MIX(NAME, T, MIXUP)                                                                                     \
    __kernel void NAME(__global T *dst, const fr_clt pd, __global const T *src, const fr_clt ps,                   \
                       __global const float *rec, const fr_clt pr, const int layout, const int c, const int h,       \
                       const int w)                                                                                \
    {                                                                                                              \
        int i = get_global_id(0);                                                                                  \
        if (i >= pd.n)                                                                                             \
            return;                                                                                                \
        int hwc = h * w * c, n = i / hwc, e = i % hwc, x, y;                                                       \
        if (layout == 0)                                                                                           \
            x = (e / c) % w, y = e / (w * c);                                                                      \
        else                                                                                                       \
            x = e % w, y = (e / w) % h;                                                                            \
        __global const float *r = rec + pr.off + n * FR_AUG_MIX_REC;                                               \
        int mode = (int)r[FR_AUG_MIX_R_MODE], j = (int)r[FR_AUG_MIX_R_PARTNER];                                    \
        T own = src[ps.off + i];                                                                                   \
        if (mode == 0 || j < 0 || j >= pd.ne[0]) {                                                                 \
            dst[pd.off + i] = own;                                                                                 \
            return;                                                                                                \
        }                                                                                                          \
        T other = src[ps.off + j * hwc + e];                                                                       \
        if (mode == 2) {                                                                                           \
            dst[pd.off + i] = MIXUP(own, other, r[FR_AUG_MIX_R_LAMBDA]);                                           \
            return;                                                                                                \
        }                                                                                                          \
        int x0 = max((int)r[FR_AUG_MIX_R_BOX], 0), y0 = max((int)r[FR_AUG_MIX_R_BOX + 1], 0);                      \
        int x1 = min((int)r[FR_AUG_MIX_R_BOX + 2], w), y1 = min((int)r[FR_AUG_MIX_R_BOX + 3], h);                  \
        dst[pd.off + i] = (x >= x0 && x < x1 && y >= y0 && y < y1) ? other : own;                                  \
    }
AUG_MIX(aug_mix_u8, uchar, fr_aug_mixup_u8)
AUG_MIX(aug_mix_f32, float, fr_aug_mixup_f32)

/* FR_OP_AUG_MIX_LABELS: mixed targets [N, K] from labels i32 [N] (one-hot; the host's order: 0 += lambda,
 * += 1 - lambda) or from soft targets f32 [N, K] (soft = 1: y holds their bits) */
__kernel void aug_mix_labels(__global float *dst, const fr_clt pd, __global const int *y, const fr_clt py,
                             __global const float *rec, const fr_clt pr, const int kk, const int soft)
{
    int i = get_global_id(0);
    if (i >= pd.n)
        return;
    int n = i / kk, q = i % kk;
    __global const float *r = rec + pr.off + n * FR_AUG_MIX_REC;
    int j = (int)r[FR_AUG_MIX_R_PARTNER];
    j = j >= 0 && j < pd.ne[0] ? j : n;
    float lam = fr_aug_mix_lambda(r), v = 0.0f;
    if (soft) {
        __global const float *t = (__global const float *)y + py.off;
        v = fr_aug_mix_target(t[n * kk + q], t[j * kk + q], lam);
    } else {
        if (y[py.off + n] == q)
            v += lam;
        if (y[py.off + j] == q)
            v += 1.0f - lam;
    }
    dst[pd.off + i] = v;
}
