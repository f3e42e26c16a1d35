/* Class filters: a dataset restricted to a list of classes ("5-9", "0,2,4"), renumbered 0.. with their names. */
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

enum fr_status fr_dataset_filter_classes(const struct fr_dataset *ds, const char *list, struct fr_dataset **out)
{
    *out = NULL;
    int k = ds->n_classes;
    if (k <= 0 || !ds->labels)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "--classes: %s has no labels", ds->source);
    int *map = malloc((size_t)k * sizeof *map);
    if (!map)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
    for (int i = 0; i < k; i++)
        map[i] = -1;
    int nk = 0;
    const char *p = list;
    bool ok = *p != 0;
    while (ok && *p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        ok = end != p;
        p = end;
        if (ok && *p == '-') {
            b = strtol(p + 1, &end, 10);
            ok = end != p + 1;
            p = end;
        }
        ok = ok && a >= 0 && b < k && a <= b;
        for (long c = a; ok && c <= b; c++)
            if (map[c] < 0)
                map[c] = nk++;
        if (ok && *p == ',')
            p++;
        else if (*p)
            ok = false;
    }
    if (!ok || nk == 0) {
        free(map);
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "--classes %s: expected a list like 5-9 or 0,2,4 of classes below %d",
                        list, k);
    }
    int64_t n = 0;
    int64_t *idx = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *idx);
    char **names = calloc((size_t)nk, sizeof *names);
    enum fr_status st = idx && names ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
    for (int64_t i = 0; st == FR_STATUS_OK && i < ds->n; i++)
        if (ds->labels[i] >= 0 && ds->labels[i] < k && map[ds->labels[i]] >= 0)
            idx[n++] = i;
    struct fr_dataset *sub = NULL;
    if (st == FR_STATUS_OK)
        st = fr_dataset_subset(ds, idx, n, false, &sub);
    free(idx);
    for (int c = 0; st == FR_STATUS_OK && c < k; c++)
        if (map[c] >= 0 && !(names[map[c]] = fr_strdup(ds->class_names && ds->class_names[c] ? ds->class_names[c] : "?")))
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
    if (st != FR_STATUS_OK) {
        for (int c = 0; names && c < nk; c++)
            free(names[c]);
        free(names);
        free(map);
        fr_dataset_free(sub);
        return st;
    }
    for (int64_t i = 0; i < sub->n; i++)
        sub->labels[i] = map[sub->labels[i]];
    if (sub->class_names)
        for (int c = 0; c < sub->n_classes; c++)
            free(sub->class_names[c]);
    free(sub->class_names);
    sub->class_names = names;
    free(sub->soft); /* soft labels of other classes make no sense after renumbering */
    sub->soft = NULL;
    sub->n_classes = nk;
    free(map);
    *out = sub;
    return FR_STATUS_OK;
}
