/* The batch loader: per-epoch seeded shuffle of entries (images of up to two datasets with labels, soft targets and
 * extra rows), batches read (fr_dataset_read) into two fixed slots, one filled (and prepared by the caller's hook)
 * ahead by a thread. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "data/data_internal.h"
#include "frugal/rng_host.h"

struct slot {
    uint8_t *images;
    int32_t *labels;
    float *soft, *extra, *features;
    int64_t *index;
    int64_t *entry, *ids; /* the batch's entries (replaced ones follow their image), image indices of one read */
    int *pos;             /* batch positions of one read */
    uint8_t *stage;       /* images of one dataset when the batch mixes two */
    struct fr_batch b;
    enum fr_status st; /* of reading the images or of the prepare hook */
    char msg[256];
};

struct fr_loader {
    struct fr_loader_src src;
    struct fr_loader_opts o;
    int64_t n, *perm;
    int n_soft; /* soft target columns (0 = none) */
    int64_t n_batches, epoch, cur; /* cur = next step handed to the caller */
    struct slot slot[2];
    size_t isz;

    bool threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool pending, busy, quit;
    int req_slot;
    int64_t req_step;
    bool ready[2];
    int64_t ready_step[2];
};

void fr_loader_opts_init(struct fr_loader_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 64;
    o->shuffle = true;
    o->drop_last = false;
    o->prefetch = true;
}

/* Reads the images of the batch's entries (fr_dataset_read per source dataset: a copy, or decoding on the
 * dataset's threads). An entry whose image the dataset skipped as unreadable becomes the entry of the image that
 * replaced it, so its label and rows follow; -1 when nothing of its read was readable (zeros). */
static enum fr_status read_entries(struct fr_loader *l, struct slot *sl, int64_t n)
{
    const struct fr_loader_src *src = &l->src;
    for (int d = 0; d < 2; d++) {
        if (!src->ds[d])
            continue;
        int m = 0;
        for (int64_t i = 0; i < n; i++)
            if ((src->which ? src->which[sl->entry[i]] : 0) == d)
                sl->pos[m] = (int)i, sl->ids[m++] = src->idx ? src->idx[sl->entry[i]] : sl->entry[i];
        if (m == 0)
            continue;
        uint8_t *dst = m == n ? sl->images : sl->stage;
        struct fr_read_opts ro;
        if (l->o.read) { /* random crops and flips: a function of (seed, epoch, index) */
            ro = *l->o.read;
            ro.epoch = l->epoch;
        }
        enum fr_status st = fr_dataset_read(src->ds[d], sl->ids, m, l->o.read ? &ro : NULL, dst);
        if (st != FR_STATUS_OK)
            return st;
        for (int q = 0; q < m; q++) {
            int64_t *e = &sl->entry[sl->pos[q]], asked = src->idx ? src->idx[*e] : *e;
            if (sl->ids[q] != asked) { /* replaced: take the entry of the image it got */
                int r = 0;
                while (r < m && !(sl->ids[r] == sl->ids[q] &&
                                  (src->idx ? src->idx[sl->entry[sl->pos[r]]] : sl->entry[sl->pos[r]]) == sl->ids[q]))
                    r++;
                *e = sl->ids[q] < 0 || r == m ? -1 : sl->entry[sl->pos[r]];
            }
            if (dst != sl->images)
                memcpy(sl->images + (size_t)sl->pos[q] * l->isz, dst + (size_t)q * l->isz, l->isz);
        }
    }
    return FR_STATUS_OK;
}

/* Reads batch `step` of the current epoch into slot s (no allocation) with the entries' labels and rows, then runs
 * the prepare hook. */
static void fill(struct fr_loader *l, int s, int64_t step)
{
    struct slot *sl = &l->slot[s];
    const struct fr_loader_src *src = &l->src;
    int64_t first = step * l->o.batch, rows = l->o.batch;
    if (l->o.shard_count > 0) /* this process's rows of the batch */
        first += l->o.shard_first, rows = l->o.shard_count;
    int64_t n = l->n - first < rows ? l->n - first : rows;
    n = n < 0 ? 0 : n;
    for (int64_t i = 0; i < n; i++)
        sl->entry[i] = l->perm[first + i];
    if (!src->features && (sl->st = read_entries(l, sl, n)) != FR_STATUS_OK) {
        snprintf(sl->msg, sizeof sl->msg, "%s", fr_last_error()); /* per thread: carried to fr_loader_next */
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t e = sl->entry[i];
        if (e < 0) { /* nothing readable: zeros, unlabeled */
            sl->labels[i] = -1;
            sl->index[i] = -1;
            if (sl->soft)
                memset(sl->soft + (size_t)i * l->n_soft, 0, sizeof(float) * l->n_soft);
            if (sl->extra)
                memset(sl->extra + (size_t)i * src->n_extra, 0, sizeof(float) * src->n_extra);
            continue;
        }
        const struct fr_dataset *ds = src->ds[src->which ? src->which[e] : 0];
        int64_t j = src->idx ? src->idx[e] : e; /* its image */
        sl->labels[i] = src->labels ? src->labels[e] : ds->labels ? ds->labels[j] : -1;
        sl->index[i] = src->which ? e : j;
        if (sl->soft)
            memcpy(sl->soft + (size_t)i * l->n_soft,
                   src->soft ? src->soft + (size_t)e * l->n_soft : ds->soft + (size_t)j * l->n_soft,
                   sizeof(float) * l->n_soft);
        if (sl->extra)
            memcpy(sl->extra + (size_t)i * src->n_extra, src->extra + (size_t)e * src->n_extra,
                   sizeof(float) * src->n_extra);
        if (sl->features)
            memcpy(sl->features + (size_t)i * src->n_features, src->features + (size_t)e * src->n_features,
                   sizeof(float) * (size_t)src->n_features);
    }
    sl->b.n = (int)n;
    sl->b.epoch = l->epoch;
    sl->b.step = step;
    if (l->o.prepare && (sl->st = l->o.prepare(l->o.user, &sl->b)) != FR_STATUS_OK)
        snprintf(sl->msg, sizeof sl->msg, "%s", fr_last_error());
}

