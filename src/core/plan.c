/* The memory planner: static storage for leaves and kept tensors, a shared arena for intermediates whose
 * blocks are reused once their last reader has run (liveness over the topological order); both split into
 * chunks of at most the backend's largest buffer. Out of memory names what the graph needs and a batch. */
#include "core/graph_internal.h"

#define ALIGN 64
static size_t align_up(size_t x) { return (x + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

struct block { size_t off, size; };

/* best-fit free list over one arena chunk's address range */
struct arena {
    struct block *free;
    int n_free, cap;
    size_t end;
};

/* the arena: chunks of at most `limit` bytes (a larger tensor gets a chunk of its own) */
struct arenas {
    struct arena *a;
    int n;
    size_t limit;
};

/* Smallest free block of any chunk that fits; then growing a chunk within the limit; then a new chunk.
 * false when out of host memory. */
static bool arena_alloc(struct arenas *as, size_t size, int *chunk, size_t *off)
{
    int bc = -1, bi = -1;
    for (int c = 0; c < as->n; c++)
        for (int i = 0; i < as->a[c].n_free; i++) {
            const struct block *f = &as->a[c].free[i];
            if (f->size >= size && (bc < 0 || f->size < as->a[bc].free[bi].size))
                bc = c, bi = i;
        }
    if (bc >= 0) {
        struct arena *a = &as->a[bc];
        *chunk = bc;
        *off = a->free[bi].off;
        a->free[bi].off += size;
        a->free[bi].size -= size;
        if (a->free[bi].size == 0)
            a->free[bi] = a->free[--a->n_free];
        return true;
    }
    for (int c = 0; c < as->n; c++) {
        struct arena *a = &as->a[c];
        /* a free block touching the end is extended, else the end grows */
        int tail = -1;
        for (int i = 0; i < a->n_free; i++)
            if (a->free[i].off + a->free[i].size == a->end)
                tail = i;
        size_t at = tail >= 0 ? a->free[tail].off : a->end;
        if (at + size > as->limit)
            continue;
        if (tail >= 0)
            a->free[tail] = a->free[--a->n_free];
        a->end = at + size;
        *chunk = c;
        *off = at;
        return true;
    }
    struct arena *g = realloc(as->a, (size_t)(as->n + 1) * sizeof *g);
    if (!g)
        return false;
    as->a = g;
    memset(&as->a[as->n], 0, sizeof *as->a);
    as->a[as->n].end = size;
    *chunk = as->n++;
    *off = 0;
    return true;
}

static bool arena_release(struct arena *a, size_t off, size_t size)
{
    /* merge with neighbours */
    for (int i = 0; i < a->n_free; i++) {
        if (a->free[i].off + a->free[i].size == off) {
            off = a->free[i].off;
            size += a->free[i].size;
            a->free[i--] = a->free[--a->n_free];
        } else if (off + size == a->free[i].off) {
            size += a->free[i].size;
            a->free[i--] = a->free[--a->n_free];
        }
    }
    if (a->n_free == a->cap) {
        int cap = a->cap ? 2 * a->cap : 32;
        struct block *b = realloc(a->free, (size_t)cap * sizeof *b);
        if (!b)
            return false;
        a->free = b;
        a->cap = cap;
    }
    a->free[a->n_free++] = (struct block){off, size};
    return true;
}

static bool owned(const struct fr_graph *g, const struct fr_buffer *b)
{
    for (int i = 0; i < g->n_bufs; i++)
        if (g->bufs[i] == b)
            return true;
    return false;
}

void fr_graph_release_storage(struct fr_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        struct fr_tensor *t = g->nodes[i];
        if (t->buffer && owned(g, t->buffer)) {
            t->buffer = NULL;
            t->offset = 0;
        }
    }
    for (int i = 0; i < g->n_bufs; i++)
        fr_buffer_free(g->bufs[i]);
    free(g->bufs);
    g->bufs = NULL;
    g->n_bufs = g->n_static_bufs = 0;
    g->n_guards = 0;
}

/* the largest INPUT tensor's outer size (the batch of a training or inference graph); 0 when none */
static int64_t graph_batch(const struct fr_graph *g)
{
    int64_t batch = 0, most = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct fr_tensor *t = g->nodes[i];
        if (t->op == FR_OP_NONE && (t->flags & FR_FLAG_INPUT) && t->ndim >= 2 && fr_nelements(t) > most) {
            most = fr_nelements(t);
            batch = t->ne[0];
        }
    }
    return batch;
}

