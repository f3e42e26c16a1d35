/* Loss kernels (cross-entropy, soft-target CE, distillation, MSE) and their gradients, mirroring
 * src/cpu/loss.c. The CPU path works in double; here everything is f32, so the formulas are arranged
 * to avoid the cancellations f32 would otherwise expose: lse - z_c is taken as (m - z_c) + log1p(rest)
 * with `rest` the sum of exp(z_j - m) over every class but the (first) maximum, and p_c - t_c for the
 * maximum class as (st - t_c) - st * rest / s when the target dominates. Sums are compensated.
 * pseudo_targets: a work-item per row (FixMatch's confident targets).
 * Forward: work-groups over chunks of rows, lanes take rows in turn, fixed-order trees (deterministic, no
 * atomics). Backward: a work-item per run of classes of a row. */
#include "common.h"

#define FR_LOSS_CE 0
#define FR_LOSS_SOFT 1
#define FR_LOSS_DISTILL 2
#define FR_LOSS_MSE 3

/* Log-sum-exp of row z (scaled by inv_t) in pieces: the maximum m, the index of its first
 * occurrence, rest = sum over the other classes of exp(z_j*inv_t - m); lse = m + log1p(rest). */
typedef struct {
    float m, rest, s, l1; /* s = 1 + rest, l1 = log1p(rest) */
    int amax;
} lse_t;

FR_CL_FN lse_t row_lse(__global const float *z, int k, float inv_t)
{
    lse_t r;
    r.m = -INFINITY;
    for (int j = 0; j < k; j++)
        r.m = fmax(r.m, z[j] * inv_t);
    r.amax = -1;
    float s = 0.0f, c = 0.0f;
    for (int j = 0; j < k; j++) {
        float v = z[j] * inv_t;
        if (r.amax < 0 && v == r.m) {
            r.amax = j;
            continue;
        }
        fr_kahan_add_inf(&s, &c, exp(v - r.m));
    }
    r.rest = s;
    r.s = r.amax < 0 ? s : 1.0f + s; /* no maximum found: every logit was NaN */
    r.l1 = r.amax < 0 ? log(s) : log1p(s);
    return r;
}

/* p_c * st - t_c for class c of a row with stats r; st_ex = st - t_c, computed by the caller
 * without cancellation. */
FR_CL_FN float p_minus_t(lse_t r, __global const float *z, int c, float inv_t, float st, float tc, float st_ex)
{
    if (c == r.amax) {
        if (2.0f * tc > st)
            return st_ex - st * r.rest / r.s;
        return st / r.s - tc;
    }
    return exp(z[c] * inv_t - r.m) / r.s * st - tc;
}

/* Hard-label CE target of class c with smoothing eps, and 1 - that target. */
FR_CL_FN float ce_target(int c, int y, int k, float eps, float *one_minus)
{
    float u = eps / (float)k;
    if (c == y) {
        *one_minus = eps - u;
        return u + (1.0f - eps);
    }
    *one_minus = 1.0f - u;
    return u;
}

/* One row: returns its unweighted loss and, when g is not NULL, writes gw * dloss/dz to g for the classes
 * c0 <= c < c1 (the row's statistics are computed whole either way). */
