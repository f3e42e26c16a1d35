/* Internal helpers shared by the op constructors, the planner, the backends and the backward rules. */
#ifndef FRUGAL_INTERNAL_H
#define FRUGAL_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/backend.h"
#include "frugal/graph.h"
#include "frugal/ops.h"
#include "frugal/tensor.h"

/* internal flag: set by fr_graph_backward on tensors whose gradient is wanted */
#define FR_FLAG_NEEDS_GRAD (1u << 15)

#define FR_UNUSED(x) ((void)(x))
#define FR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FR_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Records a construction error on the context (and fr_last_error()) and returns NULL. */
struct fr_tensor *fr_ctx_fail(struct fr_ctx *ctx, enum fr_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new node of `op` with contiguous shape `ne` and sources src[0..n_src). Any NULL source makes the
 * result NULL (errors propagate through chains of constructors). */
struct fr_tensor *fr_node_new(struct fr_ctx *ctx, enum fr_op op, enum fr_dtype type, int ndim, const int64_t *ne,
                              int n_src, struct fr_tensor *const *src);
/* A view node of `a` with the given shape, byte strides and extra byte offset. */
struct fr_tensor *fr_view_new(struct fr_ctx *ctx, struct fr_tensor *a, int ndim, const int64_t *ne,
                              const int64_t *nb, size_t offs);
/* Sets contiguous strides for t's shape. */
void fr_set_contiguous_strides(struct fr_tensor *t);
/* Normalises a possibly negative axis; -1 if out of range. */
int fr_axis(const struct fr_tensor *t, int axis);
/* Numpy broadcast of two shapes into out (ndim returned through *ndim); false if incompatible. */
bool fr_broadcast_shape(const struct fr_tensor *a, const struct fr_tensor *b, int *ndim, int64_t *out);
/* Strides of `t` seen as a tensor of shape (ndim, ne) under broadcasting (0 on broadcast dims). */
void fr_broadcast_strides(const struct fr_tensor *t, int ndim, const int64_t *ne, int64_t *nb);
/* Ensures a contiguous input for kernels that need one (inserts CONT when needed). */
struct fr_tensor *fr_need_cont(struct fr_ctx *ctx, struct fr_tensor *a);

/* The tensor whose storage `t` uses (follows views to the root). */
struct fr_tensor *fr_storage_root(struct fr_tensor *t);

/* --- backward rules: fr_bwd_<bwd>(ctx, node, gy) add gradient contributions to each source that
 * has FR_FLAG_NEEDS_GRAD via fr_grad_acc(). --- */
typedef enum fr_status (*fr_bwd_fn)(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy);
#define FR_OP(ENUM, name, n_src, bwd) \
    enum fr_status fr_bwd_##bwd(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy);
#include "frugal/ops.def"
#undef FR_OP
/* true if t's gradient is wanted */
static inline bool fr_needs_grad(const struct fr_tensor *t) { return t && (t->flags & FR_FLAG_NEEDS_GRAD); }
/* t->grad += g, reducing broadcast dims of g to t's shape first. */
enum fr_status fr_grad_acc(struct fr_ctx *ctx, struct fr_tensor *t, struct fr_tensor *g);

/* --- per-op metadata from the table --- */
int fr_op_n_src(enum fr_op op);
fr_bwd_fn fr_op_bwd(enum fr_op op);

/* The context takes ownership of `buf` (freed with the context). */
enum fr_status fr_ctx_adopt_buffer(struct fr_ctx *ctx, struct fr_buffer *buf);

/* Batch-norm nodes normalise with batch statistics (and update the running ones) only in training and
 * when the layer is not frozen: a frozen weight (forward) or params[2].i (backward nodes) means eval. */
bool fr_batchnorm_batch_stats(const struct fr_tensor *node, const struct fr_exec *ex);
/* The batch-norm node `bn` (fr_batchnorm's result) with a ReLU applied in its kernel: relu(bn) without a
 * tensor of its own. Returns bn (NULL stays NULL). */
struct fr_tensor *fr_batchnorm_fuse_relu(struct fr_tensor *bn);

/* --- errors --- */
enum fr_status fr_verror(enum fr_status s, const char *fmt, va_list ap);

/* Host element access for generic strided loops. */
static inline char *fr_elem_ptr(char *base, const int64_t *nb, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return base + i0 * nb[0] + i1 * nb[1] + i2 * nb[2] + i3 * nb[3];
}

#endif
