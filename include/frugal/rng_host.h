/* Host-side helpers over the shared Philox header (cl/rng.h): seeds, uniform and normal draws. */
#ifndef FRUGAL_RNG_HOST_H
#define FRUGAL_RNG_HOST_H

#include <math.h>
#include <stdint.h>

#include "rng.h"

/* Uniform [0,1) number `index` of the stream (seed, purpose, step, sample). */
static inline float fr_rng_uniform(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint32_t index)
{
    fr_philox4 r = fr_rng_block((uint32_t)seed, (uint32_t)(seed >> 32), purpose, step, sample, index / 4);
    return fr_u32_to_unit(r.v[index % 4]);
}

/* Uniform [0,1) as a double with 53 random bits (host-only parameter draws). */
static inline double fr_rng_uniform_f64(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample,
                                        uint32_t index)
{
    fr_philox4 r = fr_rng_block((uint32_t)seed, (uint32_t)(seed >> 32), purpose, step, sample, index);
    uint64_t hi = r.v[0] >> 5, lo = r.v[1] >> 6; /* 27 + 26 bits */
    return (double)(hi * 67108864u + lo) * (1.0 / 9007199254740992.0);
}

#endif
