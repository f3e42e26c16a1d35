/* Networks for the recipes: built-in models with class names and input normalisation, checkpoints with resume
 * metadata, prediction of u8 images (one eval graph, normalised on the device) and evaluation (accuracy, loss,
 * per-class accuracy, confusion matrix). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "frugal/backend.h"
#include "frugal/recipes.h"
#include "dist/dist_internal.h"
#include "recipes/recipes_internal.h"

#define EVAL_BATCH 256
#define FR_NET_GATHER 2048 /* images gathered per call when predicting a subset of a dataset */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void free_names(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static enum fr_status set_names(struct fr_net *net, char *const *names, int n)
{
    char **nn = calloc((size_t)n, sizeof *nn);
    if (!nn)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    for (int i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d", i);
        nn[i] = strdup(names && names[i] ? names[i] : buf);
        if (!nn[i]) {
            free_names(nn, i);
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
        }
    }
    free_names(net->class_names, net->n_classes);
    net->class_names = nn;
    net->n_classes = n;
    return FR_STATUS_OK;
}

void fr_net_free(struct fr_net *net)
{
    if (!net)
        return;
    fr_trainer_free(net->trainer);
    fr_predictor_free(net->pred);
    fr_model_free(net->model);
    fr_ctx_free(net->ctx);
    free_names(net->class_names, net->n_classes);
    free(net->ck_path);
    free(net->model_text);
    free(net);
}

bool fr_net_arch_builtin(const char *arch)
{
    return arch && (!strcmp(arch, "t") || !strcmp(arch, "c") || !strcmp(arch, "s") || !strcmp(arch, "m"));
}

/* arch: a built-in name, or (text != NULL) the label of a model-file text; src names the text in errors. */
static enum fr_status net_build_text(struct fr_backend *be, const char *arch, const char *text, const char *src,
                                     const struct fr_model_opts *mo, int c, int h, int w, int k, struct fr_net **out)
{
    *out = NULL;
    struct fr_net *net = calloc(1, sizeof *net);
    if (!net)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    net->be = be;
    snprintf(net->arch, sizeof net->arch, "%s", arch);
    net->c = c;
    net->h = h;
    net->w = w;
    net->eval_batch = EVAL_BATCH;
    for (int i = 0; i < 4; i++)
        net->mean[i] = 0.0f, net->std[i] = 1.0f;
    net->ctx = fr_ctx_new();
    enum fr_status st = net->ctx ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    if (st == FR_STATUS_OK && text) {
        net->model_text = strdup(text);
        st = net->model_text ? fr_model_from_text(net->ctx, text, src ? src : arch, c, h, w, k, &net->model)
                             : fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    } else if (st == FR_STATUS_OK) {
        st = fr_model_builtin_ex(net->ctx, arch, c, h, w, k, mo, &net->model);
    }
    float mean[4] = {0, 0, 0, 0}, std[4] = {1, 1, 1, 1};
    if (st == FR_STATUS_OK && fr_model_normalization(net->model, mean, std) > 0) /* a model file's normalize line */
        st = fr_net_set_normalize(net, mean, std);
    if (st == FR_STATUS_OK)
        st = fr_model_alloc(net->model, be);
    if (st != FR_STATUS_OK) {
        fr_net_free(net);
        return st;
    }
    *out = net;
    return FR_STATUS_OK;
}

/* A built-in arch, or a model file read from the path `arch` (labelled by its basename). */
static enum fr_status net_build(struct fr_backend *be, const char *arch, const struct fr_model_opts *mo, int c, int h,
                                int w, int k, struct fr_net **out)
{
    *out = NULL;
    if (fr_net_arch_builtin(arch))
        return net_build_text(be, arch, NULL, NULL, mo, c, h, w, k, out);
    char *text;
    enum fr_status st = fr_model_read_text(arch, &text);
    if (st != FR_STATUS_OK)
        return st;
    const char *base = strrchr(arch, '/');
    st = net_build_text(be, base ? base + 1 : arch, text, arch, mo, c, h, w, k, out);
    free(text);
    return st;
}

enum fr_status fr_net_new(struct fr_backend *be, const char *arch, int c, int h, int w, int n_classes,
                          char *const *class_names, uint64_t seed, struct fr_net **out)
{
    return fr_net_new_ex(be, arch, NULL, c, h, w, n_classes, class_names, seed, out);
}

enum fr_status fr_net_new_ex(struct fr_backend *be, const char *arch, const struct fr_model_opts *mo, int c, int h,
                             int w, int n_classes, char *const *class_names, uint64_t seed, struct fr_net **out)
{
    struct fr_net *net;
    enum fr_status st = net_build(be, arch, mo, c, h, w, n_classes, &net);
    if (st != FR_STATUS_OK)
        return st;
    if ((st = fr_model_init(net->model, seed, FR_INIT_DEFAULT, NULL)) != FR_STATUS_OK ||
        (st = set_names(net, class_names, n_classes)) != FR_STATUS_OK) {
        fr_net_free(net);
        return st;
    }
    *out = net;
    return FR_STATUS_OK;
}

/* The model's own tensors (parameters and batch-norm statistics). */
static struct fr_named_tensor *model_named(const struct fr_net *net, int *n)
{
    *n = fr_model_n_tensors(net->model);
    struct fr_named_tensor *ts = calloc((size_t)*n + 1, sizeof *ts);
    if (!ts)
        return NULL;
    for (int i = 0; i < *n; i++) {
        struct fr_model_entry e = fr_model_tensor(net->model, i);
        ts[i].name = e.name;
        ts[i].t = e.t;
    }
    return ts;
}

static bool saved_kind(const struct fr_tensor *t)
{
    return (t->flags & (FR_FLAG_PARAM | FR_FLAG_STATE)) && t->buffer && t->name[0] && !t->view_src;
}

struct fr_named_tensor *fr_net_state_tensors(const struct fr_net *net, int *n)
{
    int cnt = fr_ctx_count(net->ctx), k = 0;
    struct fr_named_tensor *ts = calloc((size_t)cnt + 1, sizeof *ts);
    if (!ts)
        return NULL;
    for (int i = 0; i < cnt; i++) {
        struct fr_tensor *t = fr_ctx_tensor(net->ctx, i);
        bool newer = false; /* a later tensor of the same name replaces this one */
        for (int j = i + 1; saved_kind(t) && j < cnt && !newer; j++) {
            const struct fr_tensor *u = fr_ctx_tensor(net->ctx, j);
            newer = saved_kind(u) && !strcmp(u->name, t->name);
        }
        if (saved_kind(t) && !newer)
            ts[k++] = (struct fr_named_tensor){t->name, t};
    }
    *n = k;
    return ts;
}

enum fr_status fr_net_snapshot_take(const struct fr_net *net, struct fr_net_snapshot *s)
{
    memset(s, 0, sizeof *s);
    struct fr_named_tensor *ts = fr_net_state_tensors(net, &s->n);
    size_t total = 0, at = 0;
    for (int i = 0; ts && i < s->n; i++)
        total += (size_t)fr_nbytes(ts[i].t);
    s->buf = ts ? malloc(total + 1) : NULL;
    s->names = ts ? calloc((size_t)s->n + 1, sizeof *s->names) : NULL;
    s->size = ts ? calloc((size_t)s->n + 1, sizeof *s->size) : NULL;
    enum fr_status st = s->buf && s->names && s->size
                            ? FR_STATUS_OK
                            : fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory for a copy of the training state");
    for (int i = 0; st == FR_STATUS_OK && i < s->n; i++) {
        s->size[i] = (size_t)fr_nbytes(ts[i].t);
        if (!(s->names[i] = strdup(ts[i].name)))
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
        else
            st = fr_tensor_get(ts[i].t, s->buf + at, s->size[i]);
        at += s->size[i];
    }
    free(ts);
    if (st != FR_STATUS_OK)
        fr_net_snapshot_free(s);
    return st;
}

enum fr_status fr_net_snapshot_put(struct fr_net *net, const struct fr_net_snapshot *s)
{
    int n = 0;
    struct fr_named_tensor *now = fr_net_state_tensors(net, &n);
    enum fr_status st = now ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    size_t at = 0;
    for (int i = 0; st == FR_STATUS_OK && i < s->n; i++) {
        int j = 0;
        while (j < n && strcmp(now[j].name, s->names[i]))
            j++;
        if (j == n || (size_t)fr_nbytes(now[j].t) != s->size[i])
            st = fr_error(FR_STATUS_INVALID_ARGUMENT, "net: no tensor '%s' of %zu bytes to restore", s->names[i],
                          s->size[i]);
        else
            st = fr_tensor_set(now[j].t, s->buf + at, s->size[i]);
        at += s->size[i];
    }
    free(now);
    return st;
}

void fr_net_snapshot_free(struct fr_net_snapshot *s)
{
    for (int i = 0; s->names && i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    free(s->size);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

enum fr_status fr_net_save(const struct fr_net *net, const char *path, int64_t epoch, int64_t step_in_epoch,
                           int64_t global_step, const struct fr_kv *extra, int n_extra)
{
    int n;
    struct fr_named_tensor *ts = fr_net_state_tensors(net, &n);
    if (!ts)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    cJSON *names = cJSON_CreateArray();
    for (int i = 0; i < net->n_classes; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(net->class_names[i]));
    char *names_s = cJSON_PrintUnformatted(names);
    cJSON_Delete(names);
    char input[64], k[32], ep[32], sie[32], gs[32], grs[32], norm[160];
    snprintf(input, sizeof input, "%d,%d,%d", net->c, net->h, net->w);
    fr_net_normalize_str(net, norm, sizeof norm);
    snprintf(k, sizeof k, "%d", net->n_classes);
    snprintf(ep, sizeof ep, "%lld", (long long)epoch);
    snprintf(sie, sizeof sie, "%lld", (long long)step_in_epoch);
    snprintf(gs, sizeof gs, "%lld", (long long)global_step);
    uint32_t gstep = net->trainer ? fr_graph_step(fr_trainer_graph(net->trainer, false)) : 0;
    snprintf(grs, sizeof grs, "%u", gstep);
    struct fr_kv *meta = calloc((size_t)n_extra + 10, sizeof *meta);
    enum fr_status st;
    if (!meta || !names_s) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    } else {
        int m = 0;
        meta[m++] = (struct fr_kv){"frugal.arch", net->arch};
        meta[m++] = (struct fr_kv){"frugal.input", input};
        meta[m++] = (struct fr_kv){"frugal.n_classes", k};
        meta[m++] = (struct fr_kv){"frugal.class_names", names_s};
        meta[m++] = (struct fr_kv){"frugal.epoch", ep};
        meta[m++] = (struct fr_kv){"frugal.step_in_epoch", sie};
        meta[m++] = (struct fr_kv){"frugal.global_step", gs};
        meta[m++] = (struct fr_kv){"frugal.graph_step", grs};
        meta[m++] = (struct fr_kv){"frugal.normalize", norm};
        if (net->model_text)
            meta[m++] = (struct fr_kv){"frugal.model_text", net->model_text};
        for (int i = 0; i < n_extra; i++)
            meta[m++] = extra[i];
        st = fr_checkpoint_save(path, ts, n, meta, m);
    }
    free(meta);
    cJSON_free(names_s);
    free(ts);
    return st;
}

static int64_t meta_int(const struct fr_safetensors *st, const char *key, int64_t dflt)
{
    const char *v = fr_st_meta(st, key);
    if (!v)
        return dflt;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    return (errno || end == v) ? dflt : (int64_t)x;
}

static enum fr_status parse_normalize(const char *s, struct fr_net *net);

enum fr_status fr_net_load(struct fr_backend *be, const char *path, struct fr_net **out)
{
    *out = NULL;
    struct fr_safetensors *st;
    enum fr_status s = fr_st_open(path, &st);
    if (s != FR_STATUS_OK)
        return s;
    const char *arch = fr_st_meta(st, "frugal.arch"), *input = fr_st_meta(st, "frugal.input");
    int c, h, w, k = (int)meta_int(st, "frugal.n_classes", 0);
    if (!arch || !input || sscanf(input, "%d,%d,%d", &c, &h, &w) != 3 || k <= 0) {
        fr_st_free(st);
        return fr_error(FR_STATUS_FORMAT,
                        "%s: not a frugal checkpoint (no frugal.arch/input/n_classes metadata); for plain "
                        "safetensors weights use --weights with --arch",
                        path);
    }
    struct fr_net *net;
    /* a model-file checkpoint carries the file's text: it loads without the file */
    const char *text = fr_st_meta(st, "frugal.model_text");
    if ((s = text ? net_build_text(be, arch, text, arch, NULL, c, h, w, k, &net)
                  : net_build_text(be, arch, NULL, NULL, NULL, c, h, w, k, &net)) != FR_STATUS_OK) {
        fr_st_free(st);
        return s;
    }
    char **names = calloc((size_t)k, sizeof *names);
    cJSON *arr = cJSON_Parse(fr_st_meta(st, "frugal.class_names") ? fr_st_meta(st, "frugal.class_names") : "[]");
    for (int i = 0; names && i < k; i++) {
        cJSON *it = cJSON_GetArrayItem(arr, i);
        names[i] = (it && cJSON_IsString(it)) ? it->valuestring : NULL;
    }
    s = names ? set_names(net, names, k) : fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    free(names);
    cJSON_Delete(arr);
    int n;
    struct fr_named_tensor *ts = s == FR_STATUS_OK ? model_named(net, &n) : NULL;
    if (s == FR_STATUS_OK && !ts)
        s = fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    if (s == FR_STATUS_OK) {
        struct fr_st_load_opts lo = {.allow_missing = false, .ignore_unexpected = true};
        s = fr_st_load_tensors(st, ts, n, &lo);
    }
    free(ts);
    const char *norm = fr_st_meta(st, "frugal.normalize");
    if (s == FR_STATUS_OK && norm && (s = parse_normalize(norm, net)) != FR_STATUS_OK)
        s = fr_error(s, "%s: frugal.normalize: %s", path, fr_last_error());
    if (s == FR_STATUS_OK) {
        net->ck_epoch = meta_int(st, "frugal.epoch", 0);
        net->ck_step_in_epoch = meta_int(st, "frugal.step_in_epoch", 0);
        net->ck_global_step = meta_int(st, "frugal.global_step", 0);
        net->ck_graph_step = (uint32_t)meta_int(st, "frugal.graph_step", 0);
        net->ck_path = strdup(path);
    }
    fr_st_free(st);
    if (s != FR_STATUS_OK) {
        fr_net_free(net);
        return s;
    }
    *out = net;
    return FR_STATUS_OK;
}

enum fr_status fr_model_copy_tensors(struct fr_model *dst, const struct fr_model *src)
{
    int n = fr_model_n_tensors(src);
    if (n != fr_model_n_tensors(dst))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "net: a copy has %d tensors, the original %d",
                        fr_model_n_tensors(dst), n);
    enum fr_status st = FR_STATUS_OK;
    void *buf = NULL;
    for (int i = 0; i < n && st == FR_STATUS_OK; i++) {
        struct fr_tensor *a = fr_model_tensor(src, i).t, *b = fr_model_tensor(dst, i).t;
        size_t bytes = fr_nbytes(a);
        void *nb = bytes == fr_nbytes(b) ? realloc(buf, bytes ? bytes : 1) : NULL;
        if (!nb) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "net: cannot copy '%s'", fr_model_tensor(src, i).name);
            break;
        }
        buf = nb;
        if ((st = fr_tensor_get(a, buf, bytes)) == FR_STATUS_OK)
            st = fr_tensor_set(b, buf, bytes);
    }
    free(buf);
    return st;
}

