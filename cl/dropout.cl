/* Dropout and drop-path kernels: the same Philox streams as src/cpu/dropout.c (rng.h), so both backends
 * keep the same units. Dropout: element i keeps when draw (seed, FR_RNG_DROPOUT, step, salt, i) >= p.
 * Drop-path: sample n keeps when draw (seed, FR_RNG_DROPPATH, step, salt, n) < survival. Indices count from the
 * batch's first sample in a batch split across processes (`first`), so the split does not change the noise. */
#include "common.h"

__kernel void dropout_dropout(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                              const float p, const float scale, const uint seed_lo, const uint seed_hi,
                              const uint step, const uint salt, const uint first)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    uint g = first + (uint)i; /* the element's index in the whole batch */
    fr_philox4 r = fr_rng_block(seed_lo, seed_hi, FR_RNG_DROPOUT, step, salt, g / 4);
    float u = fr_u32_to_unit(r.v[g % 4]);
    y[py.off + i] = u >= p ? x[px.off + i] * scale : 0.0f;
}

__kernel void dropout_drop_path(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                                const float survival, const float scale, const uint seed_lo, const uint seed_hi,
                                const uint step, const uint salt, const int inner, const uint first)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    uint n = first + (uint)(i / inner); /* the sample's index in the whole batch */
    fr_philox4 r = fr_rng_block(seed_lo, seed_hi, FR_RNG_DROPPATH, step, salt, n / 4);
    float u = fr_u32_to_unit(r.v[n % 4]);
    y[py.off + i] = u < survival ? x[px.off + i] * scale : 0.0f;
}

/* eval mode: identity copy */
__kernel void dropout_copy(__global float *y, const fr_clt py, __global const float *x, const fr_clt px)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    y[py.off + i] = x[px.off + i];
}
