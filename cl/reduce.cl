/* Reductions: sums over any set of axes (SUM, MEAN, SUM_TO, CHANNEL_SUM: one work-item per output, or for
 * few outputs work-groups over output x chunk with a fixed-order tree and a second pass over the chunks),
 * MAX and MAX_BWD over one axis. Sums are compensated (the CPU path sums in double; fp64 is optional in
 * OpenCL, Kahan plus pairwise trees get within an ulp or two) and deterministic. */
#include "common.h"

/* Sums: output i (an index of the grid pd, the source's index space with size 1 on the summed dims)
 * sums the source elements at its coordinates over every summed dim (pd.ne[d] == 1 < px.ne[d]): SUM and
 * MEAN over one axis, SUM_TO, CHANNEL_SUM alike. y is written at its own view py, divided by mul. */

/* sizes rs[] of the summed dims and the source offset of output i's first term */
FR_CL_FN int red_setup(const fr_clt pd, const fr_clt px, int i, int *rs)
{
    int c[4];
    fr_unravel(pd, i, c);
    for (int d = 0; d < 4; d++)
        rs[d] = pd.ne[d] == px.ne[d] ? 1 : px.ne[d];
    return fr_clt_at(px, c[0], c[1], c[2], c[3]);
}

/* source offset of term j (row-major over rs) from the first term */
FR_CL_FN int red_term(const fr_clt px, const int *rs, int j)
{
    int j3 = j % rs[3];
    j /= rs[3];
    int j2 = j % rs[2];
    j /= rs[2];
    int j1 = j % rs[1];
    int j0 = j / rs[1];
    return j0 * px.st[0] + j1 * px.st[1] + j2 * px.st[2] + j3 * px.st[3];
}

/* One work-item per output, terms in index order with compensation: for many outputs (coalesced across
 * neighbouring outputs) or few terms. */
__kernel void reduce_sum(__global float *y, const fr_clt py, const fr_clt pd, __global const float *x, const fr_clt px,
                         const float mul)
{
    int i = get_global_id(0);
    if (i >= pd.n)
        return;
    int rs[4];
    int base = red_setup(pd, px, i, rs);
    float s = 0.0f, comp = 0.0f;
    for (int a = 0; a < rs[0]; a++)
        for (int b = 0; b < rs[1]; b++)
            for (int d = 0; d < rs[2]; d++)
                for (int e = 0; e < rs[3]; e++)
                    fr_kahan_add(&s, &comp, x[base + a * px.st[0] + b * px.st[1] + d * px.st[2] + e * px.st[3]]);
    y[fr_clt_index(py, i)] = mul == 1.0f ? s : s / mul;
}

/* Few outputs with many terms: output i (global dimension 1) splits its terms into S chunks (work-group s of
 * dimension 0); the group's lanes sum a chunk with compensation, a fixed tree adds the lanes. S == 1 writes
 * y, else part[i*S + s] for reduce_parts. */
/* When the summed dims collapse into at most two strided runs (B > 0), term t is at (t / B)*sa + (t % B)*sb:
 * one division per term (channel sums: B = h*w, sb = 1, sa = c*h*w). */
__kernel void reduce_sum_part(__global float *y, const fr_clt py, const fr_clt pd, __global float *part,
                              __global const float *x, const fr_clt px, const float mul, const int S, const int B,
                              const int sa, const int sb)
{
    __local float acc[FR_CL_LANES];
    int lid = get_local_id(0), nl = get_local_size(0), s = get_group_id(0), i = get_global_id(1);
    int rs[4];
    int base = red_setup(pd, px, i, rs);
    int L = rs[0] * rs[1] * rs[2] * rs[3], chunk = (L + S - 1) / S, lo = s * chunk, hi = min(L, lo + chunk);
    float sum = 0.0f, comp = 0.0f;
    if (B > 0)
        for (int t = lo + lid; t < hi; t += nl) {
            int a = t / B;
            fr_kahan_add(&sum, &comp, x[base + a * sa + (t - a * B) * sb]);
        }
    else
        for (int t = lo + lid; t < hi; t += nl)
            fr_kahan_add(&sum, &comp, x[base + red_term(px, rs, t)]);
    acc[lid] = sum - comp;
    fr_tree_sum(acc, lid, nl);
    if (lid != 0)
        return;
    if (S == 1)
        y[fr_clt_index(py, i)] = mul == 1.0f ? acc[0] : acc[0] / mul;
    else
        part[i * S + s] = acc[0];
}

/* y[i] = Σ_s part[i*is + s*ss] / mul in chunk order: the second pass of reduce_sum_part (is = S, ss = 1), of
 * the split conv weight gradient and of split-K GEMMs (is = 1, ss = outputs). */
__kernel void reduce_parts(__global float *y, const fr_clt py, __global const float *part, const int S, const int is,
                           const int ss, const float mul)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float s = 0.0f, comp = 0.0f;
    for (int k = 0; k < S; k++)
        fr_kahan_add(&s, &comp, part[i * is + k * ss]);
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