enum fr_status fr_net_model_copy(const struct fr_net *src, struct fr_ctx *ctx, struct fr_backend *be,
                                 const char *prefix, struct fr_model **out)
{
    *out = NULL;
    struct fr_model *m = NULL;
    enum fr_status st = src->model_text
                            ? fr_model_from_text(ctx, src->model_text, src->arch, src->c, src->h, src->w, src->n_classes, &m)
                            : fr_model_builtin_ex(ctx, src->arch, src->c, src->h, src->w, src->n_classes, NULL, &m);
    if (st == FR_STATUS_OK)
        st = fr_model_alloc(m, be);
    if (st == FR_STATUS_OK) /* once, through the host */
        st = fr_model_copy_tensors(m, src->model);
    int n = st == FR_STATUS_OK ? fr_model_n_tensors(m) : 0;
    for (int i = 0; i < n; i++) {
        struct fr_tensor *b = fr_model_tensor(m, i).t;
        char name[FR_NAME_MAX];
        snprintf(name, sizeof name, "%s%s", prefix, b->name);
        fr_tensor_set_name(b, "%s", name);
        b->flags = (b->flags & ~(uint32_t)(FR_FLAG_PARAM | FR_FLAG_STATE)) | FR_FLAG_FROZEN | FR_FLAG_CONST;
    }
    if (st != FR_STATUS_OK) {
        fr_model_free(m);
        return st;
    }
    *out = m;
    return FR_STATUS_OK;
}

