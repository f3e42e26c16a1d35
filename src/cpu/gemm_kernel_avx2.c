/* The AVX2+FMA SGEMM micro-kernel family (6×16 tiles of ymm accumulators), built with a target attribute. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define FR_GK_SUFFIX avx2
#define FR_GK_NAME "avx2+fma"
#define FR_GK_MR 6
#define FR_GK_NR 16
#define FR_GK_VL 8
#define FR_GK_KC 256
#define FR_GK_MC 120
#define FR_GK_NC 4096
#define FR_GK_TARGET __attribute__((target("avx2,fma")))
#define FR_GK_FMA(a, b, c) ((VF)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define FR_GK_SET1(x) ((VF)_mm256_set1_ps(x))
#define FR_GK_AVX_TRANSPOSE 1
#include "cpu/gemm_kernel_template.c"
#endif
