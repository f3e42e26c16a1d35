/* `frugal eval`: accuracy, loss, per-class accuracy and the confusion matrix of a checkpoint (or plain
 * safetensors weights with --arch) on a labeled dataset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recipe_cli.h"

int cmd_eval(int argc, char **argv)
{
    const char *cmd = "eval";
    struct rc_common c;
    rc_defaults(&c, NULL, NULL);
    const char *model = NULL, *weights = NULL, *arch = NULL, *data = NULL, *classes = NULL;
    int64_t limit = 0;
    struct rc_data d;
    rc_defaults(NULL, &d, NULL);
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"checkpoint", CLI_STR, &model, "CKPT", "frugal checkpoint to evaluate", false},
        CLI_DEPRECATED("model", "checkpoint"),
        {"weights", CLI_STR, &weights, "FILE", "plain safetensors weights (with --arch)", false},
        {"arch", CLI_STR, &arch, "t|c|s|m|MODELFILE", "architecture of --weights: built-in or a model file", false},
        {"data", CLI_STR, &data, "SPEC", "labeled data (default fmnist:test)", false},
        {"classes", CLI_STR, &classes, "LIST", "use only these classes, renumbered (as in training)", false},
        {"test-limit", CLI_INT, &limit, "N", "evaluate only the first N images (after --classes)", false,
         CLI_RANGE(0, RC_MAX_COUNT)},
        CLI_DEPRECATED("limit", "test-limit"),
        RC_IMAGE_OPTS(&d),
        {"out", CLI_STR, &c.out, "DIR", "not used: eval writes no files (use --json)", false},
        {0},
    };
    int rc = cli_parse(cmd, "--checkpoint CKPT | --weights FILE --arch t|c|s|m|MODELFILE  [--data SPEC] [flags]", argc,
                       argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = cli_refuse(cmd, opts, "out", "it writes no files (--json prints the results)")) != CLI_OK)
        return rc;
    if (!model == !weights)
        return cli_error(cmd, CLI_USAGE, "give exactly one of --checkpoint CKPT and --weights FILE");
    if (weights && !arch)
        return cli_error(cmd, CLI_USAGE, "--weights needs --arch t|c|s|m|MODELFILE");
    if (model && arch)
        return cli_error(cmd, CLI_USAGE, "--arch goes with --weights; a checkpoint names its own architecture");
    if (arch && (rc = rc_check_arch(cmd, arch)) != CLI_OK)
        return rc;
    struct fr_backend *be = NULL;
    struct fr_dataset *ds = NULL;
    struct fr_net *net = NULL;
    struct fr_eval ev = {0};
    double t0 = rc_now();
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        return rc;
    /* a checkpoint knows its input: images are brought to it as predict does; plain weights take the data's */
    if (model) {
        if ((rc = rc_load_net(cmd, "--checkpoint", be, model, &net)) != CLI_OK)
            goto done;
        d.in_c = net->c, d.in_h = net->h, d.in_w = net->w;
    }
    if ((rc = rc_open_dataset_ex(cmd, data ? data : "fmnist:test", classes, limit, &d, &ds)) != CLI_OK)
        goto done;
    int64_t labeled = 0;
    for (int64_t i = 0; ds->labels && i < ds->n; i++)
        labeled += ds->labels[i] >= 0;
    if (labeled == 0) {
        rc = cli_error(cmd, CLI_USAGE, "%s: no labeled images to evaluate on (for predictions use predict)", ds->source);
        goto done;
    }
    if (!model) {
        enum fr_status st = fr_net_load_weights(be, arch, weights, ds->c, ds->h, ds->w, &net);
        if (st != FR_STATUS_OK) {
            rc = rc_input_fail(cmd, st);
            goto done;
        }
        if ((rc = rc_check_weights(cmd, weights, net)) != CLI_OK)
            goto done;
        rc_warn_unused_tensors(cmd, weights, net);
        if (ds->class_names && ds->n_classes == net->n_classes) /* plain weights carry no class names */
            for (int i = 0; i < net->n_classes; i++) {
                char *nm = strdup(ds->class_names[i]);
                if (nm) {
                    free(net->class_names[i]);
                    net->class_names[i] = nm;
                }
            }
    }
    /* e.g. --classes 5-9 on a 10-class model: the renumbered labels would be scored against the wrong outputs */
    if ((rc = rc_check_fit(cmd, model ? model : weights, net, ds)) != CLI_OK)
        goto done;
    enum fr_status st;
    if ((st = fr_net_evaluate(net, ds, NULL, ds->n, &ev)) != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    if (!isfinite(ev.loss)) {
        rc = cli_error(cmd, CLI_FAIL, "%s: the model's outputs are not finite on %s (loss %g)", model ? model : weights,
                       ds->source, ev.loss);
        goto done;
    }
    int k = net->n_classes, fb = fr_net_fallback_ops(net);
    rc_report_device(cmd, be, fb);
    if (c.json) {
        cJSON *o = rc_json_new(cmd);
        rc_json_model(o, net);
        rc_json_num(o, "test_accuracy", ev.accuracy);
        rc_json_num(o, "test_loss", ev.loss);
        cJSON_AddNumberToObject(o, "test_images", (double)ev.n);
        cJSON *names = cJSON_AddArrayToObject(o, "class_names");
        cJSON *pc = cJSON_AddArrayToObject(o, "per_class_accuracy");
        cJSON *cm = cJSON_AddArrayToObject(o, "confusion_matrix");
        for (int i = 0; i < k; i++) {
            cJSON_AddItemToArray(names, cJSON_CreateString(net->class_names[i]));
            cJSON_AddItemToArray(pc, isnan(ev.class_accuracy[i]) ? cJSON_CreateNull()
                                                                 : cJSON_CreateNumber(ev.class_accuracy[i]));
            cJSON *row = cJSON_CreateArray();
            for (int j = 0; j < k; j++)
                cJSON_AddItemToArray(row, cJSON_CreateNumber((double)ev.confusion[(int64_t)i * k + j]));
            cJSON_AddItemToArray(cm, row);
        }
        rc_json_num(o, "eval_images_per_second", ev.images_per_second);
        rc_json_run(o, be, fb, rc_now() - t0);
        rc_json_print(o);
    } else {
        printf("accuracy %.4f  loss %.4f  on %lld images of %s\n\nper class:\n", ev.accuracy, ev.loss, (long long)ev.n,
               ds->source);
        for (int i = 0; i < k; i++) {
            printf("  %2d ", i);
            cli_print_padded(net->class_names[i], 14); /* columns, not bytes: UTF-8 names line up */
            printf(" %.4f\n", ev.class_accuracy[i]);
        }
        printf("\nconfusion matrix (rows: true class, columns: predicted):\n     ");
        for (int j = 0; j < k; j++)
            printf("%6d", j);
        printf("\n");
        for (int i = 0; i < k; i++) {
            printf("  %2d ", i);
            for (int j = 0; j < k; j++)
                printf("%6lld", (long long)ev.confusion[(int64_t)i * k + j]);
            printf("\n");
        }
    }
    rc = CLI_OK;
done:
    fr_eval_free(&ev);
    fr_net_free(net);
    fr_dataset_free(ds);
    fr_backend_free(be);
    return rc;
}
