/* Loss ops: constructors with shape checks (cross-entropy, soft CE, distillation, MSE), their backward
 * rules, and the host-side label/loss checks of frugal/loss.h. */
#include <math.h>

#include "core/internal.h"
#include "frugal/loss.h"

static const int64_t one[1] = {1};

static bool check_logits(struct fr_ctx *ctx, const char *op, struct fr_tensor *z)
{
    if (z->type != FR_F32 || z->ndim != 2) {
        char sh[64];
        fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: logits '%s' must be f32 [N,K], got %s", op, z->name,
                    fr_tensor_shape_str(z, sh, sizeof sh));
        return false;
    }
    return true;
}

static bool check_labels(struct fr_ctx *ctx, const char *op, struct fr_tensor *z, struct fr_tensor *y)
{
    if (y->type != FR_I32 || y->ndim != 1 || y->ne[0] != z->ne[0]) {
        char sh[64];
        fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: labels '%s' must be i32 [%lld], got %s", op, y->name,
                    (long long)z->ne[0], fr_tensor_shape_str(y, sh, sizeof sh));
        return false;
    }
    return true;
}

static bool check_weights(struct fr_ctx *ctx, const char *op, struct fr_tensor *z, struct fr_tensor *w)
{
    if (w && (w->type != FR_F32 || fr_nelements(w) != z->ne[0])) {
        char sh[64];
        fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: weights '%s' must be f32 [%lld], got %s", op, w->name,
                    (long long)z->ne[0], fr_tensor_shape_str(w, sh, sizeof sh));
        return false;
    }
    return true;
}

/* a loss node; src slots are fixed so optional sources may be NULL */
static struct fr_tensor *loss_node(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *const *src, int n_src)
{
    struct fr_tensor *t = fr_node_new(ctx, op, FR_F32, 1, one, 1, src);
    if (t)
        for (int s = 1; s < n_src; s++)
            t->src[s] = src[s];
    return t;
}

struct fr_tensor *fr_cross_entropy(struct fr_ctx *ctx, struct fr_tensor *logits, struct fr_tensor *labels,
                                   struct fr_tensor *weights, float label_smoothing)
{
    if (!logits || !labels)
        return NULL;
    const char *op = "cross_entropy";
    if (!check_logits(ctx, op, logits) || !check_labels(ctx, op, logits, labels) ||
        !check_weights(ctx, op, logits, weights))
        return NULL;
    if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "%s: label smoothing %g outside [0,1]", op,
                           (double)label_smoothing);
    struct fr_tensor *src[3] = {fr_need_cont(ctx, logits), fr_need_cont(ctx, labels), fr_need_cont(ctx, weights)};
    struct fr_tensor *t = loss_node(ctx, FR_OP_CROSS_ENTROPY, src, 3);
    if (t)
        t->params[0].f = label_smoothing;
    return t;
}

struct fr_tensor *fr_soft_cross_entropy(struct fr_ctx *ctx, struct fr_tensor *logits, struct fr_tensor *targets,
                                        struct fr_tensor *weights)
{
    if (!logits || !targets)
        return NULL;
    const char *op = "soft_cross_entropy";
    if (!check_logits(ctx, op, logits) || !check_weights(ctx, op, logits, weights))
        return NULL;
    if (targets->type != FR_F32 || !fr_same_shape(targets, logits))
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: targets '%s' must be f32 of the logits' shape", op,
                           targets->name);
    struct fr_tensor *src[3] = {fr_need_cont(ctx, logits), fr_need_cont(ctx, targets), fr_need_cont(ctx, weights)};
    return loss_node(ctx, FR_OP_SOFT_CROSS_ENTROPY, src, 3);
}

struct fr_tensor *fr_distill_loss(struct fr_ctx *ctx, struct fr_tensor *student_logits,
                                  struct fr_tensor *teacher_logits, struct fr_tensor *labels,
                                  struct fr_tensor *weights, float alpha, float temperature)
{
    if (!student_logits || !teacher_logits)
        return NULL;
    const char *op = "distill";
    if (!check_logits(ctx, op, student_logits) || !check_weights(ctx, op, student_logits, weights))
        return NULL;
    if (teacher_logits->type != FR_F32 || !fr_same_shape(teacher_logits, student_logits))
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "%s: teacher logits '%s' must match the student's shape", op,
                           teacher_logits->name);
    if (!(alpha >= 0.0f && alpha <= 1.0f) || !(temperature > 0.0f) || !isfinite(temperature))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "%s: need 0 <= alpha <= 1 and T > 0 (got %g, %g)", op,
                           (double)alpha, (double)temperature);
    if (labels && !check_labels(ctx, op, student_logits, labels))
        return NULL;
    if (!labels && alpha != 1.0f)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "%s: alpha %g < 1 needs hard labels", op, (double)alpha);
    struct fr_tensor *src[4] = {fr_need_cont(ctx, student_logits), fr_need_cont(ctx, teacher_logits),
                                fr_need_cont(ctx, labels), fr_need_cont(ctx, weights)};
    struct fr_tensor *t = loss_node(ctx, FR_OP_DISTILL, src, 4);
    if (t) {
        t->params[0].f = alpha;
        t->params[1].f = temperature;
    }
    return t;
}

