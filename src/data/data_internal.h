/* Helpers shared by the dataset readers in src/data/ (allocation, names, path joins). */
#ifndef FRUGAL_DATA_INTERNAL_H
#define FRUGAL_DATA_INTERNAL_H

#include <stdint.h>
#include <stdlib.h>

#include "frugal/data.h"

/* A zeroed dataset with `source` copied; NULL on out of memory. */
struct fr_dataset *fr_ds_alloc(const char *source);
/* Allocates n_classes class names "0".."K-1" unless names are already set. */
enum fr_status fr_ds_default_class_names(struct fr_dataset *ds);
/* Resizes/converts every image of ds in place to the sizes asked in opts (0 = keep). */
enum fr_status fr_ds_apply_opts(struct fr_dataset *ds, const struct fr_dataset_opts *opts);
/* Decodes the images paths[0..n) into ds (pixels, c/h/w, n, labels, soft, paths) with the sizes of opts (0 = the
 * first decoded image's); labels/soft (n_soft per row) may be NULL. Undecodable images fail or are skipped per opts. */
enum fr_status fr_ds_load_images(struct fr_dataset *ds, char *const *paths, int64_t n, const int32_t *labels,
                                 const float *soft, int n_soft, const struct fr_dataset_opts *opts);
/* malloc'd copy; NULL on out of memory. */
char *fr_strdup(const char *s);
/* dir + "/" + name (name unchanged when absolute or dir is NULL/""). */
char *fr_path_join(const char *dir, const char *name);
/* Directory part of a path ("." when there is none). malloc'd. */
char *fr_path_dir(const char *path);
/* Reads a whole file; FR_STATUS_IO naming the path on failure. */
enum fr_status fr_read_file(const char *path, uint8_t **data, size_t *size);
/* Multiplies with overflow detection: false when a*b does not fit in size_t. */
static inline int fr_mul_ok(size_t a, size_t b, size_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}

#endif
