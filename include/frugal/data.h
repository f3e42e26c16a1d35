/* Datasets (IDX, Fashion-MNIST, image folders, CSV label lists), seeded class-balanced splits, images
 * and the prefetching batch loader.
 *
 *   struct fr_dataset_opts o;  fr_dataset_opts_init(&o);  o.split = "train";
 *   struct fr_dataset *ds;     fr_dataset_open("fmnist", &o, &ds);       // or idx:IMG,LAB folder:DIR csv:FILE
 *   struct fr_split sp;        fr_split_make(ds, 1000, 100, seed, &sp);  // 900 train + 100 val labels
 *   struct fr_loader_opts lo;  fr_loader_opts_init(&lo);  lo.batch = 64;  lo.seed = seed;
 *   struct fr_loader *ld;      fr_loader_new(ds, sp.labeled, sp.n_labeled, &lo, &ld);
 *   for (int64_t e = 0; e < epochs; e++) {
 *       fr_loader_start(ld, e, 0);
 *       const struct fr_batch *b;
 *       while (fr_loader_next(ld, &b) == FR_STATUS_OK && b) use(b->images, b->labels, b->n);
 *   }
 *   fr_loader_free(ld);  fr_split_free(&sp);  fr_dataset_free(ds);
 */
#ifndef FRUGAL_DATA_H
#define FRUGAL_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frugal/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A whole dataset decoded in memory: every image has the same c×h×w. */
struct fr_dataset {
    int64_t n;           /* number of images */
    int c, h, w;         /* channels, height, width */
    uint8_t *pixels;     /* n*h*w*c bytes, NHWC, one contiguous array */
    int32_t *labels;     /* n labels in [0, n_classes), -1 = unlabeled */
    float *soft;         /* n*n_classes soft labels, or NULL (CSV with probabilities) */
    int n_classes;       /* 0 when nothing is labeled */
    char **class_names;  /* n_classes names (folder names, CSV header, Fashion-MNIST names, else "0".."K-1") */
    char **paths;        /* n source paths (folder, CSV) or NULL */
    char *source;        /* what was opened, for messages */
};

enum fr_bad_image {
    FR_BAD_IMAGE_FAIL = 0, /* the first undecodable image fails the open */
    FR_BAD_IMAGE_SKIP,     /* it is skipped with a warning through fr_log */
};

enum fr_resize { FR_RESIZE_BILINEAR = 0, FR_RESIZE_NEAREST };

struct fr_dataset_opts {
    int channels, height, width; /* 0 = native (the first image's for folders/CSV) */
    enum fr_resize resize;
    enum fr_bad_image on_bad_image;
    const char *split; /* named datasets: "train" (default) or "test" */
};

void fr_dataset_opts_init(struct fr_dataset_opts *o);

/* Opens a dataset from a spec: "fmnist" (or "fmnist:test"), "idx:IMAGES,LABELS" (LABELS optional),
 * "folder:DIR", "csv:FILE". `opts` may be NULL (defaults). */
enum fr_status fr_dataset_open(const char *spec, const struct fr_dataset_opts *opts, struct fr_dataset **out);
void fr_dataset_free(struct fr_dataset *ds);

/* IDX files (MNIST layout: u8 images n×h×w or n×h×w×c, u8 labels n), gzip-compressed or plain.
 * `labels_path` may be NULL (unlabeled). */
enum fr_status fr_dataset_idx_open(const char *images_path, const char *labels_path,
                                   const struct fr_dataset_opts *opts, struct fr_dataset **out);
/* The same from memory buffers (gzip or plain); `name` is used in messages. labels may be NULL. */
enum fr_status fr_dataset_idx_from_memory(const void *images, size_t images_size, const void *labels,
                                          size_t labels_size, const char *name, struct fr_dataset **out);
/* Fashion-MNIST from $FRUGAL_DATA[/fashion-mnist] or /usr/share/datasets/fashion-mnist; split "train"/"test". */
enum fr_status fr_dataset_fmnist_open(const char *split, const struct fr_dataset_opts *opts, struct fr_dataset **out);
/* Directory in which fr_dataset_fmnist_open would look, or NULL when the files are not installed. */
const char *fr_dataset_fmnist_dir(void);

/* DIR/<class>/<image> (classes sorted by name) or DIR/<image> (unlabeled). */
enum fr_status fr_dataset_folder_open(const char *dir, const struct fr_dataset_opts *opts, struct fr_dataset **out);

/* CSV label list: `path,label` or `path,p0,p1,...` (soft labels), optional header line (a first line whose
 * first field is path, file, filename or image, or whose second field is not a number), paths relative to the
 * CSV file's directory. An empty label or -1 means unlabeled. Lines starting with '#' are comments, except a
 * first line `#classes,NAME0,NAME1,...`, which gives the class names and count of hard labels (as
 * `frugal pseudo-label` writes it). */
enum fr_status fr_dataset_csv_open(const char *path, const struct fr_dataset_opts *opts, struct fr_dataset **out);
/* The same from text in memory; image paths are taken relative to `base_dir` (NULL = "."). */
enum fr_status fr_dataset_csv_from_memory(const char *text, size_t size, const char *base_dir, const char *name,
                                          const struct fr_dataset_opts *opts, struct fr_dataset **out);

