/* Learning recipes over models, datasets and trainers: a network with checkpoints, a training loop
 * (augmentation, CutMix/MixUp and normalisation in the training graph from u8 batches, soft targets, distillation,
 * validation, metrics.jsonl, resume, stop on request), evaluation, and pseudo-labelling with thresholds and class
 * balancing (Noisy Student).
 *
 *   struct fr_split sp;  fr_split_make(ds, 1000, 100, seed, &sp);      // 900 labeled + 100 validation images
 *   struct fr_net *net;  fr_net_new(be, "s", 1, 28, 28, 10, ds->class_names, seed, &net);
 *   struct fr_trainset ts = {0};  ts.n_classes = 10;  fr_trainset_add(&ts, 0, ds, sp.labeled, sp.n_labeled, NULL, NULL);
 *   struct fr_fit_opts fo;  fr_fit_opts_init(&fo);  fo.epochs = 10;  fo.augment = "randaugment(n=2,m=9);cutmix(alpha=1)";
 *   struct fr_fit_result fr;  fr_fit(net, &ts, &fo, &fr);
 *   struct fr_eval ev;  fr_net_evaluate(net, test, NULL, test->n, &ev);
 *
 * Library code never prints: progress and epoch summaries go through callbacks.
 */
#ifndef FRUGAL_RECIPES_H
#define FRUGAL_RECIPES_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "frugal/data.h"
#include "frugal/io.h"
#include "frugal/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A model with the metadata its checkpoints carry, an eval graph and (once training starts) a trainer. */
struct fr_net {
    struct fr_backend *be;
    struct fr_ctx *ctx;
    struct fr_model *model;
    struct fr_trainer *trainer; /* built by fr_fit on first use */
    char arch[64];
    int c, h, w, n_classes;
    char **class_names; /* n_classes */
    /* prediction: an eval graph taking u8 NHWC images, built on first use */
    struct fr_predictor *pred;
    int eval_batch;
    float mean[4], std[4]; /* input normalisation on the device: (x/255 - mean[c]) / std[c] (default 0, 1) */
    /* resume position read from a checkpoint by fr_net_load(.., want_state = true) */
    int64_t ck_epoch, ck_step_in_epoch, ck_global_step;
    uint32_t ck_graph_step;
    char *ck_path; /* checkpoint it was loaded from (resume reloads optimizer state from it) */
    char *model_text; /* model-file text (saved as frugal.model_text) or NULL for a built-in arch */
};

/* A new network of a built-in architecture ("t", "s", "m") or a model file (any other arch is a path; its
 * text goes into the checkpoints, net->arch keeps its basename), initialised from `seed`. */
enum fr_status fr_net_new(struct fr_backend *be, const char *arch, int c, int h, int w, int n_classes,
                          char *const *class_names, uint64_t seed, struct fr_net **out);
void fr_net_free(struct fr_net *net);
/* A network from a frugal checkpoint (architecture, input shape and classes from its metadata). */
enum fr_status fr_net_load(struct fr_backend *be, const char *path, struct fr_net **out);
/* fr_net_new with noise overrides for the built-in models (NULL = defaults; see fr_model_builtin_ex). */
enum fr_status fr_net_new_ex(struct fr_backend *be, const char *arch, const struct fr_model_opts *mo, int c, int h,
                             int w, int n_classes, char *const *class_names, uint64_t seed, struct fr_net **out);
/* Whether arch names a built-in model (t, s, m) rather than a model file. */
bool fr_net_arch_builtin(const char *arch);
/* A network of architecture `arch` whose weights come from a plain safetensors file (n_classes from the
 * shape of the last layer's bias in the file). */
enum fr_status fr_net_load_weights(struct fr_backend *be, const char *arch, const char *path, int c, int h, int w,
                                   struct fr_net **out);
/* Replaces the classifier head by a fresh one for n_classes (initialised from seed); before training. */
enum fr_status fr_net_replace_head(struct fr_net *net, int n_classes, char *const *class_names, uint64_t seed);
/* Name prefix of the head parameters ("fc2."). */
const char *fr_net_head_prefix(const struct fr_net *net, char *buf, size_t size);

/* Writes every parameter and state tensor (optimizer moments and step, batch-norm statistics) with the
 * architecture, classes, resume position and extra metadata; atomically. */
enum fr_status fr_net_save(const struct fr_net *net, const char *path, int64_t epoch, int64_t step_in_epoch,
                           int64_t global_step, const struct fr_kv *extra, int n_extra);

