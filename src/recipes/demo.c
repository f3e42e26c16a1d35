/* The demo as a recipe: on one split of a labeled dataset, supervised and supervised+augment baselines, pseudo-
 * labelling, FixMatch and Noisy Student rounds with one model, one epoch budget and one labeled-repeat schedule,
 * so that a row's gain over supervised+augment is what the unlabeled images brought. Rows go to a callback. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recipes_internal.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void fr_demo_opts_init(struct fr_demo_opts *o, bool quick)
{
    memset(o, 0, sizeof *o);
    o->arch = "t";
    o->epochs = quick ? 6 : 20; /* 20 rather than 12: best row 85.10% (+3.40 points) against 84.60% (+3.13) */
    o->labeled_repeat = 10;
    o->augment = FR_FIXMATCH_WEAK;
    o->noise = FR_FIXMATCH_WEAK; /* model t is too small to learn through RandAugment + cutout: such students fell
                                    below their teacher (81.5% from 82.4%) */
    o->pl_threshold = 0.95f;
    o->ns_threshold = 0.7f;
    o->rounds = quick ? 1 : 2;
    o->ensemble = 2; /* a round's teacher averages the last three rows' models: +0.06 and +0.29 points in rounds 1 and 2 */
    o->unlabeled_ratio = 0;
    fr_fixmatch_opts_init(&o->fixmatch);
    /* model t learns little through RandAugment at m=10 plus a 12-pixel cutout in a few hundred steps; a milder strong
       view validated better */
    o->fixmatch.fit.strong = FR_DEMO_STRONG;
    o->fixmatch_init = true;
    o->fixmatch_epochs = quick ? 2 : 20;
    /* full demo: 86.10% against 85.48% at threshold 0.95, weight 1 and 10 epochs (README, experiments) */
    o->fixmatch.fit.threshold = quick ? 0.95f : 0.8f;
    o->fixmatch.fit.lambda_u = quick ? 1.0f : 2.0f;
    o->ns_from_teacher = true; /* a fresh student fell below its teacher (84.97% from 85.48%), one from it did not */
    o->ns_epochs = quick ? 6 : 10;
    fr_fit_opts_init(&o->fit);
    o->fit.sched.base_lr = 0.004f;
}

enum fr_status fr_demo_check(const struct fr_demo_opts *o)
{
    if (o->epochs < 1 || o->fixmatch_epochs < 1 || o->ns_epochs < 1 || o->labeled_repeat < 1 || o->rounds < 0 || o->rounds > 10 ||
        o->ensemble < 0 || o->ensemble > 10)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "demo: epochs (%d, fixmatch %d, Noisy Student %d) and the labeled "
                        "repeat (%d) must be >= 1, rounds (%d) and ensemble (%d) in 0..10", o->epochs, o->fixmatch_epochs,
                        o->ns_epochs, o->labeled_repeat, o->rounds, o->ensemble);
    if (!(o->pl_threshold >= 0.0f && o->pl_threshold <= 1.0f) || !(o->ns_threshold >= 0.0f && o->ns_threshold <= 1.0f))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "demo: thresholds (pseudo-label %g, Noisy Student %g) must be in "
                        "[0, 1]", (double)o->pl_threshold, (double)o->ns_threshold);
    struct fr_fixmatch_opts fm = o->fixmatch;
    fm.unlabeled_ratio = o->unlabeled_ratio;
    return fr_fixmatch_check(&fm);
}

/* the row's model: the raw weights, or their moving average when it did better on the validation images */
static enum fr_status row_finish(struct fr_net **net, const struct fr_fit_result *fr, const struct fr_dataset *test,
                                 struct fr_demo_row *row)
{
    row->val_accuracy = fr->val_accuracy;
    row->ema = false;
    enum fr_status st = FR_STATUS_OK;
    if (!isnan(fr->val_accuracy_ema) && fr->val_accuracy_ema > fr->val_accuracy) {
        struct fr_net *e = NULL;
        if ((st = fr_net_ema(*net, &e)) != FR_STATUS_OK)
            return st;
        fr_net_free(*net);
        *net = e;
        row->val_accuracy = fr->val_accuracy_ema;
        row->ema = true;
    }
    row->test_accuracy = NAN;
    if (test) {
        struct fr_eval ev;
        if ((st = fr_net_evaluate(*net, test, NULL, test->n, &ev)) != FR_STATUS_OK)
            return st;
        row->test_accuracy = ev.accuracy;
        fr_eval_free(&ev);
    }
    return FR_STATUS_OK;
}

struct demo {
    const struct fr_demo_opts *o;
    const struct fr_dataset *train, *test;
    const struct fr_split *sp;
    struct fr_demo_row *rows;
    int n;
    struct fr_net *best; /* the baseline with the better validation accuracy: pseudo-labelling's teacher */
    struct fr_net *chain[16]; /* the semi-supervised rows' models in order: the last one is the next row's teacher or
                                 starting point, those before it join Noisy Student's teachers (ensemble) */
    int n_chain;
    double best_val;
};

