/* The training loop of every recipe: shuffled fixed-size u8 batches from a training set through the prefetching
 * loader, whose thread also draws each batch's augmentation programs and CutMix/MixUp records from (seed, step);
 * the trainer's graph augments, mixes (images and targets), normalises and trains on the device, one step in flight
 * while the next is prepared. Hard/soft/distillation losses, per-epoch validation, metrics.jsonl, checkpoints each
 * epoch, bit-identical resume and a clean stop on request. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "augment/augment_internal.h"
#include "frugal/augment.h"
#include "dist/dist_internal.h"
#include "frugal/recipes.h"
#include "recipes/recipes_internal.h"
#include "rng.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void fr_fit_opts_init(struct fr_fit_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 64;
    fr_optim_params_init(&o->optim, FR_OPTIM_ADAMW);
    o->optim.weight_decay = 5e-4f;
    o->sched.kind = FR_SCHED_COSINE;
    o->sched.base_lr = 2e-3f;
    o->sched.gamma = 0.1f;
    o->alpha = 0.9f;
    o->mu = 7;
    o->threshold = 0.95f;
    o->lambda_u = 1.0f;
    o->temperature = 2.0f; /* distillation: T = 2 beat T = 4 on the KD config (README) */
    o->seed = 1;
}

/* --- the loop --- */


static enum fr_status fit_prepare(void *user, const struct fr_batch *b)
{
    struct fr_fit_prep *p = user;
    const int s = b->slot;
    const uint32_t step = (uint32_t)(b->epoch * p->spe + b->step); /* the global step: programs are a pure function
                                                                      of (seed, step, sample) */
    for (int i = 0; i < b->n; i++)
        if (b->index[i] < 0) /* the dataset skipped every image of the read as unreadable */
            return fr_error(FR_STATUS_FORMAT, "fit: no readable image in training batch %lld of epoch %lld",
                            (long long)b->step + 1, (long long)b->epoch + 1);
    enum fr_status st = FR_STATUS_OK;
    if (p->strong) { /* FixMatch: global sample numbers row0.. (weak view) and srow0.. (strong view) of the step */
        if (p->pol)
            st = fr_aug_policy_draw_batch(p->pol, p->seed, step, (uint32_t)p->row0, b->n, b->n, p->h, p->w,
                                          p->prog[s] + (size_t)p->batch * fr_aug_policy_max_ops(p->pol) * FR_AUG_REC, NULL);
        if (st == FR_STATUS_OK)
            st = fr_aug_policy_draw_batch(p->strong, p->seed, step, (uint32_t)p->srow0, b->n, b->n, p->h, p->w,
                                          p->strong_prog[s], NULL);
        return st;
    }
    if (p->pol)
        st = fr_aug_policy_draw_batch(p->pol, p->seed, step, p->first, b->n, p->batch, p->h, p->w, p->prog[s],
                                      p->mix ? p->mixrec[s] : NULL);
    if (st == FR_STATUS_OK && !p->mix && (p->cutmix > 0 || p->mixup > 0)) {
        bool cut = p->cutmix > 0 && (p->mixup <= 0 || (step & 1) == 0);
        struct fr_aug_mix_cfg cfg = {cut ? FR_AUG_MIX_CUTMIX : FR_AUG_MIX_MIXUP, cut ? p->cutmix : p->mixup, 1.0, 0, 0};
        st = fr_aug_mix_draw_at(&cfg, p->seed, step, p->first, b->n, p->h, p->w, p->mixrec[s]);
    }
    if (st == FR_STATUS_OK && p->tab[s])
        st = fr_trainer_tables(p->tr, p->prog[s], p->tab[s], &p->tab_len[s]);
    if (st == FR_STATUS_OK && p->teacher[s]) { /* cached logits of the view each image is shown in (hflip alone) */
        const size_t per = p->pol ? (size_t)fr_aug_policy_max_ops(p->pol) * FR_AUG_REC : 0;
        for (int i = 0; i < p->batch; i++) {
            float *row = p->teacher[s] + (size_t)i * p->k;
            if (i >= b->n) { /* padding rows */
                memset(row, 0, (size_t)p->k * sizeof(float));
                continue;
            }
            int v = p->pol && fr_aug_policy_mirrors(p->pol, p->prog[s] + i * per);
            memcpy(row, b->extra + ((size_t)i * 2 + v) * p->k, (size_t)p->k * sizeof(float));
        }
    }
    return st;
}

static void prep_free(struct fr_fit_prep *p)
{
    for (int s = 0; s < 2; s++) {
        free(p->prog[s]);
        free(p->mixrec[s]);
        free(p->tab[s]);
        free(p->strong_prog[s]);
        free(p->teacher[s]);
    }
}

