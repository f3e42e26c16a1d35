/* max-pool2d, avg-pool2d (padding, ceil_mode) and adaptive avg-pool2d kernels and their gradients (gathers, no
 * atomics). Args: kernel, stride, padding, ceil_mode, exclude_pad. Contiguous NCHW tensors; max ties go to the
 * first maximum in row-major window order, as the CPU path; window formulas from nn_math.h. */
#include "common.h"
#include "nn_math.h"

/* flat index within the (H, W) plane of the first maximum of window (oy, ox) */
FR_CL_FN int pool_argmax(__global const float *x, int base, int H, int W, int oy, int ox, int k, int s, int p)
{
    int y0, y1, x0, x1;
    fr_pool_window(oy, k, s, p, H, &y0, &y1);
    fr_pool_window(ox, k, s, p, W, &x0, &x1);
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

/* 1 / the average's divisor for window (oy, ox): its size in the padded input, or its input elements only */
FR_CL_FN float pool_avg_inv(int oy, int ox, int H, int W, int k, int s, int p, int excl)
{
    int y0, y1, x0, x1;
    int span = fr_pool_window(oy, k, s, p, H, &y0, &y1) * fr_pool_window(ox, k, s, p, W, &x0, &x1);
    return 1.0f / (float)(excl ? (y1 - y0) * (x1 - x0) : span);
}

__kernel void pool_maxpool2d(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                             const int k, const int s, const int p, const int ceil_mode, const int excl)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int OW = py.ne[3], OH = py.ne[2], H = px.ne[2], W = px.ne[3];
    int plane = i / (OH * OW), r = i - plane * OH * OW;
    int base = px.off + plane * H * W;
    y[py.off + i] = x[base + pool_argmax(x, base, H, W, r / OW, r % OW, k, s, p)];
}

/* the stored argmax of every window (plane offsets), for the gather forward and the backward below */
__kernel void pool_maxpool2d_index(__global int *ix, const fr_clt pix, __global const float *x, const fr_clt px,
                                   const int k, const int s, const int p, const int ceil_mode, const int excl)
{
    int i = get_global_id(0);
    if (i >= pix.n)
        return;
    int OW = pix.ne[3], OH = pix.ne[2], H = px.ne[2], W = px.ne[3];
    int plane = i / (OH * OW), r = i - plane * OH * OW;
    ix[pix.off + i] = pool_argmax(x, px.off + plane * H * W, H, W, r / OW, r % OW, k, s, p);
}

/* y = x at the stored argmax */
__kernel void pool_maxpool2d_at(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                                __global const int *ix, const fr_clt pix, const int k, const int s, const int p,
                                const int ceil_mode, const int excl)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int plane = i / (py.ne[2] * py.ne[3]);
    y[py.off + i] = x[px.off + plane * px.ne[2] * px.ne[3] + ix[pix.off + i]];
}

/* dx at (iy, ix) = Σ gy over the covering windows whose stored argmax is (iy, ix) */
__kernel void pool_maxpool2d_bwd_at(__global float *dx, const fr_clt pdx, __global const int *ix, const fr_clt pix,
                                    __global const float *gy, const fr_clt pg, const int k, const int s, const int p,
                                    const int ceil_mode, const int excl)
{
    int i = get_global_id(0);
    if (i >= pdx.n)
        return;
    int H = pdx.ne[2], W = pdx.ne[3], OH = pg.ne[2], OW = pg.ne[3];
    int plane = i / (H * W), r = i - plane * H * W, iy = r / W, ixx = r % W;
    int oy0, oy1, ox0, ox1;
    fr_pool_cover(iy, k, s, p, OH, &oy0, &oy1);
    fr_pool_cover(ixx, k, s, p, OW, &ox0, &ox1);
    float g = 0.0f;
    for (int oy = oy0; oy <= oy1; oy++)
        for (int ox = ox0; ox <= ox1; ox++) {
            int o = plane * OH * OW + oy * OW + ox;
            if (ix[pix.off + o] == r)
                g += gy[pg.off + o];
        }
    dx[pdx.off + i] = g;
}

