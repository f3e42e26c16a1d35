/* Fingerprints of what every rank must share (the images it reads, the network it starts from), compared with
 * rank 0's before ranks split work: a node with another copy of the data or the model is named, not trained on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dist/dist_internal.h"
#include "frugal/model.h"

enum fr_status fr_dist_same_images(struct fr_dist *d, const char *what, const struct fr_dataset *ds,
                                   const int64_t *idx, int64_t n)
{
    if (fr_dist_size(d) == 1)
        return FR_STATUS_OK;
    int64_t shape[5] = {n, ds->c, ds->h, ds->w, ds->n_classes};
    uint64_t h = fr_dist_hash(0, shape, sizeof shape);
    const size_t sz = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    if (ds->pixels && !idx)
        h = fr_dist_hash(h, ds->pixels, sz * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        int64_t j = idx ? idx[i] : i;
        if (j < 0 || j >= ds->n) /* the caller reports it the same way on every rank */
            continue;
        int32_t y = ds->labels ? ds->labels[j] : -1;
        h = fr_dist_hash(h, &y, sizeof y);
        if (ds->pixels && idx)
            h = fr_dist_hash(h, ds->pixels + sz * (size_t)j, sz);
        if (!ds->pixels && ds->paths && ds->paths[j]) {
            struct stat sb;
            int64_t size = stat(ds->paths[j], &sb) == 0 ? (int64_t)sb.st_size : -1;
            h = fr_dist_hash(h, ds->paths[j], strlen(ds->paths[j]));
            h = fr_dist_hash(h, &size, sizeof size);
        }
    }
    char detail[160];
    snprintf(detail, sizeof detail, "%.80s, %lld images %dx%dx%d, %d classes", ds->source ? ds->source : "?",
             (long long)n, ds->h, ds->w, ds->c, ds->n_classes);
    return fr_dist_same(d, what, h, detail);
}

enum fr_status fr_dist_same_net(struct fr_dist *d, const char *what, const struct fr_net *net)
{
    if (fr_dist_size(d) == 1)
        return FR_STATUS_OK;
    int32_t dims[4] = {net->c, net->h, net->w, net->n_classes};
    uint64_t h = fr_dist_hash(0, dims, sizeof dims);
    h = fr_dist_hash(h, net->arch, strlen(net->arch));
    h = fr_dist_hash(h, net->mean, sizeof net->mean);
    h = fr_dist_hash(h, net->std, sizeof net->std);
    void *buf = NULL;
    size_t cap = 0;
    enum fr_status st = FR_STATUS_OK;
    for (int i = 0; i < fr_model_n_tensors(net->model) && st == FR_STATUS_OK; i++) {
        struct fr_model_entry e = fr_model_tensor(net->model, i);
        size_t bytes = fr_nbytes(e.t);
        if (bytes > cap) {
            void *nb = realloc(buf, bytes);
            if (!nb) {
                st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", what);
                break;
            }
            buf = nb, cap = bytes;
        }
        h = fr_dist_hash(h, e.name, strlen(e.name));
        if (bytes && (st = fr_tensor_get(e.t, buf, bytes)) == FR_STATUS_OK)
            h = fr_dist_hash(h, buf, bytes);
    }
    free(buf);
    st = fr_dist_agree(d, st);
    if (st != FR_STATUS_OK)
        return st;
    char detail[160];
    snprintf(detail, sizeof detail, "%.60s, %lld parameters, %d classes", net->arch,
             (long long)fr_model_n_params(net->model), net->n_classes);
    return fr_dist_same(d, what, h, detail);
}
