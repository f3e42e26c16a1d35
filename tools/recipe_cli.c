/* Shared pieces of the recipe subcommands: defaults, datasets by spec, splits, fit options, SIGINT, reports. */
#include "recipe_cli.h"
#include "dist_cli.h"
#include "progress.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "frugal/augment.h"
#include "frugal/backend.h"
#include "frugal/io.h"
#include "frugal/profile.h"

volatile sig_atomic_t rc_stop = 0;
static bool rc_profile; /* --profile, from rc_fit_opts */

void rc_defaults(struct rc_common *c, struct rc_data *d, struct rc_fit *f)
{
    if (c) {
        memset(c, 0, sizeof *c);
        c->seed = 1;
    }
    if (d) {
        memset(d, 0, sizeof *d);
        d->val = -1;
    }
    if (f) {
        memset(f, 0, sizeof *f);
        f->model = "s";
        f->optimizer = "adamw";
        f->schedule = "cosine";
        f->epochs = 10;
        f->batch = 64;
        f->lr = -1;
        f->weight_decay = 5e-4;
        f->momentum = 0.9;
    }
}

int rc_exit_code(enum fr_status st)
{
    switch (st) {
    case FR_STATUS_OK: return CLI_OK;
    case FR_STATUS_IO:
    case FR_STATUS_FORMAT:
    case FR_STATUS_NOT_FOUND:
    case FR_STATUS_INVALID_ARGUMENT:
    case FR_STATUS_SHAPE: return CLI_USAGE;
    default: return CLI_FAIL;
    }
}

int rc_fail(const char *cmd, enum fr_status st)
{
    return cli_error(cmd, rc_exit_code(st), "%s", fr_last_error()[0] ? fr_last_error() : fr_status_str(st));
}

int rc_image_opts(const char *cmd, const struct rc_data *d, struct fr_dataset_opts *o)
{
    fr_dataset_opts_init(o);
    if (!d)
        return CLI_OK;
    o->channels = d->in_c, o->height = d->in_h, o->width = d->in_w;
    if (d->size) {
        char *end;
        long h = strtol(d->size, &end, 10), w = h;
        if (end != d->size && (*end == 'x' || *end == 'X')) {
            const char *p = end + 1;
            w = strtol(p, &end, 10);
            if (end == p)
                w = -1;
        }
        if (*end || h < 1 || h > 16384 || w < 1 || w > 16384)
            return cli_error(cmd, CLI_USAGE, "--size %s: expected H or HxW, 1..16384 (e.g. 224 or 224x160)", d->size);
        o->height = (int)h, o->width = (int)w;
    }
    if (d->channels) {
        if (d->channels < 1 || d->channels > 4)
            return cli_error(cmd, CLI_USAGE, "--channels %lld: expected 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)",
                             (long long)d->channels);
        o->channels = (int)d->channels;
    }
    if (d->on_bad_image && strcmp(d->on_bad_image, "stop") && strcmp(d->on_bad_image, "skip"))
        return cli_error(cmd, CLI_USAGE, "--on-bad-image %s: expected stop or skip", d->on_bad_image);
    o->on_bad_image = d->on_bad_image && !strcmp(d->on_bad_image, "skip") ? FR_BAD_IMAGE_SKIP : FR_BAD_IMAGE_FAIL;
    return CLI_OK;
}

void rc_checkpoint_input(const char *path, struct rc_data *d)
{
    struct fr_safetensors *st;
    if (!path || fr_st_open(path, &st) != FR_STATUS_OK)
        return; /* not readable: the load that follows says why */
    const char *in = fr_st_meta(st, "frugal.input");
    int c, h, w;
    if (in && sscanf(in, "%d,%d,%d", &c, &h, &w) == 3 && c > 0 && h > 0 && w > 0)
        d->in_c = c, d->in_h = h, d->in_w = w;
    fr_st_free(st);
}

