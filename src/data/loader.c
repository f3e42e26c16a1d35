/* The batch loader: per-epoch seeded shuffle, batches gathered into two fixed slots, one filled ahead by a thread. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "data/data_internal.h"
#include "frugal/rng_host.h"

struct slot {
    uint8_t *images;
    int32_t *labels;
    float *soft;
    int64_t *index;
    struct fr_batch b;
    enum fr_status st; /* of reading the images */
    char msg[256];
};

struct fr_loader {
    const struct fr_dataset *ds;
    struct fr_loader_opts o;
    int64_t n, *idx, *perm;
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

/* Reads batch `step` of the current epoch into slot s (fr_dataset_read: a copy, or decoding on the dataset's
 * threads); labels follow the images read (an unreadable image the dataset skips is replaced). */
static void fill(struct fr_loader *l, int s, int64_t step)
{
    struct slot *sl = &l->slot[s];
    const struct fr_dataset *ds = l->ds;
    int64_t first = step * l->o.batch;
    int64_t n = l->n - first < l->o.batch ? l->n - first : l->o.batch;
    for (int64_t i = 0; i < n; i++)
        sl->index[i] = l->idx ? l->idx[l->perm[first + i]] : l->perm[first + i];
    sl->st = fr_dataset_read(ds, sl->index, n, NULL, sl->images);
    if (sl->st != FR_STATUS_OK) /* per thread: carried to fr_loader_next */
        snprintf(sl->msg, sizeof sl->msg, "%s", fr_last_error());
    for (int64_t i = 0; i < n && sl->st == FR_STATUS_OK; i++) {
        int64_t j = sl->index[i] >= 0 ? sl->index[i] : 0; /* -1: nothing readable in the batch (zeros) */
        sl->labels[i] = sl->index[i] >= 0 ? ds->labels[j] : -1;
        if (sl->soft)
            memcpy(sl->soft + (size_t)i * ds->n_classes, ds->soft + (size_t)j * ds->n_classes,
                   sizeof(float) * ds->n_classes);
    }
    sl->b.n = (int)n;
    sl->b.epoch = l->epoch;
    sl->b.step = step;
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
        free(l->slot[s].index);
    }
    free(l->idx);
    free(l->perm);
    free(l);
}

enum fr_status fr_loader_new(const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                             const struct fr_loader_opts *opts, struct fr_loader **out)
{
    *out = NULL;
    struct fr_loader_opts def;
    if (!opts) {
        fr_loader_opts_init(&def);
        opts = &def;
    }
    if (opts->batch <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "loader: batch size %d", opts->batch);
    if (!idx)
        n = ds->n;
    if (n < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "loader: negative image count");
    for (int64_t i = 0; idx && i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->n)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "loader: index %lld out of range [0, %lld) of %s",
                            (long long)idx[i], (long long)ds->n, ds->source);
    struct fr_loader *l = calloc(1, sizeof *l);
    if (!l)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "loader: out of memory");
    l->ds = ds;
    l->o = *opts;
    l->n = n;
    l->isz = (size_t)ds->c * ds->h * ds->w;
    l->n_batches = opts->drop_last ? n / opts->batch : (n + opts->batch - 1) / opts->batch;
    l->cur = l->n_batches; /* nothing until fr_loader_start */
    l->perm = malloc(sizeof(int64_t) * (size_t)n + 1);
    if (idx && (l->idx = malloc(sizeof(int64_t) * (size_t)n + 1)))
        memcpy(l->idx, idx, sizeof(int64_t) * (size_t)n);
    bool ok = l->perm && (!idx || l->idx);
    size_t B = (size_t)opts->batch;
    for (int s = 0; s < 2 && ok; s++) {
        struct slot *sl = &l->slot[s];
        sl->images = malloc(B * l->isz + 1);
        sl->labels = malloc(B * sizeof(int32_t));
        sl->index = malloc(B * sizeof(int64_t));
        if (ds->soft)
            sl->soft = malloc(B * sizeof(float) * ds->n_classes);
        ok = sl->images && sl->labels && sl->index && (!ds->soft || sl->soft);
        sl->b.c = ds->c, sl->b.h = ds->h, sl->b.w = ds->w;
        sl->b.images = sl->images;
        sl->b.labels = sl->labels;
        sl->b.soft = sl->soft;
        sl->b.index = sl->index;
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
