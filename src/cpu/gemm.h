/* Packed, blocked, multithreaded single-precision GEMM (row-major) with runtime SIMD dispatch. */
#ifndef FRUGAL_CPU_GEMM_H
#define FRUGAL_CPU_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* C[m×n] = alpha·op(A)·op(B) + beta·C, all row-major; op(A) is m×k (A is k×m when trans_a), op(B) is
 * k×n (B is n×k when trans_b); lda/ldb/ldc are row strides in elements. beta == 0 never reads C.
 * pool may be NULL (single thread); never pass the pool whose task is calling (use NULL inside a task).
 * No allocation once the per-thread packing buffers (at most 4 MiB for B, 0.2 MiB for A) have grown;
 * if one cannot be allocated the product is still computed, by a plain loop. */
void fr_sgemm(struct fr_threadpool *pool, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
              int64_t ldc);

/* The micro-kernel family in use ("avx512f", "avx2+fma", "sse2", "neon", "generic"). */
const char *fr_sgemm_kernel_name(void);
/* Forces a kernel family by name (tests, benchmarks); NULL or "" restores the automatic choice.
 * Returns false when that family is unknown or the CPU lacks it. Not safe while a GEMM runs. */
bool fr_sgemm_set_kernel(const char *name);

/* ---- internal to src/cpu/gemm*.c: one micro-kernel family per SIMD width ---- */
/* Packed A: MR-row panels, each kc columns of MR values (zero-padded rows); packed B: NR-column panels,
 * each kc rows of NR values (zero-padded columns). Element (i,p) of op(A) is a[i*rs + p*cs]. */
struct fr_gemm_kernel {
    const char *name;
    int mr, nr;
    int64_t mc, kc, nc; /* cache blocking: A block mc×kc in L2, B panel kc×nr in L1, B block kc×nc in L3 */
    void (*pack_a)(int64_t mc, int64_t kc, const float *a, int64_t rs, int64_t cs, float *dst);
    void (*pack_b)(int64_t kc, int64_t nc, const float *b, int64_t rs, int64_t cs, float *dst);
    /* C[mc×nc] = alpha·packA·B + beta·C (beta == 0: C not read); element (i,j) of C is c[i*ldc + j*csc].
     * B's nr-column panel j starts at pb + j·pb_ps and its rows are pb_rs apart: packed (nr·kc, nr), or
     * B itself read in place (nr, ldb) when every panel is full. */
    void (*block)(int64_t mc, int64_t nc, int64_t kc, const float *pa, const float *pb, int64_t pb_ps,
                  int64_t pb_rs, float *c, int64_t ldc, int64_t csc, float alpha, float beta);
};

extern const struct fr_gemm_kernel fr_gemm_kernel_generic;
#if defined(__x86_64__) || defined(__i386__)
extern const struct fr_gemm_kernel fr_gemm_kernel_avx2;
extern const struct fr_gemm_kernel fr_gemm_kernel_avx512;
#endif

#ifdef __cplusplus
}
#endif
#endif