/* Nodes of this net's graphs that ran on the CPU instead of the device. */
int fr_net_fallback_ops(const struct fr_net *net);

/* Logits [n, K] of images idx[0..n) of ds (idx NULL = 0..n-1), eval mode; NaN rows for unreadable images that the
 * dataset skips. */
enum fr_status fr_net_predict(struct fr_net *net, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                              float *logits);
/* Logits [n, K] of n u8 NHWC images of the net's input size (its normalisation applied on the device). */
enum fr_status fr_net_predict_u8(struct fr_net *net, const uint8_t *images, int64_t n, float *logits);
/* Sets the input normalisation (saved in checkpoints as frugal.normalize); only before the net predicts or
 * trains. A policy's normalize(...) stage sets it when fr_fit builds the trainer. */
enum fr_status fr_net_set_normalize(struct fr_net *net, const float mean[4], const float std[4]);
/* "mean=M0,M1,M2,M3;std=S0,S1,S2,S3" */
const char *fr_net_normalize_str(const struct fr_net *net, char *buf, size_t size);

/* --- evaluation --- */
struct fr_eval {
    int64_t n;
    int n_classes;
    double accuracy, loss;   /* fraction, mean cross-entropy */
    double *class_accuracy;  /* n_classes (NaN for a class without images) */
    int64_t *confusion;      /* n_classes x n_classes, row = true class, column = predicted */
    double seconds, images_per_second;
};
/* Evaluates on labeled images (labels -1 are skipped). */
enum fr_status fr_net_evaluate(struct fr_net *net, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                               struct fr_eval *out);
void fr_eval_free(struct fr_eval *e);

/* --- training sets: images of up to two datasets with hard labels, soft targets, cached teacher logits --- */
struct fr_trainset {
    const struct fr_dataset *ds[2];
    int64_t n, cap;
    int n_classes;
    uint8_t *src;    /* which dataset per entry */
    int64_t *idx;    /* image index within that dataset */
    int32_t *label;  /* hard label or -1 */
    float *soft;     /* n x K soft targets (one-hot rows for hard labels), or NULL */
    float *teacher;  /* n x K cached teacher logits (distillation), or NULL */
};
/* Appends images idx[0..n) of ds with their own labels (soft = one-hot when the set has soft targets). */
enum fr_status fr_trainset_add(struct fr_trainset *ts, int which, const struct fr_dataset *ds, const int64_t *idx,
                               int64_t n, const int32_t *labels, const float *soft);
void fr_trainset_free(struct fr_trainset *ts);

/* --- the training loop --- */
struct fr_fit_progress {
    int64_t epoch, epochs, step, steps_per_epoch, global_step;
    float loss, lr;
    double images_per_second, elapsed, eta;
};
struct fr_epoch_stats {
    int64_t epoch, epochs;
    double train_loss, val_accuracy, val_loss; /* val NaN without a validation set */
    double seconds, images_per_second;         /* the epoch; training images/s of its step loop */
    float lr;
};
struct fr_fit_opts {
    int epochs, batch;
    struct fr_optim_params optim;
    struct fr_schedule sched;            /* base_lr and kind; total_steps filled in from epochs */
    const struct fr_param_group *groups;
    int n_groups;
    const char *augment;                 /* policy spec (as `frugal augment`: per-sample ops, cutmix/mixup, normalize)
                                            or NULL; it runs in the training graph, on the device */
    double cutmix, mixup;                /* shorthands for a cutmix/mixup stage: Beta alpha, 0 = off; both > 0:
                                            they alternate per step (CutMix on even steps); an error when the policy
                                            has its own mixing stage */
    float label_smoothing;
    bool distill;                        /* distillation loss with teacher logits */
    float alpha, temperature;
    struct fr_net *teacher;              /* distill with augmented input: logits per batch */
    uint64_t seed;
    const struct fr_dataset *val_ds;     /* validation images (labels) or NULL */
    const int64_t *val_idx;
    int64_t n_val;
    const char *out_dir;                 /* checkpoints (<name>.safetensors) and metrics.jsonl, or NULL */
    const char *ckpt_name;               /* default "model" */
    const char *metrics_tag;             /* adds "stage": tag to metrics lines */
    const struct fr_kv *meta;            /* extra checkpoint metadata */
    int n_meta;
    bool resume;                         /* continue from the position loaded into the net */
    volatile sig_atomic_t *stop;         /* set asynchronously: finish the step, save, FR_STATUS_INTERRUPTED */
    void (*on_progress)(void *user, const struct fr_fit_progress *p);
    void (*on_epoch)(void *user, const struct fr_epoch_stats *e);
    void *user;
};
void fr_fit_opts_init(struct fr_fit_opts *o); /* 10 epochs, batch 64, AdamW lr 2e-3 cosine, seed 1 */

