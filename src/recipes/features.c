/* What fr_fit does beyond plain steps (fr_fit_plan): a frozen backbone's outputs computed once per image when nothing
 * augments them (the steps then train the rest of the model on those features, validation included), and a policy's
 * leading random resized crop made when photos are read. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "frugal/augment.h"
#include "recipes/recipes_internal.h"
#include "train/train_internal.h"

#define FEATURES_MAX_BYTES ((int64_t)2 << 30) /* cached features beyond this: the backbone runs every step instead */
#define FEATURES_BATCH 64                     /* images per run of the backbone's eval graph */

void fr_fit_plan_make(struct fr_net *net, const struct fr_trainset *ts, const struct fr_fit_opts *o,
                      struct fr_aug_policy *pol, struct fr_fit_plan *plan, struct fr_read_opts *ro)
{
    memset(plan, 0, sizeof *plan);
    fr_read_opts_init(ro);
    struct fr_model *m = net->model;
    for (int i = 0; i < fr_model_n_tensors(m); i++) { /* what the trainer's optimizer will mark */
        struct fr_tensor *t = fr_model_tensor(m, i).t;
        if ((t->flags & FR_FLAG_PARAM) && fr_param_groups_resolve(o->groups, o->n_groups, 0.0f, t).frozen)
            t->flags |= FR_FLAG_FROZEN;
    }
    plan->frozen_layers = fr_model_frozen_layers(m);
    bool files = ts->ds[0] != NULL;
    for (int s = 0; s < 2; s++)
        files = files && (!ts->ds[s] || ts->ds[s]->files);
    const bool fixmatch = o->n_unlabeled > 0; /* its two loaders and strong view stay on the step's own path */
    if (pol && files && !fixmatch && fr_aug_policy_take_rrc(pol, net->h, net->w, ro->scale, ro->ratio)) {
        plan->crop_at_load = true;
        ro->crop = FR_CROP_RANDOM;
        ro->seed = o->seed;
    }
    bool augmented = plan->crop_at_load || o->cutmix > 0 || o->mixup > 0 ||
                     (pol && (fr_aug_policy_has_ops(pol) || fr_aug_policy_mix(pol)));
    bool live_teacher = o->distill && !ts->teacher; /* the teacher model runs in the training graph */
    if (plan->frozen_layers == 0 || augmented || live_teacher || fixmatch)
        return;
    int c, h, w;
    fr_model_layer_input(m, plan->frozen_layers, &c, &h, &w);
    int64_t width = h ? (int64_t)c * h * w : c;
    if ((ts->n + (o->val_ds ? o->n_val : 0)) * width * (int64_t)sizeof(float) > FEATURES_MAX_BYTES)
        return;
    plan->cached_features = true;
    plan->feature_width = width;
}

enum fr_status fr_fit_plan(struct fr_net *net, const struct fr_trainset *ts, const struct fr_fit_opts *o,
                           struct fr_fit_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    struct fr_aug_policy *pol = NULL;
    enum fr_status st = o->augment ? fr_aug_policy_parse(o->augment, &pol) : FR_STATUS_OK;
    if (st != FR_STATUS_OK)
        return st;
    struct fr_read_opts ro;
    fr_fit_plan_make(net, ts, o, pol, plan, &ro);
    fr_aug_policy_free(pol);
    return FR_STATUS_OK;
}

