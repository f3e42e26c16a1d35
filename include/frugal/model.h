/* Models: a stack of layers with named parameters (PyTorch state_dict names and shapes, NCHW), the
 * built-in models t / s / m, initialisation, and a training-step builder (forward + loss + backward +
 * optimizer in one graph planned once, plus an eval graph sharing the same parameters).
 *
 *   struct fr_model *m;
 *   fr_model_builtin(ctx, "s", 1, 28, 28, 10, &m);          // or fr_model_new + fr_model_conv2d(...)...
 *   fr_model_alloc(m, backend);  fr_model_init(m, 42, FR_INIT_DEFAULT, NULL);
 *   struct fr_trainer_opts to;  fr_trainer_opts_init(&to);  to.batch = 64;
 *   struct fr_trainer *tr;  fr_trainer_new(m, backend, &to, &tr);
 *   float l;                            // images_f32: 64 f32 NCHW images, labels_i32: their 64 labels
 *   for (int64_t step = 0; step < steps; step++)
 *       fr_trainer_step(tr, images_f32, labels_i32, NULL, NULL, fr_schedule_lr(&sched, step), &l);
 *   fr_trainer_predict(tr, images_f32, 64, logits_out);
 *
 * Layers are added in order; a residual block is residual_begin ... residual_end: the branch output
 * goes through drop-path (stochastic depth) and is added to the block input (through a 1x1 conv +
 * batch-norm projection named "<block>.downsample.0/1", as torchvision's ResNet, when the shape changes). A shape that does not
 * fit is an error naming the layer.
 */
#ifndef FRUGAL_MODEL_H
#define FRUGAL_MODEL_H

#include "frugal/graph.h"
#include "frugal/io.h"
#include "frugal/loss.h"
#include "frugal/nn.h"
#include "frugal/optim.h"
#include "frugal/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fr_model;
struct fr_backend;

/* An empty model for inputs [N, c, h, w] whose parameters are created in ctx. */
struct fr_model *fr_model_new(struct fr_ctx *ctx, int c, int h, int w);
void fr_model_free(struct fr_model *m);

/* --- layers (name = the state_dict prefix, e.g. "conv1"; NULL for layers without parameters). Every
 * tensor name must be new: a layer named twice, or like an automatic projection ("<block>.downsample.0"),
 * is an error naming the tensor. --- */
enum fr_status fr_model_conv2d(struct fr_model *m, const char *name, int out_ch, int kernel, int stride, int pad,
                               bool bias);
/* torch.nn.Conv2d with a square kernel: groups (in and out channels divisible by it; groups = in channels
 * is a depthwise conv) and dilation (0 means 1). */
struct fr_model_conv {
    int out_ch, kernel, stride, pad, groups, dilation;
    bool bias;
};
enum fr_status fr_model_conv2d_ex(struct fr_model *m, const char *name, const struct fr_model_conv *c);
enum fr_status fr_model_linear(struct fr_model *m, const char *name, int out_features);
enum fr_status fr_model_batchnorm(struct fr_model *m, const char *name); /* eps 1e-5, momentum 0.1 */
enum fr_status fr_model_batchnorm_ex(struct fr_model *m, const char *name, float eps, float momentum);
/* Elementwise activations (frugal/nn.h). A ReLU right after a conv runs inside the conv kernel. */
enum fr_act {
    FR_ACT_RELU = 0, FR_ACT_RELU6, FR_ACT_HARDSWISH, FR_ACT_HARDSIGMOID, FR_ACT_SILU, FR_ACT_SIGMOID, FR_ACT_TANH,
    FR_ACT_GELU, FR_ACT_COUNT
};
const char *fr_act_name(enum fr_act a);         /* "relu6" (the model-file keyword) */
enum fr_status fr_model_activation(struct fr_model *m, enum fr_act act);
enum fr_status fr_model_relu(struct fr_model *m);
enum fr_status fr_model_maxpool(struct fr_model *m, int kernel, int stride);
enum fr_status fr_model_avgpool(struct fr_model *m, int kernel, int stride);
/* Pools with padding, ceil_mode and (average) exclude_pad; see fr_pool2d_params in frugal/nn.h. */
enum fr_status fr_model_pool(struct fr_model *m, bool max, const struct fr_pool2d_params *p);
enum fr_status fr_model_adaptive_avgpool(struct fr_model *m, int out_h, int out_w); /* keeps [N,C,oh,ow] */
enum fr_status fr_model_global_avgpool(struct fr_model *m); /* [N,C,H,W] -> [N,C] */
/* Squeeze-excitation (torchvision.ops.SqueezeExcitation): s = gate(fc2(act(fc1(mean over H,W)))), x·s per
 * channel; fc1/fc2 are 1x1 convs with bias named "<name>.fc1" (squeeze_ch outputs) and "<name>.fc2". */
