/* CPU kernels of batch-norm: the statistics (training: batch statistics + running-average update; eval:
 * running statistics), the normalisation, and its gradient, parallel over channels. x is seen as
 * [N, C, inner]. */
#include "cpu/cpu.h"

#include <math.h>

struct bn_job {
    const float *x, *gy, *w, *b, *stats, *gstats;
    float *rm, *rv, *y;
    int64_t n, c, inner, count;
    float eps, momentum;
    bool training, relu;
};

static void shape(struct bn_job *j, const struct fr_tensor *x)
{
    j->n = x->ne[0], j->c = x->ne[1], j->inner = fr_nelements(x) / (j->n * j->c);
}

/* Row reductions with eight float partial sums (the compiler may not reorder one float sum, so it gets
 * eight it can vectorise); rows are one sample's plane of a channel, the sums over rows are in double. */
#define ROW_REDUCE(NAME, ARGS, TERM)                                                        \
    static double NAME ARGS                                                                \
    {                                                                                      \
        float p[8] = {0};                                                                  \
        int64_t e = 0;                                                                     \
        for (; e + 8 <= len; e += 8)                                                       \
            for (int q = 0; q < 8; q++)                                                    \
                p[q] += TERM(e + q);                                                       \
        for (; e < len; e++)                                                               \
            p[0] += TERM(e);                                                               \
        return (double)(((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))); \
    }
#define T_SUM(i) r[i]
#define T_SQDEV(i) ((r[i] - mu) * (r[i] - mu))
#define T_DOTDEV(i) (g[i] * (r[i] - mu))
ROW_REDUCE(row_sum, (const float *r, int64_t len), T_SUM)
ROW_REDUCE(row_sqdev, (const float *r, float mu, int64_t len), T_SQDEV)
ROW_REDUCE(row_dotdev, (const float *g, const float *r, float mu, int64_t len), T_DOTDEV)

/* batch mean and biased variance of channel c (two passes: the centred one keeps the variance accurate) */
static void batch_stats(const struct bn_job *j, int64_t c, double *mean, double *var)
{
    double s = 0.0;
    for (int64_t i = 0; i < j->n; i++)
        s += row_sum(j->x + (i * j->c + c) * j->inner, j->inner);
    int64_t m = j->n * j->inner;
    double mu = s / (double)m, q = 0.0;
    for (int64_t i = 0; i < j->n; i++)
        q += row_sqdev(j->x + (i * j->c + c) * j->inner, (float)mu, j->inner);
    *mean = mu;
    *var = q / (double)m;
}

/* stats [2, C]: the mean and 1/sqrt(var + eps) this run normalises channel c with; in training (batch
 * statistics) the running averages are updated too */
static void bn_stats(void *p, int64_t c0, int64_t c1)
{
    const struct bn_job *j = p;
    float *st = j->y;
    for (int64_t c = c0; c < c1; c++) {
        if (j->training) {
            double mu, var;
            batch_stats(j, c, &mu, &var);
            st[c] = (float)mu;
            st[j->c + c] = (float)(1.0 / sqrt(var + (double)j->eps));
            int64_t m = j->n * j->inner;
            double unbiased = var * (double)m / (double)(m - 1);
            j->rm[c] = (1.0f - j->momentum) * j->rm[c] + j->momentum * (float)mu;
            j->rv[c] = (1.0f - j->momentum) * j->rv[c] + j->momentum * (float)unbiased;
        } else {
            st[c] = j->rm[c];
            st[j->c + c] = (float)(1.0 / sqrt((double)j->rv[c] + (double)j->eps));
        }
    }
}

enum fr_status fr_cpu_batchnorm_stats(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct bn_job j = {.x = fr_f32(dst->src[0]), .rm = fr_f32(dst->src[1]), .rv = fr_f32(dst->src[2]),
                       .y = fr_f32(dst), .eps = dst->params[0].f, .momentum = dst->params[1].f,
                       .training = fr_batchnorm_batch_stats(dst, k->ex)};
    shape(&j, dst->src[0]);
    fr_cpu_parallel_for(k, j.c, 1, bn_stats, &j);
    return FR_STATUS_OK;
}

/* y = x·a + b with a = w·invstd, b = bias − mean·a per channel (then max(y, 0) with a fused ReLU) */
static void bn_fwd(void *p, int64_t c0, int64_t c1)
{
    const struct bn_job *j = p;
    for (int64_t c = c0; c < c1; c++) {
        float mean = j->stats[c], invstd = j->stats[j->c + c];
        float a = j->w[c] * invstd, b = j->b[c] - mean * a;
        for (int64_t i = 0; i < j->n; i++) {
            const float *r = j->x + (i * j->c + c) * j->inner;
            float *y = j->y + (i * j->c + c) * j->inner;
            if (j->relu) /* two loops: a flag inside one keeps it from vectorising */
                for (int64_t e = 0; e < j->inner; e++) {
                    float v = r[e] * a + b;
                    y[e] = v > 0.0f ? v : 0.0f;
                }
            else
                for (int64_t e = 0; e < j->inner; e++)
                    y[e] = r[e] * a + b;
        }
    }
}

