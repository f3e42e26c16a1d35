/* Elementwise ops with numpy broadcasting (add, sub, mul, div, scale, relu) and their gradients. */
#include "core/internal.h"

static struct fr_tensor *binary(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *a, struct fr_tensor *b)
{
    if (!a || !b)
        return NULL;
    int ndim;
    int64_t ne[FR_MAX_DIMS];
    if (a->type != FR_F32 || b->type != FR_F32)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "%s: needs f32 inputs, got %s and %s", fr_op_name(op),
                           fr_dtype_name(a->type), fr_dtype_name(b->type));
    if (!fr_broadcast_shape(a, b, &ndim, ne)) {
        char sa[64], sb[64];
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: shapes %s ('%s') and %s ('%s') do not broadcast",
                           fr_op_name(op), fr_tensor_shape_str(a, sa, sizeof sa), a->name,
                           fr_tensor_shape_str(b, sb, sizeof sb), b->name);
    }
    return fr_node_new(ctx, op, FR_F32, ndim, ne, 2, (struct fr_tensor *[]){a, b});
}

struct fr_tensor *fr_add(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b) { return binary(ctx, FR_OP_ADD, a, b); }
struct fr_tensor *fr_sub(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b) { return binary(ctx, FR_OP_SUB, a, b); }
struct fr_tensor *fr_mul(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b) { return binary(ctx, FR_OP_MUL, a, b); }
struct fr_tensor *fr_div(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b) { return binary(ctx, FR_OP_DIV, a, b); }

struct fr_tensor *fr_scale_add(struct fr_ctx *ctx, struct fr_tensor *a, float s, float b)
{
    if (!a)
        return NULL;
    if (a->type != FR_F32)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "scale: needs f32, got %s", fr_dtype_name(a->type));
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_SCALE, FR_F32, a->ndim, a->ne, 1, &a);
    if (t) {
        t->params[0].f = s;
        t->params[1].f = b;
    }
    return t;
}

struct fr_tensor *fr_scale(struct fr_ctx *ctx, struct fr_tensor *a, float s) { return fr_scale_add(ctx, a, s, 0.0f); }

struct fr_tensor *fr_relu(struct fr_ctx *ctx, struct fr_tensor *a)
{
    if (!a)
        return NULL;
    if (a->type != FR_F32)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "relu: needs f32, got %s", fr_dtype_name(a->type));
    return fr_node_new(ctx, FR_OP_RELU, FR_F32, a->ndim, a->ne, 1, &a);
}

enum fr_status fr_bwd_add(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    enum fr_status st = FR_STATUS_OK;
    if (fr_needs_grad(node->src[0]))
        st = fr_grad_acc(ctx, node->src[0], gy);
    if (st == FR_STATUS_OK && fr_needs_grad(node->src[1]))
        st = fr_grad_acc(ctx, node->src[1], gy);
    return st;
}

enum fr_status fr_bwd_sub(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    enum fr_status st = FR_STATUS_OK;
    if (fr_needs_grad(node->src[0]))
        st = fr_grad_acc(ctx, node->src[0], gy);
    if (st == FR_STATUS_OK && fr_needs_grad(node->src[1]))
        st = fr_grad_acc(ctx, node->src[1], fr_scale(ctx, gy, -1.0f));
    return st;
}

enum fr_status fr_bwd_mul(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0], *b = node->src[1];
    enum fr_status st = FR_STATUS_OK;
    if (fr_needs_grad(a))
        st = fr_grad_acc(ctx, a, fr_mul(ctx, gy, b));
    if (st == FR_STATUS_OK && fr_needs_grad(b))
        st = fr_grad_acc(ctx, b, fr_mul(ctx, gy, a));
    return st;
}

enum fr_status fr_bwd_div(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0], *b = node->src[1];
    enum fr_status st = FR_STATUS_OK;
    if (fr_needs_grad(a))
        st = fr_grad_acc(ctx, a, fr_div(ctx, gy, b));
    /* d(a/b)/db = -(a/b)/b = -y/b */
    if (st == FR_STATUS_OK && fr_needs_grad(b))
        st = fr_grad_acc(ctx, b, fr_scale(ctx, fr_div(ctx, fr_mul(ctx, gy, node), b), -1.0f));
    return st;
}

enum fr_status fr_bwd_scale(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    if (!fr_needs_grad(node->src[0]))
        return FR_STATUS_OK;
    return fr_grad_acc(ctx, node->src[0], fr_scale(ctx, gy, node->params[0].f));
}

enum fr_status fr_bwd_relu(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0];
    if (!fr_needs_grad(a))
        return FR_STATUS_OK;
    /* from the output: y > 0 exactly where x > 0, and the input need not be kept for the backward (a conv's
     * batch-norm output dies at its ReLU) */
    return fr_grad_acc(ctx, a, fr_node_new(ctx, FR_OP_RELU_BWD, FR_F32, a->ndim, a->ne, 2, (struct fr_tensor *[]){node, gy}));
}
