/* The AVX-512F SGEMM micro-kernel family (12×32 tiles of zmm accumulators), built with a target attribute. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define FR_GK_SUFFIX avx512
#define FR_GK_NAME "avx512f"
#ifndef FR_GK_MR
#define FR_GK_MR 12
#endif
#ifndef FR_GK_NR
#define FR_GK_NR 32
#endif
#define FR_GK_VL 16
/* B panel kc×32 floats = 32 KiB in L1 (48 KiB on Zen 4/5); A block 240×kc floats in L2. */
#ifndef FR_GK_KC
#define FR_GK_KC 256
#endif
#ifndef FR_GK_MC
#define FR_GK_MC 240
#endif
#define FR_GK_NC 4096
#define FR_GK_TARGET __attribute__((target("avx512f,avx2,fma")))
#define FR_GK_FMA(a, b, c) ((VF)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define FR_GK_SET1(x) ((VF)_mm512_set1_ps(x))
#define FR_GK_AVX_TRANSPOSE 1
#include "cpu/gemm_kernel_template.c"
#endif