static void metrics_line(const char *out_dir, const char *tag, const struct fr_epoch_stats *e, int64_t step)
{
    if (!out_dir || fr_dist_rank(fr_dist_world()) > 0) /* several ranks: rank 0 writes */
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    fprintf(f, "{");
    if (tag)
        fprintf(f, "\"stage\": \"%s\", ", tag);
    fprintf(f, "\"epoch\": %lld, \"epochs\": %lld, \"global_step\": %lld, \"train_loss\": %.6f, ", (long long)e->epoch,
            (long long)e->epochs, (long long)step, e->train_loss);
    if (isnan(e->val_accuracy))
        fprintf(f, "\"val_accuracy\": null, \"val_loss\": null, ");
    else
        fprintf(f, "\"val_accuracy\": %.6f, \"val_loss\": %.6f, ", e->val_accuracy, e->val_loss);
    if (!isnan(e->val_accuracy_ema))
        fprintf(f, "\"val_accuracy_ema\": %.6f, ", e->val_accuracy_ema);
    fprintf(f, "\"lr\": %.8g, \"seconds\": %.3f, \"train_images_per_second\": %.1f}\n", (double)e->lr, e->seconds,
            e->images_per_second);
    fclose(f);
}

/* reload every parameter and state tensor (optimizer included) from the checkpoint the net came from */
static enum fr_status reload_state(struct fr_net *net)
{
    int k = 0;
    struct fr_named_tensor *ts = fr_net_state_tensors(net, &k);
    if (!ts)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
    struct fr_st_load_opts lo = {.allow_missing = false, .ignore_unexpected = true};
    enum fr_status st = fr_checkpoint_load(net->ck_path, ts, k, &lo, NULL);
    free(ts);
    return st;
}

static enum fr_status save_ckpt(struct fr_net *net, const struct fr_fit_opts *o, int64_t epoch, int64_t sie,
                                int64_t gstep)
{
    struct fr_dist *d = fr_dist_world();
    if (!o->out_dir)
        return FR_STATUS_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.safetensors", o->out_dir, o->ckpt_name ? o->ckpt_name : "model");
    /* several ranks hold the same weights: rank 0 writes, every rank learns whether it could */
    return fr_dist_agree(d, fr_dist_rank(d) == 0 ? fr_net_save(net, path, epoch, sie, gstep, o->meta, o->n_meta)
                                                 : FR_STATUS_OK);
}

/* The weights' moving average after an epoch: validated, and saved beside the checkpoint (<name>_ema.safetensors:
 * a checkpoint of its own for eval, predict or a teacher). */
static enum fr_status ema_epoch(struct fr_net *net, const struct fr_fit_opts *o, int64_t epoch, int64_t gstep,
                                double *val_accuracy)
{
    *val_accuracy = NAN;
    if (!(o->val_ds && o->n_val > 0) && !o->out_dir)
        return FR_STATUS_OK;
    struct fr_net *e;
    enum fr_status st = fr_net_ema(net, &e);
    if (st == FR_STATUS_OK && o->val_ds && o->n_val > 0) {
        struct fr_eval ev;
        if ((st = fr_net_evaluate(e, o->val_ds, o->val_idx, o->n_val, &ev)) == FR_STATUS_OK)
            *val_accuracy = ev.accuracy;
        fr_eval_free(&ev);
    }
    if (st == FR_STATUS_OK && o->out_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s_ema.safetensors", o->out_dir, o->ckpt_name ? o->ckpt_name : "model");
        st = fr_net_save(e, path, epoch, 0, gstep, o->meta, o->n_meta);
    }
    fr_net_free(e);
    return st;
}

/* The trainer of this fit: u8 input through the policy's stage, the net's normalisation, a frozen copy of the
 * teacher in the graph when distilling from augmented input; or, from layer first_layer > 0, f32 features. */
static enum fr_status fit_trainer(struct fr_net *net, const struct fr_trainset *ts, const struct fr_fit_opts *o,
                                  const struct fr_aug_policy *pol, bool shorthand_mix, enum fr_loss_kind lk, int B,
                                  const struct fr_aug_policy *strong, int U, int64_t first, int64_t global_batch,
                                  int64_t ufirst, int global_u, int first_layer)
{
    struct fr_trainer_opts to;
    fr_trainer_opts_init(&to);
    to.batch = B;
    to.first_sample = (uint32_t)first;
    to.global_batch = (int)global_batch;
    to.sync_bn = o->sync_bn && fr_dist_size(fr_dist_world()) > 1; /* one process: its batch is the batch */
    to.eval_batch = net->eval_batch;
    to.loss = lk;
    to.label_smoothing = o->label_smoothing;
    to.alpha = o->alpha;
    to.temperature = o->temperature;
    to.optim = o->optim;
    /* the ranks' gradients are summed (or a slowed-down step waits: FRUGAL_SLOWDOWN) before any update */
    to.optim.after_backward = fr_dist_size(fr_dist_world()) > 1 || fr_dist_slowdown(fr_dist_world()) > 1;
    to.groups = o->groups;
    to.n_groups = o->n_groups;
    to.seed = o->seed;
    to.input = first_layer ? FR_F32 : FR_U8;
    to.first_layer = first_layer;
    to.augment = first_layer ? NULL : pol;
    to.mix = shorthand_mix;
    to.unlabeled = U; /* FixMatch: B - U labeled + U unlabeled rows (of global_u: from row ufirst) */
    to.first_unlabeled = (uint32_t)ufirst;
    to.global_unlabeled = global_u;
    to.strong = strong;
    to.threshold = o->threshold;
    to.lambda_u = o->lambda_u;
    memcpy(to.mean, net->mean, sizeof to.mean);
    memcpy(to.std, net->std, sizeof to.std);
    struct fr_model *teacher = NULL;
    enum fr_status st = FR_STATUS_OK;
    if (lk == FR_LOSS_DISTILL && !ts->teacher) { /* the teacher sees the augmented batch, in the same graph */
        st = fr_net_model_copy(o->teacher, net->ctx, net->be, "teacher.", &teacher);
        to.teacher = teacher;
        memcpy(to.teacher_mean, o->teacher->mean, sizeof to.teacher_mean);
        memcpy(to.teacher_std, o->teacher->std, sizeof to.teacher_std);
    }
    fr_trainer_free(net->trainer);
    net->trainer = NULL;
    if (st == FR_STATUS_OK)
        st = fr_trainer_new(net->model, net->be, &to, &net->trainer);
    fr_model_free(teacher); /* its tensors stay in the context, used by the graph */
    return st;
}

