/* Batch-norm kernels over x seen as [N, C, inner] (contiguous), mirroring src/cpu/norm.c. Statistics [2, C]
 * (mean, invstd): in training each channel's N*inner values are split into S chunks (work-group s of
 * dimension 0, channel c of dimension 1), the lanes keep Welford (count, mean, M2) triples merged by a fixed
 * tree (Chan et al.), and the chunks are merged in order; the running averages are updated from the result.
 * Gradient statistics [2, C] (Σ gy·x̂, Σ gy) use the forward's statistics, split the same way with
 * compensated lane sums. Normalisation and input gradient: a run of values of one row per work-item (as
 * long as the device is still filled: CPUs like long runs, GPUs many work-items). Deterministic: every
 * order is fixed by the shape and the device. */
#include "common.h"

/* merges triple b into a */
FR_CL_FN void bn_merge(int *na, float *ma, float *qa, int nb, float mb, float qb)
{
    if (nb == 0)
        return;
    if (*na == 0) {
        *na = nb;
        *ma = mb;
        *qa = qb;
        return;
    }
    int n = *na + nb;
    float d = mb - *ma, fb = (float)nb / (float)n;
    *ma += d * fb;
    *qa += qb + d * d * (float)*na * fb;
    *na = n;
}

/* channel c's mean, invstd and the running-average update from its merged (count, mean, M2) */
FR_CL_FN void bn_finish(__global float *st, const fr_clt pst, __global float *rm, const fr_clt prm, __global float *rv,
                        const fr_clt prv, int C, int c, int n, float mean, float m2, float eps, float momentum)
{
    float var = m2 / (float)n;
    st[pst.off + c] = mean;
    st[pst.off + C + c] = 1.0f / sqrt(var + eps);
    float unbiased = var * ((float)n / (float)(n - 1));
    rm[prm.off + c] = (1.0f - momentum) * rm[prm.off + c] + momentum * mean;
    rv[prv.off + c] = (1.0f - momentum) * rv[prv.off + c] + momentum * unbiased;
}

/* Training statistics, chunk s of channel c. S == 1 finishes the channel; else part[(c*S + s)*2 + {0,1}] =
 * (mean, M2) of the chunk (its count follows from the shape) for norm_bn_stats_final. */
__kernel void norm_bn_stats_part(__global float *st, const fr_clt pst, __global float *part, __global const float *x,
                                 const fr_clt px, __global float *rm, const fr_clt prm, __global float *rv,
                                 const fr_clt prv, const int inner, const float eps, const float momentum, const int S)
{
    __local int ln[FR_CL_LANES];
    __local float lm[FR_CL_LANES], lq[FR_CL_LANES];
    int lid = get_local_id(0), nl = get_local_size(0), s = get_group_id(0), c = get_global_id(1);
    int C = px.ne[1], T = px.ne[0] * inner, chunk = (T + S - 1) / S, lo = s * chunk, hi = min(T, lo + chunk);
    int k = 0;
    float mean = 0.0f, m2 = 0.0f;
    for (int t = lo + lid; t < hi; t += nl) {
        int n = t / inner;
        float v = x[px.off + (n * C + c) * inner + (t - n * inner)];
        k++;
        float d = v - mean;
        mean += d / (float)k;
        m2 += d * (v - mean);
    }
    ln[lid] = k;
    lm[lid] = mean;
    lq[lid] = m2;
    for (int h = nl >> 1; h > 0; h >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < h) {
            int na = ln[lid];
            float ma = lm[lid], qa = lq[lid];
            bn_merge(&na, &ma, &qa, ln[lid + h], lm[lid + h], lq[lid + h]);
            ln[lid] = na;
            lm[lid] = ma;
            lq[lid] = qa;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid != 0)
        return;
    if (S == 1) {
        bn_finish(st, pst, rm, prm, rv, prv, C, c, ln[0], lm[0], lq[0], eps, momentum);
    } else {
        part[(c * S + s) * 2] = lm[0];
        part[(c * S + s) * 2 + 1] = lq[0];
    }
}

/* One work-item per channel: training merges the S chunks in order; otherwise (eval, frozen layer) the
 * running statistics are the statistics and stay unchanged. */
__kernel void norm_bn_stats_final(__global float *st, const fr_clt pst, __global const float *part,
                                  __global float *rm, const fr_clt prm, __global float *rv, const fr_clt prv,
                                  const int C, const int T, const float eps, const float momentum, const int S,
                                  const int batch)
{
    int c = get_global_id(0);
    if (c >= C)
        return;
    if (!batch) {
        st[pst.off + c] = rm[prm.off + c];
        st[pst.off + C + c] = 1.0f / sqrt(rv[prv.off + c] + eps);
        return;
    }
    int chunk = (T + S - 1) / S, n = 0;
    float mean = 0.0f, m2 = 0.0f;
    for (int s = 0; s < S; s++) {
        int lo = s * chunk, cnt = max(0, min(T, lo + chunk) - lo);
        bn_merge(&n, &mean, &m2, cnt, part[(c * S + s) * 2], part[(c * S + s) * 2 + 1]);
    }
    bn_finish(st, pst, rm, prm, rv, prv, C, c, n, mean, m2, eps, momentum);
}

/* work-item i: values [e0, e1) of row `row` of the N*C rows of `inner` values (runs of `run` values) */
FR_CL_FN int bn_run(int i, int inner, int run, int *e0, int *e1)
{
    int rpr = (inner + run - 1) / run, row = i / rpr;
    *e0 = (i - row * rpr) * run;
    *e1 = min(*e0 + run, inner);
    return row;
}

