/* Batched image augmentation: geometry (matrices from angles/points), per-sample op programs, colour ops
 * with PIL semantics, CutMix/MixUp, policies (RandAugment, TrivialAugmentWide, user chains) and graph ops.
 *
 *   struct fr_aug_policy *pol;
 *   fr_aug_policy_parse("rrc(size=224);hflip(p=0.5);randaugment(n=2,m=9)", &pol);
 *   int oh, ow; fr_aug_policy_out_size(pol, 256, 256, &oh, &ow);
 *   int k = fr_aug_policy_max_ops(pol);
 *   float *prog = malloc(sizeof(float) * N * k * FR_AUG_REC);
 *   for (int i = 0; i < N; i++) fr_aug_policy_draw(pol, seed, step, i, 256, 256, prog + i * k * FR_AUG_REC);
 *   uint8_t *src = malloc((size_t)N * 256 * 256 * 3), *dst = malloc((size_t)N * oh * ow * 3);
 *   struct fr_aug_images in = {src, FR_U8, FR_AUG_NHWC, N, 256, 256, 3}, out = {dst, FR_U8, FR_AUG_NHWC, N, oh, ow, 3};
 *   fr_aug_apply_host(&in, &out, prog, k, NULL);                            // on the host, or in a graph:
 *   struct fr_tensor *y = fr_aug_apply(ctx, images, prog_tensor, oh, ow, FR_AUG_NHWC);
 *
 * Conventions: matrices are 3×3 row-major; warps store the INVERSE map
 * (output pixel -> source pixel); pixel centres are at integers; the image centre is ((W-1)/2,(H-1)/2);
 * a positive angle turns the picture counter-clockwise. Nearest/bilinear/bicubic sampling reproduces
 * OpenCV's fixed-point arithmetic (5-bit sub-pixel positions, 15-bit weights) on u8 images.
 */
#ifndef FRUGAL_AUGMENT_H
#define FRUGAL_AUGMENT_H

#include <stdint.h>

#include "augment_common.h"
#include "frugal/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum fr_aug_layout { FR_AUG_NHWC = 0, FR_AUG_NCHW = 1 };
enum fr_aug_interp { FR_AUG_NEAREST = 0, FR_AUG_BILINEAR = 1, FR_AUG_BICUBIC = 2 };
enum fr_aug_border { FR_AUG_CONSTANT = 0, FR_AUG_REPLICATE = 1, FR_AUG_REFLECT101 = 2 };

/* ---------------------------------------------------------------------------------------------
 * Geometry on the host (double precision). Forward matrices map source to destination pixels.
 * --------------------------------------------------------------------------------------------- */
void fr_geom_identity(double m[9]);
/* out = a · b (apply b first, then a) */
void fr_geom_mul(const double a[9], const double b[9], double out[9]);
/* FR_STATUS_NUMERIC when m is singular */
enum fr_status fr_geom_invert(const double m[9], double inv[9]);
/* counter-clockwise rotation by `deg` degrees about (cx, cy), as cv2.getRotationMatrix2D with scale 1 */
void fr_geom_rotate(double m[9], double deg, double cx, double cy);
/* x' = x + shx·(y − cy), y' = y + shy·(x − cx) */
void fr_geom_shear(double m[9], double shx, double shy, double cx, double cy);
void fr_geom_translate(double m[9], double tx, double ty);
/* scale by (sx, sy) about (cx, cy) */
void fr_geom_scale(double m[9], double sx, double sy, double cx, double cy);
/* 2×3 affine (as 3×3) with dst[i] = M·src[i] for three pairs (x, y); collinear points are an error */
enum fr_status fr_geom_affine_from_points(const double src[6], const double dst[6], double m[9]);
/* perspective with dst[i] ~ M·src[i] for four pairs, M[8] = 1 (8×8 solve); degenerate points are an error */
enum fr_status fr_geom_perspective_from_points(const double src[8], const double dst[8], double m[9]);
/* maps (x, y) through m (with the perspective divide) */
void fr_geom_apply(const double m[9], double x, double y, double *ox, double *oy);

/* ---------------------------------------------------------------------------------------------
 * Per-sample op programs: each sample has K records of FR_AUG_REC floats, run in order.
 * --------------------------------------------------------------------------------------------- */
