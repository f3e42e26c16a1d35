/* Elementwise f32 kernels with numpy broadcasting: the host hands every source a parameter struct
 * with the destination's sizes and stride 0 on broadcast dims. Each op has a general kernel (4-D index
 * arithmetic per operand) and a `_c` kernel for the common case of contiguous operands of one shape
 * (plain offsets, no divisions), chosen by the host. */
#include "common.h"

#define FR_BINARY(NAME, EXPR)                                                                            \
    __kernel void elementwise_##NAME(__global float *y, const fr_clt py, __global const float *a,        \
                                     const fr_clt pa, __global const float *b, const fr_clt pb)          \
    {                                                                                                    \
        int i = get_global_id(0);                                                                        \
        if (i >= py.n)                                                                                   \
            return;                                                                                      \
        float x0 = a[fr_clt_index(pa, i)];                                                               \
        float x1 = b[fr_clt_index(pb, i)];                                                               \
        y[fr_clt_index(py, i)] = (EXPR);                                                                 \
    }                                                                                                    \
    __kernel void elementwise_##NAME##_c(__global float *y, const fr_clt py, __global const float *a,    \
                                         const fr_clt pa, __global const float *b, const fr_clt pb)      \
    {                                                                                                    \
        int i = get_global_id(0);                                                                        \
        if (i >= py.n)                                                                                   \
            return;                                                                                      \
        float x0 = a[pa.off + i];                                                                        \
        float x1 = b[pb.off + i];                                                                        \
        y[py.off + i] = (EXPR);                                                                          \
    }

FR_BINARY(add, x0 + x1)
FR_BINARY(sub, x0 - x1)
FR_BINARY(mul, x0 * x1)
FR_BINARY(div, x0 / x1)
/* (x, gy) -> gy where x > 0 */
FR_BINARY(relu_bwd, x0 > 0.0f ? x1 : 0.0f)

/* s * x + t, the product rounded before the sum as on the CPU path */
FR_CL_FN float scale_add(float x, float s, float t)
{
    float p = s * x;
    return p + t;
}

__kernel void elementwise_scale(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa,
                                const float s, const float t)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    y[fr_clt_index(py, i)] = scale_add(a[fr_clt_index(pa, i)], s, t);
}

__kernel void elementwise_scale_c(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa,
                                  const float s, const float t)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    y[py.off + i] = scale_add(a[pa.off + i], s, t);
}

__kernel void elementwise_relu(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float x = a[fr_clt_index(pa, i)];
    y[fr_clt_index(py, i)] = x > 0.0f ? x : 0.0f;
}

__kernel void elementwise_relu_c(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float x = a[pa.off + i];
    y[py.off + i] = x > 0.0f ? x : 0.0f;
}
