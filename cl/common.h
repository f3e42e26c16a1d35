/* Shared by the host (src/opencl/; the weight average's decay also by src/cpu/optim.c) and every OpenCL kernel:
 * the tensor parameter struct and index helpers. */
#ifndef FRUGAL_CL_COMMON_H
#define FRUGAL_CL_COMMON_H

#include "rng.h" /* first: defines FR_OPENCL_C in device code */

#ifdef FR_OPENCL_C
/* Floating-point contraction. The CPU path is built with -ffp-contract=off, so by default every kernel
 * keeps a*b+c unfused: elementwise ops, conversions, activations, normalisation, losses, softmax, the
 * optimizer updates and the RNG-driven kernels give the CPU path's bits or stay within an ulp or two of
 * it, which their parity rows check (several with tolerance 0). GEMM-like kernels whose results are long
 * dot products compared by tolerance anyway (cl/gemm.cl, the direct convolutions in cl/conv.cl) turn
 * contraction back on after including this file (`#pragma OPENCL FP_CONTRACT ON`): an fma per term
 * doubles their FP32 peak, and the change is below the 1e-5..2e-4 tolerances of their parity rows and
 * gradient checks. Contraction never changes run-to-run determinism: the same device compiles the
 * same code the same way. */
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

/* Work-group size of the reduction kernels (their __local arrays); the host may use fewer lanes. */
#define FR_CL_LANES 256

/* Geometry of one conv2d (host and device): input [n,c,h,w], weight [o,c/groups,kh,kw], output
 * [n,o,oh,ow], stride (sh,sw), padding (ph,pw), dilation (dh,dw). */
typedef struct {
    fr_i32 n, c, h, w, o, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, groups;
} fr_clconv;

/* Decay of an exponential moving average of the weights after optimizer step t (1, 2, ...): min(decay,
 * (1 + t) / (10 + t)), as TensorFlow's ExponentialMovingAverage with num_updates: the first steps follow the
 * weights closely instead of an average dominated by the initial ones. */
static inline float fr_ema_decay(float decay, float t)
{
    float r = (1.0f + t) / (10.0f + t);
    return r < decay ? r : decay;
}

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

/* Sums v[0..nl) into v[0] by a fixed pairwise tree (nl a power of two, every lane of the work-group
 * calls it after writing v[lid]): the order depends only on nl, so results are the same run to run. */
FR_CL_FN void fr_tree_sum(__local float *v, int lid, int nl)
{
    for (int s = nl >> 1; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < s)
            v[lid] += v[lid + s];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
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
