/* Pseudo-labelling: the un-noised teacher's probabilities, a confidence threshold and Noisy Student's class
 * balancing (the most confident images of frequent classes, duplicates of rare ones). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/recipes.h"

void fr_pseudo_free(struct fr_pseudo *p)
{
    if (!p)
        return;
    free(p->idx);
    free(p->label);
    free(p->prob);
    free(p->conf);
    memset(p, 0, sizeof *p);
}

static const float *g_conf; /* qsort has no user pointer; pseudo-labelling runs on one thread */

static int by_conf_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    float cx = g_conf[x], cy = g_conf[y];
    if (cx != cy)
        return cx > cy ? -1 : 1;
    return x < y ? -1 : x > y; /* stable order for equal confidence */
}

enum fr_status fr_pseudo_label(struct fr_net *teacher, const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                               const struct fr_pseudo_opts *o, struct fr_pseudo *out)
{
    memset(out, 0, sizeof *out);
    int k = teacher->n_classes;
    float temp = o->temperature > 0 ? o->temperature : 1.0f;
    float *logits = malloc((size_t)(n > 0 ? n : 1) * k * sizeof(float));
    float *prob = malloc((size_t)(n > 0 ? n : 1) * k * sizeof(float));
    float *conf = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    int32_t *lab = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    int64_t *kept = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    enum fr_status st = logits && prob && conf && lab && kept ? FR_STATUS_OK
                                                              : fr_error(FR_STATUS_OUT_OF_MEMORY, "pseudo: out of memory");
    if (st == FR_STATUS_OK && n > 0)
        st = fr_net_predict(teacher, ds, idx, n, logits);
    int64_t nk = 0;
    for (int64_t i = 0; st == FR_STATUS_OK && i < n; i++) {
        const float *z = logits + i * k;
        float *p = prob + i * k, mx = z[0];
        int best = 0;
        for (int c = 1; c < k; c++)
            if (z[c] > mx) {
                mx = z[c];
                best = c;
            }
        double s = 0;
        for (int c = 0; c < k; c++)
            s += exp(((double)z[c] - mx) / temp);
        for (int c = 0; c < k; c++)
            p[c] = (float)(exp(((double)z[c] - mx) / temp) / s);
        conf[i] = p[best];
        lab[i] = best;
        if (conf[i] >= o->threshold && !isnan(mx)) /* NaN logits: an unreadable image the dataset skips */
            kept[nk++] = i;
    }
    int64_t total = nk;
    int64_t *sel = NULL;
    if (st == FR_STATUS_OK && o->balance && nk > 0) {
        /* per class: sort the kept images by confidence, then take `target` of them, cycling for rare classes */
        int64_t target = o->per_class > 0 ? o->per_class : (nk + k - 1) / k;
        int64_t *cls = malloc((size_t)nk * sizeof(int64_t));
        sel = malloc((size_t)(target * k) * sizeof(int64_t));
        if (!cls || !sel) {
            free(cls);
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "pseudo: out of memory");
        } else {
            total = 0;
            g_conf = conf;
            for (int c = 0; c < k; c++) {
                int64_t m = 0;
                for (int64_t i = 0; i < nk; i++)
                    if (lab[kept[i]] == c)
                        cls[m++] = kept[i];
                if (m == 0)
                    continue; /* nothing to duplicate */
                qsort(cls, (size_t)m, sizeof *cls, by_conf_desc);
                for (int64_t j = 0; j < target; j++)
                    sel[total++] = cls[j % m];
            }
            free(cls);
        }
    }
    const int64_t *pick = sel ? sel : kept;
    if (st == FR_STATUS_OK) {
        out->n = total;
        out->n_classes = k;
        out->idx = malloc((size_t)(total > 0 ? total : 1) * sizeof(int64_t));
        out->label = malloc((size_t)(total > 0 ? total : 1) * sizeof(int32_t));
        out->prob = malloc((size_t)(total > 0 ? total : 1) * k * sizeof(float));
        out->conf = malloc((size_t)(total > 0 ? total : 1) * sizeof(float));
        if (!out->idx || !out->label || !out->prob || !out->conf)
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "pseudo: out of memory");
        for (int64_t j = 0; st == FR_STATUS_OK && j < total; j++) {
            int64_t i = pick[j];
            out->idx[j] = idx ? idx[i] : i;
            out->label[j] = lab[i];
            out->conf[j] = conf[i];
            memcpy(out->prob + j * k, prob + i * k, (size_t)k * sizeof(float));
        }
    }
    free(logits);
    free(prob);
    free(conf);
    free(lab);
    free(kept);
    free(sel);
    if (st != FR_STATUS_OK)
        fr_pseudo_free(out);
    return st;
}
