/* Named fr_tensors ↔ safetensors (all mismatches reported in one message) and checkpoints with metadata. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/io.h"

static const char *tname(const struct fr_named_tensor *nt) { return nt->name ? nt->name : nt->t->name; }

/* Appends to a message that fits fr_last_error()'s buffer, counting what no longer fits. */
struct msg {
    char s[900];
    size_t n;
    int count, dropped;
};

static void msg_add(struct msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_add(struct msg *m, const char *fmt, ...)
{
    char item[300];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(item, sizeof item, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k >= sizeof item)
        k = (int)sizeof item - 1;
    m->count++;
    if (m->n + (size_t)k + 3 >= sizeof m->s) {
        m->dropped++;
        return;
    }
    if (m->n) {
        memcpy(m->s + m->n, "; ", 2);
        m->n += 2;
    }
    memcpy(m->s + m->n, item, (size_t)k);
    m->n += (size_t)k;
    m->s[m->n] = 0;
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *ne)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ",%lld" : "%lld", (long long)ne[i]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
}

static bool same_shape(const struct fr_st_tensor *f, const struct fr_tensor *t)
{
    if (f->ndim == 0) /* PyTorch scalars (shape []) load into a one-element tensor */
        return fr_nelements(t) == 1;
    if (f->ndim != t->ndim)
        return false;
    for (int i = 0; i < f->ndim; i++)
        if (f->shape[i] != t->ne[i])
            return false;
    return true;
}

static bool dtype_ok(enum fr_st_dtype f, enum fr_dtype t)
{
    switch (t) {
    case FR_F32: return true;
    case FR_I32:
        return f != FR_ST_F16 && f != FR_ST_BF16 && f != FR_ST_F32 && f != FR_ST_F64;
    case FR_U8: return f == FR_ST_U8 || f == FR_ST_BOOL;
    default: return false;
    }
}