FR_CL_FN float loss_row(int kind, __global const float *z, __global const float *t, int y, int has_y, int k,
                        float f0, float inv_t, float temp, float gw, __global float *g, int c0, int c1)
{
    /* distillation: label -1 = an unlabeled transfer image, teacher targets only (no hard term) */
    bool soft_only = kind == FR_LOSS_DISTILL && has_y && y == -1;
    bool bad = has_y && !soft_only && (y < 0 || y >= k);
    if (kind == FR_LOSS_MSE) {
        float s = 0.0f, c = 0.0f;
        if (g) {
            for (int j = c0; j < c1; j++)
                g[j] = gw * 2.0f * (z[j] - t[j]);
            return 0.0f;
        }
        for (int j = 0; j < k; j++) {
            float d = z[j] - t[j];
            fr_kahan_add_inf(&s, &c, d * d);
        }
        return s / (float)k;
    }
    if (kind == FR_LOSS_CE) {
        float eps = f0;
        lse_t r = row_lse(z, k, 1.0f);
        float sz = 0.0f, cz = 0.0f;
        for (int j = 0; j < k; j++)
            fr_kahan_add_inf(&sz, &cz, z[j]);
        float l = NAN;
        if (!bad) {
            float a = (r.m - z[y]) + r.l1, b = (r.m - sz / (float)k) + r.l1;
            l = (1.0f - eps) * a + eps * b;
        }
        if (g)
            for (int c = c0; c < c1; c++) {
                float om, tc = ce_target(c, y, k, eps, &om);
                g[c] = bad ? NAN : gw * p_minus_t(r, z, c, 1.0f, 1.0f, tc, om);
            }
        return l;
    }
    if (kind == FR_LOSS_SOFT) {
        lse_t r = row_lse(z, k, 1.0f);
        /* loss = sum_c t_c (lse - z_c) = sum_c t_c (m - z_c) + st * log1p(rest) */
        float st = 0.0f, ct = 0.0f, sd = 0.0f, cd = 0.0f, sx = 0.0f, cx = 0.0f;
        for (int j = 0; j < k; j++) {
            fr_kahan_add_inf(&st, &ct, t[j]);
            fr_kahan_add_inf(&sd, &cd, t[j] * (r.m - z[j]));
            if (j != r.amax)
                fr_kahan_add_inf(&sx, &cx, t[j]);
        }
        if (g)
            for (int c = c0; c < c1; c++)
                g[c] = gw * p_minus_t(r, z, c, 1.0f, st, t[c], sx);
        return sd + st * r.l1;
    }
    /* distillation: alpha T^2 KL(p_t || p_s) at temperature T + (1 - alpha) CE(y, softmax(z)) */
    float alpha = f0;
    lse_t rs = row_lse(z, k, inv_t), rt = row_lse(t, k, inv_t);
    float dl = (rt.m - rs.m) + (rt.l1 - rs.l1); /* lse_t - lse_s */
    float kl = 0.0f, ck = 0.0f;
    for (int c = 0; c < k; c++) {
        float pt = exp(t[c] * inv_t - rt.m) / rt.s;
        fr_kahan_add_inf(&kl, &ck, pt * ((t[c] * inv_t - z[c] * inv_t) - dl));
    }
    float l = alpha * temp * temp * kl;
    lse_t r1;
    bool hard = alpha < 1.0f && !soft_only;
    if (hard) {
        r1 = row_lse(z, k, 1.0f);
        if (!bad)
            l += (1.0f - alpha) * ((r1.m - z[y]) + r1.l1);
    }
    if (g)
        for (int c = c0; c < c1; c++) {
            float ps = exp(z[c] * inv_t - rs.m) / rs.s, pt = exp(t[c] * inv_t - rt.m) / rt.s;
            float d = alpha * temp * (ps - pt);
            if (hard) {
                float om, tc = ce_target(c, y, k, 0.0f, &om);
                d += (1.0f - alpha) * p_minus_t(r1, z, c, 1.0f, 1.0f, tc, om);
            }
            g[c] = bad ? NAN : gw * d;
        }
    return bad ? NAN : l;
}

/* out [1] = mean over rows of w_i * loss_i. n rows of k; z, t, y, w contiguous (the host checks). The rows are
 * split into S chunks (work-group s); lanes take a chunk's rows in turn with compensated sums, a fixed tree
 * adds the lanes. S == 1 writes out; else part[s] for loss_fwd_final. */