void fr_fit_features_free(struct fr_fit_features *ff)
{
    if (!ff)
        return;
    free(ff->rows);
    free(ff->label);
    free(ff->soft);
    free(ff->teacher);
    free(ff->val_lab);
    free(ff->val_rows);
    fr_predictor_free(ff->head);
    free(ff);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The rows of the entries of dataset slot s: each image once, then copied to its entries */
static enum fr_status slot_rows(struct fr_net *net, struct fr_predictor *pred, const struct fr_trainset *ts, int s,
                                float *rows, int64_t *images)
{
    const int64_t width = fr_predictor_width(pred);
    int64_t nu = 0, *uniq = malloc((size_t)(ts->n + 1) * sizeof *uniq);
    if (!uniq)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
    for (int64_t e = 0; e < ts->n; e++)
        if (ts->src[e] == s)
            uniq[nu++] = ts->idx[e];
    qsort(uniq, (size_t)nu, sizeof *uniq, cmp_i64);
    int64_t u = 0;
    for (int64_t i = 0; i < nu; i++)
        if (i == 0 || uniq[i] != uniq[u - 1])
            uniq[u++] = uniq[i];
    nu = u;
    float *urows = malloc((size_t)(nu * width + 1) * sizeof *urows);
    enum fr_status st = urows ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory for features");
    if (st == FR_STATUS_OK && nu > 0)
        st = fr_net_predict_rows(net, pred, ts->ds[s], uniq, nu, urows);
    for (int64_t e = 0; st == FR_STATUS_OK && e < ts->n; e++) {
        if (ts->src[e] != s)
            continue;
        const int64_t *at = bsearch(&ts->idx[e], uniq, (size_t)nu, sizeof *uniq, cmp_i64);
        memcpy(rows + e * width, urows + (at - uniq) * width, (size_t)width * sizeof(float));
    }
    *images += nu;
    free(urows);
    free(uniq);
    return st;
}

/* An entry whose image could not be read (NaN row) takes the row and targets of the closest readable entry before it,
 * else of the first one, as a skipped image's slot does in a batch read. */
static enum fr_status substitute_unreadable(const struct fr_trainset *ts, struct fr_fit_features *ff)
{
    const int64_t width = ff->width, k = ts->n_classes, tw = fr_trainset_teacher_width(ts); /* tw: per teacher row */
    int64_t first = -1;
    for (int64_t e = 0; e < ts->n && first < 0; e++)
        if (!isnan(ff->rows[e * width]))
            first = e;
    if (first < 0)
        return fr_error(FR_STATUS_FORMAT, "fit: no image of the training set is readable");
    for (int64_t e = 0, r = first; e < ts->n; e++) {
        if (!isnan(ff->rows[e * width])) {
            r = e;
            continue;
        }
        if (!ff->label) { /* copies of the targets, once */
            ff->label = malloc((size_t)ts->n * sizeof *ff->label);
            ff->soft = ts->soft ? malloc((size_t)(ts->n * k) * sizeof(float)) : NULL;
            ff->teacher = ts->teacher ? malloc((size_t)(ts->n * tw) * sizeof(float)) : NULL;
            if (!ff->label || (ts->soft && !ff->soft) || (ts->teacher && !ff->teacher))
                return fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
            memcpy(ff->label, ts->label, (size_t)ts->n * sizeof *ff->label);
            if (ff->soft)
                memcpy(ff->soft, ts->soft, (size_t)(ts->n * k) * sizeof(float));
            if (ff->teacher)
                memcpy(ff->teacher, ts->teacher, (size_t)(ts->n * tw) * sizeof(float));
        }
        memcpy(ff->rows + e * width, ff->rows + r * width, (size_t)width * sizeof(float));
        ff->label[e] = ff->label[r];
        if (ff->soft)
            memcpy(ff->soft + e * k, ff->soft + r * k, (size_t)k * sizeof(float));
        if (ff->teacher)
            memcpy(ff->teacher + e * tw, ff->teacher + r * tw, (size_t)tw * sizeof(float));
    }
    return FR_STATUS_OK;
}

enum fr_status fr_fit_features_new(struct fr_net *net, const struct fr_trainset *ts, const struct fr_fit_opts *o,
                                   int layers, struct fr_fit_features **out, int64_t *images)
{
    *out = NULL;
    *images = 0;
    struct fr_fit_features *ff = calloc(1, sizeof *ff);
    if (!ff)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
    ff->layers = layers;
    /* the backbone's eval graph on u8 images, normalised as the net's input */
    struct fr_predictor_opts po;
    fr_predictor_opts_init(&po);
    po.batch = net->eval_batch < FEATURES_BATCH ? net->eval_batch : FEATURES_BATCH;
    po.last_layer = layers;
    memcpy(po.mean, net->mean, sizeof po.mean);
    memcpy(po.std, net->std, sizeof po.std);
    struct fr_predictor *pred = NULL;
    enum fr_status st = fr_predictor_new(net->model, net->be, &po, &pred);
    if (st == FR_STATUS_OK) {
        ff->width = fr_predictor_width(pred);
        if (!(ff->rows = malloc((size_t)(ts->n * ff->width + 1) * sizeof(float))))
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory for %lld features of %lld images",
                          (long long)ff->width, (long long)ts->n);
    }
    for (int s = 0; s < 2 && st == FR_STATUS_OK; s++)
        if (ts->ds[s])
            st = slot_rows(net, pred, ts, s, ff->rows, images);
    if (st == FR_STATUS_OK)
        st = substitute_unreadable(ts, ff);
    if (st == FR_STATUS_OK && o->val_ds && o->n_val > 0) { /* the labeled validation images, once too */
        ff->val_lab = fr_net_labeled(o->val_ds, o->val_idx, o->n_val, &ff->n_val);
        ff->val_rows = ff->val_lab ? malloc((size_t)(ff->n_val * ff->width + 1) * sizeof(float)) : NULL;
        st = ff->val_rows ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
        if (st == FR_STATUS_OK && ff->n_val > 0)
            st = fr_net_predict_rows(net, pred, o->val_ds, ff->val_lab, ff->n_val, ff->val_rows);
        *images += ff->n_val;
    }
    fr_predictor_free(pred);
    /* the rest of the model in eval mode on features, for validation */
    fr_predictor_opts_init(&po);
    po.batch = net->eval_batch;
    po.input = FR_F32;
    po.first_layer = layers;
    if (st == FR_STATUS_OK && ff->val_rows)
        st = fr_predictor_new(net->model, net->be, &po, &ff->head);
    if (st != FR_STATUS_OK) {
        fr_fit_features_free(ff);
        return st;
    }
    *out = ff;
    return FR_STATUS_OK;
}

enum fr_status fr_fit_features_eval(struct fr_net *net, struct fr_fit_features *ff, const struct fr_dataset *val_ds,
                                    struct fr_eval *ev)
{
    const int k = net->n_classes;
    float *logits = malloc((size_t)((ff->n_val > 0 ? ff->n_val : 1) * k) * sizeof(float));
    if (!logits)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
    enum fr_status st = fr_predictor_run(ff->head, ff->val_rows, ff->n_val, logits);
    for (int64_t i = 0; i < ff->n_val; i++) /* an unreadable image stays out of the figures */
        if (isnan(ff->val_rows[i * ff->width]))
            logits[i * k] = NAN;
    if (st == FR_STATUS_OK)
        st = fr_eval_logits(val_ds, ff->val_lab, ff->n_val, logits, k, ev);
    free(logits);
    return st;
}