int rc_open_dataset(const char *cmd, const char *spec, int64_t limit, const struct rc_data *d, struct fr_dataset **out)
{
    *out = NULL;
    struct fr_dataset_opts o;
    int rc = rc_image_opts(cmd, d, &o);
    if (rc != CLI_OK)
        return rc;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", spec);
    /* fmnist:test / fmnist:train pick the split; other specs pass through */
    if (!strncmp(buf, "fmnist", 6) && (buf[6] == 0 || buf[6] == ':')) {
        o.split = buf[6] == ':' ? buf + 7 : "train";
        buf[6] = 0;
        if (strcmp(o.split, "train") && strcmp(o.split, "test"))
            return cli_error(cmd, CLI_USAGE, "%s: the fmnist split must be train or test", spec);
    }
    enum fr_status st = fr_dataset_open(buf, &o, out);
    if (st != FR_STATUS_OK)
        return cli_error(cmd, CLI_USAGE, "%s", fr_last_error());
    if (limit > 0 && limit < (*out)->n) {
        int64_t *idx = malloc((size_t)limit * sizeof *idx);
        if (!idx)
            return cli_error(cmd, CLI_FAIL, "out of memory");
        for (int64_t i = 0; i < limit; i++)
            idx[i] = i;
        struct fr_dataset *sub;
        st = fr_dataset_subset(*out, idx, limit, false, &sub);
        free(idx);
        fr_dataset_free(*out);
        *out = NULL;
        if (st != FR_STATUS_OK)
            return rc_fail(cmd, st);
        *out = sub;
    }
    return CLI_OK;
}

int rc_filter_classes(const char *cmd, const char *list, struct fr_dataset **dsp)
{
    struct fr_dataset *ds = *dsp;
    int k = ds->n_classes;
    if (k <= 0)
        return cli_error(cmd, CLI_USAGE, "--classes: %s has no labels", ds->source);
    int *map = malloc((size_t)k * sizeof *map);
    if (!map)
        return cli_error(cmd, CLI_FAIL, "out of memory");
    for (int i = 0; i < k; i++)
        map[i] = -1;
    int nk = 0;
    const char *p = list;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p)
            goto bad;
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (end == p + 1)
                goto bad;
            p = end;
        }
        if (a < 0 || b >= k || a > b)
            goto bad;
        for (long c = a; c <= b; c++)
            if (map[c] < 0)
                map[c] = nk++;
        if (*p == ',')
            p++;
        else if (*p)
            goto bad;
    }
    if (nk == 0)
        goto bad;
    int64_t n = 0;
    int64_t *idx = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *idx);
    if (!idx) {
        free(map);
        return cli_error(cmd, CLI_FAIL, "out of memory");
    }
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->labels[i] >= 0 && map[ds->labels[i]] >= 0)
            idx[n++] = i;
    struct fr_dataset *sub;
    enum fr_status st = fr_dataset_subset(ds, idx, n, false, &sub);
    free(idx);
    if (st != FR_STATUS_OK) {
        free(map);
        return rc_fail(cmd, st);
    }
    for (int64_t i = 0; i < sub->n; i++)
        sub->labels[i] = map[sub->labels[i]];
    char **names = calloc((size_t)nk, sizeof *names);
    for (int c = 0; names && c < k; c++)
        if (map[c] >= 0)
            names[map[c]] = strdup(sub->class_names ? sub->class_names[c] : "?");
    if (sub->class_names)
        for (int c = 0; c < k; c++)
            free(sub->class_names[c]);
    free(sub->class_names);
    sub->class_names = names;
    if (sub->soft) { /* soft labels of other classes make no sense after renumbering */
        free(sub->soft);
        sub->soft = NULL;
    }
    sub->n_classes = nk;
    free(map);
    fr_dataset_free(ds);
    *dsp = sub;
    return CLI_OK;
bad:
    free(map);
    return cli_error(cmd, CLI_USAGE, "--classes %s: expected a list like 5-9 or 0,2,4 of classes below %d", list, k);
}

