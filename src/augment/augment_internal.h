/* Internal interface of the augmentation module (src/augment/): host kernels, records, tables and the graph stage,
 * used by the CPU kernels (src/cpu/augment.c), the OpenCL launchers and the trainer. */
#ifndef FRUGAL_AUGMENT_INTERNAL_H
#define FRUGAL_AUGMENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

#include "augment_common.h"
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
/* copies a plane (same size, any strides; nothing when both are the same image) */
void fr_aug_copy_plane(const struct fr_aug_plane *src, const struct fr_aug_plane *dst);

/* --- records (program.c) --- */
/* a record of a simple op: code, ARG and the field after it */
void fr_aug_make_simple(float *rec, enum fr_aug_code code, float arg, float arg2);
/* a WARP record from an inverse matrix (kept exactly, see FR_AUG_R_M) */
void fr_aug_make_warp(float *rec, const double minv[9], int interp, int border, float fill);
/* ... with a source window x0,y0,x1,y1 (crop semantics) */
void fr_aug_make_warp_window(float *rec, const double minv[9], int interp, int border, float fill, const int win[4]);
/* a record's box (cutout) x0, y0, x1, y1 */
void fr_aug_set_box(float *rec, int x0, int y0, int x1, int y1);
/* The map and clipped source window a WARP record applies to a sw×sh source (fr_aug_rec_window and
 * fr_aug_window_map of augment_common.h). */
void fr_aug_record_map(const float *rec, int sw, int sh, double m[9], int win[4]);

/* --- the host kernels --- */
/* dst = src sampled through the inverse map minv (dst pixel -> src pixel); dst must not overlap src (warp.c) */
enum fr_status fr_aug_warp_plane(const struct fr_aug_plane *src, const struct fr_aug_plane *dst, const double minv[9],
                                 enum fr_aug_interp interp, enum fr_aug_border border, float fill);
/* the source positions of output row y (fr_aug_map_pos, vectorised) */
void fr_aug_warp_row_pos(const double minv[9], int y, int out_w, int out_h, enum fr_aug_interp interp, int *X, int *Y);
/* one colour record from `in` into `out` (the same image, or another one of its size; sharpness needs another)
 * (color.c) */
enum fr_status fr_aug_color_op(const struct fr_aug_plane *in, const struct fr_aug_plane *out, const float *rec);
/* one colour record in place; `scratch` holds at least h*w*c bytes (sharpness reads a copy) */
enum fr_status fr_aug_color_plane(const struct fr_aug_plane *img, const float *rec, uint8_t *scratch);
/* fr_aug_apply_host with a work batch of the output's shape as the ping-pong partner (NULL: scratch per thread,
 * allocated per call) */
struct fr_threadpool;
enum fr_status fr_aug_apply_run(const struct fr_aug_images *in, const struct fr_aug_images *out, const float *prog,
                                int k, const struct fr_aug_images *work, struct fr_threadpool *pool);

/* --- coordinate tables for devices without doubles (tables.c) --- */
/* One map's table (the kind, FR_AUG_TAB_*, is returned; its length in int32 is fr_aug_coord_table_len). */
size_t fr_aug_coord_table_len(const double minv[9], int out_h, int out_w);
int fr_aug_coord_table(const double minv[9], int interp, int out_h, int out_w, int32_t *t);
/* The table input of AUG_APPLY for n samples of k records: tab[i*k + r] = offset of record r's [kind, terms]
 * (warp records; 0 otherwise), then the tables; *used ints written, at most cap. */
enum fr_status fr_aug_tables_fill(const float *prog, int n, int k, int in_h, int in_w, int out_h, int out_w,
                                  int32_t *tab, size_t cap, size_t *used);
/* an upper bound of the ints fr_aug_tables_fill writes for one sample of a policy */
size_t fr_aug_policy_table_len(const struct fr_aug_policy *pol, int in_h, int in_w);

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

/* the name of the policy's first op that changes an in_h×in_w image's size ("none" if none does) */
const char *fr_aug_policy_resizing_op(const struct fr_aug_policy *pol, int in_h, int in_w);
/* When the policy starts with rrc(size=h x w) (bilinear), removes that stage and gives its scale and ratio ranges:
 * the caller crops when it reads the images (fr_dataset_read's FR_CROP_RANDOM, from the whole photo) */
bool fr_aug_policy_take_rrc(struct fr_aug_policy *pol, int h, int w, float scale[2], float ratio[2]);
/* whether the policy has per-sample ops (else AUG_APPLY is left out of graphs) */
bool fr_aug_policy_has_ops(const struct fr_aug_policy *pol);
/* For one sample's program (K records) of a mirror-only policy (fr_aug_policy_mirror_only): whether it shows the
 * mirror image. */
bool fr_aug_policy_mirrors(const struct fr_aug_policy *pol, const float *rec);

/* The input stage of a policy as graph nodes in ctx: u8 NHWC images [batch,h,w,c] -> AUG_APPLY (programs) ->
 * AUG_MIX (mix records), as far as the policy has them (FR_AUG_STAGE_MIX: a mixing stage in any case). Inputs
 * (flagged INPUT, filled per run by the host from fr_aug_policy_draw_batch): images, prog (NULL without per-sample
 * ops), tab (coordinate tables, with FR_AUG_STAGE_TABLES for backends with no_fp64; fill with
 * fr_aug_stage_set_tables), mixrec (NULL without a mixing stage unless FR_AUG_STAGE_MIXREC: labels mixed alone).
 * out: u8 NHWC [batch, oh, ow, c]. */
enum { FR_AUG_STAGE_MIX = 1, FR_AUG_STAGE_MIXREC = 2, FR_AUG_STAGE_TABLES = 4 };
struct fr_aug_stage {
    int k, oh, ow;  /* records per sample (0 = no AUG_APPLY), output size */
    bool mix;       /* an AUG_MIX node */
    size_t tab_cap; /* ints of the table input */
    struct fr_tensor *images, *prog, *tab, *mixrec, *out;
};
struct fr_ctx;
enum fr_status fr_aug_stage_build(struct fr_ctx *ctx, const struct fr_aug_policy *pol, int batch, int h, int w, int c,
                                  unsigned flags, struct fr_aug_stage *s);
/* The same over images already in the graph (u8 NHWC [batch,h,w,c], e.g. a slice of another stage's input). */
enum fr_status fr_aug_stage_build_on(struct fr_ctx *ctx, struct fr_tensor *images, const struct fr_aug_policy *pol,
                                     unsigned flags, struct fr_aug_stage *s);
/* fills the table input from one batch of programs (buf: tab_cap ints of host scratch) */
enum fr_status fr_aug_stage_set_tables(const struct fr_aug_stage *s, const float *prog, int batch, int h, int w,
                                       int32_t *buf);

#endif