/* FR_AUG_REC floats per record, fields FR_AUG_R_* and op codes FR_AUG_CODE_*: see augment_common.h (shared with
 * the OpenCL kernels). Build records with fr_aug_policy_draw; a WARP record's matrix is stored bit for bit. */
enum fr_aug_code {
    FR_AUG_OP_IDENTITY = FR_AUG_CODE_IDENTITY,
    FR_AUG_OP_WARP = FR_AUG_CODE_WARP,
    FR_AUG_OP_BRIGHTNESS = FR_AUG_CODE_BRIGHTNESS,
    FR_AUG_OP_COLOR = FR_AUG_CODE_COLOR,
    FR_AUG_OP_CONTRAST = FR_AUG_CODE_CONTRAST,
    FR_AUG_OP_SHARPNESS = FR_AUG_CODE_SHARPNESS,
    FR_AUG_OP_POSTERIZE = FR_AUG_CODE_POSTERIZE,
    FR_AUG_OP_SOLARIZE = FR_AUG_CODE_SOLARIZE,
    FR_AUG_OP_SOLARIZE_ADD = FR_AUG_CODE_SOLARIZE_ADD,
    FR_AUG_OP_INVERT = FR_AUG_CODE_INVERT,
    FR_AUG_OP_AUTOCONTRAST = FR_AUG_CODE_AUTOCONTRAST,
    FR_AUG_OP_EQUALIZE = FR_AUG_CODE_EQUALIZE,
    FR_AUG_OP_GRAYSCALE = FR_AUG_CODE_GRAYSCALE,
    FR_AUG_OP_NOISE = FR_AUG_CODE_NOISE,
    FR_AUG_OP_CUTOUT = FR_AUG_CODE_CUTOUT,
    FR_AUG_OP_CONTRAST_TF = FR_AUG_CODE_CONTRAST_TF,
    FR_AUG_OP_COUNT = FR_AUG_CODE_COUNT
};
const char *fr_aug_code_name(enum fr_aug_code c);

/* A host image batch: n images of h×w×c (c = 1..4), u8 (0..255) or f32 (0..1 nominal). */
struct fr_aug_images {
    void *data;
    enum fr_dtype type;
    enum fr_aug_layout layout;
    int n, h, w, c;
};

/* Applies each sample's program (k records) to `in`, writing `out` (same n, c, type and layout; its h×w is
 * the output size; the first record must be a WARP when the sizes differ). Threads from `pool`
 * (NULL = run on the calling thread). The same function is the CPU kernel of FR_OP_AUG_APPLY. */
struct fr_threadpool;
enum fr_status fr_aug_apply_host(const struct fr_aug_images *in, const struct fr_aug_images *out,
                                 const float *prog, int k, struct fr_threadpool *pool);

/* ---------------------------------------------------------------------------------------------
 * CutMix / MixUp: per-sample parameters, FR_AUG_MIX_REC floats each.
 * --------------------------------------------------------------------------------------------- */
enum fr_aug_mix_mode { FR_AUG_MIX_NONE = 0, FR_AUG_MIX_CUTMIX = 1, FR_AUG_MIX_MIXUP = 2 };
/* FR_AUG_MIX_REC floats per sample, fields FR_AUG_MIX_R_* (augment_common.h): mode, partner index, lambda of the
 * own label, box x0,y0,x1,y1 (half-open) */
struct fr_aug_mix_cfg {
    enum fr_aug_mix_mode mode;
    double alpha;     /* Beta(alpha, alpha) */
    double p;         /* probability to mix a sample at all */
    int roll;         /* partner = (i + 1) mod n (torchvision) instead of a random permutation */
    int no_area_fix;  /* CutMix: keep the sampled lambda for the labels (not recommended) */
};
/* Draws the parameters of a whole batch (n records) as a pure function of (seed, step). */
enum fr_status fr_aug_mix_draw(const struct fr_aug_mix_cfg *cfg, uint64_t seed, uint32_t step, int n, int h,
                               int w, float *rec);
/* The same for a batch holding samples first_sample..first_sample+n-1 of the step: each sample's lambda and
 * box come from its global index's stream, the partners (within the batch) from the step's batch stream.
 * fr_aug_mix_draw is first_sample = 0. */