enum fr_status fr_model_squeeze_excite(struct fr_model *m, const char *name, int squeeze_ch, enum fr_act act,
                                       enum fr_act gate);
enum fr_status fr_model_flatten(struct fr_model *m);        /* [N,C,H,W] -> [N,C*H*W] (C,H,W order) */
enum fr_status fr_model_dropout(struct fr_model *m, float p);
enum fr_status fr_model_residual_begin(struct fr_model *m, const char *name);
enum fr_status fr_model_residual_end(struct fr_model *m, float survival);

/* The input normalisation the model expects, (x − mean[c]) / std[c] on [0,1] pixels over n = the input's
 * channels (1..4) (ImageNet backbones: mean 0.485 0.456 0.406, std 0.229 0.224 0.225); a model file's
 * `normalize` line sets it. fr_model_forward does not apply it: the input stages do (struct fr_net takes
 * it as its mean/std, normalising on the device). n = 0 removes it; fr_model_normalization gives n
 * (0 = none) and fills mean/std when not NULL. */
enum fr_status fr_model_set_normalization(struct fr_model *m, int n, const float *mean, const float *std);
int fr_model_normalization(const struct fr_model *m, float mean[4], float std[4]);

/* Built-in models by name: "t" (tiny: conv 8 -> pool -> conv 16 -> pool -> linear), "s" (the reference
 * CNN of docs/reference.md §8, 422k parameters on 1x28x28), "m" (wider, batch-norm, residual blocks
 * with stochastic depth and dropout before the classifier: a Noisy Student student/teacher). */
enum fr_status fr_model_builtin(struct fr_ctx *ctx, const char *name, int c, int h, int w, int n_classes,
                                struct fr_model **out);
/* Noise overrides for the built-in models: dropout before the classifier (s, m: 0.5) and the survival
 * probability of the last residual block (m: 0.8, decaying linearly from 1). A negative value keeps the
 * default. fr_model_builtin is fr_model_builtin_ex with both negative. */
struct fr_model_opts {
    float dropout;
    float survival;
};
enum fr_status fr_model_builtin_ex(struct fr_ctx *ctx, const char *name, int c, int h, int w, int n_classes,
                                   const struct fr_model_opts *o, struct fr_model **out);

/* Model files (src/nn/modelfile.c): one layer per line, '#' starts a comment; names are the state_dict
 * prefixes (torchvision's for the backbones in tools/models/):
 *   conv NAME OUT_CH KERNEL STRIDE PAD [nobias] [groups=G] [dilation=D]   linear NAME OUT
 *   batchnorm NAME [eps=E] [momentum=M]   relu | relu6 | hardswish | hardsigmoid | silu | sigmoid | tanh | gelu
 *   maxpool K [S [P]] [ceil]   avgpool K [S [P]] [ceil] [exclude_pad]   adaptive_avgpool H [W]   gap   flatten
 *   dropout P   se NAME SQUEEZE_CH [ACT [GATE]] (default relu sigmoid)   residual NAME ... end [SURVIVAL]
 *   normalize MEAN... STD... (one of each per input channel)
 * The last layer must be linear (the head): its outputs become n_classes. `src` names the text in
 * errors ("model.txt:3: unknown layer 'convv' (valid: ...)"); a PyTorch layer frugal lacks is named as
 * such ("'layernorm': frugal has no layer normalisation op"). */