/* Parsed CSV rows before any image is read. */
struct fr_csv_rows {
    int64_t n;
    char **paths;        /* as written in the file */
    int32_t *labels;     /* -1 = unlabeled; argmax of the soft labels in soft files */
    float *soft;         /* n*n_soft or NULL */
    int n_soft;          /* number of probability columns, 0 for hard labels */
    char **header;       /* names of the columns after the path (header line), NULL without one */
    int n_header;
    char **classes;      /* names of the `#classes` line, NULL without one */
    int n_classes;
};
enum fr_status fr_csv_parse(const char *text, size_t size, const char *name, struct fr_csv_rows *out);
void fr_csv_rows_free(struct fr_csv_rows *r);

/* The images of the classes in `list` ("5-9", "0,2,4", ranges and single classes, comma-separated), renumbered
 * 0.. in the order listed, with their class names; FR_STATUS_INVALID_ARGUMENT for a malformed list or a class
 * outside [0, n_classes). Soft labels are dropped (they name the old classes). */
enum fr_status fr_dataset_filter_classes(const struct fr_dataset *ds, const char *list, struct fr_dataset **out);
/* A new dataset holding images idx[0..n) of `ds` (copied); drop_labels sets every label to -1. */
enum fr_status fr_dataset_subset(const struct fr_dataset *ds, const int64_t *idx, int64_t n, bool drop_labels,
                                 struct fr_dataset **out);

/* Number of images per label (counts[n_classes]) into `counts`. */
void fr_dataset_class_counts(const struct fr_dataset *ds, int64_t *counts);

/* --- images --- */

/* Decodes a PNG/JPEG/BMP image from memory into `channels` channels (0 = native) resized to height×width
 * (0 = native). *pixels is malloc'd (HWC u8); free() it. */
enum fr_status fr_image_decode(const void *data, size_t size, const char *name, int channels, int height, int width,
                               enum fr_resize resize, uint8_t **pixels, int *c, int *h, int *w);
enum fr_status fr_image_load(const char *path, int channels, int height, int width, enum fr_resize resize,
                             uint8_t **pixels, int *c, int *h, int *w);
/* Converts channel count (1↔3↔4, 2 = grey+alpha; luma 77/150/29 like stb_image) and resizes. Pixel centres
 * are aligned (half-pixel convention, as OpenCV/PyTorch align_corners=false). */
void fr_image_convert(const uint8_t *src, int sc, int sh, int sw, uint8_t *dst, int dc, int dh, int dw,
                      enum fr_resize resize);

/* --- splits --- */

/* Index arrays into a dataset. labeled ∪ val ∪ unlabeled = all images, disjoint, each sorted ascending. */
struct fr_split {
    int64_t *labeled, n_labeled;     /* training images that keep their labels */
    int64_t *val, n_val;             /* validation images (carved from the label budget) */
    int64_t *unlabeled, n_unlabeled; /* the rest: labels to be discarded (fr_dataset_subset drop_labels) */
};

/* Picks n_budget labeled images, class-balanced (n_budget/K per class; the remainder goes to randomly
 * chosen classes), n_val of them (also balanced) become the validation split. n_budget <= 0 = every
 * labeled image. Images labeled -1 always go to `unlabeled`. Deterministic for a seed (Philox, FR_RNG_SPLIT). */
enum fr_status fr_split_make(const struct fr_dataset *ds, int64_t n_budget, int64_t n_val, uint64_t seed,
                             struct fr_split *out);
void fr_split_free(struct fr_split *s);

/* --- loader --- */

struct fr_loader_opts {
    int batch;      /* images per batch */
    bool shuffle;   /* reshuffle each epoch with (seed, epoch) */
    bool drop_last; /* drop the last partial batch instead of returning it */
    bool prefetch;  /* fill the next batch in a background thread */
    uint64_t seed;
};
void fr_loader_opts_init(struct fr_loader_opts *o); /* batch 64, shuffle, keep last, prefetch, seed 0 */

struct fr_batch {
    int n;                /* images in this batch (< batch only for a kept last batch) */
    int c, h, w;
    const uint8_t *images; /* n*h*w*c u8 NHWC */
    const int32_t *labels; /* n */
    const float *soft;     /* n*n_classes, or NULL when the dataset has no soft labels */
    const int64_t *index;  /* n dataset indices */
    int64_t epoch, step;   /* step = batch number within the epoch */
};

struct fr_loader;
/* Iterates over dataset images idx[0..n) (NULL = all). The dataset must outlive the loader. */
enum fr_status fr_loader_new(const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                             const struct fr_loader_opts *opts, struct fr_loader **out);
int64_t fr_loader_batches_per_epoch(const struct fr_loader *l);
/* Starts (or restarts) epoch `epoch` at batch `first_step` (resume mid-epoch). */
enum fr_status fr_loader_start(struct fr_loader *l, int64_t epoch, int64_t first_step);
/* Next batch of the epoch, valid until the following call; *batch = NULL at the end of the epoch. */
enum fr_status fr_loader_next(struct fr_loader *l, const struct fr_batch **batch);
void fr_loader_free(struct fr_loader *l);

/* Seeded Fisher-Yates shuffle of perm[0..n) in place, Philox stream (seed, purpose, step). The loader uses
 * purpose FR_RNG_SHUFFLE and step = epoch on 0..n-1; the splits FR_RNG_SPLIT. */
void fr_shuffle_indices(int64_t *perm, int64_t n, uint64_t seed, uint32_t purpose, uint32_t step);

#ifdef __cplusplus
}
#endif
#endif
