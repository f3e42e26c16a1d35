/* The SGEMM packing routines and register-tiled micro-kernel, written once and #included by each
 * gemm_kernel_<width>.c with its tile sizes, vector width and target attribute (never compiled alone). */
/* Expects: FR_GK_SUFFIX, FR_GK_NAME, FR_GK_MR, FR_GK_NR, FR_GK_VL, FR_GK_MC, FR_GK_KC, FR_GK_NC, FR_GK_TARGET,
 * FR_GK_FMA(a, b, c) = a*b + c on vectors, FR_GK_SET1(x) = broadcast; optional FR_GK_AVX_TRANSPOSE (x86 AVX). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu/gemm.h"

#define FR_GK_NV (FR_GK_NR / FR_GK_VL)
/* Packed B of at most this size (a column slab) is walked row panel by row panel when kc is short. */
#ifndef FR_GK_IR_OUTER_BYTES
#define FR_GK_IR_OUTER_BYTES (256 * 1024)
#endif
#define FR_GK_CAT2(a, b) a##_##b
#define FR_GK_CAT(a, b) FR_GK_CAT2(a, b)
#define FR_GK_FN(name) FR_GK_CAT(name, FR_GK_SUFFIX)

typedef float FR_GK_FN(vf) __attribute__((vector_size(FR_GK_VL * 4), may_alias));
typedef float FR_GK_FN(vfu) __attribute__((vector_size(FR_GK_VL * 4), may_alias, aligned(4)));
#define VF FR_GK_FN(vf)
#define VFU FR_GK_FN(vfu)

#ifdef FR_GK_AVX_TRANSPOSE
#include <immintrin.h>
/* dst[q*ld + r] = src[r*ls + q] for an 8×8 block, in AVX registers. */
FR_GK_TARGET static inline __attribute__((always_inline)) void
FR_GK_FN(transpose8)(const float *src, int64_t ls, float *dst, int64_t ld)
{
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ls), r2 = _mm256_loadu_ps(src + 2 * ls),
           r3 = _mm256_loadu_ps(src + 3 * ls), r4 = _mm256_loadu_ps(src + 4 * ls), r5 = _mm256_loadu_ps(src + 5 * ls),
           r6 = _mm256_loadu_ps(src + 6 * ls), r7 = _mm256_loadu_ps(src + 7 * ls);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
#define FR_GK_LO _MM_SHUFFLE(1, 0, 1, 0)
#define FR_GK_HI _MM_SHUFFLE(3, 2, 3, 2)
    __m256 s0 = _mm256_shuffle_ps(t0, t2, FR_GK_LO), s1 = _mm256_shuffle_ps(t0, t2, FR_GK_HI),
           s2 = _mm256_shuffle_ps(t1, t3, FR_GK_LO), s3 = _mm256_shuffle_ps(t1, t3, FR_GK_HI),
           s4 = _mm256_shuffle_ps(t4, t6, FR_GK_LO), s5 = _mm256_shuffle_ps(t4, t6, FR_GK_HI),
           s6 = _mm256_shuffle_ps(t5, t7, FR_GK_LO), s7 = _mm256_shuffle_ps(t5, t7, FR_GK_HI);
#undef FR_GK_LO
#undef FR_GK_HI
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + ld, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ld, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ld, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ld, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ld, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ld, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ld, _mm256_permute2f128_ps(s3, s7, 0x31));
}
#define FR_GK_TRANSPOSE_8x8 FR_GK_FN(transpose8)
#endif

/* Full MR-row panel, rows contiguous in p (A not transposed): a transposition. */
FR_GK_TARGET static void FR_GK_FN(pack_a_rows)(int64_t kc, const float *restrict a, int64_t rs, float *restrict dst)
{
    int64_t p = 0;
#ifdef FR_GK_TRANSPOSE_8x8
    if (FR_GK_MR % 8 == 0) {
        for (; p + 8 <= kc; p += 8)
            for (int i = 0; i < FR_GK_MR; i += 8)
                FR_GK_TRANSPOSE_8x8(a + i * rs + p, rs, dst + p * FR_GK_MR + i, FR_GK_MR);
    }
#endif
    for (; p < kc; p++) {
#pragma GCC unroll 16
        for (int i = 0; i < FR_GK_MR; i++)
            dst[p * FR_GK_MR + i] = a[i * rs + p];
    }
}

