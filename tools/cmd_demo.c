/* `frugal demo`: the main job. Fashion-MNIST with 1,000 labels (100 per class): supervised baseline without
 * and with augmentation, pseudo-labelling, then Noisy Student for two rounds; one table (method, labels used,
 * test accuracy, time) and a pointer to the full-label reference. --quick is the two-minute version. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/augment.h"
#include "recipe_cli.h"
#include "frugal/rng_host.h"

struct demo_row {
    const char *method;
    int64_t labels;
    double acc, seconds;
};

struct demo_cfg {
    const char *model, *student, *augment, *noise, *teacher;
    int64_t labels, sup_epochs, aug_epochs, student_epochs, labeled_repeat;
    double ratio, threshold, pl_threshold, lr;
};

static void defaults(struct demo_cfg *d, bool quick)
{
    /* Measured on the shared 2-core machine: the tiny model t is ~5x faster than s and, with 1,000 labels, as
     * accurate (82.5% vs 80.8% supervised), so every stage uses t; the students see all 59,000 unlabeled images
     * (20 epochs each, --quick: 6). Students learn from the supervised model (Noisy Student's step 1). */
    d->model = "t";
    d->student = NULL;
    d->teacher = "supervised";
    d->augment = "hflip;translate(x=0.1,y=0.1)";
    d->noise = "hflip;translate(x=0.1,y=0.1)";
    d->labels = 1000;
    d->sup_epochs = quick ? 40 : 60;
    d->aug_epochs = quick ? 60 : 120;
    d->student_epochs = quick ? 6 : 20;
    d->labeled_repeat = 10;
    d->ratio = 0;
    d->threshold = 0.3;
    d->pl_threshold = 0.95;
    d->lr = 0.004;
}

/* trains a fresh net on the labeled images; returns exit code */
static int supervised(const char *cmd, const char *stage, struct fr_backend *be, const struct demo_cfg *cfg,
                      const struct fr_dataset *train, const struct fr_split *sp, const struct fr_fit_opts *base,
                      const char *augment, int64_t epochs, struct fr_net **out, struct fr_fit_result *fr)
{
    struct fr_trainset ts = {0};
    ts.n_classes = train->n_classes;
    enum fr_status st = fr_net_new(be, cfg->model, train->c, train->h, train->w, train->n_classes, train->class_names,
                                   base->seed, out);
    if (st == FR_STATUS_OK)
        st = fr_trainset_add(&ts, 0, train, sp->labeled, sp->n_labeled, NULL, NULL);
    if (st != FR_STATUS_OK) {
        fr_trainset_free(&ts);
        return rc_fail(cmd, st);
    }
    struct fr_fit_opts o = *base;
    o.epochs = (int)epochs;
    o.augment = augment;
    o.val_ds = train;
    o.val_idx = sp->val;
    o.n_val = sp->n_val;
    o.ckpt_name = stage;
    o.metrics_tag = stage;
    struct progress pr;
    progress_init(&pr, cmd, stage);
    o.on_progress = progress_step;
    o.on_epoch = NULL; /* one line per stage keeps the demo readable */
    o.user = &pr;
    st = fr_fit(*out, &ts, &o, fr);
    fr_trainset_free(&ts);
    if (st != FR_STATUS_OK) {
        fr_net_free(*out);
        *out = NULL;
        return st == FR_STATUS_INTERRUPTED ? rc_interrupted(cmd, fr_last_error()) : rc_fail(cmd, st);
    }
    return CLI_OK;
}

static double test_acc(struct fr_net *net, const struct fr_dataset *test)
{
    struct fr_eval ev;
    if (fr_net_evaluate(net, test, NULL, test->n, &ev) != FR_STATUS_OK)
        return NAN;
    double a = ev.accuracy;
    fr_eval_free(&ev);
    return a;
}

