/* `frugal demo`: the main job, Fashion-MNIST with 1,000 labels (fr_demo_run): supervised and supervised+augment
 * baselines on the students' schedule, pseudo-labelling, FixMatch, Noisy Student rounds; one table with the labels
 * and unlabeled images each row used, the pseudo-labels kept and their accuracy, test accuracy. --quick is the
 * two-minute version. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/augment.h"
#include "recipe_cli.h"

struct demo_ui {
    const char *cmd;
    struct progress pr;
};

static void on_stage(void *user, const char *method)
{
    struct demo_ui *u = user;
    progress_init(&u->pr, u->cmd, method);
}

static void on_row(void *user, const struct fr_demo_row *r)
{
    struct demo_ui *u = user;
    progress_done(&u->pr);
    fprintf(stderr, "frugal %s: %-22s test accuracy %.4f  (validation %.3f%s)  %.1f s\n", u->cmd, r->method,
            r->test_accuracy, r->val_accuracy, r->ema ? ", moving average" : "", r->seconds);
}

static int check_policy(const char *cmd, const char *flag, const char *p)
{
    struct fr_aug_policy *pol;
    if (fr_aug_policy_parse(p, &pol) != FR_STATUS_OK)
        return cli_error(cmd, CLI_USAGE, "--%s: %s", flag, fr_last_error());
    fr_aug_policy_free(pol);
    return CLI_OK;
}

int cmd_demo(int argc, char **argv)
{
    const char *cmd = "demo";
    struct rc_common c;
    rc_defaults(&c, NULL, NULL);
    bool quick = false, fm_fresh = false, ns_fresh = false;
    /* the flags start at the full demo's settings; --quick changes those not given */
    struct fr_demo_opts full;
    fr_demo_opts_init(&full, false);
    const char *data = "fmnist", *model = full.arch, *augment = full.augment, *noise = full.noise,
               *strong = full.fixmatch.fit.strong;
    int64_t test_limit = 0, labels = 1000, epochs = full.epochs, fm_epochs = full.fixmatch_epochs,
            repeat = full.labeled_repeat, ns_epochs = full.ns_epochs, rounds = full.rounds, ensemble = full.ensemble, mu = full.fixmatch.fit.mu;
    double ratio = full.unlabeled_ratio, pl_thr = full.pl_threshold, ns_thr = full.ns_threshold,
           fm_thr = full.fixmatch.fit.threshold, lambda_u = full.fixmatch.fit.lambda_u, lr = full.fit.sched.base_lr,
           ema = full.fit.optim.ema;
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"quick", CLI_BOOL, &quick, NULL, "the two-minute version (fewer epochs, one round)", false},
        {"out", CLI_STR, &c.out, "DIR", "keep every row's checkpoint and metrics.jsonl here", false},
        {"data", CLI_STR, &data, "SPEC", "training data (fmnist; the test split is fmnist:test)", false},
        {"test-limit", CLI_INT, &test_limit, "N", "evaluate on the first N test images only", false,
         CLI_RANGE(0, RC_MAX_COUNT)},
        {"labels", CLI_INT, &labels, "N", "label budget, validation included (1000)", false, CLI_RANGE(1, RC_MAX_COUNT)},
        {"arch", CLI_STR, &model, "t|c|s|m|MODELFILE", "every row's model", false},
        CLI_DEPRECATED("model", "arch"),
        {"epochs", CLI_INT, &epochs, "N", "epochs of the baselines and the pseudo-label student (20; --quick: 6)", false,
         CLI_RANGE(1, 1000000)},
        {"labeled-repeat", CLI_INT, &repeat, "N", "labeled images per epoch, repeated, in every row but FixMatch", false,
         CLI_RANGE(1, 10000)},
        {"augment", CLI_STR, &augment, "POLICY", "supervised+augment, the pseudo-label student, FixMatch's weak view", false},
        {"noise", CLI_STR, &noise, "POLICY", "input noise of the Noisy Student students", false},
        {"pl-threshold", CLI_FLOAT, &pl_thr, "X", "pseudo-label confidence threshold", false, CLI_RANGE(0, 1)},
        {"ns-threshold", CLI_FLOAT, &ns_thr, "X", "Noisy Student confidence threshold", false, CLI_RANGE(0, 1)},
        {"rounds", CLI_INT, &rounds, "R", "Noisy Student rounds (2; --quick: 1)", false, CLI_RANGE(0, 10)},
        {"ns-epochs", CLI_INT, &ns_epochs, "N", "epochs of the Noisy Student students (10; --quick: 6)", false,
         CLI_RANGE(1, 1000000)},
        {"ns-fresh", CLI_BOOL, &ns_fresh, NULL,
         "Noisy Student students start from fresh weights at the full learning rate (default: from their teacher)", false},
        {"ensemble", CLI_INT, &ensemble, "N", "earlier semi-supervised rows' models that join a Noisy Student teacher (2)",
         false, CLI_RANGE(0, 10)},
        {"unlabeled-ratio", CLI_FLOAT, &ratio, "K", "unlabeled images per labeled image (default 0 = all)", false, CLI_RANGE(0, 1e6)},
        {"fixmatch-epochs", CLI_INT, &fm_epochs, "N", "FixMatch's passes over the unlabeled images (20; --quick: 2)", false,
         CLI_RANGE(1, 1000000)},
        {"fixmatch-fresh", CLI_BOOL, &fm_fresh, NULL,
         "FixMatch starts from fresh weights (default: from the pseudo-label student)", false},
        {"threshold", CLI_FLOAT, &fm_thr, "TAU", "FixMatch's confidence threshold (0.8; --quick: 0.95)", false, CLI_RANGE(0, 1)},
        {"mu", CLI_INT, &mu, "MU", "FixMatch's unlabeled images per labeled image in a step", false, CLI_RANGE(1, 1000)},
        {"lambda-u", CLI_FLOAT, &lambda_u, "X", "FixMatch's unlabeled loss weight (2; --quick: 1)", false, CLI_RANGE(0, 1000)},
        {"strong", CLI_STR, &strong, "POLICY", "FixMatch's strong view", false},
        {"lr", CLI_FLOAT, &lr, "X", "AdamW learning rate of every row", false, CLI_ABOVE(0, 10)},
        {"ema", CLI_FLOAT, &ema, "DECAY", "moving average of the weights in every row, used where it validates better", false,
         CLI_BELOW(0, 1)},
        {0},
    };
    int rc = cli_parse(cmd, "[--device D] [--quick] [--json] [flags]", argc, argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    struct fr_demo_opts o;
    fr_demo_opts_init(&o, quick);
#define SET(flag, var, field) \
    if (cli_find(opts, flag)->seen) \
        field = var;
    SET("arch", model, o.arch) SET("augment", augment, o.augment) SET("noise", noise, o.noise)
    SET("strong", strong, o.fixmatch.fit.strong) SET("epochs", (int)epochs, o.epochs)
    SET("fixmatch-epochs", (int)fm_epochs, o.fixmatch_epochs) SET("labeled-repeat", (int)repeat, o.labeled_repeat) SET("ns-epochs", (int)ns_epochs, o.ns_epochs)
    SET("rounds", (int)rounds, o.rounds) SET("ensemble", (int)ensemble, o.ensemble) SET("mu", (int)mu, o.fixmatch.fit.mu) SET("unlabeled-ratio", ratio, o.unlabeled_ratio)
    SET("pl-threshold", (float)pl_thr, o.pl_threshold) SET("ns-threshold", (float)ns_thr, o.ns_threshold)
    SET("threshold", (float)fm_thr, o.fixmatch.fit.threshold) SET("lambda-u", (float)lambda_u, o.fixmatch.fit.lambda_u)
    SET("lr", (float)lr, o.fit.sched.base_lr) SET("ema", (float)ema, o.fit.optim.ema)
#undef SET
    if (fm_fresh)
        o.fixmatch_init = false;
    if (ns_fresh)
        o.ns_from_teacher = false;
    if (o.augment && !strcmp(o.augment, "none"))
        o.augment = NULL;
    if (o.noise && !strcmp(o.noise, "none"))
        o.noise = NULL;
    if (fr_demo_check(&o) != FR_STATUS_OK)
        return cli_error(cmd, CLI_USAGE, "%s", fr_last_error());
    if ((rc = rc_check_arch(cmd, o.arch)) != CLI_OK)
        return rc;
    if ((o.augment && (rc = check_policy(cmd, "augment", o.augment))) ||
        (o.noise && (rc = check_policy(cmd, "noise", o.noise))) ||
        (rc = check_policy(cmd, "strong", o.fixmatch.fit.strong)))
        return rc;
    struct rc_outdir od = {.lock_fd = -1};
    if (c.out && (rc = rc_out_open(cmd, c.out, NULL, &od)) != CLI_OK)
        return rc;

    struct fr_backend *be = NULL;
    struct fr_dataset *train = NULL, *test = NULL;
    struct fr_split sp = {0};
    struct fr_demo_row *rows = NULL;
    int n = 0;
    double t_all = rc_now();
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        goto done;
    struct rc_data d;
    rc_defaults(NULL, &d, NULL);
    d.data = data;
    d.test = !strcmp(data, "fmnist") ? "fmnist:test" : NULL;
    d.labels = labels;
    d.test_limit = test_limit;
    if ((rc = rc_open_data(cmd, &d, &train, &test)) != CLI_OK || (rc = rc_split(cmd, &d, train, (uint64_t)c.seed, &sp)))
        goto done;
    if (!test) {
        rc = cli_error(cmd, CLI_USAGE, "--data %s: the demo needs a test split (use fmnist)", data);
        goto done;
    }
    fprintf(stderr, "frugal %s: %s, %lld labels (%lld train + %lld validation), %lld unlabeled images, model %s%s\n", cmd,
            train->source, (long long)(sp.n_labeled + sp.n_val), (long long)sp.n_labeled, (long long)sp.n_val,
            (long long)sp.n_unlabeled, o.arch, quick ? " (quick)" : "");
    rc_install_signals();
    struct demo_ui ui = {.cmd = cmd};
    o.fit.seed = (uint64_t)c.seed;
    o.fit.out_dir = c.out;
    o.fit.stop = &rc_stop;
    o.fit.on_progress = progress_step;
    o.fit.user = &ui.pr;
    o.on_stage = on_stage;
    o.on_row = on_row;
    o.user = &ui;
    enum fr_status st = fr_demo_run(be, train, test, &sp, &o, &rows, &n);
    if (st != FR_STATUS_OK) {
        progress_done(&ui.pr);
        rc = st == FR_STATUS_INTERRUPTED ? rc_interrupted(cmd, fr_last_error()) : rc_fail(cmd, st);
        goto done;
    }
    double total = rc_now() - t_all;
    rc_report_device(cmd, be, 0);
    int best = 2; /* the best semi-supervised row by test accuracy, for the summary line only */
    for (int i = 3; i < n; i++)
        if (rows[i].test_accuracy > rows[best].test_accuracy)
            best = i;
    if (c.json) {
        cJSON *jo = rc_json_new(cmd);
        cJSON *arr = cJSON_AddArrayToObject(jo, "rows");
        for (int i = 0; i < n; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "method", rows[i].method);
            cJSON_AddNumberToObject(r, "labels", (double)rows[i].labels);
            cJSON_AddNumberToObject(r, "unlabeled_images", (double)rows[i].unlabeled);
            cJSON_AddNumberToObject(r, "pseudo_labels", (double)rows[i].pseudo_kept);
            rc_json_num(r, "pseudo_label_accuracy", rows[i].pseudo_accuracy);
            rc_json_num(r, "val_accuracy", rows[i].val_accuracy);
            rc_json_num(r, "test_accuracy", rows[i].test_accuracy);
            cJSON_AddBoolToObject(r, "moving_average", rows[i].ema);
            cJSON_AddNumberToObject(r, "seconds", rows[i].seconds);
            cJSON_AddItemToArray(arr, r);
        }
        cJSON_AddStringToObject(jo, "model", o.arch);
        cJSON_AddBoolToObject(jo, "quick", quick);
        cJSON_AddNumberToObject(jo, "test_images", (double)test->n);
        rc_json_num(jo, "gain_over_supervised_augment", rows[best].test_accuracy - rows[1].test_accuracy);
        rc_json_run(jo, be, 0, total);
        rc_json_print(jo);
    } else {
        printf("\n%s, %lld labels (%lld per class), model %s, device %s%s\n\n", train->source,
               (long long)rows[0].labels, (long long)(rows[0].labels / (train->n_classes > 0 ? train->n_classes : 1)),
               o.arch, fr_backend_name(be), quick ? " (quick)" : "");
        printf("  %-24s %7s %10s %13s %9s %14s %8s\n", "method", "labels", "unlabeled", "pseudo-labels", "pl acc",
               "test accuracy", "time");
        for (int i = 0; i < n; i++) {
            char pl[16] = "-", pa[16] = "-";
            if (rows[i].unlabeled > 0)
                snprintf(pl, sizeof pl, "%lld", (long long)rows[i].pseudo_kept);
            if (!isnan(rows[i].pseudo_accuracy))
                snprintf(pa, sizeof pa, "%.2f%%", 100.0 * rows[i].pseudo_accuracy);
            printf("  %-24s %7lld %10lld %13s %9s %13.2f%%%s %7.1fs\n", rows[i].method, (long long)rows[i].labels,
                   (long long)rows[i].unlabeled, pl, pa, 100.0 * rows[i].test_accuracy, rows[i].ema ? "*" : " ",
                   rows[i].seconds);
        }
        printf("\n  total %.1f s. Best semi-supervised row (%s) vs supervised+augment: %+.2f points.\n", total,
               rows[best].method, 100.0 * (rows[best].test_accuracy - rows[1].test_accuracy));
        if (o.fit.optim.ema > 0)
            printf("  * the moving average of the weights (it validated better than the raw weights).\n");
        /* figures of docs/reference.md section 7 and of the README's demo section (with the command it names) */
        printf("  With all 60,000 labels: model t 90.7%% (README), published 2-conv CNNs 91.6-93.9%% (docs/reference.md "
               "section 7).\n");
    }
    rc = CLI_OK;
done:
    free(rows);
    fr_split_free(&sp);
    fr_dataset_free(train);
    fr_dataset_free(test);
    fr_backend_free(be);
    rc_out_close(&od);
    return rc;
}