enum fr_status fr_net_ema(const struct fr_net *net, struct fr_net **out)
{
    *out = NULL;
    struct fr_optim *opt = net->trainer ? fr_trainer_optim(net->trainer) : NULL;
    int n = fr_model_n_tensors(net->model), averaged = 0;
    for (int i = 0; opt && i < n; i++)
        averaged += fr_optim_moment(opt, fr_model_tensor(net->model, i).t, 2) != NULL;
    if (!averaged)
        return fr_error(FR_STATUS_NOT_FOUND, "net: no moving average of the weights (train with an EMA decay)");
    struct fr_net *e;
    enum fr_status st = net_build_text(net->be, net->arch, net->model_text, net->arch, NULL, net->c, net->h, net->w,
                                       net->n_classes, &e);
    if (st != FR_STATUS_OK)
        return st;
    e->eval_batch = net->eval_batch;
    memcpy(e->mean, net->mean, sizeof e->mean);
    memcpy(e->std, net->std, sizeof e->std);
    st = set_names(e, net->class_names, net->n_classes);
    void *buf = NULL;
    for (int i = 0; i < n && st == FR_STATUS_OK; i++) { /* averaged parameters; the rest (batch-norm statistics) as is */
        struct fr_tensor *a = fr_model_tensor(net->model, i).t, *b = fr_model_tensor(e->model, i).t;
        struct fr_tensor *avg = fr_optim_moment(opt, a, 2);
        size_t bytes = fr_nbytes(a);
        void *nb = bytes == fr_nbytes(b) ? realloc(buf, bytes ? bytes : 1) : NULL;
        if (!nb) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "net: cannot copy '%s'", fr_model_tensor(net->model, i).name);
            break;
        }
        buf = nb;
        if ((st = fr_tensor_get(avg ? avg : a, buf, bytes)) == FR_STATUS_OK)
            st = fr_tensor_set(b, buf, bytes);
    }
    free(buf);
    if (st != FR_STATUS_OK) {
        fr_net_free(e);
        return st;
    }
    *out = e;
    return FR_STATUS_OK;
}

