/* CutMix/MixUp: parameter sampling (Beta(a, a) from two Gamma draws, partner permutation, clipped boxes, lambda
 * recomputed from the clipped area; a pure function of (seed, step, sample)) and the host kernels mixing images
 * and labels. */
#include <math.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "frugal/rng_host.h"

static double u01(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint32_t *idx)
{
    return fr_rng_uniform_f64(seed, purpose, step, sample, (*idx)++);
}

static double normal(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint32_t *idx)
{
    double u1 = 1.0 - u01(seed, purpose, step, sample, idx); /* (0, 1]: log is finite */
    double u2 = u01(seed, purpose, step, sample, idx);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Marsaglia & Tsang (2000); shape < 1 via Gamma(a + 1) · U^(1/a) */
static double gamma_draw(double a, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint32_t *idx)
{
    double boost = 1.0;
    if (a < 1.0) {
        double u = 1.0 - u01(seed, purpose, step, sample, idx);
        boost = pow(u, 1.0 / a);
        a += 1.0;
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (int tries = 0; tries < 1000; tries++) {
        double x = normal(seed, purpose, step, sample, idx), v = 1.0 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = 1.0 - u01(seed, purpose, step, sample, idx);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v * boost;
    }
    return d * boost; /* practically unreachable (acceptance rate > 95%) */
}

double fr_aug_beta(double a, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint32_t *idx)
{
    double x = gamma_draw(a, seed, purpose, step, sample, idx);
    double y = gamma_draw(a, seed, purpose, step, sample, idx);
    return x + y > 0 ? x / (x + y) : 0.5;
}

enum fr_status fr_aug_mix_draw(const struct fr_aug_mix_cfg *cfg, uint64_t seed, uint32_t step, int n, int h, int w,
                               float *rec)
{
    return fr_aug_mix_draw_at(cfg, seed, step, 0, n, h, w, rec);
}

enum fr_status fr_aug_mix_draw_at(const struct fr_aug_mix_cfg *cfg, uint64_t seed, uint32_t step, uint32_t first_sample,
                                  int n, int h, int w, float *rec)
{
    if (!cfg || n < 1 || h < 1 || w < 1 || !rec)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: mix: bad batch size or image size");
    if (cfg->mode != FR_AUG_MIX_NONE && !(cfg->alpha > 0))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: mix: alpha must be > 0 (got %g)", cfg->alpha);
    memset(rec, 0, sizeof(float) * FR_AUG_MIX_REC * (size_t)n);
    /* partner: a random permutation from the batch-level stream (sample = UINT32_MAX), or a roll by one */
    for (int i = 0; i < n; i++)
        rec[i * FR_AUG_MIX_REC + FR_AUG_MIX_R_PARTNER] = (float)(cfg->roll ? (i + n - 1) % n : i);
    if (!cfg->roll) {
        uint32_t idx = 0;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(u01(seed, FR_RNG_MIX, step, UINT32_MAX, &idx) * (i + 1));
            float t = rec[i * FR_AUG_MIX_REC + FR_AUG_MIX_R_PARTNER];
            rec[i * FR_AUG_MIX_REC + FR_AUG_MIX_R_PARTNER] = rec[j * FR_AUG_MIX_REC + FR_AUG_MIX_R_PARTNER];
            rec[j * FR_AUG_MIX_REC + FR_AUG_MIX_R_PARTNER] = t;
        }
    }
    for (int i = 0; i < n; i++) {
        float *r = rec + (size_t)i * FR_AUG_MIX_REC;
        uint32_t idx = 0;
        r[FR_AUG_MIX_R_LAMBDA] = 1.0f;
        const uint32_t smp = first_sample + (uint32_t)i; /* the sample's own stream: its global index */
        double u_p = u01(seed, FR_RNG_MIX, step, smp, &idx);
        if (cfg->mode == FR_AUG_MIX_NONE || u_p >= cfg->p || (int)r[FR_AUG_MIX_R_PARTNER] == i)
            continue;
        double lam = fr_aug_beta(cfg->alpha, seed, FR_RNG_MIX, step, smp, &idx);
        if (cfg->mode == FR_AUG_MIX_MIXUP) {
            r[FR_AUG_MIX_R_MODE] = FR_AUG_MIX_MIXUP;
            r[FR_AUG_MIX_R_LAMBDA] = (float)lam;
            continue;
        }
        /* CutMix: box √(1−λ)·W by √(1−λ)·H around a uniform integer centre, clipped */
        int cx = (int)(u01(seed, FR_RNG_MIX, step, smp, &idx) * w);
        int cy = (int)(u01(seed, FR_RNG_MIX, step, smp, &idx) * h);
        double rr = 0.5 * sqrt(1.0 - lam);
        int hw = (int)(rr * w), hh = (int)(rr * h);
        int x0 = cx - hw < 0 ? 0 : cx - hw, y0 = cy - hh < 0 ? 0 : cy - hh;
        int x1 = cx + hw > w ? w : cx + hw, y1 = cy + hh > h ? h : cy + hh;
        r[FR_AUG_MIX_R_MODE] = FR_AUG_MIX_CUTMIX;
        r[FR_AUG_MIX_R_BOX] = (float)x0, r[FR_AUG_MIX_R_BOX + 1] = (float)y0;
        r[FR_AUG_MIX_R_BOX + 2] = (float)x1, r[FR_AUG_MIX_R_BOX + 3] = (float)y1;
        /* the label weight is the fraction of own pixels left (Kornia once got this backwards) */
        r[FR_AUG_MIX_R_LAMBDA] = cfg->no_area_fix ? (float)lam : (float)(1.0 - (double)(x1 - x0) * (y1 - y0) / ((double)w * h));
    }
    return FR_STATUS_OK;
}

enum fr_status fr_aug_mix_host(const struct fr_aug_images *in, const struct fr_aug_images *out, const float *rec)
{
    if (in->n != out->n || in->h != out->h || in->w != out->w || in->c != out->c || in->type != out->type ||
        in->layout != out->layout)
        return fr_error(FR_STATUS_SHAPE, "augment: mix: input and output batches differ");
    for (int i = 0; i < in->n; i++) {
        const float *r = rec + (size_t)i * FR_AUG_MIX_REC;
        int mode = (int)r[FR_AUG_MIX_R_MODE], j = (int)r[FR_AUG_MIX_R_PARTNER];
        if (mode != FR_AUG_MIX_NONE && (j < 0 || j >= in->n))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: mix: sample %d has partner %d outside the batch of %d",
                            i, j, in->n);
    }
    for (int i = 0; i < in->n; i++) {
        const float *r = rec + (size_t)i * FR_AUG_MIX_REC;
        int mode = (int)r[FR_AUG_MIX_R_MODE], j = (int)r[FR_AUG_MIX_R_PARTNER];
        struct fr_aug_plane a = fr_aug_plane_of(in, i), d = fr_aug_plane_of(out, i);
        fr_aug_copy_plane(&a, &d);
        if (mode == FR_AUG_MIX_NONE)
            continue;
        struct fr_aug_plane b = fr_aug_plane_of(in, j);
        int x0 = 0, y0 = 0, x1 = in->w, y1 = in->h;
        if (mode == FR_AUG_MIX_CUTMIX) {
            x0 = (int)r[FR_AUG_MIX_R_BOX], y0 = (int)r[FR_AUG_MIX_R_BOX + 1];
            x1 = (int)r[FR_AUG_MIX_R_BOX + 2], y1 = (int)r[FR_AUG_MIX_R_BOX + 3];
            x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
            x1 = x1 > in->w ? in->w : x1, y1 = y1 > in->h ? in->h : y1;
        }
        float lam = r[FR_AUG_MIX_R_LAMBDA];
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
                for (int k = 0; k < in->c; k++) {
                    ptrdiff_t od = y * d.sy + x * d.sx + k * d.sc, ob = y * b.sy + x * b.sx + k * b.sc;
                    if (in->type == FR_U8) {
                        uint8_t *pd = d.data;
                        const uint8_t *pb = b.data;
                        if (mode == FR_AUG_MIX_CUTMIX)
                            pd[od] = pb[ob];
                        else
                            pd[od] = fr_aug_mixup_u8(pd[od], pb[ob], lam);
                    } else {
                        float *pd = d.data;
                        const float *pb = b.data;
                        pd[od] = mode == FR_AUG_MIX_CUTMIX ? pb[ob] : fr_aug_mixup_f32(pd[od], pb[ob], lam);
                    }
                }
    }
    return FR_STATUS_OK;
}

