/* SGEMM on the device: CLBlast when the build has it (serialised, see below), else cl/gemm.cl. */
#include "opencl/opencl_internal.h"

#if FRUGAL_HAVE_CLBLAST
#include <clblast_c.h>

/* CLBlast 1.5.3 (Debian) keeps one process-wide program/kernel cache that is not thread-safe, so
 * every call goes through one lock: that serialises each device and also two devices sharing it. */
static pthread_mutex_t clblast_lock = PTHREAD_MUTEX_INITIALIZER;
#endif

enum fr_status fr_cl_sgemm_strided(struct fr_cl *cl, int m, int n, int k, float alpha, cl_mem a, int a_off,
                                   int sam, int sak, cl_mem b, int b_off, int sbk, int sbn, float beta, cl_mem c,
                                   int c_off, int scm, int scn)
{
    struct fr_cl_launch L;
    /* The blocked kernel needs a 16x16 work-group and 8 KiB of local memory; devices or kernels that
     * allow less take the naive kernel. */
    const char *name = "gemm_tiled";
    if (fr_cl_begin(&L, cl, "gemm.cl", name) != FR_STATUS_OK)
        return L.st;
    if (L.wg_size < 256 || cl->max_item[0] < 16 || cl->max_item[1] < 16 || cl->local_mem < 8192 + 1024) {
        name = "gemm_naive";
        if (fr_cl_begin(&L, cl, "gemm.cl", name) != FR_STATUS_OK)
            return L.st;
    }
    fr_cl_arg_int(&L, m);
    fr_cl_arg_int(&L, n);
    fr_cl_arg_int(&L, k);
    fr_cl_arg_float(&L, alpha);
    fr_cl_arg_mem(&L, a);
    fr_cl_arg_int(&L, a_off);
    fr_cl_arg_int(&L, sam);
    fr_cl_arg_int(&L, sak);
    fr_cl_arg_mem(&L, b);
    fr_cl_arg_int(&L, b_off);
    fr_cl_arg_int(&L, sbk);
    fr_cl_arg_int(&L, sbn);
    fr_cl_arg_float(&L, beta);
    fr_cl_arg_mem(&L, c);
    fr_cl_arg_int(&L, c_off);
    fr_cl_arg_int(&L, scm);
    fr_cl_arg_int(&L, scn);
    if (name[5] == 't')
        return fr_cl_run_2d(&L, (n + 63) / 64 * 16, (m + 63) / 64 * 16, 16, 16);
    return fr_cl_run_2d(&L, n, m, 0, 0);
}

enum fr_status fr_cl_sgemm(struct fr_cl *cl, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                           cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                           cl_mem c, size_t c_off, size_t ldc)
{
    if (m <= 0 || n <= 0)
        return FR_STATUS_OK;
#if FRUGAL_HAVE_CLBLAST
    if (cl->use_clblast && k > 0) {
        pthread_mutex_lock(&clblast_lock);
        CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                           trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)m, (size_t)n,
                                           (size_t)k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc,
                                           &cl->queue, fr_cl_prof_event(cl, "CLBlastSgemm", -1));
        pthread_mutex_unlock(&clblast_lock);
        if (s == CLBlastSuccess)
            return FR_STATUS_OK;
        /* A device CLBlast cannot handle still has the portable kernel; say so once per backend. */
        fr_log(FR_LOG_WARN, "opencl: CLBlast SGEMM failed on %s (status %d); using gemm.cl from now on",
               cl->info.spec, (int)s);
        cl->use_clblast = false;
    }
#endif
    int sam = trans_a ? 1 : (int)lda, sak = trans_a ? (int)lda : 1;
    int sbk = trans_b ? 1 : (int)ldb, sbn = trans_b ? (int)ldb : 1;
    return fr_cl_sgemm_strided(cl, m, n, k, alpha, a, (int)a_off, sam, sak, b, (int)b_off, sbk, sbn, beta, c,
                               (int)c_off, (int)ldc, 1);
}

void fr_cl_gemm_release(struct fr_cl *cl)
{
#if FRUGAL_HAVE_CLBLAST
    if (cl->use_clblast) {
        pthread_mutex_lock(&clblast_lock);
        CLBlastClearCache();
        pthread_mutex_unlock(&clblast_lock);
    }
#else
    (void)cl;
#endif
}
