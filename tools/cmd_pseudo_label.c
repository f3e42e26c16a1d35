/* `frugal pseudo-label`: a teacher labels a dataset; writes a CSV the loader reads (hard `path,label` or soft
 * `path,p0,...` with class names as header) and a `.confidence.csv` beside it; threshold and class balancing.
 * Images without a file of their own (IDX, Fashion-MNIST) are written as PNGs next to the CSV. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/augment.h"
#include "recipe_cli.h"

static void csv_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\n\r")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

int cmd_pseudo_label(int argc, char **argv)
{
    const char *cmd = "pseudo-label";
    struct rc_common c;
    struct rc_data d;
    rc_defaults(&c, &d, NULL);
    const char *teacher = NULL;
    double threshold = 0.0, temperature = 1.0;
    bool soft = false, balance = false;
    int64_t per_class = 0;
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"teacher", CLI_STR, &teacher, "CKPT", "the model that labels (eval mode, no noise)", false},
        {"out", CLI_STR, &c.out, "FILE.csv", "labels to write (required)", false},
        {"threshold", CLI_FLOAT, &threshold, "X", "keep images whose top probability is >= X (0)", false},
        {"soft", CLI_BOOL, &soft, NULL, "write probabilities instead of hard labels", false},
        {"balance", CLI_BOOL, &balance, NULL, "equal count per class: most confident kept, rare ones duplicated", false},
        {"per-class", CLI_INT, &per_class, "N", "images per class with --balance (default kept/classes)", false},
        {"temperature", CLI_FLOAT, &temperature, "T", "softmax temperature of the soft labels (1)", false},
        RC_DATA_OPTS(&d),
        {0},
    };
    int rc = cli_parse(cmd, "--teacher CKPT --data SPEC --out labels.csv [--threshold X] [--soft] [--balance]", argc,
                       argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (!teacher || !c.out)
        return cli_error(cmd, CLI_USAGE, "--teacher CKPT and --out FILE.csv are required");
    if (!(threshold >= 0 && threshold <= 1) || !(temperature > 0))
        return cli_error(cmd, CLI_USAGE, "--threshold must be in [0, 1] and --temperature > 0");
    struct fr_backend *be = NULL;
    struct fr_dataset *ds = NULL;
    struct fr_net *net = NULL;
    struct fr_split sp = {0};
    struct fr_pseudo ps = {0};
    FILE *f = NULL, *fc = NULL;
    char *imgdir = NULL;
    double t0 = rc_now();
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        return rc;
    enum fr_status st = fr_net_load(be, teacher, &net);
    if (st != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    d.in_c = net->c, d.in_h = net->h, d.in_w = net->w; /* images as the teacher sees them */
    if ((rc = rc_open_data(cmd, &d, &ds, NULL)) != CLI_OK)
        goto done;
    /* --labels N: label only what the same split (same --seed) leaves unlabeled */
    const int64_t *idx = NULL;
    int64_t n = ds->n;
    if (d.labels > 0) {
        if ((rc = rc_split(cmd, &d, ds, (uint64_t)c.seed, &sp)) != CLI_OK)
            goto done;
        idx = sp.unlabeled;
        n = sp.n_unlabeled;
    }
    struct fr_pseudo_opts po = {(float)threshold, balance, per_class, (float)temperature};
    if ((st = fr_pseudo_label(net, ds, idx, n, &po, &ps)) != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    char conf_path[PATH_MAX + 32];
    snprintf(conf_path, sizeof conf_path, "%s", c.out);
    char *ext = strrchr(conf_path, '.');
    if (ext && !strchr(ext, '/'))
        *ext = 0;
    strncat(conf_path, ".confidence.csv", sizeof conf_path - strlen(conf_path) - 1);
    {
        char *cp = strdup(c.out), *dn = cp ? dirname(cp) : NULL;
        if (dn && strcmp(dn, ".") && (rc = rc_mkdir(cmd, dn)) != CLI_OK) {
            free(cp);
            goto done;
        }
        free(cp);
    }
    f = fopen(c.out, "w");
    fc = f ? fopen(conf_path, "w") : NULL;
    if (!f || !fc) {
        rc = cli_error(cmd, CLI_USAGE, "%s: cannot write: %s", f ? conf_path : c.out, strerror(errno));
        goto done;
    }
    /* PNGs for images without a path, in <csv without extension>_images/ */
    if (!ds->paths && ps.n > 0) {
        char dir[PATH_MAX + 32];
        snprintf(dir, sizeof dir, "%.*s_images", (int)(ext ? ext - conf_path : (long)strlen(conf_path)), conf_path);
        if ((rc = rc_mkdir(cmd, dir)) != CLI_OK)
            goto done;
        imgdir = strdup(dir);
    }
    char *outcopy = strdup(c.out);
    char *base = outcopy ? dirname(outcopy) : ".";
    char base_abs[PATH_MAX];
    if (!realpath(base, base_abs))
        snprintf(base_abs, sizeof base_abs, "%s", base);
    free(outcopy);
    int k = ps.n_classes;
    if (soft) {
        fprintf(f, "path");
        for (int j = 0; j < k; j++) {
            fputc(',', f);
            csv_field(f, net->class_names[j]);
        }
        fputc('\n', f);
    } else {
        fprintf(f, "path,label\n");
    }
    fprintf(fc, "path,label,confidence\n");
    int64_t *counts = calloc((size_t)k, sizeof *counts);
    int64_t right = 0, with_truth = 0;
    for (int64_t i = 0; i < ps.n && counts; i++) {
        int64_t j = ps.idx[i];
        char rel[PATH_MAX];
        if (ds->paths) {
            char abs[PATH_MAX];
            snprintf(rel, sizeof rel, "%s", realpath(ds->paths[j], abs) ? abs : ds->paths[j]);
        } else {
            const char *slash = strrchr(imgdir, '/');
            snprintf(rel, sizeof rel, "%s/%06lld.png", slash ? slash + 1 : imgdir, (long long)j);
            char full[PATH_MAX + 16];
            snprintf(full, sizeof full, "%s/%06lld.png", imgdir, (long long)j);
            /* a duplicate (balancing) reuses the file written the first time */
            FILE *probe = fopen(full, "rb");
            if (probe)
                fclose(probe);
            else if ((st = fr_aug_write_png(full, ds->pixels + j * ds->c * ds->h * ds->w, ds->h, ds->w, ds->c)) !=
                     FR_STATUS_OK) {
                rc = rc_fail(cmd, st);
                free(counts);
                goto done;
            }
        }
        csv_field(f, rel);
        if (soft)
            for (int q = 0; q < k; q++)
                fprintf(f, ",%.6g", (double)ps.prob[i * k + q]);
        else
            fprintf(f, ",%d", ps.label[i]);
        fputc('\n', f);
        csv_field(fc, rel);
        fprintf(fc, ",%d,%.6f\n", ps.label[i], (double)ps.conf[i]);
        counts[ps.label[i]]++;
        if (ds->labels && ds->labels[j] >= 0) {
            with_truth++;
            right += ds->labels[j] == ps.label[i];
        }
    }
    if (fclose(f) != 0 || fclose(fc) != 0) {
        f = fc = NULL;
        free(counts);
        rc = cli_error(cmd, CLI_FAIL, "%s: write failed", c.out);
        goto done;
    }
    f = fc = NULL;
    int fb = fr_net_fallback_ops(net);
    rc_report_device(cmd, be, fb);
    double acc = with_truth ? (double)right / (double)with_truth : NAN;
    if (c.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "command", "pseudo_label");
        cJSON_AddNumberToObject(o, "images", (double)n);
        cJSON_AddNumberToObject(o, "rows", (double)ps.n);
        cJSON_AddNumberToObject(o, "threshold", threshold);
        cJSON_AddBoolToObject(o, "soft", soft);
        cJSON_AddBoolToObject(o, "balance", balance);
        rc_json_num(o, "pseudo_label_accuracy", acc);
        cJSON *cc = cJSON_AddArrayToObject(o, "class_counts");
        for (int q = 0; q < k && counts; q++)
            cJSON_AddItemToArray(cc, cJSON_CreateNumber((double)counts[q]));
        cJSON_AddStringToObject(o, "csv", c.out);
        cJSON_AddStringToObject(o, "confidence_csv", conf_path);
        cJSON_AddNullToObject(o, "test_accuracy");
        cJSON_AddNullToObject(o, "test_loss");
        cJSON_AddNullToObject(o, "train_images_per_second");
        cJSON_AddNumberToObject(o, "seconds", rc_now() - t0);
        cJSON_AddStringToObject(o, "device", fr_backend_name(be));
        cJSON_AddNumberToObject(o, "fallback_ops", fb);
        rc_json_print(o);
    } else {
        printf("%lld of %lld images labeled (threshold %.2f%s) -> %s, confidences in %s\n", (long long)ps.n,
               (long long)n, threshold, balance ? ", balanced" : "", c.out, conf_path);
        if (!isnan(acc))
            printf("pseudo-label accuracy against the true labels: %.4f\n", acc);
    }
    free(counts);
    rc = CLI_OK;
done:
    if (f)
        fclose(f);
    if (fc)
        fclose(fc);
    free(imgdir);
    fr_pseudo_free(&ps);
    fr_split_free(&sp);
    fr_net_free(net);
    fr_dataset_free(ds);
    fr_backend_free(be);
    return rc;
}
