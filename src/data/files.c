/* On-demand datasets (image folders, CSV lists): header scan at open, images decoded, cropped and resized on a
 * pool of worker threads when a batch is read, unreadable files failed or skipped (each named once). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/threadpool.h"
#include "data/data_internal.h"
#include "frugal/rng_host.h"

struct fr_image_files {
    int64_t n;
    enum fr_resize resize;
    enum fr_bad_image on_bad;
    int threads;
    atomic_uchar *bad; /* n marks: the file is known to be unreadable and was named */
    pthread_mutex_t mu; /* creation of the pool */
    struct fr_threadpool *pool;
};

static struct fr_image_files *files_new(int64_t n, const struct fr_dataset_opts *o)
{
    struct fr_image_files *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->bad = calloc((size_t)n + 1, sizeof *f->bad);
    if (!f->bad || pthread_mutex_init(&f->mu, NULL) != 0) {
        free(f->bad);
        free(f);
        return NULL;
    }
    f->n = n;
    f->resize = o->resize;
    f->on_bad = o->on_bad_image;
    f->threads = o->threads;
    return f;
}

void fr_ds_files_free(struct fr_image_files *f)
{
    if (!f)
        return;
    fr_threadpool_free(f->pool);
    pthread_mutex_destroy(&f->mu);
    free(f->bad);
    free(f);
}

enum fr_status fr_ds_files_subset(const struct fr_image_files *src, const int64_t *idx, int64_t n,
                                  struct fr_image_files **out)
{
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.resize = src->resize, o.on_bad_image = src->on_bad, o.threads = src->threads;
    struct fr_image_files *f = files_new(n, &o);
    if (!f)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < n; i++)
        atomic_store(&f->bad[i], atomic_load(&src->bad[idx[i]]));
    *out = f;
    return FR_STATUS_OK;
}

/* Decoding threads: as asked, else as many as the CPU path has (fr_set_threads, FRUGAL_THREADS, the cores). */
static int decode_threads(int asked) { return asked > 0 ? asked : fr_threadpool_size(fr_threadpool_default()); }

static enum fr_status pool_get(struct fr_image_files *f, struct fr_threadpool **pool)
{
    pthread_mutex_lock(&f->mu);
    if (!f->pool)
        f->pool = fr_threadpool_new(decode_threads(f->threads));
    *pool = f->pool;
    pthread_mutex_unlock(&f->mu);
    return *pool ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "cannot start the image decoding threads");
}

/* Per-item outcome of a parallel job: worker threads have their own error message, copied here. */
struct outcome {
    enum fr_status st;
    char *msg;
};

static void outcome_set(struct outcome *o, enum fr_status st)
{
    o->st = st;
    if (st != FR_STATUS_OK)
        o->msg = fr_strdup(fr_last_error());
}

/* --- reading batches --- */

struct uniform_ctx {
    uint64_t seed;
    uint32_t epoch, j;
};

static double load_uniform(void *ctx, uint32_t k)
{
    const struct uniform_ctx *u = ctx;
    return fr_rng_uniform_f64(u->seed, FR_RNG_LOAD, u->epoch, u->j, k);
}

bool fr_ds_window(const struct fr_read_opts *ro, int64_t j, int h, int w, int dh, int dw, int win[4])
{
    struct uniform_ctx u = {ro ? ro->seed : 0, ro ? (uint32_t)ro->epoch : 0, (uint32_t)j};
    if (ro && ro->crop == FR_CROP_RANDOM)
        fr_rrc_window(h, w, ro->scale, ro->ratio, load_uniform, &u, win);
    else if (h == dh && w == dw)
        win[0] = win[1] = 0, win[2] = h, win[3] = w;
    else
        fr_img_center_window(h, w, dh, dw, win);
    return ro && ro->hflip > 0 && load_uniform(&u, 40) < ro->hflip;
}

struct read_job {
    const struct fr_dataset *ds;
    const int64_t *idx;
    const struct fr_read_opts *ro;
    uint8_t *out;
    struct outcome *res;
};

