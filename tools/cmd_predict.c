/* `frugal predict`: top-k classes with probabilities for image files or directories of images. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "recipe_cli.h"

/* expands directories (their images, sorted: fr_image_list_dir decides, as for datasets) into `files` */
static int collect(const char *cmd, const struct cli_list *in, char ***files, int *n)
{
    *files = NULL;
    *n = 0;
    int cap = 0;
    for (int i = 0; i < in->n; i++) {
        struct stat s;
        if (stat(in->items[i], &s) != 0)
            return cli_error(cmd, CLI_USAGE, "%s: %s", in->items[i], strerror(errno));
        char **batch = NULL, **subdirs = NULL;
        int64_t nb = 0, nsub = 0;
        if (S_ISDIR(s.st_mode)) {
            if (fr_image_list_dir(in->items[i], &batch, &nb, &subdirs, &nsub) != FR_STATUS_OK)
                return cli_error(cmd, CLI_USAGE, "%s", fr_last_error());
            fr_image_list_free(subdirs, nsub);
            if (nb == 0) {
                free(batch);
                return cli_error(cmd, CLI_USAGE, "no images in %s%s", in->items[i],
                                 nsub ? " (subdirectories are not searched: name them, e.g. DIR/*/)" : "");
            }
        } else {
            batch = malloc(sizeof *batch);
            if (batch && !(batch[0] = strdup(in->items[i]))) {
                free(batch);
                batch = NULL;
            }
            if (!batch)
                return cli_error(cmd, CLI_FAIL, "out of memory");
            nb = 1;
        }
        for (int64_t j = 0; j < nb; j++) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                char **nf = realloc(*files, (size_t)cap * sizeof **files);
                if (!nf) {
                    fr_image_list_free(batch + j, nb - j);
                    return cli_error(cmd, CLI_FAIL, "out of memory");
                }
                *files = nf;
            }
            (*files)[(*n)++] = batch[j];
        }
        free(batch);
    }
    if (*n == 0)
        return cli_error(cmd, CLI_USAGE, "no images given (--input FILE_OR_DIR...)");
    return CLI_OK;
}