enum fr_status fr_net_load_weights(struct fr_backend *be, const char *arch, const char *path, int c, int h, int w,
                                   struct fr_net **out)
{
    *out = NULL;
    struct fr_safetensors *st;
    enum fr_status s = fr_st_open(path, &st);
    if (s != FR_STATUS_OK)
        return s;
    /* build once with 1 class to learn the head's bias name, then size it from the file */
    struct fr_net *probe;
    if ((s = net_build(be, arch, NULL, c, h, w, 1, &probe)) != FR_STATUS_OK) {
        fr_st_free(st);
        return s;
    }
    int nt = fr_model_n_tensors(probe->model);
    const char *bias = nt > 0 ? fr_model_tensor(probe->model, nt - 1).name : "";
    const struct fr_st_tensor *bt = fr_st_find(st, bias);
    int k = bt && bt->ndim == 1 ? (int)bt->shape[0] : 0;
    if (k <= 0) { /* the file does not fit: every missing, unexpected and mis-shaped tensor, as below */
        if ((s = fr_model_load_st(probe->model, st, false, false)) == FR_STATUS_OK)
            s = fr_error(FR_STATUS_FORMAT, "%s: no 1-D tensor '%s' (the head bias of model '%s')", path, bias, arch);
        fr_net_free(probe);
        fr_st_free(st);
        return s;
    }
    fr_net_free(probe);
    struct fr_net *net;
    if ((s = net_build(be, arch, NULL, c, h, w, k, &net)) == FR_STATUS_OK && (s = set_names(net, NULL, k)) == FR_STATUS_OK) {
        /* every missing, unexpected and mis-shaped tensor in one message; class names and normalisation from
         * the metadata of an exported backbone (tools/export_torchvision.py) */
        s = fr_model_load_st(net->model, st, false, fr_st_meta(st, "frugal.checkpoint") != NULL); /* + optimizer state */
        cJSON *arr = cJSON_Parse(fr_st_meta(st, "frugal.class_names") ? fr_st_meta(st, "frugal.class_names") : "[]");
        if (s == FR_STATUS_OK && cJSON_GetArraySize(arr) == k) {
            char **names = calloc((size_t)k, sizeof *names);
            for (int i = 0; names && i < k; i++) {
                cJSON *it = cJSON_GetArrayItem(arr, i);
                names[i] = cJSON_IsString(it) ? it->valuestring : NULL;
            }
            s = names ? set_names(net, names, k) : fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
            free(names);
        }
        cJSON_Delete(arr);
        const char *norm = fr_st_meta(st, "frugal.normalize"); /* unless the model file has a normalize line */
        if (s == FR_STATUS_OK && norm && fr_model_normalization(net->model, NULL, NULL) == 0 &&
            (s = parse_normalize(norm, net)) != FR_STATUS_OK)
            s = fr_error(s, "%s: frugal.normalize: %s", path, fr_last_error());
    }
    fr_st_free(st);
    if (s != FR_STATUS_OK) {
        fr_net_free(net);
        return s;
    }
    *out = net;
    return FR_STATUS_OK;
}

