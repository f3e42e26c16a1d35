/* CPU kernels of dropout and drop-path: masks from the shared Philox stream (cl/rng.h), so every thread
 * count and the OpenCL kernels keep the same units for the same (seed, step, salt). */
#include "cpu/cpu.h"

#include "rng.h"

struct drop_job {
    const float *x;
    float *y;
    int64_t inner; /* dropout: elements; drop-path: elements per sample */
    int64_t first; /* global index of element (dropout) or sample (drop-path) 0: ex->first_sample's */
    int64_t blk0;  /* dropout: the block holding element 0 */
    float p, scale;
    fr_u32 seed_lo, seed_hi, step, salt;
};

/* blocks of 4 elements (by global index) share one Philox call: ranges are split on whole blocks */
static void dropout_range(void *p, int64_t b, int64_t e)
{
    const struct drop_job *j = p;
    for (int64_t blk = j->blk0 + b; blk < j->blk0 + e; blk++) {
        fr_philox4 r = fr_rng_block(j->seed_lo, j->seed_hi, FR_RNG_DROPOUT, j->step, j->salt, (fr_u32)blk);
        for (int q = 0; q < 4; q++) {
            int64_t i = blk * 4 + q - j->first;
            if (i >= 0 && i < j->inner)
                j->y[i] = fr_u32_to_unit(r.v[q]) >= j->p ? j->x[i] * j->scale : 0.0f;
        }
    }
}

static void drop_path_range(void *p, int64_t b, int64_t e)
{
    const struct drop_job *j = p;
    for (int64_t n = b; n < e; n++) {
        int64_t g = n + j->first;
        fr_philox4 r = fr_rng_block(j->seed_lo, j->seed_hi, FR_RNG_DROPPATH, j->step, j->salt, (fr_u32)(g / 4));
        bool keep = fr_u32_to_unit(r.v[g % 4]) < j->p;
        const float *x = j->x + n * j->inner;
        float *y = j->y + n * j->inner;
        for (int64_t i = 0; i < j->inner; i++)
            y[i] = keep ? x[i] * j->scale : 0.0f;
    }
}

static void identity(struct fr_tensor *dst)
{
    const float *x = fr_f32(dst->src[0]);
    float *y = fr_f32(dst);
    if (x != y)
        memcpy(y, x, (size_t)fr_nelements(dst) * sizeof *y);
}

static void job_init(struct drop_job *j, struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    j->x = fr_f32(dst->src[0]);
    j->y = fr_f32(dst);
    j->p = dst->params[0].f;
    j->salt = (fr_u32)dst->params[1].i;
    j->seed_lo = k->ex->seed_lo;
    j->seed_hi = k->ex->seed_hi;
    j->step = k->ex->step;
}

enum fr_status fr_cpu_dropout(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    if (!k->ex->training || dst->params[0].f == 0.0f) {
        identity(dst);
        return FR_STATUS_OK;
    }
    struct drop_job j;
    job_init(&j, k, dst);
    j.inner = fr_nelements(dst);
    j.first = ((int64_t)k->ex->first_sample + dst->params[2].i) * (j.inner / dst->ne[0]); /* + the forward's rows */
    j.scale = 1.0f / (1.0f - j.p);
    j.blk0 = j.first / 4; /* from the block of the first element to the one of the last */
    fr_cpu_parallel_for(k, (j.first + j.inner + 3) / 4 - j.blk0, 2048, dropout_range, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_drop_path(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    if (!k->ex->training || dst->params[0].f >= 1.0f) {
        identity(dst);
        return FR_STATUS_OK;
    }
    struct drop_job j;
    job_init(&j, k, dst);
    j.inner = fr_nelements(dst) / dst->ne[0];
    j.first = (int64_t)k->ex->first_sample + dst->params[2].i;
    j.scale = 1.0f / j.p;
    fr_cpu_parallel_for(k, dst->ne[0], FR_MAX(1, 8192 / FR_MAX(1, j.inner)), drop_path_range, &j);
    return FR_STATUS_OK;
}
