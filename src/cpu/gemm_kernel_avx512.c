/* The AVX-512F SGEMM micro-kernel family (8×32 tiles of zmm accumulators), built with a target attribute. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define FR_GK_SUFFIX avx512
#define FR_GK_NAME "avx512f"
#ifndef FR_GK_MR
#define FR_GK_MR 8
#endif
#ifndef FR_GK_NR
#define FR_GK_NR 32
#endif
#define FR_GK_VL 16
/* Measured on Zen 5 (1 MiB L2): kc = 512 (fewer passes over C) beats keeping the kc×32 B panel in L1; the
 * 96×kc A block (192 KiB) and the B panel (64 KiB) stream from L2. 12×32 and 14×32 tiles did no better
 * and pad m = 32/64 (the model's channel counts) more. */
#ifndef FR_GK_KC
#define FR_GK_KC 512
#endif
#ifndef FR_GK_MC
#define FR_GK_MC 96
#endif
#define FR_GK_NC 2048
#define FR_GK_TARGET __attribute__((target("avx512f,avx2,fma")))
#define FR_GK_FMA(a, b, c) ((VF)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define FR_GK_SET1(x) ((VF)_mm512_set1_ps(x))
#define FR_GK_AVX_TRANSPOSE 1
#include "cpu/gemm_kernel_template.c"
#endif