enum fr_status fr_aug_mix_draw_at(const struct fr_aug_mix_cfg *cfg, uint64_t seed, uint32_t step,
                                  uint32_t first_sample, int n, int h, int w, float *rec);
/* out = mix of in (same shape); in and out must not overlap. */
enum fr_status fr_aug_mix_host(const struct fr_aug_images *in, const struct fr_aug_images *out, const float *rec);
/* soft labels [n, n_classes] from integer labels and the records: lambda·onehot(y_i) + (1 − lambda)·onehot(y_j) */
enum fr_status fr_aug_mix_labels_host(const int32_t *labels, int n, int n_classes, const float *rec, float *soft);
/* the same from soft targets in [n, n_classes]: lambda·in_i + (1 − lambda)·in_j (in and out must not overlap) */
enum fr_status fr_aug_mix_soft_host(const float *in, int n, int n_classes, const float *rec, float *out);
/* one Beta(a, a) draw from the (seed, purpose, step, sample) stream using indices from *idx on */
double fr_aug_beta(double a, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint32_t *idx);

/* ---------------------------------------------------------------------------------------------
 * Policies: `name(key=value,...);name(...)`, e.g. "randaugment(n=2,m=9)".
 * --------------------------------------------------------------------------------------------- */
struct fr_aug_policy;
/* Parses a spec; unknown ops or keys give FR_STATUS_INVALID_ARGUMENT with a message listing the valid ones. */
enum fr_status fr_aug_policy_parse(const char *spec, struct fr_aug_policy **out);
void fr_aug_policy_free(struct fr_aug_policy *pol);
/* records per sample (K) */
int fr_aug_policy_max_ops(const struct fr_aug_policy *pol);
void fr_aug_policy_out_size(const struct fr_aug_policy *pol, int in_h, int in_w, int *out_h, int *out_w);
/* Fills K records for one sample: a pure function of (seed, step, sample). */
enum fr_status fr_aug_policy_draw(const struct fr_aug_policy *pol, uint64_t seed, uint32_t step, uint32_t sample,
                                  int in_h, int in_w, float *rec);
/* True when the policy's only per-sample op is hflip (a normalize may follow; no mixing): an image's views are the
 * image and its mirror image, so a teacher's logits of both can be computed once (distillation). */
bool fr_aug_policy_mirror_only(const struct fr_aug_policy *pol);
/* the batch-level mixing stage of the policy (cutmix/mixup), or NULL */
const struct fr_aug_mix_cfg *fr_aug_policy_mix(const struct fr_aug_policy *pol);
/* normalisation at the end of the policy (`normalize(mean=...,std=...)`); returns 0 if none */
int fr_aug_policy_normalize(const struct fr_aug_policy *pol, float mean[4], float std[4]);
/* Host inputs of one batch: the programs of samples first_sample..first_sample+n-1 of `step` (prog: f32
 * [batch, K, FR_AUG_REC]) and, when mix != NULL, the batch's mix records (f32 [batch, FR_AUG_MIX_REC]; no mixing
 * when the policy has no cutmix/mixup). Rows n..batch-1 are padding: identity programs, unmixed records. */
enum fr_status fr_aug_policy_draw_batch(const struct fr_aug_policy *pol, uint64_t seed, uint32_t step,
                                        uint32_t first_sample, int n, int batch, int in_h, int in_w, float *prog,
                                        float *mix);

/* ---------------------------------------------------------------------------------------------
 * A batch augmenter: a policy (per-sample ops, then its mixing stage, then its normalisation) run as graph
 * ops on a backend; the same bytes as `frugal augment` and as training's input stage for the same (seed,
 * step, sample).
 *
 *   struct fr_augmenter_opts ao = {.policy = "randaugment(n=2,m=9);cutmix(alpha=1)", .seed = 1,
 *                                  .batch = 64, .h = 28, .w = 28, .c = 1, .n_classes = 10};
 *   struct fr_augmenter *a;  fr_augmenter_new(be, &ao, &a);
 *   fr_augmenter_run(a, step, 0, 64, images, out, labels, soft);   // out: 64 u8 28x28x1 images
 * --------------------------------------------------------------------------------------------- */