struct fr_tensor *fr_pseudo_targets(struct fr_ctx *ctx, struct fr_tensor *logits, float threshold, float temperature)
{
    if (!logits)
        return NULL;
    if (!check_logits(ctx, "pseudo_targets", logits))
        return NULL;
    if (!(threshold >= 0.0f && threshold <= 1.0f) || !(temperature >= 0.0f) || !isfinite(temperature))
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT,
                           "pseudo_targets: threshold %g must be in [0, 1] and the temperature %g >= 0",
                           (double)threshold, (double)temperature);
    struct fr_tensor *src = fr_need_cont(ctx, logits);
    struct fr_tensor *t = fr_node_new(ctx, FR_OP_PSEUDO_TARGETS, FR_F32, logits->ndim, logits->ne, 1, &src);
    if (t) {
        t->params[0].f = threshold;
        t->params[1].f = temperature;
        fr_tensor_set_name(t, "%.44s (pseudo targets)", logits->name);
    }
    return t;
}

struct fr_tensor *fr_mse_loss(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b, struct fr_tensor *weights)
{
    if (!a || !b)
        return NULL;
    if (a->type != FR_F32 || b->type != FR_F32 || !fr_same_shape(a, b))
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "mse: '%s' and '%s' must be f32 of the same shape", a->name, b->name);
    if (!check_weights(ctx, "mse", a, weights))
        return NULL;
    struct fr_tensor *src[3] = {fr_need_cont(ctx, a), fr_need_cont(ctx, b), fr_need_cont(ctx, weights)};
    return loss_node(ctx, FR_OP_MSE, src, 3);
}

/* gradient node: the forward's sources (with their NULL slots) then gy in slot n_fwd */
static struct fr_tensor *bwd_node(struct fr_ctx *ctx, enum fr_op op, struct fr_tensor *node, int n_fwd,
                                  struct fr_tensor *gy, struct fr_tensor *like)
{
    struct fr_tensor *t = fr_node_new(ctx, op, FR_F32, like->ndim, like->ne, 1, &node->src[0]);
    if (!t || !gy)
        return NULL;
    for (int s = 1; s < n_fwd; s++)
        t->src[s] = node->src[s];
    t->src[n_fwd] = gy;
    memcpy(t->params, node->params, sizeof t->params);
    return t;
}

enum fr_status fr_bwd_cross_entropy(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *z = node->src[0];
    if (!fr_needs_grad(z))
        return FR_STATUS_OK;
    return fr_grad_acc(ctx, z, bwd_node(ctx, FR_OP_CROSS_ENTROPY_BWD, node, 3, gy, z));
}

enum fr_status fr_bwd_soft_cross_entropy(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *z = node->src[0];
    if (!fr_needs_grad(z))
        return FR_STATUS_OK;
    return fr_grad_acc(ctx, z, bwd_node(ctx, FR_OP_SOFT_CROSS_ENTROPY_BWD, node, 3, gy, z));
}

enum fr_status fr_bwd_distill(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *z = node->src[0]; /* the teacher (src[1]) is a constant by definition */
    if (!fr_needs_grad(z))
        return FR_STATUS_OK;
    return fr_grad_acc(ctx, z, bwd_node(ctx, FR_OP_DISTILL_BWD, node, 4, gy, z));
}

enum fr_status fr_bwd_mse(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    struct fr_tensor *a = node->src[0], *b = node->src[1];
    if (!fr_needs_grad(a) && !fr_needs_grad(b))
        return FR_STATUS_OK;
    struct fr_tensor *ga = bwd_node(ctx, FR_OP_MSE_BWD, node, 3, gy, a);
    enum fr_status st = FR_STATUS_OK;
    if (fr_needs_grad(a))
        st = fr_grad_acc(ctx, a, ga);
    if (st == FR_STATUS_OK && fr_needs_grad(b))
        st = fr_grad_acc(ctx, b, fr_scale(ctx, ga, -1.0f));
    return st;
}

enum fr_status fr_labels_check(const int32_t *labels, int64_t n, int64_t n_classes, const char *what)
{
    return fr_labels_check_ex(labels, n, n_classes, false, what);
}

enum fr_status fr_labels_check_ex(const int32_t *labels, int64_t n, int64_t n_classes, bool allow_unlabeled,
                                  const char *what)
{
    for (int64_t i = 0; i < n; i++)
        if ((labels[i] < 0 || labels[i] >= n_classes) && !(allow_unlabeled && labels[i] == -1))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: label %d of sample %lld is outside [0,%lld)",
                            what ? what : "labels", labels[i], (long long)i, (long long)n_classes);
    return FR_STATUS_OK;
}

enum fr_status fr_loss_check(float loss, const char *what)
{
    if (!isfinite(loss))
        return fr_error(FR_STATUS_NUMERIC, "%s: loss is %s (diverged, or a label outside the class range)",
                        what ? what : "loss", isnan(loss) ? "NaN" : "Inf");
    return FR_STATUS_OK;
}
