/* CPU kernels of CutMix/MixUp: mixed images from per-sample records and the matching soft labels. */
#include <math.h>
#include <string.h>

#include "augment/augment_internal.h"

enum fr_status fr_aug_mix_host(const struct fr_aug_images *in, const struct fr_aug_images *out, const float *rec)
{
    if (in->n != out->n || in->h != out->h || in->w != out->w || in->c != out->c || in->type != out->type ||
        in->layout != out->layout)
        return fr_error(FR_STATUS_SHAPE, "augment: mix: input and output batches differ");
    for (int i = 0; i < in->n; i++) {
        const float *r = rec + (size_t)i * FR_AUG_MIX_REC;
        int mode = (int)r[0], j = (int)r[1];
        if (mode != FR_AUG_MIX_NONE && (j < 0 || j >= in->n))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: mix: sample %d has partner %d outside the batch of %d",
                            i, j, in->n);
    }
    for (int i = 0; i < in->n; i++) {
        const float *r = rec + (size_t)i * FR_AUG_MIX_REC;
        int mode = (int)r[0], j = (int)r[1];
        struct fr_aug_plane a = fr_aug_plane_of(in, i), d = fr_aug_plane_of(out, i);
        fr_aug_copy_plane(&a, &d);
        if (mode == FR_AUG_MIX_NONE)
            continue;
        struct fr_aug_plane b = fr_aug_plane_of(in, j);
        int x0 = 0, y0 = 0, x1 = in->w, y1 = in->h;
        if (mode == FR_AUG_MIX_CUTMIX) {
            x0 = (int)r[3], y0 = (int)r[4], x1 = (int)r[5], y1 = (int)r[6];
            x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
            x1 = x1 > in->w ? in->w : x1, y1 = y1 > in->h ? in->h : y1;
        }
        float lam = r[2], mu = 1.0f - r[2];
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
                            pd[od] = (uint8_t)(int)(lam * (float)pd[od] + mu * (float)pb[ob] + 0.5f);
                    } else {
                        float *pd = d.data;
                        const float *pb = b.data;
                        pd[od] = mode == FR_AUG_MIX_CUTMIX ? pb[ob] : lam * pd[od] + mu * pb[ob];
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
        int j = (int)r[1];
        if (j < 0 || j >= n)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: mix labels: partner %d outside the batch", j);
        int ya = labels[i], yb = labels[j];
        if (ya < 0 || ya >= n_classes || yb < 0 || yb >= n_classes)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: mix labels: label %d or %d outside 0..%d", ya, yb,
                            n_classes - 1);
        float lam = (int)r[0] == FR_AUG_MIX_NONE ? 1.0f : r[2];
        soft[(size_t)i * n_classes + ya] += lam;
        soft[(size_t)i * n_classes + yb] += 1.0f - lam;
    }
    return FR_STATUS_OK;
}

/* --- graph kernels --- */
#include "cpu/cpu.h"

enum fr_status fr_cpu_aug_mix(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    enum fr_aug_layout layout = (enum fr_aug_layout)dst->params[0].i;
    struct fr_aug_images in = fr_aug_images_of(dst->src[0], layout), out = fr_aug_images_of(dst, layout);
    return fr_aug_mix_host(&in, &out, fr_f32(dst->src[1]));
}

enum fr_status fr_cpu_aug_mix_labels(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    return fr_aug_mix_labels_host((const int32_t *)fr_tensor_data(dst->src[0]), (int)dst->ne[0], (int)dst->ne[1],
                                  fr_f32(dst->src[1]), fr_f32(dst));
}
