/* Elementwise f32 kernels with numpy broadcasting: the host hands every source a parameter struct
 * with the destination's sizes and stride 0 on broadcast dims. */
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
    }

FR_BINARY(add, x0 + x1)
FR_BINARY(sub, x0 - x1)
FR_BINARY(mul, x0 * x1)
FR_BINARY(div, x0 / x1)
/* (x, gy) -> gy where x > 0 */
FR_BINARY(relu_bwd, x0 > 0.0f ? x1 : 0.0f)

__kernel void elementwise_scale(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa,
                                const float s, const float t)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float p = s * a[fr_clt_index(pa, i)];
    y[fr_clt_index(py, i)] = p + t;
}

__kernel void elementwise_relu(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float x = a[fr_clt_index(pa, i)];
    y[fr_clt_index(py, i)] = x > 0.0f ? x : 0.0f;
}
