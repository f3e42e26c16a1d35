/* OpenCL launchers of the augmentation ops (cl/augment.cl): AUG_WARP, AUG_APPLY (one work-group per sample),
 * AUG_MIX and AUG_MIX_LABELS. Unless the device runs doubles at full rate (struct fr_cl.fp64, its class from
 * src/opencl/device.c; struct fr_backend.no_fp64 tells the graph builders) AUG_APPLY reads OpenCV's coordinates
 * from its table input, filled by the host with the programs: no read-back, no buffer per launch. AUG_WARP needs
 * doubles (slow ones will do); without any it runs on the CPU path. */
#include "augment/augment_internal.h"
#include "opencl/opencl_internal.h"

/* channels and sizes of an image tensor in the op's layout */
static void dims(const struct fr_tensor *t, int layout, int *c, int *h, int *w)
{
    *c = (int)(layout == FR_AUG_NHWC ? t->ne[3] : t->ne[1]);
    *h = (int)(layout == FR_AUG_NHWC ? t->ne[1] : t->ne[2]);
    *w = (int)(layout == FR_AUG_NHWC ? t->ne[2] : t->ne[3]);
}

static enum fr_status cl_aug_warp(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *x = y->src[0];
    int layout = y->params[0].i, c, h, w, oc, oh, ow;
    dims(x, layout, &c, &h, &w);
    dims(y, layout, &oc, &oh, &ow);
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "augment.cl", y->type == FR_U8 ? "aug_warp_u8" : "aug_warp_f32");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, x);
    fr_cl_arg_tensor(&L, y->src[1]);
    fr_cl_arg_int(&L, layout);
    fr_cl_arg_int(&L, y->params[1].i);
    fr_cl_arg_int(&L, y->params[2].i);
    fr_cl_arg_float(&L, y->params[3].f);
    fr_cl_arg_int(&L, c);
    fr_cl_arg_int(&L, h);
    fr_cl_arg_int(&L, w);
    fr_cl_arg_int(&L, oh);
    fr_cl_arg_int(&L, ow);
    return fr_cl_run_1d(&L, fr_nelements(y) / c);
}

/* why an op runs on the CPU path here (FRUGAL_DEBUG=sched) */
static bool refuse(struct fr_cl *cl, const char *op, const char *why)
{
    if (fr_debug_enabled("sched"))
        fr_log(FR_LOG_WARN, "sched: %s falls back to the CPU path on %s: %s", op, cl->info.spec, why);
    return false;
}

/* OpenCV's positions in double on the device; without doubles the CPU path runs it (exact) */
static bool aug_warp_supported(struct fr_cl *cl, const struct fr_tensor *y)
{
    if (cl->fp64 == FR_CL_FP64_NONE)
        return refuse(cl, "aug_warp", "the device has no usable doubles for OpenCV's positions (AUG_APPLY reads host "
                                      "tables instead)");
    return y->type == FR_U8 || y->type == FR_F32;
}

static enum fr_status cl_aug_apply(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *x = y->src[0], *prog = y->src[1], *work = y->src[2], *tab = y->src[3];
    int layout = y->params[0].i, n = (int)x->ne[0], c, h, w, oc, oh, ow;
    dims(x, layout, &c, &h, &w);
    dims(y, layout, &oc, &oh, &ow);
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "augment.cl", "aug_apply_u8");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, x);
    fr_cl_arg_tensor(&L, prog);
    fr_cl_arg_tensor(&L, work);
    fr_cl_arg_tensor(&L, tab ? tab : prog); /* any buffer when there is no table: not read */
    fr_cl_arg_int(&L, tab != NULL);
    fr_cl_arg_int(&L, layout);
    fr_cl_arg_int(&L, c);
    fr_cl_arg_int(&L, h);
    fr_cl_arg_int(&L, w);
    fr_cl_arg_int(&L, oh);
    fr_cl_arg_int(&L, ow);
    fr_cl_arg_int(&L, (int)prog->ne[1]);
    size_t wg = L.wg_size < 256 ? L.wg_size : 256;
    return L.st == FR_STATUS_OK ? fr_cl_run_2d(&L, (int64_t)wg, n, wg, 1) : L.st;
}

/* u8 programs (colour ops are defined on u8); without doubles only with the host's table input */
static bool aug_apply_supported(struct fr_cl *cl, const struct fr_tensor *y)
{
    if (y->type != FR_U8)
        return refuse(cl, "aug_apply", "programs run on u8 images only");
    if (cl->fp64 == FR_CL_FP64_NONE && !y->src[3])
        return refuse(cl, "aug_apply", "the device has no usable doubles and the graph gives no coordinate tables "
                                       "(fr_aug_apply_tab)");
    return y->src[2] != NULL;
}

static enum fr_status cl_aug_mix(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    int layout = y->params[0].i, c, h, w;
    dims(y, layout, &c, &h, &w);
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "augment.cl", y->type == FR_U8 ? "aug_mix_u8" : "aug_mix_f32");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, y->src[0]);
    fr_cl_arg_tensor(&L, y->src[1]);
    fr_cl_arg_int(&L, layout);
    fr_cl_arg_int(&L, c);
    fr_cl_arg_int(&L, h);
    fr_cl_arg_int(&L, w);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

static bool aug_mix_supported(struct fr_cl *cl, const struct fr_tensor *y)
{
    (void)cl;
    return (y->type == FR_U8 || y->type == FR_F32) && fr_is_contiguous(y);
}

static enum fr_status cl_aug_mix_labels(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "augment.cl", "aug_mix_labels");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, y->src[0]);
    fr_cl_arg_tensor(&L, y->src[1]);
    fr_cl_arg_int(&L, (int)y->ne[1]);
    fr_cl_arg_int(&L, y->src[0]->type == FR_F32);
    return fr_cl_run_1d(&L, fr_nelements(y));
}

static bool aug_mix_labels_supported(struct fr_cl *cl, const struct fr_tensor *y)
{
    (void)cl;
    return y->type == FR_F32 && fr_is_contiguous(y);
}

void fr_cl_register_augment(struct fr_cl_op *t)
{
    t[FR_OP_AUG_WARP] = (struct fr_cl_op){cl_aug_warp, aug_warp_supported};
    t[FR_OP_AUG_APPLY] = (struct fr_cl_op){cl_aug_apply, aug_apply_supported};
    t[FR_OP_AUG_MIX] = (struct fr_cl_op){cl_aug_mix, aug_mix_supported};
    t[FR_OP_AUG_MIX_LABELS] = (struct fr_cl_op){cl_aug_mix_labels, aug_mix_labels_supported};
}