const char *fr_net_head_prefix(const struct fr_net *net, char *buf, size_t size)
{
    int nt = fr_model_n_tensors(net->model);
    snprintf(buf, size, "%s", nt > 0 ? fr_model_tensor(net->model, nt - 1).name : "");
    char *dot = strrchr(buf, '.');
    if (dot)
        dot[1] = 0;
    return buf;
}

enum fr_status fr_net_replace_head(struct fr_net *net, int n_classes, char *const *class_names, uint64_t seed)
{
    if (net->trainer || net->pred)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "net: replace the head before training or predicting");
    enum fr_status st = fr_model_replace_head(net->model, n_classes);
    if (st == FR_STATUS_OK)
        st = fr_model_alloc(net->model, net->be);
    char prefix[128];
    if (st == FR_STATUS_OK)
        st = fr_model_init(net->model, seed, FR_INIT_DEFAULT, fr_net_head_prefix(net, prefix, sizeof prefix));
    if (st == FR_STATUS_OK)
        st = set_names(net, class_names, n_classes);
    free(net->ck_path); /* optimizer state of the old model does not apply */
    net->ck_path = NULL;
    net->ck_epoch = net->ck_step_in_epoch = net->ck_global_step = 0;
    net->ck_graph_step = 0;
    return st;
}

