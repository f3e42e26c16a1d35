/* Training sets built from a teacher's outputs: a Noisy Student round's set (labeled images, repeated, plus the
 * teacher's pseudo-labels) and distillation's cached teacher logits (input not augmented, or flipped alone). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "frugal/augment.h"
#include "frugal/recipes.h"
#include "recipes/recipes_internal.h"

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

int fr_fit_teacher_views(const struct fr_fit_opts *o)
{
    if (o->cutmix > 0 || o->mixup > 0)
        return 0;
    struct fr_aug_policy *pol = NULL;
    if (!o->augment || !*o->augment)
        return 1;
    if (fr_aug_policy_parse(o->augment, &pol) != FR_STATUS_OK) /* fr_fit reports it */
        return 0;
    int views = !fr_aug_policy_has_ops(pol) && !fr_aug_policy_mix(pol) ? 1 : fr_aug_policy_mirror_only(pol) ? 2 : 0;
    fr_aug_policy_free(pol);
    return views;
}

enum fr_status fr_trainset_cache_teacher(struct fr_trainset *ts, struct fr_net *teacher)
{
    return fr_trainset_cache_teachers(ts, &teacher, 1, false, false);
}

enum fr_status fr_trainset_cache_teachers(struct fr_trainset *ts, struct fr_net *const *teachers, int n_teachers,
                                          bool out_of_fold, bool mirrored)
{
    int k = ts->n_classes;
    if (n_teachers < 1)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "teacher logits: no teacher");
    for (int t = 0; t < n_teachers; t++)
        if (teachers[t]->n_classes != k)
            return n_teachers > 1 ? fr_error(FR_STATUS_SHAPE, "teacher logits: %steacher %d has %d classes, the "
                                                              "training set %d", out_of_fold ? "fold " : "", t,
                                             teachers[t]->n_classes, k)
                                  : fr_error(FR_STATUS_SHAPE, "teacher logits: the teacher has %d classes, the "
                                                              "training set %d", teachers[t]->n_classes, k);
    free(ts->teacher);
    const int views = mirrored ? 2 : 1, width = views * k; /* a row: the image's logits, then its mirror image's */
    ts->teacher_views = views;
    size_t rows = (size_t)(ts->n > 0 ? ts->n : 1);
    ts->teacher = malloc((size_t)(ts->cap > ts->n ? ts->cap : (int64_t)rows) * (size_t)width * sizeof(float));
    int64_t *ids = malloc(rows * sizeof *ids);
    int64_t *pos = malloc(rows * sizeof *pos);
    float *lg = malloc(rows * (size_t)k * sizeof(float));
    enum fr_status st = ts->teacher && ids && pos && lg ? FR_STATUS_OK
                                                        : fr_error(FR_STATUS_OUT_OF_MEMORY, "teacher logits: out of memory");
    /* one batched prediction per (source dataset, teacher, view): out of fold, teacher t labels the images of source 0
     * in its fold; otherwise every teacher labels every image and their logits are averaged */
    for (int s = 0; s < 2 && st == FR_STATUS_OK; s++)
        for (int tv = 0; tv < n_teachers * views && st == FR_STATUS_OK; tv++) {
            const int t = tv / views, v = tv % views;
            bool fold = out_of_fold && s == 0;
            int64_t m = 0;
            for (int64_t i = 0; i < ts->n; i++)
                if (ts->src[i] == s && (!fold || ts->idx[i] % n_teachers == t)) {
                    ids[m] = ts->idx[i];
                    pos[m++] = i;
                }
            if (m > 0)
                st = v ? fr_net_predict_mirrored(teachers[t], ts->ds[s], ids, m, lg)
                       : fr_net_predict(teachers[t], ts->ds[s], ids, m, lg);
            float w = fold ? 1.0f : 1.0f / (float)n_teachers;
            for (int64_t i = 0; st == FR_STATUS_OK && i < m; i++) {
                float *row = ts->teacher + pos[i] * width + v * k;
                for (int c = 0; c < k; c++)
                    row[c] = (!fold && t > 0 ? row[c] : 0.0f) + w * lg[i * k + c];
            }
        }
    free(ids);
    free(pos);
    free(lg);
    if (st != FR_STATUS_OK) {
        free(ts->teacher);
        ts->teacher = NULL;
        ts->teacher_views = 0;
    }
    return st;
}

enum fr_status fr_split_hold_out_fold(struct fr_split *sp, int fold, int n_folds)
{
    if (n_folds < 2 || fold < 0 || fold >= n_folds)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fold %d of %d: give 0 <= fold < folds, folds >= 2", fold, n_folds);
    int64_t out = 0;
    for (int64_t i = 0; i < sp->n_labeled; i++)
        out += sp->labeled[i] % n_folds == fold;
    if (out == sp->n_labeled)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fold %d of %d holds every labeled image: none left to train on",
                        fold, n_folds);
    int64_t *unl = realloc(sp->unlabeled, (size_t)(sp->n_unlabeled + out + 1) * sizeof *unl);
    if (!unl)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "fold split: out of memory");
    sp->unlabeled = unl;
    int64_t kept = 0;
    for (int64_t i = 0; i < sp->n_labeled; i++) {
        int64_t j = sp->labeled[i];
        if (j % n_folds == fold)
            unl[sp->n_unlabeled++] = j;
        else
            sp->labeled[kept++] = j;
    }
    sp->n_labeled = kept;
    return FR_STATUS_OK;
}

/* the test accuracy of one teacher, of an ensemble's mean logits, or (each_alone) the mean of the teachers' */
enum fr_status fr_teachers_accuracy(struct fr_net *const *t, int n, bool each_alone, const struct fr_dataset *test,
                                    double *acc)
{
    int k = t[0]->n_classes;
    float *sum = calloc((size_t)(test->n > 0 ? test->n : 1) * (size_t)k, sizeof *sum);
    float *lg = malloc((size_t)(test->n > 0 ? test->n : 1) * (size_t)k * sizeof *lg);
    enum fr_status st = sum && lg ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "teacher accuracy: out of memory");
    int64_t right = 0, seen = 0;
    for (int j = 0; j < n && st == FR_STATUS_OK; j++) {
        if ((st = fr_net_predict(t[j], test, NULL, test->n, lg)) != FR_STATUS_OK)
            break;
        for (int64_t i = 0; i < test->n * k; i++)
            sum[i] = each_alone ? lg[i] : sum[i] + lg[i];
        for (int64_t i = 0; (each_alone || j == n - 1) && i < test->n; i++) {
            int best = 0;
            for (int c = 1; c < k; c++)
                best = sum[i * k + c] > sum[i * k + best] ? c : best;
            if (test->labels && test->labels[i] >= 0 && !isnan(sum[i * k]))
                seen++, right += best == test->labels[i];
        }
    }
    free(sum);
    free(lg);
    *acc = seen ? (double)right / (double)seen : 0;
    return st == FR_STATUS_OK && !seen ? fr_error(FR_STATUS_INVALID_ARGUMENT, "no labeled test image") : st;
}
