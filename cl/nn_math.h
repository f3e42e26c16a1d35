/* Formulas shared by the CPU kernels (src/cpu/{activation,pool}.c) and the OpenCL kernels (cl/{nn,pool}.cl):
 * the torchvision activations and their gradients, and pooling windows (padding, ceil_mode, adaptive). */
#ifndef FRUGAL_CL_NN_MATH_H
#define FRUGAL_CL_NN_MATH_H

#ifdef __OPENCL_VERSION__
#define FR_NN_FN static inline
#define FR_NN_EXP(x) exp(x)
#else
#include <math.h>
#define FR_NN_FN static inline
#define FR_NN_EXP(x) expf(x)
#endif

FR_NN_FN int fr_nn_imin(int a, int b) { return a < b ? a : b; }
FR_NN_FN int fr_nn_imax(int a, int b) { return a > b ? a : b; }
FR_NN_FN float fr_nn_clamp(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* ---- activations (PyTorch's definitions and gradient conventions at the kinks) ---- */
/* 1/(1+e^-x) without overflow for very negative x */
FR_NN_FN float fr_nn_sigmoid(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + FR_NN_EXP(-x));
    float e = FR_NN_EXP(x);
    return e / (1.0f + e);
}
/* min(max(x, 0), 6); gradient 1 strictly inside (0, 6) (hardtanh_backward) */
FR_NN_FN float fr_nn_relu6(float x) { return fr_nn_clamp(x, 0.0f, 6.0f); }
FR_NN_FN float fr_nn_relu6_grad(float x, float g) { return x > 0.0f && x < 6.0f ? g : 0.0f; }
/* relu6(x + 3) / 6; gradient 1/6 strictly inside (-3, 3) */
FR_NN_FN float fr_nn_hardsigmoid(float x) { return fr_nn_clamp(x + 3.0f, 0.0f, 6.0f) / 6.0f; }
FR_NN_FN float fr_nn_hardsigmoid_grad(float x, float g) { return x > -3.0f && x < 3.0f ? g / 6.0f : 0.0f; }
/* x · relu6(x + 3) / 6; gradient 0 below -3, x/3 + 1/2 up to 3 (inclusive), 1 above */
FR_NN_FN float fr_nn_hardswish(float x) { return x * fr_nn_clamp(x + 3.0f, 0.0f, 6.0f) / 6.0f; }
FR_NN_FN float fr_nn_hardswish_grad(float x, float g)
{
    return x < -3.0f ? 0.0f : (x <= 3.0f ? g * (x / 3.0f + 0.5f) : g);
}
/* x · sigmoid(x) (swish); gradient s · (1 + x · (1 − s)) */
FR_NN_FN float fr_nn_silu(float x) { return x * fr_nn_sigmoid(x); }
FR_NN_FN float fr_nn_silu_grad(float x, float g)
{
    float s = fr_nn_sigmoid(x);
    return g * (s * (1.0f + x * (1.0f - s)));
}

/* ---- pooling windows ---- */
/* Output size of a pool along one axis (PyTorch's pooling_output_shape): floor or ceil; in ceil mode the
 * last window must start inside the input or its left padding. 0 when the window does not fit. */
FR_NN_FN int fr_pool_out(int n, int k, int s, int p, int ceil_mode)
{
    int span = n + 2 * p - k;
    if (span < 0 || s <= 0)
        return 0;
    int o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (o - 1) * s >= n + p)
        o--;
    return o;
}

/* Window of output o along one axis clipped to the input: [*lo, *hi). Returns its length clipped to the
 * padded input only (the average-pool divisor with count_include_pad, as PyTorch). */
FR_NN_FN int fr_pool_window(int o, int k, int s, int p, int n, int *lo, int *hi)
{
    int a = o * s - p, b = fr_nn_imin(a + k, n + p);
    *lo = fr_nn_imax(a, 0);
    *hi = fr_nn_imin(b, n);
    return b - a;
}

/* The outputs [*o0, *o1] (inclusive; empty when o0 > o1) whose window covers input i. */
FR_NN_FN void fr_pool_cover(int i, int k, int s, int p, int n_out, int *o0, int *o1)
{
    int lo = i + p - k + 1;
    *o0 = lo <= 0 ? 0 : (lo + s - 1) / s;
    *o1 = fr_nn_imin(n_out - 1, (i + p) / s);
}

/* Adaptive average pooling: output o of n_out over n inputs averages [floor(o·n/n_out), ceil((o+1)·n/n_out)). */
FR_NN_FN void fr_adaptive_window(int o, int n_out, int n, int *lo, int *hi)
{
    *lo = (o * n) / n_out;
    *hi = ((o + 1) * n + n_out - 1) / n_out;
}

/* The outputs [*o0, *o1] of an adaptive pool whose window covers input i. */
FR_NN_FN void fr_adaptive_cover(int i, int n_out, int n, int *o0, int *o1)
{
    *o0 = (i * n_out) / n;           /* the first o with hi(o) > i */
    *o1 = ((i + 1) * n_out - 1) / n; /* the last o with lo(o) <= i */
    if (*o1 > n_out - 1)
        *o1 = n_out - 1;
}

#endif
