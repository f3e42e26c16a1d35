/* max-pool2d and avg-pool2d kernels and their gradients (gathers, no atomics). Args: kernel, stride, padding.
 * Contiguous NCHW tensors; max ties go to the first maximum in row-major window order, as the CPU path. */
#include "common.h"

/* flat index within the (H, W) plane of the first maximum of window (oy, ox) */
FR_CL_FN int pool_argmax(__global const float *x, int base, int H, int W, int oy, int ox, int k, int s, int p)
{
    int y0 = oy * s - p, x0 = ox * s - p;
    int y1 = min(y0 + k, H), x1 = min(x0 + k, W);
    y0 = max(y0, 0);
    x0 = max(x0, 0);
    int best = y0 * W + x0;
    float m = x[base + best];
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            float v = x[base + iy * W + ix];
            if (v > m || (isnan(v) && !isnan(m))) {
                m = v;
                best = iy * W + ix;
            }
        }
    return best;
}

/* the outputs o0..o1 (inclusive) whose window o·s − p .. o·s − p + k − 1 covers input i */
FR_CL_FN void pool_cover(int i, int k, int s, int p, int n_out, int *o0, int *o1)
{
    int lo = i + p - k + 1;
    *o0 = lo <= 0 ? 0 : (lo + s - 1) / s;
    *o1 = min(n_out - 1, (i + p) / s);
}

__kernel void pool_maxpool2d(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                             const int k, const int s, const int p)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int OW = py.ne[3], OH = py.ne[2], H = px.ne[2], W = px.ne[3];
    int plane = i / (OH * OW), r = i - plane * OH * OW;
    int base = px.off + plane * H * W;
    y[py.off + i] = x[base + pool_argmax(x, base, H, W, r / OW, r % OW, k, s, p)];
}

/* dx at (iy, ix) = Σ gy over the windows whose first maximum is (iy, ix) */
__kernel void pool_maxpool2d_bwd(__global float *dx, const fr_clt pdx, __global const float *x, const fr_clt px,
                                 __global const float *gy, const fr_clt pg, const int k, const int s, const int p)
{
    int i = get_global_id(0);
    if (i >= pdx.n)
        return;
    int H = pdx.ne[2], W = pdx.ne[3], OH = pg.ne[2], OW = pg.ne[3];
    int plane = i / (H * W), r = i - plane * H * W, iy = r / W, ix = r % W;
    int base = px.off + plane * H * W;
    int oy0, oy1, ox0, ox1;
    pool_cover(iy, k, s, p, OH, &oy0, &oy1);
    pool_cover(ix, k, s, p, OW, &ox0, &ox1);
    float g = 0.0f;
    for (int oy = oy0; oy <= oy1; oy++)
        for (int ox = ox0; ox <= ox1; ox++)
            if (pool_argmax(x, base, H, W, oy, ox, k, s, p) == r)
                g += gy[pg.off + plane * OH * OW + oy * OW + ox];
    dx[pdx.off + i] = g;
}

__kernel void pool_avgpool2d(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                             const int k, const int s, const int p)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int OW = py.ne[3], OH = py.ne[2], H = px.ne[2], W = px.ne[3];
    int plane = i / (OH * OW), r = i - plane * OH * OW, oy = r / OW, ox = r % OW;
    int base = px.off + plane * H * W;
    int y0 = oy * s - p, x0 = ox * s - p;
    int y1 = min(y0 + k, H), x1 = min(x0 + k, W);
    y0 = max(y0, 0);
    x0 = max(x0, 0);
    float sum = 0.0f;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++)
            sum += x[base + iy * W + ix];
    y[py.off + i] = sum * (1.0f / (float)(k * k));
}

__kernel void pool_avgpool2d_bwd(__global float *dx, const fr_clt pdx, __global const float *gy, const fr_clt pg,
                                 const int k, const int s, const int p)
{
    int i = get_global_id(0);
    if (i >= pdx.n)
        return;
    int H = pdx.ne[2], W = pdx.ne[3], OH = pg.ne[2], OW = pg.ne[3];
    int plane = i / (H * W), r = i - plane * H * W, iy = r / W, ix = r % W;
    float inv = 1.0f / (float)(k * k), g = 0.0f;
    int oy0, oy1, ox0, ox1;
    pool_cover(iy, k, s, p, OH, &oy0, &oy1);
    pool_cover(ix, k, s, p, OW, &ox0, &ox1);
    for (int oy = oy0; oy <= oy1; oy++)
        for (int ox = ox0; ox <= ox1; ox++)
            g += gy[pg.off + plane * OH * OW + oy * OW + ox] * inv;
    dx[pdx.off + i] = g;
}
