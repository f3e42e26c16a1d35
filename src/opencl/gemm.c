/* SGEMM on the device, single or a strided batch: CLBlast when the build has it (serialised, see below; its
 * temporary buffer comes from the backend's scratch memory), else cl/gemm.cl. */
#include "opencl/opencl_internal.h"

#if FRUGAL_HAVE_CLBLAST
#include <clblast_c.h>

/* CLBlast 1.5.3 (Debian) keeps one process-wide program/kernel cache that is not thread-safe, so
 * every call goes through one lock: that serialises each device and also two devices sharing it. */
static pthread_mutex_t clblast_lock = PTHREAD_MUTEX_INITIALIZER;
#endif

enum fr_status fr_cl_sgemm_strided_batched(struct fr_cl *cl, int m, int n, int k, float alpha, cl_mem a, int a_off,
                                           int sam, int sak, int sab, cl_mem b, int b_off, int sbk, int sbn, int sbb,
                                           float beta, cl_mem c, int c_off, int scm, int scn, int scb, int batch)
{
    if (m <= 0 || n <= 0 || batch <= 0)
        return FR_STATUS_OK;
    struct fr_cl_launch L;
    /* The blocked kernel needs a 16x16 work-group and 8 KiB of local memory; devices or kernels that
     * allow less take the naive kernel. */
    bool tiled = true;
    if (fr_cl_begin(&L, cl, "gemm.cl", "gemm_tiled") != FR_STATUS_OK)
        return L.st;
    if (L.wg_size < 256 || cl->max_item[0] < 16 || cl->max_item[1] < 16 || cl->local_mem < 8192 + 1024) {
        tiled = false;
        if (fr_cl_begin(&L, cl, "gemm.cl", "gemm_naive") != FR_STATUS_OK)
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
    fr_cl_arg_int(&L, sab);
    fr_cl_arg_int(&L, sbb);
    fr_cl_arg_int(&L, scb);
    fr_cl_arg_int(&L, batch);
    if (tiled)
        return fr_cl_run_2d(&L, (int64_t)(n + 63) / 64 * 16, (int64_t)batch * ((m + 63) / 64) * 16, 16, 16);
    return fr_cl_run_2d(&L, n, (int64_t)batch * m, 0, 0);
}

enum fr_status fr_cl_sgemm_strided(struct fr_cl *cl, int m, int n, int k, float alpha, cl_mem a, int a_off,
                                   int sam, int sak, cl_mem b, int b_off, int sbk, int sbn, float beta, cl_mem c,
                                   int c_off, int scm, int scn)
{
    return fr_cl_sgemm_strided_batched(cl, m, n, k, alpha, a, a_off, sam, sak, 0, b, b_off, sbk, sbn, 0, beta, c,
                                       c_off, scm, scn, 0, 1);
}

#if FRUGAL_HAVE_CLBLAST
/* One CLBlast call under the lock; a single GEMM gets its temporary buffer from the scratch memory. */
static CLBlastStatusCode clblast_gemm(struct fr_cl *cl, CLBlastTranspose ta, CLBlastTranspose tb, size_t m, size_t n,
                                      size_t k, float alpha, cl_mem a, size_t a_off, size_t lda, size_t a_stride,
                                      cl_mem b, size_t b_off, size_t ldb, size_t b_stride, float beta, cl_mem c,
                                      size_t c_off, size_t ldc, size_t c_stride, size_t batch)
{
    CLBlastStatusCode s;
    pthread_mutex_lock(&clblast_lock);
    if (batch > 1) {
        s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off, lda, a_stride, b,
                                       b_off, ldb, b_stride, beta, c, c_off, ldc, c_stride, batch, &cl->queue,
                                       fr_cl_prof_event(cl, "CLBlastSgemmStridedBatched", -1));
    } else {
        size_t temp = 0;
        cl_mem tmem = NULL;
        s = CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, ta, tb, m, n, k, a_off, lda, b_off, ldb, c_off, ldc,
                                       &cl->queue, &temp);
        if (s == CLBlastSuccess && temp > 0 && fr_cl_scratch(cl, FR_CL_SCRATCH_GEMM, temp, &tmem) == FR_STATUS_OK)
            s = CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off,
                                           ldb, beta, c, c_off, ldc, &cl->queue,
                                           fr_cl_prof_event(cl, "CLBlastSgemm", -1), tmem);
        else
            s = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c,
                             c_off, ldc, &cl->queue, fr_cl_prof_event(cl, "CLBlastSgemm", -1));
    }
    pthread_mutex_unlock(&clblast_lock);
    return s;
}
#endif

enum fr_status fr_cl_sgemm_batched(struct fr_cl *cl, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                                   cl_mem a, size_t a_off, size_t lda, size_t a_stride, cl_mem b, size_t b_off,
                                   size_t ldb, size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                                   size_t c_stride, int batch)
{
    if (m <= 0 || n <= 0 || batch <= 0)
        return FR_STATUS_OK;
#if FRUGAL_HAVE_CLBLAST
    if (cl->use_clblast && k > 0) {
        CLBlastStatusCode s = clblast_gemm(cl, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                           trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)m, (size_t)n,
                                           (size_t)k, alpha, a, a_off, lda, a_stride, b, b_off, ldb, b_stride, beta,
                                           c, c_off, ldc, c_stride, (size_t)batch);
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
    return fr_cl_sgemm_strided_batched(cl, m, n, k, alpha, a, (int)a_off, sam, sak, (int)a_stride, b, (int)b_off, sbk,
                                       sbn, (int)b_stride, beta, c, (int)c_off, (int)ldc, 1, (int)c_stride, batch);
}

enum fr_status fr_cl_sgemm(struct fr_cl *cl, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                           cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                           cl_mem c, size_t c_off, size_t ldc)
{
    return fr_cl_sgemm_batched(cl, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, 0, b, b_off, ldb, 0, beta, c,
                               c_off, ldc, 0, 1);
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