struct fr_backend;
struct fr_augmenter;
struct fr_augmenter_opts {
    const char *policy; /* policy string, e.g. "randaugment(n=2,m=9);cutmix(alpha=1)"; NULL or "none" = none */
    uint64_t seed;
    int batch;          /* most images per call */
    int h, w, c;        /* input image size (u8 NHWC) */
    int n_classes;      /* > 0: labels can be given and are mixed into soft labels; 0 = none */
    int no_normalize;   /* 1: stop before the policy's normalize(...) (u8 output, e.g. for previews) */
};
enum fr_status fr_augmenter_new(struct fr_backend *be, const struct fr_augmenter_opts *o, struct fr_augmenter **out);
void fr_augmenter_free(struct fr_augmenter *a);
/* output geometry and type: u8 NHWC, or f32 NCHW when the policy ends with normalize(...) */
void fr_augmenter_output(const struct fr_augmenter *a, int *out_h, int *out_w, enum fr_dtype *type,
                         enum fr_aug_layout *layout);
/* Augments n <= batch contiguous u8 NHWC images as samples first_sample..first_sample+n-1 of `step`.
 * out: n output images; labels: i32 [n] or NULL; soft: f32 [n, n_classes], written when labels != NULL. */
enum fr_status fr_augmenter_run(struct fr_augmenter *a, uint32_t step, uint32_t first_sample, int n,
                                const uint8_t *in, void *out, const int32_t *labels, float *soft);
/* The augmenter's graph (for its statistics, e.g. fallback_ops). */
struct fr_graph *fr_augmenter_graph(const struct fr_augmenter *a);

/* ---------------------------------------------------------------------------------------------
 * Graph ops (images u8/f32 [N,H,W,C] for NHWC or [N,C,H,W] for NCHW).
 * --------------------------------------------------------------------------------------------- */
/* prog: f32 [N, K, FR_AUG_REC] (usually an INPUT filled by fr_aug_policy_draw each step) */
struct fr_tensor *fr_aug_apply(struct fr_ctx *ctx, struct fr_tensor *images, struct fr_tensor *prog, int out_h,
                               int out_w, enum fr_aug_layout layout);
/* The same for devices without full-rate doubles (struct fr_backend.no_fp64): tab, an i32 INPUT, holds OpenCV's
 * double-precision coordinates of the programs' warps, filled by the host each run (the augmenter and the trainer
 * do this); without it such a device runs AUG_APPLY on the CPU path. */
struct fr_tensor *fr_aug_apply_tab(struct fr_ctx *ctx, struct fr_tensor *images, struct fr_tensor *prog,
                                   struct fr_tensor *tab, int out_h, int out_w, enum fr_aug_layout layout);
/* matrices: f32 [N, 9] inverse maps; one batched warp */
struct fr_tensor *fr_aug_warp(struct fr_ctx *ctx, struct fr_tensor *images, struct fr_tensor *matrices, int out_h,
                              int out_w, enum fr_aug_layout layout, enum fr_aug_interp interp,
                              enum fr_aug_border border, float fill);
/* rec: f32 [N, FR_AUG_MIX_REC] from fr_aug_mix_draw */
struct fr_tensor *fr_aug_mix(struct fr_ctx *ctx, struct fr_tensor *images, struct fr_tensor *rec,
                             enum fr_aug_layout layout);
/* labels i32 [N] (one-hot) or soft targets f32 [N, n_classes] -> mixed soft targets f32 [N, n_classes] */
struct fr_tensor *fr_aug_mix_labels(struct fr_ctx *ctx, struct fr_tensor *labels, struct fr_tensor *rec,
                                    int n_classes);
/* u8 NHWC [N,H,W,C] -> f32 NCHW [N,C,H,W], y = (x/255 − mean[c]) / std[c] */
struct fr_tensor *fr_aug_to_nchw(struct fr_ctx *ctx, struct fr_tensor *images, const float *mean,
                                 const float *std);

/* ---------------------------------------------------------------------------------------------
 * Images on disk (stb_image_write; STB_IMAGE_WRITE_IMPLEMENTATION lives in src/augment/image_write.c)
 * --------------------------------------------------------------------------------------------- */
/* u8 NHWC image (c = 1..4) to PNG, written atomically: a full disk is an error, never an empty or torn file */
enum fr_status fr_aug_write_png(const char *path, const uint8_t *pix, int h, int w, int c);

#ifdef __cplusplus
}
#endif
#endif
