/* Tensors: dtype, up to 4 dims (outermost first, PyTorch order), byte strides, storage — and graph nodes.
 *
 *   struct fr_ctx *ctx = fr_ctx_new();
 *   struct fr_tensor *x = fr_tensor_new(ctx, FR_F32, 2, (int64_t[]){3, 4});
 *   struct fr_tensor *y = fr_relu(ctx, fr_scale(ctx, x, 2.0f));   // ops build nodes (see ops.h)
 *   struct fr_graph *g = fr_graph_new(ctx); fr_graph_add(g, y);    // see graph.h
 */
#ifndef FRUGAL_TENSOR_H
#define FRUGAL_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frugal/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FR_MAX_DIMS 4
#define FR_MAX_SRC 6
#define FR_MAX_OP_PARAMS 16
#define FR_NAME_MAX 64

enum fr_dtype { FR_F32 = 0, FR_U8, FR_I32, FR_DTYPE_COUNT };

size_t fr_dtype_size(enum fr_dtype t);
const char *fr_dtype_name(enum fr_dtype t);

enum fr_op {
#define FR_OP(ENUM, name, n_src, bwd) FR_OP_##ENUM,
#include "frugal/ops.def"
#undef FR_OP
    FR_OP_COUNT
};
const char *fr_op_name(enum fr_op op);

enum fr_tensor_flag {
    FR_FLAG_INPUT = 1u << 0,  /* set by the user between runs: gets its own static storage */
    FR_FLAG_OUTPUT = 1u << 1, /* read after a run: never shares memory with anything */
    FR_FLAG_PARAM = 1u << 2,  /* trainable parameter: gradient computed unless FROZEN */
    FR_FLAG_LOSS = 1u << 3,
    FR_FLAG_FROZEN = 1u << 4, /* parameter that gets no gradient and no update */
    FR_FLAG_STATE = 1u << 5,  /* persistent non-trainable state (optimizer moments, BN running stats) */
    FR_FLAG_GRAD = 1u << 6,   /* accumulated gradient of a parameter (kept, readable after a run) */
    FR_FLAG_CONST = 1u << 7,  /* leaf whose content is set once before the first run */
};

struct fr_buffer;
struct fr_ctx;

struct fr_tensor {
    enum fr_dtype type;
    int ndim;
    int64_t ne[FR_MAX_DIMS]; /* sizes; ne[ndim..3] = 1 */
    int64_t nb[FR_MAX_DIMS]; /* byte strides; a stride of 0 broadcasts */

    /* storage: (buffer, byte offset). For views, the tensor viewed. */
    struct fr_buffer *buffer;
    size_t offset;
    struct fr_tensor *view_src;
    size_t view_offs; /* byte offset into view_src's storage */

    /* graph node */
    enum fr_op op;
    union {
        int32_t i;
        float f;
    } params[FR_MAX_OP_PARAMS];
    struct fr_tensor *src[FR_MAX_SRC];
    uint32_t flags;
    struct fr_tensor *grad;

    char name[FR_NAME_MAX];
    void *extra; /* backend-private data */
    int id;      /* index within its context */
};

/* --- contexts own tensor metadata (and the storage they allocate) --- */
struct fr_ctx *fr_ctx_new(void);
void fr_ctx_free(struct fr_ctx *ctx);
/* Number of tensors created in the context so far, and the i-th one. */
int fr_ctx_count(const struct fr_ctx *ctx);
struct fr_tensor *fr_ctx_tensor(const struct fr_ctx *ctx, int i);
/* Last construction error of this context (ops return NULL on a bad shape and record it). */
enum fr_status fr_ctx_status(const struct fr_ctx *ctx);

/* --- creation (leaves: op = FR_OP_NONE, no storage until allocated) --- */
struct fr_tensor *fr_tensor_new(struct fr_ctx *ctx, enum fr_dtype type, int ndim, const int64_t *ne);
struct fr_tensor *fr_tensor_new_1d(struct fr_ctx *ctx, enum fr_dtype type, int64_t n0);
struct fr_tensor *fr_tensor_new_2d(struct fr_ctx *ctx, enum fr_dtype type, int64_t n0, int64_t n1);
struct fr_tensor *fr_tensor_new_4d(struct fr_ctx *ctx, enum fr_dtype type, int64_t n0, int64_t n1,
                                   int64_t n2, int64_t n3);
struct fr_tensor *fr_tensor_set_name(struct fr_tensor *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
struct fr_tensor *fr_tensor_set_flags(struct fr_tensor *t, uint32_t flags); /* ORs them in */

/* --- shape queries --- */
int64_t fr_nelements(const struct fr_tensor *t);
size_t fr_nbytes(const struct fr_tensor *t); /* bytes spanned by the (possibly strided) data */
bool fr_is_contiguous(const struct fr_tensor *t);
bool fr_same_shape(const struct fr_tensor *a, const struct fr_tensor *b);
/* "f32[64,1,28,28]" into buf; returns buf. */
const char *fr_tensor_shape_str(const struct fr_tensor *t, char *buf, size_t size);

/* --- storage --- */
/* Host pointer to the first element when the storage lives in host memory (CPU backend), else NULL. */
void *fr_tensor_data(const struct fr_tensor *t);
/* Copy `size` bytes between host memory and a contiguous tensor's storage (any backend). */
enum fr_status fr_tensor_set(struct fr_tensor *t, const void *data, size_t size);
enum fr_status fr_tensor_get(const struct fr_tensor *t, void *data, size_t size);
/* Convenience for tests: fill with one f32 value. */
enum fr_status fr_tensor_fill_f32(struct fr_tensor *t, float v);

/* Allocates one buffer on `backend` holding every leaf of the context that has no storage yet and
 * whose flags intersect `flags_mask` (0 = every such leaf). The context owns the buffer. */
struct fr_backend;
enum fr_status fr_ctx_alloc(struct fr_ctx *ctx, struct fr_backend *backend, uint32_t flags_mask);

#ifdef __cplusplus
}
#endif
#endif