/* dx at (iy, ix) = Σ gy over the windows whose first maximum is (iy, ix) */
__kernel void pool_maxpool2d_bwd(__global float *dx, const fr_clt pdx, __global const float *x, const fr_clt px,
                                 __global const float *gy, const fr_clt pg, const int k, const int s, const int p,
                                 const int ceil_mode, const int excl)
{
    int i = get_global_id(0);
    if (i >= pdx.n)
        return;
    int H = pdx.ne[2], W = pdx.ne[3], OH = pg.ne[2], OW = pg.ne[3];
    int plane = i / (H * W), r = i - plane * H * W, iy = r / W, ix = r % W;
    int base = px.off + plane * H * W;
    int oy0, oy1, ox0, ox1;
    fr_pool_cover(iy, k, s, p, OH, &oy0, &oy1);
    fr_pool_cover(ix, k, s, p, OW, &ox0, &ox1);
    float g = 0.0f;
    for (int oy = oy0; oy <= oy1; oy++)
        for (int ox = ox0; ox <= ox1; ox++)
            if (pool_argmax(x, base, H, W, oy, ox, k, s, p) == r)
                g += gy[pg.off + plane * OH * OW + oy * OW + ox];
    dx[pdx.off + i] = g;
}

__kernel void pool_avgpool2d(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                             const int k, const int s, const int p, const int ceil_mode, const int excl)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int OW = py.ne[3], OH = py.ne[2], H = px.ne[2], W = px.ne[3];
    int plane = i / (OH * OW), r = i - plane * OH * OW, oy = r / OW, ox = r % OW;
    int base = px.off + plane * H * W;
    int y0, y1, x0, x1;
    fr_pool_window(oy, k, s, p, H, &y0, &y1);
    fr_pool_window(ox, k, s, p, W, &x0, &x1);
    float sum = 0.0f;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++)
            sum += x[base + iy * W + ix];
    y[py.off + i] = sum * pool_avg_inv(oy, ox, H, W, k, s, p, excl);
}

__kernel void pool_avgpool2d_bwd(__global float *dx, const fr_clt pdx, __global const float *gy, const fr_clt pg,
                                 const int k, const int s, const int p, const int ceil_mode, const int excl)
{
    int i = get_global_id(0);
    if (i >= pdx.n)
        return;
    int H = pdx.ne[2], W = pdx.ne[3], OH = pg.ne[2], OW = pg.ne[3];
    int plane = i / (H * W), r = i - plane * H * W, iy = r / W, ix = r % W;
    float g = 0.0f;
    int oy0, oy1, ox0, ox1;
    fr_pool_cover(iy, k, s, p, OH, &oy0, &oy1);
    fr_pool_cover(ix, k, s, p, OW, &ox0, &ox1);
    for (int oy = oy0; oy <= oy1; oy++)
        for (int ox = ox0; ox <= ox1; ox++)
            g += gy[pg.off + plane * OH * OW + oy * OW + ox] * pool_avg_inv(oy, ox, H, W, k, s, p, excl);
    dx[pdx.off + i] = g;
}

/* adaptive average pooling; the pool args are unused (the output size is y's) */
__kernel void pool_adaptive_avgpool2d(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                                      const int k, const int s, const int p, const int ceil_mode, const int excl)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int OW = py.ne[3], OH = py.ne[2], H = px.ne[2], W = px.ne[3];
    int plane = i / (OH * OW), r = i - plane * OH * OW, oy = r / OW, ox = r % OW;
    int base = px.off + plane * H * W;
    int y0, y1, x0, x1;
    fr_adaptive_window(oy, OH, H, &y0, &y1);
    fr_adaptive_window(ox, OW, W, &x0, &x1);
    float sum = 0.0f;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++)
            sum += x[base + iy * W + ix];
    y[py.off + i] = sum / (float)((y1 - y0) * (x1 - x0));
}

__kernel void pool_adaptive_avgpool2d_bwd(__global float *dx, const fr_clt pdx, __global const float *gy,
                                          const fr_clt pg, const int k, const int s, const int p,
                                          const int ceil_mode, const int excl)
{
    int i = get_global_id(0);
    if (i >= pdx.n)
        return;
    int H = pdx.ne[2], W = pdx.ne[3], OH = pg.ne[2], OW = pg.ne[3];
    int plane = i / (H * W), r = i - plane * H * W, iy = r / W, ix = r % W;
    int oy0, oy1, ox0, ox1;
    fr_adaptive_cover(iy, OH, H, &oy0, &oy1);
    fr_adaptive_cover(ix, OW, W, &ox0, &ox1);
    float g = 0.0f;
    for (int oy = oy0; oy <= oy1; oy++)
        for (int ox = ox0; ox <= ox1; ox++) {
            int y0, y1, x0, x1;
            fr_adaptive_window(oy, OH, H, &y0, &y1);
            fr_adaptive_window(ox, OW, W, &x0, &x1);
            g += gy[pg.off + plane * OH * OW + oy * OW + ox] / (float)((y1 - y0) * (x1 - x0));
        }
    dx[pdx.off + i] = g;
}
