/* Shared by the host (src/opencl/) and every OpenCL kernel: the tensor parameter struct and index helpers. */
#ifndef FRUGAL_CL_COMMON_H
#define FRUGAL_CL_COMMON_H

#include "rng.h" /* first: defines FR_OPENCL_C in device code */

#ifdef FR_OPENCL_C
/* Parity with the CPU path (built with -ffp-contract=off) needs unfused a*b+c. */
#pragma OPENCL FP_CONTRACT OFF
typedef int fr_i32;
/* static: a plain C99 `inline` definition has no out-of-line copy, which breaks the link when a
 * compiler chooses not to inline (clang-based drivers at -cl-opt-disable). */
#define FR_CL_FN static inline
#else
#include <stdint.h>
typedef int32_t fr_i32;
#endif

/* One tensor operand as a kernel sees it (ArrayFire's KParam idea): sizes and strides in elements of
 * its own type, outermost dim first (PyTorch order), and the offset of element 0 in elements from
 * the cl_mem the kernel receives next to it. All 32-bit ints, so host and device agree on the
 * layout without packing rules; the host refuses tensors beyond 2^31 elements. Broadcast dims have
 * stride 0. */
typedef struct {
    fr_i32 ne[4];
    fr_i32 st[4];
    fr_i32 off;
    fr_i32 n;      /* ne[0]*ne[1]*ne[2]*ne[3] */
    fr_i32 pad[2]; /* keeps the size a multiple of 16 bytes */
} fr_clt;

#ifdef FR_OPENCL_C
/* Element offset of linear (row-major over p's own ne) index i in tensor p. */
FR_CL_FN int fr_clt_index(const fr_clt p, int i)
{
    int i3 = i % p.ne[3];
    int r = i / p.ne[3];
    int i2 = r % p.ne[2];
    r /= p.ne[2];
    int i1 = r % p.ne[1];
    int i0 = r / p.ne[1];
    return p.off + i0 * p.st[0] + i1 * p.st[1] + i2 * p.st[2] + i3 * p.st[3];
}

/* Element offset of the element at (i0..i3) of tensor p. */
FR_CL_FN int fr_clt_at(const fr_clt p, int i0, int i1, int i2, int i3)
{
    return p.off + i0 * p.st[0] + i1 * p.st[1] + i2 * p.st[2] + i3 * p.st[3];
}

/* Compensated (Kahan) summation step: keeps long f32 sums close to the CPU path's double sums.
 * Safe because FP_CONTRACT is off and fast-math is never used. */
FR_CL_FN void fr_kahan_add(float *s, float *c, float v)
{
    float y = v - *c;
    float t = *s + y;
    *c = (t - *s) - y;
    *s = t;
}

/* fr_kahan_add that keeps an infinite sum infinite (plain Kahan turns it into NaN through inf - inf),
 * as the CPU path's double sums do. */
FR_CL_FN void fr_kahan_add_inf(float *s, float *c, float v)
{
    fr_kahan_add(s, c, v);
    if (isinf(*s))
        *c = 0.0f;
}

/* Combines per-lane (sum, compensation) pairs in lane order into (*S, *C): deterministic, no atomics. */
FR_CL_FN void fr_kahan_lanes(__local const float *ls, __local const float *lc, int nl, float *S, float *C)
{
    *S = 0.0f;
    *C = 0.0f;
    for (int i = 0; i < nl; i++) {
        fr_kahan_add_inf(S, C, ls[i]);
        fr_kahan_add_inf(S, C, -lc[i]);
    }
}

/* Splits linear index i over the sizes ne into four coordinates. */
FR_CL_FN void fr_unravel(const fr_clt p, int i, int *c)
{
    c[3] = i % p.ne[3];
    i /= p.ne[3];
    c[2] = i % p.ne[2];
    i /= p.ne[2];
    c[1] = i % p.ne[1];
    c[0] = i / p.ne[1];
}
#endif

#endif