enum fr_status fr_aug_mix_labels_host(const int32_t *labels, int n, int n_classes, const float *rec, float *soft)
{
    memset(soft, 0, sizeof(float) * (size_t)n * n_classes);
    for (int i = 0; i < n; i++) {
        const float *r = rec + (size_t)i * FR_AUG_MIX_REC;
        int j = (int)r[FR_AUG_MIX_R_PARTNER];
        if (j < 0 || j >= n)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: mix labels: partner %d outside the batch", j);
        int ya = labels[i], yb = labels[j];
        if (ya < 0 || ya >= n_classes || yb < 0 || yb >= n_classes)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: mix labels: label %d or %d outside 0..%d", ya, yb,
                            n_classes - 1);
        float lam = fr_aug_mix_lambda(r);
        soft[(size_t)i * n_classes + ya] += lam;
        soft[(size_t)i * n_classes + yb] += 1.0f - lam;
    }
    return FR_STATUS_OK;
}

enum fr_status fr_aug_mix_soft_host(const float *in, int n, int n_classes, const float *rec, float *out)
{
    for (int i = 0; i < n; i++) {
        const float *r = rec + (size_t)i * FR_AUG_MIX_REC;
        int j = (int)r[FR_AUG_MIX_R_PARTNER];
        if (j < 0 || j >= n)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: mix labels: partner %d outside the batch", j);
        float lam = fr_aug_mix_lambda(r);
        for (int q = 0; q < n_classes; q++)
            out[(size_t)i * n_classes + q] =
                fr_aug_mix_target(in[(size_t)i * n_classes + q], in[(size_t)j * n_classes + q], lam);
    }
    return FR_STATUS_OK;
}
