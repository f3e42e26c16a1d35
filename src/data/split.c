/* Seeded class-balanced splits (labeled budget, validation carved from it, the rest unlabeled) and shuffles. */
#include <string.h>

#include "data/data_internal.h"
#include "frugal/rng_host.h"

/* Streams of FR_RNG_SPLIT: per-class shuffles use step = class; these two pick the classes that get the
 * remainder of an uneven division. */
#define SPLIT_STEP_BUDGET_EXTRA 0xFFFFFFFFu
#define SPLIT_STEP_VAL_EXTRA 0xFFFFFFFEu

void fr_shuffle_indices(int64_t *perm, int64_t n, uint64_t seed, uint32_t purpose, uint32_t step)
{
    for (int64_t i = n - 1; i > 0; i--) {
        double u = fr_rng_uniform_f64(seed, purpose, step, (uint32_t)((uint64_t)i >> 32), (uint32_t)i);
        int64_t j = (int64_t)(u * (double)(i + 1));
        if (j > i)
            j = i;
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void fr_split_free(struct fr_split *s)
{
    if (!s)
        return;
    free(s->labeled);
    free(s->val);
    free(s->unlabeled);
    memset(s, 0, sizeof *s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Spreads `total` over the K present classes as evenly as their caps allow (cap NULL = none): every class gets
 * the same share, a class whose cap is below it keeps all it has and the rest is shared by the others; the last
 * `remainder` single images go to classes picked by a seeded permutation. With no cap binding this is total/K
 * each, one more for `total % K` classes. */
static void spread(int64_t *quota, const int *present, int k_present, int64_t total, uint64_t seed, uint32_t step,
                   const int64_t *cap)
{
    for (int i = 0; i < k_present; i++)
        quota[present[i]] = 0;
    int64_t left = total;
    for (;;) { /* equal shares of what is left among the classes with room */
        int open = 0;
        for (int i = 0; i < k_present; i++)
            open += !cap || quota[present[i]] < cap[present[i]];
        if (open == 0 || left / open == 0)
            break;
        int64_t share = left / open;
        for (int i = 0; i < k_present; i++) {
            int k = present[i];
            int64_t add = cap && cap[k] - quota[k] < share ? cap[k] - quota[k] : share;
            quota[k] += add;
            left -= add;
        }
    }
    if (left <= 0)
        return;
    int64_t *order = malloc(sizeof(int64_t) * (size_t)k_present);
    if (!order) { /* out of memory: give the rest to the first classes with room */
        for (int i = 0; i < k_present && left > 0; i++)
            if (!cap || quota[present[i]] < cap[present[i]])
                quota[present[i]]++, left--;
        return;
    }
    for (int i = 0; i < k_present; i++)
        order[i] = i;
    fr_shuffle_indices(order, k_present, seed, FR_RNG_SPLIT, step);
    for (int i = 0; i < k_present && left > 0; i++) {
        int k = present[order[i]];
        if (cap && quota[k] >= cap[k])
            continue;
        quota[k]++;
        left--;
    }
    free(order);
}

enum fr_status fr_split_make(const struct fr_dataset *ds, int64_t n_budget, int64_t n_val, uint64_t seed,
                             struct fr_split *out)
{
    memset(out, 0, sizeof *out);
    int K = ds->n_classes;
    if (n_val < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: negative validation size", ds->source);
    int64_t *counts = calloc((size_t)K + 1, sizeof(int64_t));
    int64_t *quota = calloc((size_t)K + 1, sizeof(int64_t));
    int64_t *vquota = calloc((size_t)K + 1, sizeof(int64_t));
    int64_t *start = calloc((size_t)K + 2, sizeof(int64_t));
    int *present = calloc((size_t)K + 1, sizeof(int));
    int64_t *byclass = malloc(sizeof(int64_t) * (size_t)ds->n + 1);
    out->labeled = malloc(sizeof(int64_t) * (size_t)ds->n + 1);
    out->val = malloc(sizeof(int64_t) * (size_t)ds->n + 1);
    out->unlabeled = malloc(sizeof(int64_t) * (size_t)ds->n + 1);
    enum fr_status st = FR_STATUS_OK;
    if (!counts || !quota || !vquota || !start || !present || !byclass || !out->labeled || !out->val ||
        !out->unlabeled) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory for a split", ds->source);
        goto done;
    }
    fr_dataset_class_counts(ds, counts);
    int64_t n_lab = 0;
    int k_present = 0;
    for (int k = 0; k < K; k++) {
        n_lab += counts[k];
        if (counts[k] > 0)
            present[k_present++] = k;
    }
    if (n_budget <= 0 || n_budget >= n_lab) {
        n_budget = n_lab;
        for (int k = 0; k < K; k++)
            quota[k] = counts[k];
    } else {
        spread(quota, present, k_present, n_budget, seed, SPLIT_STEP_BUDGET_EXTRA, counts);
    }
    if (n_val > n_budget) {
        st = fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: validation split of %lld is larger than the %lld labels",
                      ds->source, (long long)n_val, (long long)n_budget);
        goto done;
    }
    if (n_val > 0) {
        int64_t *vcap = calloc((size_t)K + 1, sizeof(int64_t));
        if (!vcap) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory for a split", ds->source);
            goto done;
        }
        for (int k = 0; k < K; k++)
            vcap[k] = quota[k] > 1 ? quota[k] - 1 : quota[k];
        int64_t room = 0;
        for (int k = 0; k < K; k++)
            room += vcap[k];
        spread(vquota, present, k_present, n_val, seed, SPLIT_STEP_VAL_EXTRA, room >= n_val ? vcap : quota);
        free(vcap);
    }
    for (int k = 0; k < K; k++) {
        if (quota[k] > counts[k]) {
            st = fr_error(FR_STATUS_INVALID_ARGUMENT,
                          "%s: class %d has %lld labeled images, a balanced split of %lld needs %lld", ds->source, k,
                          (long long)counts[k], (long long)n_budget, (long long)quota[k]);
            goto done;
        }
        if (vquota[k] > quota[k]) {
            st = fr_error(FR_STATUS_INVALID_ARGUMENT,
                          "%s: class %d gets %lld labels, fewer than its %lld validation images", ds->source, k,
                          (long long)quota[k], (long long)vquota[k]);
            goto done;
        }
        start[k + 1] = start[k] + counts[k];
    }
    /* indices of each class, ascending, then shuffled with the class's own stream (so a larger budget with the
     * same seed and validation size keeps every image of a smaller one) */
    int64_t *fill = calloc((size_t)K + 1, sizeof(int64_t));
    if (!fill) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory for a split", ds->source);
        goto done;
    }
    for (int64_t i = 0; i < ds->n; i++) {
        int32_t l = ds->labels[i];
        if (l >= 0 && l < K)
            byclass[start[l] + fill[l]++] = i;
        else
            out->unlabeled[out->n_unlabeled++] = i;
    }
    free(fill);
    for (int k = 0; k < K; k++) {
        int64_t *v = byclass + start[k];
        fr_shuffle_indices(v, counts[k], seed, FR_RNG_SPLIT, (uint32_t)k);
        for (int64_t i = 0; i < counts[k]; i++) {
            if (i < vquota[k])
                out->val[out->n_val++] = v[i];
            else if (i < quota[k])
                out->labeled[out->n_labeled++] = v[i];
            else
                out->unlabeled[out->n_unlabeled++] = v[i];
        }
    }
    qsort(out->labeled, (size_t)out->n_labeled, sizeof(int64_t), cmp_i64);
    qsort(out->val, (size_t)out->n_val, sizeof(int64_t), cmp_i64);
    qsort(out->unlabeled, (size_t)out->n_unlabeled, sizeof(int64_t), cmp_i64);
done:
    free(counts);
    free(quota);
    free(vquota);
    free(start);
    free(present);
    free(byclass);
    if (st != FR_STATUS_OK)
        fr_split_free(out);
    return st;
}
