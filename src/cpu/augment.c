/* CPU kernels of the augmentation ops: tensors handed to the host kernels of src/augment (program runner, mixing)
 * on the backend's thread pool. */
#include "augment/augment_internal.h"
#include "cpu/cpu.h"

enum fr_status fr_cpu_aug_apply(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    enum fr_aug_layout layout = (enum fr_aug_layout)dst->params[0].i;
    struct fr_aug_images in = fr_aug_images_of(dst->src[0], layout), out = fr_aug_images_of(dst, layout);
    struct fr_aug_images work = fr_aug_images_of(dst->src[2], layout); /* the ping-pong partner of dst */
    return fr_aug_apply_run(&in, &out, fr_f32(dst->src[1]), (int)dst->src[1]->ne[1], &work, k->pool);
}

enum fr_status fr_cpu_aug_warp(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    enum fr_aug_layout layout = (enum fr_aug_layout)dst->params[0].i;
    struct fr_aug_images in = fr_aug_images_of(dst->src[0], layout), out = fr_aug_images_of(dst, layout);
    const float *mats = fr_f32(dst->src[1]);
    float *prog = fr_cpu_scratch(k, 0, sizeof(float) * FR_AUG_REC * (size_t)in.n);
    if (!prog)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "aug_warp: out of memory");
    for (int i = 0; i < in.n; i++) { /* one WARP record per sample: a single warp needs no work image */
        double m[9];
        for (int q = 0; q < 9; q++)
            m[q] = mats[i * 9 + q];
        fr_aug_make_warp(prog + (size_t)i * FR_AUG_REC, m, dst->params[1].i, dst->params[2].i, dst->params[3].f);
    }
    return fr_aug_apply_run(&in, &out, prog, 1, NULL, k->pool);
}

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
    const struct fr_tensor *y = dst->src[0];
    if (y->type == FR_F32) /* soft targets [N, K] */
        return fr_aug_mix_soft_host(fr_f32(y), (int)dst->ne[0], (int)dst->ne[1], fr_f32(dst->src[1]), fr_f32(dst));
    return fr_aug_mix_labels_host((const int32_t *)fr_tensor_data(y), (int)dst->ne[0], (int)dst->ne[1],
                                  fr_f32(dst->src[1]), fr_f32(dst));
}
