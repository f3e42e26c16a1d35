/* `frugal finetune`: transfer learning from a checkpoint (or plain safetensors weights with --arch): a new head
 * for the new classes, the backbone frozen (no gradient, batch-norm statistics kept) or fine-tuned with its own
 * learning-rate multiplier. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recipe_cli.h"

int cmd_finetune(int argc, char **argv)
{
    const char *cmd = "finetune";
    struct rc_common c;
    struct rc_data d;
    struct rc_fit f;
    rc_defaults(&c, &d, &f);
    const char *from = NULL, *arch = NULL, *freeze = "none";
    double backbone_mult = 0.1;
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"out", CLI_STR, &c.out, "DIR", "write model.safetensors (each epoch) and metrics.jsonl here", false},
        {"from", CLI_STR, &from, "CKPT", "pretrained checkpoint, or safetensors weights with --arch (required)", false},
        {"arch", CLI_STR, &arch, "t|c|s|m|MODELFILE", "built-in architecture or model file of plain safetensors weights given to --from", false},
        {"freeze", CLI_STR, &freeze, "WHAT",
         "backbone (the head trains; without --augment on features computed once) | none (none)", false},
        {"backbone-lr-mult", CLI_FLOAT, &backbone_mult, "X", "backbone learning-rate multiplier with --freeze none (0.1)",
         false, CLI_ABOVE(0, 100)},
        RC_DATA_OPTS(&d),
        RC_FIT_OPTS(&f),
        {0},
    };
    int rc = cli_parse(cmd, "--from CKPT --data SPEC [--labels N] [--freeze backbone|none] [--backbone-lr-mult X]", argc,
                       argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (!from)
        return cli_error(cmd, CLI_USAGE, "--from CKPT is required");
    bool frozen;
    if (!strcmp(freeze, "backbone"))
        frozen = true;
    else if (!strcmp(freeze, "none"))
        frozen = false;
    else
        return cli_error(cmd, CLI_USAGE, "--freeze %s: expected backbone or none", freeze);
    if (frozen && cli_find(opts, "backbone-lr-mult")->seen)
        return cli_error(cmd, CLI_USAGE, "--backbone-lr-mult has no effect with --freeze backbone (the backbone does not "
                                         "train); use --freeze none");
    if (arch && (rc = rc_check_arch(cmd, arch)) != CLI_OK)
        return rc;
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
    if (f.resume || !arch) /* a frugal checkpoint: images at its input */
        rc_checkpoint_input(f.resume ? f.resume : from, &d);
    if ((rc = rc_open_data(cmd, &d, &train, &test)) != CLI_OK || (rc = rc_split(cmd, &d, train, (uint64_t)c.seed, &sp)))
        goto done;
    struct rc_meta meta;
    rc_meta_make(&meta, &c, &d, &f, &sp, (struct fr_kv[]){{"frugal.from", from}}, 1);
    if (f.resume) {
        if ((rc = rc_load_net(cmd, "--resume", be, f.resume, &net)) != CLI_OK ||
            (rc = rc_check_resume(cmd, f.resume, &meta, net, NULL, f.epochs)) != CLI_OK)
            goto done;
        fo.resume = true;
    } else if (arch) {
        if ((st = fr_net_load_weights(be, arch, from, train->c, train->h, train->w, &net)) != FR_STATUS_OK) {
            rc = rc_input_fail(cmd, st);
            goto done;
        }
        if ((rc = rc_check_weights(cmd, from, net)) != CLI_OK)
            goto done;
        rc_warn_unused_tensors(cmd, from, net);
    } else if ((rc = rc_load_net(cmd, "--from", be, from, &net)) != CLI_OK) {
        goto done;
    }
    if (!f.resume && (st = fr_net_replace_head(net, train->n_classes, train->class_names, (uint64_t)c.seed)) != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    if ((rc = rc_check_fit(cmd, f.resume ? f.resume : from, net, train)) != CLI_OK)
        goto done;
    char head[64];
    fr_net_head_prefix(net, head, sizeof head);
    struct fr_param_group groups[2];
    memset(groups, 0, sizeof groups);
    snprintf(groups[0].prefix, sizeof groups[0].prefix, "%s", head);
    groups[0].lr_mult = 1.0f;
    groups[0].weight_decay = -1.0f;
    groups[1].prefix[0] = 0; /* everything else: the backbone */
    groups[1].lr_mult = frozen ? 1.0f : (float)backbone_mult;
    groups[1].weight_decay = -1.0f;
    groups[1].frozen = frozen;
    fo.groups = groups;
    fo.n_groups = 2;
    ts.n_classes = net->n_classes;
    if ((st = fr_trainset_add(&ts, 0, train, sp.labeled, sp.n_labeled, NULL, NULL)) != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    fprintf(stderr, "frugal %s: %s, model %s, head '%s*' with %d classes, backbone %s, %lld labeled images\n", cmd,
            from, net->arch, head, net->n_classes, frozen ? "frozen" : "fine-tuned", (long long)sp.n_labeled);
    rc_fit_on_split(&fo, train, &sp, &meta);
    struct fr_fit_result fr;
    if ((rc = rc_run_fit(cmd, be, net, &ts, &fo, &fr)) != CLI_OK)
        goto done;
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddNumberToObject(extra, "labels", (double)(sp.n_labeled + sp.n_val));
    cJSON_AddStringToObject(extra, "freeze", frozen ? "backbone" : "none");
    cJSON_AddNumberToObject(extra, "backbone_lr_mult", frozen ? 0.0 : backbone_mult);
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