int rc_open_data(const char *cmd, const struct rc_data *d, struct fr_dataset **train, struct fr_dataset **test)
{
    *train = NULL;
    if (test)
        *test = NULL;
    if (!d->data)
        return cli_error(cmd, CLI_USAGE, "--data SPEC is required (e.g. --data fmnist)");
    int rc = rc_open_dataset(cmd, d->data, d->train_limit, d, train);
    if (rc == CLI_OK && d->classes)
        rc = rc_filter_classes(cmd, d->classes, train);
    if (rc != CLI_OK || !test)
        return rc;
    const char *ts = d->test;
    if (!ts && (!strcmp(d->data, "fmnist") || !strcmp(d->data, "fmnist:train")))
        ts = "fmnist:test";
    if (ts && strcmp(ts, "none") != 0) {
        struct rc_data td = *d; /* test images at the model's input: the training set's */
        td.size = NULL, td.channels = 0;
        td.in_c = (*train)->c, td.in_h = (*train)->h, td.in_w = (*train)->w;
        rc = rc_open_dataset(cmd, ts, d->test_limit, &td, test);
        if (rc == CLI_OK && d->classes)
            rc = rc_filter_classes(cmd, d->classes, test);
    }
    return rc;
}

int rc_split(const char *cmd, const struct rc_data *d, const struct fr_dataset *ds, uint64_t seed, struct fr_split *sp)
{
    int64_t labeled = 0;
    for (int64_t i = 0; i < ds->n; i++)
        labeled += ds->labels && ds->labels[i] >= 0;
    if (labeled == 0)
        return cli_error(cmd, CLI_USAGE, "%s: no labeled images", ds->source);
    int64_t budget = d->labels > 0 ? d->labels : labeled;
    if (budget > labeled)
        return cli_error(cmd, CLI_USAGE, "--labels %lld: %s has only %lld labeled images", (long long)d->labels,
                         ds->source, (long long)labeled);
    int64_t val = d->val >= 0 ? d->val : (d->labels > 0 ? budget / 10 : (budget / 10 < 5000 ? budget / 10 : 5000));
    if (val >= budget)
        return cli_error(cmd, CLI_USAGE, "--val %lld must be below the label budget %lld", (long long)val,
                         (long long)budget);
    enum fr_status st = fr_split_make(ds, d->labels > 0 ? budget : 0, val, seed, sp);
    return st == FR_STATUS_OK ? CLI_OK : rc_fail(cmd, st);
}

int rc_fit_opts(const char *cmd, const struct rc_common *c, const struct rc_fit *f, struct fr_fit_opts *o)
{
    fr_fit_opts_init(o);
    enum fr_optim_kind kind;
    if (!strcasecmp(f->optimizer, "sgd"))
        kind = FR_OPTIM_SGD;
    else if (!strcasecmp(f->optimizer, "adam"))
        kind = FR_OPTIM_ADAM;
    else if (!strcasecmp(f->optimizer, "adamw"))
        kind = FR_OPTIM_ADAMW;
    else
        return cli_error(cmd, CLI_USAGE, "--optimizer %s: expected sgd, adam or adamw", f->optimizer);
    fr_optim_params_init(&o->optim, kind);
    o->optim.weight_decay = (float)f->weight_decay;
    if (kind == FR_OPTIM_SGD) {
        o->optim.momentum = (float)f->momentum;
        o->optim.nesterov = f->momentum > 0;
    }
    memset(&o->sched, 0, sizeof o->sched);
    if (fr_schedule_parse(f->schedule, &o->sched) != FR_STATUS_OK)
        return cli_error(cmd, CLI_USAGE, "--schedule %s: %s", f->schedule, fr_last_error());
    o->sched.base_lr = (float)(f->lr > 0 ? f->lr : kind == FR_OPTIM_SGD ? 0.05 : 0.002);
    if (f->warmup > 0)
        o->sched.warmup_steps = f->warmup;
    if (f->epochs <= 0 || f->batch <= 0)
        return cli_error(cmd, CLI_USAGE, "--epochs and --batch must be positive");
    if (f->cutmix < 0 || f->mixup < 0 || f->label_smoothing < 0 || f->label_smoothing >= 1)
        return cli_error(cmd, CLI_USAGE, "--cutmix/--mixup must be >= 0 and --label-smoothing in [0, 1)");
    o->epochs = (int)f->epochs;
    o->batch = (int)f->batch;
    o->augment = f->augment && f->augment[0] && strcmp(f->augment, "none") ? f->augment : NULL;
    if (o->augment) {
        struct fr_aug_policy *pol;
        if (fr_aug_policy_parse(o->augment, &pol) != FR_STATUS_OK)
            return cli_error(cmd, CLI_USAGE, "--augment: %s", fr_last_error());
        fr_aug_policy_free(pol);
    }
    o->cutmix = f->cutmix;
    o->mixup = f->mixup;
    o->label_smoothing = (float)f->label_smoothing;
    o->seed = (uint64_t)c->seed;
    o->out_dir = c->out;
    o->stop = &rc_stop;
    rc_profile = f->profile;
    if (f->balance && strcmp(f->balance, "equal") && strcmp(f->balance, "speed"))
        return cli_error(cmd, CLI_USAGE, "--balance %s: expected equal or speed", f->balance);
    o->balance = f->balance && !strcmp(f->balance, "speed") ? FR_BALANCE_SPEED : FR_BALANCE_EQUAL;
    o->sync_bn = f->sync_bn;
    return CLI_OK;
}

