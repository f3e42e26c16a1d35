/* The dataset object: spec parsing (fmnist, idx:, folder:, csv:), reading batches, subsets, conversion to the asked
 * size, helpers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "data/data_internal.h"

void fr_dataset_opts_init(struct fr_dataset_opts *o)
{
    memset(o, 0, sizeof *o);
    o->resize = FR_RESIZE_BILINEAR;
    o->on_bad_image = FR_BAD_IMAGE_FAIL;
}

void fr_read_opts_init(struct fr_read_opts *o)
{
    memset(o, 0, sizeof *o);
    o->crop = FR_CROP_CENTER;
    o->scale[0] = 0.08f, o->scale[1] = 1.0f;
    o->ratio[0] = 3.0f / 4.0f, o->ratio[1] = 4.0f / 3.0f;
}

enum fr_status fr_dataset_read(const struct fr_dataset *ds, int64_t *idx, int64_t n, const struct fr_read_opts *ro,
                               uint8_t *out)
{
    if (n < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: negative image count", ds->source);
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->n)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: image index %lld out of range [0, %lld)", ds->source,
                            (long long)idx[i], (long long)ds->n);
    if (ro && ro->crop == FR_CROP_RANDOM &&
        !(ro->scale[0] > 0 && ro->scale[0] <= ro->scale[1] && ro->ratio[0] > 0 && ro->ratio[0] <= ro->ratio[1]))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: random crop needs 0 < scale[0] <= scale[1] and 0 < ratio[0] "
                                                    "<= ratio[1]", ds->source);
    if (ds->files)
        return fr_ds_files_read(ds, idx, n, ro, out);
    size_t isz = (size_t)ds->c * ds->h * ds->w;
    bool copy = !ro || (ro->crop == FR_CROP_CENTER && !(ro->hflip > 0));
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *src = ds->pixels + (size_t)idx[i] * isz;
        if (copy) {
            memcpy(out + (size_t)i * isz, src, isz);
            continue;
        }
        int win[4];
        bool flip = fr_ds_window(ro, idx[i], ds->h, ds->w, ds->h, ds->w, win);
        enum fr_status st = fr_img_resample(src, ds->c, ds->h, ds->w, win, flip, out + (size_t)i * isz, ds->c, ds->h,
                                            ds->w, FR_RESIZE_BILINEAR);
        if (st != FR_STATUS_OK)
            return st;
    }
    return FR_STATUS_OK;
}

enum fr_status fr_dataset_from_files(char *const *paths, const int32_t *labels, int64_t n, const char *name,
                                     const struct fr_dataset_opts *opts, struct fr_dataset **out)
{
    *out = NULL;
    struct fr_dataset *ds = fr_ds_alloc(name);
    if (!ds)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
    int max_label = -1;
    for (int64_t i = 0; labels && i < n; i++)
        max_label = labels[i] > max_label ? labels[i] : max_label;
    ds->n_classes = max_label + 1;
    enum fr_status st = fr_ds_load_images(ds, paths, n, labels, NULL, 0, opts);
    if (st == FR_STATUS_OK)
        st = fr_ds_default_class_names(ds);
    if (st != FR_STATUS_OK) {
        fr_dataset_free(ds);
        return st;
    }
    *out = ds;
    return FR_STATUS_OK;
}

char *fr_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *fr_path_join(const char *dir, const char *name)
{
    if (!dir || !dir[0] || name[0] == '/')
        return fr_strdup(name);
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (dir[a - 1] != '/')
        p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

char *fr_path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return fr_strdup(".");
    if (slash == path)
        return fr_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

enum fr_status fr_read_file(const char *path, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fr_error(FR_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            uint8_t *nb = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                fclose(f);
                return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory reading the file", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                int e = errno;
                free(buf);
                fclose(f);
                return fr_error(FR_STATUS_IO, "%s: read error: %s", path, strerror(e));
            }
            break;
        }
    }
    fclose(f);
    *data = buf;
    *size = n;
    return FR_STATUS_OK;
}

struct fr_dataset *fr_ds_alloc(const char *source)
{
    struct fr_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return NULL;
    ds->source = fr_strdup(source ? source : "");
    if (!ds->source) {
        free(ds);
        return NULL;
    }
    return ds;
}

void fr_dataset_free(struct fr_dataset *ds)
{
    if (!ds)
        return;
    free(ds->pixels);
    free(ds->labels);
    free(ds->soft);
    if (ds->class_names)
        for (int i = 0; i < ds->n_classes; i++)
            free(ds->class_names[i]);
    free(ds->class_names);
    if (ds->paths)
        for (int64_t i = 0; i < ds->n; i++)
            free(ds->paths[i]);
    free(ds->paths);
    free(ds->source);
    fr_ds_files_free(ds->files);
    free(ds);
}

enum fr_status fr_ds_default_class_names(struct fr_dataset *ds)
{
    if (ds->class_names || ds->n_classes <= 0)
        return FR_STATUS_OK;
    ds->class_names = calloc((size_t)ds->n_classes, sizeof(char *));
    if (!ds->class_names)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
    for (int i = 0; i < ds->n_classes; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", i);
        if (!(ds->class_names[i] = fr_strdup(buf)))
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
    }
    return FR_STATUS_OK;
}

enum fr_status fr_ds_apply_opts(struct fr_dataset *ds, const struct fr_dataset_opts *opts)
{
    if (!opts)
        return FR_STATUS_OK;
    if (opts->channels < 0 || opts->channels > 4 || opts->height < 0 || opts->width < 0 ||
        (opts->height == 0) != (opts->width == 0))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: bad requested size %dx%dx%d (give height and width, or "
                        "neither)", ds->source, opts->height, opts->width, opts->channels);
    int dc = opts->channels ? opts->channels : ds->c;
    int dh = opts->height ? opts->height : ds->h;
    int dw = opts->width ? opts->width : ds->w;
    if (dc == ds->c && dh == ds->h && dw == ds->w)
        return FR_STATUS_OK;
    size_t in_sz = (size_t)ds->c * ds->h * ds->w, out_sz = (size_t)dc * dh * dw, total;
    if (!fr_mul_ok(out_sz, (size_t)ds->n, &total))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: converted dataset too large", ds->source);
    uint8_t *px = malloc(total ? total : 1);
    if (!px)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory converting to %dx%dx%d", ds->source, dh, dw, dc);
    int win[4];
    fr_img_center_window(ds->h, ds->w, dh, dw, win);
    for (int64_t i = 0; i < ds->n; i++) {
        enum fr_status st = fr_img_resample(ds->pixels + (size_t)i * in_sz, ds->c, ds->h, ds->w, win, false,
                                            px + (size_t)i * out_sz, dc, dh, dw, opts->resize);
        if (st != FR_STATUS_OK) {
            free(px);
            return st;
        }
    }
    free(ds->pixels);
    ds->pixels = px;
    ds->c = dc;
    ds->h = dh;
    ds->w = dw;
    return FR_STATUS_OK;
}

enum fr_status fr_dataset_open(const char *spec, const struct fr_dataset_opts *opts, struct fr_dataset **out)
{
    *out = NULL;
    struct fr_dataset_opts def;
    if (!opts) {
        fr_dataset_opts_init(&def);
        opts = &def;
    }
    if (!spec || !spec[0])
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "empty dataset spec (want fmnist, idx:IMAGES,LABELS, folder:DIR "
                                                    "or csv:FILE)");
    if (!strcmp(spec, "fmnist") || !strncmp(spec, "fmnist:", 7))
        return fr_dataset_fmnist_open(spec[6] ? spec + 7 : opts->split, opts, out);
    if (!strncmp(spec, "folder:", 7))
        return fr_dataset_folder_open(spec + 7, opts, out);
    if (!strncmp(spec, "csv:", 4))
        return fr_dataset_csv_open(spec + 4, opts, out);
    if (!strncmp(spec, "idx:", 4)) {
        char *imgs = fr_strdup(spec + 4);
        if (!imgs)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "out of memory");
        char *comma = strchr(imgs, ',');
        const char *labs = NULL;
        if (comma) {
            *comma = 0;
            labs = comma[1] ? comma + 1 : NULL;
        }
        enum fr_status st = fr_dataset_idx_open(imgs, labs, opts, out);
        free(imgs);
        return st;
    }
    return fr_error(FR_STATUS_INVALID_ARGUMENT,
                    "unknown dataset spec '%s' (want fmnist, fmnist:test, idx:IMAGES,LABELS, folder:DIR or csv:FILE)",
                    spec);
}

enum fr_status fr_dataset_subset(const struct fr_dataset *ds, const int64_t *idx, int64_t n, bool drop_labels,
                                 struct fr_dataset **out)
{
    *out = NULL;
    if (n < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: negative subset size", ds->source);
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->n)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: subset index %lld out of range [0, %lld)", ds->source,
                            (long long)idx[i], (long long)ds->n);
    struct fr_dataset *s = fr_ds_alloc(ds->source);
    if (!s)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
    size_t isz = (size_t)ds->c * ds->h * ds->w;
    s->n = n;
    s->c = ds->c, s->h = ds->h, s->w = ds->w;
    s->n_classes = ds->n_classes;
    if (ds->pixels)
        s->pixels = malloc(isz * (size_t)n + 1);
    s->labels = malloc(sizeof(int32_t) * (size_t)n + 1);
    bool soft = ds->soft && !drop_labels;
    if (soft)
        s->soft = malloc(sizeof(float) * (size_t)n * ds->n_classes + 1);
    if (ds->paths)
        s->paths = calloc((size_t)n + 1, sizeof(char *));
    if (ds->class_names)
        s->class_names = calloc((size_t)ds->n_classes + 1, sizeof(char *));
    if ((ds->pixels && !s->pixels) || !s->labels || (soft && !s->soft) || (ds->paths && !s->paths) ||
        (ds->class_names && !s->class_names))
        goto oom;
    if (ds->files && fr_ds_files_subset(ds->files, idx, n, &s->files) != FR_STATUS_OK)
        goto oom;
    for (int i = 0; ds->class_names && i < ds->n_classes; i++)
        if (!(s->class_names[i] = fr_strdup(ds->class_names[i])))
            goto oom;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = idx[i];
        if (s->pixels)
            memcpy(s->pixels + (size_t)i * isz, ds->pixels + (size_t)j * isz, isz);
        s->labels[i] = drop_labels ? -1 : ds->labels[j];
        if (soft)
            memcpy(s->soft + (size_t)i * ds->n_classes, ds->soft + (size_t)j * ds->n_classes,
                   sizeof(float) * ds->n_classes);
        if (s->paths && !(s->paths[i] = fr_strdup(ds->paths[j])))
            goto oom;
    }
    *out = s;
    return FR_STATUS_OK;
oom:
    fr_dataset_free(s);
    return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory making a subset of %lld", ds->source, (long long)n);
}

void fr_dataset_class_counts(const struct fr_dataset *ds, int64_t *counts)
{
    for (int k = 0; k < ds->n_classes; k++)
        counts[k] = 0;
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->labels[i] >= 0 && ds->labels[i] < ds->n_classes)
            counts[ds->labels[i]]++;
}
