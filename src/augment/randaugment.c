/* RandAugment per-sample parameter drawing: torchvision's op list and 31-bin scale (default) and Google's
 * TF list and 0..10 level scale (fill 128), as program records; a pure function of (seed, step, sample). */
#include <math.h>

#include "augment/augment_internal.h"
#include "frugal/rng_host.h"

double fr_aug_u01(uint64_t seed, uint32_t step, uint32_t sample, uint32_t i)
{
    return fr_rng_uniform_f64(seed, FR_RNG_AUGMENT, step, sample, i);
}

float fr_aug_linspace31(float start, float end, int bin)
{
    float step = (end - start) / 30.0f;
    return bin < 15 ? start + step * (float)bin : end - step * (float)(30 - bin);
}

void fr_aug_tv_record(enum fr_aug_tv_op op, double mag, int h, int w, int interp, float fill, float *rec)
{
    double m[9];
    fr_geom_identity(m);
    switch (op) {
    case FR_TV_SHEAR_X: /* PIL (1, m, 0, 0, 1, 0) about the top-left corner, moved to pixel centres */
        m[1] = mag, m[2] = mag * 0.5;
        fr_aug_make_warp(rec, m, interp, FR_AUG_CONSTANT, fill);
        return;
    case FR_TV_SHEAR_Y:
        m[3] = mag, m[5] = mag * 0.5;
        fr_aug_make_warp(rec, m, interp, FR_AUG_CONSTANT, fill);
        return;
    case FR_TV_TRANSLATE_X:
        m[2] = -(double)(int)mag; /* torchvision passes int(magnitude) */
        fr_aug_make_warp(rec, m, interp, FR_AUG_CONSTANT, fill);
        return;
    case FR_TV_TRANSLATE_Y:
        m[5] = -(double)(int)mag;
        fr_aug_make_warp(rec, m, interp, FR_AUG_CONSTANT, fill);
        return;
    case FR_TV_ROTATE: /* inverse of a counter-clockwise turn is the clockwise one */
        fr_geom_rotate(m, -mag, (w - 1) * 0.5, (h - 1) * 0.5);
        fr_aug_make_warp(rec, m, interp, FR_AUG_CONSTANT, fill);
        return;
    case FR_TV_BRIGHTNESS:
        fr_aug_make_simple(rec, FR_AUG_OP_BRIGHTNESS, (float)(1.0 + mag), 0);
        return;
    case FR_TV_COLOR:
        fr_aug_make_simple(rec, FR_AUG_OP_COLOR, (float)(1.0 + mag), 0);
        return;
    case FR_TV_CONTRAST:
        fr_aug_make_simple(rec, FR_AUG_OP_CONTRAST, (float)(1.0 + mag), 0);
        return;
    case FR_TV_SHARPNESS:
        fr_aug_make_simple(rec, FR_AUG_OP_SHARPNESS, (float)(1.0 + mag), 0);
        return;
    case FR_TV_POSTERIZE:
        fr_aug_make_simple(rec, FR_AUG_OP_POSTERIZE, (float)(int)mag, 0);
        return;
    case FR_TV_SOLARIZE:
        fr_aug_make_simple(rec, FR_AUG_OP_SOLARIZE, (float)mag, 0);
        return;
    case FR_TV_AUTOCONTRAST:
        fr_aug_make_simple(rec, FR_AUG_OP_AUTOCONTRAST, 0, 0);
        return;
    case FR_TV_EQUALIZE:
        fr_aug_make_simple(rec, FR_AUG_OP_EQUALIZE, 0, 0);
        return;
    default:
        fr_aug_make_simple(rec, FR_AUG_OP_IDENTITY, 0, 0);
        return;
    }
}

/* torchvision RandAugment._augmentation_space(31, (h, w)) evaluated at one bin; *signed_out set for signed ops */
static double tv_magnitude(enum fr_aug_tv_op op, int bin, int h, int w, int *signed_out)
{
    *signed_out = 1;
    switch (op) {
    case FR_TV_SHEAR_X:
    case FR_TV_SHEAR_Y:
        return fr_aug_linspace31(0.0f, 0.3f, bin);
    case FR_TV_TRANSLATE_X:
        return fr_aug_linspace31(0.0f, (float)(150.0 / 331.0 * w), bin);
    case FR_TV_TRANSLATE_Y:
        return fr_aug_linspace31(0.0f, (float)(150.0 / 331.0 * h), bin);
    case FR_TV_ROTATE:
        return fr_aug_linspace31(0.0f, 30.0f, bin);
    case FR_TV_BRIGHTNESS:
    case FR_TV_COLOR:
    case FR_TV_CONTRAST:
    case FR_TV_SHARPNESS:
        return fr_aug_linspace31(0.0f, 0.9f, bin);
    case FR_TV_POSTERIZE:
        *signed_out = 0;
        return 8 - (int)nearbyintf((float)bin / 7.5f);
    case FR_TV_SOLARIZE:
        *signed_out = 0;
        return fr_aug_linspace31(255.0f, 0.0f, bin);
    default:
        *signed_out = 0;
        return 0;
    }
}