enum fr_status fr_model_from_text(struct fr_ctx *ctx, const char *text, const char *src, int c, int h, int w,
                                  int n_classes, struct fr_model **out);
enum fr_status fr_model_from_file(struct fr_ctx *ctx, const char *path, int c, int h, int w, int n_classes,
                                  struct fr_model **out);
/* The whole file as a NUL-terminated string (free()); at most 1 MiB of text. */
enum fr_status fr_model_read_text(const char *path, char **text);

/* --- parameters --- */
struct fr_model_entry {
    const char *name;
    struct fr_tensor *t; /* PARAM (trainable) or STATE (batch-norm running statistics) */
};
int fr_model_n_tensors(const struct fr_model *m);            /* params and state, state_dict order */
struct fr_model_entry fr_model_tensor(const struct fr_model *m, int i);
struct fr_tensor *fr_model_find(const struct fr_model *m, const char *name);
int64_t fr_model_n_params(const struct fr_model *m);         /* trainable elements */
int fr_model_n_classes(const struct fr_model *m);           /* outputs of the last layer */
/* The context holding the model's tensors. */
struct fr_ctx *fr_model_ctx(const struct fr_model *m);
/* Input shape given to fr_model_new. */
void fr_model_input_shape(const struct fr_model *m, int *c, int *h, int *w);
/* Sets/clears FR_FLAG_FROZEN on every parameter whose name starts with prefix; returns how many. */
int fr_model_freeze(struct fr_model *m, const char *prefix, bool frozen);
/* Replaces the last layer (which must be linear) by a new one with n_classes outputs, same name;
 * call before building graphs. The new tensors get storage from the next fr_model_alloc. */
enum fr_status fr_model_replace_head(struct fr_model *m, int n_classes);

/* Storage for every parameter/state tensor without one (one buffer, fr_ctx_alloc). */
enum fr_status fr_model_alloc(struct fr_model *m, struct fr_backend *backend);

enum fr_init { FR_INIT_DEFAULT = 0, FR_INIT_KAIMING_NORMAL };
/* DEFAULT: PyTorch's Conv2d/Linear reset_parameters: weights and biases uniform in +-1/sqrt(fan_in)
 * (kaiming_uniform with a = sqrt(5)); KAIMING_NORMAL: weights N(0, 2/fan_in) (fan_in, ReLU), biases 0.
 * Batch-norm: weight 1, bias 0, running mean 0, running var 1. Values are a pure function of (seed,
 * position of the tensor in the model, element index) via Philox (FR_RNG_INIT). `prefix` != NULL
 * restricts it to tensors whose name starts with it (e.g. a replaced head). */
enum fr_status fr_model_init(struct fr_model *m, uint64_t seed, enum fr_init kind, const char *prefix);

/* Appends the forward pass on x [N,C,H,W] to ctx's graph nodes; returns the logits [N,K] (NULL on
 * error). training = false makes an eval graph: no dropout or drop-path, and a batch-norm right after a
 * conv is folded into the conv's weights and bias (running statistics); other batch-norms follow
 * fr_graph_set_training of the graph that runs them. Build graphs in the model's context. */
struct fr_tensor *fr_model_forward(struct fr_model *m, struct fr_ctx *ctx, struct fr_tensor *x, bool training);
/* Training forwards built from now on normalise every batch-norm layer over a batch of global_batch rows split across
 * the ranks of the job, x holding this rank's rows (fr_batchnorm_sync: sync batch-norm); 0 = each batch its own
 * statistics (default). */