/* What fr_fit does with a net, a training set and options, beyond training every step on the images:
 *  - a frozen backbone (parameters FR_FLAG_FROZEN or in a frozen group: fr_model_frozen_layers) runs in eval mode with
 *    no gradient graph; without augmentation (no per-sample op, no mixing) and distillation from a teacher model, its
 *    outputs are computed once per image (training and validation) and the steps train the rest on them;
 *  - a policy that starts with rrc(size=<the model's input>) on images read from files (every dataset of the set is a
 *    folder or CSV list) has that crop made when the photos are read (fr_dataset_read's FR_CROP_RANDOM on the whole
 *    photo, a function of (seed, epoch, image)); the rest of the policy runs on the device. */
struct fr_fit_plan {
    int frozen_layers;     /* leading layers of the model that do not train (0: none) */
    bool cached_features;  /* their outputs are computed once per image */
    int64_t feature_width; /* values per image then */
    bool crop_at_load;     /* the policy's leading rrc runs when the images are read */
};
/* Fills the plan; marks the parameters of frozen groups (o->groups) FR_FLAG_FROZEN as training would. */
enum fr_status fr_fit_plan(struct fr_net *net, const struct fr_trainset *ts, const struct fr_fit_opts *o,
                           struct fr_fit_plan *plan);

struct fr_fit_result {
    struct fr_fit_plan plan;
    int64_t feature_images;  /* images whose frozen-backbone outputs were computed (cached_features) */
    double feature_seconds;  /* the time that took (training and validation images) */
    int64_t epochs_done, steps;
    double seconds, images_per_second; /* all of it; training images per second of the step loops (validation and
                                          checkpoints excluded) */
    double train_loss, val_accuracy;
    int fallback_ops;
    bool interrupted;
    size_t host_to_device_bytes_per_step; /* the u8 batch, programs, tables, mix records, targets, learning rate */
};
enum fr_status fr_fit(struct fr_net *net, struct fr_trainset *ts, const struct fr_fit_opts *o,
                      struct fr_fit_result *r);

/* --- pseudo-labelling (docs/reference.md §6) --- */
struct fr_pseudo_opts {
    float threshold;   /* keep predictions with max probability >= threshold */
    bool balance;      /* per class: keep the most confident of frequent classes, duplicate rare ones */
    int64_t per_class; /* balance target (0 = kept / K) */
    float temperature; /* softmax temperature for the soft labels (1) */
};
struct fr_pseudo {
    int64_t n;
    int n_classes;
    int64_t *idx;   /* image index (duplicates possible after balancing) */
    int32_t *label; /* argmax */
    float *prob;    /* n x K probabilities */
    float *conf;    /* max probability */
};
/* Labels images idx[0..n) of ds with the teacher (eval mode, no noise). */
enum fr_status fr_pseudo_label(struct fr_net *teacher, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                               const struct fr_pseudo_opts *o, struct fr_pseudo *out);
void fr_pseudo_free(struct fr_pseudo *p);

/* --- training sets from a teacher (src/recipes/teacher.c) --- */
struct fr_pseudo_stats {
    int64_t unlabeled, rows; /* images the teacher labeled, pseudo-labeled rows kept (duplicates included) */
    double accuracy;         /* of the kept rows against the dataset's own labels; -1 without them */
};
/* One Noisy Student round's training set: images labeled[0..n_labeled) of ds with their labels, repeated
 * labeled_repeat times (so they keep a share of every batch), plus the teacher's pseudo-labels of unl[0..n_unl)
 * (soft: its probabilities as targets). ts is initialised here; free it with fr_trainset_free. */
enum fr_status fr_pseudo_trainset(struct fr_net *teacher, const struct fr_dataset *ds, const int64_t *labeled,
                                  int64_t n_labeled, int labeled_repeat, const int64_t *unl, int64_t n_unl,
                                  const struct fr_pseudo_opts *po, bool soft, struct fr_trainset *ts,
                                  struct fr_pseudo_stats *stats);
/* Fills ts->teacher with the teacher's logits of every image (distillation without augmentation: the same
 * logits every epoch, computed once). */
enum fr_status fr_trainset_cache_teacher(struct fr_trainset *ts, struct fr_net *teacher);

#ifdef __cplusplus
}
#endif
#endif
