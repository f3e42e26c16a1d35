/* CPU kernels of the optimizer ops: gradient sum of squares, clip scale, step scalars, and the in-place
 * SGD (momentum, Nesterov) and Adam/AdamW updates and weight averages (elementwise, split over the thread pool). */
#include <math.h>

#include "common.h"
#include "cpu/cpu.h"

enum fr_status fr_cpu_opt_sumsq(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    double s = 0.0;
    for (int i = 0; i < FR_MAX_SRC; i++) {
        const struct fr_tensor *g = dst->src[i];
        if (!g)
            continue;
        const float *x = fr_f32(g);
        if (i == dst->params[0].i) {
            s += x[0];
            continue;
        }
        int64_t n = fr_nelements(g);
        double part = 0.0;
        for (int64_t j = 0; j < n; j++)
            part += (double)x[j] * x[j];
        s += part;
    }
    fr_f32(dst)[0] = (float)s;
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_opt_clip(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    float norm = sqrtf(fr_f32(dst->src[0])[0]);
    float s = dst->params[0].f / (norm + 1e-6f);
    /* a NaN norm leaves the NaN in place so the loss check (not a silent skip) reports it */
    fr_f32(dst)[0] = isnan(norm) ? norm : fminf(1.0f, s);
    fr_f32(dst)[1] = norm;
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_opt_prep(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    float *h = fr_f32(dst); /* same storage as src[0] */
    h[0] += 1.0f;
    h[1] = fr_f32(dst->src[1])[0];
    h[2] = dst->src[2] ? fr_f32(dst->src[2])[0] : 1.0f;
    return FR_STATUS_OK;
}

struct upd_job {
    const struct fr_tensor *dst;
    float *p, *m, *v;
    const float *g;
    float lr, scale, t;
};

static void sgd_range(void *ctx, int64_t b, int64_t e)
{
    struct upd_job *j = ctx;
    const struct fr_tensor *d = j->dst;
    float wd = d->params[1].f, mom = d->params[2].f, damp = d->params[3].f;
    bool nesterov = d->params[4].i != 0, first = j->t <= 1.0f;
    for (int64_t i = b; i < e; i++) {
        float g = j->g[i] * j->scale;
        if (wd != 0.0f)
            g += wd * j->p[i];
        if (mom != 0.0f) {
            float buf = first ? g : mom * j->m[i] + (1.0f - damp) * g;
            j->m[i] = buf;
            g = nesterov ? g + mom * buf : buf;
        }
        j->p[i] -= j->lr * g;
    }
}

/* one Adam/AdamW update over [b, e); mode (0 no weight decay, 1 L2 in the gradient, 2 decoupled) is a constant at
 * each call below, so every loop is branch-free and vectorises; the operations and their order are those of the
 * OpenCL kernel, so the results are the same bits */
static inline void adam_loop(const struct upd_job *j, int64_t b, int64_t e, int mode, float wd, float b1, float b2,
                             float eps, float step, float inv_sqrt_bc2, float decay)
{
    float *restrict pp = j->p, *restrict mm = j->m, *restrict vv = j->v;
    const float *restrict gg = j->g;
    const float scale = j->scale;
    for (int64_t i = b; i < e; i++) {
        float g = gg[i] * scale;
        float p = pp[i];
        if (mode == 2)
            p *= decay;
        else if (mode == 1)
            g += wd * p;
        float m = b1 * mm[i] + (1.0f - b1) * g;
        float v = b2 * vv[i] + (1.0f - b2) * g * g;
        mm[i] = m;
        vv[i] = v;
        pp[i] = p - step * m / (__builtin_sqrtf(v) * inv_sqrt_bc2 + eps);
    }
}

static void adam_range(void *ctx, int64_t b, int64_t e)
{
    struct upd_job *j = ctx;
    const struct fr_tensor *d = j->dst;
    float wd = d->params[1].f, b1 = d->params[2].f, b2 = d->params[3].f, eps = d->params[4].f;
    bool decoupled = d->params[5].i != 0;
    double bc1 = 1.0 - pow(b1, j->t), bc2 = 1.0 - pow(b2, j->t);
    float step = (float)(j->lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    float decay = decoupled ? 1.0f - j->lr * wd : 1.0f;
    if (decoupled)
        adam_loop(j, b, e, 2, wd, b1, b2, eps, step, inv_sqrt_bc2, decay);
    else if (wd != 0.0f)
        adam_loop(j, b, e, 1, wd, b1, b2, eps, step, inv_sqrt_bc2, decay);
    else
        adam_loop(j, b, e, 0, wd, b1, b2, eps, step, inv_sqrt_bc2, decay);
}

static void job_init(struct upd_job *j, struct fr_tensor *dst, int prep_slot)
{
    const float *h = fr_f32(dst->src[prep_slot]);
    j->dst = dst;
    j->p = fr_f32(dst);
    j->g = fr_f32(dst->src[1]);
    j->t = h[0];
    j->lr = h[1] * dst->params[0].f;
    j->scale = h[2];
}

enum fr_status fr_cpu_sgd_step(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct upd_job j = {0};
    job_init(&j, dst, 3);
    j.m = dst->src[2] ? fr_f32(dst->src[2]) : NULL;
    fr_cpu_parallel_for(k, fr_nelements(dst), 16384, sgd_range, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_adam_step(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct upd_job j = {0};
    job_init(&j, dst, 4);
    j.m = fr_f32(dst->src[2]);
    j.v = fr_f32(dst->src[3]);
    fr_cpu_parallel_for(k, fr_nelements(dst), 16384, adam_range, &j);
    return FR_STATUS_OK;
}

struct ema_job {
    float *avg;
    const float *x;
    float d;
};

static void ema_range(void *ctx, int64_t b, int64_t e)
{
    struct ema_job *j = ctx;
    for (int64_t i = b; i < e; i++)
        j->avg[i] = j->d * j->avg[i] + (1.0f - j->d) * j->x[i];
}

enum fr_status fr_cpu_ema_step(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct ema_job j = {fr_f32(dst), fr_f32(dst->src[1]), fr_ema_decay(dst->params[0].f, fr_f32(dst->src[2])[0])};
    fr_cpu_parallel_for(k, fr_nelements(dst), 16384, ema_range, &j);
    return FR_STATUS_OK;
}
