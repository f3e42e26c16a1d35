/* Optimizer kernels mirroring src/cpu/optim.c: gradient sum of squares (split over work-groups, compensated,
 * fixed-order trees: deterministic without atomics), clip scale, per-step scalars, and the in-place SGD
 * (momentum, Nesterov) and Adam/AdamW updates, one parameter tensor or every tensor of a step per launch,
 * which read the step count, learning rate and clip scale from the device-side `prep` tensor
 * [t, lr, scale, -] so no host sync is needed. */
#include "common.h"

/* Sum of squares of up to six contiguous sources seen as one concatenation of T = Σ n_i terms, split into S
 * chunks (work-group s); the lanes' compensated sums are added by a fixed tree. S == 1 finishes (adds the
 * carried source as is and writes out); else part[s] for opt_sumsq_final. Absent sources come with n = 0;
 * the carried one (index `carry` >= 0) is skipped here. */
__kernel void opt_sumsq_part(__global float *out, const fr_clt pout, __global float *part,
                             __global const float *x0, const fr_clt p0, __global const float *x1, const fr_clt p1,
                             __global const float *x2, const fr_clt p2, __global const float *x3, const fr_clt p3,
                             __global const float *x4, const fr_clt p4, __global const float *x5, const fr_clt p5,
                             const int carry, const int S)
{
    __local float acc[FR_CL_LANES];
    int lid = get_local_id(0), nl = get_local_size(0), s = get_group_id(0);
    int n[6] = {carry == 0 ? 0 : p0.n, carry == 1 ? 0 : p1.n, carry == 2 ? 0 : p2.n,
                carry == 3 ? 0 : p3.n, carry == 4 ? 0 : p4.n, carry == 5 ? 0 : p5.n};
    int T = n[0] + n[1] + n[2] + n[3] + n[4] + n[5], chunk = (T + S - 1) / S, lo = s * chunk;
    int hi = min(T, lo + chunk);
    float sum = 0.0f, comp = 0.0f;
    for (int t = lo + lid; t < hi; t += nl) {
        int k = t, src = 0;
        while (k >= n[src]) /* terms past the sizes of the earlier sources */
            k -= n[src++];
        float v = src == 0   ? x0[p0.off + k]
                  : src == 1 ? x1[p1.off + k]
                  : src == 2 ? x2[p2.off + k]
                  : src == 3 ? x3[p3.off + k]
                  : src == 4 ? x4[p4.off + k]
                             : x5[p5.off + k];
        fr_kahan_add_inf(&sum, &comp, v * v);
    }
    acc[lid] = isinf(sum) ? sum : sum - comp;
    fr_tree_sum(acc, lid, nl);
    if (lid != 0)
        return;
    if (S > 1) {
        part[s] = acc[0];
        return;
    }
    float v = acc[0];
    if (carry == 0)
        v += x0[p0.off];
    else if (carry == 1)
        v += x1[p1.off];
    else if (carry == 2)
        v += x2[p2.off];
    else if (carry == 3)
        v += x3[p3.off];
    else if (carry == 4)
        v += x4[p4.off];
    else if (carry == 5)
        v += x5[p5.off];
    out[pout.off] = v;
}

/* out [1] = the chunks' sums added in order, plus the carried value (carry_mem[carry_off]) when has_carry. */
__kernel void opt_sumsq_final(__global float *out, const fr_clt pout, __global const float *part, const int S,
                              __global const float *cv, const fr_clt pcv, const int has_carry)
{
    if (get_global_id(0) != 0)
        return;
    float sum = 0.0f, comp = 0.0f;
    for (int s = 0; s < S; s++)
        fr_kahan_add_inf(&sum, &comp, part[s]);
    float v = isinf(sum) ? sum : sum - comp;
    if (has_carry)
        v += cv[pcv.off];
    out[pout.off] = v;
}

/* out [2] = {min(1, max_norm / (norm + 1e-6)), norm}; a NaN norm stays NaN so the loss check reports it. */
__kernel void opt_clip(__global float *out, const fr_clt pout, __global const float *ss, const fr_clt pss,
                       const float max_norm)
{
    if (get_global_id(0) != 0)
        return;
    float norm = sqrt(ss[pss.off]);
    float s = max_norm / (norm + 1e-6f);
    out[pout.off] = isnan(norm) ? norm : fmin(1.0f, s);
    out[pout.off + 1] = norm;
}

/* In place on h [4]: t += 1, lr, clip scale (1 without clipping). */
__kernel void opt_prep(__global float *h, const fr_clt ph, __global const float *lr, const fr_clt plr,
                       __global const float *clip, const fr_clt pclip, const int has_clip)
{
    if (get_global_id(0) != 0)
        return;
    h[ph.off] += 1.0f;
    h[ph.off + 1] = lr[plr.off];
    h[ph.off + 2] = has_clip ? clip[pclip.off] : 1.0f;
}

/* p -= lr*lr_mult * update, PyTorch's SGD, for one element; m is its momentum (absent when momentum == 0). */
FR_CL_FN void opt_sgd_elem(__global float *p, __global const float *g, __global float *m, float t, float lr,
                           float scale, float wd, float mom, float damp, int nesterov)
{
    float x = *g * scale;
    float pv = *p;
    if (wd != 0.0f)
        x += wd * pv;
    if (mom != 0.0f) {
        float buf = t <= 1.0f ? x : mom * *m + (1.0f - damp) * x;
        *m = buf;
        x = nesterov ? x + mom * buf : buf;
    }
    *p = pv - lr * x;
}

