/* Self-training rounds (pseudo-labelling, Noisy Student): the teacher(s) label a subset of the unlabeled images
 * without noise, a fresh student of equal or larger size learns from the labeled images (repeated) and the
 * pseudo-labels with noise (its input policy, dropout, stochastic depth). One seed convention for every caller. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frugal/recipes.h"
#include "frugal/rng_host.h"
#include "recipes_internal.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

uint64_t fr_round_seed(uint64_t seed, int round) { return seed + (uint64_t)round; }

void fr_round_opts_init(struct fr_round_opts *o)
{
    memset(o, 0, sizeof *o);
    o->arch = "t";
    o->noise.dropout = o->noise.survival = -1.0f;
    o->pseudo.threshold = 0.3f;
    o->pseudo.balance = true;
    o->soft = true;
    o->labeled_repeat = 1;
    fr_fit_opts_init(&o->fit);
}

enum fr_status fr_round_unlabeled(const struct fr_split *sp, double ratio, uint64_t seed, int round, int64_t **idx,
                                  int64_t *n)
{
    *idx = NULL;
    *n = 0;
    if (!(ratio >= 0) || !isfinite(ratio))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "self-training: unlabeled ratio %g must be >= 0", ratio);
    int64_t m = sp->n_unlabeled;
    if (ratio > 0 && ratio * (double)sp->n_labeled < (double)m)
        m = (int64_t)(ratio * (double)sp->n_labeled);
    int64_t *p = malloc((size_t)(sp->n_unlabeled > 0 ? sp->n_unlabeled : 1) * sizeof *p);
    if (!p)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "self-training: out of memory");
    memcpy(p, sp->unlabeled, (size_t)sp->n_unlabeled * sizeof *p);
    /* the same draw whatever the ratio: a smaller ratio takes a prefix of the same order */
    fr_shuffle_indices(p, sp->n_unlabeled, seed, FR_RNG_SPLIT, (uint32_t)(1000 + round));
    *idx = p;
    *n = m;
    return FR_STATUS_OK;
}

void fr_round_free(struct fr_round *r)
{
    if (!r)
        return;
    fr_net_free(r->student);
    fr_pseudo_report_free(&r->pseudo);
    memset(r, 0, sizeof *r);
}

enum fr_status fr_self_train_round(struct fr_net *teacher, const struct fr_dataset *ds, const struct fr_split *sp,
                                   int round, const struct fr_round_opts *o, struct fr_round *out)
{
    memset(out, 0, sizeof *out);
    out->round = round;
    out->pseudo.accuracy = NAN;
    double t0 = now_s();
    if (o->labeled_repeat < 1)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "self-training: labeled repeat %d must be >= 1", o->labeled_repeat);
    if (teacher->c != ds->c || teacher->h != ds->h || teacher->w != ds->w)
        return fr_error(FR_STATUS_SHAPE, "%s: images are %dx%dx%d, the teacher expects %dx%dx%d", ds->source, ds->c,
                        ds->h, ds->w, teacher->c, teacher->h, teacher->w);
    if (teacher->n_classes != ds->n_classes)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s has %d classes, the teacher %d", ds->source, ds->n_classes,
                        teacher->n_classes);
    enum fr_status st = fr_pseudo_check(&o->pseudo);
    if (st != FR_STATUS_OK)
        return st;
    const uint64_t seed = fr_round_seed(o->fit.seed, round);
    int64_t *unl = NULL, n_unl = 0;
    if ((st = fr_round_unlabeled(sp, o->unlabeled_ratio, o->fit.seed, round, &unl, &n_unl)) != FR_STATUS_OK)
        return st;
    struct fr_trainset ts = {.n_classes = teacher->n_classes};
    if (n_unl == 0)
        st = fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: no unlabeled images to pseudo-label", ds->source);
    if (st == FR_STATUS_OK)
        st = fr_pseudo_trainset(teacher, ds, sp->labeled, sp->n_labeled, o->labeled_repeat, unl, n_unl, &o->pseudo,
                                o->soft, &ts, &out->pseudo);
    free(unl);
    if (st == FR_STATUS_OK && out->pseudo.rows == 0) /* nothing to learn from without labels: not self-training */
        st = fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: the teacher kept no pseudo-label of %lld unlabeled images at "
                      "threshold %g", ds->source, (long long)out->pseudo.unlabeled, (double)o->pseudo.threshold);
    if (st == FR_STATUS_OK)
        st = fr_net_new_ex(teacher->be, o->arch, &o->noise, ds->c, ds->h, ds->w, teacher->n_classes,
                           teacher->class_names, seed, &out->student);
    if (st == FR_STATUS_OK && o->from_teacher) {
        if (strcmp(out->student->arch, teacher->arch) != 0)
            st = fr_error(FR_STATUS_INVALID_ARGUMENT, "self-training: a student that starts from its teacher needs the "
                          "teacher's architecture (%s, not %s)", teacher->arch, out->student->arch);
        else
            st = fr_model_copy_tensors(out->student->model, teacher->model);
    }
    if (st == FR_STATUS_OK) {
        struct fr_fit_opts fo = o->fit;
        fo.seed = seed;
        st = fr_fit(out->student, &ts, &fo, &out->fit);
    }
    fr_trainset_free(&ts);
    out->seconds = now_s() - t0;
    if (st != FR_STATUS_OK && st != FR_STATUS_INTERRUPTED) {
        fr_net_free(out->student);
        out->student = NULL;
    }
    return st;
}
