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

/* A new network of a built-in architecture ("t", "c", "s", "m") or a model file (any other arch is a path; its
 * text goes into the checkpoints, net->arch keeps its basename), initialised from `seed`. */
enum fr_status fr_net_new(struct fr_backend *be, const char *arch, int c, int h, int w, int n_classes,
                          char *const *class_names, uint64_t seed, struct fr_net **out);
void fr_net_free(struct fr_net *net);
/* A network from a frugal checkpoint (architecture, input shape and classes from its metadata). */
enum fr_status fr_net_load(struct fr_backend *be, const char *path, struct fr_net **out);
/* fr_net_new with noise overrides for the built-in models (NULL = defaults; see fr_model_builtin_ex). */
enum fr_status fr_net_new_ex(struct fr_backend *be, const char *arch, const struct fr_model_opts *mo, int c, int h,
                             int w, int n_classes, char *const *class_names, uint64_t seed, struct fr_net **out);
/* Whether arch names a built-in model (t, c, s, m) rather than a model file. */
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

/* A network holding the moving average of the weights of a net trained with fit.optim.ema (its batch-norm statistics
 * are the net's own): evaluate, save or use it as a teacher like any net. FR_STATUS_NOT_FOUND without an average. */
enum fr_status fr_net_ema(const struct fr_net *net, struct fr_net **out);

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
    float *teacher;  /* cached teacher logits (distillation), n rows of teacher_views x K, or NULL */
    int teacher_views; /* 2: each row holds the logits of the image, then of its mirror image (an 'hflip' policy
                          picks the one the student sees); 0 or 1: of the image alone */
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
    double val_accuracy_ema;                   /* of the weights' moving average (optim.ema > 0), else NaN */
    double seconds, images_per_second;         /* the epoch; training images/s of its step loop */
    float lr;
};
enum fr_balance { FR_BALANCE_EQUAL = 0, FR_BALANCE_SPEED };
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
    float alpha, temperature;            /* distillation: weight of the soft term (0.9), softmax temperature (2) */
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
    /* FixMatch (Sohn et al. 2020) when n_unlabeled > 0: each step takes `batch` labeled images of the training set
       (cycled; hard labels) and mu x batch of the unlabeled images idx[0..n_unlabeled) of unlabeled_ds. `augment`
       (per-sample ops only) is the weak view of both, `strong` the unlabeled images' strong view, made on the device
       from the same upload; the weak view's predictions with top probability >= threshold are the strong view's
       targets, their loss weighted by lambda_u. An epoch is one pass over the unlabeled images. */
    const struct fr_dataset *unlabeled_ds;
    const int64_t *unlabeled_idx;
    int64_t n_unlabeled;
    int mu;                              /* unlabeled images per labeled image in a step (7) */
    float threshold, lambda_u;           /* 0.95, 1 */
    const char *strong;                  /* the strong view's policy */
    volatile sig_atomic_t *stop;         /* set asynchronously: finish the step, save, FR_STATUS_INTERRUPTED */
    /* several processes (mpirun, frugal/dist.h): each global batch of `batch` is split across the ranks */
    enum fr_balance balance;             /* equal shares (default) or shares proportional to each rank's speed */
    bool sync_bn;                        /* batch-norm statistics of the global batch (default: each rank's own) */
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
    double val_accuracy_ema;           /* of the weights' moving average (optim.ema > 0), else NaN */
    int fallback_ops;
    bool interrupted;
    size_t host_to_device_bytes_per_step; /* the u8 batch, programs, tables, mix records, targets, learning rate */
    int ranks, local_batch;               /* processes of the job and this one's rows of each batch (at the end) */
    int rebalanced;                       /* --balance speed: times the rows moved during training */
};
enum fr_status fr_fit(struct fr_net *net, struct fr_trainset *ts, const struct fr_fit_opts *o,
                      struct fr_fit_result *r);

