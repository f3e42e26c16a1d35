/* CutMix/MixUp parameter sampling: Beta(a, a) from two Gamma draws, partner permutation, clipped boxes,
 * lambda recomputed from the clipped area; a pure function of (seed, step). */
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
        rec[i * FR_AUG_MIX_REC + 1] = (float)(cfg->roll ? (i + n - 1) % n : i);
    if (!cfg->roll) {
        uint32_t idx = 0;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(u01(seed, FR_RNG_MIX, step, UINT32_MAX, &idx) * (i + 1));
            float t = rec[i * FR_AUG_MIX_REC + 1];
            rec[i * FR_AUG_MIX_REC + 1] = rec[j * FR_AUG_MIX_REC + 1];
            rec[j * FR_AUG_MIX_REC + 1] = t;
        }
    }
    for (int i = 0; i < n; i++) {
        float *r = rec + (size_t)i * FR_AUG_MIX_REC;
        uint32_t idx = 0;
        r[2] = 1.0f;
        const uint32_t smp = first_sample + (uint32_t)i; /* the sample's own stream: its global index */
        double u_p = u01(seed, FR_RNG_MIX, step, smp, &idx);
        if (cfg->mode == FR_AUG_MIX_NONE || u_p >= cfg->p || (int)r[1] == i)
            continue;
        double lam = fr_aug_beta(cfg->alpha, seed, FR_RNG_MIX, step, smp, &idx);
        if (cfg->mode == FR_AUG_MIX_MIXUP) {
            r[0] = FR_AUG_MIX_MIXUP;
            r[2] = (float)lam;
            continue;
        }
        /* CutMix: box √(1−λ)·W by √(1−λ)·H around a uniform integer centre, clipped */
        int cx = (int)(u01(seed, FR_RNG_MIX, step, smp, &idx) * w);
        int cy = (int)(u01(seed, FR_RNG_MIX, step, smp, &idx) * h);
        double rr = 0.5 * sqrt(1.0 - lam);
        int hw = (int)(rr * w), hh = (int)(rr * h);
        int x0 = cx - hw < 0 ? 0 : cx - hw, y0 = cy - hh < 0 ? 0 : cy - hh;
        int x1 = cx + hw > w ? w : cx + hw, y1 = cy + hh > h ? h : cy + hh;
        r[0] = FR_AUG_MIX_CUTMIX;
        r[3] = (float)x0, r[4] = (float)y0, r[5] = (float)x1, r[6] = (float)y1;
        /* the label weight is the fraction of own pixels left (Kornia once got this backwards) */
        r[2] = cfg->no_area_fix ? (float)lam : (float)(1.0 - (double)(x1 - x0) * (y1 - y0) / ((double)w * h));
    }
    return FR_STATUS_OK;
}
