/* TrivialAugmentWide per-sample drawing: one op of torchvision's list with a uniformly random bin of 31. */
#include <math.h>

#include "augment/augment_internal.h"

/* torchvision TrivialAugmentWide._augmentation_space(31) at one bin */
static double wide_magnitude(enum fr_aug_tv_op op, int bin, int *signed_out)
{
    *signed_out = 1;
    switch (op) {
    case FR_TV_SHEAR_X:
    case FR_TV_SHEAR_Y:
        return fr_aug_linspace31(0.0f, 0.99f, bin);
    case FR_TV_TRANSLATE_X:
    case FR_TV_TRANSLATE_Y:
        return fr_aug_linspace31(0.0f, 32.0f, bin);
    case FR_TV_ROTATE:
        return fr_aug_linspace31(0.0f, 135.0f, bin);
    case FR_TV_BRIGHTNESS:
    case FR_TV_COLOR:
    case FR_TV_CONTRAST:
    case FR_TV_SHARPNESS:
        return fr_aug_linspace31(0.0f, 0.99f, bin);
    case FR_TV_POSTERIZE:
        *signed_out = 0;
        return 8 - (int)nearbyintf((float)bin / 5.0f);
    case FR_TV_SOLARIZE:
        *signed_out = 0;
        return fr_aug_linspace31(255.0f, 0.0f, bin);
    default:
        *signed_out = 0;
        return 0;
    }
}

int fr_aug_trivialaugment_draw(const struct fr_aug_ra_cfg *cfg, uint64_t seed, uint32_t step, uint32_t sample,
                               uint32_t rng_base, int h, int w, float *rec)
{
    enum fr_aug_tv_op op = (enum fr_aug_tv_op)(int)(fr_aug_u01(seed, step, sample, rng_base) * FR_TV_COUNT);
    int bin = (int)(fr_aug_u01(seed, step, sample, rng_base + 2) * 31);
    int sgn;
    double mag = wide_magnitude(op, bin, &sgn);
    if (sgn && fr_aug_u01(seed, step, sample, rng_base + 1) < 0.5)
        mag = -mag;
    fr_aug_tv_record(op, mag, h, w, cfg->interp, cfg->fill, rec);
    return 1;
}