/* --- pseudo-labelling (src/recipes/pseudo.c; docs/reference.md §6) --- */
struct fr_pseudo_opts {
    float threshold;   /* keep predictions whose top probability is >= threshold, in [0, 1] */
    bool balance;      /* per class: keep the most confident of frequent classes, duplicate rare ones */
    int64_t per_class; /* balance target (0 = kept / K) */
    float temperature; /* softmax temperature of the probabilities (0 = 1) */
    bool flip;         /* test-time flips: probabilities averaged over each image and its mirror image */
    struct fr_net *const *teachers; /* more teachers (e.g. earlier rounds): probabilities averaged over all */
    int n_teachers;
};
/* The options' range checks (threshold outside [0, 1] ...), as fr_pseudo_label makes them. */
enum fr_status fr_pseudo_check(const struct fr_pseudo_opts *o);
/* what a teacher's labelling kept */
struct fr_pseudo_report {
    int64_t unlabeled;        /* images labeled */
    int64_t confident;        /* of them, with confidence >= threshold (distinct images) */
    int64_t rows;             /* rows kept (after balancing: duplicates of rare classes, the rest left out) */
    double accuracy;          /* of the confident predictions against the dataset's labels, NaN without labels */
    int n_classes;
    int64_t *class_confident; /* confident images per predicted class [K] */
    int64_t *class_rows;      /* rows per class [K] */
};
struct fr_pseudo {
    int64_t n;      /* rows kept (= report.rows) */
    int n_classes;
    int64_t *idx;   /* image index per row */
    int32_t *label; /* argmax */
    float *prob;    /* n x K probabilities */
    float *conf;    /* max probability */
    struct fr_pseudo_report report;
};
/* Labels images idx[0..n) of ds (idx NULL = 0..n-1) with the teacher(s) in eval mode (no noise). Unreadable images
 * that the dataset skips are never kept. */
enum fr_status fr_pseudo_label(struct fr_net *teacher, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                               const struct fr_pseudo_opts *o, struct fr_pseudo *out);
void fr_pseudo_free(struct fr_pseudo *p);
void fr_pseudo_report_free(struct fr_pseudo_report *r);

/* --- self-training rounds: pseudo-labelling, Noisy Student (src/recipes/selftrain.c) ---
 * Round r (1, 2, ...) of a run with seed S: the teacher labels the unlabeled images of the split (a subset drawn
 * with (S, FR_RNG_SPLIT, 1000 + r) when a ratio is set), without noise; a fresh student initialised and trained with
 * seed fr_round_seed(S, r) learns from the labeled images, repeated, plus the pseudo-labels, with noise. Every
 * command that runs rounds (noisy-student, demo) goes through this, so the same seed gives the same rounds. */
struct fr_round_opts {
    const char *arch;             /* the student: t, c, s, m or a model file (equal to or larger than the teacher) */
    struct fr_model_opts noise;   /* the student's dropout / stochastic depth (-1: the architecture's own) */
    struct fr_pseudo_opts pseudo; /* how the teacher labels: threshold, balancing, flips, more teachers */
    bool soft;                    /* learn the teacher's probabilities (else its argmax) */
    int labeled_repeat;           /* the labeled images appear this many times per epoch (>= 1) */
    double unlabeled_ratio;       /* unlabeled images per labeled image and round (0 = all) */
    bool from_teacher;            /* the student starts from the teacher's weights (same architecture), else fresh */
    struct fr_fit_opts fit;       /* the student's training: fit.augment is its input noise, fit.seed the run's seed */
};
void fr_round_opts_init(struct fr_round_opts *o); /* student t, threshold 0.3, balanced soft labels, repeat 1 */
uint64_t fr_round_seed(uint64_t seed, int round); /* seed + round */
/* The unlabeled images of round `round`: all of sp->unlabeled in the round's order, the first *n of them
 * (ratio x labeled images, or all when ratio is 0). *idx holds all of them (free()). */
enum fr_status fr_round_unlabeled(const struct fr_split *sp, double ratio, uint64_t seed, int round, int64_t **idx,
                                  int64_t *n);
struct fr_round {
    int round;
    struct fr_net *student;        /* the trained student (the next teacher) */
    struct fr_pseudo_report pseudo; /* what the teacher's labelling kept */
    struct fr_fit_result fit;
    double seconds;
};
/* One round (see above). The teacher's classes and input must be the dataset's. FR_STATUS_INTERRUPTED (fit.stop)
 * leaves the student in out->student (its checkpoint saved by fr_fit). */
enum fr_status fr_self_train_round(struct fr_net *teacher, const struct fr_dataset *ds, const struct fr_split *sp,
                                   int round, const struct fr_round_opts *o, struct fr_round *out);
void fr_round_free(struct fr_round *r);

