/* Shared pieces of the recipe subcommands: defaults, datasets by spec, label checks, splits, fit options, --out
 * directories, signals, checkpoints to resume, reports and JSON results. */
#include "recipe_cli.h"
#include "dist_cli.h"
#include "progress.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frugal/augment.h"
#include "frugal/backend.h"
#include "frugal/io.h"
#include "frugal/profile.h"

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

int rc_exit_code(enum fr_status st) { return cli_exit_code(st); }

static const char *last_error(enum fr_status st)
{
    return fr_last_error()[0] ? fr_last_error() : fr_status_str(st);
}

int rc_fail(const char *cmd, enum fr_status st) { return cli_error(cmd, cli_exit_code(st), "%s", last_error(st)); }

int rc_input_fail(const char *cmd, enum fr_status st)
{
    return cli_error(cmd, cli_input_code(st), "%s", last_error(st));
}

/* keeps the first `limit` images of *ds (in place: replaced); exit code */
static int keep_first(const char *cmd, int64_t limit, struct fr_dataset **ds)
{
    if (limit <= 0 || limit >= (*ds)->n)
        return CLI_OK;
    int64_t *idx = malloc((size_t)limit * sizeof *idx);
    if (!idx)
        return cli_error(cmd, CLI_FAIL, "out of memory");
    for (int64_t i = 0; i < limit; i++)
        idx[i] = i;
    struct fr_dataset *sub;
    enum fr_status st = fr_dataset_subset(*ds, idx, limit, false, &sub);
    free(idx);
    if (st != FR_STATUS_OK)
        return rc_fail(cmd, st);
    fr_dataset_free(*ds);
    *ds = sub;
    return CLI_OK;
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

int rc_open_dataset_ex(const char *cmd, const char *spec, const char *classes, int64_t limit, const struct rc_data *d,
                       struct fr_dataset **out)
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
        return rc_input_fail(cmd, st);
    rc = classes ? rc_filter_classes(cmd, classes, out) : CLI_OK;
    if (rc == CLI_OK)
        rc = keep_first(cmd, limit, out);
    if (rc != CLI_OK) {
        fr_dataset_free(*out);
        *out = NULL;
    }
    return rc;
}

int rc_open_dataset(const char *cmd, const char *spec, int64_t limit, const struct rc_data *d, struct fr_dataset **out)
{
    return rc_open_dataset_ex(cmd, spec, NULL, limit, d, out);
}

int rc_filter_classes(const char *cmd, const char *list, struct fr_dataset **dsp)
{
    struct fr_dataset *sub;
    enum fr_status st = fr_dataset_filter_classes(*dsp, list, &sub);
    if (st != FR_STATUS_OK)
        return rc_fail(cmd, st);
    fr_dataset_free(*dsp);
    *dsp = sub;
    return CLI_OK;
}

/* full: the whole (class-filtered) dataset, where stray labels and empty classes are judged; else the images a
 * limit kept, which must still hold two classes */
static int check_labels(const char *cmd, const struct fr_dataset *ds, bool full, int64_t limit)
{
    int k = ds->n_classes;
    if (!ds->labels || k <= 0)
        return CLI_OK; /* unlabeled: the split says so */
    int64_t *counts = calloc((size_t)k, sizeof *counts);
    if (!counts)
        return cli_error(cmd, CLI_FAIL, "out of memory");
    fr_dataset_class_counts(ds, counts);
    int distinct = 0, first_used = -1, last_used = -1, n_empty = 0;
    char empty[256] = "";
    for (int i = 0; i < k; i++) {
        if (counts[i] > 0) {
            distinct++;
            if (first_used < 0)
                first_used = i;
            last_used = i;
        } else if (n_empty++ < 6) {
            size_t l = strlen(empty);
            snprintf(empty + l, sizeof empty - l, "%s%s", l ? ", " : "", n_empty == 6 ? "..." : ds->class_names ? ds->class_names[i] : "?");
        }
    }
    free(counts);
    if (distinct == 0)
        return CLI_OK;
    if (k < 2 || distinct < 2) {
        char lim[64] = "";
        if (!full)
            snprintf(lim, sizeof lim, " among the first %lld images (--train-limit)", (long long)limit);
        return cli_error(cmd, CLI_USAGE, "%s: only one class (%s) has labeled images%s; a classifier needs at least 2",
                         ds->source, ds->class_names ? ds->class_names[first_used] : "?", lim);
    }
    if (!full)
        return CLI_OK;
    /* class indices are 0..K-1: a few used values spread over a huge range is a stray label, not K classes */
    if (k - distinct > 10 && k > 2 * distinct)
        return cli_error(cmd, CLI_USAGE,
                         "%s: labels go up to %d, but only %d of those %d classes have images (a stray or "
                         "non-index label? labels must be class indices 0..K-1)",
                         ds->source, last_used, distinct, k);
    if (n_empty > 0)
        cli_warn(cmd, "%s: %d of %d classes have no images (%s)%s", ds->source, n_empty, k, empty,
                 first_used > 0 ? "; labels start at 1? class indices start at 0" : "");
    return CLI_OK;
}

