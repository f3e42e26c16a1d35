/* Batch-norm kernels over x seen as [N, C, inner] (contiguous): the forward (one work-item per channel
 * computes the statistics, updates the running averages in training and normalises), the gradient
 * statistics [4, C] = (Σ gy·x̂, Σ gy, mean, invstd) and the input gradient (one work-item per element). */
#include "common.h"

/* batch mean and biased variance of channel c, two compensated passes */
FR_CL_FN void bn_stats(__global const float *x, int off, int N, int C, int inner, int c, float *mean, float *var)
{
    float s = 0.0f, k = 0.0f;
    for (int n = 0; n < N; n++)
        for (int e = 0; e < inner; e++)
            fr_kahan_add(&s, &k, x[off + (n * C + c) * inner + e]);
    float m = s / (float)(N * inner);
    s = 0.0f;
    k = 0.0f;
    for (int n = 0; n < N; n++)
        for (int e = 0; e < inner; e++) {
            float d = x[off + (n * C + c) * inner + e] - m;
            fr_kahan_add(&s, &k, d * d);
        }
    *mean = m;
    *var = s / (float)(N * inner);
}

/* mean and 1/sqrt(var + eps) of channel c: batch statistics in training (*var = biased batch variance),
 * the running ones otherwise. Running statistics are read here, never written. */
FR_CL_FN void bn_norm(__global const float *x, int xoff, int N, int C, int inner, int c, __global const float *rm,
                      const fr_clt prm, __global const float *rv, const fr_clt prv, float eps, int training,
                      float *mean, float *invstd, float *var)
{
    if (training) {
        bn_stats(x, xoff, N, C, inner, c, mean, var);
    } else {
        *mean = rm[prm.off + c];
        *var = rv[prv.off + c];
    }
    *invstd = 1.0f / sqrt(*var + eps);
}

__kernel void norm_batchnorm(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                             __global const float *w, const fr_clt pw, __global const float *b, const fr_clt pb,
                             __global float *rm, const fr_clt prm, __global float *rv, const fr_clt prv,
                             const int inner, const float eps, const float momentum, const int training)
{
    int c = get_global_id(0);
    int N = px.ne[0], C = px.ne[1];
    if (c >= C)
        return;
    float mean, invstd, var;
    bn_norm(x, px.off, N, C, inner, c, rm, prm, rv, prv, eps, training, &mean, &invstd, &var);
    if (training) {
        int m = N * inner;
        float unbiased = var * ((float)m / (float)(m - 1));
        rm[prm.off + c] = (1.0f - momentum) * rm[prm.off + c] + momentum * mean;
        rv[prv.off + c] = (1.0f - momentum) * rv[prv.off + c] + momentum * unbiased;
    }
    float a = w[pw.off + c] * invstd, sh = b[pb.off + c] - mean * a;
    for (int n = 0; n < N; n++)
        for (int e = 0; e < inner; e++) {
            int idx = (n * C + c) * inner + e;
            y[py.off + idx] = x[px.off + idx] * a + sh;
        }
}

__kernel void norm_batchnorm_bwd_stats(__global float *st, const fr_clt pst, __global const float *x, const fr_clt px,
                                       __global const float *gy, const fr_clt pg, __global const float *rm,
                                       const fr_clt prm, __global const float *rv, const fr_clt prv, const int inner,
                                       const float eps, const int training)
{
    int c = get_global_id(0);
    int N = px.ne[0], C = px.ne[1];
    if (c >= C)
        return;
    float mean, invstd, var;
    bn_norm(x, px.off, N, C, inner, c, rm, prm, rv, prv, eps, training, &mean, &invstd, &var);
    float sg = 0.0f, kg = 0.0f, sgx = 0.0f, kgx = 0.0f;
    for (int n = 0; n < N; n++)
        for (int e = 0; e < inner; e++) {
            int idx = (n * C + c) * inner + e;
            float g = gy[pg.off + idx];
            fr_kahan_add(&sg, &kg, g);
            fr_kahan_add(&sgx, &kgx, g * ((x[px.off + idx] - mean) * invstd));
        }
    st[pst.off + c] = sgx;
    st[pst.off + C + c] = sg;
    st[pst.off + 2 * C + c] = mean;
    st[pst.off + 3 * C + c] = invstd;
}

__kernel void norm_batchnorm_bwd(__global float *dx, const fr_clt pdx, __global const float *x, const fr_clt px,
                                 __global const float *gy, const fr_clt pg, __global const float *w, const fr_clt pw,
                                 __global const float *st, const fr_clt pst, const int inner, const int training)
{
    int i = get_global_id(0);
    if (i >= pdx.n)
        return;
    int C = px.ne[1], c = (i / inner) % C;
    float sgx = st[pst.off + c], sg = st[pst.off + C + c], mean = st[pst.off + 2 * C + c],
          invstd = st[pst.off + 3 * C + c];
    float a = w[pw.off + c] * invstd, g = gy[pg.off + i];
    if (training) {
        float xh = (x[px.off + i] - mean) * invstd;
        float inv_m = 1.0f / (float)(px.ne[0] * inner);
        dx[pdx.off + i] = a * (g - (sg + xh * sgx) * inv_m);
    } else {
        dx[pdx.off + i] = a * g;
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