static void stage(const struct demo *d, const char *name)
{
    if (d->o->on_stage)
        d->o->on_stage(d->o->user, name);
}

static enum fr_status add_row(struct demo *d, const char *method, struct fr_net **net, const struct fr_fit_result *fr,
                              int64_t unlabeled, int64_t kept, double pl_acc, double t0, bool next_teacher)
{
    struct fr_demo_row *row = &d->rows[d->n];
    memset(row, 0, sizeof *row);
    snprintf(row->method, sizeof row->method, "%s", method);
    row->labels = d->sp->n_labeled + d->sp->n_val;
    row->unlabeled = unlabeled;
    row->pseudo_kept = kept;
    row->pseudo_accuracy = pl_acc;
    enum fr_status st = row_finish(net, fr, d->test, row);
    if (st != FR_STATUS_OK)
        return st;
    row->seconds = now_s() - t0;
    d->n++;
    if (d->o->on_row)
        d->o->on_row(d->o->user, row);
    if (next_teacher) {
        d->chain[d->n_chain++] = *net;
    } else if (!d->best || row->val_accuracy > d->best_val) { /* a tie keeps the earlier row */
        fr_net_free(d->best);
        d->best = *net;
        d->best_val = row->val_accuracy;
    } else {
        fr_net_free(*net);
    }
    *net = NULL;
    return FR_STATUS_OK;
}

static struct fr_fit_opts stage_fit(const struct demo *d, const char *ckpt)
{
    struct fr_fit_opts f = d->o->fit;
    f.val_ds = d->train;
    f.val_idx = d->sp->val;
    f.n_val = d->sp->n_val;
    f.ckpt_name = ckpt;
    f.metrics_tag = ckpt;
    return f;
}

static enum fr_status supervised(struct demo *d, struct fr_backend *be, const char *method, const char *ckpt,
                                 const char *augment)
{
    const struct fr_demo_opts *o = d->o;
    const struct fr_dataset *ds = d->train;
    double t0 = now_s();
    stage(d, method);
    struct fr_net *net = NULL;
    struct fr_trainset ts = {.n_classes = ds->n_classes};
    enum fr_status st = fr_net_new(be, o->arch, ds->c, ds->h, ds->w, ds->n_classes, ds->class_names, o->fit.seed, &net);
    /* the students' schedule: the labeled images labeled_repeat times per epoch */
    for (int r = 0; r < o->labeled_repeat && st == FR_STATUS_OK; r++)
        st = fr_trainset_add(&ts, 0, ds, d->sp->labeled, d->sp->n_labeled, NULL, NULL);
    struct fr_fit_result fr;
    if (st == FR_STATUS_OK) {
        struct fr_fit_opts f = stage_fit(d, ckpt);
        f.epochs = o->epochs;
        f.augment = augment;
        st = fr_fit(net, &ts, &f, &fr);
    }
    fr_trainset_free(&ts);
    if (st == FR_STATUS_OK)
        st = add_row(d, method, &net, &fr, 0, 0, NAN, t0, false);
    fr_net_free(net);
    return st;
}

static enum fr_status self_train(struct demo *d, int round, bool noisy, const char *method, const char *ckpt)
{
    const struct fr_demo_opts *o = d->o;
    double t0 = now_s();
    stage(d, method);
    struct fr_round_opts ro;
    fr_round_opts_init(&ro);
    ro.arch = o->arch;
    ro.labeled_repeat = o->labeled_repeat;
    ro.unlabeled_ratio = o->unlabeled_ratio;
    ro.fit = stage_fit(d, ckpt);
    ro.fit.epochs = o->epochs;
    if (noisy) { /* Noisy Student: soft, balanced labels of the un-noised teacher (and its mirror images); noised student */
        ro.pseudo = (struct fr_pseudo_opts){.threshold = o->ns_threshold, .balance = true, .flip = true};
        ro.soft = true;
        ro.fit.augment = o->noise;
        ro.fit.epochs = o->ns_epochs;
        ro.from_teacher = o->ns_from_teacher;
        if (o->ns_from_teacher)
            ro.fit.sched.base_lr *= 0.5f;
    } else { /* pseudo-labelling: confident hard labels, the baseline's augmentation */
        ro.pseudo = (struct fr_pseudo_opts){.threshold = o->pl_threshold};
        ro.soft = false;
        ro.fit.augment = o->augment;
    }
    struct fr_round r;
    struct fr_net *teacher = d->n_chain ? d->chain[d->n_chain - 1] : d->best;
    if (noisy) { /* the earlier rows' models join the last one: their probabilities are averaged */
        int more = d->n_chain - 1 < o->ensemble ? d->n_chain - 1 : o->ensemble;
        ro.pseudo.teachers = more > 0 ? d->chain + d->n_chain - 1 - more : NULL;
        ro.pseudo.n_teachers = more > 0 ? more : 0;
    }
    enum fr_status st = fr_self_train_round(teacher, d->train, d->sp, round, &ro, &r);
    if (st == FR_STATUS_OK) {
        struct fr_net *net = r.student;
        r.student = NULL;
        st = add_row(d, method, &net, &r.fit, r.pseudo.unlabeled, r.pseudo.rows, r.pseudo.accuracy, t0, true);
        fr_net_free(net);
    }
    fr_round_free(&r);
    return st;
}

