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
        {"arch", CLI_STR, &arch, "t|s|m|MODELFILE", "built-in architecture or model file of plain safetensors weights given to --from", false},
        {"freeze", CLI_STR, &freeze, "WHAT", "backbone (train the head only) | none (none)", false},
        {"backbone-lr-mult", CLI_FLOAT, &backbone_mult, "X", "backbone learning-rate multiplier with --freeze none (0.1)",
         false},
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
    if (!(backbone_mult > 0))
        return cli_error(cmd, CLI_USAGE, "--backbone-lr-mult must be > 0 (use --freeze backbone to freeze)");
    if (arch && (rc = rc_check_arch(cmd, arch)) != CLI_OK)
        return rc;
    struct fr_fit_opts fo;
    if ((rc = rc_fit_opts(cmd, &c, &f, &fo)) != CLI_OK)
        return rc;
    if (c.out && (rc = rc_mkdir(cmd, c.out)) != CLI_OK)
        return rc;
    struct fr_backend *be = NULL;
    struct fr_dataset *train = NULL, *test = NULL;
    struct fr_split sp = {0};
    struct fr_trainset ts = {0};
    struct fr_net *net = NULL;
    enum fr_status st;
    double t0 = rc_now();
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        return rc;
    if (f.resume || !arch) /* a frugal checkpoint: images at its input */
        rc_checkpoint_input(f.resume ? f.resume : from, &d);
    if ((rc = rc_open_data(cmd, &d, &train, &test)) != CLI_OK || (rc = rc_split(cmd, &d, train, (uint64_t)c.seed, &sp)))
        goto done;
    if (f.resume) {
        st = fr_net_load(be, f.resume, &net);
        fo.resume = true;
    } else {
        st = arch ? fr_net_load_weights(be, arch, from, train->c, train->h, train->w, &net) : fr_net_load(be, from, &net);
        if (st == FR_STATUS_OK)
            st = fr_net_replace_head(net, train->n_classes, train->class_names, (uint64_t)c.seed);
    }
    if (st != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    if (net->c != train->c || net->h != train->h || net->w != train->w || net->n_classes != train->n_classes) {
        rc = cli_error(cmd, CLI_USAGE, "%s: the model does not fit %s", f.resume ? f.resume : from, train->source);
        goto done;
    }
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
    fo.val_ds = train;
    fo.val_idx = sp.val;
    fo.n_val = sp.n_val;
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%lld", (long long)c.seed);
    struct fr_kv meta[] = {{"frugal.split_seed", seed_s}, {"frugal.from", from}, {"frugal.data", d.data}};
    fo.meta = meta;
    fo.n_meta = 3;
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
    return rc;
}