int fr_net_fallback_ops(const struct fr_net *net)
{
    int n = 0;
    struct fr_graph_stats s;
    if (net->trainer) {
        fr_graph_get_stats(fr_trainer_graph(net->trainer, false), &s);
        n += s.fallback_ops;
    }
    if (net->pred) {
        fr_graph_get_stats(fr_predictor_graph(net->pred), &s);
        n += s.fallback_ops;
    }
    return n;
}

enum fr_status fr_net_set_normalize(struct fr_net *net, const float mean[4], const float std[4])
{
    for (int c = 0; c < 4; c++)
        if (!(std[c] > 0.0f) || !isfinite(std[c]) || !isfinite(mean[c]))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "net: normalisation std[%d] = %g must be > 0 (mean %g)", c,
                            (double)std[c], (double)mean[c]);
    bool same = !memcmp(mean, net->mean, sizeof net->mean) && !memcmp(std, net->std, sizeof net->std);
    if (!same && (net->pred || net->trainer))
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "net: the input normalisation cannot change once the network has predicted or trained");
    memcpy(net->mean, mean, sizeof net->mean);
    memcpy(net->std, std, sizeof net->std);
    return FR_STATUS_OK;
}

const char *fr_net_normalize_str(const struct fr_net *net, char *buf, size_t size)
{
    snprintf(buf, size, "mean=%.9g,%.9g,%.9g,%.9g;std=%.9g,%.9g,%.9g,%.9g", net->mean[0], net->mean[1], net->mean[2],
             net->mean[3], net->std[0], net->std[1], net->std[2], net->std[3]);
    return buf;
}

static enum fr_status parse_normalize(const char *s, struct fr_net *net)
{
    float m[4], sd[4];
    if (sscanf(s, "mean=%f,%f,%f,%f;std=%f,%f,%f,%f", &m[0], &m[1], &m[2], &m[3], &sd[0], &sd[1], &sd[2], &sd[3]) != 8)
        return fr_error(FR_STATUS_FORMAT, "expected mean=M0,M1,M2,M3;std=S0,S1,S2,S3, got '%.60s'", s);
    return fr_net_set_normalize(net, m, sd);
}

static enum fr_status net_predictor(struct fr_net *net)
{
    if (net->pred)
        return FR_STATUS_OK;
    struct fr_predictor_opts po;
    fr_predictor_opts_init(&po);
    po.batch = net->eval_batch;
    memcpy(po.mean, net->mean, sizeof po.mean);
    memcpy(po.std, net->std, sizeof po.std);
    return fr_predictor_new(net->model, net->be, &po, &net->pred);
}

enum fr_status fr_net_predict_u8(struct fr_net *net, const uint8_t *images, int64_t n, float *logits)
{
    enum fr_status st = net_predictor(net);
    return st == FR_STATUS_OK ? fr_predictor_run(net->pred, images, n, logits) : st;
}

