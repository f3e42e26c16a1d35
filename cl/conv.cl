/* conv2d kernels. GEMM path (src/opencl/ops_conv.c runs the GEMMs): im2col into columns [K, nb*P] (K = cg*kh*kw,
 * P = oh*ow, nb samples side by side), the GEMM result [og, nb*P] back to NCHW with bias and ReLU, output
 * gradients NCHW -> [og, nb*P], and the column gradient back to the input (col2im as a gather: each input
 * element sums its own taps, no atomics). Direct path for convolutions with few channels per group
 * (depthwise): one output per work-item forward and for the input gradient, the weight gradient split over
 * work-groups with a fixed-order tree. Contiguous NCHW tensors; geometry in an fr_clconv (common.h). */
#include "common.h"

/* GEMM-like: a*b+c may become one fma (see common.h). */
#pragma OPENCL FP_CONTRACT ON

/* im2col and col2im give each work-item a segment of up to `seg` consecutive positions of one row (global
 * dimension 0 over rows x segments; the host picks seg <= 16, shorter when the device needs more
 * work-items): the index arithmetic is done once per segment and the inner loops run over contiguous
 * memory. The other column kernels take `run` consecutive columns per work-item (also the host's choice). */

/* the outputs o in [*lo, *hi) of [s0, s1) whose input coordinate o*s + x0 lies in [0, n) */
FR_CL_FN void conv_span(int n, int s, int x0, int s0, int s1, int *lo, int *hi)
{
    int a = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
    int b = n - x0 <= 0 ? 0 : (n - x0 - 1) / s + 1;
    *lo = max(a, s0);
    *hi = max(*lo, min(b, s1));
}

/* col[k][j] of group g for samples n0.. n0+nb-1: k = (c*kh + ki)*kw + kj, j = n*P + oy*ow + ox; 0 in the
 * padding. Global (nb*oh*ceil(ow / seg), K). */
__kernel void conv_im2col(__global float *col, __global const float *x, const fr_clt px, const fr_clconv q,
                          const int n0, const int nb, const int g, const int seg)
{
    int segs = (q.ow + seg - 1) / seg;
    int r = get_global_id(0), k = get_global_id(1), cg = q.c / q.groups;
    if (r >= nb * q.oh * segs || k >= cg * q.kh * q.kw)
        return;
    int row = r / segs, s0 = (r - row * segs) * seg, s1 = min(s0 + seg, q.ow);
    int n = row / q.oh, oy = row - n * q.oh;
    int kj = k % q.kw, t = k / q.kw, ki = t % q.kh, c = t / q.kh;
    __global float *dst = col + k * nb * q.oh * q.ow + row * q.ow;
    int iy = oy * q.sh - q.ph + ki * q.dh, x0 = kj * q.dw - q.pw, lo = s1, hi = s1;
    if (iy >= 0 && iy < q.h)
        conv_span(q.w, q.sw, x0, s0, s1, &lo, &hi);
    __global const float *src = x + px.off + (((n0 + n) * q.c + g * cg + c) * q.h + iy) * q.w + x0;
    for (int ox = s0; ox < lo; ox++)
        dst[ox] = 0.0f;
    if (q.sw == 1)
        for (int ox = lo; ox < hi; ox++)
            dst[ox] = src[ox];
    else
        for (int ox = lo; ox < hi; ox++)
            dst[ox] = src[ox * q.sw];
    for (int ox = hi; ox < s1; ox++)
        dst[ox] = 0.0f;
}

/* y[n0+n][g*og + o][p] = t[o][n*P + p] (+ bias) (ReLU). Global (ceil(nb*P / run), og). */
__kernel void conv_cols_to_nchw(__global float *y, const fr_clt py, __global const float *t,
                                __global const float *b, const fr_clt pb, const int has_bias, const int relu,
                                const fr_clconv q, const int n0, const int nb, const int g, const int run)
{
    int j = get_global_id(0) * run, o = get_global_id(1);
    int P = q.oh * q.ow, ncol = nb * P, og = q.o / q.groups;
    if (j >= ncol || o >= og)
        return;
    int n = j / P, p = j - n * P, oc = g * og + o;
    float bias = has_bias ? b[pb.off + oc * pb.st[0]] : 0.0f;
    __global float *yr = y + py.off + ((n0 + n) * q.o + oc) * P;
    for (int e = 0; e < run && j + e < ncol; e++) {
        float v = t[o * ncol + j + e];
        if (has_bias)
            v += bias;
        if (relu)
            v = v > 0.0f ? v : 0.0f;
        yr[p] = v;
        if (++p == P) {
            p = 0;
            yr += q.o * P;
        }
    }
}

