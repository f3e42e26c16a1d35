/* CPU kernels of softmax / log-softmax over one axis (max-subtracted) and their gradients. */
#include <math.h>

#include "cpu/cpu.h"

enum sm_kind { SM_SOFTMAX, SM_LOG_SOFTMAX, SM_SOFTMAX_BWD, SM_LOG_SOFTMAX_BWD };

struct sm_job {
    enum sm_kind kind;
    const struct fr_tensor *dst;
    int axis;
};

static void sm_lines(void *p, int64_t begin, int64_t end)
{
    struct sm_job *j = p;
    const struct fr_tensor *d = j->dst, *x = d->src[0], *g = d->src[1];
    int ax = j->axis;
    int64_t len = d->ne[ax];
    /* lines are indexed over the output shape with the axis collapsed to 1 */
    int64_t ne[4];
    memcpy(ne, d->ne, sizeof ne);
    ne[ax] = 1;
    for (int64_t o = begin; o < end; o++) {
        int64_t idx[4], r = o;
        for (int dd = 3; dd >= 0; dd--) {
            idx[dd] = r % ne[dd];
            r /= ne[dd];
        }
        const char *xp = fr_elem_ptr(fr_tensor_data(x), x->nb, idx[0], idx[1], idx[2], idx[3]);
        char *dp = fr_elem_ptr(fr_tensor_data(d), d->nb, idx[0], idx[1], idx[2], idx[3]);
        int64_t xs = x->nb[ax], ds = d->nb[ax];
#define X(i) (*(const float *)(xp + (i) * xs))
#define D(i) (*(float *)(dp + (i) * ds))
        if (j->kind == SM_SOFTMAX || j->kind == SM_LOG_SOFTMAX) {
            float m = -INFINITY;
            for (int64_t i = 0; i < len; i++)
                m = fmaxf(m, X(i));
            /* one expf per element (stored for softmax), summed in double */
            double sum = 0.0;
            if (j->kind == SM_SOFTMAX) {
                for (int64_t i = 0; i < len; i++) {
                    float e = expf(X(i) - m);
                    D(i) = e;
                    sum += e;
                }
                float inv = (float)(1.0 / sum);
                for (int64_t i = 0; i < len; i++)
                    D(i) *= inv;
            } else {
                for (int64_t i = 0; i < len; i++)
                    sum += expf(X(i) - m);
                float lse = m + (float)log(sum);
                for (int64_t i = 0; i < len; i++)
                    D(i) = X(i) - lse;
            }
        } else {
            /* x holds y (the forward output), g holds dy */
            const char *gp = fr_elem_ptr(fr_tensor_data(g), g->nb, idx[0], idx[1], idx[2], idx[3]);
            int64_t gs = g->nb[ax];
#define G(i) (*(const float *)(gp + (i) * gs))
            double dot = 0.0;
            if (j->kind == SM_SOFTMAX_BWD) {
                for (int64_t i = 0; i < len; i++)
                    dot += (double)G(i) * X(i);
                for (int64_t i = 0; i < len; i++)
                    D(i) = X(i) * (G(i) - (float)dot);
            } else {
                for (int64_t i = 0; i < len; i++)
                    dot += G(i);
                for (int64_t i = 0; i < len; i++)
                    D(i) = G(i) - expf(X(i)) * (float)dot;
            }
#undef G
        }
#undef X
#undef D
    }
}

static enum fr_status run(struct fr_cpu_kctx *k, struct fr_tensor *dst, enum sm_kind kind)
{
    struct sm_job j = {kind, dst, dst->params[0].i};
    int64_t lines = fr_nelements(dst) / dst->ne[j.axis];
    fr_cpu_parallel_for(k, lines, FR_MAX(1, 4096 / dst->ne[j.axis]), sm_lines, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_softmax(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, SM_SOFTMAX); }
enum fr_status fr_cpu_log_softmax(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, SM_LOG_SOFTMAX); }
enum fr_status fr_cpu_softmax_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, SM_SOFTMAX_BWD); }
enum fr_status fr_cpu_log_softmax_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    return run(k, dst, SM_LOG_SOFTMAX_BWD);
}
