/* Private pieces of src/recipes shared by the network and training-loop files. */
#ifndef FRUGAL_RECIPES_INTERNAL_H
#define FRUGAL_RECIPES_INTERNAL_H

#include "frugal/recipes.h"

/* src's architecture built in ctx (another net's) with a copy of its weights, for running inside that net's graphs
 * (a teacher in the training graph): every tensor renamed prefix + name, frozen (batch-norm uses its running
 * statistics), not a parameter or state of ctx (never trained, saved or reloaded). Free the model struct when the
 * graphs are built; its tensors belong to ctx. */
enum fr_status fr_net_model_copy(const struct fr_net *src, struct fr_ctx *ctx, struct fr_backend *be,
                                 const char *prefix, struct fr_model **out);
/* dst's parameter and state tensors set to src's, through the host (the same architecture: an error when the tensor
 * counts or sizes differ). */
enum fr_status fr_model_copy_tensors(struct fr_model *dst, const struct fr_model *src);

/* Every parameter and state tensor of the net's context that has storage (the model, the optimizer's moments and
 * step count), by name, in creation order; *n of them (NULL: out of memory). A trainer built again for the same
 * model (--balance speed) leaves its predecessor's state tensors in the context under the same names: only the
 * newest of each name is listed, the one the current trainer uses. */
struct fr_named_tensor;
struct fr_named_tensor *fr_net_state_tensors(const struct fr_net *net, int *n);
/* The values of every tensor fr_net_state_tensors lists, by name, in host memory; put back into the net's current
 * tensors of those names (a trainer built again in between has new optimizer tensors): a --resume from memory. */
struct fr_net_snapshot {
    int n;
    char **names;
    size_t *size;
    char *buf;
};
enum fr_status fr_net_snapshot_take(const struct fr_net *net, struct fr_net_snapshot *s);
/* An error when a tensor of the snapshot has no namesake of its size in the net now. */
enum fr_status fr_net_snapshot_put(struct fr_net *net, const struct fr_net_snapshot *s);
void fr_net_snapshot_free(struct fr_net_snapshot *s);
/* Rows [n, fr_predictor_width] of images idx[0..n) (NULL: 0..n-1) of ds through a predictor over net's model (u8
 * input, e.g. the features of a frozen backbone), read in chunks; NaN rows for unreadable images the dataset skips. */
enum fr_status fr_net_predict_rows(struct fr_net *net, struct fr_predictor *pred, const struct fr_dataset *ds,
                                   const int64_t *idx, int64_t n, float *rows);
/* Values per row of ts->teacher: the classes, once per cached view. */
static inline int fr_trainset_teacher_width(const struct fr_trainset *ts)
{
    return (ts->teacher_views == 2 ? 2 : 1) * ts->n_classes;
}
/* fr_net_predict of the mirror images (each row of pixels reversed) of images idx[0..n) (NULL: 0..n-1) of ds. */
enum fr_status fr_net_predict_mirrored(struct fr_net *net, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                                       float *logits);
/* The labeled images among idx[0..n) (NULL: 0..n-1) of ds: *m indices, malloc'd (NULL: out of memory). */
int64_t *fr_net_labeled(const struct fr_dataset *ds, const int64_t *idx, int64_t n, int64_t *m);
/* fr_eval of logits [m, k] of labeled images lab[0..m) of ds (NaN rows: unreadable images, left out); no timing. */
enum fr_status fr_eval_logits(const struct fr_dataset *ds, const int64_t *lab, int64_t m, const float *logits, int k,
                              struct fr_eval *out);

/* --- fr_fit's plan (src/recipes/features.c) --- */
struct fr_aug_policy;
/* fr_fit_plan on a parsed policy, which loses its leading rrc when the crop is made at load (*ro: how to read then) */
void fr_fit_plan_make(struct fr_net *net, const struct fr_trainset *ts, const struct fr_fit_opts *o,
                      struct fr_aug_policy *pol, struct fr_fit_plan *plan, struct fr_read_opts *ro);
