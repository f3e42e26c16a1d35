/* Dropout and drop-path kernels: the same Philox streams as src/cpu/dropout.c (rng.h), so both backends
 * keep the same units. Dropout: element i keeps when draw (seed, FR_RNG_DROPOUT, step, salt, i) >= p.
 * Drop-path: sample n keeps when draw (seed, FR_RNG_DROPPATH, step, salt, n) < survival. */
#include "common.h"

__kernel void dropout_dropout(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                              const float p, const float scale, const uint seed_lo, const uint seed_hi,
                              const uint step, const uint salt)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    fr_philox4 r = fr_rng_block(seed_lo, seed_hi, FR_RNG_DROPOUT, step, salt, (uint)(i / 4));
    float u = fr_u32_to_unit(r.v[i % 4]);
    y[py.off + i] = u >= p ? x[px.off + i] * scale : 0.0f;
}

__kernel void dropout_drop_path(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                                const float survival, const float scale, const uint seed_lo, const uint seed_hi,
                                const uint step, const uint salt, const int inner)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    int n = i / inner;
    fr_philox4 r = fr_rng_block(seed_lo, seed_hi, FR_RNG_DROPPATH, step, salt, (uint)(n / 4));
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