void fr_model_set_sync_bn(struct fr_model *m, int64_t global_batch);
/* Training forwards built from now on draw their dropout and drop-path masks as if their rows came `rows` after the
 * graph's first sample (fr_graph_set_first_sample): one graph holding forwards of different parts of a batch split
 * across ranks (FixMatch: labeled and unlabeled rows) gives every row its global row's masks. 0 = none (default). */
void fr_model_set_first_row(struct fr_model *m, int64_t rows);

/* The layers (one per model-file line; a residual block's `residual` and `end` are layers too) and the input of
 * layer i as c, h, w (h = w = 0 for flat features [N, c]; i = fr_model_n_layers: the logits). */
int fr_model_n_layers(const struct fr_model *m);
void fr_model_layer_input(const struct fr_model *m, int layer, int *c, int *h, int *w);
/* The frozen backbone: how many leading layers have no trainable parameter (FR_FLAG_FROZEN or none), ending outside
 * residual blocks and before a dropout that directly precedes the trained layers; 0 when the first layer trains or
 * nothing does. fr_model_forward(.., training = true) runs these layers in eval mode (batch-norm with running
 * statistics folded into the convs, no dropout or drop-path) and, as nothing before them trains, the backward pass
 * leaves them out (no gradient nodes, no activations kept for it). */
int fr_model_frozen_layers(const struct fr_model *m);
/* fr_model_forward over layers [first, last) only: x is the input of layer `first` (f32 [N,C,H,W], or [N,C] flat;
 * fr_model_layer_input), the result the input of layer `last` (the logits when last = fr_model_n_layers). The range
 * must not split a residual block. Dropout and drop-path masks depend on (seed, step, layer): the same in any graph. */
struct fr_tensor *fr_model_forward_layers(struct fr_model *m, struct fr_ctx *ctx, struct fr_tensor *x, bool training,
                                          int first, int last);

/* safetensors by name (frugal/io.h); strict unless allow_missing / ignore_unexpected. PyTorch's
 * "*.num_batches_tracked" buffers are accepted and ignored. A file that does not fit is one error listing
 * every missing, unexpected and mis-shaped tensor (grouped by layer: "layer4.1.bn2.{weight,bias}"). */
enum fr_status fr_model_save(const struct fr_model *m, const char *path);
enum fr_status fr_model_load(struct fr_model *m, const char *path, bool allow_missing, bool ignore_unexpected);
enum fr_status fr_model_load_st(struct fr_model *m, const struct fr_safetensors *st, bool allow_missing,
                                bool ignore_unexpected);