int rc_check_labels(const char *cmd, const struct fr_dataset *ds) { return check_labels(cmd, ds, true, 0); }

static bool names_equal(char *const *a, char *const *b, int k)
{
    if (!a || !b)
        return true;
    for (int i = 0; i < k; i++)
        if (strcmp(a[i] ? a[i] : "", b[i] ? b[i] : ""))
            return false;
    return true;
}

/* the first class names of a list, for messages */
static const char *names_str(char *const *names, int k, char *buf, size_t size)
{
    buf[0] = 0;
    for (int i = 0; names && i < k && i < 4; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, size - l, "%s%s", i ? "," : "", names[i] ? names[i] : "?");
    }
    if (k > 4) {
        size_t l = strlen(buf);
        snprintf(buf + l, size - l, ",...");
    }
    return buf;
}

/* data vs data (train/test) or data vs model; exit code */
static int check_same(const char *cmd, const char *what, int c, int h, int w, int k, char *const *names,
                      const struct fr_dataset *ds)
{
    if (ds->c != c || ds->h != h || ds->w != w)
        return cli_error(cmd, CLI_USAGE, "%s: images are %dx%dx%d, %s has %dx%dx%d", ds->source, ds->c, ds->h, ds->w,
                         what, c, h, w);
    if (ds->n_classes > 0 && ds->n_classes != k)
        return cli_error(cmd, CLI_USAGE, "%s: %d classes, %s has %d: the class indices would not match", ds->source,
                         ds->n_classes, what, k);
    if (ds->n_classes > 0 && !names_equal(names, ds->class_names, k)) {
        char a[256], b[256];
        cli_warn(cmd, "%s: class names %s differ from %s's %s; class i is scored as class i", ds->source,
                 names_str(ds->class_names, k, a, sizeof a), what, names_str(names, k, b, sizeof b));
    }
    return CLI_OK;
}

int rc_check_fit(const char *cmd, const char *what, const struct fr_net *net, const struct fr_dataset *ds)
{
    return check_same(cmd, what, net->c, net->h, net->w, net->n_classes, net->class_names, ds);
}

int rc_open_data_ex(const char *cmd, const struct rc_data *d, struct fr_dataset **train, struct fr_dataset **test,
                    bool check)
{
    *train = NULL;
    if (test)
        *test = NULL;
    if (!d->data)
        return cli_error(cmd, CLI_USAGE, "--data SPEC is required (e.g. --data fmnist)");
    int rc = rc_open_dataset_ex(cmd, d->data, d->classes, 0, d, train);
    if (rc == CLI_OK && check)
        rc = check_labels(cmd, *train, true, 0);
    if (rc == CLI_OK && d->train_limit > 0 && d->train_limit < (*train)->n) {
        rc = keep_first(cmd, d->train_limit, train);
        if (rc == CLI_OK && check)
            rc = check_labels(cmd, *train, false, d->train_limit);
    }
    if (rc != CLI_OK || !test)
        return rc;
    const char *ts = d->test;
    if (!ts && (!strcmp(d->data, "fmnist") || !strcmp(d->data, "fmnist:train")))
        ts = "fmnist:test";
    if (ts && strcmp(ts, "none") != 0) {
        struct rc_data td = *d; /* test images at the model's input: the training set's */
        td.size = NULL, td.channels = 0;
        td.in_c = (*train)->c, td.in_h = (*train)->h, td.in_w = (*train)->w;
        rc = rc_open_dataset_ex(cmd, ts, d->classes, d->test_limit, &td, test);
        /* found now, not after the last epoch */
        if (rc == CLI_OK)
            rc = check_same(cmd, (*train)->source, (*train)->c, (*train)->h, (*train)->w, (*train)->n_classes,
                            (*train)->class_names, *test);
    }
    return rc;
}

