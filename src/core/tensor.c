/* Contexts, tensor creation, shape queries, host<->storage copies and leaf allocation. */
#include <math.h>
#include <stdarg.h>

#include "core/internal.h"

#define CTX_CHUNK 256

struct fr_ctx {
    struct fr_tensor **chunks;
    int n_chunks;
    int count;
    struct fr_buffer **buffers;
    int n_buffers;
    enum fr_status status;
};

size_t fr_dtype_size(enum fr_dtype t)
{
    switch (t) {
    case FR_F32: return 4;
    case FR_U8: return 1;
    case FR_I32: return 4;
    default: return 0;
    }
}

const char *fr_dtype_name(enum fr_dtype t)
{
    switch (t) {
    case FR_F32: return "f32";
    case FR_U8: return "u8";
    case FR_I32: return "i32";
    default: return "?";
    }
}

struct fr_ctx *fr_ctx_new(void) { return calloc(1, sizeof(struct fr_ctx)); }

void fr_ctx_free(struct fr_ctx *ctx)
{
    if (!ctx)
        return;
    for (int i = 0; i < ctx->n_buffers; i++)
        fr_buffer_free(ctx->buffers[i]);
    free(ctx->buffers);
    for (int i = 0; i < ctx->n_chunks; i++)
        free(ctx->chunks[i]);
    free(ctx->chunks);
    free(ctx);
}

int fr_ctx_count(const struct fr_ctx *ctx) { return ctx->count; }

struct fr_tensor *fr_ctx_tensor(const struct fr_ctx *ctx, int i)
{
    if (i < 0 || i >= ctx->count)
        return NULL;
    return &ctx->chunks[i / CTX_CHUNK][i % CTX_CHUNK];
}

enum fr_status fr_ctx_status(const struct fr_ctx *ctx) { return ctx->status; }

struct fr_tensor *fr_ctx_fail(struct fr_ctx *ctx, enum fr_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fr_verror(s, fmt, ap);
    va_end(ap);
    if (ctx && ctx->status == FR_STATUS_OK)
        ctx->status = s;
    return NULL;
}

static struct fr_tensor *ctx_new_tensor(struct fr_ctx *ctx)
{
    if (ctx->count % CTX_CHUNK == 0) {
        struct fr_tensor **c = realloc(ctx->chunks, (size_t)(ctx->n_chunks + 1) * sizeof *c);
        if (!c)
            return NULL;
        ctx->chunks = c;
        c[ctx->n_chunks] = calloc(CTX_CHUNK, sizeof(struct fr_tensor));
        if (!c[ctx->n_chunks])
            return NULL;
        ctx->n_chunks++;
    }
    struct fr_tensor *t = fr_ctx_tensor(ctx, ctx->count++);
    memset(t, 0, sizeof *t);
    t->id = ctx->count - 1;
    return t;
}

void fr_set_contiguous_strides(struct fr_tensor *t)
{
    int64_t s = (int64_t)fr_dtype_size(t->type);
    for (int d = FR_MAX_DIMS - 1; d >= 0; d--) {
        t->nb[d] = s;
        s *= t->ne[d];
    }
}

struct fr_tensor *fr_tensor_new(struct fr_ctx *ctx, enum fr_dtype type, int ndim, const int64_t *ne)
{
    if (!ctx)
        return NULL;
    if (ndim < 0 || ndim > FR_MAX_DIMS || (unsigned)type >= FR_DTYPE_COUNT)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "tensor: ndim %d or dtype %d out of range", ndim,
                           (int)type);
    for (int d = 0; d < ndim; d++)
        if (ne[d] <= 0 || ne[d] > ((int64_t)1 << 40))
            return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "tensor: dimension %d has size %lld", d, (long long)ne[d]);
    struct fr_tensor *t = ctx_new_tensor(ctx);
    if (!t)
        return fr_ctx_fail(ctx, FR_STATUS_OUT_OF_MEMORY, "tensor: out of memory");
    t->type = type;
    t->ndim = ndim;
    for (int d = 0; d < FR_MAX_DIMS; d++)
        t->ne[d] = d < ndim ? ne[d] : 1;
    fr_set_contiguous_strides(t);
    t->op = FR_OP_NONE;
    return t;
}

struct fr_tensor *fr_tensor_new_1d(struct fr_ctx *ctx, enum fr_dtype type, int64_t n0)
{
    return fr_tensor_new(ctx, type, 1, (int64_t[]){n0});
}

struct fr_tensor *fr_tensor_new_2d(struct fr_ctx *ctx, enum fr_dtype type, int64_t n0, int64_t n1)
{
    return fr_tensor_new(ctx, type, 2, (int64_t[]){n0, n1});
}

struct fr_tensor *fr_tensor_new_4d(struct fr_ctx *ctx, enum fr_dtype type, int64_t n0, int64_t n1, int64_t n2,
                                   int64_t n3)
{
    return fr_tensor_new(ctx, type, 4, (int64_t[]){n0, n1, n2, n3});
}

struct fr_tensor *fr_tensor_set_name(struct fr_tensor *t, const char *fmt, ...)
{
    if (!t)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    return t;
}

struct fr_tensor *fr_tensor_set_flags(struct fr_tensor *t, uint32_t flags)
{
    if (t)
        t->flags |= flags;
    return t;
}

