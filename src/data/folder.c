/* Image-folder datasets (DIR/<class>/<image> or DIR/<image>) and the one rule for which files are images. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/data_internal.h"

bool fr_image_name_ok(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    return base[0] != '.' && dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") ||
                                     !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".bmp"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

struct name_list {
    char **v;
    int64_t n, cap;
};

static bool list_push(struct name_list *l, char *s)
{
    if (!s)
        return false;
    if (l->n == l->cap) {
        int64_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, (size_t)nc * sizeof *nv);
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

void fr_image_list_free(char **list, int64_t n)
{
    for (int64_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

enum fr_status fr_image_list_dir(const char *dir, char ***paths, int64_t *n, char ***subdirs, int64_t *n_subdirs)
{
    *paths = NULL;
    *n = 0;
    if (subdirs)
        *subdirs = NULL, *n_subdirs = 0;
    DIR *d = opendir(dir);
    if (!d)
        return fr_error(FR_STATUS_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    struct name_list files = {0}, dirs = {0};
    struct dirent *e;
    enum fr_status st = FR_STATUS_OK;
    while (st == FR_STATUS_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *full = fr_path_join(dir, e->d_name);
        if (!full) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
            break;
        }
        /* a link is what it points to; a broken one stays an image name, to be reported when it is read */
        struct stat sb;
        bool isdir = stat(full, &sb) == 0 && S_ISDIR(sb.st_mode);
        if (isdir && subdirs) {
            if (!list_push(&dirs, fr_strdup(e->d_name)))
                st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
        } else if (!isdir && fr_image_name_ok(e->d_name)) {
            if (!list_push(&files, full))
                st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
            full = NULL;
        }
        free(full);
    }
    closedir(d);
    if (st != FR_STATUS_OK) {
        fr_image_list_free(files.v, files.n);
        fr_image_list_free(dirs.v, dirs.n);
        return st;
    }
    if (files.n)
        qsort(files.v, (size_t)files.n, sizeof(char *), cmp_str);
    if (dirs.n)
        qsort(dirs.v, (size_t)dirs.n, sizeof(char *), cmp_str);
    *paths = files.v;
    *n = files.n;
    if (subdirs)
        *subdirs = dirs.v, *n_subdirs = dirs.n;
    return FR_STATUS_OK;
}

enum fr_status fr_dataset_folder_open(const char *dir, const struct fr_dataset_opts *opts, struct fr_dataset **out)
{
    *out = NULL;
    char **classes = NULL, **top = NULL;
    int64_t n_classes = 0, n_top = 0;
    struct name_list paths = {0};
    int32_t *labels = NULL;
    char source[1024];
    snprintf(source, sizeof source, "folder:%s", dir);
    struct fr_dataset *ds = fr_ds_alloc(source);
    if (!ds)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
    enum fr_status st = fr_image_list_dir(dir, &top, &n_top, &classes, &n_classes);
    if (st != FR_STATUS_OK)
        goto done;
    if (n_classes > 0) {
        if (n_classes > INT32_MAX / 2) {
            st = fr_error(FR_STATUS_FORMAT, "%s: too many class directories", dir);
            goto done;
        }
        if (n_top)
            fr_log(FR_LOG_WARN, "%s: %lld images next to the class directories are ignored", dir, (long long)n_top);
        int64_t cap_labels = 0;
        for (int64_t k = 0; k < n_classes; k++) {
            char *cdir = fr_path_join(dir, classes[k]);
            char **files = NULL;
            int64_t nf = 0;
            st = cdir ? fr_image_list_dir(cdir, &files, &nf, NULL, NULL)
                      : fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
            if (st == FR_STATUS_OK && nf == 0)
                fr_log(FR_LOG_WARN, "%s: class directory has no images", cdir);
            for (int64_t i = 0; st == FR_STATUS_OK && i < nf; i++) {
                if (!list_push(&paths, files[i])) {
                    st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
                    files[i] = NULL;
                    break;
                }
                files[i] = NULL; /* the list owns it */
                if (paths.n > cap_labels) {
                    cap_labels = paths.cap;
                    int32_t *nl = realloc(labels, (size_t)cap_labels * sizeof *nl);
                    if (!nl) {
                        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", dir);
                        break;
                    }
                    labels = nl;
                }
                labels[paths.n - 1] = (int32_t)k;
            }
            fr_image_list_free(files, nf);
            free(cdir);
            if (st != FR_STATUS_OK)
                goto done;
        }
        ds->n_classes = (int)n_classes;
        ds->class_names = classes; /* the dataset takes the sorted names */
        classes = NULL;
        n_classes = 0;
    } else {
        paths.v = top, paths.n = paths.cap = n_top;
        top = NULL;
        n_top = 0;
    }
    if (paths.n == 0) {
        st = fr_error(FR_STATUS_NOT_FOUND, "%s: no .png/.jpg/.jpeg/.bmp images found", dir);
        goto done;
    }
    st = fr_ds_load_images(ds, paths.v, paths.n, labels, NULL, 0, opts);
done:
    fr_image_list_free(classes, n_classes);
    fr_image_list_free(top, n_top);
    fr_image_list_free(paths.v, paths.n);
    free(labels);
    if (st != FR_STATUS_OK) {
        fr_dataset_free(ds);
        return st;
    }
    *out = ds;
    return FR_STATUS_OK;
}