int rc_open_data(const char *cmd, const struct rc_data *d, struct fr_dataset **train, struct fr_dataset **test)
{
    return rc_open_data_ex(cmd, d, train, test, true);
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
    int present = 0;
    int64_t *counts = calloc((size_t)ds->n_classes + 1, sizeof *counts);
    if (!counts)
        return cli_error(cmd, CLI_FAIL, "out of memory");
    fr_dataset_class_counts(ds, counts);
    for (int k = 0; k < ds->n_classes; k++)
        present += counts[k] > 0;
    free(counts);
    if (budget - val < present)
        return cli_error(cmd, CLI_USAGE,
                         "--labels %lld with %lld for validation leaves %lld training labels for %d classes; give "
                         "at least one per class",
                         (long long)budget, (long long)val, (long long)(budget - val), present);
    enum fr_status st = fr_split_make(ds, d->labels > 0 ? budget : 0, val, seed, sp);
    if (st != FR_STATUS_OK)
        return rc_fail(cmd, st);
    if (d->labels > 0) { /* balanced as far as the data allows: say so when a small class capped it */
        int64_t *per = calloc((size_t)ds->n_classes + 1, sizeof *per);
        int64_t lo = INT64_MAX, hi = 0;
        int lo_k = 0;
        for (int64_t i = 0; per && i < sp->n_labeled; i++)
            per[ds->labels[sp->labeled[i]]]++;
        for (int64_t i = 0; per && i < sp->n_val; i++)
            per[ds->labels[sp->val[i]]]++;
        for (int k = 0; per && k < ds->n_classes; k++) {
            if (per[k] == 0)
                continue;
            if (per[k] < lo)
                lo = per[k], lo_k = k;
            hi = per[k] > hi ? per[k] : hi;
        }
        if (per && hi - lo > 1)
            cli_warn(cmd, "%s: class %s has only %lld labeled images, so the budget is not balanced (other classes "
                          "get up to %lld)",
                     ds->source, ds->class_names ? ds->class_names[lo_k] : "?", (long long)lo, (long long)hi);
        free(per);
    }
    return CLI_OK;
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
    if (!(f->ema >= 0 && f->ema < 1))
        return cli_error(cmd, CLI_USAGE, "--ema %g: the decay must be in [0, 1) (0 = off)", f->ema);
    o->optim.ema = (float)f->ema;
    if (kind == FR_OPTIM_SGD) {
        o->optim.momentum = (float)f->momentum;
        o->optim.nesterov = f->momentum > 0;
    }
    memset(&o->sched, 0, sizeof o->sched);
    if (fr_schedule_parse(f->schedule, &o->sched) != FR_STATUS_OK)
        return cli_error(cmd, CLI_USAGE, "--schedule %s: %s", f->schedule, fr_last_error());
    /* f->lr < 0: not given (the flag's range is (0, 10]) */
    o->sched.base_lr = (float)(f->lr > 0 ? f->lr : kind == FR_OPTIM_SGD ? 0.05 : 0.002);
    if (f->warmup > 0)
        o->sched.warmup_steps = f->warmup;
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

/* --- checkpoints given by the user --- */

int rc_check_weights(const char *cmd, const char *path, const struct fr_net *net)
{
    int n = fr_model_n_tensors(net->model);
    float *buf = NULL;
    size_t cap = 0;
    int rc = CLI_OK;
    for (int i = 0; i < n && rc == CLI_OK; i++) {
        struct fr_model_entry e = fr_model_tensor(net->model, i);
        if (!e.t || e.t->type != FR_F32)
            continue;
        size_t count = (size_t)fr_nelements(e.t);
        if (count > cap) {
            float *nb = realloc(buf, count * sizeof *nb);
            if (!nb) {
                rc = cli_error(cmd, CLI_FAIL, "out of memory");
                break;
            }
            buf = nb;
            cap = count;
        }
        if (fr_tensor_get(e.t, buf, count * sizeof *buf) != FR_STATUS_OK) {
            rc = rc_fail(cmd, FR_STATUS_DEVICE);
            break;
        }
        for (size_t j = 0; j < count; j++)
            if (!isfinite(buf[j])) {
                rc = cli_error(cmd, CLI_USAGE, "%s: tensor '%s' holds %s values (a diverged or damaged checkpoint)",
                               path, e.name, isnan(buf[j]) ? "NaN" : "infinite");
                break;
            }
    }
    free(buf);
    return rc;
}

void rc_warn_unused_tensors(const char *cmd, const char *path, const struct fr_net *net)
{
    struct fr_safetensors *st;
    if (fr_st_open(path, &st) != FR_STATUS_OK)
        return;
    char list[512] = "";
    int n = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const char *name = st->tensors[i].name, *dot = strrchr(name, '.');
        if (fr_model_find(net->model, name) || (dot && !strcmp(dot, ".num_batches_tracked"))) /* PyTorch's counters */
            continue;
        char param[FR_NAME_MAX]; /* a frugal checkpoint's optimizer state: "<param>.exp_avg", "optim.step" */
        snprintf(param, sizeof param, "%.*s", dot ? (int)(dot - name) : 0, name);
        if (fr_st_meta(st, "frugal.checkpoint") && (!strncmp(name, "optim.", 6) || fr_model_find(net->model, param)))
            continue;
        if (n++ < 5) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%s", l ? ", " : "", st->tensors[i].name);
        }
    }
    if (n)
        cli_warn(cmd, "%s: %d tensor%s the model %s does not have %s ignored (%s%s)", path, n, n == 1 ? "" : "s",
                 net->arch, n == 1 ? "is" : "are", list, n > 5 ? ", ..." : "");
    fr_st_free(st);
}