/* Google's TF RandAugment (EfficientNet/Noisy Student autoaugment.py), levels 0..10, fill 128, nearest */
enum tf_op {
    TF_AUTOCONTRAST, TF_EQUALIZE, TF_INVERT, TF_ROTATE, TF_POSTERIZE, TF_SOLARIZE, TF_COLOR, TF_CONTRAST,
    TF_BRIGHTNESS, TF_SHARPNESS, TF_SHEAR_X, TF_SHEAR_Y, TF_TRANSLATE_X, TF_TRANSLATE_Y, TF_CUTOUT,
    TF_SOLARIZE_ADD, TF_COUNT
};

static void tf_record(int op, double level, double sign, double u_cy, double u_cx, int h, int w, float fill, float *rec)
{
    double l = level / 10.0, m[9];
    fr_geom_identity(m);
    switch (op) {
    case TF_AUTOCONTRAST: fr_aug_make_simple(rec, FR_AUG_OP_AUTOCONTRAST, 0, 0); return;
    case TF_EQUALIZE: fr_aug_make_simple(rec, FR_AUG_OP_EQUALIZE, 0, 0); return;
    case TF_INVERT: fr_aug_make_simple(rec, FR_AUG_OP_INVERT, 0, 0); return;
    case TF_ROTATE:
        fr_geom_rotate(m, -sign * l * 30.0, (w - 1) * 0.5, (h - 1) * 0.5);
        fr_aug_make_warp(rec, m, FR_AUG_NEAREST, FR_AUG_CONSTANT, fill);
        return;
    case TF_POSTERIZE: fr_aug_make_simple(rec, FR_AUG_OP_POSTERIZE, (float)(int)(l * 4), 0); return;
    case TF_SOLARIZE: fr_aug_make_simple(rec, FR_AUG_OP_SOLARIZE, (float)(int)(l * 256), 0); return;
    case TF_COLOR: fr_aug_make_simple(rec, FR_AUG_OP_COLOR, (float)(l * 1.8 + 0.1), 0); return;
    case TF_CONTRAST: fr_aug_make_simple(rec, FR_AUG_OP_CONTRAST_TF, (float)(l * 1.8 + 0.1), 0); return;
    case TF_BRIGHTNESS: fr_aug_make_simple(rec, FR_AUG_OP_BRIGHTNESS, (float)(l * 1.8 + 0.1), 0); return;
    case TF_SHARPNESS: fr_aug_make_simple(rec, FR_AUG_OP_SHARPNESS, (float)(l * 1.8 + 0.1), 0); return;
    case TF_SHEAR_X: /* tf.contrib.image.transform works on pixel centres directly */
        m[1] = sign * l * 0.3;
        fr_aug_make_warp(rec, m, FR_AUG_NEAREST, FR_AUG_CONSTANT, fill);
        return;
    case TF_SHEAR_Y:
        m[3] = sign * l * 0.3;
        fr_aug_make_warp(rec, m, FR_AUG_NEAREST, FR_AUG_CONSTANT, fill);
        return;
    case TF_TRANSLATE_X:
        m[2] = sign * l * 100.0;
        fr_aug_make_warp(rec, m, FR_AUG_NEAREST, FR_AUG_CONSTANT, fill);
        return;
    case TF_TRANSLATE_Y:
        m[5] = sign * l * 100.0;
        fr_aug_make_warp(rec, m, FR_AUG_NEAREST, FR_AUG_CONSTANT, fill);
        return;
    case TF_CUTOUT: {
        int pad = (int)(l * 40), cy = (int)(u_cy * h), cx = (int)(u_cx * w);
        fr_aug_make_simple(rec, FR_AUG_OP_CUTOUT, fill, 0);
        fr_aug_set_box(rec, cx - pad, cy - pad, cx + pad, cy + pad);
        return;
    }
    default: /* TF_SOLARIZE_ADD */
        fr_aug_make_simple(rec, FR_AUG_OP_SOLARIZE_ADD, (float)(int)(l * 110), 128);
        return;
    }
}

int fr_aug_randaugment_draw(const struct fr_aug_ra_cfg *cfg, uint64_t seed, uint32_t step, uint32_t sample,
                            uint32_t rng_base, int h, int w, float *rec)
{
    for (int j = 0; j < cfg->n; j++) {
        uint32_t b = rng_base + (uint32_t)j * 4;
        double u_op = fr_aug_u01(seed, step, sample, b), u_sign = fr_aug_u01(seed, step, sample, b + 1);
        float *r = rec + (size_t)j * FR_AUG_REC;
        if (cfg->tf) {
            int op = (int)(u_op * TF_COUNT);
            tf_record(op, cfg->m, u_sign < 0.5 ? -1.0 : 1.0, fr_aug_u01(seed, step, sample, b + 2),
                      fr_aug_u01(seed, step, sample, b + 3), h, w, cfg->fill, r);
            continue;
        }
        enum fr_aug_tv_op op = (enum fr_aug_tv_op)(int)(u_op * FR_TV_COUNT);
        int sgn;
        double mag = tv_magnitude(op, cfg->m, h, w, &sgn);
        if (sgn && u_sign < 0.5)
            mag = -mag;
        fr_aug_tv_record(op, mag, h, w, cfg->interp, cfg->fill, r);
    }
    return cfg->n;
}
