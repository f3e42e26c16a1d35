/* conv2d kernels (direct, one work-item per output element): forward with bias and fused ReLU, grad input
 * (gather over the outputs each input feeds), grad weight, and the per-channel sum for bias gradients.
 * Geometry args: stride h/w, padding h/w, dilation h/w, groups. Contiguous NCHW tensors. */
#include "common.h"

__kernel void conv_conv2d(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                          __global const float *w, const fr_clt pw, __global const float *b, const fr_clt pb,
                          const int has_bias, const int relu, const int sh, const int sw, const int ph, const int pw_,
                          const int dh, const int dw, const int groups)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int c[4];
    fr_unravel(py, i, c); /* n, o, oy, ox */
    int C = px.ne[1], H = px.ne[2], W = px.ne[3], KH = pw.ne[2], KW = pw.ne[3];
    int cg = C / groups, og = py.ne[1] / groups, g = c[1] / og;
    float s = 0.0f;
    __global const float *xs = x + px.off + (c[0] * C + g * cg) * H * W;
    __global const float *ws = w + pw.off + c[1] * cg * KH * KW;
    for (int ch = 0; ch < cg; ch++, xs += H * W, ws += KH * KW)
        for (int ki = 0; ki < KH; ki++) {
            int iy = c[2] * sh - ph + ki * dh;
            if (iy < 0 || iy >= H)
                continue;
            for (int kj = 0; kj < KW; kj++) {
                int ix = c[3] * sw - pw_ + kj * dw;
                if (ix < 0 || ix >= W)
                    continue;
                s += xs[iy * W + ix] * ws[ki * KW + kj];
            }
        }
    if (has_bias)
        s += b[pb.off + c[1] * pb.st[0]];
    if (relu)
        s = s > 0.0f ? s : 0.0f;
    y[fr_clt_index(py, i)] = s;
}

/* dx[n,c,iy,ix] = Σ_{o in c's group, ki, kj} gy[n,o,oy,ox]·w[o,c',ki,kj] where iy = oy·sh − ph + ki·dh */
__kernel void conv_conv2d_bwd_input(__global float *dx, const fr_clt pdx, __global const float *w, const fr_clt pw,
                                    __global const float *gy, const fr_clt pg, const int sh, const int sw,
                                    const int ph, const int pw_, const int dh, const int dw, const int groups)
{
    int i = get_global_id(0);
    if (i >= pdx.n)
        return;
    int c[4];
    fr_unravel(pdx, i, c); /* n, ch, iy, ix */
    int C = pdx.ne[1], O = pg.ne[1], OH = pg.ne[2], OW = pg.ne[3], KH = pw.ne[2], KW = pw.ne[3];
    int cg = C / groups, og = O / groups, g = c[1] / cg, cl = c[1] - g * cg;
    float s = 0.0f;
    for (int ki = 0; ki < KH; ki++) {
        int ty = c[2] + ph - ki * dh;
        if (ty < 0 || ty % sh)
            continue;
        int oy = ty / sh;
        if (oy >= OH)
            continue;
        for (int kj = 0; kj < KW; kj++) {
            int tx = c[3] + pw_ - kj * dw;
            if (tx < 0 || tx % sw)
                continue;
            int ox = tx / sw;
            if (ox >= OW)
                continue;
            for (int o = g * og; o < (g + 1) * og; o++)
                s += gy[fr_clt_at(pg, c[0], o, oy, ox)] * w[fr_clt_at(pw, o, cl, ki, kj)];
        }
    }
    dx[fr_clt_index(pdx, i)] = s;
}

/* the outputs o in [*lo, *hi) whose input coordinate o·s − p + off lies in [0, n) */
FR_CL_FN void conv_valid(int n, int n_out, int s, int p, int off, int *lo, int *hi)
{
    int a = p - off; /* o·s >= a */
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    int b = n - 1 + p - off; /* o·s <= b */
    *hi = b < 0 ? 0 : min(n_out, b / s + 1);
}

/* dw[o,c,ki,kj] = Σ_{n,oy,ox} gy[n,o,oy,ox]·x[n, g·cg + c, oy·sh − ph + ki·dh, ox·sw − pw + kj·dw]
 * (contiguous x and gy; the valid output ranges are computed once, so the loop has no bounds tests) */
__kernel void conv_conv2d_bwd_weight(__global float *dw_, const fr_clt pdw, __global const float *x, const fr_clt px,
                                     __global const float *gy, const fr_clt pg, const int sh, const int sw,
                                     const int ph, const int pw_, const int dh, const int dw, const int groups)
{
    int i = get_global_id(0);
    if (i >= pdw.n)
        return;
    int c[4];
    fr_unravel(pdw, i, c); /* o, c, ki, kj */
    int N = px.ne[0], C = px.ne[1], H = px.ne[2], W = px.ne[3], O = pg.ne[1], OH = pg.ne[2], OW = pg.ne[3];
    int og = O / groups, g = c[0] / og, cg = pdw.ne[1];
    int oy0, oy1, ox0, ox1;
    conv_valid(H, OH, sh, ph, c[2] * dh, &oy0, &oy1);
    conv_valid(W, OW, sw, pw_, c[3] * dw, &ox0, &ox1);
    float s = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float *xr = x + px.off + (n * C + g * cg + c[1]) * H * W;
        __global const float *gr = gy + pg.off + (n * O + c[0]) * OH * OW;
        for (int oy = oy0; oy < oy1; oy++) {
            __global const float *xrow = xr + (oy * sh - ph + c[2] * dh) * W - pw_ + c[3] * dw;
            __global const float *grow = gr + oy * OW;
            for (int ox = ox0; ox < ox1; ox++)
                s += grow[ox] * xrow[ox * sw];
        }
    }
    dw_[pdw.off + i] = s;
}

/* y[c] = Σ over every axis but 1 of a [N, C, inner] */
__kernel void conv_channel_sum(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa,
                               const int inner)
{
    int ch = get_global_id(0);
    if (ch >= py.n)
        return;
    int N = pa.ne[0], C = pa.ne[1];
    float s = 0.0f, comp = 0.0f;
    for (int n = 0; n < N; n++)
        for (int e = 0; e < inner; e++)
            fr_kahan_add(&s, &comp, a[pa.off + (n * C + ch) * inner + e]);
    y[fr_clt_index(py, ch)] = s;
}
