/* Training sets: the images (by dataset and index) a training run draws from, with their hard, soft or teacher
 * targets, grown as sets are added (fr_trainset_add) and freed in one call. */
#include <stdlib.h>
#include <string.h>

#include "frugal/recipes.h"
#include "recipes/recipes_internal.h"

static enum fr_status ts_reserve(struct fr_trainset *ts, int64_t need)
{
    if (need <= ts->cap)
        return FR_STATUS_OK;
    int64_t cap = ts->cap ? ts->cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *src = realloc(ts->src, (size_t)cap);
    if (src)
        ts->src = src;
    int64_t *idx = src ? realloc(ts->idx, (size_t)cap * sizeof *idx) : NULL;
    if (idx)
        ts->idx = idx;
    int32_t *lab = idx ? realloc(ts->label, (size_t)cap * sizeof *lab) : NULL;
    if (lab)
        ts->label = lab;
    bool ok = lab != NULL;
    if (ok && ts->soft) {
        float *s = realloc(ts->soft, (size_t)(cap * ts->n_classes) * sizeof(float));
        ok = s != NULL;
        if (s)
            ts->soft = s;
    }
    if (ok && ts->teacher) {
        float *s = realloc(ts->teacher, (size_t)(cap * fr_trainset_teacher_width(ts)) * sizeof(float));
        ok = s != NULL;
        if (s)
            ts->teacher = s;
    }
    if (!ok)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "trainset: out of memory");
    ts->cap = cap;
    return FR_STATUS_OK;
}

enum fr_status fr_trainset_add(struct fr_trainset *ts, int which, const struct fr_dataset *ds, const int64_t *idx,
                               int64_t n, const int32_t *labels, const float *soft)
{
    if (which < 0 || which > 1 || !ds)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainset: bad dataset slot");
    if (ts->ds[which] && ts->ds[which] != ds)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainset: slot %d holds another dataset", which);
    if (ts->n_classes <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainset: set n_classes first");
    ts->ds[which] = ds;
    int k = ts->n_classes;
    if (soft && !ts->soft) { /* switch the whole set to soft targets: one-hot rows for what is there */
        ts->soft = calloc((size_t)((ts->cap > 0 ? ts->cap : 1) * k), sizeof(float));
        if (!ts->soft)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "trainset: out of memory");
        for (int64_t i = 0; i < ts->n; i++)
            if (ts->label[i] >= 0)
                ts->soft[i * k + ts->label[i]] = 1.0f;
    }
    enum fr_status st = ts_reserve(ts, ts->n + n);
    if (st != FR_STATUS_OK)
        return st;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = idx ? idx[i] : i, e = ts->n + i;
        if (j < 0 || j >= ds->n)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainset: index %lld out of range", (long long)j);
        int32_t y = labels ? labels[i] : (ds->labels ? ds->labels[j] : -1);
        if (y >= k)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: image %lld has label %d but the model has %d classes",
                            ds->source, (long long)j, y, k);
        ts->src[e] = (uint8_t)which;
        ts->idx[e] = j;
        ts->label[e] = y;
        if (ts->soft) {
            float *row = ts->soft + e * k;
            if (soft)
                memcpy(row, soft + i * k, (size_t)k * sizeof(float));
            else {
                memset(row, 0, (size_t)k * sizeof(float));
                if (y >= 0)
                    row[y] = 1.0f;
            }
        }
    }
    ts->n += n;
    return FR_STATUS_OK;
}

void fr_trainset_free(struct fr_trainset *ts)
{
    free(ts->src);
    free(ts->idx);
    free(ts->label);
    free(ts->soft);
    free(ts->teacher);
    memset(ts, 0, sizeof *ts);
}
