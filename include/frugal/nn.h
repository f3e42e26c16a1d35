/* Layer ops for networks: conv2d (groups, dilation), pooling (padding, ceil_mode, adaptive), activations,
 * batch-norm, dropout and drop-path (f32, NCHW, PyTorch semantics and parameter layouts). Each constructor returns a new graph node, or NULL with the
 * reason in fr_last_error() (and fr_ctx_status()) on a bad shape or argument.
 *
 *   struct fr_tensor *h = fr_conv2d(ctx, x, w, b, 1, 1);                      // 3x3, stride 1, pad 1
 *   h = fr_conv2d_ex(ctx, x, w, b, &(struct fr_conv2d_params){.pad_h = 1, .pad_w = 1, .relu = true});
 *   h = fr_maxpool2d(ctx, h, 2, 2, 0);
 *   h = fr_maxpool2d_ex(ctx, h, &(struct fr_pool2d_params){.kernel = 3, .stride = 2, .pad = 1, .ceil_mode = true});
 *   h = fr_batchnorm(ctx, h, bn_w, bn_b, bn_rm, bn_rv, 1e-5f, 0.1f);          // mode from the graph
 *   h = fr_dropout(ctx, h, 0.5f);                                              // Philox mask, train only
 */
#ifndef FRUGAL_NN_H
#define FRUGAL_NN_H

#include "frugal/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Convolution settings; a zero stride/dilation/groups means 1, so designated initialisers only name
 * what differs from PyTorch's defaults. relu = true applies ReLU to the output inside the kernel. */
struct fr_conv2d_params {
    int stride_h, stride_w;
    int pad_h, pad_w;
    int dil_h, dil_w;
    int groups;
    bool relu;
};

/* y[N,O,OH,OW] = conv(x[N,C,H,W], w[O,C/groups,KH,KW]) + bias[O] (bias may be NULL);
 * OH = (H + 2·pad − dil·(KH−1) − 1) / stride + 1 (floor), as torch.nn.Conv2d. */
struct fr_tensor *fr_conv2d_ex(struct fr_ctx *ctx, struct fr_tensor *x, struct fr_tensor *w, struct fr_tensor *bias,
                               const struct fr_conv2d_params *p);
/* Square stride and padding, no dilation, one group. */
struct fr_tensor *fr_conv2d(struct fr_ctx *ctx, struct fr_tensor *x, struct fr_tensor *w, struct fr_tensor *bias,
                            int stride, int padding);

/* Pooling over [N,C,H,W] with a square window (floor output size, as PyTorch's ceil_mode=False).
 * stride <= 0 means stride = kernel. Max pooling pads with −inf (padding <= kernel/2); average pooling
 * counts the zero padding in the divisor (PyTorch's count_include_pad=True). */
struct fr_tensor *fr_maxpool2d(struct fr_ctx *ctx, struct fr_tensor *x, int kernel, int stride, int padding);
struct fr_tensor *fr_avgpool2d(struct fr_ctx *ctx, struct fr_tensor *x, int kernel, int stride, int padding);
/* All of torch.nn.MaxPool2d/AvgPool2d's settings for a square window: ceil_mode rounds the output size
 * up (a last window starting inside the input or its left padding), exclude_pad is
 * count_include_pad=False (the divisor counts only input elements; average pooling only). */
struct fr_pool2d_params {
    int kernel, stride, pad; /* stride <= 0 means stride = kernel */
    bool ceil_mode, exclude_pad;
    bool keep_index; /* max: store each window's argmax (an i32 node) for the backward (training graphs) */
};
struct fr_tensor *fr_maxpool2d_ex(struct fr_ctx *ctx, struct fr_tensor *x, const struct fr_pool2d_params *p);
struct fr_tensor *fr_avgpool2d_ex(struct fr_ctx *ctx, struct fr_tensor *x, const struct fr_pool2d_params *p);
/* [N,C,H,W] -> [N,C,oh,ow]: output (i, j) averages rows [⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉) and the same for
 * columns (torch.nn.AdaptiveAvgPool2d((oh, ow))). */
struct fr_tensor *fr_adaptive_avgpool2d(struct fr_ctx *ctx, struct fr_tensor *x, int oh, int ow);
/* [N,C,H,W] -> [N,C,1,1] mean over H,W (adaptive_avg_pool2d(x, 1)). */
struct fr_tensor *fr_global_avgpool2d(struct fr_ctx *ctx, struct fr_tensor *x);

