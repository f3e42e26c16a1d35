/* The augment suite: RandAugment programs, affine and perspective warps, CutMix — graph ops on u8 NHWC
 * batches, in images/s, each checked against the CPU path. */
#include "bench/bench_internal.h"
#include "frugal/augment.h"

enum { AUG_RANDAUGMENT, AUG_AFFINE, AUG_PERSPECTIVE, AUG_CUTMIX };
#define RA_SPEC "randaugment(n=2,m=9)"

/* p: kind, N, H, W, C */
static struct fr_tensor *build_aug(struct fr_ctx *ctx, struct fr_graph *g, const struct fr_bench_item *it)
{
    int64_t n = it->p[1], h = it->p[2], w = it->p[3], c = it->p[4];
    struct fr_tensor *img = fr_tensor_new(ctx, FR_U8, 4, (int64_t[]){n, h, w, c});
    fr_tensor_set_flags(fr_tensor_set_name(img, "images"), FR_FLAG_INPUT);
    struct fr_tensor *y = NULL;
    if (it->p[0] == AUG_RANDAUGMENT) {
        struct fr_aug_policy *pol;
        if (fr_aug_policy_parse(RA_SPEC, &pol) != FR_STATUS_OK)
            return NULL;
        int k = fr_aug_policy_max_ops(pol), oh, ow;
        fr_aug_policy_out_size(pol, (int)h, (int)w, &oh, &ow);
        fr_aug_policy_free(pol);
        struct fr_tensor *prog = fr_tensor_new(ctx, FR_F32, 3, (int64_t[]){n, k, FR_AUG_REC});
        fr_tensor_set_flags(fr_tensor_set_name(prog, "prog"), FR_FLAG_INPUT);
        y = fr_aug_apply(ctx, img, prog, oh, ow, FR_AUG_NHWC);
    } else if (it->p[0] == AUG_CUTMIX) {
        struct fr_tensor *rec = fr_tensor_new(ctx, FR_F32, 2, (int64_t[]){n, FR_AUG_MIX_REC});
        fr_tensor_set_flags(fr_tensor_set_name(rec, "rec"), FR_FLAG_INPUT);
        y = fr_aug_mix(ctx, img, rec, FR_AUG_NHWC);
    } else {
        struct fr_tensor *mat = fr_tensor_new(ctx, FR_F32, 2, (int64_t[]){n, 9});
        fr_tensor_set_flags(fr_tensor_set_name(mat, "matrices"), FR_FLAG_INPUT);
        y = fr_aug_warp(ctx, img, mat, (int)h, (int)w, FR_AUG_NHWC, FR_AUG_BILINEAR, FR_AUG_CONSTANT, 0.0f);
    }
    return y && fr_graph_add(g, y) == FR_STATUS_OK ? y : NULL;
}

/* per-sample parameters drawn on the host, as a training loop would */
static bool fill_aug(const struct fr_bench_item *it, struct fr_tensor *t, void *data, int64_t n_el)
{
    (void)n_el;
    int n = it->p[1], h = it->p[2], w = it->p[3];
    float *f = data;
    if (strcmp(t->name, "prog") == 0) {
        struct fr_aug_policy *pol;
        if (fr_aug_policy_parse(RA_SPEC, &pol) != FR_STATUS_OK)
            return false;
        int k = fr_aug_policy_max_ops(pol);
        for (int i = 0; i < n; i++)
            fr_aug_policy_draw(pol, 7, 0, (uint32_t)i, h, w, f + (size_t)i * k * FR_AUG_REC);
        fr_aug_policy_free(pol);
        return true;
    }
    if (strcmp(t->name, "rec") == 0) {
        struct fr_aug_mix_cfg cfg = {.mode = FR_AUG_MIX_CUTMIX, .alpha = 1.0, .p = 1.0};
        return fr_aug_mix_draw(&cfg, 7, 0, n, h, w, f) == FR_STATUS_OK;
    }
    if (strcmp(t->name, "matrices") == 0) {
        for (int i = 0; i < n; i++) {
            double fwd[9], inv[9];
            double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
            if (it->p[0] == AUG_AFFINE) {
                double r[9], s[9];
                fr_geom_rotate(r, 10.0 + 3.0 * (i % 7), cx, cy);
                fr_geom_scale(s, 1.1, 0.9, cx, cy);
                fr_geom_mul(r, s, fwd);
            } else {
                double d = 0.1 * w * (1 + i % 3) / 3.0;
                const double src[8] = {0, 0, w - 1.0, 0, w - 1.0, h - 1.0, 0, h - 1.0};
                const double dst[8] = {d, d / 2, w - 1.0 - d / 2, d, w - 1.0, h - 1.0 - d, d / 3, h - 1.0};
                if (fr_geom_perspective_from_points(src, dst, fwd) != FR_STATUS_OK)
                    fr_geom_identity(fwd);
            }
            if (fr_geom_invert(fwd, inv) != FR_STATUS_OK)
                fr_geom_identity(inv);
            for (int j = 0; j < 9; j++)
                f[i * 9 + j] = (float)inv[j];
        }
        return true;
    }
    return false;
}

enum fr_status fr_bench_augment(struct fr_bench_run *run)
{
    static const struct {
        const char *name;
        int kind, n, h, w, c;
        bool quick;
    } w[] = {
        {"randaugment(n=2,m=9)", AUG_RANDAUGMENT, 128, 32, 32, 3, true},
        {"randaugment(n=2,m=9)", AUG_RANDAUGMENT, 16, 224, 224, 3, false},
        {"affine warp bilinear", AUG_AFFINE, 16, 224, 224, 3, true},
        {"perspective warp bilinear", AUG_PERSPECTIVE, 16, 224, 224, 3, true},
        {"cutmix", AUG_CUTMIX, 128, 32, 32, 3, true},
        {"cutmix", AUG_CUTMIX, 16, 224, 224, 3, false},
    };
    enum fr_status st = FR_STATUS_OK;
    for (size_t i = 0; i < sizeof w / sizeof w[0] && st == FR_STATUS_OK; i++) {
        if (run->quick && !w[i].quick)
            continue;
        struct fr_bench_item it;
        memset(&it, 0, sizeof it);
        snprintf(it.name, sizeof it.name, "%s u8 %dx%dx%d N=%d", w[i].name, w[i].h, w[i].w, w[i].c, w[i].n);
        it.images = w[i].n;
        /* u8 outputs: a rounding difference of 1-2 levels is not an error (2.5/255) */
        it.tol = 0.0099;
        int p[5] = {w[i].kind, w[i].n, w[i].h, w[i].w, w[i].c};
        memcpy(it.p, p, sizeof p);
        it.build = build_aug;
        it.fill = fill_aug;
        st = fr_bench_item_run(run, "augment", &it);
    }
    return st;
}