FR_GK_TARGET static void FR_GK_FN(pack_a)(int64_t mc, int64_t kc, const float *a, int64_t rs, int64_t cs, float *dst)
{
    for (int64_t i0 = 0; i0 < mc; i0 += FR_GK_MR, dst += FR_GK_MR * kc) {
        int64_t mr = mc - i0 < FR_GK_MR ? mc - i0 : FR_GK_MR;
        const float *src = a + i0 * rs;
        if (mr == FR_GK_MR && cs == 1) {
            FR_GK_FN(pack_a_rows)(kc, src, rs, dst);
        } else if (mr == FR_GK_MR && rs == 1) {
            for (int64_t p = 0; p < kc; p++)
                memcpy(dst + p * FR_GK_MR, src + p * cs, FR_GK_MR * sizeof(float));
        } else {
            for (int64_t p = 0; p < kc; p++) {
                int64_t i = 0;
                for (; i < mr; i++)
                    dst[p * FR_GK_MR + i] = src[i * rs + p * cs];
                for (; i < FR_GK_MR; i++)
                    dst[p * FR_GK_MR + i] = 0.0f;
            }
        }
    }
}

/* Full NR-column panel, columns contiguous in p (B transposed): a transposition. */
FR_GK_TARGET static void FR_GK_FN(pack_b_cols)(int64_t kc, const float *restrict b, int64_t cs, float *restrict dst)
{
    int64_t p = 0;
#ifdef FR_GK_TRANSPOSE_8x8
    if (FR_GK_NR % 8 == 0) {
        for (; p + 8 <= kc; p += 8)
            for (int j = 0; j < FR_GK_NR; j += 8)
                FR_GK_TRANSPOSE_8x8(b + j * cs + p, cs, dst + p * FR_GK_NR + j, FR_GK_NR);
    }
#endif
    for (; p < kc; p++) {
#pragma GCC unroll 16
        for (int j = 0; j < FR_GK_NR; j++)
            dst[p * FR_GK_NR + j] = b[j * cs + p];
    }
}

FR_GK_TARGET static void FR_GK_FN(pack_b)(int64_t kc, int64_t nc, const float *b, int64_t rs, int64_t cs, float *dst)
{
    for (int64_t j0 = 0; j0 < nc; j0 += FR_GK_NR, dst += FR_GK_NR * kc) {
        int64_t nr = nc - j0 < FR_GK_NR ? nc - j0 : FR_GK_NR;
        const float *src = b + j0 * cs;
        if (nr == FR_GK_NR && cs == 1) {
            for (int64_t p = 0; p < kc; p++) {
#pragma GCC unroll 4
                for (int v = 0; v < FR_GK_NV; v++)
                    *(VF *)(dst + p * FR_GK_NR + v * FR_GK_VL) = *(const VFU *)(src + p * rs + v * FR_GK_VL);
            }
        } else if (nr == FR_GK_NR && rs == 1) {
            FR_GK_FN(pack_b_cols)(kc, src, cs, dst);
        } else {
            for (int64_t p = 0; p < kc; p++) {
                int64_t j = 0;
                for (; j < nr; j++)
                    dst[p * FR_GK_NR + j] = src[p * rs + j * cs];
                for (; j < FR_GK_NR; j++)
                    dst[p * FR_GK_NR + j] = 0.0f;
            }
        }
    }
}

/* One rows×NR tile of C over kc (rows = MR, or MR/2 for short edge panels: the packed A panel keeps its MR
 * stride); edge tiles (mr < rows, nr < NR or strided C) go through a local tile. `rows` is a constant
 * after inlining, so the loops unroll and the accumulators live in registers. */
FR_GK_TARGET static inline __attribute__((always_inline)) void
FR_GK_FN(micro_rows)(int64_t kc, const float *restrict a, const float *restrict b, int64_t bs, float *restrict c,
                     int64_t ldc, int64_t csc, float alpha, float beta, int mr, int nr, const int rows)
{
    VF acc[FR_GK_MR][FR_GK_NV];
#pragma GCC unroll 16
    for (int i = 0; i < FR_GK_MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < FR_GK_NV; v++)
            acc[i][v] = (VF){0};
    int edge = mr != rows || nr != FR_GK_NR || csc != 1;
    if (!edge) {
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++)
            __builtin_prefetch(c + i * ldc, 1, 3);
    }
    for (int64_t p = 0; p < kc; p++) {
        VF bv[FR_GK_NV];
#pragma GCC unroll 4
        for (int v = 0; v < FR_GK_NV; v++)
            bv[v] = *(const VFU *)(b + v * FR_GK_VL);
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++) {
            VF av = FR_GK_SET1(a[i]);
#pragma GCC unroll 4
            for (int v = 0; v < FR_GK_NV; v++)
                acc[i][v] = FR_GK_FMA(av, bv[v], acc[i][v]);
        }
        a += FR_GK_MR;
        b += bs;
    }
    float tile[FR_GK_MR * FR_GK_NR] __attribute__((aligned(64)));
    float *dst = edge ? tile : c;
    int64_t ld = edge ? FR_GK_NR : ldc;
    if (edge || beta == 0.0f) {
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
            for (int v = 0; v < FR_GK_NV; v++)
                *(VFU *)(dst + i * ld + v * FR_GK_VL) = acc[i][v] * alpha;
    } else if (beta == 1.0f) {
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
            for (int v = 0; v < FR_GK_NV; v++) {
                VFU *cp = (VFU *)(dst + i * ld + v * FR_GK_VL);
                *cp = *cp + acc[i][v] * alpha;
            }
    } else {
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
            for (int v = 0; v < FR_GK_NV; v++) {
                VFU *cp = (VFU *)(dst + i * ld + v * FR_GK_VL);
                *cp = *cp * beta + acc[i][v] * alpha;
            }
    }
    if (edge) {
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) {
                float *cp = c + i * ldc + j * csc;
                *cp = beta == 0.0f ? tile[i * FR_GK_NR + j] : *cp * beta + tile[i * FR_GK_NR + j];
            }
    }
}