/* Activations (elementwise, any shape). GELU is the exact erf form, PyTorch's default
 * (approximate='none'): x·½·(1 + erf(x/√2)). */
struct fr_tensor *fr_leaky_relu(struct fr_ctx *ctx, struct fr_tensor *x, float slope);
struct fr_tensor *fr_gelu(struct fr_ctx *ctx, struct fr_tensor *x);
struct fr_tensor *fr_sigmoid(struct fr_ctx *ctx, struct fr_tensor *x);
struct fr_tensor *fr_tanh(struct fr_ctx *ctx, struct fr_tensor *x);
/* The torchvision activations: ReLU6 min(max(x,0),6), hardsigmoid relu6(x+3)/6, hardswish x·relu6(x+3)/6
 * (MobileNetV3), SiLU x·sigmoid(x) (EfficientNet); gradients as PyTorch's at the kinks. */
struct fr_tensor *fr_relu6(struct fr_ctx *ctx, struct fr_tensor *x);
struct fr_tensor *fr_hardsigmoid(struct fr_ctx *ctx, struct fr_tensor *x);
struct fr_tensor *fr_hardswish(struct fr_ctx *ctx, struct fr_tensor *x);
struct fr_tensor *fr_silu(struct fr_ctx *ctx, struct fr_tensor *x);

/* Batch normalisation over channel axis 1 of x [N,C], [N,C,L] or [N,C,H,W] (BatchNorm1d/2d).
 * weight, bias, running_mean, running_var are [C]. In training (fr_graph_set_training) it normalises
 * with the batch mean and biased variance and updates the running statistics in place
 * (r = (1−momentum)·r + momentum·batch, the running variance unbiased), so running_mean/var must be
 * FR_FLAG_STATE tensors; in eval it uses the running statistics. PyTorch: eps 1e-5, momentum 0.1. */
struct fr_tensor *fr_batchnorm(struct fr_ctx *ctx, struct fr_tensor *x, struct fr_tensor *weight,
                               struct fr_tensor *bias, struct fr_tensor *running_mean,
                               struct fr_tensor *running_var, float eps, float momentum);
/* The same over a batch split across the ranks of a job (frugal/dist.h: sync batch-norm): x holds this rank's
 * rows of a batch of global_batch rows; training normalises with the whole batch's mean and variance (every rank's
 * statistics combined in rank order) and so does the gradient. A frozen weight: fr_batchnorm. */
struct fr_tensor *fr_batchnorm_sync(struct fr_ctx *ctx, struct fr_tensor *x, struct fr_tensor *weight,
                                    struct fr_tensor *bias, struct fr_tensor *running_mean,
                                    struct fr_tensor *running_var, float eps, float momentum, int64_t global_batch);

/* Eval-mode batch-norm as a per-channel affine map, [2, C]: row 0 scale = weight/√(running_var + eps), row 1
 * shift = bias − running_mean·scale (y = x·scale + shift). Eval graphs fold it into the preceding conv. */
struct fr_tensor *fr_batchnorm_fold(struct fr_ctx *ctx, struct fr_tensor *weight, struct fr_tensor *bias,
                                    struct fr_tensor *running_mean, struct fr_tensor *running_var, float eps);

/* Dropout with drop probability p in [0, 1): in training, element i is kept when Philox draw
 * (seed, FR_RNG_DROPOUT, step, salt, i) >= p and scaled by 1/(1−p); identity in eval. The salt is the
 * node's id so two dropout layers draw different masks; fr_dropout_salted picks it explicitly. */
struct fr_tensor *fr_dropout(struct fr_ctx *ctx, struct fr_tensor *x, float p);
struct fr_tensor *fr_dropout_salted(struct fr_ctx *ctx, struct fr_tensor *x, float p, uint32_t salt);

/* Stochastic depth on a residual branch x [N,...]: in training, sample n is kept when Philox draw
 * (seed, FR_RNG_DROPPATH, step, salt, n) < survival, kept samples scaled by 1/survival, the others
 * zeroed; identity in eval. survival in (0, 1]. Add the result to the shortcut with fr_add. */
struct fr_tensor *fr_drop_path(struct fr_ctx *ctx, struct fr_tensor *x, float survival);
struct fr_tensor *fr_drop_path_salted(struct fr_ctx *ctx, struct fr_tensor *x, float survival, uint32_t salt);

#ifdef __cplusplus
}
#endif
#endif