int rc_load_net(const char *cmd, const char *flag, struct fr_backend *be, const char *path, struct fr_net **out)
{
    *out = NULL;
    fr_clear_error();
    enum fr_status st = fr_net_load(be, path, out);
    if (st != FR_STATUS_OK) {
        const char *msg = last_error(st);
        /* the library's hint names eval's flags; give the one of this command */
        if (strstr(msg, "not a frugal checkpoint")) {
            const char *hint = !strcmp(cmd, "eval")       ? "for plain safetensors weights use --weights FILE with --arch"
                               : !strcmp(cmd, "finetune") ? "for plain safetensors weights use --from FILE with --arch"
                                                          : "plain safetensors weights load only in eval (--weights) "
                                                            "and finetune (--from with --arch)";
            return cli_error(cmd, CLI_USAGE, "%s %s: not a frugal checkpoint (no frugal.arch/input/n_classes "
                                             "metadata); %s", flag, path, hint);
        }
        return rc_input_fail(cmd, st);
    }
    int rc = rc_check_weights(cmd, path, *out);
    if (rc != CLI_OK) {
        fr_net_free(*out);
        *out = NULL;
    }
    return rc;
}

void rc_meta_make(struct rc_meta *m, const struct rc_common *c, const struct rc_data *d, const struct rc_fit *f,
                  const struct fr_split *sp, const struct fr_kv *extra, int n_extra)
{
    memset(m, 0, sizeof *m);
    snprintf(m->seed, sizeof m->seed, "%lld", (long long)c->seed);
    snprintf(m->labels, sizeof m->labels, "%lld", (long long)(sp->n_labeled + sp->n_val));
    snprintf(m->val, sizeof m->val, "%lld", (long long)sp->n_val);
    snprintf(m->train_limit, sizeof m->train_limit, "%lld", (long long)d->train_limit);
    snprintf(m->batch, sizeof m->batch, "%lld", (long long)f->batch);
    m->kv[m->n++] = (struct fr_kv){"frugal.split_seed", m->seed};
    m->kv[m->n++] = (struct fr_kv){"frugal.data", d->data};
    m->kv[m->n++] = (struct fr_kv){"frugal.labels", m->labels};
    m->kv[m->n++] = (struct fr_kv){"frugal.val", m->val};
    m->kv[m->n++] = (struct fr_kv){"frugal.classes", d->classes ? d->classes : "all"};
    m->kv[m->n++] = (struct fr_kv){"frugal.train_limit", m->train_limit};
    m->kv[m->n++] = (struct fr_kv){"frugal.batch", m->batch};
    for (int i = 0; i < n_extra && m->n < (int)(sizeof m->kv / sizeof m->kv[0]); i++)
        m->kv[m->n++] = extra[i];
}

