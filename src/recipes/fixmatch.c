/* FixMatch as a recipe (Sohn et al. 2020): a network learns from the labeled images of a split and, at once, from
 * the unlabeled ones through fr_fit's weak/strong views and confident targets; options checked before training. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/recipes.h"

void fr_fixmatch_opts_init(struct fr_fixmatch_opts *o)
{
    memset(o, 0, sizeof *o);
    fr_fit_opts_init(&o->fit);
    o->fit.augment = FR_FIXMATCH_WEAK;
    o->fit.strong = FR_FIXMATCH_STRONG;
}

enum fr_status fr_fixmatch_check(const struct fr_fixmatch_opts *o)
{
    const struct fr_fit_opts *f = &o->fit;
    if (!(f->threshold >= 0.0f && f->threshold <= 1.0f))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fixmatch: threshold %g must be in [0, 1]", (double)f->threshold);
    if (f->mu < 1)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fixmatch: mu %d must be >= 1", f->mu);
    if (!(f->lambda_u >= 0.0f) || !isfinite(f->lambda_u))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fixmatch: lambda_u %g must be >= 0", (double)f->lambda_u);
    if (!(o->unlabeled_ratio >= 0) || !isfinite(o->unlabeled_ratio))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fixmatch: unlabeled ratio %g must be >= 0", o->unlabeled_ratio);
    if (!f->strong || !f->strong[0])
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fixmatch: the strong view needs a policy");
    return FR_STATUS_OK;
}

enum fr_status fr_fixmatch(struct fr_net *net, const struct fr_dataset *ds, const struct fr_split *sp,
                           const struct fr_fixmatch_opts *o, struct fr_fit_result *r)
{
    memset(r, 0, sizeof *r);
    enum fr_status st = fr_fixmatch_check(o);
    if (st != FR_STATUS_OK)
        return st;
    if (net->c != ds->c || net->h != ds->h || net->w != ds->w)
        return fr_error(FR_STATUS_SHAPE, "%s: images are %dx%dx%d, the network expects %dx%dx%d", ds->source, ds->c,
                        ds->h, ds->w, net->c, net->h, net->w);
    if (net->n_classes != ds->n_classes)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s has %d classes, the network %d", ds->source, ds->n_classes,
                        net->n_classes);
    if (sp->n_labeled == 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: fixmatch needs labeled images", ds->source);
    int64_t *unl = NULL, n_unl = 0;
    /* round 1 of the self-training convention: the same subset a first Noisy Student round would draw */
    if ((st = fr_round_unlabeled(sp, o->unlabeled_ratio, o->fit.seed, 1, &unl, &n_unl)) != FR_STATUS_OK)
        return st;
    if (n_unl == 0) {
        free(unl);
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: no unlabeled images for fixmatch", ds->source);
    }
    struct fr_trainset ts = {.n_classes = net->n_classes};
    st = fr_trainset_add(&ts, 0, ds, sp->labeled, sp->n_labeled, NULL, NULL);
    if (st == FR_STATUS_OK) {
        struct fr_fit_opts fo = o->fit;
        fo.unlabeled_ds = ds;
        fo.unlabeled_idx = unl;
        fo.n_unlabeled = n_unl;
        st = fr_fit(net, &ts, &fo, r);
    }
    fr_trainset_free(&ts);
    free(unl);
    return st;
}