static void *worker(void *arg)
{
    struct fr_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->pending && !l->quit)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit)
            break;
        int s = l->req_slot;
        int64_t step = l->req_step;
        l->pending = false;
        l->busy = true;
        pthread_mutex_unlock(&l->mu);
        fill(l, s, step);
        pthread_mutex_lock(&l->mu);
        l->busy = false;
        l->ready[s] = true;
        l->ready_step[s] = step;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Asks the worker for batch `step` in slot s (caller holds no lock). */
static void request(struct fr_loader *l, int s, int64_t step)
{
    if (!l->threaded) {
        fill(l, s, step);
        l->ready[s] = true;
        l->ready_step[s] = step;
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->ready[s] = false;
    l->req_slot = s;
    l->req_step = step;
    l->pending = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* Waits until the worker has nothing pending or in progress. */
static void quiesce(struct fr_loader *l)
{
    if (!l->threaded)
        return;
    pthread_mutex_lock(&l->mu);
    while (l->pending || l->busy)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

void fr_loader_free(struct fr_loader *l)
{
    if (!l)
        return;
    if (l->threaded) {
        pthread_mutex_lock(&l->mu);
        l->quit = true;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
    }
    for (int s = 0; s < 2; s++) {
        free(l->slot[s].images);
        free(l->slot[s].labels);
        free(l->slot[s].soft);
        free(l->slot[s].extra);
        free(l->slot[s].features);
        free(l->slot[s].index);
        free(l->slot[s].entry);
        free(l->slot[s].ids);
        free(l->slot[s].pos);
        free(l->slot[s].stage);
    }
    free(l->perm);
    free(l);
}

enum fr_status fr_loader_new(const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                             const struct fr_loader_opts *opts, struct fr_loader **out)
{
    *out = NULL;
    if (!idx)
        n = ds->n;
    if (n < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "loader: negative image count");
    for (int64_t i = 0; idx && i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->n)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "loader: index %lld out of range [0, %lld) of %s",
                            (long long)idx[i], (long long)ds->n, ds->source);
    struct fr_loader_src src = {.ds = {ds, NULL}, .n = n, .idx = idx, .n_classes = ds->soft ? ds->n_classes : 0};
    return fr_loader_new_src(&src, opts, out);
}

enum fr_status fr_loader_new_src(const struct fr_loader_src *src, const struct fr_loader_opts *opts,
                                 struct fr_loader **out)
{
    *out = NULL;
    struct fr_loader_opts def;
    if (!opts) {
        fr_loader_opts_init(&def);
        opts = &def;
    }
    if (opts->batch <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "loader: batch size %d", opts->batch);
    if (opts->shard_count < 0 || opts->shard_first < 0 || opts->shard_first + opts->shard_count > opts->batch)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "loader: rows [%d, +%d) outside a batch of %d", opts->shard_first,
                        opts->shard_count, opts->batch);
    if (!src || !src->ds[0] || src->n < 0 || (src->extra && src->n_extra <= 0) ||
        (src->features && src->n_features <= 0))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "loader: no dataset, a negative count or rows of no width");
    const struct fr_dataset *ds0 = src->ds[0];
    for (int d = 1; d < 2; d++)
        if (src->ds[d] && (src->ds[d]->c != ds0->c || src->ds[d]->h != ds0->h || src->ds[d]->w != ds0->w))
            return fr_error(FR_STATUS_SHAPE, "loader: %s and %s differ in image size", ds0->source, src->ds[d]->source);
    int n_soft = src->soft ? src->n_classes : ds0->soft && !src->which ? ds0->n_classes : 0;
    if (n_soft < 0 || (src->soft && n_soft <= 0))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "loader: soft targets need n_classes > 0");
    struct fr_loader *l = calloc(1, sizeof *l);
    if (!l)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "loader: out of memory");
    l->src = *src;
    l->o = *opts;
    l->n = src->n;
    l->n_soft = n_soft;
    l->isz = (size_t)ds0->c * ds0->h * ds0->w;
    l->n_batches = opts->drop_last ? l->n / opts->batch : (l->n + opts->batch - 1) / opts->batch;
    l->cur = l->n_batches; /* nothing until fr_loader_start */
    l->perm = malloc(sizeof(int64_t) * (size_t)l->n + 1);
    bool ok = l->perm != NULL;
    size_t B = (size_t)opts->batch;
    for (int s = 0; s < 2 && ok; s++) {
        struct slot *sl = &l->slot[s];
        sl->images = src->features ? NULL : malloc(B * l->isz + 1);
        sl->labels = malloc(B * sizeof(int32_t));
        sl->index = malloc(B * sizeof(int64_t));
        sl->entry = malloc(B * sizeof(int64_t));
        sl->ids = malloc(B * sizeof(int64_t));
        sl->pos = malloc(B * sizeof(int));
        if (src->ds[1] && !src->features)
            sl->stage = malloc(B * l->isz + 1);
        if (n_soft)
            sl->soft = malloc(B * sizeof(float) * (size_t)n_soft);
        if (src->extra)
            sl->extra = malloc(B * sizeof(float) * (size_t)src->n_extra);
        if (src->features)
            sl->features = malloc(B * sizeof(float) * (size_t)src->n_features);
        ok = (sl->images || sl->features) && sl->labels && sl->index && sl->entry && sl->ids && sl->pos && (!src->ds[1] || src->features || sl->stage) &&
             (!n_soft || sl->soft) && (!src->extra || sl->extra);
        sl->b.c = ds0->c, sl->b.h = ds0->h, sl->b.w = ds0->w;
        sl->b.images = sl->images;
        sl->b.labels = sl->labels;
        sl->b.soft = sl->soft;
        sl->b.extra = sl->extra;
        sl->b.features = sl->features;
        sl->b.index = sl->index;
        sl->b.slot = s;
    }
    if (!ok) {
        fr_loader_free(l);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "loader: out of memory for batches of %d", opts->batch);
    }
    if (opts->prefetch) {
        if (pthread_mutex_init(&l->mu, NULL) != 0) {
            fr_loader_free(l);
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "loader: cannot create a mutex");
        }
        if (pthread_cond_init(&l->cv, NULL) != 0) {
            pthread_mutex_destroy(&l->mu);
            fr_loader_free(l);
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "loader: cannot create a condition variable");
        }
        if (pthread_create(&l->thread, NULL, worker, l) != 0) {
            pthread_mutex_destroy(&l->mu);
            pthread_cond_destroy(&l->cv);
            fr_loader_free(l);
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "loader: cannot start the prefetch thread");
        }
        l->threaded = true;
    }
    *out = l;
    return FR_STATUS_OK;
}