__kernel void loss_fwd(__global float *out, const fr_clt pout, __global float *part, __global const float *z,
                       const fr_clt pz, __global const float *t, const fr_clt pt, __global const int *y,
                       const fr_clt py, __global const float *w, const fr_clt pw, const int kind, const int has_y,
                       const int has_w, const int n, const int k, const float f0, const float inv_t, const float temp,
                       const int S)
{
    __local float acc[FR_CL_LANES];
    int lid = get_local_id(0), nl = get_local_size(0), sg = get_group_id(0);
    int chunk = (n + S - 1) / S, lo = sg * chunk, hi = min(n, lo + chunk);
    float s = 0.0f, c = 0.0f;
    for (int i = lo + lid; i < hi; i += nl) {
        int yi = has_y ? y[py.off + i] : 0;
        float l = loss_row(kind, z + pz.off + i * k, t + pt.off + i * k, yi, has_y, k, f0, inv_t, temp, 0.0f, 0, 0,
                           0);
        float wi = has_w ? w[pw.off + i] : 1.0f;
        fr_kahan_add_inf(&s, &c, wi * l);
    }
    acc[lid] = isinf(s) ? s : s - c;
    fr_tree_sum(acc, lid, nl);
    if (lid != 0)
        return;
    if (S == 1)
        out[pout.off] = acc[0] / (float)n;
    else
        part[sg] = acc[0];
}

/* out [1] = Σ part[s] in chunk order / n */
__kernel void loss_fwd_final(__global float *out, const fr_clt pout, __global const float *part, const int S,
                             const int n)
{
    if (get_global_id(0) != 0)
        return;
    float s = 0.0f, c = 0.0f;
    for (int k = 0; k < S; k++)
        fr_kahan_add_inf(&s, &c, part[k]);
    out[pout.off] = (isinf(s) ? s : s - c) / (float)n;
}

/* g [n,k] = gy * w_i / n (/ k for MSE) * dloss_i/dz; a work-item per `run` classes of a row (it recomputes the
 * row's statistics: short rows give the device more work-items). Global (ceil(k / run), n). */
__kernel void loss_bwd(__global float *g, const fr_clt pg, __global const float *z, const fr_clt pz,
                       __global const float *t, const fr_clt pt, __global const int *y, const fr_clt py,
                       __global const float *w, const fr_clt pw, __global const float *gy, const fr_clt pgy,
                       const int kind, const int has_y, const int has_w, const int n, const int k, const float f0,
                       const float inv_t, const float temp, const int run)
{
    int c0 = get_global_id(0) * run, i = get_global_id(1);
    if (i >= n || c0 >= k)
        return;
    float scale = gy[pgy.off] / (float)n / (kind == FR_LOSS_MSE ? (float)k : 1.0f);
    float wi = has_w ? w[pw.off + i] : 1.0f;
    int yi = has_y ? y[py.off + i] : 0;
    loss_row(kind, z + pz.off + i * k, t + pt.off + i * k, yi, has_y, k, f0, inv_t, temp, wi * scale,
             g + pg.off + i * k, c0, min(c0 + run, k));
}

/* t [n,k]: row i = onehot(first argmax) (temp 0) or softmax(z_i / temp) where max softmax(z_i) >= thr, else zeros.
 * Global n. */
__kernel void pseudo_targets(__global float *t, const fr_clt pt, __global const float *z, const fr_clt pz,
                             const int n, const int k, const float thr, const float temp)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    __global const float *zr = z + pz.off + i * k;
    __global float *tr = t + pt.off + i * k;
    lse_t r = row_lse(zr, k, 1.0f);
    int keep = r.amax >= 0 && 1.0f / r.s >= thr; /* NaN logits: no maximum, nothing kept */
    lse_t q = row_lse(zr, k, temp > 0.0f ? 1.0f / temp : 1.0f);
    for (int c = 0; c < k; c++)
        tr[c] = !keep ? 0.0f : temp > 0.0f ? exp(zr[c] * (1.0f / temp) - q.m) / q.s : (float)(c == r.amax);
}
