/* Datasets (IDX, Fashion-MNIST, image folders, CSV label lists), seeded class-balanced splits, images
 * and the prefetching batch loader.
 *
 *   struct fr_dataset_opts o;  fr_dataset_opts_init(&o);  o.split = "train";
 *   struct fr_dataset *ds;     fr_dataset_open("fmnist", &o, &ds);       // or idx:IMG,LAB folder:DIR csv:FILE
 *   int64_t idx[2] = {5, 9};   uint8_t *px = malloc(2 * ds->h * ds->w * ds->c);
 *   fr_dataset_read(ds, idx, 2, NULL, px);                              // u8 NHWC, any kind of dataset
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

struct fr_image_files;

#ifdef __cplusplus
extern "C" {
#endif

/* A dataset. In-memory datasets (IDX, Fashion-MNIST) hold every image in `pixels`; image folders and CSV lists
 * keep only their paths and decode images when they are read, on worker threads, brought to c×h×w (bounded
 * memory: nothing grows with the number of images but the paths). Read images of either kind with
 * fr_dataset_read. */
struct fr_dataset {
    int64_t n;           /* number of images */
    int c, h, w;         /* every image is delivered as h×w×c */
    uint8_t *pixels;     /* in-memory datasets: n*h*w*c bytes, NHWC, contiguous; NULL when decoded on demand */
    int32_t *labels;     /* n labels in [0, n_classes), -1 = unlabeled */
    float *soft;         /* n*n_classes soft labels, or NULL (CSV with probabilities) */
    int n_classes;       /* 0 when nothing is labeled */
    char **class_names;  /* n_classes names (folder names, CSV header, Fashion-MNIST names, else "0".."K-1") */
    char **paths;        /* n source paths (folder, CSV) or NULL */
    char *source;        /* what was opened, for messages */
    struct fr_image_files *files; /* on-demand decoding state (private); NULL for in-memory datasets */
};

enum fr_bad_image {
    FR_BAD_IMAGE_FAIL = 0, /* an undecodable image fails the open or the read that meets it */
    FR_BAD_IMAGE_SKIP,     /* it is left out, named once through fr_log (see fr_dataset_read) */
};

/* Interpolation when an image is resized: bilinear is Pillow's (antialiased when shrinking, as torchvision's
 * Resize on images, same bytes); nearest takes the source pixel under the output pixel's centre. */
enum fr_resize { FR_RESIZE_BILINEAR = 0, FR_RESIZE_NEAREST };

