/* OpenCL launchers of the augmentation ops (cl/augment.cl): AUG_WARP and AUG_APPLY (u8: one work-group per
 * sample runs its program). The mixing ops stay on the CPU path for now (counted as fallbacks).
 * Devices without cl_khr_fp64 (or any device under FRUGAL_CL_NO_FP64=1) get OpenCV's double-precision
 * coordinate terms as exact int tables computed here (see fr_aug_coord_table) and PIL's auto-contrast
 * rounding as a correction table, so that they stay bit-identical to the CPU path without doubles. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "frugal/augment.h"
#include "opencl/opencl_internal.h"

static bool has_fp64(struct fr_cl *cl)
{
    cl_device_fp_config fp64 = 0;
    return clGetDeviceInfo(cl->device, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL) == CL_SUCCESS && fp64;
}

/* integer tables instead of doubles: no fp64, or forced (to test that path on a device that has doubles) */
static bool use_tables(struct fr_cl *cl)
{
    const char *e = getenv("FRUGAL_CL_NO_FP64");
    return !has_fp64(cl) || (e && *e && strcmp(e, "0") != 0);
}

/* keys lo << 16 | hi << 8 | i where PIL's double expression (int)(i * 255.0/(hi-lo) - lo * scale) is one below
 * the exact quotient (255(i-lo)/(hi-lo) an integer that the double arithmetic lands just under) */
#define AC_MAX 16384
static int32_t ac_keys[AC_MAX];
static int ac_n;
static pthread_once_t ac_once = PTHREAD_ONCE_INIT;

static void ac_init(void)
{
    for (int lo = 0; lo < 256; lo++)
        for (int hi = lo + 1; hi < 256; hi++) {
            double scale = 255.0 / (hi - lo), offset = -lo * scale;
            for (int i = lo; i <= hi; i++) {
                int num = (i - lo) * 255, v = (int)(i * scale + offset);
                if (num % (hi - lo) == 0 && v != num / (hi - lo) && ac_n < AC_MAX)
                    ac_keys[ac_n++] = (lo << 16) | (hi << 8) | i;
            }
        }
}

/* reads a small contiguous f32 tensor (programs, matrices) back to the host */
static enum fr_status read_f32(struct fr_cl *cl, const struct fr_tensor *t, float **out)
{
    cl_mem mem;
    size_t off;
    enum fr_status st = fr_cl_storage(cl, t, &mem, &off);
    if (st != FR_STATUS_OK)
        return st;
    if (!fr_is_contiguous(t))
        return fr_error(FR_STATUS_UNSUPPORTED, "augment: opencl: program/matrix tensor '%s' is not contiguous", t->name);
    size_t bytes = sizeof(float) * (size_t)fr_nelements(t);
    if (!(*out = malloc(bytes ? bytes : 1)))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "augment: opencl: out of memory");
    cl_int err = clEnqueueReadBuffer(cl->queue, mem, CL_TRUE, off, bytes, *out, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        free(*out);
        return fr_error(FR_STATUS_DEVICE, "augment: opencl: cannot read '%s' back (OpenCL error %d)", t->name, (int)err);
    }
    return FR_STATUS_OK;
}

/* a growing int32 table: header slots first, then the coordinate tables */
struct itab {
    int32_t *v;
    size_t n, cap;
};

static int32_t *itab_grow(struct itab *t, size_t more)
{
    if (t->n + more > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->n + more)
            cap *= 2;
        int32_t *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return NULL;
        t->v = v, t->cap = cap;
    }
    int32_t *p = t->v + t->n;
    t->n += more;
    return p;
}

/* appends [kind, table] for one map; returns its offset, or -1 when out of memory or beyond int offsets */
static int64_t itab_add_map(struct itab *t, const double m[9], int interp, int oh, int ow)
{
    size_t len = fr_aug_coord_table_len(m, oh, ow), at = t->n;
    int32_t *p = itab_grow(t, 1 + len);
    if (!p || t->n >= INT32_MAX)
        return -1;
    p[0] = fr_aug_coord_table(m, interp, oh, ow, p + 1);
    return (int64_t)at;
}

static enum fr_status upload(struct fr_cl *cl, const struct itab *t, cl_mem *out)
{
    cl_int err;
    *out = clCreateBuffer(cl->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof(int32_t) * (t->n ? t->n : 1),
                          t->v, &err);
    if (err != CL_SUCCESS)
        return fr_error(FR_STATUS_DEVICE, "augment: opencl: cannot upload %zu coordinate ints (OpenCL error %d)", t->n,
                        (int)err);
    return FR_STATUS_OK;
}

