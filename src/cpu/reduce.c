/* CPU kernels of the reductions over one axis (sum, mean, max), max's gradient and sum-to-shape. */
#include "cpu/cpu.h"

enum red_kind { RED_SUM, RED_MEAN, RED_MAX };

struct red_job {
    enum red_kind kind;
    const struct fr_tensor *src, *dst;
    int axis;
};

/* one task per output element: walk the reduced axis of the source */
static void red_range(void *p, int64_t begin, int64_t end)
{
    struct red_job *j = p;
    const struct fr_tensor *s = j->src, *d = j->dst;
    const char *sb = fr_tensor_data(s);
    float *db = fr_tensor_data(d);
    int64_t len = s->ne[j->axis], stride = s->nb[j->axis];
    for (int64_t o = begin; o < end; o++) {
        int64_t idx[4], r = o;
        for (int dd = 3; dd >= 0; dd--) {
            idx[dd] = r % d->ne[dd];
            r /= d->ne[dd];
        }
        const char *base = fr_elem_ptr((char *)sb, s->nb, idx[0], idx[1], idx[2], idx[3]);
        if (j->kind == RED_MAX) {
            float m = *(const float *)base;
            for (int64_t i = 1; i < len; i++) {
                float v = *(const float *)(base + i * stride);
                if (v > m || v != v)
                    m = v;
                if (m != m)
                    break;
            }
            db[o] = m;
        } else {
            double acc = 0.0; /* double keeps long sums exact enough to compare with references */
            for (int64_t i = 0; i < len; i++)
                acc += *(const float *)(base + i * stride);
            db[o] = (float)(j->kind == RED_MEAN ? acc / (double)len : acc);
        }
    }
}

static enum fr_status run(struct fr_cpu_kctx *k, struct fr_tensor *dst, enum red_kind kind)
{
    struct red_job j = {kind, dst->src[0], dst, dst->params[0].i};
    fr_cpu_parallel_for(k, fr_nelements(dst), FR_MAX(1, 8192 / dst->src[0]->ne[j.axis]), red_range, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_sum(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, RED_SUM); }
enum fr_status fr_cpu_mean(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, RED_MEAN); }
enum fr_status fr_cpu_max(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, RED_MAX); }

/* (x, y = max(x), gy) -> gradient to the first position holding the maximum of each line */
enum fr_status fr_cpu_max_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    const struct fr_tensor *x = dst->src[0], *y = dst->src[1], *gy = dst->src[2];
    int ax = dst->params[0].i;
    float *d = fr_tensor_data(dst);
    memset(d, 0, (size_t)fr_nelements(dst) * sizeof(float));
    int64_t n_out = fr_nelements(y);
    int64_t dnb[4];
    struct fr_tensor tmp = *dst;
    fr_set_contiguous_strides(&tmp);
    memcpy(dnb, tmp.nb, sizeof dnb);
    for (int64_t o = 0; o < n_out; o++) {
        int64_t idx[4], r = o;
        for (int dd = 3; dd >= 0; dd--) {
            idx[dd] = r % y->ne[dd];
            r /= y->ne[dd];
        }
        const char *xb = fr_elem_ptr(fr_tensor_data(x), x->nb, idx[0], idx[1], idx[2], idx[3]);
        float m = *(const float *)fr_elem_ptr(fr_tensor_data(y), y->nb, idx[0], idx[1], idx[2], idx[3]);
        float g = *(const float *)fr_elem_ptr(fr_tensor_data(gy), gy->nb, idx[0], idx[1], idx[2], idx[3]);
        for (int64_t i = 0; i < x->ne[ax]; i++) {
            float v = *(const float *)(xb + i * x->nb[ax]);
            if (v == m || (v != v && m != m)) {
                idx[ax] = i;
                *(float *)fr_elem_ptr((char *)d, dnb, idx[0], idx[1], idx[2], idx[3]) = g;
                break;
            }
        }
    }
    return FR_STATUS_OK;
}

/* dst (smaller) = sum of src over the dims that were broadcast; accumulated in double per output */
enum fr_status fr_cpu_sum_to(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    const struct fr_tensor *s = dst->src[0];
    int64_t n_out = fr_nelements(dst);
    double *acc = fr_cpu_scratch(k, 3, (size_t)n_out * sizeof(double));
    if (!acc)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "sum_to: out of memory");
    memset(acc, 0, (size_t)n_out * sizeof(double));
    /* output index strides (in elements) seen from the source's 4D index, 0 on summed dims */
    struct fr_tensor c = *dst;
    fr_set_contiguous_strides(&c);
    int64_t onb[4];
    fr_broadcast_strides(&c, s->ndim, s->ne, onb);
    const char *sb = fr_tensor_data(s);
    for (int64_t i0 = 0; i0 < s->ne[0]; i0++)
        for (int64_t i1 = 0; i1 < s->ne[1]; i1++)
            for (int64_t i2 = 0; i2 < s->ne[2]; i2++) {
                const char *row = sb + i0 * s->nb[0] + i1 * s->nb[1] + i2 * s->nb[2];
                int64_t ob = (i0 * onb[0] + i1 * onb[1] + i2 * onb[2]) / 4;
                for (int64_t i3 = 0; i3 < s->ne[3]; i3++)
                    acc[ob + i3 * onb[3] / 4] += *(const float *)(row + i3 * s->nb[3]);
            }
    float *d = fr_tensor_data(dst);
    for (int64_t i = 0; i < n_out; i++)
        d[i] = (float)acc[i];
    return FR_STATUS_OK;
}