static void read_one(void *ctx, int64_t i, int thread)
{
    (void)thread;
    struct read_job *jb = ctx;
    const struct fr_dataset *ds = jb->ds;
    int64_t j = jb->idx[i];
    struct outcome *res = &jb->res[i];
    if (atomic_load(&ds->files->bad[j])) {
        res->st = FR_STATUS_FORMAT; /* named when it was first met */
        return;
    }
    uint8_t *data = NULL;
    size_t size;
    struct fr_img im = {0};
    enum fr_status st = fr_read_file(ds->paths[j], &data, &size);
    int ic, ih, iw, win[4], denom = 1;
    bool flip = false;
    if (st == FR_STATUS_OK && (st = fr_img_info(data, size, ds->paths[j], &ic, &ih, &iw)) == FR_STATUS_OK) {
        flip = fr_ds_window(jb->ro, j, ih, iw, ds->h, ds->w, win);
        /* a window at least 4x the output: a JPEG decodes reduced (1/2, 1/4, 1/8) to a window still 2x the output,
         * whose resampling smooths what the reduced IDCT leaves (within a few grey levels of the full decode) */
        while (denom < 8 && win[2] >= 4 * denom * ds->h && win[3] >= 4 * denom * ds->w)
            denom *= 2;
        st = fr_img_decode_reduced(data, size, ds->paths[j], ds->c, denom, &im);
    }
    free(data);
    if (st == FR_STATUS_OK) {
        uint8_t *out = jb->out + (size_t)i * ds->h * ds->w * ds->c;
        if (im.w == iw && im.h == ih) {
            st = fr_img_resample(im.px, im.c, im.h, im.w, win, flip, out, ds->c, ds->h, ds->w, ds->files->resize);
        } else { /* decoded reduced: the same window in its coordinates */
            const double box[4] = {(double)win[0] / denom, (double)win[1] / denom, (double)win[2] / denom,
                                   (double)win[3] / denom};
            st = fr_img_resample_box(im.px, im.c, im.h, im.w, box, flip, out, ds->c, ds->h, ds->w, ds->files->resize);
        }
        free(im.px);
    }
    outcome_set(res, st);
}

/* Failures that are not about one file: they always stop the read. */
static bool fatal(enum fr_status st) { return st == FR_STATUS_OUT_OF_MEMORY || st == FR_STATUS_INVALID_ARGUMENT; }

enum fr_status fr_ds_files_read(const struct fr_dataset *ds, int64_t *idx, int64_t n, const struct fr_read_opts *ro,
                                uint8_t *out)
{
    struct fr_image_files *f = ds->files;
    struct fr_threadpool *pool;
    enum fr_status st = pool_get(f, &pool);
    struct outcome *res = st == FR_STATUS_OK ? calloc((size_t)n + 1, sizeof *res) : NULL;
    if (st != FR_STATUS_OK)
        return st;
    if (!res)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
    struct read_job jb = {ds, idx, ro, out, res};
    fr_threadpool_run(pool, n, read_one, &jb);
    /* the first failure in batch order decides; skipped files are named once, in batch order */
    for (int64_t i = 0; i < n && st == FR_STATUS_OK; i++) {
        if (res[i].st == FR_STATUS_OK)
            continue;
        if (fatal(res[i].st) || f->on_bad == FR_BAD_IMAGE_FAIL)
            st = fr_error(res[i].st, "%s", res[i].msg ? res[i].msg : "out of memory");
        else if (res[i].msg && !atomic_exchange(&f->bad[idx[i]], 1))
            fr_log(FR_LOG_WARN, "%s (skipped)", res[i].msg);
    }
    size_t isz = (size_t)ds->c * ds->h * ds->w;
    int64_t good = -1;
    for (int64_t i = 0; i < n && st == FR_STATUS_OK && good < 0; i++)
        if (res[i].st == FR_STATUS_OK)
            good = i;
    for (int64_t i = 0, k = good; i < n && st == FR_STATUS_OK; i++) {
        if (res[i].st == FR_STATUS_OK) {
            k = i; /* the substitute of a bad slot: the closest readable image before it, else the first one */
            continue;
        }
        if (k >= 0) {
            memcpy(out + (size_t)i * isz, out + (size_t)k * isz, isz);
            idx[i] = idx[k];
        } else {
            memset(out + (size_t)i * isz, 0, isz);
            idx[i] = -1;
        }
    }
    for (int64_t i = 0; i < n; i++)
        free(res[i].msg);
    free(res);
    return st;
}

/* --- opening: the header scan --- */

#define PREFIX_BYTES (64 << 10)

struct scan_job {
    char *const *paths;
    int *c, *h, *w;
    struct outcome *res;
};

