/* CPU kernels of leaky ReLU, GELU (erf), sigmoid, tanh, ReLU6, hardsigmoid, hardswish, SiLU and their gradients
 * (the formulas shared with cl/nn.cl live in cl/nn_math.h). */
#include "cpu/cpu.h"

#include <math.h>

#include "nn_math.h"

enum act {
    LEAKY, LEAKY_BWD, GELU, GELU_BWD, SIGMOID, SIGMOID_BWD, TANH, TANH_BWD,
    RELU6, RELU6_BWD, HSIG, HSIG_BWD, HSWISH, HSWISH_BWD, SILU, SILU_BWD
};

struct act_job {
    enum act kind;
    const float *a, *gy;
    float *y;
    float slope;
};

static void act_range(void *p, int64_t b, int64_t e)
{
    const struct act_job *j = p;
    const float *a = j->a, *gy = j->gy;
    float *y = j->y, s = j->slope;
    switch (j->kind) {
    case LEAKY:
        for (int64_t i = b; i < e; i++)
            y[i] = a[i] > 0.0f ? a[i] : s * a[i];
        break;
    case LEAKY_BWD:
        for (int64_t i = b; i < e; i++)
            y[i] = a[i] > 0.0f ? gy[i] : s * gy[i];
        break;
    case GELU:
        for (int64_t i = b; i < e; i++)
            y[i] = 0.5f * a[i] * (1.0f + erff(a[i] * 0.70710678118654752f));
        break;
    case GELU_BWD:
        /* d/dx x·Φ(x) = Φ(x) + x·φ(x) */
        for (int64_t i = b; i < e; i++) {
            float x = a[i];
            float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
            float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
            y[i] = gy[i] * (cdf + x * pdf);
        }
        break;
    case SIGMOID:
        for (int64_t i = b; i < e; i++)
            y[i] = fr_nn_sigmoid(a[i]);
        break;
    case SIGMOID_BWD:
        for (int64_t i = b; i < e; i++)
            y[i] = gy[i] * a[i] * (1.0f - a[i]);
        break;
    case TANH:
        for (int64_t i = b; i < e; i++)
            y[i] = tanhf(a[i]);
        break;
    case TANH_BWD:
        for (int64_t i = b; i < e; i++)
            y[i] = gy[i] * (1.0f - a[i] * a[i]);
        break;
    case RELU6:
        for (int64_t i = b; i < e; i++)
            y[i] = fr_nn_relu6(a[i]);
        break;
    case RELU6_BWD:
        for (int64_t i = b; i < e; i++)
            y[i] = fr_nn_relu6_grad(a[i], gy[i]);
        break;
    case HSIG:
        for (int64_t i = b; i < e; i++)
            y[i] = fr_nn_hardsigmoid(a[i]);
        break;
    case HSIG_BWD:
        for (int64_t i = b; i < e; i++)
            y[i] = fr_nn_hardsigmoid_grad(a[i], gy[i]);
        break;
    case HSWISH:
        for (int64_t i = b; i < e; i++)
            y[i] = fr_nn_hardswish(a[i]);
        break;
    case HSWISH_BWD:
        for (int64_t i = b; i < e; i++)
            y[i] = fr_nn_hardswish_grad(a[i], gy[i]);
        break;
    case SILU:
        for (int64_t i = b; i < e; i++)
            y[i] = fr_nn_silu(a[i]);
        break;
    case SILU_BWD:
        for (int64_t i = b; i < e; i++)
            y[i] = fr_nn_silu_grad(a[i], gy[i]);
        break;
    }
}

static enum fr_status run(struct fr_cpu_kctx *k, struct fr_tensor *dst, enum act kind)
{
    struct act_job j = {.kind = kind, .a = fr_f32(dst->src[0]), .gy = dst->src[1] ? fr_f32(dst->src[1]) : NULL,
                        .y = fr_f32(dst), .slope = dst->params[0].f};
    fr_cpu_parallel_for(k, fr_nelements(dst), 8192, act_range, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_leaky_relu(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, LEAKY); }
enum fr_status fr_cpu_leaky_relu_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, LEAKY_BWD); }
enum fr_status fr_cpu_gelu(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, GELU); }
enum fr_status fr_cpu_gelu_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, GELU_BWD); }
enum fr_status fr_cpu_sigmoid(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, SIGMOID); }
enum fr_status fr_cpu_sigmoid_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, SIGMOID_BWD); }
enum fr_status fr_cpu_tanh(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, TANH); }
enum fr_status fr_cpu_tanh_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, TANH_BWD); }
enum fr_status fr_cpu_relu6(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, RELU6); }
enum fr_status fr_cpu_relu6_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, RELU6_BWD); }
enum fr_status fr_cpu_hardsigmoid(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, HSIG); }
enum fr_status fr_cpu_hardsigmoid_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, HSIG_BWD); }
enum fr_status fr_cpu_hardswish(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, HSWISH); }
enum fr_status fr_cpu_hardswish_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, HSWISH_BWD); }
enum fr_status fr_cpu_silu(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, SILU); }
enum fr_status fr_cpu_silu_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, SILU_BWD); }
