/* The pure-C CPU backend: host buffers, the op dispatch table generated from ops.def, scratch memory. */
#include "cpu/cpu.h"

#include <stdlib.h>

#define N_SCRATCH 4

struct fr_cpu_state {
    struct fr_threadpool *pool;
    bool own_pool;
    void *scratch[N_SCRATCH];
    size_t scratch_size[N_SCRATCH];
};

typedef enum fr_status (*cpu_kernel_fn)(struct fr_cpu_kctx *k, struct fr_tensor *dst);
static const cpu_kernel_fn cpu_kernels[] = {
#define FR_OP(ENUM, name, n_src, bwd) fr_cpu_##name,
#include "frugal/ops.def"
#undef FR_OP
};

enum fr_status fr_cpu_none(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    (void)dst;
    return FR_STATUS_OK;
}

void *fr_cpu_scratch(struct fr_cpu_kctx *k, int slot, size_t bytes)
{
    struct fr_cpu_state *s = k->state;
    if (slot < 0 || slot >= N_SCRATCH)
        return NULL;
    if (s->scratch_size[slot] < bytes) {
        free(s->scratch[slot]);
        s->scratch[slot] = NULL;
        s->scratch_size[slot] = 0;
        if (posix_memalign(&s->scratch[slot], 64, bytes) != 0)
            return NULL;
        s->scratch_size[slot] = bytes;
    }
    return s->scratch[slot];
}

enum fr_status fr_cpu_compute_node(struct fr_cpu_kctx *k, struct fr_tensor *node)
{
    if ((unsigned)node->op >= FR_OP_COUNT)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "cpu: bad op %d", (int)node->op);
    return cpu_kernels[node->op](k, node);
}

static enum fr_status cpu_buffer_alloc(struct fr_backend *b, size_t size, struct fr_buffer **out)
{
    struct fr_buffer *buf = calloc(1, sizeof *buf);
    void *mem = NULL;
    if (!buf || posix_memalign(&mem, 64, (size + 63) & ~(size_t)63) != 0) {
        free(buf);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes", size);
    }
    buf->backend = b;
    buf->size = size;
    buf->host = mem;
    *out = buf;
    return FR_STATUS_OK;
}

static void cpu_buffer_free(struct fr_buffer *buf)
{
    free(buf->host);
    free(buf);
}

static enum fr_status cpu_buffer_set(struct fr_buffer *buf, size_t offset, const void *src, size_t size)
{
    if (offset + size > buf->size)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "cpu: write of %zu bytes at %zu past a %zu-byte buffer", size,
                        offset, buf->size);
    memcpy((char *)buf->host + offset, src, size);
    return FR_STATUS_OK;
}

static enum fr_status cpu_buffer_get(struct fr_buffer *buf, size_t offset, void *dst, size_t size)
{
    if (offset + size > buf->size)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "cpu: read of %zu bytes at %zu past a %zu-byte buffer", size,
                        offset, buf->size);
    memcpy(dst, (char *)buf->host + offset, size);
    return FR_STATUS_OK;
}

static bool cpu_supports_op(struct fr_backend *b, const struct fr_tensor *node)
{
    (void)b;
    return (unsigned)node->op < FR_OP_COUNT;
}

static enum fr_status cpu_graph_compute(struct fr_backend *b, struct fr_tensor **nodes, int n, const struct fr_exec *ex)
{
    struct fr_cpu_state *s = b->ctx;
    struct fr_cpu_kctx k = {.pool = s->pool, .ex = ex, .state = s};
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = nodes[i];
        if (t->op == FR_OP_NONE || t->op == FR_OP_VIEW)
            continue;
        enum fr_status st = cpu_kernels[t->op](&k, t);
        if (st != FR_STATUS_OK)
            return st;
    }
    return FR_STATUS_OK;
}

static void cpu_free(struct fr_backend *b)
{
    struct fr_cpu_state *s = b->ctx;
    for (int i = 0; i < N_SCRATCH; i++)
        free(s->scratch[i]);
    if (s->own_pool)
        fr_threadpool_free(s->pool);
    free(s);
    free(b);
}

static const struct fr_backend_i cpu_iface = {
    .free = cpu_free,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_set = cpu_buffer_set,
    .buffer_get = cpu_buffer_get,
    .supports_op = cpu_supports_op,
    .graph_compute = cpu_graph_compute,
    .synchronize = NULL,
};

struct fr_backend *fr_backend_cpu_new(int n_threads)
{
    struct fr_backend *b = calloc(1, sizeof *b);
    struct fr_cpu_state *s = calloc(1, sizeof *s);
    if (!b || !s) {
        free(b);
        free(s);
        return NULL;
    }
    if (n_threads > 0) {
        s->pool = fr_threadpool_new(n_threads);
        s->own_pool = true;
    } else {
        s->pool = fr_threadpool_default();
    }
    if (!s->pool) {
        free(b);
        free(s);
        return NULL;
    }
    b->iface = &cpu_iface;
    b->kind = FR_BACKEND_CPU;
    b->ctx = s;
    snprintf(b->name, sizeof b->name, "cpu");
    return b;
}

int fr_backend_cpu_threads(const struct fr_backend *b)
{
    if (!b || b->kind != FR_BACKEND_CPU)
        return 0;
    return fr_threadpool_size(((struct fr_cpu_state *)b->ctx)->pool);
}

struct range_job {
    fr_range_fn fn;
    void *ctx;
    int64_t n, chunk;
};

static void range_task(void *p, int64_t task, int thread)
{
    (void)thread;
    struct range_job *j = p;
    int64_t b = task * j->chunk, e = FR_MIN(j->n, b + j->chunk);
    j->fn(j->ctx, b, e);
}

void fr_cpu_parallel_for(struct fr_cpu_kctx *k, int64_t n, int64_t grain, fr_range_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    int nt = fr_threadpool_size(k->pool);
    if (grain < 1)
        grain = 1;
    int64_t chunks = FR_MIN((int64_t)nt * 4, (n + grain - 1) / grain);
    if (chunks <= 1) {
        fn(ctx, 0, n);
        return;
    }
    struct range_job j = {fn, ctx, n, (n + chunks - 1) / chunks};
    fr_threadpool_run(k->pool, (n + j.chunk - 1) / j.chunk, range_task, &j);
}