/* --- FixMatch: labeled rows from a cycled loader of their own, the unlabeled ones from the main loader --- */

/* --- several ranks (mpirun): the same inputs everywhere, shares of the batch by speed --- */

static enum fr_status fit_same_inputs(struct fr_dist *d, const struct fr_trainset *ts, const struct fr_fit_opts *o,
                                      int B, int U)
{
    enum fr_status st = FR_STATUS_OK;
    if (B < fr_dist_size(d))
        st = fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: a batch of %d images cannot be split across %d ranks", B,
                      fr_dist_size(d));
    else if (U > 0 && U < B)
        st = fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: FixMatch across %d ranks needs at least as many unlabeled "
                      "images per step as labeled ones (%d < %d)", fr_dist_size(d), U, B);
    st = fr_dist_agree(d, st);
    if (st == FR_STATUS_OK && U > 0) /* FixMatch's unlabeled images */
        st = fr_dist_same_images(d, "the unlabeled images", o->unlabeled_ds, o->unlabeled_idx, o->n_unlabeled);
    for (int s = 0; s < 2 && st == FR_STATUS_OK; s++) { /* the images each dataset gives the training set */
        const struct fr_dataset *ds = ts->ds[s];
        int64_t *idx = ds ? malloc((size_t)(ts->n + 1) * sizeof *idx) : NULL, m = 0;
        for (int64_t i = 0; idx && i < ts->n; i++)
            if ((ts->src ? ts->src[i] : 0) == s)
                idx[m++] = ts->idx[i];
        st = fr_dist_agree(d, ds && !idx ? fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory") : FR_STATUS_OK);
        if (st == FR_STATUS_OK && ds)
            st = fr_dist_same_images(d, "the training images", ds, idx, m);
        free(idx);
    }
    if (st != FR_STATUS_OK)
        return st;
    /* labels, soft targets, teacher logits and the options that shape the run */
    uint64_t hsh = fr_dist_hash(0, ts->label, (size_t)ts->n * sizeof *ts->label);
    if (ts->soft)
        hsh = fr_dist_hash(hsh, ts->soft, (size_t)(ts->n * ts->n_classes) * sizeof(float));
    if (ts->teacher)
        hsh = fr_dist_hash(hsh, ts->teacher, (size_t)(ts->n * fr_trainset_teacher_width(ts)) * sizeof(float));
    double num[] = {o->epochs, B, (double)o->seed, o->sched.base_lr, o->sched.kind, o->sched.warmup_steps,
                    o->optim.kind, o->optim.weight_decay, o->optim.momentum, o->cutmix, o->mixup,
                    o->label_smoothing, o->distill, o->alpha, o->temperature, o->balance, o->sync_bn,
                    U, o->mu, o->threshold, o->lambda_u};
    hsh = fr_dist_hash(hsh, num, sizeof num);
    if (o->augment)
        hsh = fr_dist_hash(hsh, o->augment, strlen(o->augment));
    if (U > 0 && o->strong)
        hsh = fr_dist_hash(hsh, o->strong, strlen(o->strong));
    char detail[160];
    snprintf(detail, sizeof detail, "%lld images, batch %d, %d epochs, seed %llu, augment '%.40s'", (long long)ts->n, B,
             o->epochs, (unsigned long long)o->seed, o->augment ? o->augment : "");
    return fr_dist_same(d, "the training labels and options", hsh, detail);
}

/* host copies of the model's parameters and running statistics (restore = false: take them) */
/* This rank's part of every step, (re)made: a trainer for rows [first, first + count) of the global batch (FixMatch: and
 * the unlabeled rows cut at the same fractions), the loader of that shard, FixMatch's labeled rows from global step
 * gstep on. The old loader stops first: its thread reads prep and the trainer. */