/* --- FixMatch (src/recipes/fixmatch.c) ---
 * A network learns from the labeled images of a split (hard labels, the weak view) and the unlabeled ones: the weak
 * view's confident predictions (top probability >= fit.threshold) are the targets of the strong view, both made on
 * the device from one upload (fr_fit's FixMatch options). fit.augment is the weak view, fit.strong the strong one. */
#define FR_FIXMATCH_WEAK "hflip;translate(x=0.125,y=0.125)"                        /* flip + pad-and-crop */
#define FR_FIXMATCH_STRONG "hflip;translate(x=0.125,y=0.125);randaugment(n=2,m=10);cutout(size=12)"
struct fr_fixmatch_opts {
    struct fr_fit_opts fit;  /* threshold (0.95), mu (7), lambda_u (1), optim.ema, epochs (passes over the unlabeled) */
    double unlabeled_ratio;  /* unlabeled images per labeled image (0 = all), drawn as round 1 of fr_round_unlabeled */
};
void fr_fixmatch_opts_init(struct fr_fixmatch_opts *o); /* fr_fit_opts_init + the weak and strong views above */
/* The range checks (threshold in [0, 1], mu >= 1, lambda_u >= 0, a strong policy) fr_fixmatch makes first. */
enum fr_status fr_fixmatch_check(const struct fr_fixmatch_opts *o);
/* Trains net (fresh or pretrained) on ds with split sp. Errors before training: options, the network's input or
 * classes differ from ds, no labeled or no unlabeled images. */
enum fr_status fr_fixmatch(struct fr_net *net, const struct fr_dataset *ds, const struct fr_split *sp,
                           const struct fr_fixmatch_opts *o, struct fr_fit_result *r);

struct fr_demo_row {
    char method[40];
    int64_t labels;          /* labeled images used, validation included */
    int64_t unlabeled;       /* unlabeled images used */
    int64_t pseudo_kept;     /* pseudo-label rows the student learned from (FixMatch: images above the threshold at the
                                end) */
    double pseudo_accuracy;  /* of those against the hidden labels (NaN without) */
    double val_accuracy, test_accuracy; /* test NaN without a test set */
    bool ema;                /* the row is the weights' moving average */
    double seconds;
};
/* --- the demo (src/recipes/demo.c) ---
 * On one split: supervised and supervised+augment baselines, pseudo-labelling, FixMatch and Noisy Student rounds,
 * one model for all. The baselines train on the labeled images repeated labeled_repeat times per epoch for `epochs`
 * epochs, the schedule of the self-training students (which add the pseudo-labels), so a row's gain over
 * supervised+augment comes from the unlabeled images. Pseudo-labelling's teacher is the baseline with the better
 * validation accuracy (a tie keeps supervised); then each row builds on the last: FixMatch starts from the
 * pseudo-label student at half the learning rate (fixmatch_init; else from fresh weights), Noisy Student round 1's
 * teacher is the last row's model (FixMatch's, or the pseudo-label student's when FixMatch starts fresh), each later
 * round's the previous student; a row uses the weights' moving average (fit.optim.ema) when it validates better than the
 * raw weights. Self-training rounds follow fr_self_train_round's seeds. */
#define FR_DEMO_STRONG "hflip;translate(x=0.125,y=0.125);randaugment(n=2,m=5)" /* the demo's strong view */
struct fr_demo_opts {
    const char *arch;                 /* every row's model (t) */
    int epochs, labeled_repeat;       /* baselines and self-training students (20, quick 6; 10) */
    const char *augment;              /* supervised+augment, the pseudo-label student, FixMatch's weak view */
    const char *noise;                /* the Noisy Student students' input noise */
    float pl_threshold, ns_threshold; /* pseudo-labelling (0.95, hard labels), Noisy Student (soft, balanced) */
    int rounds;                       /* Noisy Student rounds (2) */
    int ensemble;                     /* earlier semi-supervised rows' models that join a round's teacher (0..10) */
    double unlabeled_ratio;           /* unlabeled images per labeled image (0 = all) */
    struct fr_fixmatch_opts fixmatch; /* threshold, mu, lambda_u, strong view (its fit's other fields are not used) */
    int fixmatch_epochs;              /* passes over the unlabeled images */
    bool fixmatch_init;               /* FixMatch starts from the pseudo-label student (true), else fresh */
    bool ns_from_teacher;             /* Noisy Student students start from their teacher at half the learning rate
                                         (true), else fresh at the full one */
    int ns_epochs;                    /* Noisy Student students' epochs (10, quick 6) */
    struct fr_fit_opts fit;           /* optimizer, learning rate, ema, seed, out_dir, stop, progress callbacks */
    void (*on_stage)(void *user, const char *method); /* a row's training starts */
    void (*on_row)(void *user, const struct fr_demo_row *row);
    void *user;
};
void fr_demo_opts_init(struct fr_demo_opts *o, bool quick); /* the full demo or the quick one */
enum fr_status fr_demo_check(const struct fr_demo_opts *o);   /* range checks, before any training */
/* Runs every row; *rows (free()) holds them. Errors before training: options, no labeled, validation or unlabeled
 * images, a test set whose classes or image size differ. */