/* fr_fit, with --profile: the per-op table of the run on stderr afterwards */
static enum fr_status fit(const char *cmd, struct fr_backend *be, struct fr_net *net, struct fr_trainset *ts,
                          const struct fr_fit_opts *o, struct fr_fit_result *r)
{
    if (!rc_profile)
        return fr_fit(net, ts, o, r);
    if (fr_profile_start(be) != FR_STATUS_OK) {
        fprintf(stderr, "frugal %s: --profile: %s\n", cmd, fr_last_error());
        return fr_fit(net, ts, o, r);
    }
    enum fr_status st = fr_fit(net, ts, o, r);
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", fr_last_error());
    struct fr_profile p;
    fr_profile_stop(be, &p);
    char *text = p.rows ? fr_profile_format(&p) : NULL;
    if (text)
        fputs(text, stderr);
    free(text);
    fr_profile_free(&p);
    if (st != FR_STATUS_OK)
        fr_error(st, "%s", msg);
    return st;
}

int rc_mkdir(const char *cmd, const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0777);
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return cli_error(cmd, CLI_USAGE, "%s: cannot create the directory: %s", dir, strerror(errno));
    struct stat s;
    if (stat(buf, &s) != 0 || !S_ISDIR(s.st_mode))
        return cli_error(cmd, CLI_USAGE, "%s: not a directory", dir);
    return CLI_OK;
}

static void on_sigint(int sig)
{
    rc_stop = 1;
    signal(sig, SIG_DFL); /* a second Ctrl-C (or SIGTERM) ends the process at once */
}

void rc_install_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL); /* kill, a batch scheduler, mpirun passing its own SIGTERM on: the same stop */
}

void rc_report_device(const char *cmd, struct fr_backend *be, int fallback_ops)
{
    if (fallback_ops)
        fprintf(stderr, "frugal %s: device %s; %d op%s fell back to the CPU\n", cmd, fr_backend_name(be), fallback_ops,
                fallback_ops == 1 ? "" : "s");
    else
        fprintf(stderr, "frugal %s: device %s; no op fell back to the CPU\n", cmd, fr_backend_name(be));
}

void rc_json_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

void rc_json_print(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        puts(s);
        fflush(stdout);
        cJSON_free(s);
    }
    cJSON_Delete(o);
}

static struct fr_model_opts g_student_noise = {-1.0f, -1.0f};

void rc_set_student_noise(const struct fr_model_opts *mo)
{
    g_student_noise = mo ? *mo : (struct fr_model_opts){-1.0f, -1.0f};
}

