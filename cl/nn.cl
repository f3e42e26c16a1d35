/* Activation kernels beyond ReLU: leaky ReLU, GELU (erf form), sigmoid, tanh, ReLU6, hardsigmoid, hardswish, SiLU
 * and their gradients. Contiguous tensors; gradients take (a, gy) with a the input or, for sigmoid and tanh,
 * the output. Formulas shared with the CPU path in nn_math.h. */
#include "common.h"
#include "nn_math.h"

__kernel void nn_leaky_relu(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa,
                            const float slope)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float x = a[pa.off + i];
    y[py.off + i] = x > 0.0f ? x : slope * x;
}

__kernel void nn_leaky_relu_bwd(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa,
                                __global const float *gy, const fr_clt pg, const float slope)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float g = gy[pg.off + i];
    y[py.off + i] = a[pa.off + i] > 0.0f ? g : slope * g;
}

__kernel void nn_gelu(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float x = a[pa.off + i];
    y[py.off + i] = 0.5f * x * (1.0f + erf(x * 0.70710678118654752f));
}

__kernel void nn_gelu_bwd(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa,
                          __global const float *gy, const fr_clt pg)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float x = a[pa.off + i];
    float cdf = 0.5f * (1.0f + erf(x * 0.70710678118654752f));
    float pdf = 0.39894228040143268f * exp(-0.5f * x * x);
    y[py.off + i] = gy[pg.off + i] * (cdf + x * pdf);
}

__kernel void nn_sigmoid(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    y[py.off + i] = fr_nn_sigmoid(a[pa.off + i]);
}

__kernel void nn_sigmoid_bwd(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa,
                             __global const float *gy, const fr_clt pg)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float s = a[pa.off + i];
    y[py.off + i] = gy[pg.off + i] * s * (1.0f - s);
}

__kernel void nn_tanh(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    y[py.off + i] = tanh(a[pa.off + i]);
}

__kernel void nn_tanh_bwd(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa,
                          __global const float *gy, const fr_clt pg)
{
    int i = get_global_id(0);
    if (i >= py.n)
        return;
    float t = a[pa.off + i];
    y[py.off + i] = gy[pg.off + i] * (1.0f - t * t);
}

/* y = f(a) and y = f'(a)·gy for the torchvision activations (a = the input; for relu6 the output also works):
 * kernels nn_relu6, nn_relu6_bwd, nn_hardsigmoid, nn_hardsigmoid_bwd, nn_hardswish, nn_hardswish_bwd, nn_silu,
 * nn_silu_bwd */
#define FR_NN_ACT_KERNELS(NAME)                                                                                   \
    __kernel void nn_##NAME(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa)          \
    {                                                                                                             \
        int i = get_global_id(0);                                                                                 \
        if (i < py.n)                                                                                             \
            y[py.off + i] = fr_nn_##NAME(a[pa.off + i]);                                                          \
    }                                                                                                             \
    __kernel void nn_##NAME##_bwd(__global float *y, const fr_clt py, __global const float *a, const fr_clt pa,    \
                                  __global const float *gy, const fr_clt pg)                                      \
    {                                                                                                             \
        int i = get_global_id(0);                                                                                 \
        if (i < py.n)                                                                                             \
            y[py.off + i] = fr_nn_##NAME##_grad(a[pa.off + i], gy[pg.off + i]);                                   \
    }
FR_NN_ACT_KERNELS(relu6)
FR_NN_ACT_KERNELS(hardsigmoid)
FR_NN_ACT_KERNELS(hardswish)
FR_NN_ACT_KERNELS(silu)
