/* Activations beyond ReLU: leaky ReLU, GELU (erf form), sigmoid, tanh, ReLU6, hardsigmoid, hardswish, SiLU;
 * constructors and backward rules. */
#include "core/internal.h"
#include "frugal/nn.h"

static struct fr_tensor *unary(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *x)
{
    if (!x)
        return NULL;
    if (x->type != FR_F32)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "%s '%s': needs f32, got %s", fr_op_name(op), x->name,
                           fr_dtype_name(x->type));
    x = fr_need_cont(ctx, x);
    return fr_node_new(ctx, op, FR_F32, x ? x->ndim : 0, x ? x->ne : NULL, 1, &x);
}

struct fr_tensor *fr_leaky_relu(struct fr_ctx *ctx, struct fr_tensor *x, float slope)
{
    struct fr_tensor *t = unary(ctx, FR_OP_LEAKY_RELU, x);
    if (t)
        t->params[0].f = slope;
    return t;
}

struct fr_tensor *fr_gelu(struct fr_ctx *ctx, struct fr_tensor *x) { return unary(ctx, FR_OP_GELU, x); }
struct fr_tensor *fr_sigmoid(struct fr_ctx *ctx, struct fr_tensor *x) { return unary(ctx, FR_OP_SIGMOID, x); }
struct fr_tensor *fr_tanh(struct fr_ctx *ctx, struct fr_tensor *x) { return unary(ctx, FR_OP_TANH, x); }
struct fr_tensor *fr_relu6(struct fr_ctx *ctx, struct fr_tensor *x) { return unary(ctx, FR_OP_RELU6, x); }
struct fr_tensor *fr_hardsigmoid(struct fr_ctx *ctx, struct fr_tensor *x) { return unary(ctx, FR_OP_HARDSIGMOID, x); }
struct fr_tensor *fr_hardswish(struct fr_ctx *ctx, struct fr_tensor *x) { return unary(ctx, FR_OP_HARDSWISH, x); }
struct fr_tensor *fr_silu(struct fr_ctx *ctx, struct fr_tensor *x) { return unary(ctx, FR_OP_SILU, x); }

/* gradient node (a, gy) -> same shape as a; a is the input or, for sigmoid/tanh, the output */
static enum fr_status bwd(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy, enum fr_op op,
                          struct fr_tensor *a)
{
    struct fr_tensor *x = node->src[0];
    if (!fr_needs_grad(x))
        return FR_STATUS_OK;
    gy = fr_need_cont(ctx, gy);
    struct fr_tensor *g = fr_node_new(ctx, op, FR_F32, x->ndim, x->ne, 2, (struct fr_tensor *[]){a, gy});
    if (g)
        g->params[0] = node->params[0];
    return fr_grad_acc(ctx, x, g);
}

enum fr_status fr_bwd_leaky_relu(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd(ctx, node, gy, FR_OP_LEAKY_RELU_BWD, node->src[0]);
}
enum fr_status fr_bwd_gelu(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd(ctx, node, gy, FR_OP_GELU_BWD, node->src[0]);
}
/* sigmoid and tanh: the derivative is cheapest from the output */
enum fr_status fr_bwd_sigmoid(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd(ctx, node, gy, FR_OP_SIGMOID_BWD, node);
}
enum fr_status fr_bwd_tanh(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd(ctx, node, gy, FR_OP_TANH_BWD, node);
}
/* the torchvision activations: the gradient from the input, but for relu6 from the output (y in (0, 6) exactly
 * where x is), so its input need not be kept */
enum fr_status fr_bwd_relu6(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd(ctx, node, gy, FR_OP_RELU6_BWD, node);
}
enum fr_status fr_bwd_hardsigmoid(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd(ctx, node, gy, FR_OP_HARDSIGMOID_BWD, node->src[0]);
}
enum fr_status fr_bwd_hardswish(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd(ctx, node, gy, FR_OP_HARDSWISH_BWD, node->src[0]);
}
enum fr_status fr_bwd_silu(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    return bwd(ctx, node, gy, FR_OP_SILU_BWD, node->src[0]);
}
