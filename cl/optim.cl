/* Optimizer kernels mirroring src/cpu/optim.c: gradient sum of squares (one work-group, compensated,
 * lanes combined in lane order: deterministic without atomics), clip scale, per-step scalars, and the
 * in-place SGD (momentum, Nesterov) and Adam/AdamW updates, which read the step count, learning rate
 * and clip scale from the device-side `prep` tensor [t, lr, scale, -] so no host sync is needed. */
#include "common.h"

#define FR_OPT_MAX_LANES 128 /* fr_cl_run_1d never uses a larger work-group */

/* Kahan step that keeps an infinite sum infinite, as the CPU path's double sum does (the plain step
 * turns it into NaN). */
FR_CL_FN void opt_sumsq_src(__global const float *x, const fr_clt p, int lid, int nl, float *s, float *c)
{
    for (int i = lid; i < p.n; i += nl) {
        float v = x[p.off + i];
        fr_kahan_add_inf(s, c, v * v);
    }
}

/* out [1] = sum of squares of every present source (contiguous), plus source `carry` (>= 0) as is.
 * Absent sources come with n = 0. */
__kernel void opt_sumsq(__global float *out, const fr_clt pout, __global const float *x0, const fr_clt p0,
                        __global const float *x1, const fr_clt p1, __global const float *x2, const fr_clt p2,
                        __global const float *x3, const fr_clt p3, __global const float *x4, const fr_clt p4,
                        __global const float *x5, const fr_clt p5, const int carry)
{
    __local float ls[FR_OPT_MAX_LANES], lc[FR_OPT_MAX_LANES];
    int lid = get_local_id(0), nl = min((int)get_local_size(0), FR_OPT_MAX_LANES);
    float s = 0.0f, c = 0.0f;
    if (get_group_id(0) == 0 && lid < nl) {
        if (carry != 0)
            opt_sumsq_src(x0, p0, lid, nl, &s, &c);
        if (carry != 1)
            opt_sumsq_src(x1, p1, lid, nl, &s, &c);
        if (carry != 2)
            opt_sumsq_src(x2, p2, lid, nl, &s, &c);
        if (carry != 3)
            opt_sumsq_src(x3, p3, lid, nl, &s, &c);
        if (carry != 4)
            opt_sumsq_src(x4, p4, lid, nl, &s, &c);
        if (carry != 5)
            opt_sumsq_src(x5, p5, lid, nl, &s, &c);
        ls[lid] = s;
        lc[lid] = c;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (get_group_id(0) != 0 || lid != 0)
        return;
    float S, C;
    fr_kahan_lanes(ls, lc, nl, &S, &C);
    float v = S - C;
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

/* p -= lr*lr_mult * update, PyTorch's SGD; m is the momentum buffer (absent when momentum == 0). */
__kernel void opt_sgd(__global float *p, const fr_clt pp, __global const float *g, const fr_clt pg,
                      __global float *m, const fr_clt pm, __global const float *h, const fr_clt ph,
                      const float lr_mult, const float wd, const float mom, const float damp, const int nesterov)
{
    int i = get_global_id(0);
    if (i >= pp.n)
        return;
    float t = h[ph.off], lr = h[ph.off + 1] * lr_mult, scale = h[ph.off + 2];
    float x = g[pg.off + i] * scale;
    float pv = p[pp.off + i];
    if (wd != 0.0f)
        x += wd * pv;
    if (mom != 0.0f) {
        float buf = t <= 1.0f ? x : mom * m[pm.off + i] + (1.0f - damp) * x;
        m[pm.off + i] = buf;
        x = nesterov ? x + mom * buf : buf;
    }
    p[pp.off + i] = pv - lr * x;
}

/* 1 - b^t without the cancellation of 1 - pow(b, t) in f32 (the CPU path uses double). */
FR_CL_FN float opt_bias_corr(float b, float t) { return b == 0.0f ? 1.0f : -expm1(t * log(b)); }

/* Adam (L2 weight decay) or AdamW (decoupled: p *= 1 - lr*wd), bias-corrected. */
__kernel void opt_adam(__global float *p, const fr_clt pp, __global const float *g, const fr_clt pg,
                       __global float *m, const fr_clt pm, __global float *v, const fr_clt pv,
                       __global const float *h, const fr_clt ph, const float lr_mult, const float wd,
                       const float b1, const float b2, const float eps, const int decoupled)
{
    int i = get_global_id(0);
    if (i >= pp.n)
        return;
    float t = h[ph.off], lr = h[ph.off + 1] * lr_mult, scale = h[ph.off + 2];
    float step = lr / opt_bias_corr(b1, t), inv_sqrt_bc2 = 1.0f / sqrt(opt_bias_corr(b2, t));
    float decay = decoupled ? 1.0f - lr * wd : 1.0f;
    float x = g[pg.off + i] * scale;
    float q = p[pp.off + i];
    if (decoupled)
        q *= decay;
    else if (wd != 0.0f)
        x += wd * q;
    float mi = b1 * m[pm.off + i] + (1.0f - b1) * x;
    float vi = b2 * v[pv.off + i] + (1.0f - b2) * x * x;
    m[pm.off + i] = mi;
    v[pv.off + i] = vi;
    p[pp.off + i] = q - step * mi / (sqrt(vi) * inv_sqrt_bc2 + eps);
}