void rc_fit_on_split(struct fr_fit_opts *fo, const struct fr_dataset *train, const struct fr_split *sp,
                     const struct rc_meta *m)
{
    fo->val_ds = train;
    fo->val_idx = sp->val;
    fo->n_val = sp->n_val;
    if (m) {
        fo->meta = m->kv;
        fo->n_meta = m->n;
    }
}

int rc_check_resume(const char *cmd, const char *path, const struct rc_meta *m, const struct fr_net *net,
                    const char *arch, int64_t epochs)
{
    static const struct {
        const char *key, *flag;
    } keys[] = {{"frugal.data", "--data"},           {"frugal.labels", "--labels (labels used)"},
                {"frugal.val", "--val"},             {"frugal.classes", "--classes"},
                {"frugal.train_limit", "--train-limit"}, {"frugal.split_seed", "--seed"},
                {"frugal.batch", "--batch"},             {"frugal.fold", "--fold"}};
    struct fr_safetensors *st;
    enum fr_status s = fr_st_open(path, &st);
    if (s != FR_STATUS_OK)
        return rc_input_fail(cmd, s);
    char diff[2048] = "";
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *was = fr_st_meta(st, keys[i].key), *now = NULL;
        for (int j = 0; j < m->n; j++)
            if (!strcmp(m->kv[j].key, keys[i].key))
                now = m->kv[j].value;
        if (!was || !now || !strcmp(was, now)) /* older checkpoints lack some keys */
            continue;
        size_t l = strlen(diff);
        snprintf(diff + l, sizeof diff - l, "%s%s %s (now %s)", l ? ", " : "", keys[i].flag, was, now);
    }
    fr_st_free(st);
    if (diff[0])
        return cli_error(cmd, CLI_USAGE,
                         "--resume %s: the checkpoint's run used %s; resume with the same data flags, or start "
                         "a new run from it with finetune --from",
                         path, diff);
    if (arch) {
        const char *base = strrchr(arch, '/');
        base = base ? base + 1 : arch;
        if (strcmp(base, net->arch))
            return cli_error(cmd, CLI_USAGE, "--resume %s: the checkpoint is model %s, not --arch %s", path, net->arch,
                             arch);
    }
    if (net->ck_epoch >= epochs && net->ck_step_in_epoch == 0)
        fprintf(stderr, "frugal %s: note: %s already finished epoch %lld of --epochs %lld: nothing left to train "
                        "(raise --epochs to go on)\n",
                cmd, path, (long long)net->ck_epoch, (long long)epochs);
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

/* --- output directories (under mpirun: rank 0's; the other ranks write nothing and learn rank 0's outcome) --- */

static int mkdir_here(const char *cmd, const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return cli_error(cmd, CLI_USAGE, "%.200s...: path too long", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0777);
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return cli_error(cmd, CLI_FAIL, "%s: cannot create the directory: %s", dir, strerror(errno));
    struct stat s;
    if (stat(buf, &s) != 0 || !S_ISDIR(s.st_mode))
        return cli_error(cmd, CLI_USAGE, "%s: not a directory", dir);
    return CLI_OK;
}

int rc_mkdir(const char *cmd, const char *dir)
{
    return dcli_agree(cmd, dcli_rank() == 0 ? mkdir_here(cmd, dir) : CLI_OK);
}

int rc_mkdir_parent(const char *cmd, const char *file)
{
    const char *slash = strrchr(file, '/');
    if (!slash || slash == file)
        return CLI_OK;
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - file), file);
    return rc_mkdir(cmd, dir);
}

static int lock_here(const char *cmd, const char *what, struct rc_outdir *od)
{
    for (int tries = 0; tries < 10; tries++) {
        int fd = open(od->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return cli_error(cmd, CLI_FAIL, "%s: cannot create the lock file: %s", od->lock, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            char pid[32] = "";
            ssize_t n = read(fd, pid, sizeof pid - 1);
            pid[n > 0 ? n : 0] = 0;
            pid[strcspn(pid, "\n")] = 0;
            close(fd);
            return cli_error(cmd, CLI_USAGE, "%s is in use by another frugal run%s%s%s; wait for it or choose another",
                             what, pid[0] ? " (process " : "", pid, pid[0] ? ")" : "");
        }
        /* the holder before us may have removed the file after we opened it: lock the file that is there */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(od->lock, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) == 0 && write(fd, pid, (size_t)n) < 0) {
                /* the pid is only for the message of a second run */
            }
            od->lock_fd = fd;
            return CLI_OK;
        }
        close(fd);
    }
    return cli_error(cmd, CLI_FAIL, "%s: cannot take the lock", od->lock);
}