/* Rows of images [first, first + n) of idx (or of the dataset when idx is NULL) through pred into rows[0..n·width). */
static enum fr_status predict_range(struct fr_net *net, struct fr_predictor *pred, const struct fr_dataset *ds,
                                    const int64_t *idx, int64_t first, int64_t n, float *rows)
{
    const int64_t sz = (int64_t)net->c * net->h * net->w, k = fr_predictor_width(pred);
    if (!idx && ds->pixels) /* an in-memory dataset's images are one contiguous u8 NHWC array */
        return fr_predictor_run(pred, ds->pixels + first * sz, n, rows);
    /* gathered (or decoded: folders, CSV lists) in chunks of at most FR_NET_GATHER images and about 64 MiB, whole
     * eval batches where they fit (each graph run sees the same images whatever the chunking or the ranks) */
    int64_t chunk = ((int64_t)64 << 20) / sz;
    chunk = chunk < 1 ? 1 : chunk > FR_NET_GATHER ? FR_NET_GATHER : chunk;
    if (chunk > net->eval_batch)
        chunk -= chunk % net->eval_batch;
    uint8_t *x = malloc((size_t)(chunk * sz));
    int64_t *ids = malloc((size_t)chunk * sizeof *ids);
    enum fr_status st = x && ids ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    for (int64_t i = 0; i < n && st == FR_STATUS_OK; i += chunk) {
        int64_t cnt = n - i < chunk ? n - i : chunk;
        for (int64_t j = 0; j < cnt; j++)
            ids[j] = idx ? idx[first + i + j] : first + i + j;
        if ((st = fr_dataset_read(ds, ids, cnt, NULL, x)) != FR_STATUS_OK)
            break;
        st = fr_predictor_run(pred, x, cnt, rows + i * k);
        for (int64_t j = 0; j < cnt; j++) /* a skipped unreadable image: NaN rows */
            if (ids[j] != (idx ? idx[first + i + j] : first + i + j))
                for (int64_t q = 0; q < k; q++)
                    rows[(i + j) * k + q] = NAN;
    }
    free(x);
    free(ids);
    return st;
}

static enum fr_status shape_check(const struct fr_net *net, const struct fr_dataset *ds)
{
    if (ds->c != net->c || ds->h != net->h || ds->w != net->w)
        return fr_error(FR_STATUS_SHAPE, "%s: images are %dx%dx%d, the model expects %dx%dx%d", ds->source, ds->c,
                        ds->h, ds->w, net->c, net->h, net->w);
    return FR_STATUS_OK;
}

enum fr_status fr_net_predict_rows(struct fr_net *net, struct fr_predictor *pred, const struct fr_dataset *ds,
                                   const int64_t *idx, int64_t n, float *rows)
{
    enum fr_status st = shape_check(net, ds);
    return st == FR_STATUS_OK ? predict_range(net, pred, ds, idx, 0, n, rows) : st;
}

enum fr_status fr_net_predict(struct fr_net *net, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                              float *logits)
{
    enum fr_status st = shape_check(net, ds);
    if (st == FR_STATUS_OK)
        st = net_predictor(net);
    struct fr_dist *d = fr_dist_world();
    if (st != FR_STATUS_OK || fr_dist_size(d) == 1)
        return st == FR_STATUS_OK ? predict_range(net, net->pred, ds, idx, 0, n, logits) : st;
    /* several ranks (mpirun): each predicts its share, in whole eval batches, and every rank gathers all rows */
    st = fr_dist_same_images(d, "the images to predict", ds, idx, n);
    if (st == FR_STATUS_OK)
        st = fr_dist_same_net(d, "the network", net);
    if (st != FR_STATUS_OK)
        return st;
    int64_t first, cnt;
    fr_dist_share(d, n, net->eval_batch, &first, &cnt);
    st = fr_dist_agree(d, cnt > 0 ? predict_range(net, net->pred, ds, idx, first, cnt, logits + first * net->n_classes)
                                  : FR_STATUS_OK);
    return st == FR_STATUS_OK ? fr_dist_gather_rows(d, logits, n, (size_t)net->n_classes * sizeof(float), net->eval_batch)
                              : st;
}

enum fr_status fr_net_predict_mirrored(struct fr_net *net, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                                       float *logits)
{
    enum fr_status st = shape_check(net, ds);
    /* mirrored copies, read and predicted in chunks (the dataset may decode files on demand) */
    const int k = net->n_classes;
    const int64_t sz = (int64_t)ds->c * ds->h * ds->w, chunk = 4096;
    uint8_t *x = st == FR_STATUS_OK ? malloc((size_t)(chunk * sz)) : NULL;
    int64_t *ids = st == FR_STATUS_OK ? malloc((size_t)chunk * sizeof *ids) : NULL;
    if (st == FR_STATUS_OK && (!x || !ids))
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "predict: out of memory");
    for (int64_t i = 0; i < n && st == FR_STATUS_OK; i += chunk) {
        int64_t cnt = n - i < chunk ? n - i : chunk;
        for (int64_t j = 0; j < cnt; j++)
            ids[j] = idx ? idx[i + j] : i + j;
        if ((st = fr_dataset_read(ds, ids, cnt, NULL, x)) != FR_STATUS_OK)
            break;
        for (int64_t j = 0; j < cnt; j++) /* NHWC rows: swap pixel x and w-1-x of every row */
            for (int y = 0; y < ds->h; y++) {
                uint8_t *row = x + j * sz + (int64_t)y * ds->w * ds->c;
                for (int a = 0, b = ds->w - 1; a < b; a++, b--)
                    for (int c = 0; c < ds->c; c++) {
                        uint8_t v = row[a * ds->c + c];
                        row[a * ds->c + c] = row[b * ds->c + c];
                        row[b * ds->c + c] = v;
                    }
            }
        st = fr_net_predict_u8(net, x, cnt, logits + i * k);
        for (int64_t j = 0; j < cnt; j++) /* an unreadable image the dataset replaced: NaN, as fr_net_predict */
            if (ids[j] != (idx ? idx[i + j] : i + j))
                for (int c = 0; c < k; c++)
                    logits[(i + j) * k + c] = NAN;
    }
    free(x);
    free(ids);
    return st;
}

