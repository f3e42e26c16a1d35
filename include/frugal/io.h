/* safetensors files (read with full validation, write atomically), loading/saving named tensors, checkpoints.
 *
 *   struct fr_named_tensor w[] = {{"fc.weight", fc_w}, {"fc.bias", fc_b}};
 *   fr_st_save_tensors("model.safetensors", w, 2, (struct fr_kv[]){{"epoch", "3"}}, 1);
 *   struct fr_st_load_opts lo = {.allow_missing = false, .ignore_unexpected = true};
 *   fr_st_load_file("model.safetensors", w, 2, &lo);   // all name/shape mismatches in one error
 *   struct fr_atomic_file *af;  FILE *f;               // any file, in place only once complete:
 *   if (fr_atomic_open("labels.csv", &af, &f) == FR_STATUS_OK) {
 *       fprintf(f, "path,label\n");
 *       if (fr_atomic_commit(af) != FR_STATUS_OK) puts(fr_last_error());   // every write checked; frees af
 *   }
 *
 * Format: 8-byte little-endian header size N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {"k": "v"}},
 * then the data, offsets relative to its start, tensors contiguous and covering it exactly.
 */
#ifndef FRUGAL_IO_H
#define FRUGAL_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "frugal/status.h"
#include "frugal/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum fr_st_dtype {
    FR_ST_BOOL = 0, FR_ST_U8, FR_ST_I8, FR_ST_I16, FR_ST_U16, FR_ST_F16, FR_ST_BF16,
    FR_ST_I32, FR_ST_U32, FR_ST_F32, FR_ST_I64, FR_ST_U64, FR_ST_F64, FR_ST_DTYPE_COUNT
};
const char *fr_st_dtype_name(enum fr_st_dtype t); /* "F32" */
size_t fr_st_dtype_size(enum fr_st_dtype t);

#define FR_ST_MAX_DIMS 8

struct fr_st_tensor {
    char *name;
    enum fr_st_dtype dtype;
    int ndim;
    int64_t shape[FR_ST_MAX_DIMS];
    size_t begin, end;   /* data_offsets */
    const uint8_t *data; /* points into the file image held by struct fr_safetensors */
};

struct fr_safetensors {
    char *name;   /* path or the name given to _from_memory, for messages */
    uint8_t *buf; /* the whole file */
    size_t size;
    int n_tensors;
    struct fr_st_tensor *tensors; /* in header order */
    int n_meta;
    char **meta_keys, **meta_values;
};

/* Reads and validates a whole file. Every malformation is a one-line FR_STATUS_FORMAT error naming the file. */
enum fr_status fr_st_open(const char *path, struct fr_safetensors **out);
/* The same over a copy of `data`. */
enum fr_status fr_st_from_memory(const void *data, size_t size, const char *name, struct fr_safetensors **out);
void fr_st_free(struct fr_safetensors *st);

const struct fr_st_tensor *fr_st_find(const struct fr_safetensors *st, const char *name);
const char *fr_st_meta(const struct fr_safetensors *st, const char *key); /* NULL if absent */
int64_t fr_st_numel(const struct fr_st_tensor *t);
/* Converts tensor data (any dtype) to f32; n must be its element count. */
enum fr_status fr_st_read_f32(const struct fr_safetensors *st, const struct fr_st_tensor *t, float *out, size_t n);
/* Integer tensors (BOOL/U8/I8/I16/U16/I32/U32/I64/U64) to i32, failing on values out of range. */
enum fr_status fr_st_read_i32(const struct fr_safetensors *st, const struct fr_st_tensor *t, int32_t *out, size_t n);

/* --- writing --- */
struct fr_st_entry {
    const char *name;
    enum fr_st_dtype dtype; /* any; data is little-endian host memory of that dtype */
    int ndim;
    const int64_t *shape;
    const void *data;
};
struct fr_kv {
    const char *key, *value;
};
/* Serialises to a malloc'd buffer (header padded to 8 bytes with spaces, as the reference writer does). */
enum fr_status fr_st_serialize(const struct fr_st_entry *e, int n, const struct fr_kv *meta, int n_meta,
                               uint8_t **out, size_t *size);
/* Writes atomically: temp file in the same directory, fsync, rename, fsync of the directory. */
enum fr_status fr_st_write(const char *path, const struct fr_st_entry *e, int n, const struct fr_kv *meta,
                           int n_meta);
/* Any buffer, atomically (same steps). */
enum fr_status fr_write_file_atomic(const char *path, const void *data, size_t size);
/* The same; durable = false skips the two fsyncs (many small files, e.g. PNGs: still never torn or empty). */
enum fr_status fr_write_file_replace(const char *path, const void *data, size_t size, bool durable);

/* A file streamed through stdio and put in place only when complete (example at the top): fr_atomic_commit
 * checks every write, fsyncs, renames over the old file and frees af; fr_atomic_abort instead removes the
 * temporary file and keeps the old one. */
struct fr_atomic_file;
enum fr_status fr_atomic_open(const char *path, struct fr_atomic_file **out, FILE **f);
enum fr_status fr_atomic_commit(struct fr_atomic_file *af);
void fr_atomic_abort(struct fr_atomic_file *af);

/* --- named tensors --- */
struct fr_named_tensor {
    const char *name; /* NULL = t->name */
    struct fr_tensor *t;
};
struct fr_st_load_opts {
    bool allow_missing;     /* tensors of the model absent from the file are left as they are */
    bool ignore_unexpected; /* tensors of the file the model does not have are ignored */
};
/* Checks every name, shape and dtype first and reports ALL mismatches in one message (nothing is copied then);
 * otherwise copies with fr_tensor_set (f32 tensors accept any float/int file dtype, converted). opts may be NULL. */
enum fr_status fr_st_load_tensors(const struct fr_safetensors *st, const struct fr_named_tensor *ts, int n,
                                  const struct fr_st_load_opts *opts);
enum fr_status fr_st_load_file(const char *path, const struct fr_named_tensor *ts, int n,
                               const struct fr_st_load_opts *opts);
/* Saves with fr_tensor_get (f32 → F32, i32 → I32, u8 → U8), atomically. */
enum fr_status fr_st_save_tensors(const char *path, const struct fr_named_tensor *ts, int n, const struct fr_kv *meta,
                                  int n_meta);

/* --- checkpoints: tensors + metadata strings (epoch, step, seeds, RNG counters, class names as JSON...) --- */
/* Adds "format": "pt" and "frugal.checkpoint": "1" to the caller's metadata; written atomically. */
enum fr_status fr_checkpoint_save(const char *path, const struct fr_named_tensor *ts, int n, const struct fr_kv *meta,
                                  int n_meta);
/* Loads the tensors (opts may be NULL = strict) and, if out_st is not NULL, gives back the opened file so the
 * caller reads its metadata with fr_st_meta() (free it with fr_st_free). */
enum fr_status fr_checkpoint_load(const char *path, const struct fr_named_tensor *ts, int n,
                                  const struct fr_st_load_opts *opts, struct fr_safetensors **out_st);

#ifdef __cplusplus
}
#endif
#endif
