/* Constructors of the core ops. Each returns a new node (NULL and fr_ctx_status() on a bad shape,
 * with the reason in fr_last_error()). Axes may be negative (counted from the last). */
#ifndef FRUGAL_OPS_H
#define FRUGAL_OPS_H

#include "frugal/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* layout (views share storage; a non-contiguous input to reshape gets a contiguous copy first) */
struct fr_tensor *fr_reshape(struct fr_ctx *ctx, struct fr_tensor *a, int ndim, const int64_t *ne);
struct fr_tensor *fr_permute(struct fr_ctx *ctx, struct fr_tensor *a, const int *axes);
struct fr_tensor *fr_transpose(struct fr_ctx *ctx, struct fr_tensor *a, int ax0, int ax1);
struct fr_tensor *fr_slice(struct fr_ctx *ctx, struct fr_tensor *a, int axis, int64_t start, int64_t len);
struct fr_tensor *fr_broadcast_to(struct fr_ctx *ctx, struct fr_tensor *a, int ndim, const int64_t *ne);
struct fr_tensor *fr_cont(struct fr_ctx *ctx, struct fr_tensor *a);
struct fr_tensor *fr_flatten(struct fr_ctx *ctx, struct fr_tensor *a); /* [N, ...] -> [N, rest] */
struct fr_tensor *fr_fill(struct fr_ctx *ctx, enum fr_dtype type, int ndim, const int64_t *ne, float v);

/* elementwise, numpy broadcasting (shapes aligned at the last dim) */
struct fr_tensor *fr_add(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b);
struct fr_tensor *fr_sub(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b);
struct fr_tensor *fr_mul(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b);
struct fr_tensor *fr_div(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b);
struct fr_tensor *fr_scale(struct fr_ctx *ctx, struct fr_tensor *a, float s);
struct fr_tensor *fr_scale_add(struct fr_ctx *ctx, struct fr_tensor *a, float s, float b);
struct fr_tensor *fr_relu(struct fr_ctx *ctx, struct fr_tensor *a);

/* C = op(A) * op(B), 2D f32 */
struct fr_tensor *fr_matmul(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b, bool trans_a,
                            bool trans_b);

/* reductions over one axis, kept with size 1 */
struct fr_tensor *fr_sum(struct fr_ctx *ctx, struct fr_tensor *a, int axis);
struct fr_tensor *fr_mean(struct fr_ctx *ctx, struct fr_tensor *a, int axis);
struct fr_tensor *fr_max(struct fr_ctx *ctx, struct fr_tensor *a, int axis);
/* sum of broadcast dims so the result has shape `ne` (the reverse of fr_broadcast_to) */
struct fr_tensor *fr_sum_to(struct fr_ctx *ctx, struct fr_tensor *a, int ndim, const int64_t *ne);

/* Σ of a over the ranks of the job (frugal/dist.h), added in rank order: the same bits on every rank; a job of one
 * process: a copy. Its gradient is the rank sum of the gradients (every rank's loss depends on every rank's a). */
struct fr_tensor *fr_rank_sum(struct fr_ctx *ctx, struct fr_tensor *a);

struct fr_tensor *fr_softmax(struct fr_ctx *ctx, struct fr_tensor *a, int axis);
struct fr_tensor *fr_log_softmax(struct fr_ctx *ctx, struct fr_tensor *a, int axis);

/* dtype conversion (f32 <- u8/i32/f32, u8 <- f32 rounded and clamped, i32 <- f32 truncated) */
struct fr_tensor *fr_convert(struct fr_ctx *ctx, struct fr_tensor *a, enum fr_dtype type);
/* u8 -> f32: y = (x * scale - mean[c]) / std[c] with c the index along channel_axis (n_ch <= 4). */
struct fr_tensor *fr_normalize(struct fr_ctx *ctx, struct fr_tensor *a, int channel_axis, float scale,
                               const float *mean, const float *std, int n_ch);

#ifdef __cplusplus
}
#endif
#endif