int rc_check_arch(const char *cmd, const char *arch)
{
    if (fr_net_arch_builtin(arch))
        return CLI_OK;
    /* anything else is a model file: read and parse it now so a typo fails before any data loads */
    char *text;
    enum fr_status st = fr_model_read_text(arch, &text);
    if (st != FR_STATUS_OK)
        return cli_error(cmd, CLI_USAGE, "%s (expected a built-in model t, s or m, or a model file)", fr_last_error());
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m = NULL;
    /* the input shape is not known yet: 1x28x28 checks the syntax; shapes are checked again on the data */
    st = ctx ? fr_model_from_text(ctx, text, arch, 1, 28, 28, 10, &m) : FR_STATUS_OUT_OF_MEMORY;
    free(text);
    fr_model_free(m);
    fr_ctx_free(ctx);
    if (st != FR_STATUS_OK && st != FR_STATUS_SHAPE)
        return cli_error(cmd, CLI_USAGE, "%s", fr_last_error());
    return CLI_OK;
}

double rc_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int rc_finish(const char *cmd, const struct rc_common *c, struct fr_backend *be, struct fr_net *net,
              const struct fr_fit_result *fit, const struct fr_dataset *test, double seconds, cJSON *extra)
{
    struct fr_eval ev = {0};
    ev.accuracy = ev.loss = NAN;
    if (test) {
        enum fr_status st = fr_net_evaluate(net, test, NULL, test->n, &ev);
        if (st != FR_STATUS_OK) {
            cJSON_Delete(extra);
            return rc_fail(cmd, st);
        }
    }
    int fb = fr_net_fallback_ops(net);
    rc_report_device(cmd, be, fb);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", cmd);
    rc_json_num(o, "test_accuracy", ev.accuracy);
    rc_json_num(o, "test_loss", ev.loss);
    cJSON_AddNumberToObject(o, "test_images", (double)ev.n);
    rc_json_num(o, "val_accuracy", fit ? fit->val_accuracy : NAN);
    rc_json_num(o, "train_loss", fit ? fit->train_loss : NAN);
    rc_json_num(o, "train_images_per_second", fit ? fit->images_per_second : NAN);
    rc_json_num(o, "host_to_device_bytes_per_step", fit ? (double)fit->host_to_device_bytes_per_step : NAN);
    cJSON_AddNumberToObject(o, "epochs", fit ? (double)fit->epochs_done : 0);
    cJSON_AddNumberToObject(o, "steps", fit ? (double)fit->steps : 0);
    cJSON_AddNumberToObject(o, "seconds", seconds);
    cJSON_AddStringToObject(o, "device", fr_backend_name(be));
    cJSON_AddNumberToObject(o, "fallback_ops", fb);
    cJSON_AddStringToObject(o, "model", net->arch);
    cJSON_AddNumberToObject(o, "parameters", (double)fr_model_n_params(net->model));
    dcli_fit_report(cmd, o, fit); /* several ranks: how each batch was split */
    if (extra) {
        cJSON *it = extra->child;
        while (it) {
            cJSON *next = it->next;
            cJSON_DetachItemViaPointer(extra, it);
            cJSON_AddItemToObject(o, it->string, it);
            it = next;
        }
        cJSON_Delete(extra);
    }
    if (c->json) {
        rc_json_print(o);
    } else {
        cJSON_Delete(o);
        if (test)
            printf("test accuracy %.4f  test loss %.4f  (%lld images)\n", ev.accuracy, ev.loss, (long long)ev.n);
        if (fit)
            printf("trained %lld epochs, %lld steps, %.0f img/s, %.1f s in all\n", (long long)fit->epochs_done,
                   (long long)fit->steps, fit->images_per_second, seconds);
    }
    fr_eval_free(&ev);
    return CLI_OK;
}

