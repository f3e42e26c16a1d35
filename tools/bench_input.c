/* bench_input: the photo-folder input pipeline timed on its own: decode + random resized crop + flip at load (the
 * dataset's worker threads, the next batch read while the current one is used) + normalisation to f32 NCHW (what
 * the device does with the u8 batch). Prints one JSON line; tools/compare_input_pipeline.py runs it beside PyTorch. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "frugal/data.h"
#include "frugal/rng_host.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct reader {
    const struct fr_dataset *ds;
    struct fr_read_opts ro;
    int64_t *idx; /* the batch's indices */
    int64_t n;
    uint8_t *out;
    enum fr_status st;
};

static void *read_batch(void *arg)
{
    struct reader *r = arg;
    r->st = fr_dataset_read(r->ds, r->idx, r->n, &r->ro, r->out);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_input DIR [--size S] [--batch B] [--threads T] [--epochs E] [--limit N] [--seed S]\n"
                    "  folder DIR (DIR/<class>/<image>), images read at SxS RGB by T decoding threads\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *dir = argv[1];
    long size = 224, batch = 32, threads = 2, epochs = 1, limit = 0, seed = 1;
    for (int i = 2; i < argc; i += 2) {
        long *v = !strcmp(argv[i], "--size")      ? &size
                  : !strcmp(argv[i], "--batch")   ? &batch
                  : !strcmp(argv[i], "--threads") ? &threads
                  : !strcmp(argv[i], "--epochs")  ? &epochs
                  : !strcmp(argv[i], "--limit")   ? &limit
                  : !strcmp(argv[i], "--seed")    ? &seed
                                                  : NULL;
        if (!v || i + 1 >= argc) {
            usage();
            return 2;
        }
        *v = strtol(argv[i + 1], NULL, 10);
    }
    if (size < 1 || batch < 1 || threads < 1 || epochs < 1) {
        usage();
        return 2;
    }
    double t0 = now();
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.channels = 3, o.height = o.width = (int)size, o.threads = (int)threads;
    struct fr_dataset *ds;
    enum fr_status st = fr_dataset_folder_open(dir, &o, &ds);
    if (st != FR_STATUS_OK) {
        fprintf(stderr, "bench_input: %s\n", fr_last_error());
        return 1;
    }
    double t_open = now() - t0;
    int64_t n = limit > 0 && limit < ds->n ? limit : ds->n, B = batch;
    size_t isz = (size_t)ds->c * ds->h * ds->w;
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)n), *ids[2];
    uint8_t *u8[2];
    float *x = malloc(sizeof(float) * isz * (size_t)B);
    for (int s = 0; s < 2; s++) {
        ids[s] = malloc(sizeof(int64_t) * (size_t)B);
        u8[s] = malloc(isz * (size_t)B);
    }
    const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    float scale[3], shift[3]; /* (v/255 - mean)/std = v*scale + shift */
    for (int k = 0; k < 3; k++)
        scale[k] = 1.0f / (255.0f * stdv[k]), shift[k] = -mean[k] / stdv[k];
    double checksum = 0;
    int64_t images = 0;
    t0 = now();
    for (long e = 0; e < epochs && st == FR_STATUS_OK; e++) {
        for (int64_t i = 0; i < n; i++)
            perm[i] = i;
        fr_shuffle_indices(perm, n, (uint64_t)seed, FR_RNG_SHUFFLE, (uint32_t)e);
        int64_t nb = (n + B - 1) / B;
        struct reader r[2];
        pthread_t th;
        for (int s = 0; s < 2; s++) {
            fr_read_opts_init(&r[s].ro);
            r[s].ro.crop = FR_CROP_RANDOM, r[s].ro.hflip = 0.5f, r[s].ro.seed = (uint64_t)seed, r[s].ro.epoch = e;
            r[s].ds = ds, r[s].idx = ids[s], r[s].out = u8[s];
        }
        for (int64_t b = 0; b <= nb && st == FR_STATUS_OK; b++) {
            /* start reading batch b while batch b-1 is normalised */
            bool reading = b < nb;
            struct reader *rb = &r[b & 1];
            if (reading) {
                rb->n = n - b * B < B ? n - b * B : B;
                memcpy(rb->idx, perm + b * B, sizeof(int64_t) * (size_t)rb->n);
                if (pthread_create(&th, NULL, read_batch, rb) != 0) {
                    fprintf(stderr, "bench_input: cannot start a thread\n");
                    return 1;
                }
            }
            if (b > 0) {
                const struct reader *rp = &r[(b - 1) & 1];
                int64_t hw = (int64_t)ds->h * ds->w;
                for (int64_t i = 0; i < rp->n; i++)
                    for (int k = 0; k < 3; k++) {
                        const uint8_t *p = rp->out + (size_t)i * isz + k;
                        float *q = x + ((size_t)i * 3 + k) * hw;
                        for (int64_t j = 0; j < hw; j++)
                            q[j] = p[3 * j] * scale[k] + shift[k];
                    }
                checksum += x[0] + x[isz * (size_t)rp->n - 1];
                images += rp->n;
            }
            if (reading) {
                pthread_join(th, NULL);
                st = rb->st;
            }
        }
    }
    double secs = now() - t0;
    if (st != FR_STATUS_OK) {
        fprintf(stderr, "bench_input: %s\n", fr_last_error());
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"images\": %lld, \"seconds\": %.4f, \"images_per_s\": %.2f, \"open_seconds\": %.4f, \"max_rss_kb\": %ld, "
           "\"threads\": %ld, \"batch\": %ld, \"size\": %ld, \"checksum\": %.3f}\n",
           (long long)images, secs, images / secs, t_open, ru.ru_maxrss, threads, batch, size, checksum);
    for (int s = 0; s < 2; s++) {
        free(ids[s]);
        free(u8[s]);
    }
    free(x);
    free(perm);
    fr_dataset_free(ds);
    return 0;
}
