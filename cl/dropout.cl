/* Dropout and drop-path kernels: the same Philox streams as src/cpu/dropout.c (rng.h), so both backends
 * keep the same units. Dropout: element i keeps when word i % 4 of block (seed, FR_RNG_DROPOUT, step, salt,
 * i / 4) is >= p; a work-item takes the four elements of one block. Drop-path: sample n keeps when word
 * n % 4 of block (seed, FR_RNG_DROPPATH, step, salt, n / 4) is < survival; a work-item takes a segment of
 * up to `seg` elements of one sample (the host's choice) and draws once. Contiguous tensors. Indices count from
 * `first`, the batch's first element or sample in a batch split across processes, so the split does not change the
 * noise. */
#include "common.h"

/* global: the blocks of 4 from the one holding element `first` to the one holding element first + n - 1 */
__kernel void dropout_dropout(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                              const float p, const float scale, const uint seed_lo, const uint seed_hi,
                              const uint step, const uint salt, const uint first)
{
    int b = get_global_id(0);
    if (b * 4 >= (int)(first % 4) + py.n)
        return;
    uint gb = first / 4 + (uint)b; /* the block in the whole batch */
    fr_philox4 r = fr_rng_block(seed_lo, seed_hi, FR_RNG_DROPOUT, step, salt, gb);
    for (int q = 0; q < 4; q++) {
        int i = (int)(gb * 4u + (uint)q - first);
        if (i >= 0 && i < py.n)
            y[py.off + i] = fr_u32_to_unit(r.v[q]) >= p ? x[px.off + i] * scale : 0.0f;
    }
}

/* global: (ceil(inner / seg), samples) */
__kernel void dropout_drop_path(__global float *y, const fr_clt py, __global const float *x, const fr_clt px,
                                const float survival, const float scale, const uint seed_lo, const uint seed_hi,
                                const uint step, const uint salt, const int inner, const int seg, const uint first)
{
    int e0 = get_global_id(0) * seg, n = get_global_id(1);
    if (e0 >= inner || n * inner >= py.n)
        return;
    uint gn = first + (uint)n; /* the sample in the whole batch */
    fr_philox4 r = fr_rng_block(seed_lo, seed_hi, FR_RNG_DROPPATH, step, salt, gn / 4);
    bool keep = fr_u32_to_unit(r.v[gn % 4]) < survival;
    int e1 = min(e0 + seg, inner), base = n * inner;
    for (int e = e0; e < e1; e++)
        y[py.off + base + e] = keep ? x[px.off + base + e] * scale : 0.0f;
}

/* eval mode: identity copy */
__kernel void dropout_copy(__global float *y, const fr_clt py, __global const float *x, const fr_clt px)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    y[py.off + i] = x[px.off + i];
}