/* y = x·a + b per channel, a = w·invstd, b = bias − mean·a. Global N*C*ceil(inner / run). */
__kernel void norm_batchnorm(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                             __global const float *w, const fr_clt pw, __global const float *b, const fr_clt pb,
                             __global const float *st, const fr_clt pst, const int inner, const int relu,
                             const int run)
{
    int e0, e1, row = bn_run(get_global_id(0), inner, run, &e0, &e1), C = px.ne[1];
    if (row >= px.ne[0] * C)
        return;
    int c = row % C;
    float a = w[pw.off + c * pw.st[0]] * st[pst.off + C + c];
    float sh = b[pb.off + c * pb.st[0]] - st[pst.off + c] * a;
    for (int e = e0; e < e1; e++) {
        float v = x[px.off + row * inner + e] * a + sh;
        y[py.off + row * inner + e] = relu && !(v > 0.0f) ? 0.0f : v; /* fused ReLU, as the CPU path's */
    }
}

/* Gradient statistics, chunk s of channel c: S == 1 writes gst [2, C] = (invstd·Σ gy·(x − mean), Σ gy);
 * else part[(c*S + s)*2 + {0,1}] = (Σ gy·(x − mean), Σ gy) of the chunk for norm_bn_bwd_final. */
__kernel void norm_bn_bwd_part(__global float *gst, const fr_clt pgst, __global float *part, __global const float *x,
                               const fr_clt px, __global const float *gy, const fr_clt pg, __global const float *st,
                               const fr_clt pst, const int inner, const int S)
{
    __local float lg[FR_CL_LANES], lx[FR_CL_LANES];
    int lid = get_local_id(0), nl = get_local_size(0), s = get_group_id(0), c = get_global_id(1);
    int C = px.ne[1], T = px.ne[0] * inner, chunk = (T + S - 1) / S, lo = s * chunk, hi = min(T, lo + chunk);
    float mean = st[pst.off + c];
    float sg = 0.0f, kg = 0.0f, sgx = 0.0f, kgx = 0.0f;
    for (int t = lo + lid; t < hi; t += nl) {
        int n = t / inner, i = (n * C + c) * inner + (t - n * inner);
        float g = gy[pg.off + i];
        fr_kahan_add(&sg, &kg, g);
        fr_kahan_add(&sgx, &kgx, g * (x[px.off + i] - mean));
    }
    lg[lid] = sg - kg;
    lx[lid] = sgx - kgx;
    for (int h = nl >> 1; h > 0; h >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < h) {
            lg[lid] += lg[lid + h];
            lx[lid] += lx[lid + h];
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid != 0)
        return;
    if (S == 1) {
        gst[pgst.off + c] = lx[0] * st[pst.off + C + c];
        gst[pgst.off + C + c] = lg[0];
    } else {
        part[(c * S + s) * 2] = lx[0];
        part[(c * S + s) * 2 + 1] = lg[0];
    }
}

/* One work-item per channel: adds the S chunks in order. */
__kernel void norm_bn_bwd_final(__global float *gst, const fr_clt pgst, __global const float *part,
                                __global const float *st, const fr_clt pst, const int C, const int S)
{
    int c = get_global_id(0);
    if (c >= C)
        return;
    float sgx = 0.0f, kx = 0.0f, sg = 0.0f, kg = 0.0f;
    for (int s = 0; s < S; s++) {
        fr_kahan_add(&sgx, &kx, part[(c * S + s) * 2]);
        fr_kahan_add(&sg, &kg, part[(c * S + s) * 2 + 1]);
    }
    gst[pgst.off + c] = sgx * st[pst.off + C + c];
    gst[pgst.off + C + c] = sg;
}

/* training: dx = w·invstd·(gy − (Σgy + x̂·Σgy·x̂)/M), M = `count` (the whole batch's when it is split across
 * ranks); eval or frozen: dx = w·invstd·gy.
 * Global N*C*ceil(inner / run). */
__kernel void norm_batchnorm_bwd(__global float *dx, const fr_clt pdx, __global const float *x, const fr_clt px,
                                 __global const float *gy, const fr_clt pg, __global const float *w, const fr_clt pw,
                                 __global const float *st, const fr_clt pst, __global const float *gst,
                                 const fr_clt pgst, const int inner, const int training, const int count,
                                 const int run)
{
    int e0, e1, row = bn_run(get_global_id(0), inner, run, &e0, &e1), C = px.ne[1];
    if (row >= px.ne[0] * C)
        return;
    int c = row % C;
    float mean = st[pst.off + c], invstd = st[pst.off + C + c];
    float sgx = gst[pgst.off + c], sg = gst[pgst.off + C + c];
    float a = w[pw.off + c * pw.st[0]] * invstd, inv_m = 1.0f / (float)count;
    for (int e = e0; e < e1; e++) {
        int i = row * inner + e;
        float g = gy[pg.off + i];
        if (training) {
            float xh = (x[px.off + i] - mean) * invstd;
            dx[pdx.off + i] = a * (g - (sg + xh * sgx) * inv_m);
        } else {
            dx[pdx.off + i] = a * g;
        }
    }
}

/* eval-mode batch-norm as [2, C]: scale = w/√(rv + eps), shift = b − rm·scale (eval graphs fold it into convs) */
__kernel void norm_batchnorm_fold(__global float *y, const fr_clt py, __global const float *w, const fr_clt pw,
                                  __global const float *b, const fr_clt pb, __global const float *rm, const fr_clt prm,
                                  __global const float *rv, const fr_clt prv, const float eps)
{
    int c = get_global_id(0), C = pw.n;
    if (c >= C)
        return;
    float a = w[pw.off + c] * (1.0f / sqrt(rv[prv.off + c] + eps));
    y[py.off + c] = a;
    y[py.off + C + c] = b[pb.off + c] - rm[prm.off + c] * a;
}