static void stage_line(const char *cmd, const struct demo_row *r, double val)
{
    fprintf(stderr, "frugal %s: %-22s test accuracy %.4f  (val %.3f)  %.1f s\n", cmd, r->method, r->acc, val,
            r->seconds);
}

int cmd_demo(int argc, char **argv)
{
    const char *cmd = "demo";
    struct rc_common c;
    rc_defaults(&c, NULL, NULL);
    bool quick = false;
    struct demo_cfg cfg, dq;
    defaults(&cfg, false);
    defaults(&dq, true);
    memset(&cfg, 0, sizeof cfg); /* unset = -1/NULL: filled from the full or quick defaults after parsing */
    cfg.labels = cfg.sup_epochs = cfg.aug_epochs = cfg.student_epochs = cfg.labeled_repeat = -1;
    cfg.ratio = cfg.threshold = cfg.pl_threshold = cfg.lr = -1;
    const char *data = "fmnist";
    int64_t test_limit = 0;
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"quick", CLI_BOOL, &quick, NULL, "the two-minute version (model t, fewer images and epochs)", false},
        {"out", CLI_STR, &c.out, "DIR", "keep every stage's checkpoint and metrics.jsonl here", false},
        {"data", CLI_STR, &data, "SPEC", "training data (fmnist; the test split is fmnist:test)", false},
        {"test-limit", CLI_INT, &test_limit, "N", "evaluate on the first N test images only", false,
         CLI_RANGE(0, RC_MAX_COUNT)},
        {"arch", CLI_STR, &cfg.model, "t|s|m|MODELFILE", "architecture of the baselines and the first teacher (t)", false},
        CLI_DEPRECATED("model", "arch"),
        {"teacher", CLI_STR, &cfg.teacher, "WHICH",
         "first teacher: supervised | supervised+augment | best (by validation accuracy) (supervised)", false},
        {"student", CLI_STR, &cfg.student, "t|s|m|MODELFILE", "architecture of the students (equal or larger: the model's)", false},
        {"labels", CLI_INT, &cfg.labels, "N", "label budget, validation included (1000)", false, CLI_RANGE(1, RC_MAX_COUNT)},
        {"sup-epochs", CLI_INT, &cfg.sup_epochs, "N", "epochs of the supervised baseline", false, CLI_RANGE(1, 1000000)},
        {"aug-epochs", CLI_INT, &cfg.aug_epochs, "N", "epochs of the augmented baseline", false, CLI_RANGE(1, 1000000)},
        {"student-epochs", CLI_INT, &cfg.student_epochs, "N", "epochs of each student", false, CLI_RANGE(1, 1000000)},
        {"augment", CLI_STR, &cfg.augment, "POLICY", "augmentation of the supervised+augment baseline", false},
        {"noise", CLI_STR, &cfg.noise, "POLICY", "input noise of the Noisy Student students", false},
        {"labeled-repeat", CLI_INT, &cfg.labeled_repeat, "N", "labeled images per student epoch, repeated", false,
         CLI_RANGE(1, 10000)},
        {"unlabeled-ratio", CLI_FLOAT, &cfg.ratio, "K", "unlabeled images per labeled image and round (0 = all)", false,
         CLI_RANGE(0, 1e6)},
        {"threshold", CLI_FLOAT, &cfg.threshold, "X", "Noisy Student confidence threshold (0.3)", false, CLI_RANGE(0, 1)},
        {"pl-threshold", CLI_FLOAT, &cfg.pl_threshold, "X", "pseudo-label confidence threshold (0.95)", false,
         CLI_RANGE(0, 1)},
        {"lr", CLI_FLOAT, &cfg.lr, "X", "AdamW learning rate of every stage (0.004)", false, CLI_ABOVE(0, 10)},
        {0},
    };
    int rc = cli_parse(cmd, "[--device D] [--quick] [--json] [flags]", argc, argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    const struct demo_cfg *dflt = quick ? &dq : NULL;
    struct demo_cfg full;
    defaults(&full, false);
    if (!dflt)
        dflt = &full;
    if (!cfg.model)
        cfg.model = dflt->model;
    if (!cfg.student)
        cfg.student = cfg.model;
    if (!cfg.teacher)
        cfg.teacher = dflt->teacher;
    if (strcmp(cfg.teacher, "supervised") && strcmp(cfg.teacher, "supervised+augment") && strcmp(cfg.teacher, "best"))
        return cli_error(cmd, CLI_USAGE, "--teacher %s: expected supervised, supervised+augment or best", cfg.teacher);
    if (!cfg.augment)
        cfg.augment = dflt->augment;
    if (!cfg.noise)
        cfg.noise = dflt->noise;
#define DF(x)            \
    if (cfg.x < 0)       \
        cfg.x = dflt->x;
    DF(labels) DF(labeled_repeat) DF(sup_epochs) DF(aug_epochs) DF(student_epochs) DF(ratio) DF(threshold) DF(pl_threshold) DF(lr)
#undef DF
    if ((rc = rc_check_arch(cmd, cfg.model)) != CLI_OK || (rc = rc_check_arch(cmd, cfg.student)) != CLI_OK)
        return rc;
    for (int i = 0; i < 2; i++) {
        const char *p = i ? cfg.noise : cfg.augment;
        struct fr_aug_policy *pol;
        if (strcmp(p, "none") && fr_aug_policy_parse(p, &pol) != FR_STATUS_OK)
            return cli_error(cmd, CLI_USAGE, "--%s: %s", i ? "noise" : "augment", fr_last_error());
        if (strcmp(p, "none"))
            fr_aug_policy_free(pol);
    }
    if (cfg.sup_epochs <= 0 || cfg.aug_epochs <= 0 || cfg.student_epochs <= 0 || cfg.labels <= 0)
        return cli_error(cmd, CLI_USAGE, "epochs and --labels must be positive");
    struct rc_outdir od = {.lock_fd = -1};
    if (c.out && (rc = rc_out_open(cmd, c.out, NULL, &od)) != CLI_OK)
        return rc;

    struct fr_backend *be = NULL;
    struct fr_dataset *train = NULL, *test = NULL;
    struct fr_split sp = {0};
    struct fr_net *sup = NULL, *aug = NULL, *teacher = NULL;
    int64_t *unl = NULL;
    struct demo_row rows[5];
    int nrows = 0;
    double t_all = rc_now();
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        return rc;
    struct rc_data d;
    rc_defaults(NULL, &d, NULL);
    d.data = data;
    d.test = !strcmp(data, "fmnist") ? "fmnist:test" : NULL;
    d.labels = cfg.labels;
    d.test_limit = test_limit;
    if ((rc = rc_open_data(cmd, &d, &train, &test)) != CLI_OK || (rc = rc_split(cmd, &d, train, (uint64_t)c.seed, &sp)))
        goto done;
    if (!test) {
        rc = cli_error(cmd, CLI_USAGE, "--data %s: the demo needs a test split (use fmnist)", data);
        goto done;
    }
    fprintf(stderr,
            "frugal %s: Fashion-MNIST, %lld labels (%lld train + %lld validation), %lld unlabeled images, model %s%s\n",
            cmd, (long long)(sp.n_labeled + sp.n_val), (long long)sp.n_labeled, (long long)sp.n_val,
            (long long)sp.n_unlabeled, cfg.model, quick ? " (quick)" : "");
    rc_install_sigint();
    struct fr_fit_opts base;
    fr_fit_opts_init(&base);
    base.sched.base_lr = (float)cfg.lr;
    base.seed = (uint64_t)c.seed;
    base.out_dir = c.out;
    base.stop = &rc_stop;
    int64_t labels_used = sp.n_labeled + sp.n_val;

    /* 1. supervised, 2. supervised + augmentation: the same budget of epochs and the same optimizer */
    struct fr_fit_result fr_sup, fr_aug;
    double t = rc_now();
    if ((rc = supervised(cmd, "supervised", be, &cfg, train, &sp, &base, NULL, cfg.sup_epochs, &sup, &fr_sup)))
        goto done;
    rows[nrows] = (struct demo_row){"supervised", labels_used, test_acc(sup, test), rc_now() - t};
    stage_line(cmd, &rows[nrows++], fr_sup.val_accuracy);
    const char *augp = strcmp(cfg.augment, "none") ? cfg.augment : NULL;
    t = rc_now();
    if ((rc = supervised(cmd, "supervised+augment", be, &cfg, train, &sp, &base, augp, cfg.aug_epochs, &aug, &fr_aug)))
        goto done;
    rows[nrows] = (struct demo_row){"supervised+augment", labels_used, test_acc(aug, test), rc_now() - t};
    stage_line(cmd, &rows[nrows++], fr_aug.val_accuracy);

    /* the first teacher: Noisy Student's step 1 is the supervised model; "best" picks by the validation images
     * (never by the test set) */
    bool aug_better = !strcmp(cfg.teacher, "supervised+augment") ||
                      (!strcmp(cfg.teacher, "best") && fr_aug.val_accuracy > fr_sup.val_accuracy);
    teacher = aug_better ? aug : sup;
    fprintf(stderr, "frugal %s: teacher = %s (validation accuracy %.3f)\n", cmd,
            aug_better ? "supervised+augment" : "supervised", aug_better ? fr_aug.val_accuracy : fr_sup.val_accuracy);

    /* a fresh random subset of the unlabeled pool per round, as large as ratio x labels */
    unl = malloc((size_t)(sp.n_unlabeled > 0 ? sp.n_unlabeled : 1) * sizeof *unl);
    if (!unl) {
        rc = cli_error(cmd, CLI_FAIL, "out of memory");
        goto done;
    }
    int64_t n_unl = sp.n_unlabeled;
    if (cfg.ratio > 0 && (int64_t)(cfg.ratio * (double)sp.n_labeled) < n_unl)
        n_unl = (int64_t)(cfg.ratio * (double)sp.n_labeled);

    /* 3. pseudo-labelling (Lee 2013 with a FixMatch-style threshold): hard labels, no noise */
    memcpy(unl, sp.unlabeled, (size_t)sp.n_unlabeled * sizeof *unl);
    fr_shuffle_indices(unl, sp.n_unlabeled, (uint64_t)c.seed, FR_RNG_SPLIT, 1001);
    struct fr_pseudo_opts po = {(float)cfg.pl_threshold, false, 0, 1.0f};
    struct fr_fit_opts so = base;
    so.epochs = (int)cfg.student_epochs;
    so.val_ds = train;
    so.val_idx = sp.val;
    so.n_val = sp.n_val;
    so.ckpt_name = "pseudo-label";
    struct rc_round rr;
    if ((rc = rc_self_train(cmd, "pseudo-label", be, teacher, train, &sp, unl, n_unl, &po, false, cfg.student, NULL,
                            (uint64_t)c.seed + 100, &so, (int)cfg.labeled_repeat, true, &rr)))
        goto done;
    rows[nrows] = (struct demo_row){"pseudo-label", labels_used, test_acc(rr.student, test), rr.seconds};
    stage_line(cmd, &rows[nrows++], rr.fit.val_accuracy);
    fr_net_free(rr.student);

    /* 4-5. Noisy Student: un-noised teacher, soft labels >= threshold, balanced; noised fresh student */
    const char *noise = strcmp(cfg.noise, "none") ? cfg.noise : NULL;
    struct fr_net *cur = teacher;
    for (int r = 1; r <= 2; r++) {
        memcpy(unl, sp.unlabeled, (size_t)sp.n_unlabeled * sizeof *unl);
        fr_shuffle_indices(unl, sp.n_unlabeled, (uint64_t)c.seed, FR_RNG_SPLIT, (uint32_t)(1000 + r));
        struct fr_pseudo_opts pn = {(float)cfg.threshold, true, 0, 1.0f};
        struct fr_fit_opts no = so;
        no.augment = noise;
        char name[32];
        snprintf(name, sizeof name, "noisy-student round %d", r);
        no.ckpt_name = r == 1 ? "noisy-student-round1" : "noisy-student-round2";
        if ((rc = rc_self_train(cmd, name, be, cur, train, &sp, unl, n_unl, &pn, true, cfg.student, NULL,
                                (uint64_t)c.seed + 200 + (uint64_t)r, &no, (int)cfg.labeled_repeat, true, &rr)))
            goto done;
        rows[nrows] = (struct demo_row){r == 1 ? "noisy-student round 1" : "noisy-student round 2", labels_used,
                                        test_acc(rr.student, test), rr.seconds};
        stage_line(cmd, &rows[nrows++], rr.fit.val_accuracy);
        if (cur != sup && cur != aug)
            fr_net_free(cur);
        cur = rr.student; /* the student becomes the teacher */
    }
    if (cur != sup && cur != aug)
        fr_net_free(cur);

    double total = rc_now() - t_all;
    rc_report_device(cmd, be, fr_net_fallback_ops(sup) + fr_net_fallback_ops(aug));
    if (c.json) {
        cJSON *o = rc_json_new(cmd);
        cJSON *arr = cJSON_AddArrayToObject(o, "rows");
        for (int i = 0; i < nrows; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "method", rows[i].method);
            cJSON_AddNumberToObject(r, "labels", (double)rows[i].labels);
            rc_json_num(r, "test_accuracy", rows[i].acc);
            cJSON_AddNumberToObject(r, "seconds", rows[i].seconds);
            cJSON_AddItemToArray(arr, r);
        }
        cJSON_AddStringToObject(o, "model", cfg.model);
        cJSON_AddBoolToObject(o, "quick", quick);
        cJSON_AddNumberToObject(o, "unlabeled_images_per_round", (double)n_unl);
        cJSON_AddNumberToObject(o, "test_images", (double)test->n);
        cJSON_AddNumberToObject(o, "seconds", total);
        cJSON_AddStringToObject(o, "device", fr_backend_name(be));
        cJSON_AddNumberToObject(o, "fallback_ops", fr_net_fallback_ops(sup) + fr_net_fallback_ops(aug));
        cJSON_AddStringToObject(o, "reference", "REFERENCE.md section 7: 91.6-93.9% with all 60,000 labels");
        rc_json_print(o);
    } else {
        printf("\nFashion-MNIST, %lld labels (%lld per class), model %s, %lld unlabeled images per round, device %s\n\n",
               (long long)labels_used, (long long)(labels_used / (train->n_classes > 0 ? train->n_classes : 1)),
               cfg.model, (long long)n_unl, fr_backend_name(be));
        printf("  %-24s %7s %14s %9s\n", "method", "labels", "test accuracy", "time");
        for (int i = 0; i < nrows; i++)
            printf("  %-24s %7lld %13.2f%% %8.1fs\n", rows[i].method, (long long)rows[i].labels, 100.0 * rows[i].acc,
                   rows[i].seconds);
        printf("\n  total %.1f s. Noisy Student round 2 vs supervised: %+.2f points.\n", total,
               100.0 * (rows[nrows - 1].acc - rows[0].acc));
        printf("  Reference with all 60,000 labels (../shared/REFERENCE.md section 7): 2-conv CNN 91.6%%,\n"
               "  2-conv + batch-norm 93.4%%, 2-conv + 2 FC + flips 93.9%%.\n");
    }
    rc = CLI_OK;
done:
    free(unl);
    fr_net_free(sup);
    fr_net_free(aug);
    fr_split_free(&sp);
    fr_dataset_free(train);
    fr_dataset_free(test);
    fr_backend_free(be);
    rc_out_close(&od);
    return rc;
}