/* t[o][n*P + p] = gy[n0+n][g*og + o][p]. Global (ceil(nb*P / run), og). */
__kernel void conv_nchw_to_cols(__global float *t, __global const float *gy, const fr_clt pg, const fr_clconv q,
                                const int n0, const int nb, const int g, const int run)
{
    int j = get_global_id(0) * run, o = get_global_id(1);
    int P = q.oh * q.ow, ncol = nb * P, og = q.o / q.groups;
    if (j >= ncol || o >= og)
        return;
    int n = j / P, p = j - n * P;
    __global const float *gr = gy + pg.off + ((n0 + n) * q.o + g * og + o) * P;
    for (int e = 0; e < run && j + e < ncol; e++) {
        t[o * ncol + j + e] = gr[p];
        if (++p == P) {
            p = 0;
            gr += q.o * P;
        }
    }
}

/* dx[n0+n][g*cg + c][iy][ix] = Σ over the taps (ki, kj) that read it of dcol[(c*kh + ki)*kw + kj][n*P + oy*ow + ox],
 * added in (ki, kj) order into the work-item's own segment of an input row (no atomics). Global
 * (nb*h*ceil(w / seg), cg). */
__kernel void conv_col2im(__global float *dx, const fr_clt pdx, __global const float *dcol, const fr_clconv q,
                          const int n0, const int nb, const int g, const int seg)
{
    int segs = (q.w + seg - 1) / seg;
    int r = get_global_id(0), c = get_global_id(1), cg = q.c / q.groups;
    if (r >= nb * q.h * segs || c >= cg)
        return;
    int row = r / segs, s0 = (r - row * segs) * seg, s1 = min(s0 + seg, q.w);
    int n = row / q.h, iy = row - n * q.h, P = q.oh * q.ow, ncol = nb * P;
    __global float *d = dx + pdx.off + (((n0 + n) * q.c + g * cg + c) * q.h + iy) * q.w;
    for (int ix = s0; ix < s1; ix++)
        d[ix] = 0.0f;
    for (int ki = 0; ki < q.kh; ki++) {
        int ty = iy + q.ph - ki * q.dh;
        if (ty < 0)
            break; /* ty only decreases with ki */
        int oy = ty / q.sh;
        if (oy * q.sh != ty || oy >= q.oh)
            continue;
        for (int kj = 0; kj < q.kw; kj++) {
            /* input column ix = ox*sw + x0 reads output column ox of this tap */
            int x0 = kj * q.dw - q.pw;
            int a = max(s0 - x0, 0), b = s1 - 1 - x0; /* ox*sw in [a, b] */
            if (b < 0)
                continue;
            int lo = (a + q.sw - 1) / q.sw, hi = min(b / q.sw + 1, q.ow);
            __global const float *src = dcol + ((c * q.kh + ki) * q.kw + kj) * ncol + n * P + oy * q.ow;
            for (int ox = lo; ox < hi; ox++)
                d[ox * q.sw + x0] += src[ox];
        }
    }
}

/* ---- direct path ---- */

/* y[n,o,oy,ox] = Σ_{c in o's group, ki, kj} x·w (+ bias) (ReLU); one output per work-item. */
__kernel void conv_conv2d(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                          __global const float *w, const fr_clt pw, __global const float *b, const fr_clt pb,
                          const int has_bias, const int relu, const fr_clconv q)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int P = q.oh * q.ow, r = i / P, p = i - r * P;
    int o = r % q.o, n = r / q.o, oy = p / q.ow, ox = p - oy * q.ow;
    int cg = q.c / q.groups, og = q.o / q.groups, g = o / og;
    float s = 0.0f;
    __global const float *xs = x + px.off + (n * q.c + g * cg) * q.h * q.w;
    __global const float *ws = w + pw.off + o * cg * q.kh * q.kw;
    for (int ch = 0; ch < cg; ch++, xs += q.h * q.w, ws += q.kh * q.kw)
        for (int ki = 0; ki < q.kh; ki++) {
            int iy = oy * q.sh - q.ph + ki * q.dh;
            if (iy < 0 || iy >= q.h)
                continue;
            for (int kj = 0; kj < q.kw; kj++) {
                int ix = ox * q.sw - q.pw + kj * q.dw;
                if (ix < 0 || ix >= q.w)
                    continue;
                s += xs[iy * q.w + ix] * ws[ki * q.kw + kj];
            }
        }
    if (has_bias)
        s += b[pb.off + o * pb.st[0]];
    if (relu)
        s = s > 0.0f ? s : 0.0f;
    y[py.off + i] = s;
}

