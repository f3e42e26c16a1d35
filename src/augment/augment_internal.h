/* Internal interface between the augmentation policies (src/augment/) and the CPU kernels (src/cpu/augment_*.c). */
#ifndef FRUGAL_AUGMENT_INTERNAL_H
#define FRUGAL_AUGMENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#define FR_AUG_MIN_INT(a, b) ((a) < (b) ? (a) : (b))
#include <stdint.h>

#include "frugal/augment.h"

/* One image of a batch: element (x, y, c) at data + y*sy + x*sx + c*sc (in elements, not bytes). */
struct fr_aug_plane {
    void *data;
    enum fr_dtype type; /* FR_U8 or FR_F32 */
    int h, w, c;
    ptrdiff_t sx, sy, sc;
};

/* a batch view of an image tensor in the given layout (host storage) */
struct fr_tensor;
struct fr_aug_images fr_aug_images_of(const struct fr_tensor *t, enum fr_aug_layout layout);

/* image i of a batch as a plane */
struct fr_aug_plane fr_aug_plane_of(const struct fr_aug_images *b, int i);

/* dst = src sampled through the inverse map minv (dst pixel -> src pixel); dst must not overlap src. */
enum fr_status fr_aug_warp_plane(const struct fr_aug_plane *src, const struct fr_aug_plane *dst, const double minv[9],
                                 enum fr_aug_interp interp, enum fr_aug_border border, float fill);
/* For OpenCL devices without doubles: the exact source coordinates of a warp as int32 tables (kind 1, affine:
 * per-column terms A[out_w], B[out_w] and per-row terms X0[out_h], Y0[out_h] in 1/1024 pixel, combined on the
 * device as clamp((X0[y] + round + A[x]) >> shift); kind 2, perspective: per row y, X[out_w] then Y[out_w], in
 * pixels (nearest) or 1/32 pixel). Returns the kind; the length in int32 is fr_aug_coord_table_len(). */
size_t fr_aug_coord_table_len(const double minv[9], int out_h, int out_w);
int fr_aug_coord_table(const double minv[9], int interp, int out_h, int out_w, int32_t *t);
/* The map and source window a WARP record applies to a sw×sh source (the window folded into the map, as the
 * CPU path does); win = x0, y0, x1, y1 of the source actually read (the whole source when the record has none). */
void fr_aug_record_map(const float *rec, int sw, int sh, double m[9], int win[4]);
/* runs one non-geometric record in place; `scratch` holds at least h*w*c bytes */
enum fr_status fr_aug_color_plane(const struct fr_aug_plane *img, const float *rec, uint8_t *scratch);
/* copies a plane (same size, any strides) */
void fr_aug_copy_plane(const struct fr_aug_plane *src, const struct fr_aug_plane *dst);

/* per-sample draws: index `i` of the (seed, FR_RNG_AUGMENT, step, sample) stream */
double fr_aug_u01(uint64_t seed, uint32_t step, uint32_t sample, uint32_t i);

/* RandAugment/TrivialAugment: fills up to `max` records after what the chain put in; returns how many */
struct fr_aug_ra_cfg {
    int n, m;          /* ops per image, magnitude bin 0..30 (TF scale: level 0..10) */
    int tf;            /* Google's TF op list and scale (fill 128) */
    int trivial;       /* TrivialAugmentWide: one op, random bin */
    int interp;        /* for the geometric ops */
    float fill;
};
int fr_aug_randaugment_draw(const struct fr_aug_ra_cfg *cfg, uint64_t seed, uint32_t step, uint32_t sample,
                            uint32_t rng_base, int h, int w, float *rec);
int fr_aug_trivialaugment_draw(const struct fr_aug_ra_cfg *cfg, uint64_t seed, uint32_t step, uint32_t sample,
                               uint32_t rng_base, int h, int w, float *rec);
/* a WARP record from an inverse matrix */
void fr_aug_make_warp(float *rec, const double minv[9], int interp, int border, float fill);
/* ... with a source window x0,y0,x1,y1 (crop semantics) */
void fr_aug_make_warp_window(float *rec, const double minv[9], int interp, int border, float fill, const int win[4]);
/* torchvision's op list (RandAugment / TrivialAugmentWide order) */
enum fr_aug_tv_op {
    FR_TV_IDENTITY, FR_TV_SHEAR_X, FR_TV_SHEAR_Y, FR_TV_TRANSLATE_X, FR_TV_TRANSLATE_Y, FR_TV_ROTATE,
    FR_TV_BRIGHTNESS, FR_TV_COLOR, FR_TV_CONTRAST, FR_TV_SHARPNESS, FR_TV_POSTERIZE, FR_TV_SOLARIZE,
    FR_TV_AUTOCONTRAST, FR_TV_EQUALIZE, FR_TV_COUNT
};
/* torch.linspace(0, max, 31)[bin] in float32, as torchvision builds its magnitude tables */
float fr_aug_linspace31(float start, float end, int bin);
/* one torchvision op with a signed magnitude as a record (as torchvision's _apply_op) */
void fr_aug_tv_record(enum fr_aug_tv_op op, double magnitude, int h, int w, int interp, float fill, float *rec);

/* whether the policy has per-sample ops (else AUG_APPLY is left out of graphs) */
bool fr_aug_policy_has_ops(const struct fr_aug_policy *pol);

/* The input stage of a policy as graph nodes in ctx: u8 NHWC images [batch,h,w,c] -> AUG_APPLY (programs) ->
 * AUG_MIX (mix records), as far as the policy has them. Inputs (flagged INPUT, filled per run by the host from
 * fr_aug_policy_draw_batch): images, prog (NULL without per-sample ops), mixrec (NULL without a mixing stage
 * unless want_mixrec: label mixing alone). out: u8 NHWC [batch, oh, ow, c]. */
struct fr_aug_stage {
    int k, oh, ow; /* records per sample (0 = no AUG_APPLY), output size */
    bool mix;      /* an AUG_MIX node */
    struct fr_tensor *images, *prog, *mixrec, *out;
};
struct fr_ctx;
enum fr_status fr_aug_stage_build(struct fr_ctx *ctx, const struct fr_aug_policy *pol, int batch, int h, int w, int c,
                                  bool want_mixrec, struct fr_aug_stage *s);

#endif