void fr_graph_oom_hint(const struct fr_graph *g, size_t static_bytes, size_t arena_bytes, char *buf, size_t size)
{
    double mib = 1.0 / (1 << 20), need = (double)(static_bytes + arena_bytes) * mib;
    int64_t batch = graph_batch(g);
    uint64_t mem = g->backend ? g->backend->mem_bytes : 0;
    if (batch <= 1 || arena_bytes == 0) {
        snprintf(buf, size, "this graph needs %.1f MiB (%.1f MiB of intermediates)%s", need,
                 (double)arena_bytes * mib, batch == 1 ? " at batch 1: use a smaller model or another device" : "");
        return;
    }
    /* the intermediates scale with the batch; leave a fifth of the device to the driver and other users */
    int64_t fit = batch / 2;
    double per = (double)arena_bytes / (double)batch, room = 0.8 * (double)mem - (double)static_bytes;
    if (mem && room / per < (double)fit)
        fit = room > per ? (int64_t)(room / per) : 0;
    if (fit >= 16)
        fit -= fit % 8;
    if (fit < 1)
        snprintf(buf, size, "this graph needs %.1f MiB (%.1f MiB of intermediates at batch %lld): even batch 1 would "
                 "not fit, use a smaller model or another device", need, (double)arena_bytes * mib, (long long)batch);
    else
        snprintf(buf, size, "this graph needs %.1f MiB (%.1f MiB of intermediates at batch %lld): try a batch of %lld",
                 need, (double)arena_bytes * mib, (long long)batch, (long long)fit);
}

/* Static storage: leaves, tensors with a keeping flag, and the storage roots of kept views (a reshaped
 * output must not live in the arena, where its block would be reused). Filled per plan in `keep`. */
static bool is_static(const struct fr_tensor *t, const uint8_t *keep, const int *index_of)
{
    return t->op == FR_OP_NONE || (t->flags & FR_STATIC_FLAGS) || keep[index_of[t->id]];
}

static size_t storage_size(const struct fr_graph *g, const struct fr_tensor *t)
{
    return align_up(fr_nbytes(t) + (g->guard ? FR_GUARD_BYTES : 0));
}

static enum fr_status add_guard(struct fr_graph *g, struct fr_tensor *t, bool arena)
{
    struct fr_guard *n = realloc(g->guards, (size_t)(g->n_guards + 1) * sizeof *n);
    if (!n)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "plan: out of memory");
    g->guards = n;
    g->guards[g->n_guards++] = (struct fr_guard){t->buffer, t->offset + fr_nbytes(t), t, arena};
    return FR_STATUS_OK;
}

/* one more storage chunk of `size` bytes on the backend */
static enum fr_status add_chunk(struct fr_graph *g, size_t size)
{
    struct fr_buffer **n = realloc(g->bufs, (size_t)(g->n_bufs + 1) * sizeof *n);
    if (!n)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "plan: out of memory");
    g->bufs = n;
    enum fr_status st = fr_buffer_alloc(g->backend, size, &g->bufs[g->n_bufs]);
    if (st == FR_STATUS_OK)
        g->n_bufs++;
    return st;
}

static enum fr_status write_guards(struct fr_graph *g)
{
    uint8_t pat[FR_GUARD_BYTES];
    memset(pat, FR_GUARD_VALUE, sizeof pat);
    for (int i = 0; i < g->n_guards; i++) {
        struct fr_buffer *b = g->guards[i].buf;
        enum fr_status st = b->backend->iface->buffer_set(b, g->guards[i].offset, pat, sizeof pat);
        if (st != FR_STATUS_OK)
            return st;
    }
    return FR_STATUS_OK;
}

enum fr_status fr_graph_check_guard(struct fr_graph *g, int k)
{
    uint8_t got[FR_GUARD_BYTES];
    struct fr_buffer *b = g->guards[k].buf;
    enum fr_status st = b->backend->iface->buffer_get(b, g->guards[k].offset, got, sizeof got);
    if (st != FR_STATUS_OK)
        return st;
    for (int i = 0; i < FR_GUARD_BYTES; i++)
        if (got[i] != FR_GUARD_VALUE) {
            struct fr_tensor *t = g->guards[k].t;
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "guard bytes after tensor '%s' (op %s) overwritten at +%d",
                            t->name, fr_op_name(t->op), i);
        }
    return FR_STATUS_OK;
}