/* dx[n,c,iy,ix] = Σ_{o in c's group, ki, kj} gy[n,o,oy,ox]·w[o,c',ki,kj] where iy = oy·sh − ph + ki·dh */
__kernel void conv_conv2d_bwd_input(__global float *dx, const fr_clt pdx, __global const float *w, const fr_clt pw,
                                    __global const float *gy, const fr_clt pg, const fr_clconv q)
{
    int i = get_global_id(0);
    if (i >= pdx.n)
        return;
    int HW = q.h * q.w, r = i / HW, p = i - r * HW;
    int ch = r % q.c, n = r / q.c, iy = p / q.w, ix = p - iy * q.w;
    int cg = q.c / q.groups, og = q.o / q.groups, g = ch / cg, cl = ch - g * cg;
    int P = q.oh * q.ow;
    float s = 0.0f;
    for (int ki = 0; ki < q.kh; ki++) {
        int ty = iy + q.ph - ki * q.dh;
        if (ty < 0)
            break;
        int oy = ty / q.sh;
        if (oy * q.sh != ty || oy >= q.oh)
            continue;
        for (int kj = 0; kj < q.kw; kj++) {
            int tx = ix + q.pw - kj * q.dw;
            if (tx < 0)
                break;
            int ox = tx / q.sw;
            if (ox * q.sw != tx || ox >= q.ow)
                continue;
            for (int o = g * og; o < (g + 1) * og; o++)
                s += gy[pg.off + (n * q.o + o) * P + oy * q.ow + ox] *
                     w[pw.off + ((o * cg + cl) * q.kh + ki) * q.kw + kj];
        }
    }
    dx[pdx.off + i] = s;
}

/* dw[o,c,ki,kj] = Σ_{n,oy,ox} gy[n,o,oy,ox]·x[n, g·cg + c, oy·sh − ph + ki·dh, ox·sw − pw + kj·dw]. The N*P
 * terms of weight i (global dimension 1) are split into S chunks (work-group s of dimension 0), each summed
 * by the group's lanes and a fixed tree: S == 1 writes dw, else part[i*S + s] for reduce_parts. */
__kernel void conv_bwd_weight_part(__global float *dw_, const fr_clt pdw, __global float *part,
                                   __global const float *x, const fr_clt px, __global const float *gy,
                                   const fr_clt pg, const fr_clconv q, const int S)
{
    __local float acc[FR_CL_LANES];
    int lid = get_local_id(0), nl = get_local_size(0), s = get_group_id(0), i = get_global_id(1);
    int cg = q.c / q.groups, og = q.o / q.groups;
    int kj = i % q.kw, r = i / q.kw, ki = r % q.kh;
    r /= q.kh;
    int c = r % cg, o = r / cg, g = o / og;
    int P = q.oh * q.ow, T = q.n * P, chunk = (T + S - 1) / S, lo = s * chunk, hi = min(T, lo + chunk);
    __global const float *xs = x + px.off + (g * cg + c) * q.h * q.w;
    __global const float *gs = gy + pg.off + o * P;
    float sum = 0.0f;
    for (int t = lo + lid; t < hi; t += nl) {
        int n = t / P, p = t - n * P, oy = p / q.ow, ox = p - oy * q.ow;
        int iy = oy * q.sh - q.ph + ki * q.dh, ix = ox * q.sw - q.pw + kj * q.dw;
        if (iy >= 0 && iy < q.h && ix >= 0 && ix < q.w)
            sum += gs[n * q.o * P + p] * xs[(n * q.c * q.h + iy) * q.w + ix];
    }
    acc[lid] = sum;
    fr_tree_sum(acc, lid, nl);
    if (lid == 0) {
        if (S == 1)
            dw_[pdw.off + i] = acc[0];
        else
            part[i * S + s] = acc[0];
    }
}

/* In place on y [n, o, P]: y += bias[o], then ReLU (the epilogue of a 1x1 convolution's batched GEMM). */
__kernel void conv_bias_act(__global float *y, const fr_clt py, __global const float *b, const fr_clt pb,
                            const int has_bias, const int relu, const int P)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float v = y[py.off + i];
    if (has_bias)
        v += b[pb.off + ((i / P) % py.ne[1]) * pb.st[0]];
    if (relu)
        v = v > 0.0f ? v : 0.0f;
    y[py.off + i] = v;
}