enum fr_status fr_cpu_batchnorm(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct bn_job j = {.x = fr_f32(dst->src[0]), .w = fr_f32(dst->src[1]), .b = fr_f32(dst->src[2]),
                       .stats = fr_f32(dst->src[3]), .y = fr_f32(dst), .relu = dst->params[3].i != 0};
    shape(&j, dst->src[0]);
    fr_cpu_parallel_for(k, j.c, 1, bn_fwd, &j);
    return FR_STATUS_OK;
}

/* gstats [2, C]: Σ gy·x̂, Σ gy with x̂ from the forward's statistics */
static void bn_bwd_stats(void *p, int64_t c0, int64_t c1)
{
    const struct bn_job *j = p;
    float *gst = j->y;
    for (int64_t c = c0; c < c1; c++) {
        float mean = j->stats[c], invstd = j->stats[j->c + c];
        double sg = 0.0, sgx = 0.0; /* Σ gy·x̂ = invstd·Σ gy·(x − mean) */
        for (int64_t i = 0; i < j->n; i++) {
            const float *r = j->x + (i * j->c + c) * j->inner, *g = j->gy + (i * j->c + c) * j->inner;
            sg += row_sum(g, j->inner);
            sgx += row_dotdev(g, r, mean, j->inner);
        }
        sgx *= (double)invstd;
        gst[c] = (float)sgx;
        gst[j->c + c] = (float)sg;
    }
}

enum fr_status fr_cpu_batchnorm_bwd_stats(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct bn_job j = {.x = fr_f32(dst->src[0]), .gy = fr_f32(dst->src[1]), .stats = fr_f32(dst->src[2]),
                       .y = fr_f32(dst)};
    shape(&j, dst->src[0]);
    fr_cpu_parallel_for(k, j.c, 1, bn_bwd_stats, &j);
    return FR_STATUS_OK;
}

/* training: dx = w·invstd·(gy − (Σgy + x̂·Σgy·x̂)/M); eval: the statistics are constants, dx = w·invstd·gy */
static void bn_bwd(void *p, int64_t c0, int64_t c1)
{
    const struct bn_job *j = p;
    float inv_m = 1.0f / (float)(j->count > 0 ? j->count : j->n * j->inner); /* sync: the whole batch's count */
    for (int64_t c = c0; c < c1; c++) {
        float sgx = j->gstats[c], sg = j->gstats[j->c + c], mean = j->stats[c], invstd = j->stats[j->c + c];
        float a = j->w[c] * invstd;
        for (int64_t i = 0; i < j->n; i++) {
            const float *r = j->x + (i * j->c + c) * j->inner, *g = j->gy + (i * j->c + c) * j->inner;
            float *dx = j->y + (i * j->c + c) * j->inner;
            if (j->training)
                for (int64_t e = 0; e < j->inner; e++) {
                    float xh = (r[e] - mean) * invstd;
                    dx[e] = a * (g[e] - (sg + xh * sgx) * inv_m);
                }
            else
                for (int64_t e = 0; e < j->inner; e++)
                    dx[e] = a * g[e];
        }
    }
}

enum fr_status fr_cpu_batchnorm_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct bn_job j = {.x = fr_f32(dst->src[0]), .gy = fr_f32(dst->src[1]), .w = fr_f32(dst->src[2]),
                       .stats = fr_f32(dst->src[3]), .gstats = fr_f32(dst->src[4]), .y = fr_f32(dst),
                       .count = dst->params[3].i, .training = fr_batchnorm_batch_stats(dst, k->ex)};
    shape(&j, dst->src[0]);
    fr_cpu_parallel_for(k, j.c, 1, bn_bwd, &j);
    return FR_STATUS_OK;
}

/* eval-mode scale and shift per channel, invstd as norm_stats computes it */
enum fr_status fr_cpu_batchnorm_fold(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    const float *w = fr_f32(dst->src[0]), *b = fr_f32(dst->src[1]), *rm = fr_f32(dst->src[2]), *rv = fr_f32(dst->src[3]);
    float *y = fr_f32(dst);
    int64_t c = dst->ne[1];
    double eps = (double)dst->params[0].f;
    for (int64_t i = 0; i < c; i++) {
        float a = w[i] * (float)(1.0 / sqrt((double)rv[i] + eps));
        y[i] = a;
        y[c + i] = b[i] - rm[i] * a;
    }
    return FR_STATUS_OK;
}
