/* Reductions over one axis (SUM, MEAN, MAX, MAX_BWD) and the reverse of broadcasting (SUM_TO).
 * One work-item per output element, summing along the axis in index order with compensation
 * (the CPU path sums in double; fp64 is optional in OpenCL, Kahan gets within an ulp or two). */
#include "common.h"

/* px has the source's sizes; py the destination's (size 1 on `axis`). */
__kernel void reduce_sum(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                         const int axis, const float mul)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int c[4];
    fr_unravel(py, i, c);
    int base = fr_clt_at(px, c[0], c[1], c[2], c[3]);
    int st = px.st[axis];
    float s = 0.0f, comp = 0.0f;
    for (int k = 0; k < px.ne[axis]; k++)
        fr_kahan_add(&s, &comp, x[base + k * st]);
    y[fr_clt_index(py, i)] = mul == 1.0f ? s : s / mul;
}

__kernel void reduce_max(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                         const int axis)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int c[4];
    fr_unravel(py, i, c);
    int base = fr_clt_at(px, c[0], c[1], c[2], c[3]);
    int st = px.st[axis];
    float m = x[base];
    for (int k = 1; k < px.ne[axis]; k++) {
        float v = x[base + k * st];
        if (v > m || isnan(v))
            m = v;
        if (isnan(m))
            break;
    }
    y[fr_clt_index(py, i)] = m;
}

/* (x, y, gy) -> gx: gy goes to the first element equal to the maximum along `axis`. pg has the
 * output's sizes with size 1 on `axis`, for indexing y and gy; one work-item per such row. */
__kernel void reduce_max_bwd(__global float *gx, const fr_clt pgx, __global const float *x, const fr_clt px,
                             __global const float *y, const fr_clt py, __global const float *gy,
                             const fr_clt pgy, const int axis)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int c[4];
    fr_unravel(py, i, c);
    int bx = fr_clt_at(px, c[0], c[1], c[2], c[3]);
    int bg = fr_clt_at(pgx, c[0], c[1], c[2], c[3]);
    float m = y[fr_clt_index(py, i)];
    float g = gy[fr_clt_index(pgy, i)];
    int found = 0;
    for (int k = 0; k < px.ne[axis]; k++) {
        float v = x[bx + k * px.st[axis]];
        int hit = !found && (v == m || (isnan(v) && isnan(m)));
        found |= hit;
        gx[bg + k * pgx.st[axis]] = hit ? g : 0.0f;
    }
}

/* pd: the destination expressed in the source's 4-D index space (size 1 on summed dims). */
__kernel void reduce_sum_to(__global float *y, const fr_clt py, const fr_clt pd, __global const float *x,
                            const fr_clt px)
{
    int i = get_global_id(0);
    if (i >= pd.n)
        return;
    int c[4];
    fr_unravel(pd, i, c);
    int n0 = pd.ne[0] == px.ne[0] ? 1 : px.ne[0];
    int n1 = pd.ne[1] == px.ne[1] ? 1 : px.ne[1];
    int n2 = pd.ne[2] == px.ne[2] ? 1 : px.ne[2];
    int n3 = pd.ne[3] == px.ne[3] ? 1 : px.ne[3];
    float s = 0.0f, comp = 0.0f;
    for (int a = 0; a < n0; a++)
        for (int b = 0; b < n1; b++)
            for (int d = 0; d < n2; d++)
                for (int e = 0; e < n3; e++)
                    fr_kahan_add(&s, &comp,
                                 x[fr_clt_at(px, n0 > 1 ? a : c[0], n1 > 1 ? b : c[1], n2 > 1 ? d : c[2],
                                             n3 > 1 ? e : c[3])]);
    y[fr_clt_index(py, i)] = s;
}