/* --- training-step builder (src/train/trainer.c) --- */
enum fr_loss_kind { FR_LOSS_CE = 0, FR_LOSS_SOFT_CE, FR_LOSS_DISTILL };
struct fr_aug_policy;
struct fr_trainer_opts {
    int batch;                 /* fixed batch size of the training graph */
    int eval_batch;            /* batch of the eval graph (0 = batch) */
    enum fr_loss_kind loss;
    float label_smoothing;     /* CE */
    float alpha, temperature;  /* DISTILL: teacher logits given per step */
    bool sample_weights;       /* per-sample weights input [N] */
    struct fr_optim_params optim;
    const struct fr_param_group *groups;
    int n_groups;
    uint64_t seed;             /* dropout / drop-path stream */
    /* the input stage: u8 images -> per-sample ops -> CutMix/MixUp -> normalisation, in the graph, on the device */
    enum fr_dtype input;                 /* FR_F32 (default): f32 NCHW images as given; FR_U8: u8 NHWC images */
    const struct fr_aug_policy *augment; /* FR_U8: its per-sample ops and mixing stage (NULL = none); it must keep the
                                            image size. Targets are mixed like the images (CE becomes soft CE).
                                            Read by fr_trainer_new only (as is the teacher model struct). */
    bool mix;                            /* FR_U8: a mixing stage even when the policy has none */
    float mean[4], std[4];               /* FR_U8: model input (x/255 - mean[c]) / std[c] (default 0 and 1) */
    struct fr_model *teacher;            /* DISTILL, FR_U8: a teacher built in the student's context with frozen
                                            parameters, run in the graph on the same augmented batch (NULL: teacher
                                            logits given per step) */
    float teacher_mean[4], teacher_std[4]; /* its input normalisation */
    /* FixMatch (CE, FR_U8, no mixing): the last `unlabeled` rows of each batch are unlabeled images (targets are
       given for the first batch - unlabeled rows only). `augment` makes their weak view, `strong` (per-sample ops
       only, read by fr_trainer_new) their strong view from the same uploaded images; where the weak view's top
       probability is >= threshold its argmax is the strong view's target (no gradient through it). Loss = CE of
       the labeled rows + lambda_u * mean over the unlabeled rows of the masked CE. Three forwards (labeled, weak,
       strong): batch-norm statistics are per part. */
    int unlabeled;
    const struct fr_aug_policy *strong;
    float threshold, lambda_u;
    /* a batch split across the ranks of a job (frugal/dist.h): this trainer's batch is rows [first_sample,
     * first_sample + batch) of a global batch */
    int global_batch;                    /* rows of the global batch (0 = batch): the loss is scaled by batch/global,
                                            so the ranks' gradients add up to the global batch's */
    uint32_t first_sample;               /* dropout and drop-path draw per global row: the split does not change them */
    int global_unlabeled;                /* FixMatch split across ranks: unlabeled rows of the global batch (its labeled
                                            ones: global_batch - global_unlabeled); each part's loss is scaled by
                                            this rank's share of that part */
    uint32_t first_unlabeled;            /* FixMatch split across ranks: this rank's first row of the global batch's
                                            unlabeled ones (first_sample: of its labeled ones) */
    bool sync_bn;                        /* batch-norm statistics of the global batch (fr_model_set_sync_bn) */
    int first_layer;                     /* > 0: the graph starts at this layer, on f32 features of its input shape
                                            (fr_model_layer_input), e.g. a frozen backbone's outputs computed once;
                                            no augmentation, mixing or teacher model then */
};
void fr_trainer_opts_init(struct fr_trainer_opts *o); /* batch 64, CE, SGD lr from the caller */

struct fr_trainer;
enum fr_status fr_trainer_new(struct fr_model *m, struct fr_backend *backend, const struct fr_trainer_opts *o,
                              struct fr_trainer **out);
void fr_trainer_free(struct fr_trainer *tr);
/* One step's inputs (batch rows each). */
struct fr_batch_in {
    const void *images;     /* u8 NHWC or f32 NCHW, per opts.input */
    const float *prog;      /* with per-sample ops: [batch, K, FR_AUG_REC] programs (fr_aug_policy_draw_batch) */
    const float *strong;    /* FixMatch: [unlabeled, K', FR_AUG_REC] programs of the strong policy for the last rows */
    const float *mix;       /* with a mixing stage: [batch, FR_AUG_MIX_REC] records */
    const int32_t *tab;     /* devices without doubles: the programs' coordinate tables (fr_trainer_tables), or
                               NULL to have fr_trainer_submit compute them */
    size_t tab_len;
    const void *targets;    /* i32 labels [batch] (CE, DISTILL; -1 = unlabeled for DISTILL) or f32 [batch, K] (SOFT_CE) */
    const float *teacher;   /* DISTILL without a teacher model: teacher logits [batch, K] */
    const float *weights;   /* with sample_weights: [batch] */
};
/* Queues one optimizer step: the inputs are copied (asynchronously where the backend can: OpenCL) and the graph is
 * enqueued without waiting for it; the caller's buffers may be reused on return. *prev_loss gets the loss of the
 * step before (NaN for the first), read while this one runs; a NaN/Inf loss is FR_STATUS_NUMERIC naming its step,
 * one call late. Labels are checked on the host first. */
