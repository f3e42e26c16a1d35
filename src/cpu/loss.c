/* CPU kernels of the loss ops: per-row log-sum-exp losses and gradients, and FixMatch's confident targets (rows in parallel, the batch
 * sum reduced in a fixed order so results do not depend on the thread count). */
#include <math.h>

#include "cpu/cpu.h"

enum loss_kind { L_CE, L_SOFT, L_DISTILL, L_MSE };

struct loss_job {
    enum loss_kind kind;
    struct fr_tensor *dst;
    const float *z, *t;   /* logits / a; targets / teacher / b */
    const int32_t *y;     /* labels or NULL */
    const float *w;       /* per-sample weights or NULL */
    int64_t n, k;         /* rows, row length */
    float scale;          /* bwd: gy / N (or gy / (N*K) for MSE) */
    float eps, alpha, temp;
    double *row_loss;     /* forward: per-row weighted loss */
    float *gz;            /* backward output */
};

static double lse_row(const float *z, int64_t k, float inv_t)
{
    float m = -INFINITY;
    for (int64_t j = 0; j < k; j++)
        m = fmaxf(m, z[j] * inv_t);
    double s = 0.0;
    for (int64_t j = 0; j < k; j++)
        s += exp((double)(z[j] * inv_t - m));
    return (double)m + log(s);
}

static void loss_rows(void *p, int64_t begin, int64_t end)
{
    struct loss_job *j = p;
    int64_t k = j->k;
    for (int64_t i = begin; i < end; i++) {
        const float *z = j->z + i * k, *t = j->t ? j->t + i * k : NULL;
        double w = j->w ? (double)j->w[i] : 1.0;
        float *g = j->gz ? j->gz + i * k : NULL;
        float gw = (float)(w * j->scale);
        double l = 0.0;
        int32_t y = j->y ? j->y[i] : 0;
        /* distillation: label -1 = an unlabeled transfer image, teacher targets only (no hard term) */
        bool soft_only = j->kind == L_DISTILL && j->y && y == -1;
        bool bad = j->y && !soft_only && (y < 0 || y >= k);
        switch (j->kind) {
        case L_CE: {
            double lse = lse_row(z, k, 1.0f), sz = 0.0;
            for (int64_t c = 0; c < k; c++)
                sz += z[c];
            if (!bad)
                l = (1.0 - j->eps) * (lse - z[y]) + j->eps * (lse - sz / (double)k);
            if (g)
                for (int64_t c = 0; c < k; c++) {
                    double pc = exp((double)z[c] - lse);
                    double tc = j->eps / (double)k + (c == y ? 1.0 - j->eps : 0.0);
                    g[c] = bad ? NAN : gw * (float)(pc - tc);
                }
            break;
        }
        case L_SOFT: {
            double lse = lse_row(z, k, 1.0f), st = 0.0, stz = 0.0;
            for (int64_t c = 0; c < k; c++) {
                st += t[c];
                stz += (double)t[c] * z[c];
            }
            l = lse * st - stz;
            if (g)
                for (int64_t c = 0; c < k; c++)
                    g[c] = gw * (float)(exp((double)z[c] - lse) * st - t[c]);
            break;
        }
        case L_DISTILL: {
            float inv_t = 1.0f / j->temp;
            double T = j->temp, a = j->alpha;
            double lse_s = lse_row(z, k, inv_t), lse_t = lse_row(t, k, inv_t), kl = 0.0;
            for (int64_t c = 0; c < k; c++) {
                double lpt = (double)(t[c] * inv_t) - lse_t, lps = (double)(z[c] * inv_t) - lse_s;
                kl += exp(lpt) * (lpt - lps);
            }
            double lse1 = a < 1.0 ? lse_row(z, k, 1.0f) : 0.0;
            l = a * T * T * kl;
            if (a < 1.0 && !bad && !soft_only)
                l += (1.0 - a) * (lse1 - z[y]);
            if (g)
                for (int64_t c = 0; c < k; c++) {
                    double ps = exp((double)(z[c] * inv_t) - lse_s), pt = exp((double)(t[c] * inv_t) - lse_t);
                    double d = a * T * (ps - pt);
                    if (a < 1.0 && !soft_only)
                        d += (1.0 - a) * (exp((double)z[c] - lse1) - (c == y ? 1.0 : 0.0));
                    g[c] = bad ? NAN : gw * (float)d;
                }
            break;
        }
        case L_MSE:
            for (int64_t c = 0; c < k; c++) {
                double d = (double)z[c] - t[c];
                l += d * d;
                if (g)
                    g[c] = gw * 2.0f * (float)d;
            }
            l /= (double)k;
            break;
        }
        if (j->row_loss)
            j->row_loss[i] = bad ? NAN : w * l;
    }
}