/* Reads the first `cap` bytes of a file (all of it when cap is 0); *size = what was read, *total = file size. */
static enum fr_status read_prefix(const char *path, size_t cap, uint8_t **data, size_t *size, size_t *total)
{
    if (cap == 0) {
        enum fr_status st = fr_read_file(path, data, size);
        *total = *size;
        return st;
    }
    *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fr_error(FR_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = malloc(cap);
    size_t n = 0;
    ssize_t r = 1;
    while (buf && n < cap && (r = read(fd, buf + n, cap - n)) > 0)
        n += (size_t)r;
    int e = errno;
    off_t end = lseek(fd, 0, SEEK_END);
    close(fd);
    if (!buf)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    if (r < 0) {
        free(buf);
        return fr_error(FR_STATUS_IO, "%s: read error: %s", path, strerror(e));
    }
    *data = buf;
    *size = n;
    *total = end > 0 ? (size_t)end : n;
    return FR_STATUS_OK;
}

static void scan_one(void *ctx, int64_t i, int thread)
{
    (void)thread;
    struct scan_job *jb = ctx;
    uint8_t *data;
    size_t size = 0, total = 0;
    enum fr_status st = read_prefix(jb->paths[i], PREFIX_BYTES, &data, &size, &total);
    if (st == FR_STATUS_OK) {
        st = fr_img_info(data, size, jb->paths[i], &jb->c[i], &jb->h[i], &jb->w[i]);
        free(data);
        if (st == FR_STATUS_FORMAT && total > size && /* the header may lie past the prefix (large metadata) */
            (st = read_prefix(jb->paths[i], 0, &data, &size, &total)) == FR_STATUS_OK) {
            st = fr_img_info(data, size, jb->paths[i], &jb->c[i], &jb->h[i], &jb->w[i]);
            free(data);
        }
    }
    outcome_set(&jb->res[i], st);
}

enum fr_status fr_ds_load_images(struct fr_dataset *ds, char *const *paths, int64_t n, const int32_t *labels,
                                 const float *soft, int n_soft, const struct fr_dataset_opts *opts)
{
    struct fr_dataset_opts def;
    if (!opts) {
        fr_dataset_opts_init(&def);
        opts = &def;
    }
    if ((opts->height == 0) != (opts->width == 0) || opts->height < 0 || opts->width < 0 || opts->channels < 0 ||
        opts->channels > 4)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: bad requested size %dx%dx%d (give height and width, or neither)",
                        ds->source, opts->height, opts->width, opts->channels);
    if (n <= 0)
        return fr_error(FR_STATUS_NOT_FOUND, "%s: no images", ds->source);
    ds->labels = malloc(sizeof(int32_t) * (size_t)n);
    ds->paths = calloc((size_t)n, sizeof(char *));
    if (soft && n_soft > 0)
        ds->soft = malloc(sizeof(float) * (size_t)n * n_soft);
    if (!ds->labels || !ds->paths || (soft && n_soft > 0 && !ds->soft))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory for %lld images", ds->source, (long long)n);
    bool scan = opts->channels == 0 || opts->height == 0;
    int *ch = NULL, *hh = NULL, *ww = NULL;
    struct outcome *res = NULL;
    enum fr_status st = FR_STATUS_OK;
    if (scan) {
        ch = malloc(sizeof(int) * (size_t)n);
        hh = malloc(sizeof(int) * (size_t)n);
        ww = malloc(sizeof(int) * (size_t)n);
        res = calloc((size_t)n, sizeof *res);
        if (!ch || !hh || !ww || !res) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory for %lld images", ds->source, (long long)n);
            goto done;
        }
        struct fr_threadpool *pool = fr_threadpool_new(decode_threads(opts->threads));
        if (!pool) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "cannot start the image decoding threads");
            goto done;
        }
        struct scan_job jb = {paths, ch, hh, ww, res};
        fr_threadpool_run(pool, n, scan_one, &jb);
        fr_threadpool_free(pool);
    }
    /* keep the readable files, in order; the first one fixes the native size */
    int c = 0;
    int64_t k = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        if (scan && res[i].st != FR_STATUS_OK) {
            if (fatal(res[i].st) || opts->on_bad_image == FR_BAD_IMAGE_FAIL) {
                st = fr_error(res[i].st, "%s", res[i].msg ? res[i].msg : "out of memory");
                goto done;
            }
            fr_log(FR_LOG_WARN, "%s (skipped)", res[i].msg);
            continue;
        }
        if (scan) {
            if (first < 0)
                first = i;
            if (!opts->height && (hh[i] != hh[first] || ww[i] != ww[first])) {
                st = fr_error(FR_STATUS_FORMAT,
                              "%s: image is %dx%d, %s is %dx%d: give a size (--size H[xW]) to resize them all",
                              paths[i], hh[i], ww[i], paths[first], hh[first], ww[first]);
                goto done;
            }
            /* colour when any image has colour; alpha only when asked */
            int cc = ch[i] >= 3 ? 3 : 1;
            c = cc > c ? cc : c;
        }
        if (!(ds->paths[k] = fr_strdup(paths[i]))) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
            goto done;
        }
        ds->labels[k] = labels ? labels[i] : -1;
        if (ds->soft)
            memcpy(ds->soft + (size_t)k * n_soft, soft + (size_t)i * n_soft, sizeof(float) * n_soft);
        ds->n = ++k;
    }
    if (k == 0) {
        st = fr_error(FR_STATUS_FORMAT, "%s: no readable image among %lld", ds->source, (long long)n);
        goto done;
    }
    ds->c = opts->channels ? opts->channels : c;
    ds->h = opts->height ? opts->height : hh[first];
    ds->w = opts->width ? opts->width : ww[first];
    if (!(ds->files = files_new(k, opts)))
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
done:
    for (int64_t i = 0; res && i < n; i++)
        free(res[i].msg);
    free(res);
    free(ch);
    free(hh);
    free(ww);
    return st;
}