enum fr_status fr_trainer_submit(struct fr_trainer *tr, const struct fr_batch_in *b, float lr, float *prev_loss);
/* Waits for the last submitted step; its loss (NaN when none). */
enum fr_status fr_trainer_finish(struct fr_trainer *tr, float *last_loss);
/* Ints of the coordinate tables a step needs (0: the backend computes positions itself), and filling them from one
 * batch's programs (thread-safe: e.g. on a loader thread). */
size_t fr_trainer_tables_len(const struct fr_trainer *tr);
enum fr_status fr_trainer_tables(const struct fr_trainer *tr, const float *prog, int32_t *tab, size_t *len);
/* One synchronous step without programs (blocking transfers, the graph run to its end): images per opts.input;
 * labels: i32 [N] (CE, DISTILL)
 * or f32 [N,K] soft targets (SOFT_CE); teacher: f32 [N,K] (DISTILL) or NULL; weights [N] or NULL. *loss may be
 * NULL. */
enum fr_status fr_trainer_step(struct fr_trainer *tr, const void *images, const void *labels, const float *teacher,
                               const float *weights, float lr, float *loss);
/* steps submitted so far; bytes the last one copied from the host to the backend's memory */
int64_t fr_trainer_steps(const struct fr_trainer *tr);
size_t fr_trainer_upload_bytes(const struct fr_trainer *tr);
/* Logits [n,K] for n images (per opts.input, normalised as in training) in eval mode (any n; the trainer's own
 * predictor, see below). */
enum fr_status fr_trainer_predict(struct fr_trainer *tr, const void *images, int64_t n, float *logits);
struct fr_graph *fr_trainer_graph(const struct fr_trainer *tr, bool eval);
struct fr_optim *fr_trainer_optim(const struct fr_trainer *tr);
/* Runs fn(user) in every step between the backward pass and the optimizer update, the device synchronised: the
 * parameters' gradients (their grad tensors) are complete and may be changed in place (e.g. summed across the
 * processes of a data-parallel job, src/dist); an error from fn fails the step. fn NULL removes it. The trainer
 * must have been built with opts.optim.after_backward (else FR_STATUS_INVALID_ARGUMENT). */
enum fr_status fr_trainer_set_hook(struct fr_trainer *tr, enum fr_status (*fn)(void *user), void *user);

/* --- prediction: an eval graph over the model's parameters (src/train/trainer.c) --- */
struct fr_predictor_opts {
    int batch;             /* images per graph run; any n is run in chunks of it (default 256) */
    enum fr_dtype input;   /* FR_U8: u8 NHWC images, normalised on the device (default); FR_F32: f32 NCHW */
    float mean[4], std[4]; /* FR_U8: y = (x/255 - mean[c]) / std[c] per channel (default 0 and 1: x/255) */
    int first_layer;       /* the model's layers [first_layer, last_layer) only (last_layer 0 = to the end): from a
                              layer > 0 the input is f32 features of that layer's input shape (fr_model_layer_input),
                              and short of the end the outputs are the input of last_layer, one row per image */
    int last_layer;
};
void fr_predictor_opts_init(struct fr_predictor_opts *o);
struct fr_predictor;
enum fr_status fr_predictor_new(struct fr_model *m, struct fr_backend *backend, const struct fr_predictor_opts *o,
                                struct fr_predictor **out);
void fr_predictor_free(struct fr_predictor *p);
/* Logits [n, K] of n images (the input type of the options) in eval mode; rows of fr_predictor_width values. */
enum fr_status fr_predictor_run(struct fr_predictor *p, const void *images, int64_t n, float *logits);
struct fr_graph *fr_predictor_graph(const struct fr_predictor *p);
int64_t fr_predictor_width(const struct fr_predictor *p); /* values per output row: K, or the features' size */

#ifdef __cplusplus
}
#endif
#endif
