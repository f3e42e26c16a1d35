/* The portable SGEMM micro-kernel family (4-wide vector extensions: SSE2 on x86-64, NEON FMA on AArch64). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define FR_GK_NAME "neon"
#define FR_GK_MR 8
#define FR_GK_FMA(a, b, c) ((VF)vfmaq_f32((float32x4_t)(c), (float32x4_t)(a), (float32x4_t)(b)))
#elif defined(__x86_64__) || defined(__SSE2__)
#define FR_GK_NAME "sse2"
#define FR_GK_MR 4
#define FR_GK_FMA(a, b, c) ((a) * (b) + (c)) /* no FMA in SSE2; -ffp-contract=off keeps this two ops */
#else
#define FR_GK_NAME "generic"
#define FR_GK_MR 4
#define FR_GK_FMA(a, b, c) ((a) * (b) + (c))
#endif
#define FR_GK_SUFFIX generic
#define FR_GK_NR 8
#define FR_GK_VL 4
#define FR_GK_KC 256
#define FR_GK_MC 128
#define FR_GK_NC 2048
#define FR_GK_TARGET
#define FR_GK_SET1(x) ((VF){(x), (x), (x), (x)})
#include "cpu/gemm_kernel_template.c"