int rc_lock(const char *cmd, const char *dir, const char *name, const char *what, struct rc_outdir *od)
{
    od->lock_fd = -1;
    snprintf(od->path, sizeof od->path, "%s", dir);
    snprintf(od->lock, sizeof od->lock, "%s/%s", dir, name);
    return dcli_agree(cmd, dcli_rank() == 0 ? lock_here(cmd, what, od) : CLI_OK);
}

static int out_prepare(const char *cmd, const char *dir, const char *resume);

int rc_out_open(const char *cmd, const char *dir, const char *resume, struct rc_outdir *od)
{
    od->lock_fd = -1;
    int rc = rc_mkdir(cmd, dir);
    char what[4200];
    snprintf(what, sizeof what, "--out %s", dir);
    if (rc == CLI_OK)
        rc = rc_lock(cmd, dir, ".frugal.lock", what, od);
    if (rc != CLI_OK)
        return rc;
    return dcli_agree(cmd, dcli_rank() == 0 ? out_prepare(cmd, dir, resume) : CLI_OK);
}

/* what an earlier run left in DIR: named, its metrics moved aside (not when resuming the run that is in DIR) */
static int out_prepare(const char *cmd, const char *dir, const char *resume)
{
    if (resume) { /* continuing the run that is in DIR: its files are this run's */
        char a[4096], b[4096], rd[4096];
        snprintf(rd, sizeof rd, "%s", resume);
        char *slash = strrchr(rd, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(rd, sizeof rd, ".");
        if (realpath(rd, a) && realpath(dir, b) && !strcmp(a, b))
            return CLI_OK;
    }
    /* a fresh run: name what an earlier one left */
    DIR *d = opendir(dir);
    char found[1024] = "";
    int n_found = 0;
    bool metrics = false;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        bool ours = (l > 12 && !strcmp(nm + l - 12, ".safetensors")) || !strcmp(nm, "metrics.jsonl");
        if (!ours || nm[0] == '.')
            continue;
        metrics |= !strcmp(nm, "metrics.jsonl");
        if (n_found++ < 8) {
            size_t fl = strlen(found);
            snprintf(found + fl, sizeof found - fl, "%s%s", fl ? ", " : "", nm);
        }
    }
    if (d)
        closedir(d);
    if (n_found) {
        fprintf(stderr, "frugal %s: note: %s holds files of an earlier run (%s%s); checkpoints of the same name are "
                        "replaced%s\n",
                cmd, dir, found, n_found > 8 ? ", ..." : "",
                metrics ? ", metrics.jsonl moves to metrics.prev.jsonl" : "");
        if (metrics) {
            char from[4200], to[4200];
            snprintf(from, sizeof from, "%s/metrics.jsonl", dir);
            snprintf(to, sizeof to, "%s/metrics.prev.jsonl", dir);
            if (rename(from, to) != 0)
                return cli_error(cmd, CLI_FAIL, "%s: cannot move it aside: %s", from, strerror(errno));
        }
    }
    return CLI_OK;
}

void rc_out_close(struct rc_outdir *od)
{
    if (!od || od->lock_fd < 0)
        return;
    unlink(od->lock); /* still locked: a run that opened it meanwhile sees a different inode and retries */
    close(od->lock_fd);
    od->lock_fd = -1;
}

/* --- signals --- */

volatile sig_atomic_t rc_stop = 0;
static volatile sig_atomic_t stop_signal = 0;

static void on_signal(int sig)
{
    rc_stop = 1;
    stop_signal = sig;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C or SIGTERM ends the process at once */
    signal(SIGTERM, SIG_DFL);
}

void rc_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int rc_interrupted(const char *cmd, const char *what)
{
    fprintf(stderr, "frugal %s: interrupted (%s): %s\n", cmd, stop_signal == SIGTERM ? "SIGTERM" : "SIGINT", what);
    return CLI_INTERRUPTED;
}