enum fr_status fr_demo_run(struct fr_backend *be, const struct fr_dataset *train, const struct fr_dataset *test,
                           const struct fr_split *sp, const struct fr_demo_opts *o, struct fr_demo_row **rows, int *n_rows)
{
    *rows = NULL;
    *n_rows = 0;
    enum fr_status st = fr_demo_check(o);
    if (st != FR_STATUS_OK)
        return st;
    if (sp->n_labeled == 0 || sp->n_val == 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: the demo needs labeled training and validation images",
                        train->source);
    if (sp->n_unlabeled == 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: no unlabeled images left for the demo", train->source);
    if (test && (test->n_classes != train->n_classes || test->c != train->c || test->h != train->h ||
                 test->w != train->w))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: the test images (%d classes, %dx%dx%d) differ from %s", test->source,
                        test->n_classes, test->c, test->h, test->w, train->source);
    struct demo d = {.o = o, .train = train, .test = test, .sp = sp, .best_val = -1};
    d.rows = calloc((size_t)(4 + o->rounds), sizeof *d.rows);
    if (!d.rows)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "demo: out of memory");
    st = supervised(&d, be, "supervised", "supervised", NULL);
    if (st == FR_STATUS_OK)
        st = supervised(&d, be, "supervised+augment", "supervised-augment", o->augment);
    if (st == FR_STATUS_OK) /* the teacher: the better baseline by validation accuracy (never by the test set) */
        st = self_train(&d, 1, false, "pseudo-label", "pseudo-label");
    if (st == FR_STATUS_OK) {
        double t0 = now_s();
        stage(&d, "fixmatch");
        struct fr_fixmatch_opts fm = o->fixmatch;
        struct fr_fit_opts f = stage_fit(&d, "fixmatch");
        f.epochs = o->fixmatch_epochs;
        f.augment = o->augment;
        f.strong = fm.fit.strong;
        f.mu = fm.fit.mu;
        f.threshold = fm.fit.threshold;
        f.lambda_u = fm.fit.lambda_u;
        fm.fit = f;
        fm.unlabeled_ratio = o->unlabeled_ratio;
        struct fr_net *net = NULL;
        struct fr_fit_result fr;
        st = fr_net_new(be, o->arch, train->c, train->h, train->w, train->n_classes, train->class_names, o->fit.seed, &net);
        if (st == FR_STATUS_OK && o->fixmatch_init) { /* from the pseudo-label student, at half the learning rate */
            st = fr_model_copy_tensors(net->model, d.chain[d.n_chain - 1]->model);
            fm.fit.sched.base_lr *= 0.5f;
        }
        if (st == FR_STATUS_OK)
            st = fr_fixmatch(net, train, sp, &fm, &fr);
        /* what the final model keeps of the unlabeled images at the threshold, and how accurate that is */
        int64_t *unl = NULL, n_unl = 0;
        struct fr_pseudo ps = {0};
        if (st == FR_STATUS_OK)
            st = fr_round_unlabeled(sp, o->unlabeled_ratio, o->fit.seed, 1, &unl, &n_unl);
        if (st == FR_STATUS_OK)
            st = fr_pseudo_label(net, train, unl, n_unl, &(struct fr_pseudo_opts){.threshold = fm.fit.threshold}, &ps);
        free(unl);
        if (st == FR_STATUS_OK)
            st = add_row(&d, "fixmatch", &net, &fr, n_unl, ps.report.rows, ps.report.accuracy, t0, o->fixmatch_init);
        fr_pseudo_free(&ps);
        fr_net_free(net);
    }
    /* Noisy Student: the first teacher is the last row's model (FixMatch's when it started from the pseudo-label
       student, else that student); then each round's student teaches the next round */
    for (int r = 1; r <= o->rounds && st == FR_STATUS_OK; r++) {
        char method[40], ckpt[40];
        snprintf(method, sizeof method, "noisy-student round %d", r);
        snprintf(ckpt, sizeof ckpt, "noisy-student-round%d", r);
        st = self_train(&d, r, true, method, ckpt);
    }
    fr_net_free(d.best);
    for (int i = 0; i < d.n_chain; i++)
        fr_net_free(d.chain[i]);
    if (st != FR_STATUS_OK) {
        free(d.rows);
        return st;
    }
    *rows = d.rows;
    *n_rows = d.n;
    return FR_STATUS_OK;
}