/* ---- Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (as src/cpu/conv.c): the filter U = G·g·Gᵀ and each
 * 4x4 input tile V = Bᵀ·d·B become 16 planes ξ, M_ξ = U_ξ·V_ξ are 16 GEMMs of one batch ([o, c]·[c, tiles]),
 * and Aᵀ·M·A gives 2x2 outputs: 2.25x fewer multiplies than im2col + GEMM. Columns j = n*T + ty*tw + tx
 * for the T = th*tw tiles of each of nb samples; plane ξ of V is [c][nb*T], of M [o][nb*T]. q is the
 * convolution computed (for the input gradient: of gy with the flipped filter, pads 2 - p). ---- */

/* Tile column j of nb samples: sample *n, tile row *ty and column *tx; returns the columns nb*T. */
FR_CL_FN int wino_tile(const fr_clconv q, int nb, int j, int *n, int *ty, int *tx)
{
    int tw = (q.ow + 1) / 2, T = ((q.oh + 1) / 2) * tw;
    *n = j / T;
    int t = j - *n * T;
    *ty = t / tw;
    *tx = t - *ty * tw;
    return nb * T;
}

/* Row i of U[ξ = 4i + j][a][b] of filter w [O][C][3][3]: a = o, b = c; flip: a = c, b = o and the filter rotated
 * by 180°. Global (nb_, na * 4). */
__kernel void conv_wino_filter(__global float *u, __global const float *w, const fr_clt pw, const int na, const int nb_,
                               const int flip)
{
    int b = get_global_id(0), a = get_global_id(1) >> 2, i = get_global_id(1) & 3;
    if (b >= nb_ || a >= na)
        return;
    __global const float *src = w + pw.off + (flip ? b * na + a : a * nb_ + b) * 9;
    float g[3][3], t[3];
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 3; k++)
            g[r][k] = flip ? src[(2 - r) * 3 + (2 - k)] : src[r * 3 + k];
    for (int k = 0; k < 3; k++) /* row i of G·g */
        t[k] = i == 0 ? g[0][k] : i == 3 ? g[2][k] : 0.5f * ((g[0][k] + (i == 1 ? g[1][k] : -g[1][k])) + g[2][k]);
    float r[4] = {t[0], 0.5f * ((t[0] + t[1]) + t[2]), 0.5f * ((t[0] - t[1]) + t[2]), t[2]};
    int plane = na * nb_;
    for (int j = 0; j < 4; j++)
        u[(i * 4 + j) * plane + a * nb_ + b] = r[j];
}

/* V[ξ][c][j] = Bᵀ·d·B of the 4x4 input patch of tile j (zero outside the input). Global (nb*T, c). */
__kernel void conv_wino_input(__global float *v, __global const float *x, const fr_clt px, const fr_clconv q,
                              const int n0, const int nb)
{
    int j = get_global_id(0), c = get_global_id(1), n, ty, tx, ncol = wino_tile(q, nb, j, &n, &ty, &tx);
    if (j >= ncol || c >= q.c)
        return;
    int y0 = 2 * ty - q.ph, x0 = 2 * tx - q.pw;
    __global const float *xc = x + px.off + ((n0 + n) * q.c + c) * q.h * q.w;
    float d[4][4];
    for (int r = 0; r < 4; r++)
        for (int k = 0; k < 4; k++) {
            int iy = y0 + r, ix = x0 + k;
            d[r][k] = iy >= 0 && iy < q.h && ix >= 0 && ix < q.w ? xc[iy * q.w + ix] : 0.0f;
        }
    float t4[4][4];
    for (int k = 0; k < 4; k++) { /* Bᵀ·d down the columns */
        t4[0][k] = d[0][k] - d[2][k];
        t4[1][k] = d[1][k] + d[2][k];
        t4[2][k] = d[2][k] - d[1][k];
        t4[3][k] = d[1][k] - d[3][k];
    }
    int plane = q.c * ncol;
    __global float *vo = v + c * ncol + j;
    for (int r = 0; r < 4; r++) { /* then ·B along the rows */
        vo[(r * 4 + 0) * plane] = t4[r][0] - t4[r][2];
        vo[(r * 4 + 1) * plane] = t4[r][1] + t4[r][2];
        vo[(r * 4 + 2) * plane] = t4[r][2] - t4[r][1];
        vo[(r * 4 + 3) * plane] = t4[r][1] - t4[r][3];
    }
}

