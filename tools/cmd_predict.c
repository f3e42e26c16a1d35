/* `frugal predict`: top-k classes with probabilities for image files or directories of images. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "recipe_cli.h"

static bool is_image_name(const char *n)
{
    const char *dot = strrchr(n, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") ||
                   !strcasecmp(dot, ".bmp") || !strcasecmp(dot, ".pgm") || !strcasecmp(dot, ".ppm") ||
                   !strcasecmp(dot, ".tga") || !strcasecmp(dot, ".gif"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* expands directories (their image files, sorted) into `files` */
static int collect(const char *cmd, const struct cli_list *in, char ***files, int *n)
{
    *files = NULL;
    *n = 0;
    int cap = 0;
    for (int i = 0; i < in->n; i++) {
        struct stat s;
        if (stat(in->items[i], &s) != 0)
            return cli_error(cmd, CLI_USAGE, "%s: %s", in->items[i], strerror(errno));
        char **batch = NULL;
        int nb = 0;
        if (S_ISDIR(s.st_mode)) {
            DIR *d = opendir(in->items[i]);
            if (!d)
                return cli_error(cmd, CLI_USAGE, "%s: cannot read the directory: %s", in->items[i], strerror(errno));
            struct dirent *e;
            int subdirs = 0;
            while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                    continue; /* hidden files, . and .. */
                if (!is_image_name(e->d_name)) {
                    char sub[4096];
                    struct stat ss;
                    snprintf(sub, sizeof sub, "%s/%s", in->items[i], e->d_name);
                    subdirs += stat(sub, &ss) == 0 && S_ISDIR(ss.st_mode);
                    continue;
                }
                char **nbp = realloc(batch, (size_t)(nb + 1) * sizeof *nbp);
                if (!nbp)
                    break;
                batch = nbp;
                size_t len = strlen(in->items[i]) + strlen(e->d_name) + 2;
                batch[nb] = malloc(len);
                snprintf(batch[nb], len, "%s/%s", in->items[i], e->d_name);
                nb++;
            }
            closedir(d);
            if (nb > 1)
                qsort(batch, (size_t)nb, sizeof *batch, cmp_str);
            if (nb == 0) {
                free(batch);
                return cli_error(cmd, CLI_USAGE, "no images in %s%s", in->items[i],
                                 subdirs ? " (subdirectories are not searched: name them, e.g. DIR/*/)" : "");
            }
        } else {
            batch = malloc(sizeof *batch);
            batch[0] = strdup(in->items[i]);
            nb = 1;
        }
        for (int j = 0; j < nb; j++) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                *files = realloc(*files, (size_t)cap * sizeof **files);
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
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"checkpoint", CLI_STR, &model, "CKPT", "frugal checkpoint", false},
        CLI_DEPRECATED("model", "checkpoint"),
        {"input", CLI_STR_LIST, &inputs, "PATH", "image file or directory (repeatable; also positional)", false},
        {"top-k", CLI_INT, &topk, "K", "classes to show per image (3)", false, CLI_RANGE(1, 1000000)},
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
    uint8_t *x = NULL;
    float *logits = NULL;
    double t0 = rc_now();
    if ((rc = collect(cmd, &inputs, &files, &nf)) != CLI_OK)
        goto done;
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        goto done;
    if ((rc = rc_load_net(cmd, "--checkpoint", be, model, &net)) != CLI_OK)
        goto done;
    /* in chunks: memory stays flat however many images a directory holds */
    enum { CHUNK = 256 };
    int64_t sz = (int64_t)net->c * net->h * net->w;
    int k = net->n_classes;
    x = malloc((size_t)(CHUNK * sz));
    logits = malloc((size_t)CHUNK * k * sizeof(float));
    int *order = malloc((size_t)k * sizeof *order);
    float *p = malloc((size_t)k * sizeof *p);
    cJSON *root = rc_json_new(cmd);
    rc_json_model(root, net);
    cJSON *preds = cJSON_AddArrayToObject(root, "predictions");
    if (!x || !logits || !order || !p) {
        rc = cli_error(cmd, CLI_FAIL, "out of memory");
        goto chunks_done;
    }
    if (topk > k)
        topk = k;
    for (int first = 0; first < nf && rc == CLI_OK; first += CHUNK) {
        int m = nf - first < CHUNK ? nf - first : CHUNK;
        for (int i = 0; i < m; i++) {
            uint8_t *pix;
            int ic, ih, iw;
            enum fr_status st = fr_image_load(files[first + i], net->c, net->h, net->w, FR_RESIZE_BILINEAR, &pix, &ic,
                                              &ih, &iw);
            if (st != FR_STATUS_OK) {
                rc = rc_input_fail(cmd, st);
                goto chunks_done;
            }
            memcpy(x + i * sz, pix, (size_t)sz); /* u8 NHWC: converted on the device */
            free(pix);
        }
        enum fr_status st = fr_net_predict_u8(net, x, m, logits);
        if (st != FR_STATUS_OK) {
            rc = rc_fail(cmd, st);
            goto chunks_done;
        }
        for (int i = 0; i < m; i++) {
            const char *path = files[first + i];
            const float *z = logits + (int64_t)i * k;
            float mx = z[0];
            for (int j = 1; j < k; j++)
                mx = z[j] > mx ? z[j] : mx;
            double s = 0;
            for (int j = 0; j < k; j++)
                s += exp((double)z[j] - mx);
            for (int j = 0; j < k; j++) {
                p[j] = (float)(exp((double)z[j] - mx) / s);
                order[j] = j;
                if (!isfinite(p[j])) {
                    rc = cli_error(cmd, CLI_FAIL, "%s: the model's outputs are not finite", path);
                    goto chunks_done;
                }
            }
            for (int a = 0; a < topk; a++) /* partial selection sort: k is small */
                for (int b = a + 1; b < k; b++)
                    if (p[order[b]] > p[order[a]]) {
                        int t = order[a];
                        order[a] = order[b];
                        order[b] = t;
                    }
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "path", path);
            cJSON *top = cJSON_AddArrayToObject(e, "top");
            if (!c.json)
                printf("%s:", path);
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
    }
    int fb = fr_net_fallback_ops(net);
    rc_report_device(cmd, be, fb);
    cJSON_AddNumberToObject(root, "images", nf);
    rc_json_run(root, be, fb, rc_now() - t0);
chunks_done:
    free(order);
    free(p);
    if (rc == CLI_OK && c.json)
        rc_json_print(root);
    else
        cJSON_Delete(root);
    if (rc != CLI_OK)
        goto done;
    rc = CLI_OK;
done:
    for (int i = 0; i < nf; i++)
        free(files[i]);
    free(files);
    free(inputs.items);
    free(x);
    free(logits);
    fr_net_free(net);
    fr_backend_free(be);
    return rc;
}