/* 1 - b^t without the cancellation of 1 - pow(b, t) in f32 (the CPU path uses double). */
FR_CL_FN float opt_bias_corr(float b, float t) { return b == 0.0f ? 1.0f : -expm1(t * log(b)); }

/* Adam (L2 weight decay) or AdamW (decoupled: p *= 1 - lr*wd), bias-corrected, for one element. */
FR_CL_FN void opt_adam_elem(__global float *p, __global const float *g, __global float *m, __global float *v, float t,
                            float lr, float scale, float wd, float b1, float b2, float eps, int decoupled)
{
    float step = lr / opt_bias_corr(b1, t), inv_sqrt_bc2 = 1.0f / sqrt(opt_bias_corr(b2, t));
    float decay = decoupled ? 1.0f - lr * wd : 1.0f;
    float x = *g * scale;
    float q = *p;
    if (decoupled)
        q *= decay;
    else if (wd != 0.0f)
        x += wd * q;
    float mi = b1 * *m + (1.0f - b1) * x;
    float vi = b2 * *v + (1.0f - b2) * x * x;
    *m = mi;
    *v = vi;
    *p = q - step * mi / (sqrt(vi) * inv_sqrt_bc2 + eps);
}

/* One parameter tensor: SGD. */
__kernel void opt_sgd(__global float *p, const fr_clt pp, __global const float *g, const fr_clt pg,
                      __global float *m, const fr_clt pm, __global const float *h, const fr_clt ph,
                      const float lr_mult, const float wd, const float mom, const float damp, const int nesterov)
{
    int i = get_global_id(0);
    if (i >= pp.n)
        return;
    opt_sgd_elem(p + pp.off + i, g + pg.off + i, m + pm.off + i, h[ph.off], h[ph.off + 1] * lr_mult, h[ph.off + 2],
                 wd, mom, damp, nesterov);
}

/* One parameter tensor: Adam/AdamW. */
__kernel void opt_adam(__global float *p, const fr_clt pp, __global const float *g, const fr_clt pg,
                       __global float *m, const fr_clt pm, __global float *v, const fr_clt pv,
                       __global const float *h, const fr_clt ph, const float lr_mult, const float wd,
                       const float b1, const float b2, const float eps, const int decoupled)
{
    int i = get_global_id(0);
    if (i >= pp.n)
        return;
    opt_adam_elem(p + pp.off + i, g + pg.off + i, m + pm.off + i, v + pv.off + i, h[ph.off], h[ph.off + 1] * lr_mult,
                  h[ph.off + 2], wd, b1, b2, eps, decoupled);
}

/* Every parameter tensor of a step in one launch: tab holds FR_OPT_TAB ints per tensor (first global
 * element index, element offsets of p, g, m, v in their buffers, lr_mult and weight decay as float bits)
 * and a last entry whose first int is the total; work-item i finds its tensor by binary search. */
#define FR_OPT_TAB 8
FR_CL_FN int opt_find(__global const int *tab, int nt, int i)
{
    int lo = 0, hi = nt - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (tab[mid * FR_OPT_TAB] <= i)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

__kernel void opt_sgd_multi(__global float *p, __global const float *g, __global float *m, __global const int *tab,
                            const int nt, __global const float *h, const fr_clt ph, const float mom,
                            const float damp, const int nesterov)
{
    int i = get_global_id(0);
    if (i >= tab[nt * FR_OPT_TAB])
        return;
    __global const int *e = tab + opt_find(tab, nt, i) * FR_OPT_TAB;
    int k = i - e[0];
    opt_sgd_elem(p + e[1] + k, g + e[2] + k, m + e[3] + k, h[ph.off], h[ph.off + 1] * as_float(e[5]), h[ph.off + 2],
                 as_float(e[6]), mom, damp, nesterov);
}

__kernel void opt_adam_multi(__global float *p, __global const float *g, __global float *m, __global float *v,
                             __global const int *tab, const int nt, __global const float *h, const fr_clt ph,
                             const float b1, const float b2, const float eps, const int decoupled)
{
    int i = get_global_id(0);
    if (i >= tab[nt * FR_OPT_TAB])
        return;
    __global const int *e = tab + opt_find(tab, nt, i) * FR_OPT_TAB;
    int k = i - e[0];
    opt_adam_elem(p + e[1] + k, g + e[2] + k, m + e[3] + k, v + e[4] + k, h[ph.off], h[ph.off + 1] * as_float(e[5]),
                  h[ph.off + 2], as_float(e[6]), b1, b2, eps, decoupled);
}

/* One average: avg = d * avg + (1 - d) * x, d = fr_ema_decay(decay, step count). */
__kernel void opt_ema(__global float *a, const fr_clt pa, __global const float *x, const fr_clt px,
                      __global const float *h, const fr_clt ph, const float decay)
{
    int i = get_global_id(0);
    if (i >= pa.n)
        return;
    float d = fr_ema_decay(decay, h[ph.off]);
    a[pa.off + i] = d * a[pa.off + i] + (1.0f - d) * x[px.off + i];
}
