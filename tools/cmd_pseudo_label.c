/* `frugal pseudo-label`: a teacher labels a dataset; writes a CSV the loader reads back (hard: a `#classes` line
 * with the teacher's class names, then `path,label`; soft: `path,<class names>`) and a `.confidence.csv` beside it;
 * threshold and class balancing. Images without a file of their own (IDX, Fashion-MNIST) are written as PNGs into
 * <csv stem>_images/. Nothing is replaced until the run is complete: CSVs go through temporary files, PNGs into a
 * fresh staging directory that replaces the old image directory at the end; SIGINT/SIGTERM or a failure leaves the
 * previous results as they were. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frugal/augment.h"
#include "frugal/io.h"
#include "recipe_cli.h"
#include "dist_cli.h"

static void csv_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\n\r") || s[0] == '#' || s[0] == ' ') {
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

/* `to` relative to directory `from` (both absolute, normalised by realpath) */
static void relative_path(const char *from, const char *to, char *out, size_t size)
{
    if (!strcmp(from, "/")) {
        snprintf(out, size, "%s", to + 1);
        return;
    }
    size_t common = 0, i = 0;
    for (; from[i] && from[i] == to[i]; i++)
        if (from[i] == '/')
            common = i;
    if (!from[i] && (to[i] == '/' || !to[i]))
        common = i; /* `from` is a prefix directory of `to` */
    out[0] = 0;
    for (const char *p = from + common; *p; p++)
        if (*p == '/')
            strncat(out, "../", size - strlen(out) - 1);
    const char *rest = to + common + (to[common] == '/');
    strncat(out, rest, size - strlen(out) - 1);
}

/* removes the regular files of a directory we wrote, then the directory; false if something else is in it */
static bool remove_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *e;
    bool ok = true;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[PATH_MAX + 300];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode))
            ok &= unlink(p) == 0;
        else
            ok = false;
    }
    closedir(d);
    return ok && rmdir(dir) == 0;
}

static int64_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int64_t n = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