void rc_report_device(const char *cmd, struct fr_backend *be, int fallback_ops)
{
    if (fallback_ops)
        fprintf(stderr, "frugal %s: %d op%s fell back to the CPU (device %s)\n", cmd, fallback_ops,
                fallback_ops == 1 ? "" : "s", fr_backend_name(be));
}

/* --- JSON --- */

cJSON *rc_json_new(const char *cmd)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", cmd);
    return o;
}

void rc_json_run(cJSON *o, struct fr_backend *be, int fallback_ops, double seconds)
{
    cJSON_AddStringToObject(o, "device", be ? fr_backend_name(be) : "none");
    cJSON_AddNumberToObject(o, "fallback_ops", fallback_ops);
    cJSON_AddNumberToObject(o, "seconds", seconds);
}

void rc_json_model(cJSON *o, const struct fr_net *net)
{
    cJSON_AddStringToObject(o, "model", net->arch);
    cJSON_AddNumberToObject(o, "parameters", (double)fr_model_n_params(net->model));
    cJSON_AddNumberToObject(o, "classes", net->n_classes);
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

int rc_check_arch(const char *cmd, const char *arch)
{
    if (fr_net_arch_builtin(arch))
        return CLI_OK;
    /* anything else is a model file: read and parse it now so a typo fails before any data loads */
    char *text;
    enum fr_status st = fr_model_read_text(arch, &text);
    if (st != FR_STATUS_OK) {
        /* a checkpoint where an architecture belongs: say what the user probably meant */
        struct fr_safetensors *ck;
        if (fr_st_open(arch, &ck) == FR_STATUS_OK) {
            fr_st_free(ck);
            return cli_error(cmd, CLI_USAGE, "--arch %s: a safetensors checkpoint, not an architecture (to continue its "
                                             "run use --resume, to transfer it use finetune --from)", arch);
        }
        return cli_error(cmd, CLI_USAGE, "%s (expected a built-in model t, s or m, or a model file)", last_error(st));
    }
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

/* global step at which this process's training resumed (steps in the JSON count the whole run) */
static int64_t g_resumed_at;

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
    /* --ema: the weights' moving average is evaluated beside the raw weights (and saved beside them by fr_fit) */
    struct fr_eval eva = {0};
    eva.accuracy = NAN;
    struct fr_net *avg = NULL;
    if (test && fit && !isnan(fit->val_accuracy_ema) && fr_net_ema(net, &avg) == FR_STATUS_OK) {
        enum fr_status st = fr_net_evaluate(avg, test, NULL, test->n, &eva);
        fr_net_free(avg);
        if (st != FR_STATUS_OK) {
            fr_eval_free(&ev);
            cJSON_Delete(extra);
            return rc_fail(cmd, st);
        }
    }
    int fb = fr_net_fallback_ops(net);
    rc_report_device(cmd, be, fb);
    cJSON *o = rc_json_new(cmd);
    rc_json_model(o, net);
    rc_json_num(o, "test_accuracy", ev.accuracy);
    rc_json_num(o, "test_loss", ev.loss);
    cJSON_AddNumberToObject(o, "test_images", (double)ev.n);
    rc_json_num(o, "val_accuracy", fit ? fit->val_accuracy : NAN);
    if (fit && !isnan(fit->val_accuracy_ema)) {
        rc_json_num(o, "val_accuracy_ema", fit->val_accuracy_ema);
        rc_json_num(o, "test_accuracy_ema", eva.accuracy);
    }
    rc_json_num(o, "train_loss", fit ? fit->train_loss : NAN);
    rc_json_num(o, "train_images_per_second", fit ? fit->images_per_second : NAN);
    rc_json_num(o, "host_to_device_bytes_per_step", fit ? (double)fit->host_to_device_bytes_per_step : NAN);
    cJSON_AddNumberToObject(o, "epochs", fit ? (double)fit->epochs_done : 0);
    cJSON_AddNumberToObject(o, "steps", fit ? (double)(g_resumed_at + fit->steps) : 0);
    cJSON_AddNumberToObject(o, "steps_this_run", fit ? (double)fit->steps : 0);
    rc_json_run(o, be, fb, seconds);
    dcli_fit_report(cmd, o, fit); /* several ranks: how each batch was split */
    if (fit) { /* fr_fit_plan: a frozen backbone, its features computed once, crops at load */
        cJSON_AddNumberToObject(o, "frozen_layers", fit->plan.frozen_layers);
        cJSON_AddBoolToObject(o, "features_cached", fit->plan.cached_features);
        cJSON_AddNumberToObject(o, "feature_images", (double)fit->feature_images);
        cJSON_AddNumberToObject(o, "feature_seconds", fit->feature_seconds);
        cJSON_AddBoolToObject(o, "crop_at_load", fit->plan.crop_at_load);
    }
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
    if (c->out) { /* the checkpoint the run wrote (rank 0 under mpirun) */
        char path[4200];
        snprintf(path, sizeof path, "%s/model.safetensors", c->out);
        cJSON_AddStringToObject(o, "checkpoint", path);
    }
    if (c->json) {
        rc_json_print(o);
    } else {
        cJSON_Delete(o);
        if (test)
            printf("test accuracy %.4f  test loss %.4f  (%lld images)\n", ev.accuracy, ev.loss, (long long)ev.n);
        if (test && !isnan(eva.accuracy))
            printf("test accuracy %.4f  of the weights' moving average\n", eva.accuracy);
        if (fit && fit->plan.cached_features)
            printf("backbone features of %lld images computed once in %.1f s\n", (long long)fit->feature_images,
                   fit->feature_seconds);
        if (fit)
            printf("trained %lld epochs, %lld steps, %.0f img/s, %.1f s in all\n", (long long)fit->epochs_done,
                   (long long)fit->steps, fit->images_per_second, seconds);
    }
    fr_eval_free(&ev);
    fr_eval_free(&eva);
    return CLI_OK;
}

/* what fr_fit will do beyond plain steps: a frozen backbone, features computed once, crops at load */
static void report_plan(const char *cmd, struct fr_net *net, const struct fr_trainset *ts, const struct fr_fit_opts *fo)
{
    struct fr_fit_plan p;
    if (fr_fit_plan(net, ts, fo, &p) != FR_STATUS_OK)
        return; /* fr_fit says why */
    if (p.cached_features)
        fprintf(stderr, "frugal %s: frozen backbone (%d layers): its features (%lld values per image) are computed once "
                        "per image, then the head trains on them\n", cmd, p.frozen_layers, (long long)p.feature_width);
    else if (p.frozen_layers)
        fprintf(stderr, "frugal %s: frozen backbone (%d layers): eval mode, no gradients; it runs every step (%s)\n", cmd,
                p.frozen_layers, fo->augment || fo->cutmix > 0 || fo->mixup > 0 ? "augmented images" : "distillation");
    if (p.crop_at_load)
        fprintf(stderr, "frugal %s: the policy's random resized crop is made when the photos are read, from the whole "
                        "photo\n", cmd);
}

int rc_run_fit(const char *cmd, struct fr_backend *be, struct fr_net *net, struct fr_trainset *ts,
               struct fr_fit_opts *fo, struct fr_fit_result *fr)
{
    int64_t total = (int64_t)fo->epochs * ((ts->n + fo->batch - 1) / (fo->batch > 0 ? fo->batch : 1));
    if (fo->sched.warmup_steps > 0 && fo->sched.warmup_steps >= total)
        return cli_error(cmd, CLI_USAGE, "--warmup %lld: the whole run has %lld steps (%d epochs of %lld); the "
                                         "learning rate would never reach --lr",
                         (long long)fo->sched.warmup_steps, (long long)total, fo->epochs,
                         (long long)(total / (fo->epochs > 0 ? fo->epochs : 1)));
    g_resumed_at = fo->resume ? net->ck_global_step : 0;
    report_plan(cmd, net, ts, fo);
    struct progress pr;
    progress_init(&pr, cmd, NULL);
    fo->on_progress = progress_step;
    fo->on_epoch = progress_epoch;
    fo->user = &pr;
    rc_install_signals();
    enum fr_status st = fit(cmd, be, net, ts, fo, fr);
    progress_done(&pr);
    fo->user = NULL;
    if (st == FR_STATUS_INTERRUPTED) {
        rc_report_device(cmd, be, fr_net_fallback_ops(net));
        return rc_interrupted(cmd, last_error(st)); /* checkpoint saved */
    }
    return st == FR_STATUS_OK ? CLI_OK : rc_fail(cmd, st);
}
