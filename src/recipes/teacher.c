/* Training sets built from a teacher's outputs: a Noisy Student round's set (labeled images, repeated, plus the
 * teacher's pseudo-labels) and distillation's cached teacher logits (when the input is not augmented). */
#include <stdlib.h>
#include <string.h>

#include "frugal/recipes.h"

enum fr_status fr_pseudo_trainset(struct fr_net *teacher, const struct fr_dataset *ds, const int64_t *labeled,
                                  int64_t n_labeled, int labeled_repeat, const int64_t *unl, int64_t n_unl,
                                  const struct fr_pseudo_opts *po, bool soft, struct fr_trainset *ts,
                                  struct fr_pseudo_report *report)
{
    memset(ts, 0, sizeof *ts);
    if (report)
        memset(report, 0, sizeof *report);
    struct fr_pseudo ps = {0};
    enum fr_status st = fr_pseudo_label(teacher, ds, unl, n_unl, po, &ps);
    if (st != FR_STATUS_OK)
        return st;
    ts->n_classes = teacher->n_classes;
    /* the labeled images repeated so they keep a share of every batch next to many pseudo-labeled ones */
    for (int rep = 0; rep < (labeled_repeat > 0 ? labeled_repeat : 1) && st == FR_STATUS_OK; rep++)
        st = fr_trainset_add(ts, 0, ds, labeled, n_labeled, NULL, NULL);
    if (st == FR_STATUS_OK && ps.n > 0)
        st = fr_trainset_add(ts, 0, ds, ps.idx, ps.n, ps.label, soft ? ps.prob : NULL);
    if (st == FR_STATUS_OK && report) { /* the report's arrays move to the caller */
        *report = ps.report;
        memset(&ps.report, 0, sizeof ps.report);
    }
    fr_pseudo_free(&ps);
    if (st != FR_STATUS_OK)
        fr_trainset_free(ts);
    return st;
}

enum fr_status fr_trainset_cache_teacher(struct fr_trainset *ts, struct fr_net *teacher)
{
    int k = ts->n_classes;
    if (teacher->n_classes != k)
        return fr_error(FR_STATUS_SHAPE, "teacher logits: the teacher has %d classes, the training set %d",
                        teacher->n_classes, k);
    free(ts->teacher);
    ts->teacher = malloc((size_t)((ts->cap > ts->n ? ts->cap : ts->n > 0 ? ts->n : 1) * k) * sizeof(float));
    int64_t *ids = malloc((size_t)(ts->n > 0 ? ts->n : 1) * sizeof *ids);
    int64_t *pos = malloc((size_t)(ts->n > 0 ? ts->n : 1) * sizeof *pos);
    float *lg = malloc((size_t)((ts->n > 0 ? ts->n : 1) * k) * sizeof(float));
    enum fr_status st = ts->teacher && ids && pos && lg ? FR_STATUS_OK
                                                        : fr_error(FR_STATUS_OUT_OF_MEMORY, "teacher logits: out of memory");
    for (int s = 0; s < 2 && st == FR_STATUS_OK; s++) { /* one batched prediction per source dataset */
        int64_t m = 0;
        for (int64_t i = 0; i < ts->n; i++)
            if (ts->src[i] == s) {
                ids[m] = ts->idx[i];
                pos[m++] = i;
            }
        if (m > 0)
            st = fr_net_predict(teacher, ts->ds[s], ids, m, lg);
        for (int64_t i = 0; st == FR_STATUS_OK && i < m; i++)
            memcpy(ts->teacher + pos[i] * k, lg + i * k, (size_t)k * sizeof(float));
    }
    free(ids);
    free(pos);
    free(lg);
    if (st != FR_STATUS_OK) {
        free(ts->teacher);
        ts->teacher = NULL;
    }
    return st;
}