int64_t fr_loader_batches_per_epoch(const struct fr_loader *l) { return l->n_batches; }

enum fr_status fr_loader_start(struct fr_loader *l, int64_t epoch, int64_t first_step)
{
    if (epoch < 0 || epoch > UINT32_MAX || first_step < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "loader: bad epoch %lld / step %lld", (long long)epoch,
                        (long long)first_step);
    quiesce(l); /* the worker reads perm */
    l->epoch = epoch;
    for (int64_t i = 0; i < l->n; i++)
        l->perm[i] = i;
    if (l->o.shuffle)
        fr_shuffle_indices(l->perm, l->n, l->o.seed, FR_RNG_SHUFFLE, (uint32_t)epoch);
    l->ready[0] = l->ready[1] = false;
    l->cur = first_step < l->n_batches ? first_step : l->n_batches;
    if (l->cur < l->n_batches)
        request(l, (int)(l->cur & 1), l->cur);
    return FR_STATUS_OK;
}

enum fr_status fr_loader_next(struct fr_loader *l, const struct fr_batch **batch)
{
    *batch = NULL;
    if (l->cur >= l->n_batches)
        return FR_STATUS_OK;
    int s = (int)(l->cur & 1);
    if (l->threaded) {
        pthread_mutex_lock(&l->mu);
        while (!(l->ready[s] && l->ready_step[s] == l->cur))
            pthread_cond_wait(&l->cv, &l->mu);
        pthread_mutex_unlock(&l->mu);
    }
    /* the other slot was the caller's previous batch, released by this call: fill the next one into it */
    if (l->cur + 1 < l->n_batches)
        request(l, s ^ 1, l->cur + 1);
    l->cur++;
    if (l->slot[s].st != FR_STATUS_OK)
        return fr_error(l->slot[s].st, "%s", l->slot[s].msg);
    *batch = &l->slot[s].b;
    return FR_STATUS_OK;
}
