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

#endif