int cmd_pseudo_label(int argc, char **argv)
{
    const char *cmd = "pseudo-label";
    struct rc_common c;
    struct rc_data d;
    rc_defaults(&c, &d, NULL);
    const char *teacher = NULL, *csv = NULL;
    double threshold = 0.0, temperature = 1.0;
    bool soft = false, balance = false;
    int64_t per_class = 0;
    struct cli_opt opts[] = {
        RC_COMMON_OPTS(&c),
        {"teacher", CLI_STR, &teacher, "CKPT", "the model that labels (eval mode, no noise)", false},
        {"out", CLI_STR, &c.out, "DIR", "write DIR/labels.csv, DIR/labels.confidence.csv (and DIR/labels_images/)", false},
        {"csv", CLI_STR, &csv, "FILE.csv", "the labels file to write instead (its .confidence.csv and _images/ beside it)",
         false},
        {"threshold", CLI_FLOAT, &threshold, "X", "keep images whose top probability is >= X (0)", false, CLI_RANGE(0, 1)},
        {"soft", CLI_BOOL, &soft, NULL, "write probabilities instead of hard labels", false},
        {"balance", CLI_BOOL, &balance, NULL, "equal count per class: most confident kept, rare ones duplicated", false},
        {"per-class", CLI_INT, &per_class, "N", "images per class with --balance (default kept/classes)", false,
         CLI_RANGE(0, RC_MAX_COUNT)},
        {"temperature", CLI_FLOAT, &temperature, "T", "softmax temperature of the soft labels (1)", false,
         CLI_ABOVE(0, 1000)},
        RC_DATA_OPTS(&d),
        {0},
    };
    int rc = cli_parse(cmd, "--teacher CKPT --data SPEC (--out DIR | --csv FILE.csv) [--threshold X] [--soft] [--balance]",
                       argc, argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = cli_refuse(cmd, opts, "test", "it labels --data only")) != CLI_OK ||
        (rc = cli_refuse(cmd, opts, "test-limit", "it labels --data only (use --train-limit)")) != CLI_OK)
        return rc;
    if (per_class > 0 && !balance)
        return cli_error(cmd, CLI_USAGE, "--per-class needs --balance");
    /* --out names a directory in every command; the old `--out FILE.csv` still works */
    size_t ol = c.out ? strlen(c.out) : 0;
    if (c.out && ol > 4 && !strcmp(c.out + ol - 4, ".csv")) {
        fprintf(stderr, "frugal %s: note: --out FILE.csv is deprecated, use --csv FILE.csv (--out names a directory)\n",
                cmd);
        if (csv)
            return cli_error(cmd, CLI_USAGE, "give --out DIR or --csv FILE.csv, not both");
        csv = c.out;
        c.out = NULL;
    }
    if (!teacher || (!csv && !c.out))
        return cli_error(cmd, CLI_USAGE, "--teacher CKPT and --out DIR (or --csv FILE.csv) are required");
    if (csv && c.out)
        return cli_error(cmd, CLI_USAGE, "give --out DIR or --csv FILE.csv, not both");

    /* the outputs: CSV, confidences, images directory; all beside each other */
    char csv_path[PATH_MAX], conf_path[2 * PATH_MAX + 64], img_dir[2 * PATH_MAX + 64], dir[PATH_MAX], stem[PATH_MAX];
    if (c.out)
        snprintf(csv_path, sizeof csv_path, "%s/labels.csv", c.out);
    else
        snprintf(csv_path, sizeof csv_path, "%s", csv);
    const char *slash = strrchr(csv_path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - csv_path) : 1, slash ? csv_path : ".");
    if (!dir[0])
        snprintf(dir, sizeof dir, "/");
    snprintf(stem, sizeof stem, "%s", slash ? slash + 1 : csv_path);
    char *ext = strrchr(stem, '.');
    if (ext)
        *ext = 0;
    if (!stem[0])
        return cli_error(cmd, CLI_USAGE, "%s: not a file name", csv_path);
    snprintf(conf_path, sizeof conf_path, "%s/%s.confidence.csv", dir, stem);
    snprintf(img_dir, sizeof img_dir, "%s/%s_images", dir, stem);
    if ((rc = rc_mkdir(cmd, dir)) != CLI_OK)
        return rc;
    struct rc_outdir od = {.lock_fd = -1};
    char lock_name[PATH_MAX + 16];
    snprintf(lock_name, sizeof lock_name, ".%s.lock", stem);
    if ((rc = rc_lock(cmd, dir, lock_name, csv_path, &od)) != CLI_OK)
        return rc;
    struct stat sb;
    if (stat(csv_path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            rc_out_close(&od);
            return cli_error(cmd, CLI_USAGE, "%s: is a directory", csv_path);
        }
        fprintf(stderr, "frugal %s: note: %s (%lld lines) of an earlier run is replaced when this run completes\n", cmd,
                csv_path, (long long)count_lines(csv_path));
    }

    struct fr_backend *be = NULL;
    struct fr_dataset *ds = NULL;
    struct fr_net *net = NULL;
    struct fr_split sp = {0};
    struct fr_pseudo ps = {0};
    struct fr_atomic_file *af = NULL, *afc = NULL;
    FILE *f = NULL, *fc = NULL;
    char staging[2 * PATH_MAX + 64] = "";
    uint8_t *written = NULL;
    int64_t *counts = NULL;
    enum fr_status st;
    double t0 = rc_now();
    if ((rc = cli_open_device(cmd, c.device, (int)c.threads, &be)) != CLI_OK)
        goto done;
    if ((rc = rc_load_net(cmd, "--teacher", be, teacher, &net)) != CLI_OK)
        goto done;
    d.in_c = net->c, d.in_h = net->h, d.in_w = net->w; /* images as the teacher sees them */
    if ((rc = rc_open_data_ex(cmd, &d, &ds, NULL, false)) != CLI_OK) /* its labels only measure the teacher */
        goto done;
    /* the dataset's own labels only measure the pseudo-labels when they name the same classes */
    bool truth = ds->labels && ds->n_classes == net->n_classes;
    if (ds->labels && ds->n_classes > 0 && !truth)
        cli_warn(cmd, "%s has %d classes, the teacher %d: no pseudo-label accuracy", ds->source, ds->n_classes,
                 net->n_classes);
    /* --labels N: label only what the same split (same --seed) leaves unlabeled */
    const int64_t *idx = NULL;
    int64_t n = ds->n;
    if (d.labels > 0) {
        if ((rc = rc_split(cmd, &d, ds, (uint64_t)c.seed, &sp)) != CLI_OK)
            goto done;
        idx = sp.unlabeled;
        n = sp.n_unlabeled;
    }
    rc_install_signals();
    struct fr_pseudo_opts po = {.threshold = (float)threshold, .balance = balance, .per_class = per_class, .temperature = (float)temperature};
    if ((st = fr_pseudo_label(net, ds, idx, n, &po, &ps)) != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    if (rc_stop) {
        rc = rc_interrupted(cmd, "nothing written, earlier results kept");
        goto done;
    }
    if (dcli_rank() > 0) /* several ranks (mpirun): every rank has the labels, rank 0 writes them */
        goto done;
    if ((st = fr_atomic_open(csv_path, &af, &f)) != FR_STATUS_OK ||
        (st = fr_atomic_open(conf_path, &afc, &fc)) != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    /* PNGs for images without a path: into a directory of this run only, never next to files of another one */
    if (!ds->paths && ps.n > 0) {
        snprintf(staging, sizeof staging, "%s/.%s_images.XXXXXX", dir, stem);
        if (!mkdtemp(staging)) {
            rc = cli_error(cmd, CLI_FAIL, "%s: cannot create a directory: %s", staging, strerror(errno));
            staging[0] = 0;
            goto done;
        }
        chmod(staging, 0755);
        written = calloc((size_t)(ds->n > 0 ? ds->n : 1), 1);
        if (!written) {
            rc = cli_error(cmd, CLI_FAIL, "out of memory");
            goto done;
        }
    }
    char dir_abs[PATH_MAX];
    if (!realpath(dir, dir_abs))
        snprintf(dir_abs, sizeof dir_abs, "%s", dir);
    int k = ps.n_classes;
    if (soft) {
        fprintf(f, "path");
        for (int j = 0; j < k; j++) {
            fputc(',', f);
            csv_field(f, net->class_names[j]);
        }
        fputc('\n', f);
    } else {
        /* the class list keeps names, order and classes the teacher never predicted */
        fprintf(f, "#classes");
        for (int j = 0; j < k; j++) {
            fputc(',', f);
            csv_field(f, net->class_names[j]);
        }
        fprintf(f, "\npath,label\n");
    }
    fprintf(fc, "path,label,confidence\n");
    counts = calloc((size_t)k, sizeof *counts);
    if (!counts) {
        rc = cli_error(cmd, CLI_FAIL, "out of memory");
        goto done;
    }
    int64_t right = 0, with_truth = 0;
    for (int64_t i = 0; i < ps.n; i++) {
        if (rc_stop) {
            rc = rc_interrupted(cmd, "nothing written, earlier results kept");
            goto done;
        }
        int64_t j = ps.idx[i];
        char rel[PATH_MAX + 64];
        if (ds->paths) { /* relative to the CSV, so the CSV moves with its images */
            char abs[PATH_MAX];
            if (realpath(ds->paths[j], abs) && dir_abs[0] == '/')
                relative_path(dir_abs, abs, rel, sizeof rel);
            else
                snprintf(rel, sizeof rel, "%s", ds->paths[j]);
        } else {
            snprintf(rel, sizeof rel, "%s_images/%06lld.png", stem, (long long)j);
            if (!written[j]) { /* a duplicate (balancing) reuses the file written by this run */
                char full[2 * PATH_MAX + 96];
                snprintf(full, sizeof full, "%s/%06lld.png", staging, (long long)j);
                const uint8_t *px = ds->pixels + j * ds->c * ds->h * ds->w;
                if ((st = fr_aug_write_png(full, px, ds->h, ds->w, ds->c)) != FR_STATUS_OK) {
                    rc = rc_fail(cmd, st);
                    goto done;
                }
                written[j] = 1;
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
        if (truth && ds->labels[j] >= 0) {
            with_truth++;
            right += ds->labels[j] == ps.label[i];
        }
    }
    /* complete: the images directory first, then the CSVs that point into it */
    if (staging[0]) {
        char old[2 * PATH_MAX + 64] = "";
        if (stat(img_dir, &sb) == 0) {
            snprintf(old, sizeof old, "%s/.%s_images.old.XXXXXX", dir, stem);
            if (!mkdtemp(old) || rename(img_dir, old) != 0) { /* a directory replaces an empty one */
                rc = cli_error(cmd, CLI_FAIL, "%s: cannot move the earlier images aside: %s", img_dir, strerror(errno));
                if (old[0])
                    rmdir(old);
                goto done;
            }
        }
        if (rename(staging, img_dir) != 0) {
            rc = cli_error(cmd, CLI_FAIL, "%s: cannot put the images in place: %s", img_dir, strerror(errno));
            if (old[0])
                rename(old, img_dir);
            goto done;
        }
        staging[0] = 0;
        if (old[0] && !remove_flat_dir(old))
            cli_warn(cmd, "%s: the earlier images were moved here and not all could be removed", old);
    }
    st = fr_atomic_commit(af);
    af = NULL;
    f = NULL;
    if (st == FR_STATUS_OK)
        st = fr_atomic_commit(afc);
    afc = NULL;
    fc = NULL;
    if (st != FR_STATUS_OK) {
        rc = rc_fail(cmd, st);
        goto done;
    }
    int fb = fr_net_fallback_ops(net);
    rc_report_device(cmd, be, fb);
    double acc = with_truth ? (double)right / (double)with_truth : NAN;
    if (c.json) {
        cJSON *o = rc_json_new(cmd);
        rc_json_model(o, net);
        cJSON_AddNumberToObject(o, "images", (double)n);
        cJSON_AddNumberToObject(o, "rows", (double)ps.n);
        cJSON_AddNumberToObject(o, "threshold", threshold);
        cJSON_AddBoolToObject(o, "soft", soft);
        cJSON_AddBoolToObject(o, "balance", balance);
        rc_json_num(o, "pseudo_label_accuracy", acc);
        cJSON *cc = cJSON_AddArrayToObject(o, "class_counts");
        for (int q = 0; q < k; q++)
            cJSON_AddItemToArray(cc, cJSON_CreateNumber((double)counts[q]));
        cJSON_AddStringToObject(o, "csv", csv_path);
        cJSON_AddStringToObject(o, "confidence_csv", conf_path);
        if (!ds->paths && ps.n > 0)
            cJSON_AddStringToObject(o, "images_dir", img_dir);
        rc_json_run(o, be, fb, rc_now() - t0);
        rc_json_print(o);
    } else {
        printf("%lld of %lld images labeled (threshold %.2f%s) -> %s, confidences in %s\n", (long long)ps.n,
               (long long)n, threshold, balance ? ", balanced" : "", csv_path, conf_path);
        if (!isnan(acc))
            printf("pseudo-label accuracy against the true labels: %.4f\n", acc);
    }
    rc = CLI_OK;
done:
    fr_atomic_abort(af);
    fr_atomic_abort(afc);
    if (staging[0] && !remove_flat_dir(staging))
        cli_warn(cmd, "%s: could not remove this run's unfinished images", staging);
    free(written);
    free(counts);
    fr_pseudo_free(&ps);
    fr_split_free(&sp);
    fr_net_free(net);
    fr_dataset_free(ds);
    fr_backend_free(be);
    rc_out_close(&od);
    return rc;
}