int rc_self_train(const char *cmd, const char *stage, struct fr_backend *be, struct fr_net *teacher,
                  const struct fr_dataset *ds, const struct fr_split *sp, const int64_t *unl, int64_t n_unl,
                  const struct fr_pseudo_opts *po, bool soft, const char *arch, uint64_t seed,
                  const struct fr_fit_opts *fo, int labeled_repeat, bool quiet, struct rc_round *out)
{
    memset(out, 0, sizeof *out);
    out->pseudo_accuracy = NAN;
    double t0 = rc_now();
    struct fr_pseudo ps = {0};
    struct fr_trainset ts = {0};
    enum fr_status st = fr_pseudo_label(teacher, ds, unl, n_unl, po, &ps);
    if (st != FR_STATUS_OK)
        return rc_fail(cmd, st);
    int64_t right = 0, known = 0;
    for (int64_t i = 0; i < ps.n; i++)
        if (ds->labels && ds->labels[ps.idx[i]] >= 0) {
            known++;
            right += ds->labels[ps.idx[i]] == ps.label[i];
        }
    out->pseudo_rows = ps.n;
    out->unlabeled_used = n_unl;
    out->pseudo_accuracy = known ? (double)right / (double)known : NAN;
    ts.n_classes = teacher->n_classes;
    /* the labeled images repeated so they keep a share of every batch next to many pseudo-labeled ones */
    for (int rep = 0; rep < (labeled_repeat > 0 ? labeled_repeat : 1) && st == FR_STATUS_OK; rep++)
        st = fr_trainset_add(&ts, 0, ds, sp->labeled, sp->n_labeled, NULL, NULL);
    if (st == FR_STATUS_OK && ps.n > 0)
        st = fr_trainset_add(&ts, 0, ds, ps.idx, ps.n, ps.label, soft ? ps.prob : NULL);
    fr_pseudo_free(&ps);
    if (st == FR_STATUS_OK)
        st = fr_net_new_ex(be, arch, &g_student_noise, ds->c, ds->h, ds->w, teacher->n_classes, teacher->class_names,
                           seed, &out->student);
    if (st != FR_STATUS_OK) {
        fr_trainset_free(&ts);
        return rc_fail(cmd, st);
    }
    if (!quiet)
        fprintf(stderr, "frugal %s: [%s] teacher labeled %lld images, kept %lld (pseudo-label accuracy %.4f); student %s "
                        "trains on %lld images\n",
                cmd, stage, (long long)n_unl, (long long)out->pseudo_rows, out->pseudo_accuracy, arch, (long long)ts.n);
    struct fr_fit_opts o = *fo;
    struct progress pr;
    progress_init(&pr, cmd, stage);
    o.on_progress = progress_step;
    o.on_epoch = quiet ? NULL : progress_epoch; /* quiet: the bar / periodic lines only */
    o.user = &pr;
    o.metrics_tag = stage;
    st = fit(cmd, be, out->student, &ts, &o, &out->fit);
    progress_done(&pr);
    fr_trainset_free(&ts);
    out->seconds = rc_now() - t0;
    if (st != FR_STATUS_OK) {
        int rc = st == FR_STATUS_INTERRUPTED ? (fprintf(stderr, "frugal %s: %s\n", cmd, fr_last_error()), 130)
                                             : rc_fail(cmd, st);
        fr_net_free(out->student);
        out->student = NULL;
        return rc;
    }
    return CLI_OK;
}

int rc_run_fit(const char *cmd, struct fr_backend *be, struct fr_net *net, struct fr_trainset *ts,
               struct fr_fit_opts *fo, struct fr_fit_result *fr)
{
    struct progress pr;
    progress_init(&pr, cmd, NULL);
    fo->on_progress = progress_step;
    fo->on_epoch = progress_epoch;
    fo->user = &pr;
    rc_install_sigint();
    enum fr_status st = fit(cmd, be, net, ts, fo, fr);
    progress_done(&pr);
    fo->user = NULL;
    if (st == FR_STATUS_INTERRUPTED) {
        fprintf(stderr, "frugal %s: %s\n", cmd, fr_last_error());
        rc_report_device(cmd, be, fr_net_fallback_ops(net));
        return 130; /* interrupted: checkpoint saved */
    }
    return st == FR_STATUS_OK ? CLI_OK : rc_fail(cmd, st);
}