struct fit_shard {
    struct fr_net *net;
    struct fr_trainset *ts;
    const struct fr_fit_opts *o;
    const struct fr_aug_policy *pol;
    bool shorthand;
    enum fr_loss_kind lk;
    const struct fr_aug_policy *strong;
    const struct fr_fit_features *ff;
    int B, U;
    struct fr_fit_prep *prep;
    struct fr_loader_opts *lo;
    const struct fr_loader_src *src, *usrc;
    struct fr_loader **ld;
    struct fr_fit_fixmatch_rows *fx;
};

static enum fr_status fit_share(struct fit_shard *s, int64_t first, int64_t count, int64_t gstep, int64_t *ufirst,
                                int64_t *ucount)
{
    const bool fm = s->U > 0;
    *ufirst = 0, *ucount = s->U;
    if (fm)
        fr_fit_fixmatch_share(s->B, s->U, first, count, ufirst, ucount);
    fr_loader_free(*s->ld);
    *s->ld = NULL;
    enum fr_status st = fit_trainer(s->net, s->ts, s->o, s->pol, s->shorthand, s->lk, (int)(count + *ucount), s->strong,
                                    (int)*ucount, first, fm ? (int64_t)s->B + s->U : s->B, *ufirst, s->U,
                                    s->ff ? s->ff->layers : 0);
    s->prep->tr = s->net->trainer;
    s->prep->batch = (int)count, s->prep->first = (uint32_t)first;
    s->prep->row0 = s->B + *ufirst, s->prep->srow0 = s->B + s->U + *ufirst;
    s->lo->shard_first = (int)(fm ? *ufirst : first), s->lo->shard_count = (int)(fm ? *ucount : count);
    if (st == FR_STATUS_OK)
        st = fr_loader_new_src(fm ? s->usrc : s->src, s->lo, s->ld);
    if (st == FR_STATUS_OK && fm) {
        fr_fit_fixmatch_rows_free(s->fx);
        st = fr_fit_fixmatch_rows_new(s->fx, s->src, s->B, first, (int)count, (int)*ucount, gstep, s->o->seed, s->net);
    }
    return st;
}

/* fit_share in the middle of training: every saved tensor (weights, running statistics, optimizer state) and the
 * graph's step go over to the new trainer, as a --resume from memory would (fr_net_snapshot) */
static enum fr_status fit_reshard_live(struct fit_shard *s, int64_t first, int64_t count, int64_t gstep,
                                       int64_t *ufirst, int64_t *ucount)
{
    struct fr_net *net = s->net;
    struct fr_net_snapshot snap = {0};
    enum fr_status st = fr_trainer_finish(net->trainer, NULL);
    uint32_t gs = fr_graph_step(fr_trainer_graph(net->trainer, false));
    if (st == FR_STATUS_OK)
        st = fr_net_snapshot_take(net, &snap);
    if (st == FR_STATUS_OK)
        st = fit_share(s, first, count, gstep, ufirst, ucount);
    if (st == FR_STATUS_OK)
        st = fr_net_snapshot_put(net, &snap);
    if (st == FR_STATUS_OK)
        fr_graph_set_step(fr_trainer_graph(net->trainer, false), gs);
    fr_net_snapshot_free(&snap);
    return st;
}

/* --balance speed: each rank times a few steps on its share of the first batch (warm-up first), alone (no sum), then
 * the batch is split so that every rank's step ends at the same time (from this time, and from an earlier one at
 * prev_count rows when given: a fixed cost per step then counts as such). The steps leave no trace: the weights are
 * put back and the caller builds a fresh trainer (optimizer state) for the new share. *seconds: this rank's time. */
static enum fr_status fit_balance(struct fr_net *net, const struct fr_fit_prep *prep, struct fr_loader *ld,
                                  struct fr_fit_fixmatch_rows *fx, int64_t epoch, bool soft, double prev_seconds,
                                  int64_t prev_count, double *seconds, int64_t *first, int64_t *count)
{
    enum { WARMUP = 1, TIMED = 5 };
    struct fr_trainer *tr = net->trainer;
    struct fr_net_snapshot saved = {0};
    const struct fr_batch *b = NULL;
    enum fr_status st = fr_net_snapshot_take(net, &saved);
    if (st == FR_STATUS_OK && (st = fr_loader_start(ld, epoch, 0)) == FR_STATUS_OK)
        st = fr_loader_next(ld, &b);
    double best = INFINITY;
    for (int i = 0; st == FR_STATUS_OK && b && i < WARMUP + TIMED; i++) {
        struct fr_batch_in in = {.images = b->features ? (const void *)b->features : (const void *)b->images,
                                 .prog = prep->prog[b->slot], .mix = prep->mixrec[b->slot],
                                 .tab = prep->tab[b->slot], .tab_len = prep->tab_len[b->slot],
                                 .targets = soft ? (const void *)b->soft : (const void *)b->labels,
                                 .teacher = prep->teacher[b->slot] ? prep->teacher[b->slot] : b->extra};
        double t0 = now_s();
        if (fx && (st = fr_fit_fixmatch_step(fx, b, prep->pol, prep, &in)) != FR_STATUS_OK) /* FixMatch: its labeled rows */
            break;
        if ((st = fr_trainer_submit(tr, &in, 0.0f, NULL)) == FR_STATUS_OK)
            st = fr_trainer_finish(tr, NULL);
        fr_dist_slow_down(fr_dist_world(), now_s() - t0); /* FRUGAL_SLOWDOWN: as the training steps */
        if (i >= WARMUP && now_s() - t0 < best)
            best = now_s() - t0; /* the fastest: other jobs on the machine only slow steps down */
    }
    if (st == FR_STATUS_OK)
        st = fr_net_snapshot_put(net, &saved);
    fr_net_snapshot_free(&saved);
    st = fr_dist_agree(fr_dist_world(), st);
    *seconds = best;
    return st == FR_STATUS_OK ? fr_dp_balance(fr_dist_world(), best, prev_seconds, prev_count, first, count) : st;
}

