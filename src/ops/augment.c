/* Constructors and shape rules of the augmentation graph ops (backward rule: none). */
#include "core/internal.h"
#include "frugal/augment.h"

/* checks an image batch and returns its (n, h, w, c) for the layout */
static bool image_dims(struct fr_ctx *ctx, const char *op, struct fr_tensor *im, enum fr_aug_layout layout,
                       int64_t d[4])
{
    if (im->ndim != 4 || (im->type != FR_U8 && im->type != FR_F32) || (unsigned)layout > FR_AUG_NCHW) {
        char s[64];
        fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: images must be u8/f32 [N,H,W,C] or [N,C,H,W], got %s", op,
                    fr_tensor_shape_str(im, s, sizeof s));
        return false;
    }
    d[0] = im->ne[0];
    d[1] = layout == FR_AUG_NHWC ? im->ne[1] : im->ne[2];
    d[2] = layout == FR_AUG_NHWC ? im->ne[2] : im->ne[3];
    d[3] = layout == FR_AUG_NHWC ? im->ne[3] : im->ne[1];
    if (d[3] < 1 || d[3] > 4) {
        fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: images need 1..4 channels, got %lld", op, (long long)d[3]);
        return false;
    }
    return true;
}

/* a node over images with extra sources (program/matrices/records, work image, table) */
static struct fr_tensor *image_node(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *im, struct fr_tensor *p,
                                    const int64_t d[4], int oh, int ow, enum fr_aug_layout layout, bool work,
                                    struct fr_tensor *tab)
{
    int64_t ne[4] = {d[0], oh, ow, d[3]};
    if (layout == FR_AUG_NCHW)
        ne[1] = d[3], ne[2] = oh, ne[3] = ow;
    struct fr_tensor *src[4] = {fr_need_cont(ctx, im), fr_need_cont(ctx, p), NULL, tab ? fr_need_cont(ctx, tab) : NULL};
    if (work) /* the ping-pong partner of the output: a leaf of its shape, planned once */
        src[2] = fr_tensor_set_name(fr_tensor_new(ctx, im->type, 4, ne), "aug.work");
    struct fr_tensor *t = fr_node_new(ctx, op, im->type, 4, ne, tab ? 4 : work ? 3 : 2, src);
    if (t)
        t->params[0].i = (int32_t)layout;
    return t;
}

struct fr_tensor *fr_aug_apply_tab(struct fr_ctx *ctx, struct fr_tensor *images, struct fr_tensor *prog,
                                   struct fr_tensor *tab, int out_h, int out_w, enum fr_aug_layout layout)
{
    int64_t d[4];
    if (!images || !prog || !image_dims(ctx, "aug_apply", images, layout, d))
        return NULL;
    if (prog->type != FR_F32 || prog->ndim != 3 || prog->ne[0] != d[0] || prog->ne[2] != FR_AUG_REC)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "aug_apply: program must be f32 [%lld, K, %d]", (long long)d[0],
                           FR_AUG_REC);
    if (tab && (tab->type != FR_I32 || tab->ndim != 1 || tab->ne[0] < d[0] * prog->ne[1]))
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "aug_apply: coordinate tables must be i32 [T >= %lld]",
                           (long long)(d[0] * prog->ne[1]));
    if (out_h < 1 || out_w < 1)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "aug_apply: output size %dx%d", out_w, out_h);
    return image_node(ctx, FR_OP_AUG_APPLY, images, prog, d, out_h, out_w, layout, true, tab);
}

struct fr_tensor *fr_aug_apply(struct fr_ctx *ctx, struct fr_tensor *images, struct fr_tensor *prog, int out_h,
                               int out_w, enum fr_aug_layout layout)
{
    return fr_aug_apply_tab(ctx, images, prog, NULL, out_h, out_w, layout);
}

struct fr_tensor *fr_aug_warp(struct fr_ctx *ctx, struct fr_tensor *images, struct fr_tensor *matrices, int out_h,
                              int out_w, enum fr_aug_layout layout, enum fr_aug_interp interp,
                              enum fr_aug_border border, float fill)
{
    int64_t d[4];
    if (!images || !matrices || !image_dims(ctx, "aug_warp", images, layout, d))
        return NULL;
    if (matrices->type != FR_F32 || matrices->ndim != 2 || matrices->ne[0] != d[0] || matrices->ne[1] != 9)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "aug_warp: matrices must be f32 [%lld, 9]", (long long)d[0]);
    if (out_h < 1 || out_w < 1 || (unsigned)interp > FR_AUG_BICUBIC || (unsigned)border > FR_AUG_REFLECT101)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "aug_warp: bad output size, interpolation or border");
    struct fr_tensor *t = image_node(ctx, FR_OP_AUG_WARP, images, matrices, d, out_h, out_w, layout, false, NULL);
    if (t) {
        t->params[1].i = (int32_t)interp;
        t->params[2].i = (int32_t)border;
        t->params[3].f = fill;
    }
    return t;
}

struct fr_tensor *fr_aug_mix(struct fr_ctx *ctx, struct fr_tensor *images, struct fr_tensor *rec,
                             enum fr_aug_layout layout)
{
    int64_t d[4];
    if (!images || !rec || !image_dims(ctx, "aug_mix", images, layout, d))
        return NULL;
    if (rec->type != FR_F32 || rec->ndim != 2 || rec->ne[0] != d[0] || rec->ne[1] != FR_AUG_MIX_REC)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "aug_mix: records must be f32 [%lld, %d]", (long long)d[0],
                           FR_AUG_MIX_REC);
    return image_node(ctx, FR_OP_AUG_MIX, images, rec, d, (int)d[1], (int)d[2], layout, false, NULL);
}

struct fr_tensor *fr_aug_mix_labels(struct fr_ctx *ctx, struct fr_tensor *labels, struct fr_tensor *rec,
                                    int n_classes)
{
    if (!labels || !rec)
        return NULL;
    bool hard = labels->type == FR_I32 && labels->ndim == 1;
    bool soft = labels->type == FR_F32 && labels->ndim == 2 && labels->ne[1] == n_classes;
    if ((!hard && !soft) || n_classes < 1)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE,
                           "aug_mix_labels: labels must be i32 [N] or f32 [N, %d] soft targets, and n_classes >= 1",
                           n_classes);
    if (rec->type != FR_F32 || rec->ndim != 2 || rec->ne[0] != labels->ne[0] || rec->ne[1] != FR_AUG_MIX_REC)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "aug_mix_labels: records must be f32 [%lld, %d]",
                           (long long)labels->ne[0], FR_AUG_MIX_REC);
    struct fr_tensor *src[2] = {fr_need_cont(ctx, labels), fr_need_cont(ctx, rec)};
    int64_t ne[2] = {labels->ne[0], n_classes};
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_AUG_MIX_LABELS, FR_F32, 2, ne, 2, src);
    if (t)
        t->params[0].i = n_classes;
    return t;
}

struct fr_tensor *fr_aug_to_nchw(struct fr_ctx *ctx, struct fr_tensor *images, const float *mean, const float *std)
{
    if (!images)
        return NULL;
    if (images->ndim != 4 || images->type != FR_U8 || images->ne[3] < 1 || images->ne[3] > 4)
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "aug_to_nchw: images must be u8 [N,H,W,C] with 1..4 channels");
    /* normalise in NHWC (channel = last axis), then one strided copy into NCHW */
    struct fr_tensor *y = fr_normalize(ctx, images, -1, 1.0f / 255.0f, mean, std, (int)images->ne[3]);
    return fr_cont(ctx, fr_permute(ctx, y, (const int[]){0, 3, 1, 2}));
}