enum fr_status fr_st_load_tensors(const struct fr_safetensors *st, const struct fr_named_tensor *ts, int n,
                                  const struct fr_st_load_opts *opts)
{
    struct fr_st_load_opts def = {false, false};
    if (!opts)
        opts = &def;
    struct msg m = {{0}, 0, 0, 0};
    const struct fr_st_tensor **found = calloc((size_t)n + 1, sizeof *found);
    if (!found)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", st->name);
    for (int i = 0; i < n; i++) {
        const char *name = tname(&ts[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(name, tname(&ts[j])))
                msg_add(&m, "model lists '%s' twice", name);
        const struct fr_st_tensor *f = fr_st_find(st, name);
        if (!f) {
            if (!opts->allow_missing)
                msg_add(&m, "missing '%s'", name);
            continue;
        }
        char a[128], b[128];
        if (!same_shape(f, ts[i].t) || !dtype_ok(f->dtype, ts[i].t->type)) {
            shape_str(a, sizeof a, f->ndim, f->shape);
            shape_str(b, sizeof b, ts[i].t->ndim, ts[i].t->ne);
            msg_add(&m, "'%s' is %s%s in the file, %s%s in the model", name, fr_st_dtype_name(f->dtype), a,
                    fr_dtype_name(ts[i].t->type), b);
            continue;
        }
        found[i] = f;
    }
    if (!opts->ignore_unexpected)
        for (int j = 0; j < st->n_tensors; j++) {
            bool known = false;
            for (int i = 0; i < n && !known; i++)
                known = !strcmp(st->tensors[j].name, tname(&ts[i]));
            if (!known)
                msg_add(&m, "unexpected '%s'", st->tensors[j].name);
        }
    if (m.count) {
        free(found);
        char more[48] = "";
        if (m.dropped)
            snprintf(more, sizeof more, "; ... and %d more", m.dropped);
        return fr_error(FR_STATUS_SHAPE, "%s: %d mismatch%s: %s%s", st->name, m.count, m.count > 1 ? "es" : "", m.s,
                        more);
    }
    enum fr_status s = FR_STATUS_OK;
    for (int i = 0; i < n && s == FR_STATUS_OK; i++) {
        const struct fr_st_tensor *f = found[i];
        if (!f)
            continue;
        struct fr_tensor *t = ts[i].t;
        size_t numel = (size_t)fr_st_numel(f), nb = numel * fr_dtype_size(t->type);
        bool direct = (t->type == FR_F32 && f->dtype == FR_ST_F32) || (t->type == FR_I32 && f->dtype == FR_ST_I32) ||
                      (t->type == FR_U8 && f->dtype == FR_ST_U8);
        if (direct) {
            s = fr_tensor_set(t, f->data, nb);
            continue;
        }
        void *tmp = malloc(nb ? nb : 1);
        if (!tmp) {
            s = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory converting '%s'", st->name, f->name);
            break;
        }
        if (t->type == FR_F32)
            s = fr_st_read_f32(st, f, tmp, numel);
        else if (t->type == FR_I32)
            s = fr_st_read_i32(st, f, tmp, numel);
        else
            for (size_t k = 0; k < numel; k++)
                ((uint8_t *)tmp)[k] = f->data[k] != 0; /* BOOL into u8 */
        if (s == FR_STATUS_OK)
            s = fr_tensor_set(t, tmp, nb);
        free(tmp);
    }
    free(found);
    return s;
}

enum fr_status fr_st_load_file(const char *path, const struct fr_named_tensor *ts, int n,
                               const struct fr_st_load_opts *opts)
{
    struct fr_safetensors *st;
    enum fr_status s = fr_st_open(path, &st);
    if (s != FR_STATUS_OK)
        return s;
    s = fr_st_load_tensors(st, ts, n, opts);
    fr_st_free(st);
    return s;
}

enum fr_status fr_st_save_tensors(const char *path, const struct fr_named_tensor *ts, int n, const struct fr_kv *meta,
                                  int n_meta)
{
    struct fr_st_entry *e = calloc((size_t)n + 1, sizeof *e);
    void **bufs = calloc((size_t)n + 1, sizeof *bufs);
    enum fr_status s = FR_STATUS_OK;
    if (!e || !bufs) {
        s = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const struct fr_tensor *t = ts[i].t;
        size_t nb = (size_t)fr_nelements(t) * fr_dtype_size(t->type);
        if (!(bufs[i] = malloc(nb ? nb : 1))) {
            s = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
            goto out;
        }
        if ((s = fr_tensor_get(t, bufs[i], nb)) != FR_STATUS_OK)
            goto out;
        e[i].name = tname(&ts[i]);
        e[i].dtype = t->type == FR_F32 ? FR_ST_F32 : t->type == FR_I32 ? FR_ST_I32 : FR_ST_U8;
        e[i].ndim = t->ndim;
        e[i].shape = t->ne;
        e[i].data = bufs[i];
    }
    s = fr_st_write(path, e, n, meta, n_meta);
out:
    for (int i = 0; bufs && i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(e);
    return s;
}

enum fr_status fr_checkpoint_save(const char *path, const struct fr_named_tensor *ts, int n, const struct fr_kv *meta,
                                  int n_meta)
{
    struct fr_kv *all = malloc(sizeof *all * ((size_t)n_meta + 2));
    if (!all)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    int k = 0;
    bool has_format = false, has_ck = false;
    for (int i = 0; i < n_meta; i++) {
        has_format |= meta[i].key && !strcmp(meta[i].key, "format");
        has_ck |= meta[i].key && !strcmp(meta[i].key, "frugal.checkpoint");
    }
    /* "format": "pt" is what PyTorch's safetensors writer puts there; tools that check it accept the file */
    if (!has_format)
        all[k++] = (struct fr_kv){"format", "pt"};
    if (!has_ck)
        all[k++] = (struct fr_kv){"frugal.checkpoint", "1"};
    for (int i = 0; i < n_meta; i++)
        all[k++] = meta[i];
    enum fr_status s = fr_st_save_tensors(path, ts, n, all, k);
    free(all);
    return s;
}

enum fr_status fr_checkpoint_load(const char *path, const struct fr_named_tensor *ts, int n,
                                  const struct fr_st_load_opts *opts, struct fr_safetensors **out_st)
{
    if (out_st)
        *out_st = NULL;
    struct fr_safetensors *st;
    enum fr_status s = fr_st_open(path, &st);
    if (s != FR_STATUS_OK)
        return s;
    s = fr_st_load_tensors(st, ts, n, opts);
    if (s == FR_STATUS_OK && out_st)
        *out_st = st;
    else
        fr_st_free(st);
    return s;
}
