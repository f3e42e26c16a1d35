/* Softmax and log-softmax over one axis (max-subtracted) and their backward ops; one work-item per row.
 * pr has the row grid: the tensor's sizes with size 1 on `axis`. Same formulas as src/cpu/softmax.c
 * (sums compensated instead of double). */
#include "common.h"

__kernel void softmax_fwd(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                          const fr_clt pr, const int axis, const int log_out)
{
    int i = get_global_id(0);
    if (i >= pr.n)
        return;
    int c[4];
    fr_unravel(pr, i, c);
    int bx = fr_clt_at(px, c[0], c[1], c[2], c[3]);
    int by = fr_clt_at(py, c[0], c[1], c[2], c[3]);
    int sx = px.st[axis], sy = py.st[axis], n = px.ne[axis];
    float m = -INFINITY;
    for (int k = 0; k < n; k++)
        m = fmax(m, x[bx + k * sx]);
    float s = 0.0f, comp = 0.0f;
    for (int k = 0; k < n; k++)
        fr_kahan_add(&s, &comp, exp(x[bx + k * sx] - m));
    if (log_out) {
        float lse = m + log(s);
        for (int k = 0; k < n; k++)
            y[by + k * sy] = x[bx + k * sx] - lse;
    } else {
        float inv = 1.0f / s;
        for (int k = 0; k < n; k++)
            y[by + k * sy] = exp(x[bx + k * sx] - m) * inv;
    }
}

/* softmax: gx = y * (gy - sum(gy * y)); log-softmax: gx = gy - exp(y) * sum(gy). */
__kernel void softmax_bwd(__global float *gx, const fr_clt pgx, __global const float *y, const fr_clt py,
                          __global const float *gy, const fr_clt pgy, const fr_clt pr, const int axis,
                          const int log_out)
{
    int i = get_global_id(0);
    if (i >= pr.n)
        return;
    int c[4];
    fr_unravel(pr, i, c);
    int b0 = fr_clt_at(pgx, c[0], c[1], c[2], c[3]);
    int b1 = fr_clt_at(py, c[0], c[1], c[2], c[3]);
    int b2 = fr_clt_at(pgy, c[0], c[1], c[2], c[3]);
    int s0 = pgx.st[axis], s1 = py.st[axis], s2 = pgy.st[axis], n = py.ne[axis];
    float s = 0.0f, comp = 0.0f;
    for (int k = 0; k < n; k++) {
        float g = gy[b2 + k * s2];
        fr_kahan_add(&s, &comp, log_out ? g : g * y[b1 + k * s1]);
    }
    for (int k = 0; k < n; k++) {
        float yy = y[b1 + k * s1], g = gy[b2 + k * s2];
        gx[b0 + k * s0] = log_out ? g - exp(yy) * s : yy * (g - s);
    }
}
