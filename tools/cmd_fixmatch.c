/* `frugal fixmatch`: FixMatch on a label budget (fr_fixmatch): the labeled images with their weak view, the
 * unlabeled ones with a weak and a strong view made on the device, confident weak predictions as the strong view's
 * targets; validation per epoch, test evaluation, checkpoints (and the weights' moving average with --ema). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/augment.h"
#include "recipe_cli.h"

int cmd_fixmatch(int argc, char **argv)
{
    const char *cmd = "fixmatch";
    struct rc_common c;
    struct rc_data d;
    struct rc_fit f;
    rc_defaults(&c, &d, &f);
    d.labels = 1000;
    f.model = "t";
    f.augment = FR_FIXMATCH_WEAK;
    f.epochs = 10;
    const char *strong = FR_FIXMATCH_STRONG, *init = NULL;
    double threshold = 0.95, lambda_u = 1.0, ratio = 0;
    int64_t mu = 7;
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"out", CLI_STR, &c.out, "DIR", "write model.safetensors (each epoch), model_ema.safetensors and metrics.jsonl here",
         false},
        RC_ARCH_OPT(&f, "built-in architecture or a model file (t)"),
        {"init", CLI_STR, &init, "CKPT", "start from this checkpoint's weights (e.g. a supervised model)", false},
        {"threshold", CLI_FLOAT, &threshold, "TAU", "confidence a weak-view prediction needs to become a target (0.95)",
         false, CLI_RANGE(0, 1)},
        {"mu", CLI_INT, &mu, "MU", "unlabeled images per labeled image in a step (7)", false, CLI_RANGE(1, 1000)},
        {"lambda-u", CLI_FLOAT, &lambda_u, "X", "weight of the unlabeled loss (1)", false, CLI_RANGE(0, 1000)},
        {"strong", CLI_STR, &strong, "POLICY", "strong view of the unlabeled images (" FR_FIXMATCH_STRONG ")", false},
        {"unlabeled-ratio", CLI_FLOAT, &ratio, "K", "unlabeled images per labeled image (0 = all)", false,
         CLI_RANGE(0, 1e6)},
        RC_DATA_OPTS(&d),
        RC_FIT_OPTS(&f),
        {0},
    };
    int rc = cli_parse(cmd, "--data SPEC --labels N [--threshold 0.95] [--mu 7] [--lambda-u 1] [--ema DECAY] [flags]", argc,
                       argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    struct fr_fixmatch_opts fm;
    fr_fixmatch_opts_init(&fm);
    if ((rc = rc_fit_opts(cmd, &c, &f, &fm.fit)) != CLI_OK)
        return rc;
    fm.fit.strong = strong;
    fm.fit.threshold = (float)threshold;
    fm.fit.lambda_u = (float)lambda_u;
    fm.fit.mu = (int)mu;
    fm.unlabeled_ratio = ratio;
    if (fr_fixmatch_check(&fm) != FR_STATUS_OK)
        return cli_error(cmd, CLI_USAGE, "%s", fr_last_error());
    struct fr_aug_policy *pol;
    if (fr_aug_policy_parse(strong, &pol) != FR_STATUS_OK)
        return cli_error(cmd, CLI_USAGE, "--strong: %s", fr_last_error());
    fr_aug_policy_free(pol);
    if (!init && (rc = rc_check_arch(cmd, f.model)) != CLI_OK)
        return rc;
    struct rc_outdir od = {.lock_fd = -1};
    if (c.out && (rc = rc_out_open(cmd, c.out, NULL, &od)) != CLI_OK)
        return rc;
    struct fr_backend *be = NULL;
    struct fr_dataset *train = NULL, *test = NULL;
    struct fr_split sp = {0};
    struct fr_net *net = NULL;
    enum fr_status st;
    double t0 = rc_now();
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        goto done;
    if (init)
        rc_checkpoint_input(init, &d);
    if ((rc = rc_open_data(cmd, &d, &train, &test)) != CLI_OK || (rc = rc_split(cmd, &d, train, (uint64_t)c.seed, &sp)))
        goto done;
    if (sp.n_unlabeled == 0) {
        rc = cli_error(cmd, CLI_USAGE, "%s: no images left unlabeled by --labels %lld", train->source, (long long)d.labels);
        goto done;
    }
    st = init ? fr_net_load(be, init, &net)
              : fr_net_new(be, f.model, train->c, train->h, train->w, train->n_classes, train->class_names,
                           (uint64_t)c.seed, &net);
    if (st != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    if (init && (rc = rc_check_fit(cmd, init, net, train)) != CLI_OK)
        goto done;
    fprintf(stderr, "frugal %s: model %s, %lld labeled training images + %lld validation, %lld unlabeled, %s\n", cmd,
            net->arch, (long long)sp.n_labeled, (long long)sp.n_val, (long long)sp.n_unlabeled, train->source);
    rc_fit_on_split(&fm.fit, train, &sp, NULL);
    rc_install_signals();
    struct progress pr;
    progress_init(&pr, cmd, "fixmatch");
    fm.fit.on_progress = progress_step;
    fm.fit.on_epoch = progress_epoch;
    fm.fit.user = &pr;
    fm.fit.stop = &rc_stop;
    struct fr_fit_result fr;
    st = fr_fixmatch(net, train, &sp, &fm, &fr);
    progress_done(&pr);
    if (st != FR_STATUS_OK) {
        rc = st == FR_STATUS_INTERRUPTED ? rc_interrupted(cmd, fr_last_error()) : rc_fail(cmd, st);
        goto done;
    }
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddNumberToObject(extra, "labels", (double)(sp.n_labeled + sp.n_val));
    cJSON_AddNumberToObject(extra, "threshold", threshold);
    cJSON_AddNumberToObject(extra, "mu", (double)mu);
    cJSON_AddNumberToObject(extra, "lambda_u", lambda_u);
    rc = rc_finish(cmd, &c, be, net, &fr, test, rc_now() - t0, extra);
done:
    fr_net_free(net);
    fr_split_free(&sp);
    fr_dataset_free(train);
    fr_dataset_free(test);
    fr_backend_free(be);
    rc_out_close(&od);
    return rc;
}