struct fr_dataset_opts {
    int channels;        /* 0 = native: 3 when any image has colour, else 1 (alpha only when asked: 2 or 4) */
    int height, width;   /* 0 = native: all images must then share one size (the first offending file is named);
                          * else images of another size are resized (shorter side) and centre-cropped */
    enum fr_resize resize;
    enum fr_bad_image on_bad_image;
    const char *split;   /* named datasets: "train" (default) or "test" */
    int threads;         /* decoding threads of on-demand datasets (0 = as many as the CPU path: fr_set_threads,
                          * FRUGAL_THREADS, else the cores) */
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

/* A dataset of the image files paths[0..n) with labels (NULL = unlabeled), decoded on demand; `name` is used in
 * messages. With FR_BAD_IMAGE_SKIP files whose header cannot be read are left out here. */
enum fr_status fr_dataset_from_files(char *const *paths, const int32_t *labels, int64_t n, const char *name,
                                     const struct fr_dataset_opts *opts, struct fr_dataset **out);

/* --- reading batches --- */

/* How fr_dataset_read brings an image to the dataset's h×w. */
enum fr_crop {
    FR_CROP_CENTER = 0, /* same size: as is; else the shorter side resized to the size, then the centre cropped
                         * (torchvision Resize(size) + CenterCrop(size)) */
    FR_CROP_RANDOM,     /* random resized crop of the whole source image (torchvision RandomResizedCrop) */
};

struct fr_read_opts {
    enum fr_crop crop;
    float scale[2]; /* FR_CROP_RANDOM: crop area as a fraction of the image, (0.08, 1) */
    float ratio[2]; /* FR_CROP_RANDOM: crop aspect ratio (width/height) range, (3/4, 4/3) */
    float hflip;    /* probability of a horizontal flip at load (0) */
    uint64_t seed;  /* random crops and flips are a function of (seed, epoch, dataset index) only */
    int64_t epoch;
};
void fr_read_opts_init(struct fr_read_opts *o); /* centre crop, no flip, torchvision's scale and ratio */

/* Fills out (n*h*w*c bytes, u8 NHWC, the dataset's c/h/w) with images idx[0..n) of ds; ro NULL = centre crop.
 * In-memory datasets copy their stored images (or crop them: FR_CROP_RANDOM); on-demand datasets decode the files
 * on the dataset's worker threads. An undecodable file fails the read (FR_STATUS_FORMAT naming the file) unless the
 * dataset skips bad images: then it is named once through fr_log (FR_LOG_WARN) and its slot gets a copy of another
 * image of the same call, idx[i] becoming that image's index (take labels after the read; compare with what you
 * asked to leave it out), or -1 with zeros when no image of the call is readable. Thread-safe. */
enum fr_status fr_dataset_read(const struct fr_dataset *ds, int64_t *idx, int64_t n, const struct fr_read_opts *ro,
                               uint8_t *out);

/* torchvision RandomResizedCrop.get_params on an h×w image: win = {top, left, height, width}. Attempt t (0..9)
 * uses the uniform draws uniform(ctx, 4t .. 4t+3) in [0,1) for the area, the log-ratio, the top and the left;
 * after ten misses, the central crop with the ratio clamped into range. */
void fr_rrc_window(int h, int w, const float scale[2], const float ratio[2],
                   double (*uniform)(void *ctx, uint32_t k), void *ctx, int win[4]);

/* --- images --- */

/* Whether a file name is one frugal reads as an image: not hidden, extension .png, .jpg, .jpeg or .bmp (any
 * case). Folder datasets, predict and augment all decide with this (and fr_image_list_dir). */
bool fr_image_name_ok(const char *name);
/* The images of directory dir (fr_image_name_ok, and not a directory), sorted by name, as "dir/name" paths in
 * *paths (malloc'd, free with fr_image_list_free); its subdirectories (not hidden) into *subdirs when subdirs is
 * not NULL, sorted names. */
enum fr_status fr_image_list_dir(const char *dir, char ***paths, int64_t *n, char ***subdirs, int64_t *n_subdirs);
void fr_image_list_free(char **list, int64_t n);

/* Decodes a PNG/JPEG/BMP image from memory into `channels` channels (0 = native) brought to height×width (0 =
 * native) as datasets read images (shorter side resized, centre cropped). *pixels is malloc'd (HWC u8); free() it. */
enum fr_status fr_image_decode(const void *data, size_t size, const char *name, int channels, int height, int width,
                               enum fr_resize resize, uint8_t **pixels, int *c, int *h, int *w);
enum fr_status fr_image_load(const char *path, int channels, int height, int width, enum fr_resize resize,
                             uint8_t **pixels, int *c, int *h, int *w);
/* Converts channel count (1↔3↔4, 2 = grey+alpha; luma 77/150/29 like stb_image) and resizes (a stretch). Pixel
 * centres are aligned (half-pixel convention, as Pillow/OpenCV/PyTorch align_corners=false). */
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

struct fr_batch;
struct fr_loader_opts {
    int batch;      /* images per batch */
    bool shuffle;   /* reshuffle each epoch with (seed, epoch) */
    bool drop_last; /* drop the last partial batch instead of returning it */
    bool prefetch;  /* fill the next batch in a background thread */
    uint64_t seed;
    int shard_first, shard_count; /* deliver only rows [shard_first, + shard_count) of each batch (a process's share
                                     of a batch split across processes); count 0 = every row */
    /* Called on the loader's thread after a batch is gathered, e.g. to draw its augmentation programs into the
     * caller's buffers for b->slot (each slot's stay valid until the batch after it is taken); an error is returned
     * by the fr_loader_next that would hand out the batch. NULL = none. */
    enum fr_status (*prepare)(void *user, const struct fr_batch *b);
    void *user;
    const struct fr_read_opts *read; /* how images are read (NULL: centre crop); its epoch is the loader's */
};
void fr_loader_opts_init(struct fr_loader_opts *o); /* batch 64, shuffle, keep last, prefetch, seed 0 */

struct fr_batch {
    int n;                /* images in this batch (< batch only for a kept last batch) */
    int c, h, w;
    const uint8_t *images; /* n*h*w*c u8 NHWC */
    const int32_t *labels; /* n */
    const float *soft;     /* n*n_classes, or NULL when the dataset has no soft labels */
    const float *extra;    /* n*n_extra rows of fr_loader_src.extra, or NULL */
    const float *features; /* n*n_features rows of fr_loader_src.features (then images is NULL), or NULL */
    const int64_t *index;  /* n dataset indices (entry indices for a source with two datasets) */
    int64_t epoch, step;   /* step = batch number within the epoch */
    int slot;              /* which of the loader's two buffers (0, 1) holds it */
};

struct fr_loader;
/* Iterates over dataset images idx[0..n) (NULL = all). The dataset must outlive the loader. */
enum fr_status fr_loader_new(const struct fr_dataset *ds, const int64_t *idx, int64_t n,
                             const struct fr_loader_opts *opts, struct fr_loader **out);
/* A loader over the entries of a training set: entry i is image idx[i] (NULL: i) of ds[which[i]] (which NULL: ds[0])
 * with label labels[i] (NULL: the dataset's), soft targets soft[i*n_classes..] (NULL: none, or ds[0]'s when there is
 * one dataset), a row extra[i*n_extra..] (e.g. cached teacher logits; NULL: none) and, instead of its image, a row
 * features[i*n_features..] (NULL: the image). The arrays and datasets must outlive the loader; the datasets must
 * share the image size. */
struct fr_loader_src {
    const struct fr_dataset *ds[2];
    int64_t n;
    const uint8_t *which;
    const int64_t *idx;
    const int32_t *labels;
    const float *soft, *extra;
    int n_classes, n_extra;
    const float *features; /* per entry a row of n_features values handed out in place of its image: the datasets are
                              not read (e.g. a frozen backbone's outputs, computed once) */
    int64_t n_features;
};
enum fr_status fr_loader_new_src(const struct fr_loader_src *src, const struct fr_loader_opts *opts,
                                 struct fr_loader **out);
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
