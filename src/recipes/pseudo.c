/* Pseudo-labelling: the un-noised teacher's probabilities (optionally averaged over its mirror images and over
 * more teachers), a confidence threshold, Noisy Student's class balancing (the most confident images of frequent
 * classes, duplicates of rare ones) and a report of what was kept (count, accuracy, class histogram). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/recipes.h"
#include "recipes/recipes_internal.h"

void fr_pseudo_free(struct fr_pseudo *p)
{
    if (!p)
        return;
    free(p->idx);
    free(p->label);
    free(p->prob);
    free(p->conf);
    fr_pseudo_report_free(&p->report);
    memset(p, 0, sizeof *p);
}

void fr_pseudo_report_free(struct fr_pseudo_report *r)
{
    if (!r)
        return;
    free(r->class_rows);
    free(r->class_confident);
    memset(r, 0, sizeof *r);
}

enum fr_status fr_pseudo_check(const struct fr_pseudo_opts *o)
{
    if (!(o->threshold >= 0.0f && o->threshold <= 1.0f))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "pseudo-labels: threshold %g is outside [0, 1]", (double)o->threshold);
    if (!(o->temperature >= 0.0f) || !isfinite(o->temperature))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "pseudo-labels: temperature %g must be > 0", (double)o->temperature);
    if (o->per_class < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "pseudo-labels: %lld images per class", (long long)o->per_class);
    if (o->n_teachers < 0 || (o->n_teachers > 0 && !o->teachers))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "pseudo-labels: %d more teachers without a list", o->n_teachers);
    return FR_STATUS_OK;
}

/* one teacher's softmax(logits / temp) of images idx[0..n) of ds, mirrored when flip, added to acc [n, k];
 * rows of unreadable images (NaN logits) become NaN */
static enum fr_status add_probs(struct fr_net *t, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                                bool flip, float temp, double *acc, float *logits)
{
    const int k = t->n_classes;
    enum fr_status st = flip ? fr_net_predict_mirrored(t, ds, idx, n, logits) : fr_net_predict(t, ds, idx, n, logits);
    for (int64_t i = 0; st == FR_STATUS_OK && i < n; i++) {
        const float *z = logits + i * k;
        double *p = acc + i * k;
        float mx = z[0];
        for (int c = 1; c < k; c++)
            mx = z[c] > mx ? z[c] : mx;
        double s = 0;
        for (int c = 0; c < k; c++)
            s += exp(((double)z[c] - mx) / temp);
        for (int c = 0; c < k; c++)
            p[c] += exp(((double)z[c] - mx) / temp) / s; /* NaN logits stay NaN */
    }
    return st;
}

/* ranks kept images within a class: most confident first, then by position (a total order: qsort is stable here) */
struct rank {
    float conf;
    int64_t pos;
};

