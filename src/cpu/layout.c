/* CPU kernels of the layout ops: views (nothing to do), strided -> contiguous copies, fill. */
#include "cpu/cpu.h"

enum fr_status fr_cpu_view(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    (void)dst;
    return FR_STATUS_OK;
}

struct cont_job {
    const struct fr_tensor *src, *dst;
};

static void cont_rows(void *p, int64_t b, int64_t e)
{
    struct cont_job *j = p;
    const struct fr_tensor *s = j->src, *d = j->dst;
    size_t es = fr_dtype_size(d->type);
    char *sb = fr_tensor_data(s), *db = fr_tensor_data(d);
    int64_t n3 = d->ne[3];
    for (int64_t r = b; r < e; r++) {
        int64_t i2 = r % d->ne[2], i1 = (r / d->ne[2]) % d->ne[1], i0 = r / (d->ne[2] * d->ne[1]);
        const char *sp = fr_elem_ptr(sb, s->nb, i0, i1, i2, 0);
        char *dp = fr_elem_ptr(db, d->nb, i0, i1, i2, 0);
        if (s->nb[3] == (int64_t)es) {
            memcpy(dp, sp, (size_t)n3 * es);
        } else if (es == 4) {
            for (int64_t i = 0; i < n3; i++)
                memcpy(dp + i * 4, sp + i * s->nb[3], 4);
        } else {
            for (int64_t i = 0; i < n3; i++)
                dp[i] = sp[i * s->nb[3]];
        }
    }
}

enum fr_status fr_cpu_cont(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct cont_job j = {dst->src[0], dst};
    int64_t rows = dst->ne[0] * dst->ne[1] * dst->ne[2];
    fr_cpu_parallel_for(k, rows, FR_MAX(1, 16384 / dst->ne[3]), cont_rows, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_fill(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    int64_t n = fr_nelements(dst);
    float v = dst->params[0].f;
    void *p = fr_tensor_data(dst);
    switch (dst->type) {
    case FR_F32:
        for (int64_t i = 0; i < n; i++)
            ((float *)p)[i] = v;
        break;
    case FR_I32:
        for (int64_t i = 0; i < n; i++)
            ((int32_t *)p)[i] = (int32_t)v;
        break;
    default:
        memset(p, (int)FR_MAX(0.0f, FR_MIN(255.0f, v)), (size_t)n);
        break;
    }
    return FR_STATUS_OK;
}
