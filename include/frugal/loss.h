/* Losses as graph ops: cross-entropy (hard labels, label smoothing), soft-target cross-entropy, the
 * distillation loss, MSE; all numerically stable (log-sum-exp) and each a single f32 value.
 *
 *   struct fr_tensor *loss = fr_cross_entropy(ctx, logits, labels, NULL, 0.1f);
 *   fr_graph_backward(g, loss);
 *
 * Per-sample weights w [N] (pseudo-label confidence masks) are optional (NULL = all 1). The loss is
 *   L = (1/N) * sum_i w_i * l_i
 * i.e. the weighted sum divided by the batch size N, NOT by sum(w) (FixMatch-style masks: a batch in
 * which half the samples are masked out contributes half the gradient). For MSE, l_i is the mean of the
 * squared differences over the non-batch dims.
 *
 * Bad labels: a kernel cannot stop a graph mid-run, so a label outside [0,K) makes its sample's loss
 * (and gradient row) NaN; the loss is then NaN and fr_loss_check() reports it. Callers that know the
 * labels on the host should check them first with fr_labels_check(), which names the batch and sample.
 */
#ifndef FRUGAL_LOSS_H
#define FRUGAL_LOSS_H

#include "frugal/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Cross-entropy of logits [N,K] against i32 labels [N]. label_smoothing eps as PyTorch:
 * l_i = (1-eps) * (-log p_{i,y_i}) + eps * mean_k(-log p_{i,k}). */
struct fr_tensor *fr_cross_entropy(struct fr_ctx *ctx, struct fr_tensor *logits, struct fr_tensor *labels,
                                   struct fr_tensor *weights, float label_smoothing);

/* Cross-entropy against soft targets [N,K] (CutMix/MixUp labels, soft pseudo-labels):
 * l_i = -sum_k t_{i,k} log p_{i,k}. Targets are not differentiated. */
struct fr_tensor *fr_soft_cross_entropy(struct fr_ctx *ctx, struct fr_tensor *logits, struct fr_tensor *targets,
                                        struct fr_tensor *weights);

/* Hinton distillation: l_i = alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1-alpha) * CE(y_i, softmax(z_s)).
 * The teacher logits are a constant source (no gradient flows into them). labels may be NULL only when
 * alpha == 1; a label of -1 leaves that sample's hard term out (unlabeled transfer images).
 * Gradient of the soft part w.r.t. z_s: alpha * T * (p_s - p_t) / N. */
struct fr_tensor *fr_distill_loss(struct fr_ctx *ctx, struct fr_tensor *student_logits,
                                  struct fr_tensor *teacher_logits, struct fr_tensor *labels,
                                  struct fr_tensor *weights, float alpha, float temperature);

/* Confident predictions as targets (FixMatch): row i is onehot(argmax z_i) when temperature is 0, else
 * softmax(z_i / temperature), where the top probability of softmax(z_i) is >= threshold, and zeros elsewhere (a
 * masked row adds nothing to a soft cross-entropy). Not differentiated: the targets are constants of the step. */
struct fr_tensor *fr_pseudo_targets(struct fr_ctx *ctx, struct fr_tensor *logits, float threshold, float temperature);

/* Mean squared error between a and b (same shape [N,...]); both may be differentiated. */
struct fr_tensor *fr_mse_loss(struct fr_ctx *ctx, struct fr_tensor *a, struct fr_tensor *b, struct fr_tensor *weights);

/* Host checks for the training loop. `what` names the batch in the message (e.g. "batch 17"). */
enum fr_status fr_labels_check(const int32_t *labels, int64_t n, int64_t n_classes, const char *what);
/* The same, accepting -1 (an unlabeled image) when allow_unlabeled: the distillation loss treats a -1
 * label as "teacher targets only" (the (1-alpha) hard term is left out for that sample). */
enum fr_status fr_labels_check_ex(const int32_t *labels, int64_t n, int64_t n_classes, bool allow_unlabeled,
                                  const char *what);
enum fr_status fr_loss_check(float loss, const char *what);

#ifdef __cplusplus
}
#endif
#endif