int cmd_predict(int argc, char **argv)
{
    const char *cmd = "predict";
    struct rc_common c;
    rc_defaults(&c, NULL, NULL);
    const char *model = NULL;
    int64_t topk = 3;
    struct cli_list inputs = {0}, pos = {0};
    const char *on_bad_image = NULL;
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"checkpoint", CLI_STR, &model, "CKPT", "frugal checkpoint", false},
        CLI_DEPRECATED("model", "checkpoint"),
        {"input", CLI_STR_LIST, &inputs, "PATH", "image file or directory (repeatable; also positional)", false},
        {"top-k", CLI_INT, &topk, "K", "classes to show per image (3)", false, CLI_RANGE(1, 1000000)},
        {"on-bad-image", CLI_STR, &on_bad_image, "stop|skip", "an unreadable image stops the run (default) or is "
         "skipped, named once", false},
        {"out", CLI_STR, &c.out, "DIR", "not used: predict writes no files (use --json)", false},
        {0},
    };
    int rc = cli_parse(cmd, "--checkpoint CKPT --input FILE_OR_DIR... [--top-k K]", argc, argv, opts, &pos);
    if (rc == CLI_OK)
        rc = cli_refuse(cmd, opts, "out", "it writes no files (--json prints the results)");
    if (rc) {
        free(pos.items);
        free(inputs.items);
        return rc < 0 ? CLI_OK : rc;
    }
    for (int i = 0; i < pos.n; i++) {
        inputs.items = realloc(inputs.items, (size_t)(inputs.n + 1) * sizeof *inputs.items);
        inputs.items[inputs.n++] = pos.items[i];
    }
    free(pos.items);
    if (!model) {
        free(inputs.items);
        return cli_error(cmd, CLI_USAGE, "--checkpoint CKPT is required");
    }
    char **files = NULL;
    int nf = 0;
    struct fr_backend *be = NULL;
    struct fr_net *net = NULL;
    struct fr_dataset *ds = NULL;
    float *logits = NULL;
    int64_t skipped = 0;
    double t0 = rc_now();
    if ((rc = collect(cmd, &inputs, &files, &nf)) != CLI_OK)
        goto done;
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        goto done;
    if ((rc = rc_load_net(cmd, "--checkpoint", be, model, &net)) != CLI_OK)
        goto done;
    enum fr_status st;
    /* the files as a dataset at the model's input: read exactly as eval and training read them */
    struct rc_data d;
    rc_defaults(NULL, &d, NULL);
    d.on_bad_image = on_bad_image;
    d.in_c = net->c, d.in_h = net->h, d.in_w = net->w;
    struct fr_dataset_opts dopt;
    if ((rc = rc_image_opts(cmd, &d, &dopt)) != CLI_OK)
        goto done;
    if ((st = fr_dataset_from_files(files, NULL, nf, "predict", &dopt, &ds)) != FR_STATUS_OK) {
        rc = rc_input_fail(cmd, st);
        goto done;
    }
    int k = net->n_classes;
    logits = malloc((size_t)ds->n * k * sizeof(float));
    if (!logits) {
        rc = cli_error(cmd, CLI_FAIL, "out of memory");
        goto done;
    }
    /* fr_net_predict reads the images in chunks: memory stays flat however many files there are */
    if ((st = fr_net_predict(net, ds, NULL, ds->n, logits)) != FR_STATUS_OK) {
        rc = rc_input_fail(cmd, st);
        goto done;
    }
    int fb = fr_net_fallback_ops(net);
    rc_report_device(cmd, be, fb);
    if (topk > k)
        topk = k;
    cJSON *root = rc_json_new(cmd);
    rc_json_model(root, net);
    cJSON *preds = cJSON_AddArrayToObject(root, "predictions");
    int *order = malloc((size_t)k * sizeof *order);
    float *p = malloc((size_t)k * sizeof *p);
    for (int64_t i = 0; i < ds->n && order && p; i++) {
        const float *z = logits + i * k;
        if (isnan(z[0])) { /* unreadable, skipped (named once on stderr) */
            skipped++;
            continue;
        }
        float mx = z[0];
        for (int j = 1; j < k; j++)
            mx = z[j] > mx ? z[j] : mx;
        double s = 0;
        for (int j = 0; j < k; j++)
            s += exp((double)z[j] - mx);
        for (int j = 0; j < k; j++) {
            p[j] = (float)(exp((double)z[j] - mx) / s);
            order[j] = j;
        }
        for (int a = 0; a < topk; a++) /* partial selection sort: k is small */
            for (int b = a + 1; b < k; b++)
                if (p[order[b]] > p[order[a]]) {
                    int t = order[a];
                    order[a] = order[b];
                    order[b] = t;
                }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "path", ds->paths[i]);
        cJSON *top = cJSON_AddArrayToObject(e, "top");
        if (!c.json)
            printf("%s:", ds->paths[i]);
        for (int a = 0; a < topk; a++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddNumberToObject(t, "class", order[a]);
            cJSON_AddStringToObject(t, "name", net->class_names[order[a]]);
            cJSON_AddNumberToObject(t, "probability", p[order[a]]);
            cJSON_AddItemToArray(top, t);
            if (!c.json)
                printf("  %s %.4f", net->class_names[order[a]], (double)p[order[a]]);
        }
        if (!c.json)
            printf("\n");
        cJSON_AddItemToArray(preds, e);
    }
    free(order);
    free(p);
    cJSON_AddNumberToObject(root, "images", (double)(ds->n - skipped));
    cJSON_AddNumberToObject(root, "skipped", (double)(nf - ds->n + skipped));
    rc_json_run(root, be, fb, rc_now() - t0);
    if (c.json)
        rc_json_print(root);
    else
        cJSON_Delete(root);
    rc = CLI_OK;
done:
    for (int i = 0; i < nf; i++)
        free(files[i]);
    free(files);
    free(inputs.items);
    free(logits);
    fr_dataset_free(ds);
    fr_net_free(net);
    fr_backend_free(be);
    return rc;
}
