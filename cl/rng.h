/* Philox4x32-10 counter-based RNG, compiled both by the C host and by OpenCL C kernels.
 * Random values are a pure function of (key, counter): frugal uses key = seed and
 * counter = (index, sample, step, purpose), so every device and thread count draws the same numbers. */
#ifndef FRUGAL_CL_RNG_H
#define FRUGAL_CL_RNG_H

/* FR_OPENCL_C: compiled as OpenCL C. Runtimes define __OPENCL_VERSION__, the OpenCL C standard names
 * __OPENCL_C_VERSION__ (clang alone defines only that one): either means device code. */
#if defined(__OPENCL_VERSION__) || defined(__OPENCL_C_VERSION__)
#define FR_OPENCL_C 1
#endif

#ifdef FR_OPENCL_C
typedef uint fr_u32;
#define FR_RNG_FN static inline
#define FR_MULHI(a, b) mul_hi((fr_u32)(a), (fr_u32)(b))
#else
#include <stdint.h>
typedef uint32_t fr_u32;
#define FR_RNG_FN static inline
#define FR_MULHI(a, b) ((fr_u32)(((uint64_t)(a) * (uint64_t)(b)) >> 32))
#endif

#define FR_PHILOX_M0 0xD2511F53u
#define FR_PHILOX_M1 0xCD9E8D57u
#define FR_PHILOX_W0 0x9E3779B9u
#define FR_PHILOX_W1 0xBB67AE85u

typedef struct {
    fr_u32 v[4];
} fr_philox4;

/* One Philox4x32 block with 10 rounds (Salmon et al., SC'11; matches Random123's known answers). */
FR_RNG_FN fr_philox4 fr_philox4x32_10(fr_philox4 ctr, fr_u32 k0, fr_u32 k1)
{
    for (int r = 0; r < 10; r++) {
        fr_u32 hi0 = FR_MULHI(FR_PHILOX_M0, ctr.v[0]);
        fr_u32 lo0 = (fr_u32)(FR_PHILOX_M0 * ctr.v[0]);
        fr_u32 hi1 = FR_MULHI(FR_PHILOX_M1, ctr.v[2]);
        fr_u32 lo1 = (fr_u32)(FR_PHILOX_M1 * ctr.v[2]);
        fr_philox4 o;
        o.v[0] = hi1 ^ ctr.v[1] ^ k0;
        o.v[1] = lo1;
        o.v[2] = hi0 ^ ctr.v[3] ^ k1;
        o.v[3] = lo0;
        ctr = o;
        k0 += FR_PHILOX_W0;
        k1 += FR_PHILOX_W1;
    }
    return ctr;
}

/* frugal's counter layout: four 32-bit random words for (seed, purpose, step, sample, index). */
FR_RNG_FN fr_philox4 fr_rng_block(fr_u32 seed_lo, fr_u32 seed_hi, fr_u32 purpose, fr_u32 step,
                                  fr_u32 sample, fr_u32 index)
{
    fr_philox4 c;
    c.v[0] = index;
    c.v[1] = sample;
    c.v[2] = step;
    c.v[3] = purpose;
    return fr_philox4x32_10(c, seed_lo, seed_hi);
}

/* Uniform float in [0, 1) from the top 24 bits (exact in fp32 on every device). */
FR_RNG_FN float fr_u32_to_unit(fr_u32 x)
{
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* Purposes keep independent streams apart; add new ones at the end. */
#define FR_RNG_DROPOUT 1u
#define FR_RNG_AUGMENT 2u
#define FR_RNG_NOISE 3u
#define FR_RNG_INIT 4u
#define FR_RNG_SHUFFLE 5u
#define FR_RNG_SPLIT 6u
#define FR_RNG_MIX 7u
#define FR_RNG_DROPPATH 8u
#define FR_RNG_LOAD 9u /* crops and flips applied when a dataset image is read */

#endif
