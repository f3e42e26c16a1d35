/* fr_fit's FixMatch steps: the labeled rows from a cycled loader of their own, the unlabeled ones (weak and strong
 * views) from the main loader, and each rank's share of both under mpirun. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "frugal/augment.h"
#include "frugal/recipes.h"
#include "recipes/recipes_internal.h"

enum fr_status fr_fit_fixmatch_check(const struct fr_net *net, const struct fr_fit_opts *o, enum fr_loss_kind lk,
                                     bool mixing, struct fr_aug_policy **strong)
{
    *strong = NULL;
    const struct fr_dataset *u = o->unlabeled_ds;
    if (lk != FR_LOSS_CE || mixing)
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "fit: FixMatch trains on hard labels without distillation, soft targets or CutMix/MixUp");
    if (o->mu < 1 || !(o->threshold >= 0.0f && o->threshold <= 1.0f) || !(o->lambda_u >= 0.0f) || !isfinite(o->lambda_u))
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "fit: FixMatch needs mu >= 1 (got %d), a threshold in [0, 1] (%g) and lambda_u >= 0 (%g)", o->mu,
                        (double)o->threshold, (double)o->lambda_u);
    if (!u || !o->strong)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: FixMatch needs the unlabeled images' dataset and a strong policy");
    if (u->c != net->c || u->h != net->h || u->w != net->w)
        return fr_error(FR_STATUS_SHAPE, "%s: images are %dx%dx%d, the model expects %dx%dx%d", u->source, u->c, u->h,
                        u->w, net->c, net->h, net->w);
    for (int64_t i = 0; o->unlabeled_idx && i < o->n_unlabeled; i++)
        if (o->unlabeled_idx[i] < 0 || o->unlabeled_idx[i] >= u->n)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: unlabeled image %lld is outside %s",
                            (long long)o->unlabeled_idx[i], u->source);
    if (!o->unlabeled_idx && o->n_unlabeled > u->n)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: %lld unlabeled images, %s has %lld", (long long)o->n_unlabeled,
                        u->source, (long long)u->n);
    enum fr_status st = fr_aug_policy_parse(o->strong, strong);
    if (st != FR_STATUS_OK)
        return st;
    int oh, ow;
    float m[4], sd[4];
    fr_aug_policy_out_size(*strong, net->h, net->w, &oh, &ow);
    if (fr_aug_policy_mix(*strong) || fr_aug_policy_normalize(*strong, m, sd) || oh != net->h || ow != net->w)
        st = fr_error(FR_STATUS_INVALID_ARGUMENT,
                      "fit: FixMatch's strong policy '%s' must keep the image size and have no cutmix/mixup or "
                      "normalize stage",
                      o->strong);
    if (st != FR_STATUS_OK) {
        fr_aug_policy_free(*strong);
        *strong = NULL;
    }
    return st;
}

/* FixMatch across ranks: the unlabeled rows that go with labeled rows [first, first + count) of B, cut at the same
 * fractions of the step (the same cuts on every rank; at least one row each when U >= B) */
void fr_fit_fixmatch_share(int64_t B, int64_t U, int64_t first, int64_t count, int64_t *ufirst, int64_t *ucount)
{
    *ufirst = first * U / B;
    *ucount = (first + count) * U / B - *ufirst;
}


void fr_fit_fixmatch_rows_free(struct fr_fit_fixmatch_rows *f)
{
    fr_loader_free(f->ld);
    free(f->images);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

/* the labeled loader positioned where global step gstep needs it (resume): this rank's rows [first, first + B) of
 * each global batch of global_B */
enum fr_status fr_fit_fixmatch_rows_new(struct fr_fit_fixmatch_rows *f, const struct fr_loader_src *src, int global_B,
                                        int64_t first, int B, int U, int64_t gstep, uint64_t seed, const struct fr_net *net)
{
    memset(f, 0, sizeof *f);
    f->B = B, f->U = U, f->h = net->h, f->w = net->w, f->first = first;
    f->img = (size_t)net->c * net->h * net->w;
    f->images = malloc((size_t)(B + U) * f->img);
    f->labels = malloc((size_t)B * sizeof *f->labels);
    if (!f->images || !f->labels)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
    struct fr_loader_opts lo;
    fr_loader_opts_init(&lo);
    lo.batch = global_B;
    lo.shard_first = (int)first;
    lo.shard_count = B;
    lo.drop_last = true;
    lo.seed = seed;
    enum fr_status st = fr_loader_new_src(src, &lo, &f->ld);
    if (st != FR_STATUS_OK)
        return st;
    f->spe = fr_loader_batches_per_epoch(f->ld);
    f->epoch = gstep / f->spe;
    return fr_loader_start(f->ld, f->epoch, gstep % f->spe);
}

/* one step's inputs: the next labeled batch first (its weak programs drawn here), then the unlabeled batch b */
enum fr_status fr_fit_fixmatch_step(struct fr_fit_fixmatch_rows *f, const struct fr_batch *b, const struct fr_aug_policy *pol,
                                    const struct fr_fit_prep *prep, struct fr_batch_in *in)
{
    const struct fr_batch *l = NULL;
    enum fr_status st;
    while ((st = fr_loader_next(f->ld, &l)) == FR_STATUS_OK && !l) /* the labeled images' next pass */
        if ((st = fr_loader_start(f->ld, ++f->epoch, 0)) != FR_STATUS_OK)
            return st;
    if (st != FR_STATUS_OK)
        return st;
    for (int i = 0; i < l->n; i++)
        if (l->index[i] < 0)
            return fr_error(FR_STATUS_FORMAT, "fit: no readable image in a labeled batch");
    memcpy(f->images, l->images, (size_t)f->B * f->img);
    memcpy(f->images + (size_t)f->B * f->img, b->images, (size_t)f->U * f->img);
    memcpy(f->labels, l->labels, (size_t)f->B * sizeof *f->labels);
    const uint32_t step = (uint32_t)(b->epoch * prep->spe + b->step); /* as fit_prepare: samples first.. of it */
    if (pol && (st = fr_aug_policy_draw_batch(pol, prep->seed, step, (uint32_t)f->first, f->B, f->B, f->h, f->w,
                                              prep->prog[b->slot], NULL)) != FR_STATUS_OK)
        return st;
    in->images = f->images;
    in->targets = f->labels;
    in->strong = prep->strong_prog[b->slot];
    in->mix = NULL;
    in->tab = NULL; /* devices without doubles: the trainer computes the tables */
    in->tab_len = 0;
    in->teacher = NULL;
    return FR_STATUS_OK;
}