static enum fr_status cl_aug_warp(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)ex;
    const struct fr_tensor *x = y->src[0];
    int layout = y->params[0].i;
    int c = (int)(layout == FR_AUG_NHWC ? x->ne[3] : x->ne[1]);
    int h = (int)(layout == FR_AUG_NHWC ? x->ne[1] : x->ne[2]), w = (int)(layout == FR_AUG_NHWC ? x->ne[2] : x->ne[3]);
    int oh = (int)(layout == FR_AUG_NHWC ? y->ne[1] : y->ne[2]), ow = (int)(layout == FR_AUG_NHWC ? y->ne[2] : y->ne[3]);
    int n = (int)x->ne[0];
    struct itab tab = {0};
    bool tables = use_tables(cl);
    enum fr_status st = FR_STATUS_OK;
    if (!itab_grow(&tab, tables ? (size_t)n : 1))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "aug_warp: out of memory");
    tab.v[0] = 0;
    if (tables) {
        float *mats;
        if ((st = read_f32(cl, y->src[1], &mats)) != FR_STATUS_OK) {
            free(tab.v);
            return st;
        }
        for (int i = 0; i < n && st == FR_STATUS_OK; i++) {
            double m[9];
            for (int q = 0; q < 9; q++)
                m[q] = mats[i * 9 + q];
            int64_t at = itab_add_map(&tab, m, y->params[1].i, oh, ow);
            if (at < 0)
                st = fr_error(FR_STATUS_OUT_OF_MEMORY, "aug_warp: coordinate tables: out of memory or too large");
            else
                tab.v[i] = (int32_t)at;
        }
        free(mats);
    }
    cl_mem tmem = NULL;
    if (st == FR_STATUS_OK)
        st = upload(cl, &tab, &tmem);
    free(tab.v);
    if (st != FR_STATUS_OK)
        return st;
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
    fr_cl_arg_mem(&L, tmem);
    fr_cl_arg_int(&L, tables);
    st = fr_cl_run_1d(&L, fr_nelements(y) / c);
    clReleaseMemObject(tmem); /* the queue keeps it alive until the kernel has run */
    return st;
}

/* nearest/bilinear on u8/f32 (without doubles through the host's coordinate tables) */
static bool aug_warp_supported(struct fr_cl *cl, const struct fr_tensor *y)
{
    (void)cl;
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
    struct itab tab = {0};
    bool tables = use_tables(cl);
    enum fr_status st = FR_STATUS_OK;
    int kk = (int)prog->ne[1];
    if (!itab_grow(&tab, tables ? (size_t)n * kk + 1 : 1))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "aug_apply: out of memory");
    memset(tab.v, 0, tab.n * sizeof *tab.v);
    int ac_off = 0, ac_count = 0;
    if (tables) {
        float *pr;
        if ((st = read_f32(cl, prog, &pr)) != FR_STATUS_OK) {
            free(tab.v);
            return st;
        }
        /* the kernel's walk through each program: the first op reads the input (h×w), later ones the output size */
        for (int i = 0; i < n && st == FR_STATUS_OK; i++) {
            int have = 0;
            for (int r = 0; r < kk && st == FR_STATUS_OK; r++) {
                const float *rec = pr + ((size_t)i * kk + r) * FR_AUG_REC;
                int code = (int)rec[0];
                if (code == FR_AUG_OP_IDENTITY)
                    continue;
                if (code == FR_AUG_OP_WARP) {
                    double m[9];
                    int win[4];
                    fr_aug_record_map(rec, have ? ow : w, have ? oh : h, m, win);
                    int64_t at = itab_add_map(&tab, m, (int)rec[1], oh, ow);
                    if (at < 0)
                        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "aug_apply: coordinate tables: out of memory or too large");
                    else
                        tab.v[(size_t)i * kk + r] = (int32_t)at;
                }
                have = 1;
            }
        }
        free(pr);
        pthread_once(&ac_once, ac_init);
        ac_count = ac_n;
        int32_t *p = st == FR_STATUS_OK ? itab_grow(&tab, (size_t)ac_count) : NULL;
        if (st == FR_STATUS_OK && (!p || tab.n >= INT32_MAX))
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "aug_apply: coordinate tables: out of memory or too large");
        if (st == FR_STATUS_OK) {
            memcpy(p, ac_keys, sizeof(int32_t) * (size_t)ac_count);
            ac_off = (int)(p - tab.v);
        }
    }
    cl_mem tmem = NULL;
    if (st == FR_STATUS_OK)
        st = upload(cl, &tab, &tmem);
    free(tab.v);
    if (st != FR_STATUS_OK)
        return st;
    /* ping-pong partner of dst for warps and sharpness; released once enqueued (the queue keeps it alive) */
    cl_mem tmp = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, (size_t)fr_nelements(y), NULL, &err);
    if (err != CL_SUCCESS) {
        clReleaseMemObject(tmem);
        return fr_error(FR_STATUS_DEVICE, "aug_apply: cannot allocate %lld scratch bytes (OpenCL error %d)",
                        (long long)fr_nelements(y), (int)err);
    }
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
    fr_cl_arg_int(&L, kk);
    fr_cl_arg_mem(&L, tmem);
    fr_cl_arg_int(&L, tables);
    fr_cl_arg_int(&L, ac_off);
    fr_cl_arg_int(&L, ac_count);
    size_t wg = L.wg_size < 256 ? L.wg_size : 256;
    st = L.st == FR_STATUS_OK ? fr_cl_run_2d(&L, (int64_t)wg, n, wg, 1) : L.st;
    clReleaseMemObject(tmp);
    clReleaseMemObject(tmem);
    return st;
}

/* u8 programs (colour ops are defined on u8); without doubles through the host's tables */
static bool aug_apply_supported(struct fr_cl *cl, const struct fr_tensor *y)
{
    (void)cl;
    return y->type == FR_U8 && fr_nelements(y) < INT32_MAX && fr_nelements(y->src[0]) < INT32_MAX &&
           fr_nelements(y->src[1]) < INT32_MAX;
}

void fr_cl_register_augment(struct fr_cl_op *t)
{
    t[FR_OP_AUG_WARP] = (struct fr_cl_op){cl_aug_warp, aug_warp_supported};
    t[FR_OP_AUG_APPLY] = (struct fr_cl_op){cl_aug_apply, aug_apply_supported};
}
