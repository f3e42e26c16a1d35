/* The memory planner: static storage for leaves and kept tensors, one shared arena for intermediates
 * whose blocks are reused once their last reader has run (liveness over the topological order). */
#include "core/graph_internal.h"

#define ALIGN 64
static size_t align_up(size_t x) { return (x + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

struct block { size_t off, size; };

/* best-fit free list over the arena's address range */
struct arena {
    struct block *free;
    int n_free, cap;
    size_t end;
};

static size_t arena_alloc(struct arena *a, size_t size)
{
    int best = -1;
    for (int i = 0; i < a->n_free; i++)
        if (a->free[i].size >= size && (best < 0 || a->free[i].size < a->free[best].size))
            best = i;
    if (best >= 0) {
        size_t off = a->free[best].off;
        a->free[best].off += size;
        a->free[best].size -= size;
        if (a->free[best].size == 0)
            a->free[best] = a->free[--a->n_free];
        return off;
    }
    /* grow: if the last free block touches the end, extend it */
    for (int i = 0; i < a->n_free; i++)
        if (a->free[i].off + a->free[i].size == a->end) {
            size_t off = a->free[i].off;
            a->end = off + size;
            a->free[i] = a->free[--a->n_free];
            return off;
        }
    size_t off = a->end;
    a->end += size;
    return off;
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

void fr_graph_release_storage(struct fr_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        struct fr_tensor *t = g->nodes[i];
        if (t->buffer && (t->buffer == g->static_buf || t->buffer == g->arena_buf)) {
            t->buffer = NULL;
            t->offset = 0;
        }
    }
    fr_buffer_free(g->static_buf);
    fr_buffer_free(g->arena_buf);
    g->static_buf = g->arena_buf = NULL;
    g->n_guards = 0;
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

static enum fr_status add_guard(struct fr_graph *g, struct fr_tensor *t)
{
    struct fr_guard *n = realloc(g->guards, (size_t)(g->n_guards + 1) * sizeof *n);
    if (!n)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "plan: out of memory");
    g->guards = n;
    g->guards[g->n_guards++] = (struct fr_guard){t->buffer, t->offset + fr_nbytes(t), t};
    return FR_STATUS_OK;
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
    size_t *arena_off = calloc((size_t)n + 1, sizeof(size_t));
    uint8_t *fb = realloc(g->fallback, (size_t)n + 1);
    struct arena ar = {0};
    uint8_t *keep = NULL;
    if (!last_use || !index_of || !arena_off || !fb) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "plan: out of memory");
        goto done;
    }
    g->fallback = fb;
    for (int i = 0; i < n; i++) {
        index_of[g->nodes[i]->id] = i;
        last_use[i] = i;
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

    /* static storage */
    size_t static_size = 0;
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = g->nodes[i];
        if (!t->view_src && !t->buffer && is_static(t, keep, index_of))
            static_size += storage_size(g, t);
    }
    if (static_size) {
        if ((st = fr_buffer_alloc(backend, static_size, &g->static_buf)) != FR_STATUS_OK)
            goto done;
        size_t off = 0;
        for (int i = 0; i < n; i++) {
            struct fr_tensor *t = g->nodes[i];
            if (t->view_src || t->buffer || !is_static(t, keep, index_of))
                continue;
            t->buffer = g->static_buf;
            t->offset = off;
            off += storage_size(g, t);
            if (g->guard && (st = add_guard(g, t)) != FR_STATUS_OK)
                goto done;
        }
    }

    /* arena: walk in order, allocate each intermediate root, free roots after their last reader */
    size_t naive = 0;
    int *head = malloc((size_t)(n + 1) * sizeof(int)), *next = malloc((size_t)(n + 1) * sizeof(int));
    if (!head || !next) {
        free(head);
        free(next);
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "plan: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        head[i] = -1;
    for (int j = 0; j < n; j++) { /* lists of the roots that die at each index */
        struct fr_tensor *r = g->nodes[j];
        if (r->view_src || r->buffer || is_static(r, keep, index_of))
            continue;
        next[j] = head[last_use[j]];
        head[last_use[j]] = j;
    }
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        struct fr_tensor *t = g->nodes[i];
        if (!t->view_src && !t->buffer && !is_static(t, keep, index_of)) {
            size_t sz = storage_size(g, t);
            naive += sz;
            arena_off[i] = arena_alloc(&ar, sz);
        }
        for (int j = head[i]; j >= 0 && ok; j = next[j])
            ok = arena_release(&ar, arena_off[j], storage_size(g, g->nodes[j]));
    }
    free(head);
    free(next);
    if (!ok) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "plan: out of memory");
        goto done;
    }
    if (ar.end) {
        if ((st = fr_buffer_alloc(backend, ar.end, &g->arena_buf)) != FR_STATUS_OK)
            goto done;
        for (int i = 0; i < n; i++) {
            struct fr_tensor *t = g->nodes[i];
            if (t->view_src || t->buffer || is_static(t, keep, index_of))
                continue;
            t->buffer = g->arena_buf;
            t->offset = arena_off[i];
            if (g->guard && (st = add_guard(g, t)) != FR_STATUS_OK)
                goto done;
        }
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
    g->stats.arena_bytes = ar.end;
    g->stats.naive_bytes = naive;
    g->stats.n_nodes = n;
    g->planned = true;
    if (fr_debug_enabled("sched"))
        fr_log(FR_LOG_DEBUG, "sched: graph of %d nodes planned on %s: %d on the CPU path, arena %zu bytes (%zu unplanned)",
               n, backend->name, g->stats.fallback_ops, (size_t)ar.end, (size_t)naive);
done:
    free(ar.free);
    free(keep);
    free(last_use);
    free(index_of);
    free(arena_off);
    if (st != FR_STATUS_OK)
        fr_graph_release_storage(g);
    return st;
}