static int by_conf_desc(const void *a, const void *b)
{
    const struct rank *x = a, *y = b;
    if (x->conf != y->conf)
        return x->conf > y->conf ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* row r of out = image i of the labeled list */
static void emit(struct fr_pseudo *out, int64_t r, int64_t i, const int64_t *idx, const int32_t *lab,
                 const float *conf, const double *acc)
{
    const int k = out->n_classes;
    out->idx[r] = idx ? idx[i] : i;
    out->label[r] = lab[i];
    out->conf[r] = conf[i];
    out->report.class_rows[lab[i]]++;
    for (int d = 0; d < k; d++)
        out->prob[r * k + d] = (float)acc[i * k + d];
}

enum fr_status fr_pseudo_label(struct fr_net *teacher, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                               const struct fr_pseudo_opts *o, struct fr_pseudo *out)
{
    memset(out, 0, sizeof *out);
    enum fr_status st = fr_pseudo_check(o);
    if (st != FR_STATUS_OK)
        return st;
    const int k = teacher->n_classes;
    for (int t = 0; t < o->n_teachers; t++)
        if (o->teachers[t]->n_classes != k)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "pseudo-labels: teacher %d has %d classes, the first one %d",
                            t + 2, o->teachers[t]->n_classes, k);
    const float temp = o->temperature > 0 ? o->temperature : 1.0f;
    const size_t rows = (size_t)(n > 0 ? n : 1);
    double *acc = calloc(rows * (size_t)k, sizeof(double));
    float *logits = malloc(rows * (size_t)k * sizeof(float));
    float *conf = malloc(rows * sizeof(float));
    int32_t *lab = malloc(rows * sizeof(int32_t));
    int64_t *kept = malloc(rows * sizeof(int64_t));
    out->report.class_rows = calloc((size_t)k, sizeof(int64_t));
    out->report.class_confident = calloc((size_t)k, sizeof(int64_t));
    if (!acc || !logits || !conf || !lab || !kept || !out->report.class_rows || !out->report.class_confident)
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "pseudo-labels: out of memory for %lld images", (long long)n);
    /* probabilities averaged over the teachers and, with flips, over each image and its mirror image */
    int views = 0;
    for (int t = 0; t <= o->n_teachers && st == FR_STATUS_OK; t++)
        for (int f = 0; f <= (o->flip ? 1 : 0) && st == FR_STATUS_OK; f++, views++)
            st = add_probs(t ? o->teachers[t - 1] : teacher, ds, idx, n, f == 1, temp, acc, logits);
    out->n_classes = out->report.n_classes = k;
    out->report.unlabeled = n;
    int64_t nk = 0, right = 0, known = 0;
    for (int64_t i = 0; st == FR_STATUS_OK && i < n; i++) {
        double *p = acc + i * k;
        int best = 0;
        for (int c = 0; c < k; c++) {
            p[c] /= views;
            if (p[c] > p[best])
                best = c;
        }
        conf[i] = (float)p[best];
        lab[i] = best;
        if (!(conf[i] >= o->threshold)) /* also NaN: an unreadable image the dataset skips */
            continue;
        kept[nk++] = i;
        out->report.class_confident[best]++;
        int64_t j = idx ? idx[i] : i;
        if (ds->labels && ds->labels[j] >= 0) {
            known++;
            right += ds->labels[j] == best;
        }
    }
    out->report.confident = nk;
    out->report.accuracy = known ? (double)right / (double)known : NAN;
    /* the rows: every kept image, or per class `target` of them, most confident first, cycling for rare classes */
    int64_t total = nk, target = 0;
    if (st == FR_STATUS_OK && o->balance && nk > 0) {
        target = o->per_class > 0 ? o->per_class : (nk + k - 1) / k;
        total = 0;
        for (int c = 0; c < k; c++)
            total += out->report.class_confident[c] ? target : 0;
    }
    if (st == FR_STATUS_OK) {
        const size_t m = (size_t)(total > 0 ? total : 1);
        out->idx = malloc(m * sizeof(int64_t));
        out->label = malloc(m * sizeof(int32_t));
        out->prob = malloc(m * (size_t)k * sizeof(float));
        out->conf = malloc(m * sizeof(float));
        if (!out->idx || !out->label || !out->prob || !out->conf)
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "pseudo-labels: out of memory for %lld rows", (long long)total);
    }
    struct rank *cls = st == FR_STATUS_OK && target > 0 ? malloc((size_t)nk * sizeof *cls) : NULL;
    if (st == FR_STATUS_OK && target > 0 && !cls)
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "pseudo-labels: out of memory");
    int64_t r = 0;
    for (int c = 0; st == FR_STATUS_OK && c < (target > 0 ? k : 0); c++) {
        int64_t m = 0;
        for (int64_t q = 0; q < nk; q++)
            if (lab[kept[q]] == c)
                cls[m++] = (struct rank){conf[kept[q]], kept[q]};
        qsort(cls, (size_t)m, sizeof *cls, by_conf_desc);
        for (int64_t q = 0; m > 0 && q < target; q++)
            emit(out, r++, cls[q % m].pos, idx, lab, conf, acc);
    }
    for (int64_t q = 0; st == FR_STATUS_OK && target == 0 && q < nk; q++)
        emit(out, r++, kept[q], idx, lab, conf, acc);
    out->n = out->report.rows = r;
    free(cls);
    free(acc);
    free(logits);
    free(conf);
    free(lab);
    free(kept);
    if (st != FR_STATUS_OK)
        fr_pseudo_free(out);
    return st;
}