static enum fr_status run(struct fr_cpu_kctx *k, struct fr_tensor *dst, enum loss_kind kind, bool bwd)
{
    struct fr_tensor *zt = dst->src[0];
    struct loss_job j = {.kind = kind, .dst = dst, .z = fr_f32(zt), .t = fr_f32(dst->src[1])};
    j.n = zt->ne[0];
    j.k = fr_nelements(zt) / j.n;
    int n_fwd = kind == L_DISTILL ? 4 : 3;
    struct fr_tensor *wt = dst->src[n_fwd - 1];
    j.w = wt ? fr_f32(wt) : NULL;
    if (kind == L_CE) {
        j.y = (const int32_t *)fr_tensor_data(dst->src[1]);
        j.t = NULL;
        j.eps = dst->params[0].f;
    } else if (kind == L_DISTILL) {
        j.y = dst->src[2] ? (const int32_t *)fr_tensor_data(dst->src[2]) : NULL;
        j.alpha = dst->params[0].f;
        j.temp = dst->params[1].f;
    }
    if (bwd) {
        float gy = fr_f32(dst->src[n_fwd])[0];
        j.scale = gy / (float)j.n / (kind == L_MSE ? (float)j.k : 1.0f);
        j.gz = fr_f32(dst);
        fr_cpu_parallel_for(k, j.n, FR_MAX(1, 8192 / j.k), loss_rows, &j);
        return FR_STATUS_OK;
    }
    j.row_loss = fr_cpu_scratch(k, 3, (size_t)j.n * sizeof(double));
    if (!j.row_loss)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: no scratch for %lld rows", fr_op_name(dst->op), (long long)j.n);
    fr_cpu_parallel_for(k, j.n, FR_MAX(1, 8192 / j.k), loss_rows, &j);
    double s = 0.0;
    for (int64_t i = 0; i < j.n; i++)
        s += j.row_loss[i];
    fr_f32(dst)[0] = (float)(s / (double)j.n);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_cross_entropy(struct fr_cpu_kctx *k, struct fr_tensor *d) { return run(k, d, L_CE, false); }
enum fr_status fr_cpu_cross_entropy_bwd(struct fr_cpu_kctx *k, struct fr_tensor *d) { return run(k, d, L_CE, true); }
enum fr_status fr_cpu_soft_cross_entropy(struct fr_cpu_kctx *k, struct fr_tensor *d) { return run(k, d, L_SOFT, false); }
enum fr_status fr_cpu_soft_cross_entropy_bwd(struct fr_cpu_kctx *k, struct fr_tensor *d)
{
    return run(k, d, L_SOFT, true);
}
enum fr_status fr_cpu_distill(struct fr_cpu_kctx *k, struct fr_tensor *d) { return run(k, d, L_DISTILL, false); }
enum fr_status fr_cpu_distill_bwd(struct fr_cpu_kctx *k, struct fr_tensor *d) { return run(k, d, L_DISTILL, true); }
enum fr_status fr_cpu_mse(struct fr_cpu_kctx *k, struct fr_tensor *d) { return run(k, d, L_MSE, false); }
enum fr_status fr_cpu_mse_bwd(struct fr_cpu_kctx *k, struct fr_tensor *d) { return run(k, d, L_MSE, true); }

/* rows of confident targets: p_max = 1 / sum_j exp(z_j - z_max) against the threshold, then one-hot or softmax(z/T) */
struct pt_job {
    const float *z;
    float *t;
    int64_t k;
    float thr, temp;
};

static void pt_rows(void *p, int64_t begin, int64_t end)
{
    struct pt_job *j = p;
    for (int64_t i = begin; i < end; i++) {
        const float *z = j->z + i * j->k;
        float *t = j->t + i * j->k;
        int64_t best = 0;
        for (int64_t c = 1; c < j->k; c++)
            if (z[c] > z[best])
                best = c;
        double s = 0.0;
        for (int64_t c = 0; c < j->k; c++)
            s += exp((double)z[c] - z[best]);
        bool keep = 1.0 / s >= (double)j->thr; /* false for NaN logits */
        double lt = keep && j->temp > 0.0f ? lse_row(z, j->k, 1.0f / j->temp) : 0.0;
        for (int64_t c = 0; c < j->k; c++)
            t[c] = !keep ? 0.0f : j->temp > 0.0f ? (float)exp((double)(z[c] * (1.0f / j->temp)) - lt) : (float)(c == best);
    }
}

enum fr_status fr_cpu_pseudo_targets(struct fr_cpu_kctx *k, struct fr_tensor *d)
{
    struct fr_tensor *zt = d->src[0];
    struct pt_job j = {fr_f32(zt), fr_f32(d), fr_nelements(zt) / zt->ne[0], d->params[0].f, d->params[1].f};
    fr_cpu_parallel_for(k, zt->ne[0], FR_MAX(1, 8192 / j.k), pt_rows, &j);
    return FR_STATUS_OK;
}
