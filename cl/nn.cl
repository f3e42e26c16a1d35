/* Activation kernels beyond ReLU: leaky ReLU, GELU (erf form), sigmoid, tanh and their gradients.
 * Contiguous tensors; gradients take (a, gy) with a the input (leaky, gelu) or the output (sigmoid, tanh). */
#include "common.h"

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
    float x = a[pa.off + i], r;
    if (x >= 0.0f) {
        r = 1.0f / (1.0f + exp(-x));
    } else {
        float e = exp(x);
        r = e / (1.0f + e);
    }
    y[py.off + i] = r;
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