/* A frozen backbone's outputs (its first `layers` layers in eval mode), once per image of the training set and of the
 * labeled validation images */
struct fr_fit_features {
    int layers;
    int64_t width;                     /* values per image */
    float *rows;                       /* per training-set entry */
    int32_t *label;                    /* targets when an unreadable entry took another's (else NULL: the set's) */
    float *soft, *teacher;
    int64_t *val_lab, n_val;           /* labeled validation images */
    float *val_rows;
    struct fr_predictor *head;         /* the remaining layers in eval mode, on features */
};
enum fr_status fr_fit_features_new(struct fr_net *net, const struct fr_trainset *ts, const struct fr_fit_opts *o,
                                   int layers, struct fr_fit_features **out, int64_t *images);
/* Validation of the net on the cached features of o->val_ds's labeled images. */
enum fr_status fr_fit_features_eval(struct fr_net *net, struct fr_fit_features *ff, const struct fr_dataset *val_ds,
                                    struct fr_eval *ev);
void fr_fit_features_free(struct fr_fit_features *ff);

/* --- fr_fit's pieces shared across its files (fit.c, fit_fixmatch.c) --- */
struct fr_aug_mix_cfg;
struct fr_trainer;
struct fr_loader_src;
struct fr_batch;
struct fr_batch_in;
/* what the loader's thread prepares per batch slot next to the images: programs, mix records, coordinate tables */
struct fr_fit_prep {
    const struct fr_aug_policy *pol; /* NULL: none */
    const struct fr_aug_mix_cfg *mix; /* the policy's mixing stage, or NULL */
    double cutmix, mixup;            /* shorthands (--cutmix/--mixup): both > 0 alternate per step */
    const struct fr_trainer *tr;
    uint64_t seed;
    int64_t spe;
    int batch, h, w, k;
    uint32_t first;                  /* this rank's first row of each global batch (several ranks: mpirun) */
    float *prog[2], *mixrec[2];
    int32_t *tab[2];
    size_t tab_len[2];
    /* FixMatch: the loader's batches are this rank's unlabeled rows, after its `batch` labeled ones (programs drawn
       on the main thread); their weak programs (samples row0.. of the step) go to prog[s] from row `batch`, the
       strong ones (samples srow0..) to strong_prog[s] */
    const struct fr_aug_policy *strong;
    int64_t row0, srow0;
    float *strong_prog[2];
    float *teacher[2]; /* cached teacher logits of both views (teacher_views 2): the rows of the views shown, else NULL */
};

/* FixMatch (src/recipes/fit_fixmatch.c): the labeled images of the training set from a cycled loader of their own */
struct fr_fit_fixmatch_rows {
    struct fr_loader *ld; /* the labeled images of the training set, cycled */
    int64_t spe, epoch;   /* its batches per epoch, its current epoch */
    int B, U, h, w;       /* this rank's labeled and unlabeled rows of a step */
    int64_t first;        /* its first labeled row of the global batch */
    size_t img;           /* bytes per image */
    uint8_t *images;      /* one step's upload: B labeled, then U unlabeled images */
    int32_t *labels;      /* B */
};
enum fr_status fr_fit_fixmatch_check(const struct fr_net *net, const struct fr_fit_opts *o, enum fr_loss_kind lk,
                                     bool mixing, struct fr_aug_policy **strong);
void fr_fit_fixmatch_share(int64_t B, int64_t U, int64_t first, int64_t count, int64_t *ufirst, int64_t *ucount);
void fr_fit_fixmatch_rows_free(struct fr_fit_fixmatch_rows *f);
enum fr_status fr_fit_fixmatch_rows_new(struct fr_fit_fixmatch_rows *f, const struct fr_loader_src *src, int global_B,
                                        int64_t first, int B, int U, int64_t gstep, uint64_t seed, const struct fr_net *net);
enum fr_status fr_fit_fixmatch_step(struct fr_fit_fixmatch_rows *f, const struct fr_batch *b, const struct fr_aug_policy *pol,
                                    const struct fr_fit_prep *prep, struct fr_batch_in *in);

#endif
