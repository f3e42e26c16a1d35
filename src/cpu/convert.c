/* CPU kernel of dtype conversion with optional per-channel normalisation (u8 -> f32 with mean/std). */
#include <math.h>

#include "cpu/cpu.h"

struct cv_job {
    const struct fr_tensor *src, *dst;
};

static inline float load(const char *p, enum fr_dtype t)
{
    switch (t) {
    case FR_U8: return (float)*(const uint8_t *)p;
    case FR_I32: return (float)*(const int32_t *)p;
    default: return *(const float *)p;
    }
}

static void cv_rows(void *p, int64_t begin, int64_t end)
{
    struct cv_job *j = p;
    const struct fr_tensor *s = j->src, *d = j->dst;
    int ax = d->params[0].i;
    float scale = d->params[1].f;
    for (int64_t r = begin; r < end; r++) {
        int64_t i2 = r % d->ne[2], i1 = (r / d->ne[2]) % d->ne[1], i0 = r / (d->ne[2] * d->ne[1]);
        int64_t idx[3] = {i0, i1, i2};
        const char *sp = fr_elem_ptr(fr_tensor_data(s), s->nb, i0, i1, i2, 0);
        char *dp = fr_elem_ptr(fr_tensor_data(d), d->nb, i0, i1, i2, 0);
        for (int64_t i = 0; i < d->ne[3]; i++) {
            float v = load(sp + i * s->nb[3], s->type);
            if (ax >= 0) {
                int c = (int)FR_MIN(3, ax == 3 ? i : idx[ax]);
                /* (x*scale - mean)/std in that order on every backend, for bit-identical results */
                v = (v * scale - d->params[2 + c].f) / d->params[6 + c].f;
            }
            switch (d->type) {
            case FR_F32: ((float *)dp)[i] = v; break;
            case FR_I32: ((int32_t *)dp)[i] = (int32_t)v; break;
            case FR_U8: {
                float c = v != v ? 0.0f : fminf(255.0f, fmaxf(0.0f, rintf(v)));
                ((uint8_t *)dp)[i] = (uint8_t)c;
                break;
            }
            default: break;
            }
        }
    }
}

enum fr_status fr_cpu_convert(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    struct cv_job j = {dst->src[0], dst};
    fr_cpu_parallel_for(k, dst->ne[0] * dst->ne[1] * dst->ne[2], FR_MAX(1, 16384 / dst->ne[3]), cv_rows, &j);
    return FR_STATUS_OK;
}
