/* `frugal train`: supervised training on a label budget with augmentation, CutMix/MixUp, validation per epoch
 * and a test evaluation at the end; checkpoints and metrics.jsonl in --out, --resume continues a run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recipe_cli.h"

int cmd_train(int argc, char **argv)
{
    const char *cmd = "train";
    struct rc_common c;
    struct rc_data d;
    struct rc_fit f;
    rc_defaults(&c, &d, &f);
    const char *fold = NULL;
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"out", CLI_STR, &c.out, "DIR", "write model.safetensors (each epoch) and metrics.jsonl here", false},
        RC_ARCH_OPT(&f, "built-in architecture or a model file (README: Model files);"),
        {"fold", CLI_STR, &fold, "F/K", "train without fold F of K (image i is in fold i mod K): a teacher for "
                                        "distill --fold-teachers", false},
        RC_DATA_OPTS(&d),
        RC_FIT_OPTS(&f),
        {0},
    };
    int rc = cli_parse(cmd, "--data SPEC [--labels N] [--arch t|c|s|m|MODELFILE] [--epochs N] [--augment POLICY] [flags]",
                       argc, argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = rc_check_arch(cmd, f.model)) != CLI_OK)
        return rc;
    int fold_f = 0, fold_k = 0;
    char fold_meta[32] = "none";
    if (fold) {
        char end;
        if (sscanf(fold, "%d/%d%c", &fold_f, &fold_k, &end) != 2 || fold_k < 2 || fold_f < 0 || fold_f >= fold_k)
            return cli_error(cmd, CLI_USAGE, "--fold %s: give F/K with K >= 2 and 0 <= F < K (e.g. 0/2)", fold);
        snprintf(fold_meta, sizeof fold_meta, "%d/%d", fold_f, fold_k);
    }
    struct fr_fit_opts fo;
    if ((rc = rc_fit_opts(cmd, &c, &f, &fo)) != CLI_OK)
        return rc;
    struct rc_outdir od = {.lock_fd = -1};
    if (c.out && (rc = rc_out_open(cmd, c.out, f.resume, &od)) != CLI_OK)
        return rc;
    struct fr_backend *be = NULL;
    struct fr_dataset *train = NULL, *test = NULL;
    struct fr_split sp = {0};
    struct fr_trainset ts = {0};
    struct fr_net *net = NULL;
    enum fr_status st;
    double t0 = rc_now();
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        goto done;
    if (f.resume)
        rc_checkpoint_input(f.resume, &d); /* images at the checkpoint's input */
    if ((rc = rc_open_data(cmd, &d, &train, &test)) != CLI_OK || (rc = rc_split(cmd, &d, train, (uint64_t)c.seed, &sp)))
        goto done;
    if (fold && (st = fr_split_hold_out_fold(&sp, fold_f, fold_k)) != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    struct rc_meta meta;
    rc_meta_make(&meta, &c, &d, &f, &sp, (struct fr_kv[]){{"frugal.fold", fold_meta}}, 1);
    if (f.resume) {
        if ((rc = rc_load_net(cmd, "--resume", be, f.resume, &net)) != CLI_OK ||
            (rc = rc_check_resume(cmd, f.resume, &meta, net, cli_find(opts, "arch")->seen ? f.model : NULL,
                                  f.epochs)) != CLI_OK ||
            (rc = rc_check_fit(cmd, f.resume, net, train)) != CLI_OK)
            goto done;
        fo.resume = true;
        fprintf(stderr, "frugal %s: resuming %s at epoch %lld, step %lld\n", cmd, f.resume, (long long)net->ck_epoch + 1,
                (long long)net->ck_step_in_epoch);
    } else if ((st = fr_net_new(be, f.model, train->c, train->h, train->w, train->n_classes, train->class_names,
                                (uint64_t)c.seed, &net)) != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    ts.n_classes = net->n_classes;
    if ((st = fr_trainset_add(&ts, 0, train, sp.labeled, sp.n_labeled, NULL, NULL)) != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    fprintf(stderr, "frugal %s: model %s (%lld parameters), %lld labeled training images + %lld validation, %s\n", cmd,
            net->arch, (long long)fr_model_n_params(net->model), (long long)sp.n_labeled, (long long)sp.n_val,
            train->source);
    rc_fit_on_split(&fo, train, &sp, &meta);
    struct fr_fit_result fr;
    if ((rc = rc_run_fit(cmd, be, net, &ts, &fo, &fr)) != CLI_OK)
        goto done;
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddNumberToObject(extra, "labels", (double)(sp.n_labeled + sp.n_val));
    rc = rc_finish(cmd, &c, be, net, &fr, test, rc_now() - t0, extra);
done:
    fr_net_free(net);
    fr_trainset_free(&ts);
    fr_split_free(&sp);
    fr_dataset_free(train);
    fr_dataset_free(test);
    fr_backend_free(be);
    rc_out_close(&od);
    return rc;
}