enum fr_status fr_demo_run(struct fr_backend *be, const struct fr_dataset *train, const struct fr_dataset *test,
                           const struct fr_split *sp, const struct fr_demo_opts *o, struct fr_demo_row **rows,
                           int *n_rows);

/* --- training sets from a teacher (src/recipes/teacher.c) --- */
/* One self-training round's training set: images labeled[0..n_labeled) of ds with their labels, repeated
 * labeled_repeat times (so they keep a share of every batch), plus the teacher's pseudo-labels of unl[0..n_unl)
 * (soft: its probabilities as targets). ts is initialised here; free it with fr_trainset_free. *report (may be NULL)
 * gets what the labelling kept; free it with fr_pseudo_report_free. */
enum fr_status fr_pseudo_trainset(struct fr_net *teacher, const struct fr_dataset *ds, const int64_t *labeled,
                                  int64_t n_labeled, int labeled_repeat, const int64_t *unl, int64_t n_unl,
                                  const struct fr_pseudo_opts *po, bool soft, struct fr_trainset *ts,
                                  struct fr_pseudo_report *report);
/* Fills ts->teacher with the teacher's logits of every image (distillation without augmentation: the same
 * logits every epoch, computed once; teacher_views 1). */
enum fr_status fr_trainset_cache_teacher(struct fr_trainset *ts, struct fr_net *teacher);
/* The cached logits of several teachers. An ensemble (out_of_fold false): every image gets the mean of their
 * logits. Out-of-fold ("cross-fitted", out_of_fold true): image j of a dataset is in fold j mod n_teachers and fold
 * teacher f was trained on every labeled image outside fold f (fr_split_hold_out_fold), so each image of ts->ds[0]
 * gets the logits of teachers[j mod n_teachers], the one that never trained on it; images of ts->ds[1] (transfer
 * images, seen by none) get the mean. Errors: no teacher, or a teacher whose classes differ from the training
 * set's. One teacher: fr_trainset_cache_teacher. mirrored: the logits of each image's mirror image too
 * (teacher_views 2), for training with the policy 'hflip' alone (fr_fit_teacher_views). */
enum fr_status fr_trainset_cache_teachers(struct fr_trainset *ts, struct fr_net *const *teachers, int n_teachers,
                                          bool out_of_fold, bool mirrored);
/* Which cached teacher logits a distillation run with these options can use instead of the teacher in its
 * training graph: 1, those of the images as they are (no augmentation or mixing); 2, those of the images and their
 * mirror images (the policy is 'hflip' alone, perhaps with a normalize: the same logits the teacher gives in the
 * graph); 0, none (other augmentation or mixing: the teacher must see each augmented batch). */
int fr_fit_teacher_views(const struct fr_fit_opts *o);
/* A fold teacher's split: moves the labeled images of fold `fold` (index mod n_folds == fold) to sp->unlabeled.
 * Errors: n_folds < 2, fold outside [0, n_folds), or no labeled image left. */
enum fr_status fr_split_hold_out_fold(struct fr_split *sp, int fold, int n_folds);
/* The accuracy on the labeled images of `test` of one teacher, of the n teachers' mean logits (an ensemble), or
 * (each_alone) the mean of the teachers' own accuracies (out-of-fold teachers) */
enum fr_status fr_teachers_accuracy(struct fr_net *const *t, int n, bool each_alone, const struct fr_dataset *test,
                                    double *acc);

#ifdef __cplusplus
}
#endif
#endif
