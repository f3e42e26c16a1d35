/* OpenCL launchers of the augmentation ops (cl/augment.cl): AUG_WARP and AUG_APPLY (u8: one work-group per
 * sample runs its program). The mixing ops stay on the CPU path for now (counted as fallbacks). */
#include <string.h>

#include "frugal/augment.h"
#include "opencl/opencl_internal.h"

static enum fr_status cl_aug_warp(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *x = y->src[0];
    int layout = y->params[0].i;
    int c = (int)(layout == FR_AUG_NHWC ? x->ne[3] : x->ne[1]);
    int h = (int)(layout == FR_AUG_NHWC ? x->ne[1] : x->ne[2]), w = (int)(layout == FR_AUG_NHWC ? x->ne[2] : x->ne[3]);
    int oh = (int)(layout == FR_AUG_NHWC ? y->ne[1] : y->ne[2]), ow = (int)(layout == FR_AUG_NHWC ? y->ne[2] : y->ne[3]);
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

/* nearest/bilinear on u8/f32 and a device with doubles (OpenCV's coordinate rounding is in double) */
static bool aug_warp_supported(struct fr_cl *cl, const struct fr_tensor *y)
{
    cl_device_fp_config fp64 = 0;
    if (clGetDeviceInfo(cl->device, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL) != CL_SUCCESS || !fp64)
        return false;
    return (y->type == FR_U8 || y->type == FR_F32) && y->params[1].i != FR_AUG_BICUBIC && fr_nelements(y) < INT32_MAX &&
           fr_nelements(y->src[0]) < INT32_MAX;
}

static enum fr_status cl_aug_apply(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *x = y->src[0], *prog = y->src[1];
    int layout = y->params[0].i, n = (int)x->ne[0];
    int c = (int)(layout == FR_AUG_NHWC ? x->ne[3] : x->ne[1]);
    int h = (int)(layout == FR_AUG_NHWC ? x->ne[1] : x->ne[2]), w = (int)(layout == FR_AUG_NHWC ? x->ne[2] : x->ne[3]);
    int oh = (int)(layout == FR_AUG_NHWC ? y->ne[1] : y->ne[2]), ow = (int)(layout == FR_AUG_NHWC ? y->ne[2] : y->ne[3]);
    cl_int err;
    /* ping-pong partner of dst for warps and sharpness; released once enqueued (the queue keeps it alive) */
    cl_mem tmp = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, (size_t)fr_nelements(y), NULL, &err);
    if (err != CL_SUCCESS)
        return fr_error(FR_STATUS_DEVICE, "aug_apply: cannot allocate %lld scratch bytes (OpenCL error %d)",
                        (long long)fr_nelements(y), (int)err);
    struct fr_cl_launch L;
    fr_cl_begin(&L, cl, "augment.cl", "aug_apply_u8");
    fr_cl_arg_tensor(&L, y);
    fr_cl_arg_tensor(&L, x);
    fr_cl_arg_tensor(&L, prog);
    fr_cl_arg_mem(&L, tmp);
    fr_cl_arg_int(&L, layout);
    fr_cl_arg_int(&L, c);
    fr_cl_arg_int(&L, h);
    fr_cl_arg_int(&L, w);
    fr_cl_arg_int(&L, oh);
    fr_cl_arg_int(&L, ow);
    fr_cl_arg_int(&L, (int)prog->ne[1]);
    size_t wg = L.wg_size < 256 ? L.wg_size : 256;
    enum fr_status st = L.st == FR_STATUS_OK ? fr_cl_run_2d(&L, (int64_t)wg, n, wg, 1) : L.st;
    clReleaseMemObject(tmp);
    return st;
}

static bool has_fp64(struct fr_cl *cl)
{
    cl_device_fp_config fp64 = 0;
    return clGetDeviceInfo(cl->device, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL) == CL_SUCCESS && fp64;
}

/* u8 programs (colour ops are defined on u8) on a device with doubles */
static bool aug_apply_supported(struct fr_cl *cl, const struct fr_tensor *y)
{
    return has_fp64(cl) && y->type == FR_U8 && fr_nelements(y) < INT32_MAX && fr_nelements(y->src[0]) < INT32_MAX &&
           fr_nelements(y->src[1]) < INT32_MAX;
}

void fr_cl_register_augment(struct fr_cl_op *t)
{
    t[FR_OP_AUG_WARP] = (struct fr_cl_op){cl_aug_warp, aug_warp_supported};
    t[FR_OP_AUG_APPLY] = (struct fr_cl_op){cl_aug_apply, aug_apply_supported};
}