void fr_eval_free(struct fr_eval *e)
{
    if (!e)
        return;
    free(e->class_accuracy);
    free(e->confusion);
    memset(e, 0, sizeof *e);
}

int64_t *fr_net_labeled(const struct fr_dataset *ds, const int64_t *idx, int64_t n, int64_t *m)
{
    int64_t *lab = malloc((size_t)(n > 0 ? n : 1) * sizeof *lab);
    *m = 0;
    for (int64_t i = 0; lab && i < n; i++) {
        int64_t j = idx ? idx[i] : i;
        if (ds->labels && ds->labels[j] >= 0)
            lab[(*m)++] = j;
    }
    if (!lab)
        fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    return lab;
}

enum fr_status fr_net_evaluate(struct fr_net *net, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                               struct fr_eval *out)
{
    memset(out, 0, sizeof *out);
    int k = net->n_classes;
    int64_t m;
    int64_t *lab = fr_net_labeled(ds, idx, n, &m);
    float *logits = lab ? malloc((size_t)(m > 0 ? m : 1) * k * sizeof(float)) : NULL;
    if (!logits) {
        free(lab);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    }
    double t0 = now_s();
    enum fr_status st = m > 0 ? fr_net_predict(net, ds, lab, m, logits) : FR_STATUS_OK;
    double seconds = now_s() - t0;
    if (st == FR_STATUS_OK)
        st = fr_eval_logits(ds, lab, m, logits, k, out);
    out->seconds = seconds;
    out->images_per_second = seconds > 0 ? (double)out->n / seconds : 0;
    free(lab);
    free(logits);
    return st;
}

enum fr_status fr_eval_logits(const struct fr_dataset *ds, const int64_t *lab, int64_t m, const float *logits, int k,
                              struct fr_eval *out)
{
    memset(out, 0, sizeof *out);
    out->class_accuracy = calloc((size_t)k, sizeof(double));
    out->confusion = calloc((size_t)k * k, sizeof(int64_t));
    if (!out->class_accuracy || !out->confusion) {
        fr_eval_free(out);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "net: out of memory");
    }
    out->n_classes = k;
    out->n = m;
    enum fr_status st = FR_STATUS_OK;
    double loss = 0;
    int64_t correct = 0;
    int64_t used = 0;
    for (int64_t i = 0; st == FR_STATUS_OK && i < m; i++) {
        if (isnan(logits[i * k]))
            continue; /* an unreadable image the dataset skips */
        used++;
        int y = ds->labels[lab[i]];
        if (y >= k) {
            st = fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: image %lld has label %d but the model has %d classes",
                          ds->source, (long long)lab[i], y, k);
            break;
        }
        const float *z = logits + i * k;
        int best = 0;
        float mx = z[0];
        for (int c = 1; c < k; c++)
            if (z[c] > mx) {
                mx = z[c];
                best = c;
            }
        double se = 0;
        for (int c = 0; c < k; c++)
            se += exp((double)z[c] - mx);
        loss += log(se) - ((double)z[y] - mx);
        correct += best == y;
        out->confusion[(int64_t)y * k + best]++;
    }
    if (st == FR_STATUS_OK) {
        out->n = used;
        out->accuracy = used ? (double)correct / (double)used : NAN;
        out->loss = used ? loss / (double)used : NAN;
        for (int c = 0; c < k; c++) {
            int64_t row = 0;
            for (int d = 0; d < k; d++)
                row += out->confusion[(int64_t)c * k + d];
            out->class_accuracy[c] = row ? (double)out->confusion[(int64_t)c * k + c] / (double)row : NAN;
        }
    }
    if (st != FR_STATUS_OK)
        fr_eval_free(out);
    return st;
}
