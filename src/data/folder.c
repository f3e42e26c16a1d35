/* Image-folder datasets (DIR/<class>/<image> or DIR/<image>) and the image-list decoder shared with CSV lists. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/data_internal.h"

enum fr_status fr_ds_load_images(struct fr_dataset *ds, char *const *paths, int64_t n, const int32_t *labels,
                                 const float *soft, int n_soft, const struct fr_dataset_opts *opts)
{
    struct fr_dataset_opts def;
    if (!opts) {
        fr_dataset_opts_init(&def);
        opts = &def;
    }
    if ((opts->height == 0) != (opts->width == 0))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: give both height and width, or neither", ds->source);
    int c = opts->channels, h = opts->height, w = opts->width;
    size_t isz = 0;
    ds->labels = malloc(sizeof(int32_t) * (size_t)n + 1);
    ds->paths = calloc((size_t)n + 1, sizeof(char *));
    if (soft && n_soft > 0)
        ds->soft = malloc(sizeof(float) * (size_t)n * n_soft + 1);
    if (!ds->labels || !ds->paths || (soft && n_soft > 0 && !ds->soft))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory for %lld images", ds->source, (long long)n);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        uint8_t *img;
        int ic, ih, iw;
        /* channels follow the first image; sizes only resize when asked (else a mismatch is a bad image) */
        enum fr_status st = fr_image_load(paths[i], c, opts->height, opts->width, opts->resize, &img, &ic, &ih, &iw);
        if (st == FR_STATUS_OK && isz && (ih != h || iw != w)) {
            st = fr_error(FR_STATUS_FORMAT, "%s: image is %dx%d, the first one %dx%d (set a size to resize)",
                          paths[i], ih, iw, h, w);
            free(img);
        }
        if (st == FR_STATUS_OUT_OF_MEMORY || st == FR_STATUS_INVALID_ARGUMENT)
            return st;
        if (st != FR_STATUS_OK) {
            if (opts->on_bad_image == FR_BAD_IMAGE_FAIL)
                return st;
            fr_log(FR_LOG_WARN, "%s (skipped)", fr_last_error());
            continue;
        }
        if (!isz) {
            c = ic, h = ih, w = iw;
            isz = (size_t)c * h * w;
            size_t total;
            if (!fr_mul_ok(isz, (size_t)(n - i), &total) || !(ds->pixels = malloc(total))) {
                free(img);
                return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory for %lld images of %dx%dx%d", ds->source,
                                (long long)(n - i), h, w, c);
            }
            ds->c = c, ds->h = h, ds->w = w;
        }
        memcpy(ds->pixels + (size_t)k * isz, img, isz);
        free(img);
        if (!(ds->paths[k] = fr_strdup(paths[i])))
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
        ds->labels[k] = labels ? labels[i] : -1;
        if (ds->soft)
            memcpy(ds->soft + (size_t)k * n_soft, soft + (size_t)i * n_soft, sizeof(float) * n_soft);
        ds->n = ++k;
    }
    if (k == 0)
        return fr_error(FR_STATUS_FORMAT, "%s: no readable image among %lld", ds->source, (long long)n);
    return FR_STATUS_OK;
}

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") ||
                   !strcasecmp(dot, ".bmp"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

struct name_list {
    char **v;
    size_t n, cap;
};

static bool list_push(struct name_list *l, char *s)
{
    if (!s)
        return false;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) {
            free(s);
            return false;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
    return true;
}

static void list_free(struct name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Sorted names of the entries of dir (hidden ones skipped): subdirectories into dirs, images into files. */
static enum fr_status list_dir(const char *dir, struct name_list *dirs, struct name_list *files)
{
    DIR *d = opendir(dir);
    if (!d)
        return fr_error(FR_STATUS_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    struct dirent *e;
    enum fr_status st = FR_STATUS_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *full = fr_path_join(dir, e->d_name);
        if (!full) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
            break;
        }
        struct stat sb;
        bool isdir = stat(full, &sb) == 0 && S_ISDIR(sb.st_mode);
        free(full);
        if (isdir && dirs) {
            if (!list_push(dirs, fr_strdup(e->d_name)))
                st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
        } else if (!isdir && is_image_name(e->d_name)) {
            if (!list_push(files, fr_strdup(e->d_name)))
                st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
        }
        if (st != FR_STATUS_OK)
            break;
    }
    closedir(d);
    if (dirs && dirs->n)
        qsort(dirs->v, dirs->n, sizeof(char *), cmp_str);
    if (files->n)
        qsort(files->v, files->n, sizeof(char *), cmp_str);
    return st;
}

enum fr_status fr_dataset_folder_open(const char *dir, const struct fr_dataset_opts *opts, struct fr_dataset **out)
{
    *out = NULL;
    struct name_list classes = {0}, top = {0}, paths = {0};
    int32_t *labels = NULL;
    char source[1024];
    snprintf(source, sizeof source, "folder:%s", dir);
    struct fr_dataset *ds = fr_ds_alloc(source);
    if (!ds)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
    enum fr_status st = list_dir(dir, &classes, &top);
    if (st != FR_STATUS_OK)
        goto done;
    if (classes.n > 0) {
        if (classes.n > INT32_MAX / 2) {
            st = fr_error(FR_STATUS_FORMAT, "%s: too many class directories", dir);
            goto done;
        }
        if (top.n)
            fr_log(FR_LOG_WARN, "%s: %zu images next to the class directories are ignored", dir, top.n);
        size_t cap_labels = 0;
        for (size_t k = 0; k < classes.n; k++) {
            char *cdir = fr_path_join(dir, classes.v[k]);
            struct name_list files = {0};
            st = cdir ? list_dir(cdir, NULL, &files) : fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
            if (st == FR_STATUS_OK && files.n == 0)
                fr_log(FR_LOG_WARN, "%s: class directory has no images", cdir);
            for (size_t i = 0; st == FR_STATUS_OK && i < files.n; i++) {
                if (!list_push(&paths, fr_path_join(cdir, files.v[i]))) {
                    st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
                    break;
                }
                if (paths.n > cap_labels) {
                    cap_labels = paths.cap;
                    int32_t *nl = realloc(labels, cap_labels * sizeof *nl);
                    if (!nl) {
                        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
                        break;
                    }
                    labels = nl;
                }
                labels[paths.n - 1] = (int32_t)k;
            }
            list_free(&files);
            free(cdir);
            if (st != FR_STATUS_OK)
                goto done;
        }
        ds->n_classes = (int)classes.n;
        ds->class_names = classes.v; /* the dataset takes the sorted names */
        classes.v = NULL;
        classes.n = 0;
    } else {
        for (size_t i = 0; i < top.n; i++)
            if (!list_push(&paths, fr_path_join(dir, top.v[i]))) {
                st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
                goto done;
            }
    }
    if (paths.n == 0) {
        st = fr_error(FR_STATUS_NOT_FOUND, "%s: no .png/.jpg/.jpeg/.bmp images found", dir);
        goto done;
    }
    st = fr_ds_load_images(ds, paths.v, (int64_t)paths.n, labels, NULL, 0, opts);
done:
    list_free(&classes);
    list_free(&top);
    list_free(&paths);
    free(labels);
    if (st != FR_STATUS_OK) {
        fr_dataset_free(ds);
        return st;
    }
    *out = ds;
    return FR_STATUS_OK;
}