enum fr_status fr_graph_plan(struct fr_graph *g, struct fr_backend *backend)
{
    if (!backend)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "plan: no backend");
    fr_graph_release_storage(g);
    g->backend = backend;
    enum fr_status st = FR_STATUS_OK;
    int n = g->n_nodes;
    int *last_use = malloc((size_t)(n + 1) * sizeof(int));
    int *index_of = calloc((size_t)fr_ctx_count(g->ctx) + 1, sizeof(int));
    int *chunk = malloc((size_t)(n + 1) * sizeof(int)); /* storage chunk of each node, -1: none (views, ...) */
    size_t *place = calloc((size_t)n + 1, sizeof(size_t)); /* its offset there */
    uint8_t *fb = realloc(g->fallback, (size_t)n + 1);
    uint8_t *keep = NULL;
    if (!last_use || !index_of || !chunk || !place || !fb) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "plan: out of memory");
        goto done;
    }
    g->fallback = fb;
    for (int i = 0; i < n; i++) {
        index_of[g->nodes[i]->id] = i;
        last_use[i] = i;
        chunk[i] = -1;
    }
    keep = calloc((size_t)n + 1, 1);
    if (!keep) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "plan: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = g->nodes[i];
        if (t->view_src && (t->flags & FR_STATIC_FLAGS))
            keep[index_of[fr_storage_root(t)->id]] = 1;
    }
    /* liveness: a read of a view is a read of its storage root */
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = g->nodes[i];
        for (int s = 0; s < FR_MAX_SRC; s++) {
            if (!t->src[s])
                continue;
            struct fr_tensor *r = fr_storage_root(t->src[s]);
            last_use[index_of[r->id]] = FR_MAX(last_use[index_of[r->id]], i);
        }
        if (t->view_src) {
            struct fr_tensor *r = fr_storage_root(t);
            last_use[index_of[r->id]] = FR_MAX(last_use[index_of[r->id]], i);
        }
    }

    /* static storage: packed in order into chunks of at most `limit` bytes */
    size_t limit = backend->max_buffer ? (size_t)backend->max_buffer : SIZE_MAX;
    size_t static_size = 0, chunk_used = 0;
    int n_static = 0;
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = g->nodes[i];
        if (t->view_src || t->buffer || !is_static(t, keep, index_of))
            continue;
        size_t sz = storage_size(g, t);
        if (n_static == 0 || (chunk_used > 0 && chunk_used + sz > limit)) {
            n_static++;
            chunk_used = 0;
        }
        chunk[i] = n_static - 1;
        place[i] = chunk_used;
        chunk_used += sz;
        static_size += sz;
    }
    size_t *static_chunk = calloc((size_t)n_static + 1, sizeof *static_chunk);
    if (!static_chunk) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "plan: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (chunk[i] >= 0)
            static_chunk[chunk[i]] = FR_MAX(static_chunk[chunk[i]], place[i] + storage_size(g, g->nodes[i]));

    /* arena: walk in order, allocate each intermediate root, free roots after their last reader */
    size_t naive = 0, arena_size = 0;
    struct arenas ar = {NULL, 0, limit};
    int *head = malloc((size_t)(n + 1) * sizeof(int)), *next = malloc((size_t)(n + 1) * sizeof(int));
    bool ok = head && next;
    for (int i = 0; i < n && ok; i++)
        head[i] = -1;
    for (int j = 0; j < n && ok; j++) { /* lists of the roots that die at each index */
        struct fr_tensor *r = g->nodes[j];
        if (r->view_src || r->buffer || is_static(r, keep, index_of))
            continue;
        next[j] = head[last_use[j]];
        head[last_use[j]] = j;
    }
    size_t live = 0, peak = 0;
    int peak_at = -1;
    for (int i = 0; i < n && ok; i++) {
        struct fr_tensor *t = g->nodes[i];
        if (!t->view_src && !t->buffer && !is_static(t, keep, index_of)) {
            size_t sz = storage_size(g, t);
            naive += sz;
            live += sz;
            if (live > peak)
                peak = live, peak_at = i;
            int c = 0;
            ok = arena_alloc(&ar, sz, &c, &place[i]);
            chunk[i] = n_static + c;
        }
        for (int j = head[i]; j >= 0 && ok; j = next[j]) {
            live -= storage_size(g, g->nodes[j]);
            ok = arena_release(&ar.a[chunk[j] - n_static], place[j], storage_size(g, g->nodes[j]));
        }
    }
    if (ok && peak_at >= 0 && fr_debug_enabled("plan")) { /* FRUGAL_DEBUG=plan: where the arena peaks, and why */
        size_t end = 0;
        for (int c = 0; c < ar.n; c++)
            end += ar.a[c].end;
        fr_log(FR_LOG_WARN, "plan: %d nodes, live peak %.1f MB at node %d (%s), arena %.1f MB", n, peak / 1e6, peak_at,
               fr_op_name(g->nodes[peak_at]->op), end / 1e6);
        for (int j = 0; j < n; j++) { /* what is live there, with the span of nodes it lives over */
            struct fr_tensor *r = g->nodes[j];
            if (r->view_src || r->buffer || is_static(r, keep, index_of) || j > peak_at || last_use[j] < peak_at)
                continue;
            char sh[64];
            fr_log(FR_LOG_WARN, "plan:   %4d..%4d %-22s %-28s %8.2f MB  %s", j, last_use[j], fr_op_name(r->op),
                   fr_tensor_shape_str(r, sh, sizeof sh), storage_size(g, r) / 1e6, r->name);
        }
    }
    free(head);
    free(next);
    for (int c = 0; c < ar.n; c++) {
        arena_size += ar.a[c].end;
        free(ar.a[c].free);
    }
    if (!ok) {
        free(static_chunk);
        free(ar.a);
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "plan: out of memory");
        goto done;
    }
    /* the chunks on the device: static first, then the arena's (out of memory says what this graph needs) */
    fr_graph_oom_hint(g, static_size, arena_size, g->oom_hint, sizeof g->oom_hint);
    memcpy(backend->oom_hint, g->oom_hint, sizeof backend->oom_hint);
    for (int c = 0; c < n_static && st == FR_STATUS_OK; c++)
        st = add_chunk(g, static_chunk[c]);
    g->n_static_bufs = g->n_bufs;
    for (int c = 0; c < ar.n && st == FR_STATUS_OK; c++)
        st = add_chunk(g, ar.a[c].end);
    free(static_chunk);
    free(ar.a);
    if (st == FR_STATUS_OUT_OF_MEMORY && !strstr(fr_last_error(), g->oom_hint)) { /* backends that do not add it */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", fr_last_error());
        st = fr_error(st, "%s; %s", msg, g->oom_hint);
    }
    if (st != FR_STATUS_OK)
        goto done;
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = g->nodes[i];
        if (chunk[i] < 0)
            continue;
        t->buffer = g->bufs[chunk[i]];
        t->offset = place[i];
        if (g->guard && (st = add_guard(g, t, chunk[i] >= n_static)) != FR_STATUS_OK)
            goto done;
    }
    /* views (and in-place nodes) point into their root's storage */
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = g->nodes[i];
        if (!t->view_src)
            continue;
        if (!t->view_src->buffer) {
            st = fr_error(FR_STATUS_INVALID_ARGUMENT, "plan: view '%s' of a tensor without storage", t->name);
            goto done;
        }
        t->buffer = t->view_src->buffer;
        t->offset = t->view_src->offset + t->view_offs;
    }
    if (g->guard && (st = write_guards(g)) != FR_STATUS_OK)
        goto done;

    /* which nodes the backend cannot run */
    g->stats.fallback_ops = 0;
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = g->nodes[i];
        g->fallback[i] = !fr_node_is_noop(t) && !backend->iface->supports_op(backend, t);
        if (g->fallback[i]) {
            g->stats.fallback_ops++;
            if (fr_debug_enabled("sched")) {
                char sh[64];
                fr_log(FR_LOG_DEBUG, "sched: %s runs on the CPU path (no %s kernel for %s on %s)",
                       t->name[0] ? t->name : fr_op_name(t->op), fr_op_name(t->op), fr_tensor_shape_str(t, sh, sizeof sh),
                       backend->name);
            }
        }
    }
    g->stats.static_bytes = static_size;
    g->stats.arena_bytes = arena_size;
    g->stats.naive_bytes = naive;
    g->stats.n_nodes = n;
    g->planned = true;
    if (fr_debug_enabled("sched"))
        fr_log(FR_LOG_DEBUG, "sched: graph of %d nodes planned on %s: %d on the CPU path, arena %zu bytes (%zu unplanned)",
               n, backend->name, g->stats.fallback_ops, (size_t)arena_size, (size_t)naive);
done:
    free(keep);
    free(last_use);
    free(index_of);
    free(chunk);
    free(place);
    if (st != FR_STATUS_OK)
        fr_graph_release_storage(g);
    return st;
}