int64_t fr_nelements(const struct fr_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

size_t fr_nbytes(const struct fr_tensor *t)
{
    size_t n = fr_dtype_size(t->type);
    for (int d = 0; d < FR_MAX_DIMS; d++)
        if (t->ne[d] > 1 && t->nb[d] > 0)
            n += (size_t)(t->ne[d] - 1) * (size_t)t->nb[d];
    return n;
}

bool fr_is_contiguous(const struct fr_tensor *t)
{
    int64_t s = (int64_t)fr_dtype_size(t->type);
    for (int d = FR_MAX_DIMS - 1; d >= 0; d--) {
        if (t->ne[d] != 1 && t->nb[d] != s)
            return false;
        s *= t->ne[d];
    }
    return true;
}

bool fr_same_shape(const struct fr_tensor *a, const struct fr_tensor *b)
{
    for (int d = 0; d < FR_MAX_DIMS; d++)
        if (a->ne[d] != b->ne[d])
            return false;
    return a->ndim == b->ndim;
}

const char *fr_tensor_shape_str(const struct fr_tensor *t, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s[", fr_dtype_name(t->type));
    for (int d = 0; d < t->ndim && n > 0 && (size_t)n < size; d++)
        n += snprintf(buf + n, size - (size_t)n, "%s%lld", d ? "," : "", (long long)t->ne[d]);
    if (n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, "]");
    return buf;
}

struct fr_tensor *fr_storage_root(struct fr_tensor *t)
{
    while (t && t->view_src)
        t = t->view_src;
    return t;
}

void *fr_tensor_data(const struct fr_tensor *t)
{
    if (!t->buffer || !t->buffer->host)
        return NULL;
    return (char *)t->buffer->host + t->offset;
}

enum fr_status fr_tensor_set(struct fr_tensor *t, const void *data, size_t size)
{
    if (!t->buffer)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "tensor '%s': no storage (plan the graph first)", t->name);
    if (!fr_is_contiguous(t) || size > fr_nbytes(t))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "tensor '%s': set of %zu bytes into %zu (contiguous: %d)",
                        t->name, size, fr_nbytes(t), fr_is_contiguous(t));
    return t->buffer->backend->iface->buffer_set(t->buffer, t->offset, data, size);
}

enum fr_status fr_tensor_get(const struct fr_tensor *t, void *data, size_t size)
{
    if (!t->buffer)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "tensor '%s': no storage (plan the graph first)", t->name);
    if (!fr_is_contiguous(t) || size > fr_nbytes(t))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "tensor '%s': get of %zu bytes from %zu (contiguous: %d)",
                        t->name, size, fr_nbytes(t), fr_is_contiguous(t));
    struct fr_backend *b = t->buffer->backend;
    if (b->iface->synchronize) {
        enum fr_status st = b->iface->synchronize(b);
        if (st != FR_STATUS_OK)
            return st;
    }
    return b->iface->buffer_get(t->buffer, t->offset, data, size);
}

enum fr_status fr_tensor_fill_f32(struct fr_tensor *t, float v)
{
    if (t->type != FR_F32)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "tensor '%s': fill_f32 on %s", t->name, fr_dtype_name(t->type));
    int64_t n = fr_nelements(t);
    float *tmp = malloc((size_t)n * sizeof(float));
    if (!tmp)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "fill: out of memory");
    for (int64_t i = 0; i < n; i++)
        tmp[i] = v;
    enum fr_status st = fr_tensor_set(t, tmp, (size_t)n * sizeof(float));
    free(tmp);
    return st;
}

#define FR_ALIGN 64
static size_t align_up(size_t x) { return (x + FR_ALIGN - 1) & ~(size_t)(FR_ALIGN - 1); }

enum fr_status fr_ctx_adopt_buffer(struct fr_ctx *ctx, struct fr_buffer *buf)
{
    struct fr_buffer **b = realloc(ctx->buffers, (size_t)(ctx->n_buffers + 1) * sizeof *b);
    if (!b)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "context: out of memory");
    ctx->buffers = b;
    b[ctx->n_buffers++] = buf;
    return FR_STATUS_OK;
}

enum fr_status fr_ctx_alloc(struct fr_ctx *ctx, struct fr_backend *backend, uint32_t flags_mask)
{
    size_t total = 0;
    for (int i = 0; i < ctx->count; i++) {
        struct fr_tensor *t = fr_ctx_tensor(ctx, i);
        if (t->op != FR_OP_NONE || t->buffer || t->view_src || (flags_mask && !(t->flags & flags_mask)))
            continue;
        total += align_up(fr_nbytes(t));
    }
    if (total == 0)
        return FR_STATUS_OK;
    struct fr_buffer *buf;
    enum fr_status st = fr_buffer_alloc(backend, total, &buf);
    if (st != FR_STATUS_OK)
        return st;
    if ((st = fr_ctx_adopt_buffer(ctx, buf)) != FR_STATUS_OK) {
        fr_buffer_free(buf);
        return st;
    }
    size_t off = 0;
    for (int i = 0; i < ctx->count; i++) {
        struct fr_tensor *t = fr_ctx_tensor(ctx, i);
        if (t->op != FR_OP_NONE || t->buffer || t->view_src || (flags_mask && !(t->flags & flags_mask)))
            continue;
        t->buffer = buf;
        t->offset = off;
        off += align_up(fr_nbytes(t));
    }
    return FR_STATUS_OK;
}