FR_GK_TARGET static inline __attribute__((always_inline)) void
FR_GK_FN(micro)(int64_t kc, const float *restrict a, const float *restrict b, int64_t bs, float *restrict c,
                int64_t ldc, int64_t csc, float alpha, float beta, int mr, int nr)
{
    if (mr > FR_GK_MR / 2 || FR_GK_MR % 2 != 0)
        FR_GK_FN(micro_rows)(kc, a, b, bs, c, ldc, csc, alpha, beta, mr, nr, FR_GK_MR);
    else
        FR_GK_FN(micro_rows)(kc, a, b, bs, c, ldc, csc, alpha, beta, mr, nr, FR_GK_MR / 2);
}

FR_GK_TARGET static void FR_GK_FN(block)(int64_t mc, int64_t nc, int64_t kc, const float *pa, const float *pb,
                                         int64_t pb_ps, int64_t pb_rs, float *c, int64_t ldc, int64_t csc,
                                         float alpha, float beta)
{
    int64_t slab = FR_GK_IR_OUTER_BYTES / ((int64_t)sizeof(float) * kc) / FR_GK_NR * FR_GK_NR;
    if (slab >= 4 * FR_GK_NR) {
        /* Short kc: take C in column slabs whose packed B stays in L2 and walk each slab row panel by row
         * panel, so consecutive kernel calls continue the same MR rows of C (C traffic dominates here,
         * and a column of tiles with a 4 KiB-multiple ldc would land in one L1 set). */
        for (int64_t s0 = 0; s0 < nc; s0 += slab) {
            int64_t s1 = s0 + slab < nc ? s0 + slab : nc;
            for (int64_t i0 = 0; i0 < mc; i0 += FR_GK_MR) {
                int mr = (int)(mc - i0 < FR_GK_MR ? mc - i0 : FR_GK_MR);
                for (int64_t j0 = s0; j0 < s1; j0 += FR_GK_NR) {
                    int nr = (int)(nc - j0 < FR_GK_NR ? nc - j0 : FR_GK_NR);
                    FR_GK_FN(micro)(kc, pa + i0 * kc, pb + j0 / FR_GK_NR * pb_ps, pb_rs, c + i0 * ldc + j0 * csc,
                                    ldc, csc, alpha, beta, mr, nr);
                }
            }
        }
        return;
    }
    /* Each kc×NR B panel is reused across the MR-row panels of the A block while it is hot. */
    for (int64_t j0 = 0; j0 < nc; j0 += FR_GK_NR) {
        int nr = (int)(nc - j0 < FR_GK_NR ? nc - j0 : FR_GK_NR);
        for (int64_t i0 = 0; i0 < mc; i0 += FR_GK_MR) {
            int mr = (int)(mc - i0 < FR_GK_MR ? mc - i0 : FR_GK_MR);
            FR_GK_FN(micro)(kc, pa + i0 * kc, pb + j0 / FR_GK_NR * pb_ps, pb_rs, c + i0 * ldc + j0 * csc, ldc,
                            csc, alpha, beta, mr, nr);
        }
    }
}

const struct fr_gemm_kernel FR_GK_FN(fr_gemm_kernel) = {
    .name = FR_GK_NAME,
    .mr = FR_GK_MR,
    .nr = FR_GK_NR,
    .mc = FR_GK_MC,
    .kc = FR_GK_KC,
    .nc = FR_GK_NC,
    .pack_a = FR_GK_FN(pack_a),
    .pack_b = FR_GK_FN(pack_b),
    .block = FR_GK_FN(block),
};