enum fr_status fr_fit(struct fr_net *net, struct fr_trainset *ts, const struct fr_fit_opts *o,
                      struct fr_fit_result *r)
{
    memset(r, 0, sizeof *r);
    r->val_accuracy = r->val_accuracy_ema = NAN;
    const int k = net->n_classes;
    if (ts->n <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: the training set is empty");
    if (ts->n_classes != k)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: training set has %d classes, the model %d", ts->n_classes, k);
    for (int s = 0; s < 2; s++)
        if (ts->ds[s] && (ts->ds[s]->c != net->c || ts->ds[s]->h != net->h || ts->ds[s]->w != net->w))
            return fr_error(FR_STATUS_SHAPE, "%s: images are %dx%dx%d, the model expects %dx%dx%d", ts->ds[s]->source,
                            ts->ds[s]->c, ts->ds[s]->h, ts->ds[s]->w, net->c, net->h, net->w);
    if (o->epochs <= 0 || o->batch <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: epochs and batch must be positive");
    if (!(o->cutmix >= 0) || !(o->mixup >= 0))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: cutmix and mixup alphas must be >= 0");
    struct fr_aug_policy *pol = NULL;
    enum fr_status st = FR_STATUS_OK;
    if (o->augment && (st = fr_aug_policy_parse(o->augment, &pol)) != FR_STATUS_OK)
        return st;
    const struct fr_aug_mix_cfg *pmix = pol ? fr_aug_policy_mix(pol) : NULL;
    bool shorthand = o->cutmix > 0 || o->mixup > 0, mixing = pmix || shorthand;
    float mean[4], sd[4];
    if (pmix && shorthand)
        st = fr_error(FR_STATUS_INVALID_ARGUMENT,
                      "fit: the policy '%s' has its own cutmix/mixup stage: drop --cutmix/--mixup (they are shorthands "
                      "for such a stage)",
                      o->augment);
    else if (pol && fr_aug_policy_normalize(pol, mean, sd))
        st = fr_net_set_normalize(net, mean, sd); /* saved with the net: evaluation normalises the same way */
    else if (o->distill && mixing && ts->teacher)
        st = fr_error(FR_STATUS_UNSUPPORTED, "fit: CutMix/MixUp with distillation needs the teacher in the training graph "
                                             "(cached teacher logits are of the un-mixed images)");
    else if (o->distill && ts->teacher &&
             (fr_fit_teacher_views(o) == 0 || (fr_fit_teacher_views(o) == 2 && ts->teacher_views != 2)))
        st = fr_error(FR_STATUS_UNSUPPORTED, "fit: the cached teacher logits are of the images %s; augmentation '%s' "
                                             "needs the teacher in the training graph",
                      ts->teacher_views == 2 ? "and their mirror images ('hflip' alone)" : "as they are", o->augment);
    else if (o->distill && !ts->teacher && !o->teacher)
        st = fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: distillation needs teacher logits or a teacher");
    else if (o->distill && o->teacher && o->teacher->n_classes != k)
        st = fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: the teacher has %d classes, the student %d",
                      o->teacher->n_classes, k);
    if (st == FR_STATUS_OK && pol) {
        int oh, ow;
        fr_aug_policy_out_size(pol, net->h, net->w, &oh, &ow);
        if (oh != net->h || ow != net->w)
            st = fr_error(FR_STATUS_INVALID_ARGUMENT,
                          "fit: augmentation '%s': %s makes %dx%d images, the model's input is %dx%d (training keeps "
                          "the input size)",
                          o->augment, fr_aug_policy_resizing_op(pol, net->h, net->w), ow, oh, net->w, net->h);
    }
    enum fr_loss_kind lk = o->distill ? FR_LOSS_DISTILL : ts->soft ? FR_LOSS_SOFT_CE : FR_LOSS_CE;
    const bool fm = o->n_unlabeled > 0; /* FixMatch */
    struct fr_aug_policy *strong = NULL;
    if (st == FR_STATUS_OK && fm)
        st = fr_fit_fixmatch_check(net, o, lk, mixing, &strong);
    for (int64_t i = 0; st == FR_STATUS_OK && lk == FR_LOSS_CE && i < ts->n; i++)
        if (ts->label[i] < 0)
            st = fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: training image %lld has no label", (long long)ts->idx[i]);
    if (st != FR_STATUS_OK) {
        fr_aug_policy_free(pol);
        fr_aug_policy_free(strong);
        return st;
    }
    int B = o->batch;
    if (B > ts->n)
        B = (int)ts->n; /* a tiny set still trains: one batch per epoch */
    int U = 0; /* FixMatch: unlabeled rows per step, after the B labeled ones; an epoch is a pass over them */
    if (fm)
        U = (int64_t)o->mu * B < o->n_unlabeled ? o->mu * B : (int)o->n_unlabeled;
    int64_t spe = fm ? o->n_unlabeled / U : ts->n / B;
    int h = net->h, w = net->w;
    /* a frozen backbone's outputs once per image, a leading rrc at load (src/recipes/features.c) */
    struct fr_read_opts ro;
    fr_fit_plan_make(net, ts, o, pol, &r->plan, &ro);
    struct fr_fit_features *ff = NULL;
    double t_feat = now_s();
    if (r->plan.cached_features &&
        (st = fr_fit_features_new(net, ts, o, r->plan.frozen_layers, &ff, &r->feature_images)) != FR_STATUS_OK) {
        fr_aug_policy_free(pol);
        return st;
    }
    r->feature_seconds = ff ? now_s() - t_feat : 0;

    /* several ranks (mpirun): each trains on rows [first, first + count) of every global batch of B; FixMatch also on
       rows [ufirst, ufirst + ucount) of its U unlabeled ones */
    struct fr_dist *d = fr_dist_world();
    int64_t first = 0, count = B, ufirst = 0, ucount = U;
    fr_dist_share(d, B, 1, &first, &count);
    if (fm)
        fr_fit_fixmatch_share(B, U, first, count, &ufirst, &ucount);
    if (fr_dist_size(d) > 1)
        st = fit_same_inputs(d, ts, o, B, U);
    if (st == FR_STATUS_OK)
        st = fit_trainer(net, ts, o, pol, shorthand, lk, (int)(count + ucount), strong, (int)ucount, first,
                         fm ? (int64_t)B + U : B, ufirst, U, ff ? ff->layers : 0);
    if (st != FR_STATUS_OK) {
        fr_fit_features_free(ff);
        fr_aug_policy_free(pol);
        fr_aug_policy_free(strong);
        return st;
    }
    struct fr_trainer *tr = net->trainer;
    int64_t start_epoch = 0, start_step = 0, gstep = 0;
    if (o->resume && net->ck_path) {
        start_epoch = net->ck_epoch;
        start_step = net->ck_step_in_epoch;
        gstep = net->ck_global_step;
        if (start_step >= spe) {
            start_epoch++;
            start_step = 0;
        }
    }
    struct fr_schedule sched = o->sched;
    sched.total_steps = (int64_t)o->epochs * spe;

    /* per batch slot: programs, mix records and tables, drawn on the loader's thread */
    struct fr_fit_prep prep = {.pol = pol, .mix = pmix, .cutmix = o->cutmix, .mixup = o->mixup, .tr = tr,
                            .seed = o->seed, .spe = spe, .batch = (int)count, .h = h, .w = w, .k = k,
                            .first = (uint32_t)first, .strong = strong, .row0 = B + ufirst, .srow0 = B + U + ufirst};
    const bool mirror_views = ts->teacher && ts->teacher_views == 2; /* cached logits of both views of each image */
    size_t kops = pol ? (size_t)fr_aug_policy_max_ops(pol) : 1, tab_cap = fr_trainer_tables_len(tr) * (size_t)B;
    tab_cap = fm ? 0 : tab_cap / (size_t)count + 1; /* room for any share of the batch (--balance speed) */
    for (int s = 0; s < 2 && st == FR_STATUS_OK; s++) {
        prep.prog[s] = malloc((size_t)(B + U) * kops * FR_AUG_REC * sizeof(float));
        prep.mixrec[s] = calloc((size_t)B * FR_AUG_MIX_REC, sizeof(float));
        prep.tab[s] = tab_cap ? malloc(tab_cap * sizeof(int32_t)) : NULL;
        prep.strong_prog[s] = fm ? malloc((size_t)U * fr_aug_policy_max_ops(strong) * FR_AUG_REC * sizeof(float)) : NULL;
        prep.teacher[s] = mirror_views ? malloc((size_t)B * k * sizeof(float)) : NULL;
        if (!prep.prog[s] || !prep.mixrec[s] || (tab_cap && !prep.tab[s]) || (fm && !prep.strong_prog[s]) ||
            (mirror_views && !prep.teacher[s]))
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
    }
    struct fr_loader_src src = {.ds = {ts->ds[0], ts->ds[1]}, .n = ts->n, .which = ts->src, .idx = ts->idx,
                                .labels = ts->label, .soft = ts->soft, .extra = ts->teacher, .n_classes = k,
                                .n_extra = ts->teacher ? fr_trainset_teacher_width(ts) : 0};
    struct fr_loader_src usrc = {.ds = {o->unlabeled_ds}, .n = o->n_unlabeled, .idx = o->unlabeled_idx, .n_classes = k};
    if (ff) { /* feature rows instead of images; an unreadable entry took another's targets */
        src.features = ff->rows, src.n_features = ff->width;
        if (ff->label)
            src.labels = ff->label, src.soft = ff->soft, src.extra = ff->teacher;
    }
    struct fr_loader_opts lo;
    fr_loader_opts_init(&lo);
    lo.batch = fm ? U : B;
    lo.shard_first = (int)(fm ? ufirst : first);
    lo.shard_count = (int)(fm ? ucount : count);
    lo.drop_last = true;
    lo.seed = o->seed;
    lo.prepare = fit_prepare;
    lo.user = &prep;
    lo.read = r->plan.crop_at_load ? &ro : NULL;
    struct fr_loader *ld = NULL;
    if (st == FR_STATUS_OK)
        st = fr_loader_new_src(fm ? &usrc : &src, &lo, &ld);
    /* FixMatch: the labeled images come from a loader of their own, cycled, and go first in each step's upload */
    struct fr_fit_fixmatch_rows fx = {0};
    if (st == FR_STATUS_OK && fm)
        st = fr_fit_fixmatch_rows_new(&fx, &src, B, first, (int)count, (int)ucount, gstep, o->seed, net);
    struct fr_dp *dp = NULL;
    struct fit_shard sh = {net, ts, o, pol, shorthand, lk, strong, ff, B, U, &prep, &lo, &src, &usrc, &ld, &fx};
    if (st == FR_STATUS_OK && fr_dist_size(d) > 1) {
        /* --balance speed: shares of the batch by the ranks' measured step times, three times (each time at the
         * shares the last one gave: a fixed cost per step shows apart from the cost per image, and a timing that
         * other jobs on the machine spoiled is measured again) */
        double t_prev = 0;
        int64_t n_prev = 0;
        for (int round = 0; round < 3 && st == FR_STATUS_OK && o->balance == FR_BALANCE_SPEED; round++) {
            int64_t was = count;
            double t = 0;
            if ((st = fit_balance(net, &prep, ld, fm ? &fx : NULL, start_epoch, lk == FR_LOSS_SOFT_CE, t_prev, n_prev,
                                  &t, &first, &count)) != FR_STATUS_OK)
                break;
            t_prev = t, n_prev = was;
            /* a fresh trainer even for an unchanged share: no optimizer state or step count from the timed steps */
            st = fit_share(&sh, first, count, gstep, &ufirst, &ucount);
            tr = net->trainer;
        }
    }
    if (st == FR_STATUS_OK && (fr_dist_size(d) > 1 || fr_dist_slowdown(d) > 1)) /* share: of the global batch's rows */
        st = fr_dp_new(d, tr, net->model, (double)(count + ucount) / (double)(B + U), count,
                       o->balance == FR_BALANCE_SPEED, &dp);
    r->ranks = fr_dist_size(d);
    if (st == FR_STATUS_OK && o->resume && net->ck_path) {
        st = reload_state(net);
        fr_graph_set_step(fr_trainer_graph(tr, false), net->ck_graph_step);
    }
    if (st == FR_STATUS_OK && fr_dist_size(d) > 1) /* every rank starts from the same weights */
        st = fr_dist_same_net(d, "the network to train", net);

    double t_start = now_s(), train_s = 0; /* train_s: time in the step loops (validation and checkpoints excluded) */
    int64_t images_done = 0;
    for (int64_t e = start_epoch; e < o->epochs && st == FR_STATUS_OK; e++) {
        double te = now_s();
        double loss_sum = 0;
        int64_t loss_n = 0;
        float lr = 0, loss = NAN;
        const struct fr_batch *b = NULL;
        st = fr_loader_start(ld, e, e == start_epoch ? start_step : 0);
        while (st == FR_STATUS_OK && (st = fr_loader_next(ld, &b)) == FR_STATUS_OK && b) {
            struct fr_batch_in in = {.images = b->features ? (const void *)b->features : (const void *)b->images,
                                     .prog = prep.prog[b->slot], .mix = prep.mixrec[b->slot],
                                     .tab = prep.tab[b->slot], .tab_len = prep.tab_len[b->slot],
                                     .targets = lk == FR_LOSS_SOFT_CE ? (const void *)b->soft : (const void *)b->labels,
                                     .teacher = prep.teacher[b->slot] ? prep.teacher[b->slot] : b->extra};
            if (fm && (st = fr_fit_fixmatch_step(&fx, b, pol, &prep, &in)) != FR_STATUS_OK)
                break;
            /* unlabeled transfer images keep label -1: the distillation loss gives them teacher targets only */
            lr = fr_schedule_lr(&sched, gstep);
            float prev = NAN;
            if (dp)
                fr_dp_vote_stop(dp, o->stop && *o->stop);
            if ((st = fr_trainer_submit(tr, &in, lr, &prev)) != FR_STATUS_OK) /* prev: the step before, read late */
                break;
            if (dp) { /* the global batch's loss, known at once: every rank stops on the same step */
                char what[48];
                snprintf(what, sizeof what, "training step %lld", (long long)gstep);
                if ((st = fr_loss_check(prev = fr_dp_loss(dp), what)) != FR_STATUS_OK)
                    break;
            }
            if (!isnan(prev))
                loss_sum += prev, loss_n++, loss = prev;
            gstep++;
            images_done += B + U;
            r->steps++;
            bool stop = dp ? fr_dp_stop(dp) : o->stop && *o->stop;
            if (stop || b->step + 1 == spe) { /* the epoch's (or the run's) last step: wait for it */
                if ((st = fr_trainer_finish(tr, &prev)) != FR_STATUS_OK)
                    break;
                if (!dp)
                    loss_sum += prev, loss_n++, loss = prev;
            }
            if (o->on_progress) {
                struct fr_fit_progress p = {0};
                p.epoch = e;
                p.epochs = o->epochs;
                p.step = b->step + 1;
                p.steps_per_epoch = spe;
                p.global_step = gstep;
                p.loss = loss;
                p.lr = lr;
                p.elapsed = now_s() - t_start;
                double ts_now = train_s + (now_s() - te);
                p.images_per_second = ts_now > 0 ? (double)images_done / ts_now : 0;
                int64_t left = (o->epochs - e) * spe - (b->step + 1);
                p.eta = images_done > 0 ? p.elapsed / (double)r->steps * (double)left : 0;
                o->on_progress(o->user, &p);
            }
            if (stop) {
                st = save_ckpt(net, o, e, b->step + 1, gstep);
                if (st == FR_STATUS_OK)
                    st = fr_error(FR_STATUS_INTERRUPTED, "fit: interrupted at epoch %lld step %lld; checkpoint saved",
                                  (long long)e + 1, (long long)b->step + 1);
                r->interrupted = true;
            } else if (dp && b->step + 1 < spe && fr_dp_refine(dp, &first, &count)) {
                /* --balance speed during training: new rows from the next step on, the same weights and optimizer */
                int64_t next = b->step + 1;
                double t_re = now_s();
                st = fit_reshard_live(&sh, first, count, gstep, &ufirst, &ucount);
                if (fr_debug_enabled("dist"))
                    fr_log(FR_LOG_WARN, "dist: rank %d: %lld rows from step %lld on (%.1f ms for the new trainer)",
                           fr_dist_rank(d), (long long)count, (long long)gstep, 1e3 * (now_s() - t_re));
                tr = net->trainer;
                if (st == FR_STATUS_OK)
                    st = fr_dp_retarget(dp, tr, net->model, (double)(count + ucount) / (double)(B + U), count);
                if (st == FR_STATUS_OK)
                    st = fr_loader_start(ld, e, next);
                r->rebalanced++;
            }
        }
        double loop_s = now_s() - te;
        train_s += loop_s;
        if (st != FR_STATUS_OK)
            break;
        struct fr_epoch_stats es = {0};
        es.epoch = e + 1;
        es.epochs = o->epochs;
        es.train_loss = loss_n ? loss_sum / (double)loss_n : NAN;
        es.val_accuracy = es.val_loss = es.val_accuracy_ema = NAN;
        es.lr = lr;
        if (o->val_ds && o->n_val > 0) {
            struct fr_eval ev;
            st = ff ? fr_fit_features_eval(net, ff, o->val_ds, &ev) : fr_net_evaluate(net, o->val_ds, o->val_idx, o->n_val, &ev);
            if (st != FR_STATUS_OK)
                break;
            es.val_accuracy = ev.accuracy;
            es.val_loss = ev.loss;
            fr_eval_free(&ev);
        }
        if (o->optim.ema > 0.0f && (st = ema_epoch(net, o, e + 1, gstep, &es.val_accuracy_ema)) != FR_STATUS_OK)
            break;
        es.seconds = now_s() - te;
        es.images_per_second = loop_s > 0 ? (double)(loss_n * (B + U)) / loop_s : 0; /* training images/s */
        r->epochs_done = e + 1;
        r->train_loss = es.train_loss;
        r->val_accuracy = es.val_accuracy;
        r->val_accuracy_ema = es.val_accuracy_ema;
        metrics_line(o->out_dir, o->metrics_tag, &es, gstep);
        if ((st = save_ckpt(net, o, e + 1, 0, gstep)) != FR_STATUS_OK)
            break;
        if (o->on_epoch)
            o->on_epoch(o->user, &es);
    }
    if (tr)
        fr_trainer_finish(tr, NULL); /* nothing left in flight on an error either */
    r->seconds = now_s() - t_start;
    r->images_per_second = train_s > 0 ? (double)images_done / train_s : 0;
    r->fallback_ops = fr_net_fallback_ops(net);
    r->local_batch = (int)count;
    r->host_to_device_bytes_per_step = tr ? fr_trainer_upload_bytes(tr) : 0;
    fr_loader_free(ld);
    fr_fit_fixmatch_rows_free(&fx);
    fr_dp_free(dp);
    prep_free(&prep);
    fr_fit_features_free(ff);
    fr_aug_policy_free(pol);
    fr_aug_policy_free(strong);
    return st;
}
