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
/* Brings every image of an in-memory ds to the sizes asked in opts (0 = keep): channel conversion, shorter-side
 * resize + centre crop (the same fit fr_dataset_read gives on-demand datasets). */
enum fr_status fr_ds_apply_opts(struct fr_dataset *ds, const struct fr_dataset_opts *opts);
/* Makes ds an on-demand dataset of the images paths[0..n) (labels, soft (n_soft per row) may be NULL): sets paths,
 * labels, soft, n, c/h/w and the decoding state. The size and channel count not given in opts come from the
 * headers of all files, read in parallel (mixed sizes: the first offending file is named); files whose header
 * cannot be read then fail or are left out per opts. */
enum fr_status fr_ds_load_images(struct fr_dataset *ds, char *const *paths, int64_t n, const int32_t *labels,
                                 const float *soft, int n_soft, const struct fr_dataset_opts *opts);
/* The decoding state of a subset: images idx[0..n) of src's files (bad-file marks carried over). */
enum fr_status fr_ds_files_subset(const struct fr_image_files *src, const int64_t *idx, int64_t n,
                                  struct fr_image_files **out);
void fr_ds_files_free(struct fr_image_files *f);
/* fr_dataset_read for on-demand datasets. */
enum fr_status fr_ds_files_read(const struct fr_dataset *ds, int64_t *idx, int64_t n, const struct fr_read_opts *ro,
                                uint8_t *out);
/* The crop window {top, left, height, width} that read options give image j (h×w source) of a dataset of dh×dw
 * images, and whether it is flipped. */
bool fr_ds_window(const struct fr_read_opts *ro, int64_t j, int h, int w, int dh, int dw, int win[4]);

/* A decoded image (HWC u8, malloc'd). */
struct fr_img {
    uint8_t *px;
    int c, h, w;
};
/* Size and channel count from the header (1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha). */
enum fr_status fr_img_info(const uint8_t *data, size_t size, const char *name, int *c, int *h, int *w);
/* Decodes into `channels` channels (0 = native); libjpeg-turbo for JPEG in builds with it, else stb_image. */
enum fr_status fr_img_decode(const uint8_t *data, size_t size, const char *name, int channels, struct fr_img *out);
/* The same, reduced by 1/denom (2, 4, 8) when libjpeg-turbo decodes it (a JPEG in a build with it): the output
 * is then ceil(h/denom) x ceil(w/denom), the file's pixel (y, x) at (y/denom, x/denom). Other files: full size. */
enum fr_status fr_img_decode_reduced(const uint8_t *data, size_t size, const char *name, int channels, int denom,
                                     struct fr_img *out);
/* Resamples the window win = {top, left, height, width} of src (sh×sw, sc channels) onto dst (dh×dw, dc channels),
 * mirrored when flip, with Pillow's conventions (a crop, then Image.resize; bilinear antialiased when shrinking). */
enum fr_status fr_img_resample(const uint8_t *src, int sc, int sh, int sw, const int win[4], bool flip, uint8_t *dst,
                               int dc, int dh, int dw, enum fr_resize mode);
/* The same with a box of fractional pixels {top, left, height, width} (as Pillow's resize(box=...), taps kept within
 * the box's whole pixels). */
enum fr_status fr_img_resample_box(const uint8_t *src, int sc, int sh, int sw, const double box[4], bool flip,
                                   uint8_t *dst, int dc, int dh, int dw, enum fr_resize mode);
/* The centre window of an sh×sw image with dh×dw's aspect ratio spanning its shorter side (resize + centre crop). */
void fr_img_center_window(int sh, int sw, int dh, int dw, int win[4]);
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