/* y[n0+n][o] tile j = Aᵀ·M·A (+ bias) (ReLU), the 2x2 outputs inside the map. Global (nb*T, o). */
__kernel void conv_wino_output(__global float *y, const fr_clt py, __global const float *m, __global const float *b,
                               const fr_clt pb, const int has_bias, const int relu, const fr_clconv q, const int n0,
                               const int nb)
{
    int j = get_global_id(0), o = get_global_id(1), n, ty, tx, ncol = wino_tile(q, nb, j, &n, &ty, &tx);
    if (j >= ncol || o >= q.o)
        return;
    int plane = q.o * ncol;
    __global const float *mo = m + o * ncol + j;
    float p[16];
    for (int k = 0; k < 16; k++)
        p[k] = mo[k * plane];
    float a0 = (p[0] + p[4]) + p[8], a1 = (p[1] + p[5]) + p[9];
    float a2 = (p[2] + p[6]) + p[10], a3 = (p[3] + p[7]) + p[11];
    float b0 = (p[4] - p[8]) - p[12], b1 = (p[5] - p[9]) - p[13];
    float b2 = (p[6] - p[10]) - p[14], b3 = (p[7] - p[11]) - p[15];
    float bias = has_bias ? b[pb.off + o * pb.st[0]] : 0.0f;
    float r[2][2] = {{((a0 + a1) + a2) + bias, ((a1 - a2) - a3) + bias},
                     {((b0 + b1) + b2) + bias, ((b1 - b2) - b3) + bias}};
    __global float *yo = y + py.off + ((n0 + n) * q.o + o) * q.oh * q.ow;
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++) {
            int oy = 2 * ty + i, ox = 2 * tx + k;
            float v = relu ? (r[i][k] > 0.0f ? r[i][k] : 0.0f) : r[i][k];
            if (oy < q.oh && ox < q.ow)
                yo[oy * q.ow + ox] = v;
        }
}

/* dM[ξ][o][j] = A·g·Aᵀ of the 2x2 output-gradient tile j (zero outside the map). Global (nb*T, o). */
__kernel void conv_wino_grad(__global float *dm, __global const float *gy, const fr_clt pg, const fr_clconv q,
                             const int n0, const int nb)
{
    int j = get_global_id(0), o = get_global_id(1), n, ty, tx, ncol = wino_tile(q, nb, j, &n, &ty, &tx);
    if (j >= ncol || o >= q.o)
        return;
    __global const float *g = gy + pg.off + ((n0 + n) * q.o + o) * q.oh * q.ow;
    float e[2][2];
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++) {
            int oy = 2 * ty + i, ox = 2 * tx + k;
            e[i][k] = oy < q.oh && ox < q.ow ? g[oy * q.ow + ox] : 0.0f;
        }
    /* rows of A·g: g0, g0 + g1, g0 − g1, −g1; then each row [a, b] -> [a, a + b, a − b, −b] */
    float rw[4][2] = {{e[0][0], e[0][1]},
                      {e[0][0] + e[1][0], e[0][1] + e[1][1]},
                      {e[0][0] - e[1][0], e[0][1] - e[1][1]},
                      {-e[1][0], -e[1][1]}};
    int plane = q.o * ncol;
    __global float *d = dm + o * ncol + j;
    for (int r = 0; r < 4; r++) {
        d[(r * 4 + 0) * plane] = rw[r][0];
        d[(r * 4 + 1) * plane] = rw[r][0] + rw[r][1];
        d[(r * 4 + 2) * plane] = rw[r][0] - rw[r][1];
        d[(r * 4 + 3) * plane] = -rw[r][1];
    }
}

/* Row i of dW[o][c] = Gᵀ·dU·G of dU[ξ][o][c], Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]]. Global (c, o * 3). */
__kernel void conv_wino_dw(__global float *dw, const fr_clt pdw, __global const float *du, const int O, const int C)
{
    int c = get_global_id(0), o = get_global_id(1) / 3, i = get_global_id(1) - o * 3;
    if (c >= C || o >= O)
        return;
    float u[16], t[4];
    for (int k = 0; k < 16; k++)
        u[k] = du[(k * O + o) * C + c];
    for (int k = 0; k < 4; k++) /* row i of Gᵀ·dU */
        t[k] = i == 0 ? u[k] + 0.5f * (u[4 + k] + u[8 + k])
             : i == 1 ? 0.5f * (u[4 + k] - u[8 + k])
                      : 0.5f * (u[4 + k] + u[8 + k]) + u[12 + k];
    __global float *d = dw + pdw.off + (o * C + c) * 9 + i * 3;
    d[0] = t[0] + 0.5f * (t[1] + t[2]);
    d[1] = 0.5f * (t[1] - t[2]);
    d[2] = 0.5f * (t[1] + t[2]) + t[3];
}
